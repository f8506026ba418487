/* ref_fd.h — central finite differences for checking the reference
 * executor's backward kernels, and a fixed-seed generator for their inputs.
 *
 * A test picks a random upstream gradient dy and defines the scalar loss
 * L(x) = sum(dy * f(x)); the analytic gradient dL/dx is then exactly what a
 * backward kernel computes from dy. fd_check_grad() compares it, element by
 * element, with (L(x + h) - L(x - h)) / 2h, perturbing the caller's buffer
 * in place (and restoring it), so the loss callback simply reads whatever
 * buffers its context points at: one callback serves every input of a
 * multi-input op.
 *
 * Why these numbers: in double precision with h = 1e-6 the truncation error
 * of the central difference is about h^2 * |L'''| ~ 1e-12 and the rounding
 * error about 1e-16 * |L| / h ~ 1e-10 * |L|. For the small tensors of the
 * tests (|L| of order 10-100) both stay below FD_RTOL = 1e-6 relative to
 * the gradient, with an absolute floor FD_ATOL = 1e-7 for gradients near
 * zero: the worst error seen in test_ref_nn is ~1e-8 (batchnorm dx over
 * 630 elements), a wrong kernel is off by O(1). Header-only (static
 * inline), so any test may include it. */
#ifndef KILN_TEST_REF_FD_H
#define KILN_TEST_REF_FD_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define FD_H 1e-6
#define FD_RTOL 1e-6
#define FD_ATOL 1e-7

/* ---- a small deterministic generator (splitmix64) ----
 * Not Philox on purpose: test inputs only need to be fixed and varied. */
typedef struct fd_rng {
  uint64_t s;
} fd_rng;

static inline uint64_t fd_next(fd_rng *r) {
  uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Uniform in [lo, hi). */
static inline double fd_uniform(fd_rng *r, double lo, double hi) {
  return lo + (hi - lo) * (double)(fd_next(r) >> 11) * 0x1.0p-53;
}

static inline void fd_fill(fd_rng *r, double *a, size_t n, double lo,
                           double hi) {
  for (size_t i = 0; i < n; i++)
    a[i] = fd_uniform(r, lo, hi);
}

/* n pairwise distinct values in [-1, 1), at least 1/n apart before a small
 * jitter, in random order: functions with an argmax (maxpool) are then
 * differentiable at x, and a perturbation of FD_H never flips a comparison
 * (as long as n < ~1e5). */
static inline void fd_fill_distinct(fd_rng *r, double *a, size_t n) {
  for (size_t i = 0; i < n; i++)
    a[i] = -1.0 + 2.0 * ((double)i + fd_uniform(r, 0.25, 0.75)) / (double)n;
  for (size_t i = n; i > 1; i--) { /* Fisher-Yates */
    size_t j = (size_t)(fd_next(r) % i);
    double t = a[i - 1];
    a[i - 1] = a[j];
    a[j] = t;
  }
}

/* sum(dy * y): the loss that makes dy the upstream gradient of y. */
static inline double fd_dot(const double *dy, const double *y, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++)
    s += dy[i] * y[i];
  return s;
}

/* Recomputes L from the buffers its context points at. */
typedef double (*fd_loss_fn)(void *ctx);

/* Checks grad[i] against the central difference of loss() in x[i], for
 * i < n, with |analytic - numeric| <= atol + rtol * max(|analytic|,
 * |numeric|). Prints the first few mismatches under `what` and returns how
 * many elements failed (0 when all agree). */
static inline int fd_check_grad_tol(const char *what, fd_loss_fn loss,
                                    void *ctx, double *x, size_t n,
                                    const double *grad, double rtol,
                                    double atol) {
  int bad = 0;
  for (size_t i = 0; i < n; i++) {
    double keep = x[i];
    x[i] = keep + FD_H;
    double lp = loss(ctx);
    x[i] = keep - FD_H;
    double lm = loss(ctx);
    x[i] = keep;
    double num = (lp - lm) / (2 * FD_H);
    double mag = fmax(fabs(num), fabs(grad[i]));
    /* !(<=) so that a NaN gradient fails too */
    if (!(fabs(num - grad[i]) <= atol + rtol * mag)) {
      if (bad < 5)
        fprintf(stderr, "  %s[%zu]: analytic %.12g, numeric %.12g\n", what, i,
                grad[i], num);
      bad++;
    }
  }
  if (bad)
    fprintf(stderr, "  %s: %d of %zu gradient elements differ\n", what, bad, n);
  return bad;
}

static inline int fd_check_grad(const char *what, fd_loss_fn loss, void *ctx,
                                double *x, size_t n, const double *grad) {
  return fd_check_grad_tol(what, loss, ctx, x, n, grad, FD_RTOL, FD_ATOL);
}

#endif
