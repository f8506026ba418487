/* lower_update.c — the optimizer as kernels: the global gradient norm
 * (grad_norm) and one update kernel per update node, with the semantics of
 * runtime/train: train_clip.c (clipping), train_optim.c (every optimizer,
 * L2/L1/decoupled weight decay) and train_ema.c (EMA weights).
 *
 * grad_norm is a deterministic two-kernel reduction: a GRID over chunks of
 * every gradient (one kernel reads all of them; each block finds its
 * tensor by range) writes per-chunk sums of squares into the scratch
 * tensor "<node>.partial", then one block adds them (THREAD partials,
 * BLOCK_REDUCE) and takes the square root.
 *
 * An update kernel is elementwise over its parameter (GRID over chunks,
 * VECTOR inside) and updates, in place, the parameter, its optimizer state
 * ("<param>.<role>", the update node's own parameters) and its EMA
 * weights. With clipping, each block reads the norm first: a non-finite
 * norm skips the whole update (parameter, state and EMA untouched, as the
 * training loop skips the step), otherwise the gradient is scaled by
 * min(1, max_norm / (norm + 1e-6)). The gradient tensor itself is not
 * modified, so backends can still read the unclipped gradient.
 *
 * Hyperparameters (g->train) are compile-time constants; the learning rate
 * (KIR_SCALAR_LR) and the 0-based step (KIR_SCALAR_STEP: Adam's bias
 * correction uses step + 1, momentum starts its buffer at the gradient on
 * step 0) are kernel parameters, so a schedule needs no recompilation.
 * The kernels compute in f32 where the reference computes in double from
 * f32 storage; the two agree to f32 rounding. */
#include "passes/lower.h"

#include <string.h>

/* Expression shorthands over the kernel `k` in scope. */
#define R(v) kir_ref(k, (v))
#define C64(v) kir_i64(k, (int64_t)(v))
#define F32(v) kir_f32(k, (float)(v))
#define B(op, a, b) kir_bin(k, KIR_##op, (a), (b))
#define LD(buf, i) kir_load(k, (buf), (i))

enum { UPD_CHUNK = 1024, UPD_NORM_CHUNK = 4096, UPD_THREADS = 256 };

/* ---- grad_norm ---- */

kiln_status lower_grad_norm(lower_ctx *c, const ir_node *n) {
  KILN_ASSERT(n->op == IR_OP_GRAD_NORM && n->n_inputs > 0);
  int ng = n->n_inputs;
  int64_t *len = ARENA_ARRAY(c->a, int64_t, ng);
  int64_t *first = ARENA_ARRAY(c->a, int64_t, ng + 1);
  first[0] = 0;
  for (int q = 0; q < ng; q++) {
    len[q] = lower_numel(c, n->inputs[q]);
    first[q + 1] = first[q] + (len[q] + UPD_NORM_CHUNK - 1) / UPD_NORM_CHUNK;
  }
  int64_t parts = first[ng];
  int part_t = lower_scratch(c, arena_printf(c->a, "%s.partial", n->name),
                             KIR_F32, parts);

  /* sums of squares per chunk of every gradient */
  kir_kernel *k =
      kir_kernel_new(c->a, lower_kernel_name(c, "grad_norm_partial", n), 0);
  int *args = ARENA_ARRAY(c->a, int, ng + 1);
  kir_buf **gb = ARENA_ARRAY(c->a, kir_buf *, ng);
  for (int q = 0; q < ng; q++) {
    gb[q] = kir_global(k, arena_printf(c->a, "g%d", q), KIR_F32, len[q], true);
    args[q] = lower_node_tensor(c, n->inputs[q]);
  }
  kir_buf *part = kir_global(k, "partial", KIR_F32, parts, false);
  args[ng] = part_t;
  kir_var *b = kir_for(k, KIR_LOOP_GRID, "b", C64(parts));
  kir_var *a = kir_let(k, "a", F32(0));
  for (int q = 0; q < ng; q++) {
    kir_if(k,
           B(AND, B(LE, C64(first[q]), R(b)), B(LT, R(b), C64(first[q + 1]))));
    int64_t chunk = len[q] < UPD_NORM_CHUNK ? len[q] : UPD_NORM_CHUNK;
    kir_var *j = kir_for(k, KIR_LOOP_SERIAL, "j", C64(chunk));
    kir_var *i = kir_let(
        k, "i", B(ADD, B(MUL, B(SUB, R(b), C64(first[q])), C64(chunk)), R(j)));
    kir_if(k, B(LT, R(i), C64(len[q])));
    kir_var *v = kir_let(k, "v", LD(gb[q], R(i)));
    kir_assign(k, a, B(ADD, R(a), B(MUL, R(v), R(v))));
    kir_end(k); /* if i */
    kir_end(k); /* j */
    kir_end(k); /* if b */
  }
  kir_store(k, part, R(b), R(a));
  kir_end(k);
  kiln_status st = lower_launch(c, k, args, n);
  if (st)
    return st;

  /* finalize: one block adds the partials */
  k = kir_kernel_new(c->a, lower_kernel_name(c, "grad_norm_final", n),
                     UPD_THREADS);
  kir_buf *src = kir_global(k, "partial", KIR_F32, parts, true);
  kir_buf *out = kir_global(k, "norm", KIR_F32, 1, false);
  kir_buf *acc = kir_local(k, "acc", KIR_F32, 1);
  kir_buf *sum = kir_shared(k, "sum", KIR_F32, 1);
  kir_var *t = kir_for(k, KIR_LOOP_THREAD, "t", C64(UPD_THREADS));
  a = kir_let(k, "a", F32(0));
  kir_var *j = kir_for(k, KIR_LOOP_SERIAL, "j",
                       C64((parts + UPD_THREADS - 1) / UPD_THREADS));
  kir_var *i = kir_let(k, "i", B(ADD, R(t), B(MUL, R(j), C64(UPD_THREADS))));
  kir_if(k, B(LT, R(i), C64(parts)));
  kir_assign(k, a, B(ADD, R(a), LD(src, R(i))));
  kir_end(k);
  kir_end(k);
  kir_store(k, acc, C64(0), R(a));
  kir_end(k);
  kir_block_reduce(k, KIR_ADD, sum, acc);
  kir_barrier(k);
  t = kir_for(k, KIR_LOOP_THREAD, "t", C64(UPD_THREADS));
  kir_if(k, B(EQ, R(t), C64(0)));
  kir_store(k, out, C64(0), kir_un(k, KIR_SQRT, LD(sum, C64(0))));
  kir_end(k);
  kir_end(k);
  int fargs[2] = {part_t, lower_node_tensor(c, n)};
  return lower_launch(c, k, fargs, n);
}

/* ---- update ---- */

typedef struct upd_kernel {
  kir_kernel *k;
  const ir_train_cfg *cfg;
  kir_var *lr, *step; /* scalar parameters (step: NULL when unused) */
  kir_buf *p, *grad, *norm;
  kir_buf *state[IR_UPDATE_MAX_BUFS];
  const char *role[IR_UPDATE_MAX_BUFS];
  int n_state;
  kir_buf *ema;
  /* per-block lets */
  kir_var *coef, *decay, *step_size, *bc2;
} upd_kernel;

static const char *upd_optim_name(ir_optim_kind kind) {
  switch (kind) {
  case IR_OPTIM_SGD:
    return "sgd";
  case IR_OPTIM_ADAGRAD:
    return "adagrad";
  case IR_OPTIM_RMSPROP:
    return "rmsprop";
  case IR_OPTIM_ADAM:
    return "adam";
  case IR_OPTIM_ADAMW:
    return "adamw";
  }
  return "update";
}

static const ir_param *upd_state_param(const ir_node *u, const char *role) {
  for (int i = 0; i < u->n_params; i++)
    if (strcmp(u->params[i].role, role) == 0)
      return &u->params[i];
  KILN_ASSERT(!"an update node lacks optimizer state");
  return NULL;
}

static kir_buf *upd_state(upd_kernel *uk, const char *role) {
  for (int s = 0; s < uk->n_state; s++)
    if (strcmp(uk->role[s], role) == 0)
      return uk->state[s];
  return NULL;
}

/* Per block, before the element loop: the clip coefficient, the
 * decoupled decay factor and Adam's bias corrections. */
static void upd_block_lets(upd_kernel *uk) {
  kir_kernel *k = uk->k;
  const ir_train_cfg *cfg = uk->cfg;
  if (uk->norm) {
    kir_var *nrm = kir_let(k, "norm", LD(uk->norm, C64(0)));
    /* norm - norm == 0 is false exactly for infinities and NaN */
    kir_if(k, B(EQ, B(SUB, R(nrm), R(nrm)), F32(0)));
    kir_var *cf = kir_let(
        k, "coef", B(DIV, F32(cfg->clip_grad_norm), B(ADD, R(nrm), F32(1e-6))));
    uk->coef =
        kir_let(k, "clip", kir_select(k, B(LT, R(cf), F32(1)), R(cf), F32(1)));
  }
  if (cfg->weight_decay_mode == IR_WD_DECOUPLED && cfg->weight_decay != 0)
    uk->decay = kir_let(
        k, "decay", B(SUB, F32(1), B(MUL, R(uk->lr), F32(cfg->weight_decay))));
  if (cfg->optim.kind == IR_OPTIM_ADAM || cfg->optim.kind == IR_OPTIM_ADAMW) {
    kir_var *t =
        kir_let(k, "tt", kir_cast(k, KIR_F32, B(ADD, R(uk->step), C64(1))));
    uk->step_size = kir_let(
        k, "step_size",
        B(DIV, R(uk->lr), B(SUB, F32(1), B(POW, F32(cfg->optim.beta1), R(t)))));
    uk->bc2 =
        kir_let(k, "bc2_sqrt",
                kir_un(k, KIR_SQRT,
                       B(SUB, F32(1), B(POW, F32(cfg->optim.beta2), R(t)))));
  }
}

/* The optimizer step of element i: g is the clipped gradient, w the
 * parameter after decoupled decay, p the parameter before; returns the new
 * parameter value. */
static kir_expr *upd_step(upd_kernel *uk, kir_var *i, kir_var *g, kir_var *w) {
  kir_kernel *k = uk->k;
  const ir_optim *o = &uk->cfg->optim;
  switch (o->kind) {
  case IR_OPTIM_SGD: {
    kir_buf *buf = upd_state(uk, "momentum");
    if (!buf)
      return B(SUB, R(w), B(MUL, R(uk->lr), R(g)));
    kir_var *b = kir_let(
        k, "buf",
        kir_select(k, B(EQ, R(uk->step), C64(0)), R(g),
                   B(ADD, B(MUL, F32(o->momentum), LD(buf, R(i))), R(g))));
    kir_store(k, buf, R(i), R(b));
    kir_expr *d =
        o->nesterov ? B(ADD, R(g), B(MUL, F32(o->momentum), R(b))) : R(b);
    return B(SUB, R(w), B(MUL, R(uk->lr), d));
  }
  case IR_OPTIM_ADAGRAD: {
    kir_buf *sum = upd_state(uk, "sum");
    kir_var *acc = kir_let(k, "acc", B(ADD, LD(sum, R(i)), B(MUL, R(g), R(g))));
    kir_store(k, sum, R(i), R(acc));
    return B(SUB, R(w),
             B(DIV, B(MUL, R(uk->lr), R(g)),
               B(ADD, kir_un(k, KIR_SQRT, R(acc)), F32(o->eps))));
  }
  case IR_OPTIM_RMSPROP: {
    kir_buf *sa = upd_state(uk, "square_avg"), *buf = upd_state(uk, "momentum");
    kir_var *v = kir_let(k, "sq",
                         B(ADD, B(MUL, F32(o->alpha), LD(sa, R(i))),
                           B(MUL, F32(1 - o->alpha), B(MUL, R(g), R(g)))));
    kir_store(k, sa, R(i), R(v));
    kir_var *avg =
        kir_let(k, "avg", B(ADD, kir_un(k, KIR_SQRT, R(v)), F32(o->eps)));
    if (!buf)
      return B(SUB, R(w), B(DIV, B(MUL, R(uk->lr), R(g)), R(avg)));
    kir_var *b = kir_let(
        k, "buf",
        B(ADD, B(MUL, F32(o->momentum), LD(buf, R(i))), B(DIV, R(g), R(avg))));
    kir_store(k, buf, R(i), R(b));
    return B(SUB, R(w), B(MUL, R(uk->lr), R(b)));
  }
  case IR_OPTIM_ADAM:
  case IR_OPTIM_ADAMW: {
    kir_buf *m = upd_state(uk, "exp_avg"), *v = upd_state(uk, "exp_avg_sq");
    kir_var *mi = kir_let(k, "m",
                          B(ADD, B(MUL, F32(o->beta1), LD(m, R(i))),
                            B(MUL, F32(1 - o->beta1), R(g))));
    kir_var *vi = kir_let(k, "v",
                          B(ADD, B(MUL, F32(o->beta2), LD(v, R(i))),
                            B(MUL, F32(1 - o->beta2), B(MUL, R(g), R(g)))));
    kir_store(k, m, R(i), R(mi));
    kir_store(k, v, R(i), R(vi));
    kir_expr *den =
        B(ADD, B(DIV, kir_un(k, KIR_SQRT, R(vi)), R(uk->bc2)), F32(o->eps));
    return B(SUB, R(w), B(DIV, B(MUL, R(uk->step_size), R(mi)), den));
  }
  }
  KILN_ASSERT(!"unknown optimizer");
  return NULL;
}

kiln_status lower_update(lower_ctx *c, const ir_node *u) {
  KILN_ASSERT(u->op == IR_OP_UPDATE && u->n_inputs >= 1);
  const ir_train_cfg *cfg = &c->g->train;
  const ir_param *param = ir_update_param(u);
  int64_t n = lower_numel(c, u->inputs[0]);
  upd_kernel uk = {.cfg = cfg};
  kir_kernel *k = uk.k = kir_kernel_new(
      c->a, lower_kernel_name(c, upd_optim_name(cfg->optim.kind), u), 0);
  int args[3 + IR_UPDATE_MAX_BUFS + 1], na = 0;
  uk.p = kir_global(k, "param", KIR_F32, n, false);
  args[na++] = lower_param_tensor(c, param);
  uk.grad = kir_global(k, "grad", KIR_F32, n, true);
  args[na++] = lower_node_tensor(c, u->inputs[0]);
  if (u->n_inputs > 1) {
    KILN_ASSERT(cfg->clip_grad_norm > 0);
    uk.norm = kir_global(k, "grad_norm", KIR_F32, 1, true);
    args[na++] = lower_node_tensor(c, u->inputs[1]);
  }
  uk.n_state = ir_update_roles(cfg, uk.role);
  for (int s = 0; s < uk.n_state; s++) {
    uk.state[s] = kir_global(k, uk.role[s], KIR_F32, n, false);
    args[na++] = lower_param_tensor(c, upd_state_param(u, uk.role[s]));
  }
  if (cfg->ema > 0) {
    uk.ema = kir_global(k, "ema", KIR_F32, n, false);
    args[na++] = lower_param_tensor(c, upd_state_param(u, "ema"));
  }
  uk.lr = kir_scalar_param(k, KIR_SCALAR_LR);
  bool adam =
      cfg->optim.kind == IR_OPTIM_ADAM || cfg->optim.kind == IR_OPTIM_ADAMW;
  if (adam || upd_state(&uk, "momentum"))
    uk.step = kir_scalar_param(k, KIR_SCALAR_STEP);

  int64_t chunk = n < UPD_CHUNK ? n : UPD_CHUNK;
  kir_var *b = kir_for(k, KIR_LOOP_GRID, "b", C64((n + chunk - 1) / chunk));
  upd_block_lets(&uk);
  kir_var *t = kir_for(k, KIR_LOOP_VECTOR, "t", C64(chunk));
  kir_var *i = kir_let(k, "i", B(ADD, B(MUL, R(b), C64(chunk)), R(t)));
  kir_if(k, B(LT, R(i), C64(n)));
  kir_var *p = kir_let(k, "p", LD(uk.p, R(i)));
  kir_expr *ge = LD(uk.grad, R(i));
  if (uk.norm)
    ge = B(MUL, ge, R(uk.coef));
  /* the effective gradient: coupled L2 and L1 on the weights before any
   * decoupled decay */
  if (cfg->weight_decay_mode == IR_WD_L2 && cfg->weight_decay != 0)
    ge = B(ADD, ge, B(MUL, F32(cfg->weight_decay), R(p)));
  if (cfg->l1 != 0) {
    kir_expr *sign = B(SUB, kir_select(k, B(LT, F32(0), R(p)), F32(1), F32(0)),
                       kir_select(k, B(LT, R(p), F32(0)), F32(1), F32(0)));
    ge = B(ADD, ge, B(MUL, F32(cfg->l1), sign));
  }
  kir_var *g = kir_let(k, "g", ge);
  kir_var *w = uk.decay ? kir_let(k, "w", B(MUL, R(p), R(uk.decay))) : p;
  kir_var *np = kir_let(k, "np", upd_step(&uk, i, g, w));
  kir_store(k, uk.p, R(i), R(np));
  if (uk.ema) {
    /* ema + (1 - decay) (param - ema): stays exactly at param when the two
     * agree, as train_ema_update */
    kir_var *e = kir_let(k, "e", LD(uk.ema, R(i)));
    kir_store(k, uk.ema, R(i),
              B(ADD, R(e), B(MUL, F32(1 - cfg->ema), B(SUB, R(np), R(e)))));
  }
  kir_end(k); /* if i < n */
  kir_end(k); /* vector */
  if (uk.norm)
    kir_end(k); /* if the norm is finite */
  kir_end(k);   /* grid */
  return lower_launch(c, k, args, u);
}
