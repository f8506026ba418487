/* train_optim.c — the optimizer step on one parameter tensor, with
 * PyTorch's semantics (torch.optim, defaults foreach/fused off, maximize,
 * amsgrad, centered and lr_decay off), so that a kiln run and a PyTorch run
 * from the same weights and gradients follow the same trajectory:
 *
 *   g = grad + wd * p            (weight_decay_mode = l2: coupled L2)
 *         + l1 * sign(p)         (l1 > 0; sign(0) = 0)
 *   p = p * (1 - lr * wd)        (weight_decay_mode = decoupled)
 *   SGD      buf = g at the first step, else momentum * buf + g
 *            (dampening 0); d = nesterov ? g + momentum * buf : buf;
 *            p -= lr * d (plain SGD: d = g)
 *   AdaGrad  sum += g^2; p -= lr * g / (sqrt(sum) + eps)
 *   RMSProp  sa = alpha * sa + (1 - alpha) g^2; a = sqrt(sa) + eps;
 *            momentum > 0: buf = momentum * buf + g / a, p -= lr * buf
 *            (buf starts at 0, as PyTorch's); else p -= lr * g / a
 *   Adam(W)  t = step + 1; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 *            p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 *            (eps outside the square root, after the bias correction)
 *
 * Adam and AdamW share one update: what tells them apart is the weight
 * decay mode, whose default is `decoupled` for adamw and `l2` otherwise
 * (frontend/config.c). An explicit mode wins for every optimizer, so
 * `adamw` with `weight_decay_mode = l2` is torch.optim.Adam with
 * weight_decay, and decoupled decay works for SGD, AdaGrad and RMSProp
 * alike (Loshchilov & Hutter 2019: "SGDW"). Both decays use the scheduled
 * lr, as torch.optim.AdamW does. L1 is always added to the gradient, from
 * the weights before any decoupled decay.
 *
 * Each element is computed in double from the float32 state and rounded
 * once when stored, so the reference does not drift from a float64 oracle
 * (tests/py/test_optim_numpy.py) by more than float32 storage does. */
#include "runtime/train/train.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int train_opt_buf_roles(const ir_train_cfg *c,
                        const char *roles[TRAIN_OPT_MAX_BUFS]) {
  return ir_update_roles(c, roles);
}

void train_opt_state_init(train_opt_state *s, const ir_train_cfg *c, int64_t n,
                          float *mem) {
  KILN_ASSERT(n >= 0);
  memset(s, 0, sizeof *s);
  s->n = n;
  s->n_bufs = train_opt_buf_roles(c, s->role);
  KILN_ASSERT(s->n_bufs == 0 || mem);
  for (int k = 0; k < s->n_bufs; k++) {
    s->buf[k] = mem + (size_t)k * (size_t)n;
    memset(s->buf[k], 0, (size_t)n * sizeof(float));
  }
}

int train_opt_buf_name(char *out, size_t cap, const char *param,
                       const char *role) {
  return snprintf(out, cap, "%s.%s", param, role);
}

/* The buffer of role `role`; asserting catches a state initialised for a
 * different optimizer (a checkpoint loaded into the wrong configuration). */
static float *state_buf(train_opt_state *s, const char *role) {
  for (int k = 0; k < s->n_bufs; k++)
    if (strcmp(s->role[k], role) == 0)
      return s->buf[k];
  KILN_ASSERT(!"optimizer state lacks a buffer");
  return NULL;
}

/* The gradient the update sees: coupled L2 and L1 added to a copy. */
static double effective_grad(const ir_train_cfg *c, double g, double p) {
  if (c->weight_decay_mode == IR_WD_L2 && c->weight_decay != 0)
    g += c->weight_decay * p;
  if (c->l1 != 0)
    g += c->l1 * (double)((p > 0) - (p < 0));
  return g;
}

static void step_sgd(const ir_train_cfg *c, train_opt_state *s, float *p,
                     const float *grad, double lr, double decay) {
  double mu = c->optim.momentum;
  float *buf = mu > 0 ? state_buf(s, "momentum") : NULL;
  for (int64_t i = 0; i < s->n; i++) {
    double g = effective_grad(c, grad[i], p[i]);
    double w = p[i] * decay;
    double d = g;
    if (buf) {
      double b = s->step == 0 ? g : mu * buf[i] + g;
      buf[i] = (float)b;
      d = c->optim.nesterov ? g + mu * b : b;
    }
    p[i] = (float)(w - lr * d);
  }
}

static void step_adagrad(const ir_train_cfg *c, train_opt_state *s, float *p,
                         const float *grad, double lr, double decay) {
  float *sum = state_buf(s, "sum");
  for (int64_t i = 0; i < s->n; i++) {
    double g = effective_grad(c, grad[i], p[i]);
    double w = p[i] * decay;
    double acc = sum[i] + g * g;
    sum[i] = (float)acc;
    p[i] = (float)(w - lr * g / (sqrt(acc) + c->optim.eps));
  }
}

static void step_rmsprop(const ir_train_cfg *c, train_opt_state *s, float *p,
                         const float *grad, double lr, double decay) {
  double alpha = c->optim.alpha, mu = c->optim.momentum;
  float *sa = state_buf(s, "square_avg");
  float *buf = mu > 0 ? state_buf(s, "momentum") : NULL;
  for (int64_t i = 0; i < s->n; i++) {
    double g = effective_grad(c, grad[i], p[i]);
    double w = p[i] * decay;
    double v = alpha * sa[i] + (1 - alpha) * g * g;
    sa[i] = (float)v;
    double avg = sqrt(v) + c->optim.eps;
    if (buf) {
      double b = mu * buf[i] + g / avg;
      buf[i] = (float)b;
      p[i] = (float)(w - lr * b);
    } else {
      p[i] = (float)(w - lr * g / avg);
    }
  }
}

static void step_adam(const ir_train_cfg *c, train_opt_state *s, float *p,
                      const float *grad, double lr, double decay) {
  double b1 = c->optim.beta1, b2 = c->optim.beta2;
  double t = (double)(s->step + 1);
  double step_size = lr / (1 - pow(b1, t));
  double bc2_sqrt = sqrt(1 - pow(b2, t));
  float *m = state_buf(s, "exp_avg"), *v = state_buf(s, "exp_avg_sq");
  for (int64_t i = 0; i < s->n; i++) {
    double g = effective_grad(c, grad[i], p[i]);
    double w = p[i] * decay;
    double mi = b1 * m[i] + (1 - b1) * g;
    double vi = b2 * v[i] + (1 - b2) * g * g;
    m[i] = (float)mi;
    v[i] = (float)vi;
    p[i] = (float)(w - step_size * mi / (sqrt(vi) / bc2_sqrt + c->optim.eps));
  }
}

void train_opt_step(const ir_train_cfg *c, train_opt_state *s, float *param,
                    const float *grad, double lr) {
  KILN_ASSERT(s->n == 0 || (param && grad));
  double decay =
      c->weight_decay_mode == IR_WD_DECOUPLED ? 1 - lr * c->weight_decay : 1.0;
  switch (c->optim.kind) {
  case IR_OPTIM_SGD:
    step_sgd(c, s, param, grad, lr, decay);
    break;
  case IR_OPTIM_ADAGRAD:
    step_adagrad(c, s, param, grad, lr, decay);
    break;
  case IR_OPTIM_RMSPROP:
    step_rmsprop(c, s, param, grad, lr, decay);
    break;
  case IR_OPTIM_ADAM:
  case IR_OPTIM_ADAMW:
    step_adam(c, s, param, grad, lr, decay);
    break;
  }
  s->step++;
}
