/* cpu_backend.c — the "cpu" training backend (runtime/backend.h): the
 * graph lowered twice (passes/lower.h), a TRAIN plan (forward in train
 * mode, loss, gradients, grad_norm, updates) and an EVAL plan (forward in
 * eval mode, loss), each JIT-compiled by codegen/llvm and run on the
 * thread pool.
 *
 * The two plans share one copy of every parameter (trainable weights,
 * BatchNorm running statistics, optimizer state, EMA weights) and of the
 * inputs: the EVAL plan's tensors for them are bound to the TRAIN plan's
 * storage, so training, evaluation and param_read/param_write all see the
 * same floats. Evaluating with EMA weights points the EVAL plan's weight
 * tensors at the "<param>.ema" storage for the run.
 *
 * Semantics follow the reference backend (runtime/reference/ref_exec.c):
 * the same invalid-run errors, and a step whose gradient norm is not
 * finite changes no parameter (the update launches are not run). */
#include "passes/lower.h"
#include "runtime/cpu/rt_cpu.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct ema_swap {
  int eval_tensor;  /* the weight's tensor in the EVAL plan */
  int train_tensor; /* its "<param>.ema" tensor in the TRAIN plan */
  void *saved;      /* the weight's storage during an EMA run */
} ema_swap;

typedef struct cpu_backend {
  rt_backend base;
  const ir_graph *g;
  arena a;
  kir_plan train, eval;
  rt_cpu_pool *pool;
  rt_cpu_plan xt, xe;
  bool xt_ready, xe_ready;
  const rt_cpu_plan *last; /* the plan of the last run (read_output) */
  int n_ema;
  ema_swap *ema;
} cpu_backend;

static cpu_backend *cpu_of(rt_backend *b) {
  KILN_ASSERT(b && b->ops == &rt_backend_cpu);
  return (cpu_backend *)b;
}

static void destroy(rt_backend *b) {
  if (!b)
    return;
  cpu_backend *c = cpu_of(b);
  if (c->xe_ready)
    rt_cpu_plan_free(&c->xe);
  if (c->xt_ready)
    rt_cpu_plan_free(&c->xt);
  rt_cpu_pool_free(c->pool);
  arena_free(&c->a);
  free(c);
}

/* The EVAL plan's tensors that are the TRAIN plan's: parameters and
 * inputs. */
static void **shared_storage(cpu_backend *c) {
  void **bind = ARENA_ARRAY(&c->a, void *, c->eval.n_tensors + 1);
  for (int t = 0; t < c->eval.n_tensors; t++) {
    const kir_tensor *et = &c->eval.tensors[t];
    int tt = -1;
    if (et->alias >= 0)
      continue;
    if (et->role == KIR_T_PARAM)
      tt = kir_plan_param_tensor(&c->train, et->param);
    else if (et->role == KIR_T_INPUT)
      tt = c->train.node_tensor[et->node->id];
    if (tt >= 0) {
      KILN_ASSERT(c->train.tensors[tt].count == et->count &&
                  c->train.tensors[tt].type == et->type);
      bind[t] = rt_cpu_plan_tensor(&c->xt, tt);
    }
  }
  return bind;
}

/* Each trainable parameter with EMA weights (the update node's "ema"
 * state, as the reference backend finds them). */
static void find_ema(cpu_backend *c) {
  const ir_graph *g = c->g;
  c->ema = ARENA_ARRAY(&c->a, ema_swap, g->n_updates + 1);
  for (int k = 0; k < g->n_updates; k++) {
    const ir_node *u = g->updates[k];
    for (int i = 0; i < u->n_params; i++) {
      if (strcmp(u->params[i].role, "ema") != 0)
        continue;
      int et = kir_plan_param_tensor(&c->eval, g->grad_params[k]);
      int tt = kir_plan_param_tensor(&c->train, &u->params[i]);
      if (et >= 0 && tt >= 0)
        c->ema[c->n_ema++] = (ema_swap){et, tt, NULL};
    }
  }
}

static rt_backend *create(const ir_graph *g, int64_t batch, kiln_error *err) {
  cpu_backend *c = calloc(1, sizeof *c);
  KILN_ASSERT(c);
  c->base.ops = &rt_backend_cpu;
  c->g = g;
  arena_init(&c->a);
  c->pool = rt_cpu_pool_new(0);
  if (lower_plan(g, batch, KIR_PLAN_TRAIN, &c->a, &c->train, err) ||
      lower_plan(g, batch, KIR_PLAN_EVAL, &c->a, &c->eval, err) ||
      rt_cpu_plan_init_planned(&c->xt, &c->train, c->pool, NULL, err))
    goto fail;
  c->xt_ready = true;
  if (rt_cpu_plan_init_planned(&c->xe, &c->eval, c->pool, shared_storage(c),
                               err))
    goto fail;
  c->xe_ready = true;
  c->last = &c->xt;
  find_ema(c);
  return &c->base;
fail:
  destroy(&c->base);
  return NULL;
}

/* Tensor of node n in plan x's plan, or -1. */
static int node_tensor(const rt_cpu_plan *x, const ir_node *n) {
  return n->id < x->plan->g->n_nodes ? x->plan->node_tensor[n->id] : -1;
}

/* Labels outside [0, classes) of a cross_entropy that reads `input`: the
 * compiled loss would index out of its row, so they are refused here, with
 * the reference executor's message (ref_exec_fwd.c). */
static kiln_status check_labels(const ir_graph *g, const ir_node *input,
                                const int32_t *labels, int64_t n,
                                kiln_error *err) {
  for (int i = 0; i < g->n_nodes; i++) {
    const ir_node *f = g->nodes[i];
    if (f->op != IR_OP_CROSS_ENTROPY || f->inputs[1] != input)
      continue;
    const ir_shape *s = &f->inputs[0]->shape;
    int64_t k = s->dim[s->rank - 1];
    for (int64_t j = 0; j < n; j++)
      if (labels[j] < 0 || labels[j] >= k)
        return diag_error(err, KILN_ERR_INVALID, f->loc,
                          "layer '%s' (%s): label %d of example %lld is "
                          "outside 0..%lld",
                          f->name, ir_op_table[f->op].name, (int)labels[j],
                          (long long)j, (long long)k - 1);
  }
  return KILN_OK;
}

static kiln_status set_input(rt_backend *b, const ir_node *input,
                             const void *data, kiln_error *err) {
  cpu_backend *c = cpu_of(b);
  if (!ir_dtype_is_float(input->dtype)) {
    const rt_cpu_plan *x = &c->xt;
    int t = node_tensor(x, input);
    if (t < 0)
      x = &c->xe, t = node_tensor(x, input);
    int64_t n = t >= 0 ? x->plan->tensors[t].count : 0;
    kiln_status st = check_labels(c->g, input, data, n, err);
    if (st)
      return st;
  }
  const rt_cpu_plan *xs[2] = {&c->xt, &c->xe};
  void *done = NULL;
  for (int i = 0; i < 2; i++) {
    int t = node_tensor(xs[i], input);
    if (t < 0)
      continue;
    const kir_tensor *kt = &xs[i]->plan->tensors[t];
    void *dst = rt_cpu_plan_tensor(xs[i], t);
    if (dst != done) /* the EVAL plan usually shares the TRAIN plan's */
      memcpy(dst, data, (size_t)kt->count * (size_t)kir_type_size(kt->type));
    done = dst;
  }
  if (!done)
    return diag_error(err, KILN_ERR_INVALID, input->loc,
                      "'%s' is not an input of the compiled graph",
                      input->name);
  return KILN_OK;
}

static float read_f32(const rt_cpu_plan *x, const ir_node *n) {
  int t = node_tensor(x, n);
  KILN_ASSERT(t >= 0 && x->plan->tensors[t].type == KIR_F32);
  return *(const float *)rt_cpu_plan_tensor(x, t);
}

static kiln_status run(rt_backend *b, const rt_run *r, rt_result *out,
                       kiln_error *err) {
  cpu_backend *c = cpu_of(b);
  const ir_graph *g = c->g;
  if (r->update && (!r->training || (g->n_param_grads && !g->n_updates)))
    return diag_error(err, KILN_ERR_INVALID, (kiln_loc){0},
                      "model '%s': an update run needs a training run of a "
                      "graph with update nodes (ir_add_updates)",
                      g->name ? g->name : "?");
  if (r->ema && r->training)
    return diag_error(err, KILN_ERR_INVALID, (kiln_loc){0},
                      "EMA weights are for evaluation runs, not training");
  kir_scalars s = {
      .seed = (int64_t)r->seed, .step = r->step, .lr = (float)r->lr};
  rt_result res = {0};
  if (r->training) {
    const kir_plan *p = &c->train;
    rt_cpu_plan_run(&c->xt, &s, 0, p->bwd_end);
    if (g->grad_norm) {
      res.grad_norm = read_f32(&c->xt, g->grad_norm);
      res.skipped = r->update && !isfinite(res.grad_norm);
    }
    if (r->update && !res.skipped)
      rt_cpu_plan_run(&c->xt, &s, p->bwd_end, p->n_launches);
    c->last = &c->xt;
  } else {
    /* Point the weights at their EMA copies for this run only. */
    void **st = c->xe.storage;
    for (int i = 0; r->ema && i < c->n_ema; i++) {
      ema_swap *e = &c->ema[i];
      e->saved = st[c->xe.root[e->eval_tensor]];
      st[c->xe.root[e->eval_tensor]] =
          rt_cpu_plan_tensor(&c->xt, e->train_tensor);
    }
    rt_cpu_plan_run(&c->xe, &s, 0, c->eval.n_launches);
    for (int i = 0; r->ema && i < c->n_ema; i++)
      st[c->xe.root[c->ema[i].eval_tensor]] = c->ema[i].saved;
    c->last = &c->xe;
  }
  if (g->loss)
    res.loss = read_f32(c->last, g->loss);
  if (out)
    *out = res;
  return KILN_OK;
}

static kiln_status read_output(rt_backend *b, const ir_node *n, float *out,
                               kiln_error *err) {
  cpu_backend *c = cpu_of(b);
  const rt_cpu_plan *x = c->last;
  int t = node_tensor(x, n);
  if (t < 0) {
    x = x == &c->xt ? &c->xe : &c->xt;
    t = node_tensor(x, n);
  }
  if (t < 0 || x->plan->tensors[t].type != KIR_F32)
    return diag_error(err, KILN_ERR_INVALID, n->loc,
                      "'%s' is not a float value of the compiled graph",
                      n->name);
  memcpy(out, rt_cpu_plan_tensor(x, t),
         sizeof(float) * (size_t)x->plan->tensors[t].count);
  return KILN_OK;
}

/* The storage of parameter p and its element count. */
static float *param_storage(cpu_backend *c, const ir_param *p, int64_t *n) {
  const rt_cpu_plan *x = &c->xt;
  int t = kir_plan_param_tensor(&c->train, p);
  if (t < 0) {
    x = &c->xe;
    t = kir_plan_param_tensor(&c->eval, p);
  }
  KILN_ASSERT(t >= 0 && "parameter missing from the compiled plans");
  KILN_ASSERT(x->plan->tensors[t].type == KIR_F32);
  *n = x->plan->tensors[t].count;
  return rt_cpu_plan_tensor(x, t);
}

static void param_read(rt_backend *b, const ir_param *p, float *out) {
  int64_t n;
  const float *src = param_storage(cpu_of(b), p, &n);
  memcpy(out, src, sizeof(float) * (size_t)n);
}

static void param_write(rt_backend *b, const ir_param *p, const float *in) {
  int64_t n;
  float *dst = param_storage(cpu_of(b), p, &n);
  memcpy(dst, in, sizeof(float) * (size_t)n);
}

static bool grad_read(rt_backend *b, const ir_param *p, float *out) {
  cpu_backend *c = cpu_of(b);
  for (int k = 0; k < c->g->n_param_grads; k++) {
    if (c->g->grad_params[k] != p)
      continue;
    int t = node_tensor(&c->xt, c->g->grad_nodes[k]);
    if (t < 0)
      return false;
    memcpy(out, rt_cpu_plan_tensor(&c->xt, t),
           sizeof(float) * (size_t)c->train.tensors[t].count);
    return true;
  }
  return false;
}

void rt_cpu_backend_profile(rt_backend *b, bool on) {
  cpu_backend *c = cpu_of(b);
  if (c->xt_ready)
    rt_cpu_plan_profile(&c->xt, on);
  if (c->xe_ready)
    rt_cpu_plan_profile(&c->xe, on);
}

/* Whether x ran any launch while profiled. */
static bool profiled(const rt_cpu_plan *x) {
  for (int l = 0; x->prof_calls && l < x->plan->n_launches; l++)
    if (x->prof_calls[l])
      return true;
  return false;
}

void rt_cpu_backend_profile_report(rt_backend *b, FILE *out) {
  cpu_backend *c = cpu_of(b);
  if (c->xt_ready && profiled(&c->xt)) {
    fprintf(out, "# TRAIN plan (%d launches)\n", c->train.n_launches);
    rt_cpu_plan_profile_report(&c->xt, out);
  }
  if (c->xe_ready && profiled(&c->xe)) {
    fprintf(out, "# EVAL plan (%d launches)\n", c->eval.n_launches);
    rt_cpu_plan_profile_report(&c->xe, out);
  }
}

const rt_backend_ops rt_backend_cpu = {
    .name = "cpu",
    .create = create,
    .destroy = destroy,
    .set_input = set_input,
    .run = run,
    .read_output = read_output,
    .param_read = param_read,
    .param_write = param_write,
    .grad_read = grad_read,
};
