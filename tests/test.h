/* test.h — a minimal test harness: TEST(name) functions registered by
 * listing them in main via RUN(name); CHECK* record failures with file and
 * line and keep going. Each test program prints "N passed, N failed" and
 * exits non-zero on any failure, so ctest and CI both see it fail. */
#ifndef KILN_TEST_H
#define KILN_TEST_H

#include <math.h>
#include <stdio.h>
#include <string.h>

static int test_failures_;
static int test_passed_, test_failed_;

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      test_failures_++;                                                        \
    }                                                                          \
  } while (0)

#define CHECK_EQ_INT(a, b)                                                     \
  do {                                                                         \
    long long a_ = (long long)(a), b_ = (long long)(b);                        \
    if (a_ != b_) {                                                            \
      fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld vs %lld)\n",        \
              __FILE__, __LINE__, #a, #b, a_, b_);                             \
      test_failures_++;                                                        \
    }                                                                          \
  } while (0)

#define CHECK_STR_CONTAINS(hay, needle)                                        \
  do {                                                                         \
    const char *h_ = (hay), *n_ = (needle);                                    \
    if (!h_ || !strstr(h_, n_)) {                                              \
      fprintf(stderr, "%s:%d: CHECK failed: \"%s\" not found in:\n%s\n",       \
              __FILE__, __LINE__, n_, h_ ? h_ : "(null)");                     \
      test_failures_++;                                                        \
    }                                                                          \
  } while (0)

#define CHECK_NEAR(a, b, tol)                                                  \
  do {                                                                         \
    double a_ = (a), b_ = (b);                                                 \
    if (!(fabs(a_ - b_) <= (tol))) {                                           \
      fprintf(stderr, "%s:%d: CHECK failed: %s ~ %s (%.9g vs %.9g)\n",         \
              __FILE__, __LINE__, #a, #b, a_, b_);                             \
      test_failures_++;                                                        \
    }                                                                          \
  } while (0)

#define TEST(name) static void name(void)

#define RUN(name)                                                              \
  do {                                                                         \
    int before_ = test_failures_;                                              \
    name();                                                                    \
    if (test_failures_ == before_) {                                           \
      test_passed_++;                                                          \
    } else {                                                                   \
      test_failed_++;                                                          \
      fprintf(stderr, "FAIL %s\n", #name);                                     \
    }                                                                          \
  } while (0)

#define TEST_SUMMARY()                                                         \
  (printf("%d passed, %d failed\n", test_passed_, test_failed_),               \
   test_failed_ ? 1 : 0)

#endif
