/* train_early.c — early stopping on a validation-loss plateau, the rule of
 * Keras EarlyStopping(monitor='val_loss', mode='min', patience, min_delta):
 *
 *   improvement  <=>  val_loss < best - min_delta   (strict)
 *   on improvement: best = val_loss, bad_epochs = 0
 *   otherwise:      bad_epochs += 1; stop when bad_epochs >= patience
 *
 * The comparison is written so that NaN is never an improvement (every
 * comparison with NaN is false): a diverged run counts down to its stop
 * instead of resetting the count. Unlike Keras, a NaN first epoch counts
 * as bad too (Keras never stops after its first epoch); with patience 1
 * that stops a run whose first validation is already NaN, which is what a
 * user watching for plateaus wants. Patience 0 turns the rule off.
 *
 * The state is three numbers (best, best_epoch, bad_epochs) so that a
 * checkpoint can carry it and a resumed run stops exactly where an
 * uninterrupted one would (train_ckpt.h). */
#include "runtime/train/train_report.h"

#include <math.h>

void train_early_init(train_early *e, int64_t patience, double min_delta) {
  *e = (train_early){.patience = patience,
                     .min_delta = min_delta,
                     .best = INFINITY,
                     .best_epoch = -1};
}

bool train_early_observe(train_early *e, double val_loss) {
  int64_t epoch = e->epochs_seen++;
  /* best - min_delta is inf - d = inf before the first observation, so any
   * finite loss improves on it. */
  if (val_loss < e->best - e->min_delta) {
    e->best = val_loss;
    e->best_epoch = epoch;
    e->bad_epochs = 0;
    return false;
  }
  e->bad_epochs++;
  return e->patience > 0 && e->bad_epochs >= e->patience;
}
