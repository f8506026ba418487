/* test_support.c — arenas, strings, maps, suggestions and located errors,
 * against hand-written expectations. */
#include "support/support.h"
#include "test.h"

#include <stdlib.h>

TEST(test_arena_zeroed_and_aligned) {
  arena a;
  arena_init(&a);
  for (int i = 1; i < 2000; i += 37) {
    unsigned char *p = arena_alloc(&a, (size_t)i);
    CHECK(((uintptr_t)p % sizeof(max_align_t)) == 0);
    for (int k = 0; k < i; k++)
      CHECK(p[k] == 0);
    p[i - 1] = 0xff;
  }
  void *big = arena_alloc(&a, 1 << 20); /* larger than a chunk */
  CHECK(big != NULL);
  CHECK(strcmp(arena_printf(&a, "%s.%d", "layer", 3), "layer.3") == 0);
  int *arr = NULL, n = 0, cap = 0;
  for (int i = 0; i < 100; i++)
    ARENA_PUSH(&a, arr, n, cap, i * i);
  CHECK_EQ_INT(n, 100);
  CHECK_EQ_INT(arr[99], 9801);
  arena_free(&a);
}

TEST(test_strbuf_counts) {
  strbuf b;
  strbuf_init(&b);
  strbuf_put_count(&b, 11689512);
  strbuf_putc(&b, ' ');
  strbuf_put_count(&b, 999);
  strbuf_putc(&b, ' ');
  strbuf_put_count(&b, -1000);
  strbuf_putc(&b, ' ');
  strbuf_put_count(&b, 0);
  CHECK(strcmp(b.data, "11,689,512 999 -1,000 0") == 0);
  strbuf_free(&b);
}

TEST(test_strmap) {
  arena a;
  arena_init(&a);
  strmap m;
  strmap_init(&m, &a);
  CHECK(strmap_get(&m, "x") == NULL);
  static int vals[500];
  char name[32];
  for (int i = 0; i < 500; i++) {
    snprintf(name, sizeof name, "layer%d", i);
    CHECK(strmap_put(&m, arena_strdup(&a, name), &vals[i]));
  }
  CHECK(!strmap_put(&m, "layer7", &vals[0])); /* duplicate refused */
  for (int i = 0; i < 500; i++) {
    snprintf(name, sizeof name, "layer%d", i);
    CHECK(strmap_get(&m, name) == &vals[i]);
  }
  CHECK(strmap_get(&m, "layer500") == NULL);
  arena_free(&a);
}

TEST(test_suggest) {
  CHECK_EQ_INT(edit_distance("kitten", "sitting"), 3);
  CHECK_EQ_INT(edit_distance("reul", "relu"), 1); /* adjacent swap */
  CHECK_EQ_INT(edit_distance("", "abc"), 3);
  const char *ops[] = {"conv2d", "relu", "linear", "maxpool"};
  CHECK(strcmp(suggest_closest("conv2", ops, 4), "conv2d") == 0);
  CHECK(strcmp(suggest_closest("reul", ops, 4), "relu") == 0);
  CHECK(suggest_closest("softmax", ops, 4) == NULL);
}

TEST(test_diag_format) {
  const char *text = "model m\nc1 = conv2(image, out=6)\n";
  src_file f = {"t.kiln", text, strlen(text)};
  kiln_error err;
  kiln_loc loc = {&f, 2, 6};
  CHECK(diag_error(&err, KILN_ERR_NAME, loc, "unknown op '%s'", "conv2") ==
        KILN_ERR_NAME);
  CHECK_EQ_INT(err.status, KILN_ERR_NAME);
  CHECK(strcmp(err.message, "t.kiln:2:6: error: unknown op 'conv2'\n"
                            "c1 = conv2(image, out=6)\n"
                            "     ^\n") == 0);
  diag_note(&err, (kiln_loc){&f, 1, 1}, "first defined here");
  CHECK_STR_CONTAINS(err.message, "t.kiln:1:1: note: first defined here\n"
                                  "model m\n^\n");
  /* No location: just the message. */
  diag_error(&err, KILN_ERR_IO, (kiln_loc){0}, "cannot read '%s'", "x");
  CHECK(strcmp(err.message, "error: cannot read 'x'\n") == 0);
  /* Control bytes never reach the terminal. */
  const char *bad = "a\x1b[31m = 1\n";
  src_file g = {"b.kiln", bad, strlen(bad)};
  diag_error(&err, KILN_ERR_SYNTAX, (kiln_loc){&g, 1, 2}, "bad");
  CHECK(strchr(err.message, '\x1b') == NULL);
  /* A huge message is truncated, not overflowed. */
  char *huge = malloc(10000);
  memset(huge, 'x', 9999);
  huge[9999] = 0;
  diag_error(&err, KILN_ERR_SYNTAX, (kiln_loc){0}, "%s", huge);
  CHECK_EQ_INT(strlen(err.message), sizeof err.message - 1);
  free(huge);
}

int main(void) {
  RUN(test_arena_zeroed_and_aligned);
  RUN(test_strbuf_counts);
  RUN(test_strmap);
  RUN(test_suggest);
  RUN(test_diag_format);
  return TEST_SUMMARY();
}
