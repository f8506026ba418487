/* ops_tensor.c — shape rules of tensor algebra (matmul, add, mul), of ops
 * that reorganise elements (maxout, softmax, concat, flatten, reshape,
 * dropout) and of the losses.
 *
 * The symbolic batch dimension is kept as a whole: it may only be the first
 * dimension of any tensor, is never merged with other dimensions (flatten,
 * reshape) and never concatenated, so every shape stays exact for every
 * batch size. */
#include "ir/ir_impl.h"

static bool batch_inside(const ir_shape *s) {
  for (int i = 1; i < s->rank; i++)
    if (s->dim[i] == IR_DIM_BATCH)
      return true;
  return false;
}

static kiln_status same_dtype(ir_infer_ctx *c, int i, int j) {
  const ir_node *const *in = (const ir_node *const *)c->node->inputs;
  if (in[i]->dtype == in[j]->dtype)
    return KILN_OK;
  return ir_type_error(c, "input %s and input %s have different dtypes",
                       ir_rule_input_typed(c, i), ir_rule_input_typed(c, j));
}

kiln_status ir_infer_matmul(ir_infer_ctx *c) {
  ir_node *n = c->node;
  const ir_shape *a = &n->inputs[0]->shape, *b = &n->inputs[1]->shape;
  kiln_status st;
  for (int k = 0; k < 2; k++)
    if (n->inputs[k]->shape.rank < 2)
      return ir_rule_needs(c, k, "inputs [..., m, k] and [..., k, n]", false);
  if ((st = ir_rule_float(c, 0)) || (st = ir_rule_float(c, 1)) ||
      (st = same_dtype(c, 0, 1)))
    return st;
  int64_t ka = a->dim[a->rank - 1], kb = b->dim[b->rank - 2];
  if (ka != kb)
    return ir_shape_error(c,
                          "inner dimensions differ: input %s has %lld "
                          "columns, but input %s has %lld rows",
                          ir_rule_input(c, 0), (long long)ka,
                          ir_rule_input(c, 1), (long long)kb);
  /* Leading ("batch") dimensions broadcast; the matrices are the last
   * two. */
  ir_shape la = *a, lb = *b, y;
  la.rank -= 2;
  lb.rank -= 2;
  if (!ir_shape_broadcast(&la, &lb, &y))
    return ir_shape_error(c,
                          "cannot broadcast the leading dimensions of input "
                          "%s with input %s",
                          ir_rule_input(c, 0), ir_rule_input(c, 1));
  y.dim[y.rank++] = a->dim[a->rank - 2];
  y.dim[y.rank++] = b->dim[b->rank - 1];
  if (batch_inside(&y))
    return ir_shape_error(c,
                          "the product of input %s and input %s would not "
                          "have the batch as its first dimension",
                          ir_rule_input(c, 0), ir_rule_input(c, 1));
  n->shape = y;
  n->dtype = n->inputs[0]->dtype;
  return KILN_OK;
}

/* k multiply-accumulates per output element. */
int64_t ir_macs_matmul(const ir_node *n) {
  const ir_shape *a = &n->inputs[0]->shape;
  return ir_mul_sat(ir_shape_numel(&n->shape, 1), a->dim[a->rank - 1]);
}

kiln_status ir_infer_maxout(ir_infer_ctx *c) {
  ir_node *n = c->node;
  kiln_status st;
  const ir_shape *x = &n->inputs[0]->shape;
  if (x->rank < 2)
    return ir_rule_needs(c, 0, "an input [N, C, ...] of rank 2 or more", false);
  if ((st = ir_rule_float(c, 0)) || (st = ir_rule_at_least(c, "pieces", 1)))
    return st;
  int64_t pieces = ir_node_attr(n, "pieces")->i;
  if (x->dim[1] % pieces)
    return ir_shape_error(c,
                          "input %s has %lld channels, which pieces=%lld does "
                          "not divide",
                          ir_rule_input(c, 0), (long long)x->dim[1],
                          (long long)pieces);
  ir_rule_same(c, 0);
  n->shape.dim[1] /= pieces;
  return KILN_OK;
}

/* Normalises a possibly negative axis into [0, rank) or fails naming the
 * input. */
static kiln_status axis_of(ir_infer_ctx *c, const char *attr, int rank,
                           int *axis) {
  int64_t v = ir_node_attr(c->node, attr)->i;
  if (v < -rank || v >= rank)
    return ir_shape_error(c, "%s=%lld is out of range for input %s", attr,
                          (long long)v, ir_rule_input(c, 0));
  *axis = (int)(v < 0 ? v + rank : v);
  return KILN_OK;
}

kiln_status ir_infer_softmax(ir_infer_ctx *c) {
  kiln_status st;
  int axis = 0;
  if ((st = ir_rule_float(c, 0)) ||
      (st = axis_of(c, "axis", c->node->inputs[0]->shape.rank, &axis)))
    return st;
  ir_rule_same(c, 0);
  return KILN_OK;
}

kiln_status ir_infer_binary(ir_infer_ctx *c) {
  ir_node *n = c->node;
  kiln_status st;
  if ((st = ir_rule_float(c, 0)) || (st = ir_rule_float(c, 1)) ||
      (st = same_dtype(c, 0, 1)))
    return st;
  ir_shape y;
  if (!ir_shape_broadcast(&n->inputs[0]->shape, &n->inputs[1]->shape, &y))
    return ir_shape_error(c, "cannot broadcast input %s with input %s",
                          ir_rule_input(c, 0), ir_rule_input(c, 1));
  if (batch_inside(&y))
    return ir_shape_error(c,
                          "broadcasting input %s with input %s would move "
                          "the batch away from the first dimension",
                          ir_rule_input(c, 0), ir_rule_input(c, 1));
  n->shape = y;
  n->dtype = n->inputs[0]->dtype;
  return KILN_OK;
}

kiln_status ir_infer_concat(ir_infer_ctx *c) {
  ir_node *n = c->node;
  const ir_shape *x0 = &n->inputs[0]->shape;
  kiln_status st;
  int axis = 0;
  if ((st = axis_of(c, "axis", x0->rank, &axis)))
    return st;
  if (x0->dim[axis] == IR_DIM_BATCH)
    return ir_shape_error(c,
                          "cannot concatenate along the batch dimension "
                          "(axis=%d) of input %s",
                          axis, ir_rule_input(c, 0));
  ir_shape y = *x0;
  for (int k = 1; k < n->n_inputs; k++) {
    const ir_shape *xk = &n->inputs[k]->shape;
    bool fits = xk->rank == x0->rank;
    for (int i = 0; fits && i < x0->rank; i++)
      fits = i == axis || xk->dim[i] == x0->dim[i];
    if (!fits)
      return ir_shape_error(c,
                            "input %s does not match input %s outside axis "
                            "%d",
                            ir_rule_input(c, k), ir_rule_input(c, 0), axis);
    if ((st = same_dtype(c, 0, k)))
      return st;
    y.dim[axis] += xk->dim[axis]; /* each <= IR_MAX_NUMEL: no overflow */
  }
  n->shape = y;
  n->dtype = n->inputs[0]->dtype;
  return KILN_OK;
}

kiln_status ir_infer_flatten(ir_infer_ctx *c) {
  ir_node *n = c->node;
  const ir_shape *x = &n->inputs[0]->shape;
  kiln_status st;
  int start = 0;
  if ((st = axis_of(c, "start", x->rank, &start)))
    return st;
  if (x->dim[start] == IR_DIM_BATCH && x->rank > 1)
    return ir_shape_error(c,
                          "start=%d would merge the batch dimension of input "
                          "%s with others",
                          start, ir_rule_input(c, 0));
  ir_shape y = {.rank = start + 1};
  for (int i = 0; i < start; i++)
    y.dim[i] = x->dim[i];
  y.dim[start] = 1;
  for (int i = start; i < x->rank; i++)
    y.dim[start] =
        x->dim[i] == IR_DIM_BATCH ? IR_DIM_BATCH : y.dim[start] * x->dim[i];
  n->shape = y;
  n->dtype = n->inputs[0]->dtype;
  return KILN_OK;
}

/* reshape's target as written: "[batch, -1, 7]". */
static const char *target_str(arena *a, const ir_attr *t) {
  strbuf b;
  strbuf_init(&b);
  ir_attr_print(&b, t);
  const char *s = arena_strdup(a, b.data);
  strbuf_free(&b);
  return s;
}

kiln_status ir_infer_reshape(ir_infer_ctx *c) {
  ir_node *n = c->node;
  const ir_shape *x = &n->inputs[0]->shape;
  const ir_attr *t = ir_node_attr(n, "shape");
  if (t->n_ints > IR_MAX_DIMS)
    return ir_type_error(c, "shape has %d dimensions; at most %d are allowed",
                         t->n_ints, IR_MAX_DIMS);
  ir_shape y = {.rank = t->n_ints};
  bool batch_out = false;
  int infer = -1;
  int64_t known = 1; /* product of the given sizes, at most IR_MAX_NUMEL */
  for (int i = 0; i < t->n_ints; i++) {
    int64_t v = t->ints[i];
    y.dim[i] = v; /* -1 (which reads as IR_DIM_BATCH) is replaced below */
    if (v == IR_RESHAPE_BATCH) {
      if (i > 0)
        return ir_shape_error(c, "'batch' may only be the first dimension of "
                                 "the new shape");
      y.dim[i] = IR_DIM_BATCH;
      batch_out = true;
    } else if (v == -1) {
      if (infer >= 0)
        return ir_type_error(c, "shape may contain only one -1");
      infer = i;
    } else if (v < 1 || v > IR_MAX_NUMEL / known) {
      return ir_type_error(c,
                           "shape entries must be positive, -1 or batch, and "
                           "the shape at most %lld elements; got %s",
                           (long long)IR_MAX_NUMEL, target_str(c->a, t));
    } else {
      known *= v;
    }
  }
  bool batch_in = x->rank > 0 && x->dim[0] == IR_DIM_BATCH;
  if (batch_in != batch_out)
    return ir_shape_error(c, "cannot reshape input %s to %s: %s",
                          ir_rule_input(c, 0), target_str(c->a, t),
                          batch_in ? "the batch must stay the first dimension"
                                   : "the input has no batch dimension");
  int64_t total = ir_shape_numel(x, 1);
  const char *per = batch_in ? " per example" : "";
  if (infer >= 0) {
    if (total % known)
      return ir_shape_error(c,
                            "cannot reshape input %s to %s: %lld elements%s "
                            "are not divisible by %lld",
                            ir_rule_input(c, 0), target_str(c->a, t),
                            (long long)total, per, (long long)known);
    y.dim[infer] = total / known;
  } else if (known != total) {
    return ir_shape_error(c,
                          "cannot reshape input %s to %s: %lld elements%s "
                          "into %lld",
                          ir_rule_input(c, 0), target_str(c->a, t),
                          (long long)total, per, (long long)known);
  }
  n->shape = y;
  n->dtype = n->inputs[0]->dtype;
  return KILN_OK;
}

kiln_status ir_infer_dropout(ir_infer_ctx *c) {
  kiln_status st;
  if ((st = ir_rule_float(c, 0)))
    return st;
  double p = ir_node_attr(c->node, "p")->f;
  if (!(p >= 0 && p < 1)) /* also rejects NaN */
    return ir_type_error(c, "p must be in [0, 1), got %g", p);
  ir_rule_same(c, 0);
  return KILN_OK;
}

kiln_status ir_infer_cross_entropy(ir_infer_ctx *c) {
  ir_node *n = c->node;
  const ir_node *logits = n->inputs[0], *label = n->inputs[1];
  if (logits->shape.rank != 2)
    return ir_rule_needs(c, 0, "2-D logits [N, K]", false);
  if (!ir_dtype_is_float(logits->dtype))
    return ir_rule_needs(c, 0, "floating-point logits [N, K]", true);
  if (label->shape.rank != 1 || ir_dtype_is_float(label->dtype))
    return ir_rule_needs(c, 1, "1-D integer labels [N]", true);
  if (logits->shape.dim[0] != label->shape.dim[0])
    return ir_shape_error(c,
                          "logits %s and labels %s have different batch "
                          "sizes",
                          ir_rule_input(c, 0), ir_rule_input(c, 1));
  double s = ir_node_attr(n, "smoothing")->f;
  if (!(s >= 0 && s <= 1))
    return ir_type_error(c, "smoothing must be in [0, 1], got %g", s);
  n->shape = (ir_shape){.rank = 0};
  n->dtype = logits->dtype;
  return KILN_OK;
}

kiln_status ir_infer_mse(ir_infer_ctx *c) {
  ir_node *n = c->node;
  kiln_status st;
  if ((st = ir_rule_float(c, 0)) || (st = ir_rule_float(c, 1)) ||
      (st = same_dtype(c, 0, 1)))
    return st;
  if (!ir_shape_eq(&n->inputs[0]->shape, &n->inputs[1]->shape))
    return ir_shape_error(c,
                          "prediction %s and target %s have different "
                          "shapes",
                          ir_rule_input(c, 0), ir_rule_input(c, 1));
  n->shape = (ir_shape){.rank = 0};
  n->dtype = n->inputs[0]->dtype;
  return KILN_OK;
}
