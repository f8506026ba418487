/* ref_loss.c — the losses: cross_entropy (with label smoothing) and mse.
 *
 * cross_entropy follows torch.nn.functional.cross_entropy with
 * label_smoothing = eps: the target of row r is
 *     t_rj = (1 - eps) [j == label_r] + eps / K,
 * and the row's loss is -sum_j t_rj log softmax(z_r)_j. Because the target
 * sums to 1, the gradient of a row is softmax(z_r) - t_r. "mean" divides by
 * the number of rows N (PyTorch's mean without class weights).
 *
 * log softmax is computed as (z_j - max) - log(sum exp(z_i - max)), which
 * neither overflows for large logits nor underflows to log(0) for very
 * negative ones.
 *
 * Labels come from the user's data set: a label outside [0, K) is reported
 * (the functions return -1 before writing anything), never used as an
 * index. */
#include "runtime/reference/ref_pointwise.h"

#include <math.h>

int64_t ref_labels_find_invalid(const int32_t *labels, int64_t n, int64_t k) {
  for (int64_t r = 0; r < n; r++) {
    if (labels[r] < 0 || labels[r] >= k)
      return r;
  }
  return -1;
}

/* max_j z_j and log sum_j exp(z_j - max) of one row. */
static void row_lse(const ref_t *z, int64_t k, double *mx, double *lse) {
  double m = -INFINITY;
  for (int64_t j = 0; j < k; j++)
    m = fmax(m, z[j]);
  double s = 0;
  for (int64_t j = 0; j < k; j++)
    s += exp(z[j] - m);
  *mx = m;
  *lse = log(s);
}

int ref_cross_entropy_fwd(const ref_t *logits, const int32_t *labels, int64_t n,
                          int64_t k, double smoothing, ref_reduction red,
                          ref_t *loss) {
  if (ref_labels_find_invalid(labels, n, k) >= 0)
    return -1;
  double total = 0;
  for (int64_t r = 0; r < n; r++) {
    const ref_t *z = logits + r * k;
    double mx, lse;
    row_lse(z, k, &mx, &lse);
    /* -sum_j t_j logp_j = (1 - eps) * nll + eps * mean_j(-logp_j). */
    double nll = -(z[labels[r]] - mx - lse);
    double sum_neg_logp = 0;
    for (int64_t j = 0; j < k; j++)
      sum_neg_logp -= z[j] - mx - lse;
    total += (1 - smoothing) * nll + smoothing * sum_neg_logp / (double)k;
  }
  *loss = red == REF_REDUCTION_MEAN && n > 0 ? total / (double)n : total;
  return 0;
}

int ref_cross_entropy_bwd(const ref_t *logits, const int32_t *labels, int64_t n,
                          int64_t k, double smoothing, ref_reduction red,
                          ref_t dloss, ref_t *dlogits) {
  if (ref_labels_find_invalid(labels, n, k) >= 0)
    return -1;
  double scale = red == REF_REDUCTION_MEAN && n > 0 ? dloss / (double)n : dloss;
  for (int64_t r = 0; r < n; r++) {
    const ref_t *z = logits + r * k;
    ref_t *dz = dlogits + r * k;
    double mx, lse;
    row_lse(z, k, &mx, &lse);
    for (int64_t j = 0; j < k; j++) {
      double t = smoothing / (double)k + (j == labels[r] ? 1 - smoothing : 0);
      dz[j] = (exp(z[j] - mx - lse) - t) * scale;
    }
  }
  return 0;
}

/* ---- mse: mean or sum of (p - t)^2, as torch.nn.functional.mse_loss ---- */

ref_t ref_mse_fwd(const ref_t *p, const ref_t *t, int64_t n,
                  ref_reduction red) {
  double s = 0;
  for (int64_t i = 0; i < n; i++) {
    double d = p[i] - t[i];
    s += d * d;
  }
  return red == REF_REDUCTION_MEAN && n > 0 ? s / (double)n : s;
}

/* d/dp (p - t)^2 = 2 (p - t); the target's gradient is its negative (the
 * target may itself be computed, e.g. an autoencoder's input). */
void ref_mse_bwd(const ref_t *p, const ref_t *t, int64_t n, ref_reduction red,
                 ref_t dloss, ref_t *dp, ref_t *dt) {
  double scale = red == REF_REDUCTION_MEAN && n > 0 ? dloss / (double)n : dloss;
  for (int64_t i = 0; i < n; i++) {
    double g = 2 * (p[i] - t[i]) * scale;
    if (dp)
      dp[i] = g;
    if (dt)
      dt[i] = -g;
  }
}
