/* plan_check.c — a lowered plan against the reference executor (see
 * plan_check.h for what is compared and with which tolerances). */
#include "tests/support/plan_check.h"

#include "frontend/load.h"
#include "passes/lower.h"
#include "runtime/reference/ref_exec.h"
#include "runtime/train/train.h"
#include "tests/support/kir_interp.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the interpreter as a plan executor ---- */

static size_t tensor_bytes(const kir_tensor *t) {
  return (size_t)t->count * (size_t)kir_type_size(t->type);
}

/* The interpreter's storage and the plan, for tensor sizes. */
typedef struct interp_x {
  kir_interp_plan *ip;
  const kir_plan *p;
} interp_x;

static void *interp_create(const kir_plan *p, kiln_error *err) {
  (void)err;
  interp_x *x = calloc(1, sizeof *x);
  KILN_ASSERT(x);
  x->ip = kir_interp_plan_new(p);
  x->p = p;
  return x;
}

static void interp_destroy(void *xv) {
  interp_x *x = xv;
  kir_interp_plan_free(x->ip);
  free(x);
}

static void interp_write(void *xv, int t, const void *data) {
  interp_x *x = xv;
  memcpy(kir_interp_plan_tensor(x->ip, t), data,
         tensor_bytes(&x->p->tensors[t]));
}

static void interp_read(void *xv, int t, void *data) {
  interp_x *x = xv;
  memcpy(data, kir_interp_plan_tensor(x->ip, t),
         tensor_bytes(&x->p->tensors[t]));
}

static kiln_status interp_run(void *xv, int from, int to, const kir_scalars *s,
                              kiln_error *err) {
  interp_x *x = xv;
  return kir_interp_plan_run(x->ip, from, to, s, err);
}

const pc_executor pc_interp_executor = {
    .name = "interpreter",
    .create = interp_create,
    .destroy = interp_destroy,
    .write = interp_write,
    .read = interp_read,
    .run = interp_run,
};

/* ---- one check ---- */

typedef struct pc_ctx {
  ir_graph *g;
  pc_opts o;
  pc_report *rep;
  kiln_error *err;
  arena a;
  kir_plan plan;
  ref_exec *ref;
  void *x;
  float **start; /* per parameter (graph order): its initial values */
} pc_ctx;

static kiln_status failf(pc_ctx *c, kiln_status st, const char *fmt, ...)
    KILN_PRINTF(3, 4);

static kiln_status failf(pc_ctx *c, kiln_status st, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  c->err->status = st;
  vsnprintf(c->err->message, sizeof c->err->message, fmt, ap);
  va_end(ap);
  return st;
}

static float uniform(pc_ctx *c, uint64_t stream, int64_t i) {
  return philox_uniform(c->o.seed, stream, (uint64_t)i);
}

/* Start values of parameter p (number no, of node n) into out. */
static void param_values(pc_ctx *c, const ir_node *n, const ir_param *p, int no,
                         float *out, int64_t count) {
  uint64_t stream = 1000 + (uint64_t)no;
  if (n->op == IR_OP_UPDATE) { /* optimizer state, EMA: positive, small */
    for (int64_t i = 0; i < count; i++)
      out[i] = 0.01f * (0.5f + uniform(c, stream, i));
    return;
  }
  if (!p->trainable) { /* BatchNorm running statistics */
    bool var = strstr(p->role, "var") != NULL;
    for (int64_t i = 0; i < count; i++)
      out[i] = uniform(c, stream, i) + (var ? 0.5f : -0.5f);
    return;
  }
  ir_init init = p->init;
  if (init == IR_INIT_AUTO)
    init = train_init_auto(train_init_next_activation(c->g, n));
  train_init_param(p, init, c->o.seed, (uint64_t)no, out);
  if (init == IR_INIT_ZEROS || init == IR_INIT_ONES || init == IR_INIT_CONST)
    for (int64_t i = 0; i < count; i++)
      out[i] += 0.2f * uniform(c, stream, i) - 0.1f;
}

static kiln_status set_params(pc_ctx *c) {
  int no = 0, total = 0;
  for (int i = 0; i < c->g->n_nodes; i++)
    total += c->g->nodes[i]->n_params;
  c->start = ARENA_ARRAY(&c->a, float *, total > 0 ? total : 1);
  for (int i = 0; i < c->g->n_nodes; i++) {
    const ir_node *n = c->g->nodes[i];
    for (int k = 0; k < n->n_params; k++, no++) {
      const ir_param *p = &n->params[k];
      int64_t count = 0;
      float *store = ref_exec_param(c->ref, p, &count);
      int t = c->plan.param_tensor[no];
      if (!store || t < 0)
        continue;
      if (c->plan.tensors[t].count != count ||
          c->plan.tensors[t].type != KIR_F32)
        return failf(c, KILN_ERR_INVALID,
                     "parameter '%s': %lld values in the reference, tensor "
                     "'%s' has %lld %s",
                     p->name, (long long)count, c->plan.tensors[t].name,
                     (long long)c->plan.tensors[t].count,
                     kir_type_name(c->plan.tensors[t].type));
      float *v = ARENA_ARRAY(&c->a, float, count);
      param_values(c, n, p, no, v, count);
      memcpy(store, v, sizeof(float) * (size_t)count);
      c->o.exec->write(c->x, t, v);
      c->start[no] = v;
    }
  }
  return KILN_OK;
}

/* Classes of the cross_entropy reading label input n (2 if none does). */
static int64_t label_classes(const ir_graph *g, const ir_node *n) {
  for (int i = 0; i < g->n_nodes; i++) {
    const ir_node *u = g->nodes[i];
    if (u->op == IR_OP_CROSS_ENTROPY && u->n_inputs > 1 && u->inputs[1] == n)
      return u->inputs[0]->shape.dim[u->inputs[0]->shape.rank - 1];
  }
  return 2;
}

static kiln_status set_inputs(pc_ctx *c) {
  kiln_status st;
  for (int i = 0; i < c->g->n_nodes; i++) {
    const ir_node *n = c->g->nodes[i];
    if (n->op != IR_OP_INPUT)
      continue;
    int t = c->plan.node_tensor[n->id];
    int64_t count = ir_shape_numel(&n->shape, c->o.batch);
    uint64_t stream = 500 + (uint64_t)n->id;
    if (ir_dtype_is_float(n->dtype)) {
      float *v = ARENA_ARRAY(&c->a, float, count);
      for (int64_t j = 0; j < count; j++)
        v[j] = 2.0f * uniform(c, stream, j) - 1.0f;
      if ((st = ref_exec_set_input_f32(c->ref, n->name, v, c->err)))
        return st;
      if (t >= 0)
        c->o.exec->write(c->x, t, v);
    } else {
      int64_t classes = label_classes(c->g, n);
      int32_t *v = ARENA_ARRAY(&c->a, int32_t, count);
      for (int64_t j = 0; j < count; j++)
        v[j] = (int32_t)(uniform(c, stream, j) * (float)classes) %
               (int32_t)classes;
      if ((st = ref_exec_set_input_i32(c->ref, n->name, v, c->err)))
        return st;
      if (t >= 0)
        c->o.exec->write(c->x, t, v);
    }
  }
  return KILN_OK;
}

/* Compares plan values p with reference r (n each); base, when not NULL,
 * is subtracted from both first (updates compare changes). */
static kiln_status compare(pc_ctx *c, const char *what, const char *name,
                           const float *p, const double *r, const float *base,
                           int64_t n, double rtol, double floor,
                           double *max_used) {
  double scale = floor;
  for (int64_t i = 0; i < n; i++) {
    double ri = r[i] - (base ? base[i] : 0);
    scale = fmax(scale, fabs(ri));
  }
  double worst = 0; /* largest |diff| / tolerance */
  for (int64_t i = 0; i < n; i++) {
    double b = base ? base[i] : 0;
    double pi = (double)p[i] - b, ri = r[i] - b;
    /* updates: a few float32 ulps of the parameter itself on top */
    double tol = rtol * scale + c->o.atol + 4 * FLT_EPSILON * fabs(b);
    double diff = fabs(pi - ri);
    if (!(diff <= tol))
      return failf(c, KILN_ERR_INVALID,
                   "%s '%s': element %lld of %lld: plan %.9g vs reference "
                   "%.9g%s (|diff| %.3g > tolerance %.3g; max|reference| "
                   "%.3g)",
                   what, name, (long long)i, (long long)n, pi, ri,
                   base ? " (changes from the start value)" : "", diff, tol,
                   scale);
    worst = fmax(worst, diff / tol);
  }
  if (worst > *max_used)
    *max_used = worst;
  c->rep->compared++;
  if (c->o.verbose)
    printf("  %-9s %-40s %.3g of the tolerance (%lld values)\n", what, name,
           worst, (long long)n);
  return KILN_OK;
}

/* A gradient can be zero in exact arithmetic and rounding noise in both
 * executors (a convolution's bias before BatchNorm): its error scales with
 * the incoming gradient dy, so max|dy| is a floor for its scale. */
static double grad_floor(pc_ctx *c, const ir_node *n) {
  if (n->op != IR_OP_GRAD || n->n_inputs == 0 || n->fwd == c->g->loss)
    return 0;
  int64_t numel = 0;
  const double *dy = ref_exec_output(c->ref, n->inputs[0], &numel);
  double m = 0;
  for (int64_t i = 0; dy && i < numel; i++)
    m = fmax(m, fabs(dy[i]));
  return m;
}

static kiln_status compare_nodes(pc_ctx *c) {
  const ir_graph *g = c->g;
  for (int i = 0; i < g->n_nodes; i++) {
    const ir_node *n = g->nodes[i];
    int t = c->plan.node_tensor[n->id];
    int64_t numel = 0;
    const double *r = ref_exec_output(c->ref, n, &numel);
    if (n->op == IR_OP_UPDATE || t < 0 || !r) {
      c->rep->skipped++;
      continue;
    }
    const kir_tensor *x = &c->plan.tensors[t];
    if (x->count != numel || x->type != KIR_F32)
      return failf(c, KILN_ERR_INVALID,
                   "node '%s': %lld values in the reference, tensor '%s' "
                   "has %lld %s",
                   n->name, (long long)numel, x->name, (long long)x->count,
                   kir_type_name(x->type));
    float *p = malloc(sizeof(float) * (size_t)(numel > 0 ? numel : 1));
    KILN_ASSERT(p);
    c->o.exec->read(c->x, t, p);
    bool bwd = g->loss && n->id > g->loss->id;
    kiln_status st =
        compare(c, bwd ? "gradient" : "node", n->name, p, r, NULL, numel,
                bwd ? c->o.rtol_grad : c->o.rtol_fwd, grad_floor(c, n),
                bwd ? &c->rep->used_grad : &c->rep->used_fwd);
    free(p);
    if (st)
      return st;
  }
  return KILN_OK;
}

/* Every parameter (of update nodes too when `all`), as values or, with
 * `delta`, as changes from the start values. */
static kiln_status compare_params(pc_ctx *c, bool all, bool delta) {
  int no = 0;
  for (int i = 0; i < c->g->n_nodes; i++) {
    const ir_node *n = c->g->nodes[i];
    for (int k = 0; k < n->n_params; k++, no++) {
      const ir_param *p = &n->params[k];
      int64_t count = 0;
      const float *store = ref_exec_param(c->ref, p, &count);
      int t = c->plan.param_tensor[no];
      if (!store || t < 0 || !c->start[no] || (n->op == IR_OP_UPDATE && !all))
        continue;
      float *pv = malloc(sizeof(float) * (size_t)count);
      double *rv = malloc(sizeof(double) * (size_t)count);
      KILN_ASSERT(pv && rv);
      c->o.exec->read(c->x, t, pv);
      for (int64_t j = 0; j < count; j++)
        rv[j] = store[j];
      kiln_status st =
          compare(c, delta ? "update of" : "parameter", p->name, pv, rv,
                  delta ? c->start[no] : NULL, count,
                  delta ? c->o.rtol_grad : c->o.rtol_fwd, 0,
                  delta ? &c->rep->used_update : &c->rep->used_fwd);
      free(pv);
      free(rv);
      if (st)
        return st;
    }
  }
  return KILN_OK;
}

/* The reference's parameters back to their start values. */
static void reset_ref_params(pc_ctx *c) {
  int no = 0;
  for (int i = 0; i < c->g->n_nodes; i++) {
    const ir_node *n = c->g->nodes[i];
    for (int k = 0; k < n->n_params; k++, no++) {
      int64_t count = 0;
      float *store = ref_exec_param(c->ref, &n->params[k], &count);
      if (store && c->start[no])
        memcpy(store, c->start[no], sizeof(float) * (size_t)count);
    }
  }
}

static kiln_status run_check(pc_ctx *c) {
  kiln_status st;
  bool train = c->o.mode == KIR_PLAN_TRAIN;
  if ((st = lower_plan(c->g, c->o.batch, c->o.mode, &c->a, &c->plan, c->err)))
    return st;
  c->rep->launches = c->plan.n_launches;
  if (!(c->ref = ref_exec_new(c->g, c->o.batch, c->err)))
    return c->err->status;
  if (!(c->x = c->o.exec->create(&c->plan, c->err)))
    return c->err->status;
  if ((st = set_params(c)) || (st = set_inputs(c)))
    return st;
  rt_run run = {.training = train,
                .seed = c->o.seed,
                .step = c->o.step,
                .lr = (double)c->o.lr};
  kir_scalars s = {
      .seed = (int64_t)c->o.seed, .step = c->o.step, .lr = c->o.lr};
  if ((st = ref_exec_run(c->ref, &run, NULL, c->err)))
    return st;
  int end = train ? c->plan.bwd_end : c->plan.fwd_end;
  if ((st = c->o.exec->run(c->x, 0, end, &s, c->err)))
    return st;
  if ((st = compare_nodes(c)) || (st = compare_params(c, false, false)))
    return st;
  if (!train || !c->o.update)
    return KILN_OK;
  /* The update: the reference takes a whole step again from the start
   * values; the plan runs only its update launches. */
  reset_ref_params(c);
  run.update = true;
  if ((st = ref_exec_run(c->ref, &run, NULL, c->err)))
    return st;
  if ((st = c->o.exec->run(c->x, end, c->plan.n_launches, &s, c->err)))
    return st;
  return compare_params(c, true, true);
}

static bool has_grads(const ir_graph *g) {
  for (int i = 0; i < g->n_nodes; i++)
    if (g->nodes[i]->op == IR_OP_GRAD)
      return true;
  return false;
}

kiln_status pc_check_graph(ir_graph *g, const pc_opts *opts, pc_report *rep,
                           kiln_error *err) {
  pc_report local_rep;
  pc_ctx c = {.g = g, .o = *opts, .rep = rep ? rep : &local_rep, .err = err};
  memset(c.rep, 0, sizeof *c.rep);
  if (!c.o.batch)
    c.o.batch = 3;
  if (!c.o.rtol_fwd)
    c.o.rtol_fwd = 1e-4;
  if (!c.o.rtol_grad)
    c.o.rtol_grad = 1e-3;
  if (!c.o.atol)
    c.o.atol = 1e-6;
  if (!c.o.seed)
    c.o.seed = 1;
  if (!c.o.lr)
    c.o.lr = 0.05f;
  if (!c.o.exec)
    c.o.exec = &pc_interp_executor;
  kiln_status st;
  if (c.o.mode == KIR_PLAN_TRAIN) {
    if (!g->loss)
      return failf(&c, KILN_ERR_INVALID,
                   "model '%s' has no loss: no training plan to check",
                   g->name);
    if (!has_grads(g) && (st = ir_autodiff(g, err)))
      return st;
    if (g->n_updates == 0 && g->n_param_grads > 0 &&
        (st = ir_add_updates(g, err)))
      return st;
  }
  arena_init(&c.a);
  st = run_check(&c);
  if (c.x)
    c.o.exec->destroy(c.x);
  if (c.ref)
    ref_exec_free(c.ref);
  arena_free(&c.a);
  return st;
}

kiln_status pc_check_string(const char *name, const char *text,
                            const pc_opts *o, pc_report *rep, kiln_error *err) {
  kiln_model *m = kiln_model_load_string(name, text, strlen(text), err);
  if (!m)
    return err->status;
  kiln_status st = pc_check_graph(&m->g, o, rep, err);
  kiln_model_free(m);
  return st;
}

kiln_status pc_check_file(const char *path, const pc_opts *o, pc_report *rep,
                          kiln_error *err) {
  kiln_model *m = kiln_model_load_file(path, err);
  if (!m)
    return err->status;
  kiln_status st = pc_check_graph(&m->g, o, rep, err);
  kiln_model_free(m);
  return st;
}

kiln_status pc_check_update_string(const char *name, const char *text,
                                   const pc_opts *o, pc_report *rep,
                                   kiln_error *err) {
  pc_opts u = *o;
  u.mode = KIR_PLAN_TRAIN;
  u.update = true;
  return pc_check_string(name, text, &u, rep, err);
}
