/* ref_norm.c — batchnorm (training and eval) and layernorm, forward and
 * backward.
 *
 * Statistics are computed in two passes (mean, then the mean of squared
 * deviations) rather than from sum and sum of squares: this is the oracle,
 * so it takes the numerically careful route and leaves the one-pass form
 * (which the fused kernels use) to be checked against it.
 *
 * BatchNorm follows PyTorch exactly: the batch statistics normalise with the
 * biased variance, the running variance is updated with the unbiased one,
 * and running = (1 - momentum)*running + momentum*batch. Its train/eval
 * mode is explicit in the function called, never a flag that could be
 * forgotten.
 *
 * Guarantees: outputs are written in full, never accumulated into. */
#include "runtime/reference/ref_nn.h"
#include "support/support.h"

#include <math.h>

/* Element (b, ch, s) of a [n, c, spatial] tensor. */
static int64_t bn_index(const ref_bn_dims *d, int b, int ch, int64_t s) {
  return ((int64_t)b * d->c + ch) * d->spatial + s;
}

static int64_t bn_count(const ref_bn_dims *d) {
  KILN_ASSERT(d->n > 0 && d->c > 0 && d->spatial > 0);
  return (int64_t)d->n * d->spatial;
}

void ref_batchnorm_forward_train(const ref_bn_dims *d, double eps,
                                 double momentum, const ref_t *x,
                                 const ref_t *gamma, const ref_t *beta,
                                 ref_t *y, ref_t *save_mean,
                                 ref_t *save_inv_std, ref_t *running_mean,
                                 ref_t *running_var) {
  const int64_t m = bn_count(d);
  for (int ch = 0; ch < d->c; ch++) {
    ref_t sum = 0;
    for (int b = 0; b < d->n; b++)
      for (int64_t s = 0; s < d->spatial; s++)
        sum += x[bn_index(d, b, ch, s)];
    const ref_t mean = sum / (ref_t)m;
    ref_t sq = 0;
    for (int b = 0; b < d->n; b++)
      for (int64_t s = 0; s < d->spatial; s++) {
        const ref_t dev = x[bn_index(d, b, ch, s)] - mean;
        sq += dev * dev;
      }
    const ref_t var = sq / (ref_t)m; /* biased: what normalises */
    const ref_t inv_std = 1.0 / sqrt(var + eps);
    const ref_t g = gamma ? gamma[ch] : 1.0, sh = beta ? beta[ch] : 0.0;
    for (int b = 0; b < d->n; b++)
      for (int64_t s = 0; s < d->spatial; s++) {
        const int64_t i = bn_index(d, b, ch, s);
        y[i] = g * (x[i] - mean) * inv_std + sh;
      }
    save_mean[ch] = mean;
    save_inv_std[ch] = inv_std;
    if (running_mean)
      running_mean[ch] = (1 - momentum) * running_mean[ch] + momentum * mean;
    if (running_var) {
      /* Unbiased, as PyTorch stores it (count 1: see ref_nn.h). */
      const ref_t unbiased = m > 1 ? sq / (ref_t)(m - 1) : var;
      running_var[ch] = (1 - momentum) * running_var[ch] + momentum * unbiased;
    }
  }
}

void ref_batchnorm_forward_eval(const ref_bn_dims *d, double eps,
                                const ref_t *x, const ref_t *gamma,
                                const ref_t *beta, const ref_t *running_mean,
                                const ref_t *running_var, ref_t *y) {
  (void)bn_count(d);
  for (int ch = 0; ch < d->c; ch++) {
    const ref_t inv_std = 1.0 / sqrt(running_var[ch] + eps);
    const ref_t g = gamma ? gamma[ch] : 1.0, sh = beta ? beta[ch] : 0.0;
    for (int b = 0; b < d->n; b++)
      for (int64_t s = 0; s < d->spatial; s++) {
        const int64_t i = bn_index(d, b, ch, s);
        y[i] = g * (x[i] - running_mean[ch]) * inv_std + sh;
      }
  }
}

/* The mean and variance depend on every x of the channel, hence the two
 * correction terms: dx is dy's component orthogonal to the constant and
 * to xhat, scaled by gamma*inv_std. */
void ref_batchnorm_backward_train(const ref_bn_dims *d, const ref_t *x,
                                  const ref_t *dy, const ref_t *gamma,
                                  const ref_t *save_mean,
                                  const ref_t *save_inv_std, ref_t *dx,
                                  ref_t *dgamma, ref_t *dbeta) {
  const int64_t m = bn_count(d);
  for (int ch = 0; ch < d->c; ch++) {
    const ref_t mean = save_mean[ch], inv_std = save_inv_std[ch];
    ref_t sum_dy = 0, sum_dy_xhat = 0;
    for (int b = 0; b < d->n; b++)
      for (int64_t s = 0; s < d->spatial; s++) {
        const int64_t i = bn_index(d, b, ch, s);
        sum_dy += dy[i];
        sum_dy_xhat += dy[i] * (x[i] - mean) * inv_std;
      }
    if (dgamma)
      dgamma[ch] = sum_dy_xhat;
    if (dbeta)
      dbeta[ch] = sum_dy;
    if (!dx)
      continue;
    const ref_t k = (gamma ? gamma[ch] : 1.0) * inv_std / (ref_t)m;
    for (int b = 0; b < d->n; b++)
      for (int64_t s = 0; s < d->spatial; s++) {
        const int64_t i = bn_index(d, b, ch, s);
        const ref_t xhat = (x[i] - mean) * inv_std;
        dx[i] = k * ((ref_t)m * dy[i] - sum_dy - xhat * sum_dy_xhat);
      }
  }
}

void ref_batchnorm_backward_eval(const ref_bn_dims *d, double eps,
                                 const ref_t *x, const ref_t *dy,
                                 const ref_t *gamma, const ref_t *running_mean,
                                 const ref_t *running_var, ref_t *dx,
                                 ref_t *dgamma, ref_t *dbeta) {
  (void)bn_count(d);
  for (int ch = 0; ch < d->c; ch++) {
    const ref_t inv_std = 1.0 / sqrt(running_var[ch] + eps);
    const ref_t g = gamma ? gamma[ch] : 1.0;
    ref_t sum_dy = 0, sum_dy_xhat = 0;
    for (int b = 0; b < d->n; b++)
      for (int64_t s = 0; s < d->spatial; s++) {
        const int64_t i = bn_index(d, b, ch, s);
        sum_dy += dy[i];
        sum_dy_xhat += dy[i] * (x[i] - running_mean[ch]) * inv_std;
        if (dx)
          dx[i] = dy[i] * g * inv_std;
      }
    if (dgamma)
      dgamma[ch] = sum_dy_xhat;
    if (dbeta)
      dbeta[ch] = sum_dy;
  }
}

void ref_layernorm_forward(int64_t rows, int dim, double eps, const ref_t *x,
                           const ref_t *gamma, const ref_t *beta, ref_t *y,
                           ref_t *save_mean, ref_t *save_inv_std) {
  KILN_ASSERT(dim > 0);
  for (int64_t r = 0; r < rows; r++) {
    const ref_t *xr = x + r * dim;
    ref_t *yr = y + r * dim;
    ref_t sum = 0, sq = 0;
    for (int j = 0; j < dim; j++)
      sum += xr[j];
    const ref_t mean = sum / dim;
    for (int j = 0; j < dim; j++)
      sq += (xr[j] - mean) * (xr[j] - mean);
    const ref_t inv_std = 1.0 / sqrt(sq / dim + eps);
    for (int j = 0; j < dim; j++)
      yr[j] = (gamma ? gamma[j] : 1.0) * (xr[j] - mean) * inv_std +
              (beta ? beta[j] : 0.0);
    save_mean[r] = mean;
    save_inv_std[r] = inv_std;
  }
}

void ref_layernorm_backward(int64_t rows, int dim, const ref_t *x,
                            const ref_t *dy, const ref_t *gamma,
                            const ref_t *save_mean, const ref_t *save_inv_std,
                            ref_t *dx, ref_t *dgamma, ref_t *dbeta) {
  KILN_ASSERT(dim > 0);
  for (int j = 0; j < dim; j++) {
    if (dgamma)
      dgamma[j] = 0;
    if (dbeta)
      dbeta[j] = 0;
  }
  for (int64_t r = 0; r < rows; r++) {
    const ref_t *xr = x + r * dim, *gr = dy + r * dim;
    const ref_t mean = save_mean[r], inv_std = save_inv_std[r];
    /* g = dy*gamma is the gradient reaching xhat; the row statistics then
     * project out its mean and its component along xhat. */
    ref_t sum_g = 0, sum_g_xhat = 0;
    for (int j = 0; j < dim; j++) {
      const ref_t xhat = (xr[j] - mean) * inv_std;
      const ref_t g = gr[j] * (gamma ? gamma[j] : 1.0);
      sum_g += g;
      sum_g_xhat += g * xhat;
      if (dgamma)
        dgamma[j] += gr[j] * xhat;
      if (dbeta)
        dbeta[j] += gr[j];
    }
    if (!dx)
      continue;
    for (int j = 0; j < dim; j++) {
      const ref_t xhat = (xr[j] - mean) * inv_std;
      const ref_t g = gr[j] * (gamma ? gamma[j] : 1.0);
      dx[r * dim + j] = inv_std / dim * (dim * g - sum_g - xhat * sum_g_xhat);
    }
  }
}
