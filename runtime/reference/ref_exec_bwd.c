/* ref_exec_bwd.c — autodiff's grad nodes in the reference executor. A grad
 * node names its forward node f and what it differentiates (wrt >= 0:
 * input wrt of f; wrt < 0: parameter -1-wrt); this file dispatches on
 * (f->op, wrt) to the ref_* backward kernel and lays out its arguments as
 * ref_exec_fwd.c does for the forward. Kernels write, never accumulate, so
 * each grad node's buffer is exactly its one contribution; fan-out sums are
 * separate add nodes. Saved values (f's inputs and output) are read from
 * their nodes' buffers, batchnorm and layernorm statistics from what the
 * forward kept. */
#include "runtime/reference/ref_exec_impl.h"

#include <string.h>

/* The gradient of f's output, or NULL for the loss (then dloss = 1). */
static const double *upstream(const ref_exec *ex, const ir_node *gn) {
  return gn->fwd == ex->g->loss ? NULL : ex->buf[gn->inputs[0]->id];
}

static const char *role(const ir_node *gn) {
  return gn->wrt >= 0 ? NULL : gn->fwd->params[-1 - gn->wrt].role;
}

static bool is_role(const ir_node *gn, const char *r) {
  return gn->wrt < 0 && strcmp(role(gn), r) == 0;
}

static void matmul_bwd(ref_exec *ex, const ir_node *gn, const double *dy,
                       double *out) {
  const ir_node *f = gn->fwd, *a = f->inputs[0], *b = f->inputs[1];
  int ra = a->shape.rank, rb = b->shape.rank;
  int64_t da[IR_MAX_DIMS], db[IR_MAX_DIMS];
  rx_dims(ex, a, da);
  rx_dims(ex, b, db);
  ref_matmul_dims d = {.batch = 1,
                       .m = (int)da[ra - 2],
                       .k = (int)da[ra - 1],
                       .n = (int)db[rb - 1]};
  int64_t mk = (int64_t)d.m * d.k, kn = (int64_t)d.k * d.n,
          mn = (int64_t)d.m * d.n, batches = ex->numel[f->id] / mn;
  int64_t part = gn->wrt == 0 ? mk : kn;
  double *tmp = rx_scratch(ex, part);
  memset(out, 0, sizeof(double) * (size_t)ex->numel[gn->id]);
  /* A broadcast operand is shared by several output matrices: its
   * gradient sums their contributions. */
  for (int64_t e = 0; e < batches; e++) {
    int64_t ia, ib;
    rx_matmul_index(ex, f, e, &ia, &ib);
    ref_matmul_backward(&d, ex->buf[a->id] + ia * mk, ex->buf[b->id] + ib * kn,
                        dy + e * mn, gn->wrt == 0 ? tmp : NULL,
                        gn->wrt == 1 ? tmp : NULL);
    double *dst = out + (gn->wrt == 0 ? ia * mk : ib * kn);
    for (int64_t i = 0; i < part; i++)
      dst[i] += tmp[i];
  }
}

static void binary_bwd(const ref_exec *ex, const ir_node *gn, const double *dy,
                       double *out) {
  const ir_node *f = gn->fwd, *a = f->inputs[0], *b = f->inputs[1];
  int64_t da[IR_MAX_DIMS], db[IR_MAX_DIMS];
  rx_dims(ex, a, da);
  rx_dims(ex, b, db);
  double *ga = gn->wrt == 0 ? out : NULL, *gb = gn->wrt == 1 ? out : NULL;
  if (f->op == IR_OP_ADD)
    ref_add_bwd(dy, da, a->shape.rank, db, b->shape.rank, ga, gb);
  else
    ref_mul_bwd(ex->buf[a->id], da, a->shape.rank, ex->buf[b->id], db,
                b->shape.rank, dy, ga, gb);
}

static void concat_bwd(ref_exec *ex, const ir_node *gn, const double *dy,
                       double *out) {
  const ir_node *f = gn->fwd;
  int k = f->n_inputs, axis = rx_axis_of(f, "axis", f->shape.rank);
  ref_t *dxs[RX_MAX_CONCAT];
  int64_t lens[RX_MAX_CONCAT], outer = 1, inner = 1;
  KILN_ASSERT(k <= RX_MAX_CONCAT);
  /* The kernel splits dy into every input's gradient; the ones this node
   * does not want land in scratch. */
  double *junk = rx_scratch(ex, ex->numel[f->id]);
  for (int i = 0; i < k; i++) {
    rx_axis(ex, f->inputs[i], axis, &outer, &lens[i], &inner);
    dxs[i] = i == gn->wrt ? out : junk;
    junk += i == gn->wrt ? 0 : ex->numel[f->inputs[i]->id];
  }
  ref_concat_bwd(dy, lens, k, outer, inner, dxs);
}

static void norm_bwd(ref_exec *ex, const ir_node *gn, const double *dy,
                     double *out) {
  const ir_node *f = gn->fwd;
  const double *x = ex->buf[f->inputs[0]->id], *aux = ex->aux[f->id];
  const double *gamma = rx_param_values(ex, f, "weight");
  double *dx = gn->wrt == 0 ? out : NULL;
  double *dgamma = is_role(gn, "weight") ? out : NULL;
  double *dbeta = is_role(gn, "bias") ? out : NULL;
  if (f->op == IR_OP_LAYERNORM) {
    int dim = (int)f->shape.dim[f->shape.rank - 1];
    int64_t rows = ex->numel[f->id] / dim;
    ref_layernorm_backward(rows, dim, x, dy, gamma, aux, aux + rows, dx, dgamma,
                           dbeta);
    return;
  }
  ref_bn_dims d;
  rx_bn_dims(ex, f, &d);
  if (ex->batch_stats[f->id])
    ref_batchnorm_backward_train(&d, x, dy, gamma, aux, aux + d.c, dx, dgamma,
                                 dbeta);
  else
    ref_batchnorm_backward_eval(&d, rx_attr(f, "eps")->f, x, dy, gamma,
                                rx_param_values(ex, f, "running_mean"),
                                rx_param_values(ex, f, "running_var"), dx,
                                dgamma, dbeta);
}

/* conv2d and linear: data, weight or bias. */
static void layer_bwd(ref_exec *ex, const ir_node *gn, const double *dy,
                      double *out) {
  const ir_node *f = gn->fwd, *in0 = f->inputs[0];
  const double *x = ex->buf[in0->id];
  const double *w = rx_param_values(ex, f, "weight");
  if (f->op == IR_OP_CONV2D) {
    ref_conv_dims d;
    rx_conv_dims(ex, f, &d);
    if (gn->wrt == 0)
      ref_conv2d_backward_data(&d, dy, w, out);
    else if (is_role(gn, "weight"))
      ref_conv2d_backward_filter(&d, x, dy, out);
    else
      ref_conv2d_backward_bias(&d, dy, out);
    return;
  }
  int in = (int)in0->shape.dim[in0->shape.rank - 1];
  int outf = (int)f->shape.dim[f->shape.rank - 1];
  int64_t rows = ex->numel[in0->id] / in;
  if (gn->wrt == 0)
    ref_linear_backward_data(rows, in, outf, dy, w, out);
  else if (is_role(gn, "weight"))
    ref_linear_backward_weight(rows, in, outf, x, dy, out);
  else
    ref_linear_backward_bias(rows, outf, dy, out);
}

kiln_status rx_backward(ref_exec *ex, const ir_node *gn, kiln_error *err) {
  const ir_node *f = gn->fwd, *in0 = f->inputs[0];
  const double *dy = upstream(ex, gn), *x = ex->buf[in0->id],
               *y = ex->buf[f->id];
  double *out = ex->buf[gn->id];
  int64_t n = ex->numel[f->id];
  switch (f->op) {
  case IR_OP_CONV2D:
  case IR_OP_LINEAR:
    layer_bwd(ex, gn, dy, out);
    break;
  case IR_OP_MATMUL:
    matmul_bwd(ex, gn, dy, out);
    break;
  case IR_OP_BATCHNORM:
  case IR_OP_LAYERNORM:
    norm_bwd(ex, gn, dy, out);
    break;
  case IR_OP_RELU:
    ref_relu_bwd(y, dy, out, n);
    break;
  case IR_OP_LEAKY_RELU:
    ref_leaky_relu_bwd(x, dy, out, n, rx_attr(f, "slope")->f);
    break;
  case IR_OP_PRELU: {
    int64_t nn, c, inner;
    bool shared = rx_attr(f, "shared")->i != 0;
    rx_nc_inner(ex, in0, &nn, &c, &inner);
    if (gn->wrt == 0)
      ref_prelu_bwd_data(x, rx_param_values(ex, f, "weight"), dy, out, nn, c,
                         inner, shared);
    else
      ref_prelu_bwd_weight(x, dy, out, nn, c, inner, shared);
    break;
  }
  case IR_OP_ELU:
    ref_elu_bwd(x, dy, out, n, rx_attr(f, "alpha")->f);
    break;
  case IR_OP_GELU:
    ref_gelu_bwd(x, dy, out, n,
                 rx_sym_is(f, "approximate", "tanh") ? REF_GELU_TANH
                                                     : REF_GELU_NONE);
    break;
  case IR_OP_SIGMOID:
    ref_sigmoid_bwd(y, dy, out, n);
    break;
  case IR_OP_TANH:
    ref_tanh_bwd(y, dy, out, n);
    break;
  case IR_OP_MAXOUT: {
    int64_t nn, c, inner;
    rx_nc_inner(ex, in0, &nn, &c, &inner);
    ref_maxout_bwd(x, dy, out, nn, c, inner, rx_attr(f, "pieces")->i);
    break;
  }
  case IR_OP_SOFTMAX: {
    int64_t outer, len, inner;
    rx_axis(ex, f, rx_axis_of(f, "axis", f->shape.rank), &outer, &len, &inner);
    ref_softmax_bwd(y, dy, out, outer, len, inner);
    break;
  }
  case IR_OP_MAXPOOL:
  case IR_OP_AVGPOOL: {
    ref_pool_dims d;
    rx_pool_dims(ex, f, &d);
    if (f->op == IR_OP_MAXPOOL)
      ref_maxpool_backward(&d, x, dy, out);
    else
      ref_avgpool_backward(&d, dy, out);
    break;
  }
  case IR_OP_GLOBAL_AVGPOOL: {
    int64_t nn, c, inner;
    rx_nc_inner(ex, in0, &nn, &c, &inner);
    ref_global_avgpool_backward((int)nn, (int)c, inner, dy, out);
    break;
  }
  case IR_OP_ADD:
  case IR_OP_MUL:
    binary_bwd(ex, gn, dy, out);
    break;
  case IR_OP_CONCAT:
    concat_bwd(ex, gn, dy, out);
    break;
  case IR_OP_FLATTEN:
  case IR_OP_RESHAPE:
    memcpy(out, dy, sizeof(double) * (size_t)n);
    break;
  case IR_OP_DROPOUT:
    rx_dropout(ex, f, dy, out, n);
    break;
  case IR_OP_CROSS_ENTROPY: {
    KILN_ASSERT(gn->wrt == 0 && "labels have no gradient");
    int64_t k = in0->shape.dim[in0->shape.rank - 1];
    /* the forward already checked the labels */
    if (ref_cross_entropy_bwd(
            x, ex->ibuf[f->inputs[1]->id], ex->numel[in0->id] / k, k,
            rx_attr(f, "smoothing")->f, rx_reduction(f), dy ? dy[0] : 1.0, out))
      return rx_error(err, KILN_ERR_INVALID, f, "a label is out of range");
    break;
  }
  case IR_OP_MSE:
    ref_mse_bwd(x, ex->buf[f->inputs[1]->id], ex->numel[in0->id],
                rx_reduction(f), dy ? dy[0] : 1.0, gn->wrt == 0 ? out : NULL,
                gn->wrt == 1 ? out : NULL);
    break;
  case IR_OP_INPUT:
  case IR_OP_GRAD:
  case IR_OP_GRAD_NORM:
  case IR_OP_UPDATE:
  case IR_OP_COUNT:
    KILN_ASSERT(!"no backward rule");
  }
  return KILN_OK;
}
