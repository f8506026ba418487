/* ref_act.c — activation functions, forward and backward, in double.
 *
 * The formulas are PyTorch's, so that the oracle agrees with the framework
 * users compare against: the derivative at a kink (relu, leaky_relu, elu
 * and prelu at 0) is the derivative of the x <= 0 branch, and maxout sends
 * the gradient to the first of equal maxima, as torch.max does.
 *
 * Which tensor each backward reads (y or x) is explained in
 * ref_pointwise.h: y where it determines the derivative for every attribute
 * value, x otherwise. */
#include "runtime/reference/ref_pointwise.h"

#include "support/support.h"

#include <math.h>

/* ---- relu: y = max(x, 0) ---- */

void ref_relu_fwd(const ref_t *x, ref_t *y, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    y[i] = x[i] > 0 ? x[i] : 0;
}

/* y > 0 exactly when x > 0, so the output alone decides the mask. */
void ref_relu_bwd(const ref_t *y, const ref_t *dy, ref_t *dx, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    dx[i] = y[i] > 0 ? dy[i] : 0;
}

/* ---- leaky_relu: y = x for x > 0, slope * x otherwise ---- */

void ref_leaky_relu_fwd(const ref_t *x, ref_t *y, int64_t n, double slope) {
  for (int64_t i = 0; i < n; i++)
    y[i] = x[i] > 0 ? x[i] : slope * x[i];
}

/* Reads x: with a negative slope (the format allows any finite one) the
 * sign of y no longer tells the branch. */
void ref_leaky_relu_bwd(const ref_t *x, const ref_t *dy, ref_t *dx, int64_t n,
                        double slope) {
  for (int64_t i = 0; i < n; i++)
    dx[i] = x[i] > 0 ? dy[i] : slope * dy[i];
}

/* ---- elu: y = x for x > 0, alpha * (exp(x) - 1) otherwise ---- */

void ref_elu_fwd(const ref_t *x, ref_t *y, int64_t n, double alpha) {
  for (int64_t i = 0; i < n; i++)
    y[i] = x[i] > 0 ? x[i] : alpha * expm1(x[i]); /* expm1: exact near 0 */
}

/* Reads x for the same reason as leaky_relu (alpha may be negative). */
void ref_elu_bwd(const ref_t *x, const ref_t *dy, ref_t *dx, int64_t n,
                 double alpha) {
  for (int64_t i = 0; i < n; i++)
    dx[i] = x[i] > 0 ? dy[i] : dy[i] * alpha * exp(x[i]);
}

/* ---- gelu ---- */

static const double gelu_k = 0.7978845608028654;    /* sqrt(2 / pi) */
static const double gelu_c = 0.044715;              /* Hendrycks & Gimpel */
static const double inv_sqrt2 = 0.7071067811865476; /* 1 / sqrt(2) */
static const double inv_sqrt_2pi = 0.3989422804014327;

static double gelu_one(double x, ref_gelu_approx a) {
  if (a == REF_GELU_TANH)
    return 0.5 * x * (1 + tanh(gelu_k * (x + gelu_c * x * x * x)));
  return 0.5 * x * (1 + erf(x * inv_sqrt2));
}

/* d/dx x Phi(x) = Phi(x) + x phi(x); for the tanh form, with
 * u = k (x + c x^3) and t = tanh(u):
 *   d/dx 0.5 x (1 + t) = 0.5 (1 + t) + 0.5 x (1 - t^2) k (1 + 3 c x^2). */
static double gelu_grad_one(double x, ref_gelu_approx a) {
  if (a == REF_GELU_TANH) {
    double t = tanh(gelu_k * (x + gelu_c * x * x * x));
    return 0.5 * (1 + t) +
           0.5 * x * (1 - t * t) * gelu_k * (1 + 3 * gelu_c * x * x);
  }
  double cdf = 0.5 * (1 + erf(x * inv_sqrt2));
  return cdf + x * inv_sqrt_2pi * exp(-0.5 * x * x);
}

void ref_gelu_fwd(const ref_t *x, ref_t *y, int64_t n, ref_gelu_approx a) {
  for (int64_t i = 0; i < n; i++)
    y[i] = gelu_one(x[i], a);
}

/* Reads x: gelu is not monotonic (its minimum is near x = -0.75), so y does
 * not determine x. */
void ref_gelu_bwd(const ref_t *x, const ref_t *dy, ref_t *dx, int64_t n,
                  ref_gelu_approx a) {
  for (int64_t i = 0; i < n; i++)
    dx[i] = dy[i] * gelu_grad_one(x[i], a);
}

/* ---- sigmoid and tanh: derivatives from y ---- */

void ref_sigmoid_fwd(const ref_t *x, ref_t *y, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    /* exp of a non-positive number only, so neither branch overflows. */
    if (x[i] >= 0) {
      y[i] = 1 / (1 + exp(-x[i]));
    } else {
      double e = exp(x[i]);
      y[i] = e / (1 + e);
    }
  }
}

void ref_sigmoid_bwd(const ref_t *y, const ref_t *dy, ref_t *dx, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    dx[i] = dy[i] * y[i] * (1 - y[i]);
}

void ref_tanh_fwd(const ref_t *x, ref_t *y, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    y[i] = tanh(x[i]);
}

void ref_tanh_bwd(const ref_t *y, const ref_t *dy, ref_t *dx, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    dx[i] = dy[i] * (1 - y[i] * y[i]);
}

/* ---- prelu: leaky_relu with a learned slope per channel (or shared) ---- */

/* Element (b, ch, j) of [n, c, inner] is at (b * c + ch) * inner + j. */
void ref_prelu_fwd(const ref_t *x, const ref_t *w, ref_t *y, int64_t n,
                   int64_t c, int64_t inner, bool shared) {
  for (int64_t b = 0; b < n; b++) {
    for (int64_t ch = 0; ch < c; ch++) {
      double slope = w[shared ? 0 : ch];
      int64_t base = (b * c + ch) * inner;
      for (int64_t j = 0; j < inner; j++) {
        double v = x[base + j];
        y[base + j] = v > 0 ? v : slope * v;
      }
    }
  }
}

/* Reads x: the slope is learned and may turn negative during training. */
void ref_prelu_bwd_data(const ref_t *x, const ref_t *w, const ref_t *dy,
                        ref_t *dx, int64_t n, int64_t c, int64_t inner,
                        bool shared) {
  for (int64_t b = 0; b < n; b++) {
    for (int64_t ch = 0; ch < c; ch++) {
      double slope = w[shared ? 0 : ch];
      int64_t base = (b * c + ch) * inner;
      for (int64_t j = 0; j < inner; j++) {
        int64_t i = base + j;
        dx[i] = x[i] > 0 ? dy[i] : slope * dy[i];
      }
    }
  }
}

/* dL/dw[ch] = sum of dy * x over the elements of channel ch with x <= 0
 * (all channels into w[0] when shared). */
void ref_prelu_bwd_weight(const ref_t *x, const ref_t *dy, ref_t *dw, int64_t n,
                          int64_t c, int64_t inner, bool shared) {
  int64_t nw = shared ? 1 : c;
  for (int64_t ch = 0; ch < nw; ch++)
    dw[ch] = 0;
  for (int64_t b = 0; b < n; b++) {
    for (int64_t ch = 0; ch < c; ch++) {
      int64_t base = (b * c + ch) * inner;
      double sum = 0;
      for (int64_t j = 0; j < inner; j++) {
        int64_t i = base + j;
        if (!(x[i] > 0))
          sum += dy[i] * x[i];
      }
      dw[shared ? 0 : ch] += sum;
    }
  }
}

/* ---- maxout: max over groups of `pieces` consecutive channels ---- */

/* The channel (within group g of batch b) holding the group's first
 * maximum, as an offset from the group's first channel. */
static int64_t maxout_arg(const ref_t *x, int64_t b, int64_t g, int64_t j,
                          int64_t c, int64_t inner, int64_t pieces) {
  int64_t best = 0;
  const ref_t *p = x + (b * c + g * pieces) * inner + j;
  for (int64_t k = 1; k < pieces; k++) {
    if (p[k * inner] > p[best * inner]) /* strict: the first max wins */
      best = k;
  }
  return best;
}

void ref_maxout_fwd(const ref_t *x, ref_t *y, int64_t n, int64_t c,
                    int64_t inner, int64_t pieces) {
  KILN_ASSERT(pieces > 0 && c % pieces == 0);
  int64_t groups = c / pieces;
  for (int64_t b = 0; b < n; b++) {
    for (int64_t g = 0; g < groups; g++) {
      for (int64_t j = 0; j < inner; j++) {
        int64_t k = maxout_arg(x, b, g, j, c, inner, pieces);
        y[(b * groups + g) * inner + j] =
            x[(b * c + g * pieces + k) * inner + j];
      }
    }
  }
}

/* Recomputes the argmax from x instead of storing an index tensor. */
void ref_maxout_bwd(const ref_t *x, const ref_t *dy, ref_t *dx, int64_t n,
                    int64_t c, int64_t inner, int64_t pieces) {
  KILN_ASSERT(pieces > 0 && c % pieces == 0);
  int64_t groups = c / pieces;
  for (int64_t i = 0; i < n * c * inner; i++)
    dx[i] = 0;
  for (int64_t b = 0; b < n; b++) {
    for (int64_t g = 0; g < groups; g++) {
      for (int64_t j = 0; j < inner; j++) {
        int64_t k = maxout_arg(x, b, g, j, c, inner, pieces);
        dx[(b * c + g * pieces + k) * inner + j] =
            dy[(b * groups + g) * inner + j];
      }
    }
  }
}
