/* strbuf.c — growable heap strings for messages and printed output. */
#include "support/support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void strbuf_init(strbuf *b) {
  b->data = NULL;
  b->len = b->cap = 0;
}

void strbuf_free(strbuf *b) {
  free(b->data);
  strbuf_init(b);
}

static void strbuf_reserve(strbuf *b, size_t extra) {
  if (b->len + extra + 1 <= b->cap)
    return;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < b->len + extra + 1)
    cap *= 2;
  b->data = realloc(b->data, cap);
  KILN_ASSERT(b->data && "out of memory");
  b->cap = cap;
}

void strbuf_putc(strbuf *b, char c) {
  strbuf_reserve(b, 1);
  b->data[b->len++] = c;
  b->data[b->len] = '\0';
}

void strbuf_puts(strbuf *b, const char *s) {
  size_t n = strlen(s);
  strbuf_reserve(b, n);
  memcpy(b->data + b->len, s, n + 1);
  b->len += n;
}

void strbuf_vprintf(strbuf *b, const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap);
  KILN_ASSERT(n >= 0);
  strbuf_reserve(b, (size_t)n);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
  va_end(ap2);
  b->len += (size_t)n;
}

void strbuf_printf(strbuf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  strbuf_vprintf(b, fmt, ap);
  va_end(ap);
}

void strbuf_put_count(strbuf *b, int64_t v) {
  char digits[32];
  uint64_t u = v < 0 ? -(uint64_t)v : (uint64_t)v;
  int n = snprintf(digits, sizeof digits, "%llu", (unsigned long long)u);
  if (v < 0)
    strbuf_putc(b, '-');
  for (int i = 0; i < n; i++) {
    if (i > 0 && (n - i) % 3 == 0)
      strbuf_putc(b, ',');
    strbuf_putc(b, digits[i]);
  }
}
