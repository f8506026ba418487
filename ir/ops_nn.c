/* ops_nn.c — shape rules of the layers with parameters (conv2d, batchnorm,
 * layernorm, linear, prelu), of pooling and of pointwise activations, and
 * their MAC counts.
 *
 * A rule checks its input ranks and dtypes, then its attributes' ranges,
 * then how the shapes fit together; sets the output shape and dtype; and
 * declares the parameters (dtype = the node's). Spatial sizes follow
 * PyTorch: out = floor((H + 2p - d*(k-1) - 1) / s) + 1. */
#include "ir/ir_impl.h"

#include <math.h>
#include <string.h>

kiln_status ir_infer_input(ir_infer_ctx *c) {
  /* The shape was set by ir_graph_add_input; only its dimensions need
   * checking here. */
  ir_node *n = c->node;
  if (n->shape.rank < 0 || n->shape.rank > IR_MAX_DIMS)
    return ir_type_error(c, "rank %d is out of range (at most %d)",
                         n->shape.rank, IR_MAX_DIMS);
  for (int i = 0; i < n->shape.rank; i++) {
    int64_t d = n->shape.dim[i];
    if (d == IR_DIM_BATCH && i > 0)
      return ir_shape_error(c, "'batch' may only be the first dimension");
    if (d != IR_DIM_BATCH && (d < 1 || d > IR_MAX_ATTR_INT))
      return ir_type_error(c, "dimension %d is %lld; it must be in 1..%lld", i,
                           (long long)d, (long long)IR_MAX_ATTR_INT);
  }
  return KILN_OK;
}

/* Output size along one spatial dimension, or a shape error naming the
 * input when the (dilated) kernel does not fit the padded input. */
static kiln_status window(ir_infer_ctx *c, const int64_t k[2],
                          const int64_t s[2], const int64_t p[2],
                          const int64_t d[2], ir_shape *out) {
  const ir_shape *x = &c->node->inputs[0]->shape;
  for (int i = 0; i < 2; i++) {
    int64_t span = d[i] * (k[i] - 1) + 1, room = x->dim[2 + i] + 2 * p[i];
    if (span > room) {
      const char *dil = "";
      if (d[0] != 1 || d[1] != 1)
        dil = arena_printf(c->a, " with dilation %s (spanning %lldx%lld)",
                           ir_pair_str(c->a, d),
                           (long long)(d[0] * (k[0] - 1) + 1),
                           (long long)(d[1] * (k[1] - 1) + 1));
      return ir_shape_error(
          c, "kernel %lldx%lld%s does not fit input %s with padding %s",
          (long long)k[0], (long long)k[1], dil, ir_rule_input(c, 0),
          ir_pair_str(c->a, p));
    }
    out->dim[2 + i] = (room - span) / s[i] + 1;
  }
  return KILN_OK;
}

static ir_init init_of(const ir_node *n) {
  static const struct {
    const char *name;
    ir_init init;
  } inits[] = {
      {"auto", IR_INIT_AUTO},
      {"xavier_uniform", IR_INIT_XAVIER_UNIFORM},
      {"xavier_normal", IR_INIT_XAVIER_NORMAL},
      {"he_uniform", IR_INIT_HE_UNIFORM},
      {"he_normal", IR_INIT_HE_NORMAL},
  };
  const char *sym = ir_node_attr(n, "init")->sym;
  for (size_t i = 0; i < ARRAY_LEN(inits); i++)
    if (strcmp(inits[i].name, sym) == 0)
      return inits[i].init;
  KILN_ASSERT(!"init symbol not checked by ir_node_finish");
  return IR_INIT_AUTO;
}

static ir_shape shape1(int64_t d0) {
  return (ir_shape){.rank = 1, .dim = {d0}};
}

kiln_status ir_infer_conv2d(ir_infer_ctx *c) {
  ir_node *n = c->node;
  const ir_shape *x = &n->inputs[0]->shape;
  kiln_status st;
  if ((st = ir_rule_rank(c, 0, 4, "a 4-D input [N, C, H, W]")) ||
      (st = ir_rule_float(c, 0)) || (st = ir_rule_at_least(c, "out", 1)) ||
      (st = ir_rule_at_least(c, "kernel", 1)) ||
      (st = ir_rule_at_least(c, "stride", 1)) ||
      (st = ir_rule_at_least(c, "padding", 0)) ||
      (st = ir_rule_at_least(c, "dilation", 1)) ||
      (st = ir_rule_at_least(c, "groups", 1)))
    return st;
  int64_t out = ir_node_attr(n, "out")->i;
  int64_t groups = ir_node_attr(n, "groups")->i;
  const int64_t *k = ir_node_attr(n, "kernel")->pair;
  if (out % groups)
    return ir_type_error(c, "out=%lld is not divisible by groups=%lld",
                         (long long)out, (long long)groups);
  if (x->dim[1] % groups)
    return ir_shape_error(c,
                          "input %s has %lld channels, which groups=%lld does "
                          "not divide",
                          ir_rule_input(c, 0), (long long)x->dim[1],
                          (long long)groups);
  ir_shape y = {.rank = 4, .dim = {x->dim[0], out}};
  if ((st = window(c, k, ir_node_attr(n, "stride")->pair,
                   ir_node_attr(n, "padding")->pair,
                   ir_node_attr(n, "dilation")->pair, &y)))
    return st;
  n->shape = y;
  n->dtype = n->inputs[0]->dtype;
  ir_shape w = {.rank = 4, .dim = {out, x->dim[1] / groups, k[0], k[1]}};
  ir_add_param(c, "weight", &w, true, init_of(n));
  if (ir_node_attr(n, "bias")->i) {
    ir_shape b = shape1(out);
    ir_add_param(c, "bias", &b, true, IR_INIT_ZEROS);
  }
  return KILN_OK;
}

/* Every output element takes (C/groups)*kh*kw multiply-accumulates: the
 * weight's element count per output channel. */
int64_t ir_macs_conv2d(const ir_node *n) {
  int64_t w = ir_shape_numel(&n->params[0].shape, 1);
  return ir_mul_sat(w, n->shape.dim[2] * n->shape.dim[3]);
}

static kiln_status need_finite(ir_infer_ctx *c, const char *attr, double lo,
                               bool lo_open, double hi) {
  double v = ir_node_attr(c->node, attr)->f;
  if (isfinite(v) && (lo_open ? v > lo : v >= lo) && v <= hi)
    return KILN_OK;
  if (isinf(hi))
    return ir_type_error(c, "%s must be %s %g, got %g", attr,
                         lo_open ? "greater than" : "at least", lo, v);
  return ir_type_error(c, "%s must be in %c%g, %g], got %g", attr,
                       lo_open ? '(' : '[', lo, hi, v);
}

/* Per-channel (or per-feature) scale and shift. */
static void affine_params(ir_infer_ctx *c, int64_t dim) {
  if (!ir_node_attr(c->node, "affine")->i)
    return;
  ir_shape s = shape1(dim);
  ir_add_param(c, "weight", &s, true, IR_INIT_ONES);
  ir_add_param(c, "bias", &s, true, IR_INIT_ZEROS);
}

kiln_status ir_infer_batchnorm(ir_infer_ctx *c) {
  ir_node *n = c->node;
  kiln_status st;
  int rank = n->inputs[0]->shape.rank;
  if (rank != 2 && rank != 4)
    return ir_rule_needs(c, 0, "a 2-D input [N, C] or a 4-D input [N, C, H, W]",
                         false);
  if ((st = ir_rule_float(c, 0)) ||
      (st = need_finite(c, "momentum", 0, false, 1)) ||
      (st = need_finite(c, "eps", 0, true, INFINITY)))
    return st;
  ir_rule_same(c, 0);
  int64_t ch = n->shape.dim[1];
  affine_params(c, ch);
  /* Buffers: updated in train mode, read in eval mode, never trained. */
  ir_shape s = shape1(ch);
  ir_add_param(c, "running_mean", &s, false, IR_INIT_ZEROS);
  ir_add_param(c, "running_var", &s, false, IR_INIT_ONES);
  return KILN_OK;
}

/* The last dimension of input 0, which must exist and not be the batch. */
static kiln_status last_dim(ir_infer_ctx *c, const char *what, int64_t *d) {
  const ir_shape *x = &c->node->inputs[0]->shape;
  if (x->rank < 1 || x->dim[x->rank - 1] == IR_DIM_BATCH)
    return ir_rule_needs(c, 0, what, false);
  *d = x->dim[x->rank - 1];
  return KILN_OK;
}

kiln_status ir_infer_layernorm(ir_infer_ctx *c) {
  kiln_status st;
  int64_t d = 0;
  if ((st = last_dim(c, "an input [..., D] whose last dimension is not batch",
                     &d)) ||
      (st = ir_rule_float(c, 0)) ||
      (st = need_finite(c, "eps", 0, true, INFINITY)))
    return st;
  ir_rule_same(c, 0);
  affine_params(c, d);
  return KILN_OK;
}

kiln_status ir_infer_linear(ir_infer_ctx *c) {
  ir_node *n = c->node;
  kiln_status st;
  int64_t in = 0;
  if ((st = last_dim(c, "an input [..., in] whose last dimension is not batch",
                     &in)) ||
      (st = ir_rule_float(c, 0)) || (st = ir_rule_at_least(c, "out", 1)))
    return st;
  int64_t out = ir_node_attr(n, "out")->i;
  ir_rule_same(c, 0);
  n->shape.dim[n->shape.rank - 1] = out;
  ir_shape w = {.rank = 2, .dim = {out, in}}; /* PyTorch's layout */
  ir_add_param(c, "weight", &w, true, init_of(n));
  if (ir_node_attr(n, "bias")->i) {
    ir_shape b = shape1(out);
    ir_add_param(c, "bias", &b, true, IR_INIT_ZEROS);
  }
  return KILN_OK;
}

/* One row of in*out MACs per output row. */
int64_t ir_macs_linear(const ir_node *n) {
  return ir_mul_sat(ir_shape_numel(&n->shape, 1), n->params[0].shape.dim[1]);
}

kiln_status ir_infer_pointwise(ir_infer_ctx *c) {
  ir_node *n = c->node;
  kiln_status st;
  if ((st = ir_rule_float(c, 0)))
    return st;
  /* slope and alpha may be any finite number (negative slopes are legal in
   * PyTorch too); NaN or infinity would poison every activation. */
  if (n->op == IR_OP_LEAKY_RELU &&
      (st = need_finite(c, "slope", -INFINITY, false, INFINITY)))
    return st;
  if (n->op == IR_OP_ELU &&
      (st = need_finite(c, "alpha", -INFINITY, false, INFINITY)))
    return st;
  ir_rule_same(c, 0);
  return KILN_OK;
}

kiln_status ir_infer_prelu(ir_infer_ctx *c) {
  ir_node *n = c->node;
  kiln_status st;
  const ir_shape *x = &n->inputs[0]->shape;
  if (x->rank < 2)
    return ir_rule_needs(c, 0, "an input [N, C, ...] of rank 2 or more", false);
  if ((st = ir_rule_float(c, 0)))
    return st;
  ir_rule_same(c, 0);
  ir_shape w = shape1(ir_node_attr(n, "shared")->i ? 1 : x->dim[1]);
  ir_param *p = ir_add_param(c, "weight", &w, true, IR_INIT_CONST);
  p->init_value = 0.25; /* PyTorch's default */
  return KILN_OK;
}

kiln_status ir_infer_pool(ir_infer_ctx *c) {
  ir_node *n = c->node;
  kiln_status st;
  if ((st = ir_rule_rank(c, 0, 4, "a 4-D input [N, C, H, W]")) ||
      (st = ir_rule_float(c, 0)) || (st = ir_rule_at_least(c, "kernel", 1)) ||
      (st = ir_rule_at_least(c, "stride", 0)) ||
      (st = ir_rule_at_least(c, "padding", 0)))
    return st;
  const int64_t *k = ir_node_attr(n, "kernel")->pair;
  const int64_t *p = ir_node_attr(n, "padding")->pair;
  const int64_t *s0 = ir_node_attr(n, "stride")->pair;
  /* stride 0 (the default) means "same as the kernel", as in PyTorch */
  int64_t s[2] = {s0[0] ? s0[0] : k[0], s0[1] ? s0[1] : k[1]};
  /* PyTorch's limit: beyond half the kernel, windows would hold only
   * padding. */
  if (2 * p[0] > k[0] || 2 * p[1] > k[1])
    return ir_type_error(c, "padding %s is more than half of kernel %lldx%lld",
                         ir_pair_str(c->a, p), (long long)k[0],
                         (long long)k[1]);
  ir_rule_same(c, 0);
  static const int64_t one[2] = {1, 1};
  return window(c, k, s, p, one, &n->shape);
}

kiln_status ir_infer_global_avgpool(ir_infer_ctx *c) {
  ir_node *n = c->node;
  kiln_status st;
  if ((st = ir_rule_rank(c, 0, 4, "a 4-D input [N, C, H, W]")) ||
      (st = ir_rule_float(c, 0)))
    return st;
  ir_rule_same(c, 0);
  n->shape.rank = 2;
  return KILN_OK;
}
