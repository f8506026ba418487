/* autodiff.c — reverse-mode differentiation of the training graph.
 *
 * Backward nodes are ordinary graph nodes, appended after the forward ones,
 * so that every later pass (fusion, memory planning, code generation) sees
 * forward and backward alike, as tinygrad's gradient.py and ggml's
 * ggml_compute_backward build ordinary ops. One internal op carries every
 * local backward rule:
 *
 *   IR_OP_GRAD   "dloss / d(input wrt of fwd)"            wrt >= 0
 *                "dloss / d(parameter -1-wrt of fwd)"     wrt <  0
 *
 * Its inputs are [dy, then the saved values the rule reads]: dy is the
 * gradient of fwd's output (absent for the loss itself, whose dy is 1), and
 * the saved values are fwd's inputs and/or fwd (its output), as listed per
 * op in `saves` below. They are declared as inputs so that liveness and
 * scheduling see what the backward keeps alive; the kernels behind a GRAD
 * node are chosen by (fwd->op, wrt) in the executor, which also keeps the
 * per-channel statistics of batchnorm and layernorm from the forward.
 * A GRAD node has the shape and dtype of the value it differentiates.
 *
 * A value used by several nodes receives one gradient from each; they are
 * summed by ordinary IR_OP_ADD nodes ("grad/<name>"). Only values that
 * depend on a trainable, unfrozen parameter need gradients, so graph inputs,
 * integer labels and everything computed from inputs alone get none, and
 * only nodes the loss depends on are visited. BatchNorm in train mode is
 * differentiated through its batch statistics (the executor calls
 * ref_batchnorm_backward_train).
 *
 * Names: "grad/<fwd>/<param role>" ("grad/c1/weight") for a parameter,
 * "grad/<fwd>/<input name>" for an input, "grad/<value>" for a sum. Model
 * names cannot contain '/', so these never clash with layers. */
#include "ir/ir_impl.h"

#include <string.h>

bool ir_train_frozen(const ir_graph *g, const char *name) {
  for (int i = 0; i < g->train.n_freeze; i++) {
    size_t len = strlen(g->train.freeze[i]);
    if (strncmp(name, g->train.freeze[i], len) == 0 &&
        (name[len] == '\0' || name[len] == '.'))
      return true;
  }
  return false;
}

kiln_status ir_infer_grad(ir_infer_ctx *c) {
  ir_node *n = c->node;
  const ir_node *f = n->fwd;
  KILN_ASSERT(f && "a grad node needs its forward node");
  if (n->wrt >= 0) {
    KILN_ASSERT(n->wrt < f->n_inputs);
    n->shape = f->inputs[n->wrt]->shape;
    n->dtype = f->inputs[n->wrt]->dtype;
  } else {
    KILN_ASSERT(-1 - n->wrt < f->n_params);
    n->shape = f->params[-1 - n->wrt].shape;
    n->dtype = f->params[-1 - n->wrt].dtype;
  }
  return KILN_OK;
}

/* What a backward rule reads besides dy. */
enum { SAVE_X = 1, SAVE_Y = 2 };

static int saves(const ir_node *f, int wrt) {
  switch (f->op) {
  case IR_OP_CONV2D:
  case IR_OP_LINEAR:
    /* dx needs the weight (a parameter), dweight needs x, dbias nothing */
    return wrt == -1 ? SAVE_X : 0;
  case IR_OP_RELU:
  case IR_OP_SIGMOID:
  case IR_OP_TANH:
  case IR_OP_SOFTMAX:
    return SAVE_Y; /* see ref_pointwise.h: these read their output */
  case IR_OP_MATMUL:
  case IR_OP_MUL:
  case IR_OP_BATCHNORM:
  case IR_OP_LAYERNORM:
  case IR_OP_LEAKY_RELU:
  case IR_OP_PRELU:
  case IR_OP_ELU:
  case IR_OP_GELU:
  case IR_OP_MAXOUT:
  case IR_OP_MAXPOOL:
  case IR_OP_CROSS_ENTROPY:
  case IR_OP_MSE:
    return SAVE_X;
  default:
    return 0; /* add, pools by average, shape changes, dropout, concat */
  }
}

typedef struct ad_ctx {
  ir_graph *g;
  kiln_error *err;
  bool *needs;        /* per node id: depends on a trainable parameter */
  int *n_contrib;     /* per node id: gradients received so far */
  ir_node ***contrib; /* per node id: those gradients */
} ad_ctx;

static bool param_trains(const ir_graph *g, const ir_node *f, int k) {
  return f->params[k].trainable && !ir_train_frozen(g, f->name);
}

static ir_node *make_grad(ad_ctx *c, ir_node *f, int wrt, ir_node *dy,
                          const char *what) {
  ir_graph *g = c->g;
  ir_node *in[IR_MAX_DIMS + 8];
  ir_node **ins = in;
  int n = 0, sv = saves(f, wrt);
  int cap = 2 + (sv & SAVE_X ? f->n_inputs : 0);
  if (cap > (int)ARRAY_LEN(in))
    ins = ARENA_ARRAY(g->a, ir_node *, cap);
  if (dy)
    ins[n++] = dy;
  if (sv & SAVE_X)
    for (int k = 0; k < f->n_inputs; k++)
      ins[n++] = f->inputs[k];
  if (sv & SAVE_Y)
    ins[n++] = f;
  const char *name = arena_printf(g->a, "grad/%s/%s", f->name, what);
  if (ir_graph_find(g, name)) /* add(x, x): one gradient per use */
    name = arena_printf(g->a, "grad/%s/%s#%d", f->name, what, wrt);
  ir_node *gn = ir_node_new(g, IR_OP_GRAD, name, f->loc, ins, n);
  gn->fwd = f;
  gn->wrt = wrt;
  gn->stage = f->stage;
  return ir_node_finish(g, gn, c->err) == KILN_OK ? gn : NULL;
}

/* The gradient of node v: the sum of what its users sent. */
static ir_node *sum_contrib(ad_ctx *c, const ir_node *v) {
  int n = c->n_contrib[v->id];
  ir_node **in = c->contrib[v->id];
  if (n == 0)
    return NULL;
  ir_node *acc = in[0];
  for (int k = 1; k < n; k++) {
    const char *name = k == n - 1
                           ? arena_printf(c->g->a, "grad/%s", v->name)
                           : arena_printf(c->g->a, "grad/%s/sum%d", v->name, k);
    ir_node *pair[2] = {acc, in[k]};
    ir_node *s = ir_node_new(c->g, IR_OP_ADD, name, v->loc, pair, 2);
    s->stage = v->stage;
    if (ir_node_finish(c->g, s, c->err))
      return NULL;
    acc = s;
  }
  return acc;
}

static void push_contrib(ad_ctx *c, const ir_node *v, ir_node *gn) {
  int id = v->id, n = c->n_contrib[id];
  ir_node **grown = ARENA_ARRAY(c->g->a, ir_node *, n + 1);
  if (n)
    memcpy(grown, c->contrib[id], sizeof(ir_node *) * (size_t)n);
  grown[n] = gn;
  c->contrib[id] = grown;
  c->n_contrib[id] = n + 1;
}

static void record_param_grad(ir_graph *g, ir_param *p, ir_node *gn) {
  int n = g->n_param_grads;
  ir_param **ps = ARENA_ARRAY(g->a, ir_param *, n + 1);
  ir_node **ns = ARENA_ARRAY(g->a, ir_node *, n + 1);
  if (n) {
    memcpy(ps, g->grad_params, sizeof(ir_param *) * (size_t)n);
    memcpy(ns, g->grad_nodes, sizeof(ir_node *) * (size_t)n);
  }
  ps[n] = p;
  ns[n] = gn;
  g->grad_params = ps;
  g->grad_nodes = ns;
  g->n_param_grads = n + 1;
}

/* Backward rules of one forward node f whose output gradient is dy (NULL
 * for the loss, whose gradient is 1). */
static kiln_status diff_node(ad_ctx *c, ir_node *f, ir_node *dy) {
  for (int k = 0; k < f->n_params; k++) {
    if (!param_trains(c->g, f, k))
      continue;
    ir_node *gn = make_grad(c, f, -1 - k, dy, f->params[k].role);
    if (!gn)
      return c->err->status;
    record_param_grad(c->g, &f->params[k], gn);
  }
  for (int k = 0; k < f->n_inputs; k++) {
    ir_node *x = f->inputs[k];
    if (!c->needs[x->id])
      continue;
    ir_node *gn = make_grad(c, f, k, dy, x->name);
    if (!gn)
      return c->err->status;
    push_contrib(c, x, gn);
  }
  return KILN_OK;
}

kiln_status ir_autodiff(ir_graph *g, kiln_error *err) {
  if (!g->loss)
    return diag_error(err, KILN_ERR_INVALID, (kiln_loc){0},
                      "model '%s' has no loss to differentiate",
                      g->name ? g->name : "?");
  KILN_ASSERT(g->n_param_grads == 0 && "autodiff runs once");
  int n_fwd = g->n_nodes;
  arena scratch;
  arena_init(&scratch);
  ad_ctx c = {.g = g, .err = err};
  c.needs = ARENA_ARRAY(&scratch, bool, n_fwd);
  c.n_contrib = ARENA_ARRAY(&scratch, int, n_fwd);
  c.contrib = ARENA_ARRAY(&scratch, ir_node **, n_fwd);
  /* Forward sweep: which float values depend on a trainable parameter. */
  for (int i = 0; i < n_fwd; i++) {
    const ir_node *n = g->nodes[i];
    bool need = false;
    for (int k = 0; k < n->n_params && !need; k++)
      need = param_trains(g, n, k);
    for (int k = 0; k < n->n_inputs && !need; k++)
      need = c.needs[n->inputs[k]->id];
    c.needs[i] = need && ir_dtype_is_float(n->dtype);
  }
  /* Reverse sweep from the loss: a node is visited once all its users
   * (which come later in topological order) have sent their gradients. */
  kiln_status st = KILN_OK;
  for (int i = g->loss->id; i >= 0 && !st; i--) {
    ir_node *f = g->nodes[i];
    if (!c.needs[i])
      continue;
    if (f == g->loss) {
      st = diff_node(&c, f, NULL);
      continue;
    }
    /* contrib lives in g's arena; sum_contrib adds nodes to g */
    ir_node *dy = sum_contrib(&c, f);
    if (!dy) {
      if (c.n_contrib[i]) /* the sum failed */
        st = err->status;
      continue; /* the loss does not depend on f */
    }
    st = diff_node(&c, f, dy);
  }
  arena_free(&scratch);
  if (st)
    return st;
  return ir_verify(g, err);
}
