/* fuzz_parse.c — libFuzzer target for the tokenizer, parser and
 * elaborator.
 *
 * Any input must either parse or fail with a located message; it must never
 * crash, leak or hang (ASan and UBSan, built in with -DKILN_FUZZ=ON, turn
 * silent memory errors into crashes). A file that parses must also survive
 * the print -> parse round trip with the same canonical text, so the printer
 * is fuzzed along with the parser; then it goes through the whole load path
 * (elaboration, shape rules, sections, verifier) and, if it loads, through
 * the summary, dump and dot writers.
 *
 *   CC=clang cmake -S . -B build-fuzz -DKILN_FUZZ=ON
 *   cmake --build build-fuzz --target fuzz_parse
 *   ./build-fuzz/tests/fuzz_parse -max_total_time=60 -max_len=4096 corpus/ */
#include "frontend/frontend.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  arena a;
  arena_init(&a);
  /* src_file text is NUL-terminated; the input may hold NULs of its own. */
  char *text = arena_alloc(&a, size + 1);
  if (size)
    memcpy(text, data, size);
  src_file f = {"fuzz.kiln", text, size};
  ast_module m;
  kiln_error err;
  if (parse_module(&a, &f, &m, &err) == KILN_OK) {
    strbuf once, twice;
    strbuf_init(&once);
    strbuf_init(&twice);
    parse_print(&m, &once);
    src_file g = {"printed.kiln", once.data ? once.data : "", once.len};
    ast_module m2;
    KILN_ASSERT(parse_module(&a, &g, &m2, &err) == KILN_OK);
    parse_print(&m2, &twice);
    KILN_ASSERT(once.len == twice.len &&
                (!once.len || memcmp(once.data, twice.data, once.len) == 0));
    strbuf_free(&once);
    strbuf_free(&twice);
    kiln_model *model = kiln_model_load_string("fuzz.kiln", text, size, &err);
    if (model) {
      static FILE *sink;
      if (!sink)
        sink = fopen("/dev/null", "w");
      KILN_ASSERT(sink);
      kiln_model_summary(model, sink);
      kiln_model_dump(model, sink);
      kiln_model_write_dot(model, sink);
      kiln_model_free(model);
    } else {
      KILN_ASSERT(err.status != KILN_OK && err.message[0] != '\0');
    }
  } else {
    KILN_ASSERT(err.status != KILN_OK && err.message[0] != '\0');
  }
  arena_free(&a);
  return 0;
}
