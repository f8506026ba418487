/* train_ema.c — Polyak averaging of the weights (an exponential moving
 * average, as timm's ModelEmaV2 and torch.optim.swa_utils.AveragedModel
 * with an EMA avg_fn keep it):
 *
 *   ema = weights at initialisation (step 0)
 *   ema = decay * ema + (1 - decay) * param     after every optimizer step
 *
 * Evaluation uses the EMA weights: train_ema_swap exchanges them with the
 * live weights in place (no third copy), and a second swap after the
 * evaluation restores the training state bit for bit. The checkpoint name
 * of the EMA copy of a parameter is "<param>.ema". Only trainable
 * parameters are averaged; BatchNorm's running statistics are already
 * averages. */
#include "runtime/train/train.h"

#include <string.h>

void train_ema_init(train_ema *e, float *mem, const float *param, int64_t n) {
  KILN_ASSERT(n >= 0 && (n == 0 || (mem && param)));
  e->n = n;
  e->w = mem;
  if (n > 0)
    memcpy(mem, param, (size_t)n * sizeof(float));
}

void train_ema_update(train_ema *e, const float *param, double decay) {
  KILN_ASSERT(decay >= 0 && decay < 1);
  /* Computed as ema + (1 - decay) * (param - ema) in double: the same
   * value, but it stays exactly at param when the two agree, so a frozen
   * weight's EMA never drifts from rounding. */
  double a = 1 - decay;
  for (int64_t i = 0; i < e->n; i++)
    e->w[i] = (float)(e->w[i] + a * ((double)param[i] - e->w[i]));
}

void train_ema_swap(train_ema *e, float *param) {
  for (int64_t i = 0; i < e->n; i++) {
    float t = e->w[i];
    e->w[i] = param[i];
    param[i] = t;
  }
}
