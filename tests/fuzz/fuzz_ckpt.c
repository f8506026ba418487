/* fuzz_ckpt.c — libFuzzer target for the safetensors reader.
 *
 * A checkpoint is user input: any byte string must either parse into
 * tensors that lie inside the buffer or be rejected with a message; it must
 * never read out of bounds, crash, leak or hang.
 *
 *   CC=clang cmake -S . -B build-fuzz -DKILN_FUZZ=ON
 *   cmake --build build-fuzz --target fuzz_ckpt
 *   ./build-fuzz/tests/fuzz_ckpt -max_total_time=60 corpus/ */
#include "runtime/checkpoint/ckpt.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ckpt_file f;
  kiln_error err;
  if (ckpt_parse(&f, "fuzz.safetensors", data, size, &err) == KILN_OK) {
    /* Touch every byte of every tensor: ASan reports any that lie outside
     * the parsed copy. */
    for (int i = 0; i < f.n_tensors; i++) {
      const ckpt_tensor *t = &f.tensors[i];
      int64_t nbytes = 0;
      KILN_ASSERT(ckpt_tensor_nbytes(t, &nbytes));
      KILN_ASSERT(ckpt_find(&f, t->name) == t);
      volatile unsigned char sum = 0;
      for (int64_t k = 0; k < nbytes; k++)
        sum ^= ((const unsigned char *)t->data)[k];
      (void)sum;
    }
    ckpt_file_free(&f);
  } else {
    KILN_ASSERT(err.status != KILN_OK && err.message[0] != '\0');
  }
  return 0;
}
