/* ckpt_tool.c — the C side of tests/py/test_safetensors_compat.py, which
 * checks kiln's safetensors files against the safetensors library.
 *
 *   ckpt_tool write PATH [numpy]   writes the known checkpoint below; with
 *                                  "numpy", without its BF16 tensor (numpy
 *                                  has no bfloat16, so safetensors.numpy
 *                                  cannot load a file that has one)
 *   ckpt_tool read PATH            prints what kiln's reader finds:
 *     tensor<TAB>name<TAB>dtype<TAB>d0,d1,..<TAB>sum<TAB>fnv1a64 of the bytes
 *     meta<TAB>key<TAB>value
 *
 * The values are simple formulas that the Python test recomputes with
 * numpy; the 16-bit float tensors are given as bit patterns, so nothing
 * depends on a float-to-half conversion. Exit status 0 ok, 1 on an error
 * (its message on stderr), 2 on bad usage. */
#include "runtime/checkpoint/ckpt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double half_to_double(uint16_t h) {
  int e = (h >> 10) & 0x1f, m = h & 0x3ff;
  double s = (h & 0x8000) ? -1.0 : 1.0;
  if (e == 0)
    return s * ldexp(m, -24);
  if (e == 31)
    return m ? NAN : s * INFINITY;
  return s * ldexp(m + 1024, e - 25);
}

static double bf16_to_double(uint16_t b) {
  uint32_t bits = (uint32_t)b << 16;
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

static double element(const ckpt_tensor *t, int64_t i) {
  const unsigned char *p = t->data;
  switch (t->dtype) {
  case IR_F32: {
    float v;
    memcpy(&v, p + 4 * i, 4);
    return v;
  }
  case IR_F64: {
    double v;
    memcpy(&v, p + 8 * i, 8);
    return v;
  }
  case IR_F16:
  case IR_BF16: {
    uint16_t v;
    memcpy(&v, p + 2 * i, 2);
    return t->dtype == IR_F16 ? half_to_double(v) : bf16_to_double(v);
  }
  case IR_I32: {
    int32_t v;
    memcpy(&v, p + 4 * i, 4);
    return v;
  }
  case IR_I64: {
    int64_t v;
    memcpy(&v, p + 8 * i, 8);
    return (double)v;
  }
  default:
    return NAN;
  }
}

static int cmd_read(const char *path) {
  ckpt_file f;
  kiln_error err;
  if (ckpt_load(&f, path, &err) != KILN_OK) {
    fputs(err.message, stderr);
    return 1;
  }
  for (int i = 0; i < f.n_tensors; i++) {
    const ckpt_tensor *t = &f.tensors[i];
    int64_t nbytes = 0;
    ckpt_tensor_nbytes(t, &nbytes);
    int64_t n = nbytes / ckpt_dtype_size(t->dtype);
    double sum = 0;
    for (int64_t k = 0; k < n; k++)
      sum += element(t, k);
    uint64_t h = 0xcbf29ce484222325u; /* FNV-1a 64 */
    for (int64_t k = 0; k < nbytes; k++)
      h = (h ^ ((const unsigned char *)t->data)[k]) * 0x100000001b3u;
    printf("tensor\t%s\t%s\t", t->name, ckpt_dtype_name(t->dtype));
    for (int d = 0; d < t->rank; d++)
      printf("%s%lld", d ? "," : "", (long long)t->shape[d]);
    printf("\t%.17g\t%016llx\n", sum, (unsigned long long)h);
  }
  for (int i = 0; i < f.n_meta; i++)
    printf("meta\t%s\t%s\n", f.meta[i].key, f.meta[i].value);
  ckpt_file_free(&f);
  return 0;
}

/* Keep in step with expected_tensors() in test_safetensors_compat.py. */
static int cmd_write(const char *path, bool numpy_only) {
  float f32[6], scalar = 2.5f;
  double f64[4];
  uint16_t f16[6], bf16[4];
  int32_t i32[5];
  int64_t i64[3];
  for (int i = 0; i < 6; i++) {
    f32[i] = ((float)i - 2.5f) * 0.75f;
    f16[i] = (uint16_t)(0x3c00 + 0x0123 * i); /* 1.0 upwards */
  }
  for (int i = 0; i < 4; i++) {
    f64[i] = 1.0 / (i + 1);
    bf16[i] = (uint16_t)(0xbf80 + 0x0041 * i); /* -1.0 downwards */
  }
  for (int i = 0; i < 5; i++)
    i32[i] = i * 1000003 - 2000000;
  for (int i = 0; i < 3; i++)
    i64[i] = (int64_t)(i - 1) * 0x123456789ab;
  static const int64_t s23[] = {2, 3}, s4[] = {4}, s32[] = {3, 2},
                       s22[] = {2, 2}, s5[] = {5}, s3[] = {3}, s04[] = {0, 4};
  const ckpt_tensor ts[] = {
      {"layer.w_f32", IR_F32, 2, s23, f32},
      {"layer.w_f64", IR_F64, 1, s4, f64},
      {"layer.w_f16", IR_F16, 2, s32, f16},
      {"counts.i32", IR_I32, 1, s5, i32},
      {"counts.i64", IR_I64, 1, s3, i64},
      {"scalar", IR_F32, 0, NULL, &scalar},
      {"empty", IR_F16, 2, s04, NULL},
      {"embed.bf16", IR_BF16, 2, s22, bf16}, /* last: left out for numpy */
  };
  const ckpt_meta meta[] = {{"format", "pt"}, {"producer", "kiln ckpt_tool"}};
  int n = (int)ARRAY_LEN(ts) - (numpy_only ? 1 : 0);
  kiln_error err;
  if (ckpt_write(path, ts, n, meta, 2, &err) != KILN_OK) {
    fputs(err.message, stderr);
    return 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "read") == 0)
    return cmd_read(argv[2]);
  if ((argc == 3 || argc == 4) && strcmp(argv[1], "write") == 0 &&
      (argc == 3 || strcmp(argv[3], "numpy") == 0))
    return cmd_write(argv[2], argc == 4);
  fprintf(stderr, "usage: ckpt_tool write PATH [numpy]\n"
                  "       ckpt_tool read PATH\n");
  return 2;
}
