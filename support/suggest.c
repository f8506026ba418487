/* suggest.c — "did you mean" for unknown ops, attributes, keys and names. */
#include "support/support.h"

#include <stdlib.h>
#include <string.h>

/* Optimal-string-alignment distance (Levenshtein plus adjacent swaps, the
 * commonest typo: "reul" -> "relu") with three rolling rows; names are
 * short, and longer inputs are capped so a hostile 1 MB identifier costs
 * nothing. */
int edit_distance(const char *a, const char *b) {
  enum { CAP = 64 };
  size_t n = strlen(a), m = strlen(b);
  if (n > CAP || m > CAP)
    return CAP;
  int prev2[CAP + 1] = {0}, prev[CAP + 1], cur[CAP + 1];
  for (size_t j = 0; j <= m; j++)
    prev[j] = (int)j;
  for (size_t i = 1; i <= n; i++) {
    cur[0] = (int)i;
    for (size_t j = 1; j <= m; j++) {
      int sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
      int del = prev[j] + 1, ins = cur[j - 1] + 1;
      cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
          prev2[j - 2] + 1 < cur[j])
        cur[j] = prev2[j - 2] + 1;
    }
    memcpy(prev2, prev, sizeof(int) * (m + 1));
    memcpy(prev, cur, sizeof(int) * (m + 1));
  }
  return prev[m];
}

const char *suggest_closest(const char *word, const char *const *candidates,
                            int n) {
  const char *best = NULL;
  int best_d = 0;
  /* A plausible typo: at most a third of the word's letters, and at least
   * one edit allowed (so "reul" -> "relu" but "x" -> nothing far away). */
  int limit = (int)strlen(word) / 3;
  if (limit < 1)
    limit = 1;
  for (int i = 0; i < n; i++) {
    if (!candidates[i])
      continue;
    int d = edit_distance(word, candidates[i]);
    if (d <= limit && (!best || d < best_d)) {
      best = candidates[i];
      best_d = d;
    }
  }
  return best;
}
