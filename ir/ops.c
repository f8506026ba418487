/* ops.c — the op table: one row per ir_op with everything about the op
 * (name, inputs, attributes and defaults, fusion class, shape rule, cost
 * rule), plus the helpers shape rules share. The rows must match the "Ops"
 * table of docs/model-format.md; the rules live in ops_nn.c and
 * ops_tensor.c. */
#include "ir/ir_impl.h"

#include <string.h>

/* Attribute rows, so that each op's row reads like the doc's table. */
#define A_INT(n, d, text)                                                      \
  { .name = n, .type = IR_ATTR_INT, .def_int = d, .doc = text }
#define A_INT_REQ(n, text)                                                     \
  { .name = n, .type = IR_ATTR_INT, .required = true, .doc = text }
#define A_FLOAT(n, d, text)                                                    \
  { .name = n, .type = IR_ATTR_FLOAT, .def_float = d, .doc = text }
#define A_BOOL(n, d, text)                                                     \
  { .name = n, .type = IR_ATTR_BOOL, .def_int = d, .doc = text }
#define A_PAIR(n, d, text)                                                     \
  { .name = n, .type = IR_ATTR_PAIR, .def_int = d, .doc = text }
#define A_PAIR_REQ(n, text)                                                    \
  { .name = n, .type = IR_ATTR_PAIR, .required = true, .doc = text }
#define A_INTS_REQ(n, text)                                                    \
  { .name = n, .type = IR_ATTR_INTS, .required = true, .doc = text }
#define A_SYM(n, d, syms, text)                                                \
  {                                                                            \
    .name = n, .type = IR_ATTR_SYMBOL, .def_sym = d, .symbols = syms,          \
    .doc = text                                                                \
  }

#define INIT_SYMBOLS "auto|xavier_uniform|xavier_normal|he_uniform|he_normal"
#define A_INIT                                                                 \
  A_SYM("init", "auto", INIT_SYMBOLS,                                          \
        "weight initialiser; auto: He before ReLU-like, else Xavier")

/* A pointwise activation: one float input, same shape out. */
#define ACTIVATION(op_name, text)                                              \
  .name = op_name, .min_inputs = 1, .max_inputs = 1, .input_names = "x",       \
  .fuse = IR_FUSE_ELEMWISE, .infer = ir_infer_pointwise, .doc = text

const ir_op_info ir_op_table[IR_OP_COUNT] = {
    [IR_OP_INPUT] = {.name = "input",
                     .input_names = "",
                     .fuse = IR_FUSE_OPAQUE,
                     .infer = ir_infer_input,
                     .doc = "a graph input, declared with `input`"},
    [IR_OP_CONV2D] = {.name = "conv2d",
                      .min_inputs = 1,
                      .max_inputs = 1,
                      .input_names = "x",
                      .attrs = {A_INT_REQ("out", "output channels"),
                                A_PAIR_REQ("kernel", "kernel size (h, w)"),
                                A_PAIR("stride", 1, "stride (h, w)"),
                                A_PAIR("padding", 0, "zero padding (h, w)"),
                                A_PAIR("dilation", 1, "dilation (h, w)"),
                                A_INT("groups", 1, "channel groups"),
                                A_BOOL("bias", 1, "add a learned bias"),
                                A_INIT},
                      .fuse = IR_FUSE_OUT_ELEMWISE,
                      .infer = ir_infer_conv2d,
                      .macs = ir_macs_conv2d,
                      .doc = "2-D convolution (cross-correlation) of [N, C, "
                             "H, W]"},
    [IR_OP_BATCHNORM] =
        {.name = "batchnorm",
         .min_inputs = 1,
         .max_inputs = 1,
         .input_names = "x",
         .attrs = {A_FLOAT("momentum", 0.1, "running statistics update rate"),
                   A_FLOAT("eps", 1e-5, "added to the variance"),
                   A_BOOL("affine", 1, "learned per-channel scale and shift"),
                   A_SYM("mode", "train", "train|eval",
                         "train: batch statistics; eval: running ones")},
         /* Statistics over the batch, then a pointwise pass: passes
          * handle it by name (folding, conv epilogues), not by class. */
         .fuse = IR_FUSE_OPAQUE,
         .infer = ir_infer_batchnorm,
         .doc = "batch normalisation over dimension 1 of [N, C] or [N, C, H, "
                "W]"},
    [IR_OP_LAYERNORM] =
        {.name = "layernorm",
         .min_inputs = 1,
         .max_inputs = 1,
         .input_names = "x",
         .attrs = {A_FLOAT("eps", 1e-5, "added to the variance"),
                   A_BOOL("affine", 1, "learned scale and shift")},
         .fuse = IR_FUSE_OPAQUE,
         .infer = ir_infer_layernorm,
         .doc = "layer normalisation over the last dimension"},
    [IR_OP_LINEAR] = {.name = "linear",
                      .min_inputs = 1,
                      .max_inputs = 1,
                      .input_names = "x",
                      .attrs = {A_INT_REQ("out", "output features"),
                                A_BOOL("bias", 1, "add a learned bias"),
                                A_INIT},
                      .fuse = IR_FUSE_OUT_ELEMWISE,
                      .infer = ir_infer_linear,
                      .macs = ir_macs_linear,
                      .doc = "x W^T + b over the last dimension (PyTorch "
                             "layout: weight [out, in])"},
    [IR_OP_MATMUL] = {.name = "matmul",
                      .min_inputs = 2,
                      .max_inputs = 2,
                      .input_names = "a, b",
                      .fuse = IR_FUSE_OUT_ELEMWISE,
                      .infer = ir_infer_matmul,
                      .macs = ir_macs_matmul,
                      .doc = "batched matrix product [..., m, k] x [..., k, "
                             "n]"},
    [IR_OP_RELU] = {ACTIVATION("relu", "max(x, 0)")},
    [IR_OP_LEAKY_RELU] = {ACTIVATION("leaky_relu", "x if x > 0 else slope*x"),
                          .attrs = {A_FLOAT("slope", 0.01,
                                            "slope for negative x")}},
    [IR_OP_PRELU] = {.name = "prelu",
                     .min_inputs = 1,
                     .max_inputs = 1,
                     .input_names = "x",
                     .attrs = {A_BOOL("shared", 0,
                                      "one slope for all channels")},
                     /* The slope broadcasts along dimension 1. */
                     .fuse = IR_FUSE_BROADCAST,
                     .infer = ir_infer_prelu,
                     .doc = "leaky ReLU with learned slopes (initially 0.25)"},
    [IR_OP_ELU] = {ACTIVATION("elu", "x if x > 0 else alpha*(exp(x) - 1)"),
                   .attrs = {A_FLOAT("alpha", 1.0, "scale for negative x")}},
    [IR_OP_GELU] = {ACTIVATION("gelu", "x * Phi(x)"),
                    .attrs = {A_SYM("approximate", "none", "none|tanh",
                                    "none: erf form; tanh: tanh form")}},
    [IR_OP_SIGMOID] = {ACTIVATION("sigmoid", "1 / (1 + exp(-x))")},
    [IR_OP_TANH] = {ACTIVATION("tanh", "tanh(x)")},
    [IR_OP_MAXOUT] = {.name = "maxout",
                      .min_inputs = 1,
                      .max_inputs = 1,
                      .input_names = "x",
                      .attrs = {A_INT("pieces", 2,
                                      "channels per output channel")},
                      .fuse = IR_FUSE_REDUCTION,
                      .infer = ir_infer_maxout,
                      .doc = "output channel j = max of input channels "
                             "j*pieces .. j*pieces+pieces-1"},
    [IR_OP_SOFTMAX] = {.name = "softmax",
                       .min_inputs = 1,
                       .max_inputs = 1,
                       .input_names = "x",
                       .attrs = {A_INT("axis", -1, "normalised dimension")},
                       /* max, sum of exponentials, then a pointwise pass */
                       .fuse = IR_FUSE_OPAQUE,
                       .infer = ir_infer_softmax,
                       .doc = "exp(x) / sum(exp(x)) along axis"},
    [IR_OP_MAXPOOL] = {.name = "maxpool",
                       .min_inputs = 1,
                       .max_inputs = 1,
                       .input_names = "x",
                       .attrs = {A_PAIR_REQ("kernel", "window (h, w)"),
                                 A_PAIR("stride", 0, "0: same as kernel"),
                                 A_PAIR("padding", 0,
                                        "implicit -inf padding (h, w)")},
                       .fuse = IR_FUSE_REDUCTION,
                       .infer = ir_infer_pool,
                       .doc = "maximum over windows of [N, C, H, W]"},
    [IR_OP_AVGPOOL] = {.name = "avgpool",
                       .min_inputs = 1,
                       .max_inputs = 1,
                       .input_names = "x",
                       .attrs = {A_PAIR_REQ("kernel", "window (h, w)"),
                                 A_PAIR("stride", 0, "0: same as kernel"),
                                 A_PAIR("padding", 0,
                                        "zero padding, counted in the "
                                        "average")},
                       .fuse = IR_FUSE_REDUCTION,
                       .infer = ir_infer_pool,
                       .doc = "mean over windows of [N, C, H, W]"},
    [IR_OP_GLOBAL_AVGPOOL] = {.name = "global_avgpool",
                              .min_inputs = 1,
                              .max_inputs = 1,
                              .input_names = "x",
                              .fuse = IR_FUSE_REDUCTION,
                              .infer = ir_infer_global_avgpool,
                              .doc = "mean over H and W: [N, C, H, W] -> [N, "
                                     "C]"},
    [IR_OP_ADD] = {.name = "add",
                   .min_inputs = 2,
                   .max_inputs = 2,
                   .input_names = "a, b",
                   .fuse = IR_FUSE_BROADCAST,
                   .infer = ir_infer_binary,
                   .doc = "a + b with NumPy broadcasting"},
    [IR_OP_MUL] = {.name = "mul",
                   .min_inputs = 2,
                   .max_inputs = 2,
                   .input_names = "a, b",
                   .fuse = IR_FUSE_BROADCAST,
                   .infer = ir_infer_binary,
                   .doc = "a * b with NumPy broadcasting"},
    [IR_OP_CONCAT] = {.name = "concat",
                      .min_inputs = 2,
                      .max_inputs = -1,
                      .input_names = "x1, x2, ...",
                      .attrs = {A_INT("axis", 1, "joined dimension")},
                      .fuse = IR_FUSE_INJECTIVE,
                      .infer = ir_infer_concat,
                      .doc = "inputs joined along axis"},
    [IR_OP_FLATTEN] = {.name = "flatten",
                       .min_inputs = 1,
                       .max_inputs = 1,
                       .input_names = "x",
                       .attrs = {A_INT("start", 1,
                                       "first of the merged dimensions")},
                       .fuse = IR_FUSE_INJECTIVE,
                       .infer = ir_infer_flatten,
                       .doc = "dimensions from start on become one"},
    [IR_OP_RESHAPE] = {.name = "reshape",
                       .min_inputs = 1,
                       .max_inputs = 1,
                       .input_names = "x",
                       .attrs = {A_INTS_REQ("shape", "new shape: ints, "
                                                     "batch, at most one -1")},
                       .fuse = IR_FUSE_INJECTIVE,
                       .infer = ir_infer_reshape,
                       .doc = "same elements in row-major order, new shape"},
    [IR_OP_DROPOUT] = {.name = "dropout",
                       .min_inputs = 1,
                       .max_inputs = 1,
                       .input_names = "x",
                       .attrs = {A_FLOAT("p", 0.5, "probability of zeroing")},
                       /* the mask is regenerated from a counter-based RNG,
                        * so dropout is pointwise */
                       .fuse = IR_FUSE_ELEMWISE,
                       .infer = ir_infer_dropout,
                       .doc = "inverted dropout while training; identity in "
                              "inference"},
    [IR_OP_CROSS_ENTROPY] =
        {.name = "cross_entropy",
         .min_inputs = 2,
         .max_inputs = 2,
         .input_names = "logits, label",
         .attrs = {A_FLOAT("smoothing", 0.0, "label smoothing"),
                   A_SYM("reduction", "mean", "mean|sum", "over the batch")},
         .fuse = IR_FUSE_OPAQUE,
         .is_loss = true,
         .infer = ir_infer_cross_entropy,
         .doc = "softmax cross-entropy of [N, K] logits and [N] class "
                "indices; a scalar"},
    [IR_OP_MSE] = {.name = "mse",
                   .min_inputs = 2,
                   .max_inputs = 2,
                   .input_names = "prediction, target",
                   .attrs = {A_SYM("reduction", "mean", "mean|sum",
                                   "over all elements")},
                   .fuse = IR_FUSE_REDUCTION,
                   .is_loss = true,
                   .infer = ir_infer_mse,
                   .doc = "mean squared error; a scalar"},
    /* Not a layer: autodiff's backward node (autodiff.c). Its inputs
     * depend on the forward op, so arity and attributes are open. */
    [IR_OP_GRAD] = {.name = "grad",
                    .min_inputs = 0,
                    .max_inputs = -1,
                    .input_names = "dy, saved values",
                    .fuse = IR_FUSE_OPAQUE,
                    .internal = true,
                    .infer = ir_infer_grad,
                    .doc = "gradient of the loss w.r.t. an input or "
                           "parameter of a forward node"},
    /* Not layers: the optimizer as graph ops (update.c). Hyperparameters
     * are the graph's train section, lr and step are per run, so neither
     * has attributes. */
    [IR_OP_GRAD_NORM] = {.name = "grad_norm",
                         .min_inputs = 1,
                         .max_inputs = -1,
                         .input_names = "parameter gradients",
                         .fuse = IR_FUSE_REDUCTION,
                         .internal = true,
                         .infer = ir_infer_grad_norm,
                         .doc = "global L2 norm of every parameter gradient; "
                                "a scalar"},
    /* Elementwise over a parameter and its state, in place; the output is
     * only a token that orders the update after its inputs. */
    [IR_OP_UPDATE] = {.name = "update",
                      .min_inputs = 1,
                      .max_inputs = 2,
                      .input_names = "grad, grad_norm",
                      .fuse = IR_FUSE_OPAQUE,
                      .internal = true,
                      .infer = ir_infer_update,
                      .doc = "optimizer step (clipping, weight decay, EMA) "
                             "of one parameter; owns its state"},
};
_Static_assert(ARRAY_LEN(ir_op_table) == IR_OP_COUNT,
               "one ir_op_table row per ir_op");

ir_op ir_op_find(const char *name) {
  for (int op = 0; op < IR_OP_COUNT; op++)
    if (strcmp(ir_op_table[op].name, name) == 0)
      return (ir_op)op;
  return IR_OP_COUNT;
}

int ir_op_attr_count(ir_op op) {
  KILN_ASSERT((unsigned)op < IR_OP_COUNT);
  int n = 0;
  while (n < IR_MAX_ATTRS && ir_op_table[op].attrs[n].name)
    n++;
  return n;
}

int ir_op_attr_index(ir_op op, const char *name) {
  int n = ir_op_attr_count(op);
  for (int k = 0; k < n; k++)
    if (strcmp(ir_op_table[op].attrs[k].name, name) == 0)
      return k;
  return -1;
}

/* ---- helpers for shape rules ---- */

ir_param *ir_add_param(ir_infer_ctx *c, const char *role, const ir_shape *s,
                       bool trainable, ir_init init) {
  ir_node *n = c->node;
  /* Nodes own at most a handful of parameters: copying on each add keeps
   * ir_node free of a capacity field. */
  ir_param *p = ARENA_ARRAY(c->a, ir_param, n->n_params + 1);
  if (n->n_params)
    memcpy(p, n->params, sizeof(ir_param) * (size_t)n->n_params);
  n->params = p;
  ir_param *np = &p[n->n_params++];
  np->name = arena_printf(c->a, "%s.%s", n->name, role);
  np->role = arena_strdup(c->a, role);
  np->shape = *s;
  np->dtype = n->dtype; /* rules set the node's dtype first */
  np->trainable = trainable;
  np->init = init;
  return np;
}

kiln_status ir_node_verror(kiln_error *err, kiln_status status,
                           const ir_node *n, const char *sep, const char *fmt,
                           va_list ap) {
  strbuf b;
  strbuf_init(&b);
  strbuf_printf(&b, "layer '%s' (%s)%s", n->name, ir_op_table[n->op].name, sep);
  strbuf_vprintf(&b, fmt, ap);
  kiln_status st = diag_error(err, status, n->loc, "%s", b.data);
  strbuf_free(&b);
  return st;
}

kiln_status ir_node_error(kiln_error *err, kiln_status status, const ir_node *n,
                          const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  kiln_status st = ir_node_verror(err, status, n, ": ", fmt, ap);
  va_end(ap);
  return st;
}

kiln_status ir_shape_error(ir_infer_ctx *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  kiln_status st =
      ir_node_verror(c->err, KILN_ERR_SHAPE, c->node, ": ", fmt, ap);
  va_end(ap);
  return st;
}

kiln_status ir_type_error(ir_infer_ctx *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  kiln_status st =
      ir_node_verror(c->err, KILN_ERR_TYPE, c->node, ": ", fmt, ap);
  va_end(ap);
  return st;
}

const ir_attr *ir_node_attr(const ir_node *n, const char *name) {
  int k = ir_op_attr_index(n->op, name);
  KILN_ASSERT(k >= 0 && "the op has no such attribute");
  return &n->attrs[k];
}

const char *ir_rule_input(ir_infer_ctx *c, int k) {
  const ir_node *x = c->node->inputs[k];
  return arena_printf(c->a, "'%s' %s", x->name, ir_shape_str(c->a, &x->shape));
}

const char *ir_rule_input_typed(ir_infer_ctx *c, int k) {
  const ir_node *x = c->node->inputs[k];
  return arena_printf(c->a, "'%s' %s%s", x->name, ir_dtype_name(x->dtype),
                      ir_shape_str(c->a, &x->shape));
}

kiln_status ir_rule_float(ir_infer_ctx *c, int k) {
  if (ir_dtype_is_float(c->node->inputs[k]->dtype))
    return KILN_OK;
  return ir_type_error(c, "needs a floating-point input, but input %s is not",
                       ir_rule_input_typed(c, k));
}

static kiln_status needs(ir_infer_ctx *c, kiln_status st, const char *fmt, ...)
    KILN_PRINTF(3, 4);
static kiln_status needs(ir_infer_ctx *c, kiln_status st, const char *fmt,
                         ...) {
  va_list ap;
  va_start(ap, fmt);
  kiln_status r = ir_node_verror(c->err, st, c->node, " ", fmt, ap);
  va_end(ap);
  return r;
}

kiln_status ir_rule_needs(ir_infer_ctx *c, int k, const char *what,
                          bool with_dtype) {
  const ir_node *x = c->node->inputs[k];
  return needs(c, with_dtype ? KILN_ERR_TYPE : KILN_ERR_SHAPE,
               "needs %s, but input '%s' is %s%s", what, x->name,
               with_dtype ? ir_dtype_name(x->dtype) : "",
               ir_shape_str(c->a, &x->shape));
}

kiln_status ir_rule_rank(ir_infer_ctx *c, int k, int rank, const char *what) {
  if (c->node->inputs[k]->shape.rank == rank)
    return KILN_OK;
  return ir_rule_needs(c, k, what, false);
}

kiln_status ir_rule_at_least(ir_infer_ctx *c, const char *attr, int64_t min) {
  const ir_attr *a = ir_node_attr(c->node, attr);
  const char *want = min > 0 ? "positive" : "non-negative";
  if (a->type == IR_ATTR_PAIR) {
    if (a->pair[0] > IR_MAX_ATTR_INT || a->pair[1] > IR_MAX_ATTR_INT)
      return ir_type_error(c, "%s=%s is too large (at most %lld)", attr,
                           ir_pair_str(c->a, a->pair),
                           (long long)IR_MAX_ATTR_INT);
    if (a->pair[0] >= min && a->pair[1] >= min)
      return KILN_OK;
    return ir_type_error(c, "%s must be %s, got %s", attr, want,
                         ir_pair_str(c->a, a->pair));
  }
  KILN_ASSERT(a->type == IR_ATTR_INT);
  if (a->i >= min && a->i <= IR_MAX_ATTR_INT)
    return KILN_OK;
  if (a->i > IR_MAX_ATTR_INT)
    return ir_type_error(c, "%s=%lld is too large (at most %lld)", attr,
                         (long long)a->i, (long long)IR_MAX_ATTR_INT);
  return ir_type_error(c, "%s must be %s, got %lld", attr, want,
                       (long long)a->i);
}

int64_t ir_mul_sat(int64_t a, int64_t b) {
  KILN_ASSERT(a >= 0 && b >= 0);
  if (a == 0 || b == 0)
    return 0;
  return a > IR_MAX_COUNT / b ? IR_MAX_COUNT : a * b;
}

void ir_rule_same(ir_infer_ctx *c, int k) {
  c->node->shape = c->node->inputs[k]->shape;
  c->node->dtype = c->node->inputs[k]->dtype;
}

bool ir_shape_broadcast(const ir_shape *a, const ir_shape *b, ir_shape *out) {
  int rank = a->rank > b->rank ? a->rank : b->rank;
  ir_shape r = {.rank = rank};
  for (int i = 0; i < rank; i++) {
    /* align from the right; a missing dimension acts as 1 */
    int ia = a->rank - rank + i, ib = b->rank - rank + i;
    int64_t da = ia >= 0 ? a->dim[ia] : 1, db = ib >= 0 ? b->dim[ib] : 1;
    if (da == db || db == 1)
      r.dim[i] = da;
    else if (da == 1)
      r.dim[i] = db;
    else
      return false; /* includes batch against a fixed size > 1 */
  }
  *out = r;
  return true;
}

const char *ir_pair_str(arena *a, const int64_t p[2]) {
  if (p[0] == p[1])
    return arena_printf(a, "%lld", (long long)p[0]);
  return arena_printf(a, "(%lld, %lld)", (long long)p[0], (long long)p[1]);
}
