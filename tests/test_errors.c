/* test_errors.c — the malformed-file corpus: every tests/errors/NAME.kiln
 * holds one mistake and starts with a line
 *
 *   # expect: 3:10: error: undefined name 'relu1' (did you mean 'relu_1'?)
 *
 * The file must fail to load, and its message must contain the text after
 * "# expect: " (which includes line:col). The same files seed the parser
 * fuzzer. Run from the source root (ctest does). */
#include <kiln.h>

#include "test.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdlib.h>

enum { MAX_FILES = 256, MIN_FILES = 30 };

static char *paths[MAX_FILES];
static int n_paths;

static int compare_strings(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && strcmp(s + n - k, suffix) == 0;
}

static void list_files(void) {
  DIR *d = opendir("tests/errors");
  if (!d) {
    fprintf(stderr, "cannot open tests/errors (run from the source root)\n");
    return;
  }
  struct dirent *e;
  while ((e = readdir(d)) && n_paths < MAX_FILES) {
    if (e->d_name[0] == '.' || !ends_with(e->d_name, ".kiln"))
      continue;
    size_t n = strlen("tests/errors/") + strlen(e->d_name) + 1;
    char *p = malloc(n);
    snprintf(p, n, "tests/errors/%s", e->d_name);
    paths[n_paths++] = p;
  }
  closedir(d);
  qsort(paths, (size_t)n_paths, sizeof paths[0], compare_strings);
}

/* The expectation on the first line, or false when there is none. */
static bool read_expectation(const char *path, char *out, size_t size) {
  FILE *f = fopen(path, "r");
  if (!f)
    return false;
  bool ok = fgets(out, (int)size, f) != NULL;
  fclose(f);
  static const char prefix[] = "# expect: ";
  if (!ok || strncmp(out, prefix, strlen(prefix)) != 0)
    return false;
  memmove(out, out + strlen(prefix), strlen(out) - strlen(prefix) + 1);
  out[strcspn(out, "\n")] = '\0';
  return *out != '\0';
}

TEST(test_corpus_size) {
  CHECK(n_paths >= MIN_FILES);
}

TEST(test_every_file_fails_as_expected) {
  for (int i = 0; i < n_paths; i++) {
    char expect[512];
    if (!read_expectation(paths[i], expect, sizeof expect)) {
      fprintf(stderr, "%s: no '# expect: ' first line\n", paths[i]);
      test_failures_++;
      continue;
    }
    kiln_error err;
    kiln_model *m = kiln_model_load_file(paths[i], &err);
    if (m) {
      fprintf(stderr, "%s: loaded, expected \"%s\"\n", paths[i], expect);
      test_failures_++;
      kiln_model_free(m);
      continue;
    }
    if (err.status == KILN_OK || !strstr(err.message, expect)) {
      fprintf(stderr, "%s: expected \"%s\", got:\n%s\n", paths[i], expect,
              err.message);
      test_failures_++;
    }
  }
}

int main(void) {
  list_files();
  RUN(test_corpus_size);
  RUN(test_every_file_fails_as_expected);
  for (int i = 0; i < n_paths; i++)
    free(paths[i]);
  return TEST_SUMMARY();
}
