/* lower.c — the lowering driver: a training graph becomes a kir_plan.
 *
 * Needs: a verified graph, after ir_autodiff and ir_add_updates when it is
 * lowered for training. Forward nodes come first, then the backward (grad
 * nodes, the add nodes summing fan-out gradients, grad_norm), then the
 * update nodes; the driver checks that order, because the plan's sections
 * (fwd_end, bwd_end) are ranges of launches.
 *
 * Tensors are made before any rule runs, so a rule may ask for the tensor
 * of any node or parameter:
 *   - one INPUT tensor per graph input (f32 data or i32 labels);
 *   - one PARAM tensor per parameter of every node, the optimizer state
 *     and EMA weights of update nodes included, in graph order (the order
 *     of kir_plan.param_tensor); every mode has all of them, because the
 *     backend owns every parameter whatever it runs;
 *   - one VALUE tensor per node the mode lowers (gradients included);
 *     flatten and reshape, and their gradients, only view their input in
 *     another shape: their tensor is an alias of the input's storage (alias
 *     always names a tensor that is not itself an alias) and no kernel runs
 *     for them. Update nodes have no tensor: their output is a token, their
 *     effect is on parameters;
 *   - SCRATCH tensors by name, on a rule's request (lower_scratch).
 *
 * Rules come from one table indexed by op (forward nodes by their op, grad
 * nodes by their forward node's op). Each launch is verified here
 * (kir_verify) and checked against the LLVM renderer's assumption that a
 * written buffer shares storage with no other argument of the launch. */
#include "passes/lower.h"

#include <string.h>

typedef struct lower_rules {
  lower_rule fwd; /* the node itself */
  lower_rule bwd; /* a grad node whose forward node has this op */
} lower_rules;

static const lower_rules lower_table[IR_OP_COUNT] = {
    [IR_OP_CONV2D] = {lower_conv2d_fwd, lower_conv2d_bwd},
    [IR_OP_LINEAR] = {lower_linear_fwd, lower_linear_bwd},
    [IR_OP_MATMUL] = {lower_matmul_fwd, lower_matmul_bwd},
    [IR_OP_MAXPOOL] = {lower_pool_fwd, lower_pool_bwd},
    [IR_OP_AVGPOOL] = {lower_pool_fwd, lower_pool_bwd},
    [IR_OP_GLOBAL_AVGPOOL] = {lower_pool_fwd, lower_pool_bwd},
    [IR_OP_BATCHNORM] = {lower_norm_fwd, lower_norm_bwd},
    [IR_OP_LAYERNORM] = {lower_norm_fwd, lower_norm_bwd},
    [IR_OP_CROSS_ENTROPY] = {lower_loss_fwd, lower_loss_bwd},
    [IR_OP_MSE] = {lower_loss_fwd, lower_loss_bwd},
    [IR_OP_RELU] = {lower_pointwise_fwd, lower_pointwise_bwd},
    [IR_OP_LEAKY_RELU] = {lower_pointwise_fwd, lower_pointwise_bwd},
    [IR_OP_PRELU] = {lower_pointwise_fwd, lower_pointwise_bwd},
    [IR_OP_ELU] = {lower_pointwise_fwd, lower_pointwise_bwd},
    [IR_OP_GELU] = {lower_pointwise_fwd, lower_pointwise_bwd},
    [IR_OP_SIGMOID] = {lower_pointwise_fwd, lower_pointwise_bwd},
    [IR_OP_TANH] = {lower_pointwise_fwd, lower_pointwise_bwd},
    [IR_OP_MAXOUT] = {lower_pointwise_fwd, lower_pointwise_bwd},
    [IR_OP_SOFTMAX] = {lower_pointwise_fwd, lower_pointwise_bwd},
    [IR_OP_ADD] = {lower_pointwise_fwd, lower_pointwise_bwd},
    [IR_OP_MUL] = {lower_pointwise_fwd, lower_pointwise_bwd},
    [IR_OP_CONCAT] = {lower_pointwise_fwd, lower_pointwise_bwd},
    [IR_OP_FLATTEN] = {lower_pointwise_fwd, lower_pointwise_bwd},
    [IR_OP_RESHAPE] = {lower_pointwise_fwd, lower_pointwise_bwd},
    [IR_OP_DROPOUT] = {lower_pointwise_fwd, lower_pointwise_bwd},
    [IR_OP_GRAD_NORM] = {lower_grad_norm, NULL},
    [IR_OP_UPDATE] = {lower_update, NULL},
    /* INPUT has no kernel; GRAD is dispatched by its forward node's op. */
};

/* Sections of the plan, in graph order. */
enum { SEC_FWD, SEC_BWD, SEC_UPDATE };

static int section_of(const ir_node *n, int first_grad) {
  if (n->op == IR_OP_UPDATE)
    return SEC_UPDATE;
  return n->id >= first_grad ? SEC_BWD : SEC_FWD;
}

static bool is_view(const ir_node *n) {
  const ir_node *f = n->op == IR_OP_GRAD ? n->fwd : n;
  return f->op == IR_OP_FLATTEN || f->op == IR_OP_RESHAPE;
}

static kiln_status tensor_type(lower_ctx *c, const char *what, ir_dtype d,
                               kir_type *out) {
  if (d == IR_F32 || d == IR_I32) {
    *out = d == IR_F32 ? KIR_F32 : KIR_I32;
    return KILN_OK;
  }
  return diag_error(c->err, KILN_ERR_INVALID, (kiln_loc){0},
                    "%s has dtype %s; compiled plans support f32 and i32", what,
                    ir_dtype_name(d));
}

static int add_tensor(lower_ctx *c, kir_tensor t) {
  kir_plan *p = c->plan;
  ARENA_PUSH(c->a, p->tensors, p->n_tensors, p->cap_tensors, t);
  return p->n_tensors - 1;
}

static int root_of(const kir_plan *p, int t) {
  KILN_ASSERT(t >= 0 && t < p->n_tensors);
  return p->tensors[t].alias >= 0 ? p->tensors[t].alias : t;
}

/* The tensors of node n: its output (when lowered) and its parameters. */
static kiln_status node_tensors(lower_ctx *c, const ir_node *n, bool lowered,
                                int *param_no) {
  kir_plan *p = c->plan;
  kiln_status st;
  kir_type t = KIR_F32;
  for (int k = 0; k < n->n_params; k++) {
    const ir_param *q = &n->params[k];
    if ((st = tensor_type(c, q->name, q->dtype, &t)))
      return st;
    p->param_tensor[(*param_no)++] =
        add_tensor(c, (kir_tensor){.name = q->name,
                                   .type = t,
                                   .count = ir_shape_numel(&q->shape, c->batch),
                                   .role = KIR_T_PARAM,
                                   .param = q,
                                   .alias = -1});
  }
  if (!lowered || n->op == IR_OP_UPDATE)
    return KILN_OK;
  if ((st = tensor_type(c, n->name, n->dtype, &t)))
    return st;
  kir_tensor v = {.name = n->name,
                  .type = t,
                  .count = lower_numel(c, n),
                  .role = n->op == IR_OP_INPUT ? KIR_T_INPUT : KIR_T_VALUE,
                  .node = n,
                  .alias = -1};
  if (is_view(n)) {
    v.alias = root_of(p, lower_node_tensor(c, n->inputs[0]));
    KILN_ASSERT(p->tensors[v.alias].count == v.count);
  }
  p->node_tensor[n->id] = add_tensor(c, v);
  return KILN_OK;
}

static kiln_status lower_node(lower_ctx *c, const ir_node *n) {
  if (n->op == IR_OP_INPUT || is_view(n))
    return KILN_OK; /* data, or a view: no kernel */
  lower_rule rule;
  if (n->op == IR_OP_GRAD) {
    KILN_ASSERT(n->fwd);
    rule = lower_table[n->fwd->op].bwd;
  } else {
    rule = lower_table[n->op].fwd;
  }
  KILN_ASSERT(rule && "every op has a lowering rule");
  return rule(c, n);
}

kiln_status lower_plan(const ir_graph *g, int64_t batch, kir_plan_mode mode,
                       arena *a, kir_plan *out, kiln_error *err) {
  KILN_ASSERT(g && a && out && batch >= 1);
  *out = (kir_plan){.a = a, .g = g, .batch = batch, .mode = mode};
  lower_ctx c = {.plan = out,
                 .a = a,
                 .g = g,
                 .batch = batch,
                 .training = mode == KIR_PLAN_TRAIN,
                 .err = err};
  int first_grad = g->n_nodes, n_params = 0;
  for (int i = 0; i < g->n_nodes; i++) {
    if (g->nodes[i]->op == IR_OP_GRAD && first_grad == g->n_nodes)
      first_grad = i;
    n_params += g->nodes[i]->n_params;
  }
  out->node_tensor = ARENA_ARRAY(a, int, g->n_nodes > 0 ? g->n_nodes : 1);
  out->param_tensor = ARENA_ARRAY(a, int, n_params > 0 ? n_params : 1);
  kiln_status st;
  int param_no = 0, section = SEC_FWD;
  for (int i = 0; i < g->n_nodes; i++) {
    const ir_node *n = g->nodes[i];
    out->node_tensor[i] = -1;
    bool lowered = c.training || section_of(n, first_grad) == SEC_FWD;
    if ((st = node_tensors(&c, n, lowered, &param_no)))
      return st;
  }
  for (int i = 0; i < g->n_nodes; i++) {
    const ir_node *n = g->nodes[i];
    int s = section_of(n, first_grad);
    KILN_ASSERT(s >= section && "forward, backward, updates in that order");
    if (s > SEC_FWD && !c.training)
      break;
    if (s > section) {
      if (section == SEC_FWD)
        out->fwd_end = out->n_launches;
      if (s == SEC_UPDATE)
        out->bwd_end = out->n_launches;
      section = s;
    }
    if ((st = lower_node(&c, n)))
      return st;
  }
  if (section == SEC_FWD)
    out->fwd_end = out->n_launches;
  if (section != SEC_UPDATE)
    out->bwd_end = out->n_launches;
  return KILN_OK;
}

int lower_node_tensor(lower_ctx *c, const ir_node *n) {
  KILN_ASSERT(n && n->id >= 0 && n->id < c->g->n_nodes &&
              c->g->nodes[n->id] == n);
  int t = c->plan->node_tensor[n->id];
  KILN_ASSERT(t >= 0 && "node has no tensor in this plan's mode");
  return t;
}

int kir_plan_param_tensor(const kir_plan *p, const ir_param *param) {
  int no = 0;
  for (int i = 0; i < p->g->n_nodes; i++) {
    const ir_node *n = p->g->nodes[i];
    for (int k = 0; k < n->n_params; k++, no++)
      if (&n->params[k] == param)
        return p->param_tensor[no];
  }
  return -1;
}

int lower_param_tensor(lower_ctx *c, const ir_param *p) {
  int t = kir_plan_param_tensor(c->plan, p);
  KILN_ASSERT(t >= 0 && "a parameter of the graph");
  return t;
}

int lower_scratch(lower_ctx *c, const char *name, kir_type t, int64_t count) {
  kir_plan *p = c->plan;
  for (int i = 0; i < p->n_tensors; i++)
    if (p->tensors[i].role == KIR_T_SCRATCH &&
        strcmp(p->tensors[i].name, name) == 0) {
      KILN_ASSERT(p->tensors[i].type == t && p->tensors[i].count == count &&
                  "a scratch tensor asked for with two shapes");
      return i;
    }
  KILN_ASSERT(count > 0);
  return add_tensor(c, (kir_tensor){.name = arena_strdup(c->a, name),
                                    .type = t,
                                    .count = count,
                                    .role = KIR_T_SCRATCH,
                                    .alias = -1});
}

kiln_status lower_launch(lower_ctx *c, kir_kernel *k, const int *args,
                         const ir_node *n) {
  kiln_status st = kir_verify(k, c->err);
  if (st)
    return st;
  kir_plan *p = c->plan;
  int n_glob = 0;
  while (n_glob < k->n_bufs && k->bufs[n_glob]->space == KIR_GLOBAL)
    n_glob++;
  int *bound = ARENA_ARRAY(c->a, int, n_glob > 0 ? n_glob : 1);
  for (int i = 0; i < n_glob; i++) {
    const kir_buf *b = k->bufs[i];
    KILN_ASSERT(args[i] >= 0 && args[i] < p->n_tensors);
    const kir_tensor *t = &p->tensors[args[i]];
    if (t->type != b->type || t->count != b->count)
      return diag_error(c->err, KILN_ERR_INTERNAL, (kiln_loc){0},
                        "kernel '%s': buffer '%s' (%s[%lld]) is bound to "
                        "tensor '%s' (%s[%lld])",
                        k->name, b->name, kir_type_name(b->type),
                        (long long)b->count, t->name, kir_type_name(t->type),
                        (long long)t->count);
    bound[i] = args[i];
  }
  /* The renderers mark pointers noalias: a buffer the kernel writes may
   * share its storage with no other argument. */
  for (int i = 0; i < n_glob; i++) {
    if (k->bufs[i]->read_only)
      continue;
    for (int j = 0; j < n_glob; j++)
      KILN_ASSERT((j == i || root_of(p, bound[i]) != root_of(p, bound[j])) &&
                  "a written buffer aliases another argument");
  }
  kir_launch l = {.k = k, .args = bound, .node = n};
  ARENA_PUSH(c->a, p->launches, p->n_launches, p->cap_launches, l);
  return KILN_OK;
}

const char *lower_kernel_name(lower_ctx *c, const char *prefix,
                              const ir_node *n) {
  char *s = arena_printf(c->a, "%s_%s", prefix, n->name);
  for (char *q = s; *q; q++) {
    bool ok = (*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
              (*q >= '0' && *q <= '9') || *q == '_';
    if (!ok)
      *q = '_';
  }
  return s;
}

void lower_dims(lower_ctx *c, const ir_node *n, int64_t dims[IR_MAX_DIMS]) {
  for (int i = 0; i < IR_MAX_DIMS; i++)
    dims[i] =
        i < n->shape.rank
            ? (n->shape.dim[i] == IR_DIM_BATCH ? c->batch : n->shape.dim[i])
            : 1;
}

int64_t lower_numel(lower_ctx *c, const ir_node *n) {
  return ir_shape_numel(&n->shape, c->batch);
}
