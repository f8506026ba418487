/* train_clip.c — global gradient-norm clipping, as
 * torch.nn.utils.clip_grad_norm_(params, max_norm) with norm_type 2:
 *
 *   total = sqrt(sum over all tensors of sum g^2)
 *   coef  = max_norm / (total + 1e-6)
 *   every gradient *= coef when coef < 1
 *
 * The norm is over all parameters together (not per tensor), so clipping
 * keeps the direction of the whole update. The 1e-6 keeps the division
 * finite and makes a gradient of norm exactly max_norm shrink a hair, as
 * PyTorch's does. The sum runs in double: a float accumulator over 25 M
 * parameters loses the small gradients.
 *
 * A non-finite norm (an overflow or a NaN in some gradient) leaves the
 * gradients untouched and is returned as is, so the caller can skip the
 * step the way AMP's GradScaler does; PyTorch would instead multiply
 * everything by NaN or 0 (error_if_nonfinite=False). */
#include "runtime/train/train.h"

#include <math.h>

double train_clip_grad_norm(float *const *grads, const int64_t *lens,
                            int n_tensors, double max_norm) {
  KILN_ASSERT(max_norm > 0 && n_tensors >= 0);
  double sq = 0;
  for (int k = 0; k < n_tensors; k++) {
    const float *g = grads[k];
    for (int64_t i = 0; i < lens[k]; i++)
      sq += (double)g[i] * g[i];
  }
  double total = sqrt(sq);
  if (!isfinite(total))
    return total;
  double coef = max_norm / (total + 1e-6);
  if (coef < 1) {
    for (int k = 0; k < n_tensors; k++) {
      float *g = grads[k];
      for (int64_t i = 0; i < lens[k]; i++)
        g[i] = (float)(g[i] * coef);
    }
  }
  return total;
}
