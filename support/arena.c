/* arena.c — bump allocation for compile-time data (QBE's freeall, ggml's
 * contexts): nodes, names and syntax trees are never freed one by one; the
 * whole arena goes when the compilation does. */
#include "support/support.h"

#include <stdlib.h>
#include <string.h>

struct arena_chunk {
  arena_chunk *next;
  size_t cap, used;
  max_align_t data[]; /* aligned for any type */
};

enum { ARENA_CHUNK = 64 * 1024 };

void arena_init(arena *a) {
  a->head = NULL;
  a->used_total = 0;
}

void arena_free(arena *a) {
  for (arena_chunk *c = a->head, *next; c; c = next) {
    next = c->next;
    free(c);
  }
  a->head = NULL;
  a->used_total = 0;
}

void *arena_alloc(arena *a, size_t size) {
  const size_t align = sizeof(max_align_t);
  size = (size + align - 1) & ~(align - 1);
  arena_chunk *c = a->head;
  if (!c || c->cap - c->used < size) {
    size_t cap = size > ARENA_CHUNK ? size : ARENA_CHUNK;
    c = malloc(sizeof(arena_chunk) + cap);
    KILN_ASSERT(c && "out of memory");
    c->cap = cap;
    c->used = 0;
    c->next = a->head;
    a->head = c;
  }
  void *p = (char *)c->data + c->used;
  c->used += size;
  a->used_total += size;
  memset(p, 0, size);
  return p;
}

char *arena_strndup(arena *a, const char *s, size_t n) {
  char *p = arena_alloc(a, n + 1);
  memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

char *arena_strdup(arena *a, const char *s) {
  return arena_strndup(a, s, strlen(s));
}

char *arena_printf(arena *a, const char *fmt, ...) {
  va_list ap, ap2;
  va_start(ap, fmt);
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  KILN_ASSERT(n >= 0);
  char *p = arena_alloc(a, (size_t)n + 1);
  vsnprintf(p, (size_t)n + 1, fmt, ap2);
  va_end(ap2);
  return p;
}

void *arena_grow(arena *a, void *old, size_t elem, int n, int *cap) {
  int ncap = *cap ? *cap * 2 : 8;
  void *p = arena_alloc(a, elem * (size_t)ncap);
  if (n)
    memcpy(p, old, elem * (size_t)n);
  *cap = ncap;
  return p;
}
