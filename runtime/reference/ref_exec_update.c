/* ref_exec_update.c — the optimizer's graph nodes (ir/update.c) in the
 * reference executor, as the training loop used to apply them on the host:
 *
 *   grad_norm  sqrt(sum over every parameter gradient of g^2), in double
 *   update     g = the parameter's gradient as float32
 *              clipping on: g *= max_norm / (norm + 1e-6) when that is < 1
 *              train_opt_step(g->train, state, param, g, lr) with
 *                state.step = the run's global step
 *              EMA on: ema += (1 - decay) * (param - ema)
 *
 * which is train_clip_grad_norm, train_opt_step and train_ema_update on
 * the same float32 values, so the loop's numbers did not change when the
 * optimizer moved into the graph (tests/test_update.c checks that bit for
 * bit). The norm is taken over the gradients rounded to float32, the
 * values the update consumes and a float32 backend holds. A norm that is
 * not finite skips every update of the run (the step is not taken, as
 * AMP's GradScaler skips it); the caller sees rt_result.skipped.
 *
 * Hyperparameters come from the graph's train section, lr and step from
 * the run; the state is the update node's own float32 parameters. */
#include "runtime/reference/ref_exec_impl.h"
#include "runtime/train/train.h"

#include <math.h>

void rx_grad_norm(ref_exec *ex, const ir_node *n) {
  double sq = 0;
  for (int k = 0; k < n->n_inputs; k++) {
    const double *g = ex->buf[n->inputs[k]->id];
    for (int64_t i = 0; i < ex->numel[n->inputs[k]->id]; i++) {
      double v = (float)g[i];
      sq += v * v;
    }
  }
  double norm = sqrt(sq);
  ex->buf[n->id][0] = norm;
  ex->skipped = !isfinite(norm);
}

/* The update node's state parameter with role `role`. */
static float *state(ref_exec *ex, const ir_node *u, const char *role) {
  for (int k = 0; k < u->n_params; k++)
    if (strcmp(u->params[k].role, role) == 0)
      return ex->params[ex->param_base[u->id] + k].f32;
  return NULL;
}

void rx_update(ref_exec *ex, const ir_node *u) {
  if (ex->skipped)
    return;
  const ir_train_cfg *c = &ex->g->train;
  rx_param *p = &ex->params[ex->param_base[u->fwd->id] - 1 - u->wrt];
  const double *grad = ex->buf[u->inputs[0]->id];
  float *g = ex->grad32;
  for (int64_t i = 0; i < p->n; i++)
    g[i] = (float)grad[i];
  if (u->n_inputs == 2) {
    double norm = ex->buf[u->inputs[1]->id][0];
    double coef = c->clip_grad_norm / (norm + 1e-6);
    if (coef < 1)
      for (int64_t i = 0; i < p->n; i++)
        g[i] = (float)(g[i] * coef);
  }
  train_opt_state s = {.n = p->n, .step = ex->run.step};
  s.n_bufs = ir_update_roles(c, s.role);
  for (int k = 0; k < s.n_bufs; k++) {
    s.buf[k] = state(ex, u, s.role[k]);
    KILN_ASSERT(s.buf[k] && "the update node lacks optimizer state");
  }
  train_opt_step(c, &s, p->f32, g, ex->run.lr);
  float *ema = state(ex, u, "ema");
  if (ema && c->ema > 0) {
    train_ema e = {.n = p->n, .w = ema};
    train_ema_update(&e, p->f32, c->ema);
  }
}
