/* train.h — the numerical pieces of the training loop that are not graph
 * ops: the optimizer step, the learning-rate schedule, global gradient
 * clipping, EMA (Polyak) weights and weight initialisation. Prototypes are
 * grouped by the file that defines them.
 *
 *   ir_train_cfg --train_lr_base/train_lr_at--> lr of this step
 *   grads --train_clip_grad_norm--> clipped grads (pre-clip norm returned)
 *   (param, grad, train_opt_state, lr) --train_opt_step--> updated param
 *   param --train_ema_update--> EMA weights (train_ema_swap for evaluation)
 *   ir_param + (seed, index) --train_init_param--> initial values
 *
 * These are the CPU definitions, in plain C over float32 arrays (element
 * arithmetic in double); the generated multi-tensor update kernels are
 * tested against them. The library never allocates here: every buffer is
 * the caller's, so the runtime can point all optimizer state into one
 * allocation per role. */
#ifndef KILN_RUNTIME_TRAIN_H
#define KILN_RUNTIME_TRAIN_H

#include "ir/ir.h"

#include <stddef.h>
#include <stdint.h>

/* ---- train_optim.c: one optimizer step on one parameter tensor ---- */

enum { TRAIN_OPT_MAX_BUFS = IR_UPDATE_MAX_BUFS };

/* The state of one parameter tensor. Which buffers exist depends on the
 * optimizer (train_opt_buf_roles); each holds n floats. `step` counts the
 * steps taken (PyTorch's state['step']): Adam's bias correction uses
 * step + 1 for the step being taken, and SGD's momentum buffer is
 * initialised to the first gradient when step == 0. */
typedef struct train_opt_state {
  int64_t n;
  int64_t step;
  int n_bufs;
  const char *role[TRAIN_OPT_MAX_BUFS]; /* "momentum", "exp_avg", ... */
  float *buf[TRAIN_OPT_MAX_BUFS];
} train_opt_state;

/* The buffer roles `c`'s optimizer keeps per parameter, in order; returns
 * how many (0 for plain SGD). The definition is ir_update_roles (ir/
 * update.c: the update nodes declare these buffers as their parameters,
 * and ir/ cannot call the runtime); this is the same list for callers that
 * hold a train_opt_state. Checkpoint names are "<param>.<role>". */
int train_opt_buf_roles(const ir_train_cfg *c,
                        const char *roles[TRAIN_OPT_MAX_BUFS]);
/* Points the state's buffers into `mem` (n * train_opt_buf_roles() floats,
 * may be NULL when that is 0), zeroes them and sets step = 0. */
void train_opt_state_init(train_opt_state *s, const ir_train_cfg *c, int64_t n,
                          float *mem);
/* "<param>.<role>" into out (cap bytes, truncated and terminated); returns
 * the length the full name needs, as snprintf does. */
int train_opt_buf_name(char *out, size_t cap, const char *param,
                       const char *role);
/* One step of `c`'s optimizer with learning rate lr (already scheduled) on
 * param[0..n) with gradient grad (not modified: weight decay and L1 are
 * added to a private copy, as PyTorch does). Frozen parameters are simply
 * never passed here; that is the caller's concern. */
void train_opt_step(const ir_train_cfg *c, train_opt_state *s, float *param,
                    const float *grad, double lr);

/* ---- train_schedule.c: learning rate per step ---- */

/* The base LR: optimizer lr, times global_batch / base_batch when the
 * linear scaling rule is on (base_batch > 0). global_batch is the batch of
 * one step over all replicas. */
double train_lr_base(const ir_train_cfg *c, int64_t global_batch);
/* Warmup length in steps: warmup_steps, or warmup_epochs * steps_per_epoch
 * rounded to the nearest step. */
int64_t train_warmup_steps(const ir_schedule *s, int64_t steps_per_epoch);
/* The LR of step `step` (0-based) of a run of total_steps steps. */
double train_lr_at(const ir_schedule *s, double base_lr, int64_t step,
                   int64_t steps_per_epoch, int64_t total_steps);

/* ---- train_clip.c: global gradient-norm clipping ---- */

/* torch.nn.utils.clip_grad_norm_ over n_tensors gradients grads[k] of
 * lens[k] floats; returns the total L2 norm before clipping. */
double train_clip_grad_norm(float *const *grads, const int64_t *lens,
                            int n_tensors, double max_norm);

/* ---- train_ema.c: Polyak / EMA weights ---- */

typedef struct train_ema {
  int64_t n;
  float *w; /* the EMA weights: caller's memory, n floats */
} train_ema;

/* Points e at mem and copies param into it (the EMA starts at the initial
 * weights). */
void train_ema_init(train_ema *e, float *mem, const float *param, int64_t n);
/* ema = decay * ema + (1 - decay) * param; call after each optimizer step. */
void train_ema_update(train_ema *e, const float *param, double decay);
/* Exchanges the EMA weights and param: call before evaluation to evaluate
 * the EMA weights, and again after it to resume training. */
void train_ema_swap(train_ema *e, float *param);

/* ---- train_init.c: weight initialisation ---- */

/* fan_in and fan_out of a weight, as PyTorch's
 * _calculate_fan_in_and_fan_out: dim 1 and dim 0 times the receptive field
 * (the product of dims 2..). A rank-1 tensor has fan_in = fan_out = dim 0. */
void train_init_fans(const ir_shape *s, int64_t *fan_in, int64_t *fan_out);
/* Fills out (numel(p->shape) floats) by `init`: p->init, or, when that is
 * IR_INIT_AUTO, the caller's resolution of it by train_init_auto (AUTO
 * itself is not accepted here). IR_INIT_CONST takes p->init_value. The
 * values are a pure function of (seed, index): index
 * is the parameter's position in the graph (node order, then role order),
 * so a model initialises identically on every run and every device. */
void train_init_param(const ir_param *p, ir_init init, uint64_t seed,
                      uint64_t index, float *out);
/* The AUTO rule: He normal when the activation after the layer is ReLU-like
 * (relu, leaky_relu, prelu, elu, gelu, maxout), Xavier uniform otherwise
 * (IR_OP_COUNT: no activation follows). */
ir_init train_init_auto(ir_op activation);
/* The activation that follows layer n: the op reached by following the
 * only consumer through batchnorm, layernorm, dropout, add, flatten and
 * reshape; IR_OP_COUNT when there is none or a layer has several
 * consumers. */
ir_op train_init_next_activation(const ir_graph *g, const ir_node *n);

/* ---- train_loop.c: kiln_train on an rt_backend ---- */

/* The value parameter `name` (full dotted name) had at the end of the last
 * successful kiln_train of m (numel in *n when n is not NULL); NULL before
 * any, or for an unknown name. For tests and checkpoints. */
const float *train_trained_param(const kiln_model *m, const char *name,
                                 int64_t *n);

#endif
