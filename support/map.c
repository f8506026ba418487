/* map.c — string-keyed open-addressing hash map (FNV-1a, linear probing),
 * arena-backed: there is no delete, maps die with their compilation. */
#include "support/support.h"

#include <string.h>

static uint64_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

void strmap_init(strmap *m, arena *a) {
  m->a = a;
  m->keys = NULL;
  m->vals = NULL;
  m->cap = m->len = 0;
}

static int find_slot(const strmap *m, const char *key) {
  int mask = m->cap - 1;
  for (int i = (int)(hash_str(key) & (uint64_t)mask);; i = (i + 1) & mask)
    if (!m->keys[i] || strcmp(m->keys[i], key) == 0)
      return i;
}

void *strmap_get(const strmap *m, const char *key) {
  if (!m->cap)
    return NULL;
  int i = find_slot(m, key);
  return m->keys[i] ? m->vals[i] : NULL;
}

static void rehash(strmap *m, int cap) {
  strmap old = *m;
  m->cap = cap;
  m->len = 0;
  m->keys = ARENA_ARRAY(m->a, const char *, cap);
  m->vals = ARENA_ARRAY(m->a, void *, cap);
  for (int i = 0; i < old.cap; i++)
    if (old.keys[i])
      strmap_put(m, old.keys[i], old.vals[i]);
}

bool strmap_put(strmap *m, const char *key, void *val) {
  if ((m->len + 1) * 4 >= m->cap * 3) /* keep the load under 3/4 */
    rehash(m, m->cap ? m->cap * 2 : 16);
  int i = find_slot(m, key);
  if (m->keys[i])
    return false;
  m->keys[i] = key;
  m->vals[i] = val;
  m->len++;
  return true;
}
