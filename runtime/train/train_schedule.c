/* train_schedule.c — the learning rate of each step, from the `train`
 * section's optimizer lr, base_batch and schedule.
 *
 * Base LR. With base_batch > 0 the linear scaling rule of Goyal et al.
 * 2017 ("Accurate, large minibatch SGD") applies: lr * global_batch /
 * base_batch, global_batch being the examples of one step over all
 * data-parallel replicas. min_lr is an absolute value and is not scaled.
 *
 * Warmup. W steps (warmup_steps, or warmup_epochs * steps_per_epoch rounded
 * to the nearest step) ramp linearly from 0: the LR of step s < W is
 * f(s) * (s + 1) / W, where f is the schedule below, so the first step
 * already moves (a step with LR 0 would be wasted) and step W - 1 reaches
 * f. Steps count from 0.
 *
 * Schedules f(s), with B the base LR:
 *   constant      B
 *   step          B * gamma^k, k = number of milestones m with
 *                 epoch >= m, epoch = s / steps_per_epoch (integer
 *                 division), as torch.optim.lr_scheduler.MultiStepLR
 *                 stepped once per epoch
 *   cosine        B until W, then min_lr + (B - min_lr) (1 + cos(pi p)) / 2
 *   linear        B until W, then B + (min_lr - B) p
 *                 with p = (s - W) / max(1, total - W) clamped to [0, 1]:
 *                 the post-warmup steps go from B (p = 0 at s = W) towards
 *                 min_lr, reached at s = total (one past the last step, as
 *                 CosineAnnealingLR with T_max = total - W and Hugging
 *                 Face's get_cosine_schedule_with_warmup)
 *   inverse_sqrt  W > 0: B * sqrt(W / s) for s >= W (B at s = W, so it
 *                 continues the warmup without a jump; fairseq's rule);
 *                 W = 0: B / sqrt(s + 1) (B at step 0, half of it at 3) */
#include "runtime/train/train.h"

#include <math.h>

/* M_PI is XSI, not C17. */
#define TRAIN_PI 3.14159265358979323846

double train_lr_base(const ir_train_cfg *c, int64_t global_batch) {
  double lr = c->optim.lr;
  if (c->base_batch > 0) {
    KILN_ASSERT(global_batch > 0);
    lr *= (double)global_batch / (double)c->base_batch;
  }
  return lr;
}

int64_t train_warmup_steps(const ir_schedule *s, int64_t steps_per_epoch) {
  if (s->warmup_steps > 0)
    return s->warmup_steps;
  if (s->warmup_epochs > 0)
    return (int64_t)llround(s->warmup_epochs * (double)steps_per_epoch);
  return 0;
}

/* Fraction of the post-warmup steps done at step s, in [0, 1]. */
static double progress(int64_t s, int64_t warmup, int64_t total) {
  int64_t span = total - warmup > 1 ? total - warmup : 1;
  double p = (double)(s - warmup) / (double)span;
  return p < 0 ? 0 : p > 1 ? 1 : p;
}

double train_lr_at(const ir_schedule *s, double base_lr, int64_t step,
                   int64_t steps_per_epoch, int64_t total_steps) {
  KILN_ASSERT(step >= 0 && steps_per_epoch > 0);
  int64_t w = train_warmup_steps(s, steps_per_epoch);
  double f = base_lr;
  switch (s->kind) {
  case IR_SCHED_CONSTANT:
    break;
  case IR_SCHED_STEP: {
    int64_t epoch = step / steps_per_epoch;
    for (int k = 0; k < s->n_milestones; k++)
      if (epoch >= s->milestones[k])
        f *= s->gamma;
    break;
  }
  case IR_SCHED_COSINE:
    if (step >= w) {
      double p = progress(step, w, total_steps);
      f = s->min_lr + (base_lr - s->min_lr) * 0.5 * (1 + cos(TRAIN_PI * p));
    }
    break;
  case IR_SCHED_LINEAR:
    if (step >= w)
      f = base_lr + (s->min_lr - base_lr) * progress(step, w, total_steps);
    break;
  case IR_SCHED_INVERSE_SQRT:
    if (w == 0)
      f = base_lr / sqrt((double)step + 1);
    else if (step >= w)
      f = base_lr * sqrt((double)w / (double)step);
    break;
  }
  if (step < w)
    f *= (double)(step + 1) / (double)w;
  return f;
}
