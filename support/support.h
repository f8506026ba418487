/* support.h — the small utilities every stage uses, grouped by the file that
 * defines them: arenas, growable strings, source locations and diagnostics,
 * a string map, and "did you mean" suggestions.
 *
 * Error channels (see ../shared/style.md):
 *   1. user input  -> diag_error(): "file:line:col: error: ..." plus the line
 *                     and a caret, returned to the caller as a kiln_status;
 *   2. libraries   -> each backend's check macro keeps the library message;
 *   3. invariants  -> KILN_ASSERT aborts with file and line.
 * The library never calls exit(). */
#ifndef KILN_SUPPORT_H
#define KILN_SUPPORT_H

#include "kiln.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#define KILN_ASSERT(x)                                                         \
  do {                                                                         \
    if (!(x))                                                                  \
      support_assert_fail(__FILE__, __LINE__, #x);                             \
  } while (0)

#if defined(__GNUC__)
#define KILN_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define KILN_NORETURN __attribute__((noreturn))
#else
#define KILN_PRINTF(f, a)
#define KILN_NORETURN
#endif

/* assert.c */
KILN_NORETURN void support_assert_fail(const char *file, int line,
                                       const char *expr);

/* arena.c — bump allocation for everything that lives as long as one
 * compilation; freed all at once. Returned memory is zeroed. */
typedef struct arena_chunk arena_chunk;
typedef struct arena {
  arena_chunk *head;
  size_t used_total;
} arena;

void arena_init(arena *a);
void arena_free(arena *a);
void *arena_alloc(arena *a, size_t size);
char *arena_strdup(arena *a, const char *s);
char *arena_strndup(arena *a, const char *s, size_t n);
char *arena_printf(arena *a, const char *fmt, ...) KILN_PRINTF(2, 3);
#define ARENA_NEW(a, T) ((T *)arena_alloc((a), sizeof(T)))
#define ARENA_ARRAY(a, T, n) ((T *)arena_alloc((a), sizeof(T) * (size_t)(n)))

/* A growable array of pointers or plain values kept in an arena: grows by
 * copying (the old block is simply abandoned to the arena). */
void *arena_grow(arena *a, void *old, size_t elem, int n, int *cap);
#define ARENA_PUSH(a, arr, n, cap, v)                                          \
  do {                                                                         \
    if ((n) == (cap))                                                          \
      (arr) = arena_grow((a), (arr), sizeof(*(arr)), (n), &(cap));             \
    (arr)[(n)++] = (v);                                                        \
  } while (0)

/* strbuf.c — a heap string that grows; used to build messages and output. */
typedef struct strbuf {
  char *data;
  size_t len, cap;
} strbuf;

void strbuf_init(strbuf *b);
void strbuf_free(strbuf *b);
void strbuf_putc(strbuf *b, char c);
void strbuf_puts(strbuf *b, const char *s);
void strbuf_printf(strbuf *b, const char *fmt, ...) KILN_PRINTF(2, 3);
void strbuf_vprintf(strbuf *b, const char *fmt, va_list ap);
/* Thousands separators: 11689512 -> "11,689,512". */
void strbuf_put_count(strbuf *b, int64_t v);

/* diag.c — source files and located errors. */
typedef struct src_file {
  const char *name; /* as the user gave it */
  const char *text; /* NUL-terminated, owned by the caller's arena */
  size_t len;
} src_file;

typedef struct kiln_loc {
  const src_file *file; /* NULL: no location (e.g. a flag) */
  int line, col;        /* 1-based */
} kiln_loc;

/* Sets err->status and err->message to
 *   "file:line:col: error: <msg>\n<the line>\n<spaces>^\n"
 * (without the location part when loc.file is NULL). Always returns status,
 * so callers can write `return diag_error(...)`. */
kiln_status diag_error(kiln_error *err, kiln_status status, kiln_loc loc,
                       const char *fmt, ...) KILN_PRINTF(4, 5);
/* Appends a "note:" line (with its own location, if any) to err->message. */
void diag_note(kiln_error *err, kiln_loc loc, const char *fmt, ...)
    KILN_PRINTF(3, 4);
const char *kiln_status_name(kiln_status s);

/* map.c — open-addressing map from strings to pointers (arena-backed). */
typedef struct strmap {
  arena *a;
  const char **keys;
  void **vals;
  int cap, len;
} strmap;

void strmap_init(strmap *m, arena *a);
void *strmap_get(const strmap *m, const char *key);
/* Returns false (and changes nothing) when the key is already present. */
bool strmap_put(strmap *m, const char *key, void *val);

/* suggest.c — the closest candidate by edit distance, or NULL when none is
 * close enough to be a plausible typo. */
const char *suggest_closest(const char *word, const char *const *candidates,
                            int n);
int edit_distance(const char *a, const char *b);

/* philox.c — Philox4x32-10 (Salmon et al. 2011; Random123, cuRAND), the
 * counter-based generator shared by the CPU and the generated GPU kernels.
 * philox_block/philox_u32/philox_uniform map (seed, stream, index) to
 * counter and key words as documented in philox.c; the code generators
 * reproduce that mapping bit for bit. */
void philox4x32_10(const uint32_t ctr[4], const uint32_t key[2],
                   uint32_t out[4]);
/* The same with `rounds` rounds (1..16); Random123 also publishes 7-round
 * known answers, which pin the key schedule independently of the count. */
void philox4x32_r(int rounds, const uint32_t ctr[4], const uint32_t key[2],
                  uint32_t out[4]);
/* (x >> 8) * 2^-24: a float in [0, 1) on a grid of 2^-24, exact. */
float philox_to_uniform(uint32_t x);
void philox_block(uint64_t seed, uint64_t stream, uint64_t block,
                  uint32_t out[4]);
uint32_t philox_u32(uint64_t seed, uint64_t stream, uint64_t index);
float philox_uniform(uint64_t seed, uint64_t stream, uint64_t index);

#endif
