/* ref_exec_fwd.c — forward ops of the reference executor: each node's
 * attributes and shapes turned into the arguments of its ref_* kernel.
 * The kernels do the arithmetic; this file only lays out sizes, picks
 * parameters by role, and keeps what the backward needs (batchnorm and
 * layernorm statistics, whether batch statistics were used). */
#include "runtime/reference/ref_exec_impl.h"

#include <string.h>

void rx_conv_dims(const ref_exec *ex, const ir_node *f, ref_conv_dims *d) {
  int64_t x[IR_MAX_DIMS];
  rx_dims(ex, f->inputs[0], x);
  const int64_t *k = rx_attr(f, "kernel")->pair,
                *s = rx_attr(f, "stride")->pair,
                *p = rx_attr(f, "padding")->pair,
                *dl = rx_attr(f, "dilation")->pair;
  *d = (ref_conv_dims){.n = (int)x[0],
                       .c = (int)x[1],
                       .h = (int)x[2],
                       .w = (int)x[3],
                       .k = (int)rx_attr(f, "out")->i,
                       .kh = (int)k[0],
                       .kw = (int)k[1],
                       .sh = (int)s[0],
                       .sw = (int)s[1],
                       .ph = (int)p[0],
                       .pw = (int)p[1],
                       .dh = (int)dl[0],
                       .dw = (int)dl[1],
                       .groups = (int)rx_attr(f, "groups")->i};
  KILN_ASSERT(ref_conv_dims_finish(d) && "the shape rule checked the sizes");
}

void rx_dropout(const ref_exec *ex, const ir_node *f, const double *in,
                double *out, int64_t n) {
  if (ex->run.training)
    ref_dropout_fwd(in, out, n, rx_attr(f, "p")->f, ex->run.seed,
                    ref_dropout_stream((uint64_t)ex->run.step, (uint32_t)f->id),
                    0);
  else
    memcpy(out, in, sizeof(double) * (size_t)n);
}

void rx_pool_dims(const ref_exec *ex, const ir_node *f, ref_pool_dims *d) {
  int64_t x[IR_MAX_DIMS];
  rx_dims(ex, f->inputs[0], x);
  const int64_t *k = rx_attr(f, "kernel")->pair,
                *s = rx_attr(f, "stride")->pair,
                *p = rx_attr(f, "padding")->pair;
  *d = (ref_pool_dims){.n = (int)x[0],
                       .c = (int)x[1],
                       .h = (int)x[2],
                       .w = (int)x[3],
                       .kh = (int)k[0],
                       .kw = (int)k[1],
                       .sh = (int)s[0],
                       .sw = (int)s[1],
                       .ph = (int)p[0],
                       .pw = (int)p[1]};
  KILN_ASSERT(ref_pool_dims_finish(d) && "the shape rule checked the sizes");
}

/* x [N, C, rest...] viewed as [N, C, inner]. */
void rx_nc_inner(const ref_exec *ex, const ir_node *x, int64_t *n, int64_t *c,
                 int64_t *inner) {
  int64_t d[IR_MAX_DIMS];
  rx_dims(ex, x, d);
  *n = d[0];
  *c = x->shape.rank > 1 ? d[1] : 1;
  *inner = ex->numel[x->id] / (*n * *c);
}

void rx_bn_dims(const ref_exec *ex, const ir_node *f, ref_bn_dims *d) {
  int64_t n, c, inner;
  rx_nc_inner(ex, f->inputs[0], &n, &c, &inner);
  *d = (ref_bn_dims){.n = (int)n, .c = (int)c, .spatial = inner};
}

/* softmax and concat: [outer, len, inner] around the axis of value v. */
void rx_axis(const ref_exec *ex, const ir_node *v, int axis, int64_t *outer,
             int64_t *len, int64_t *inner) {
  int64_t d[IR_MAX_DIMS];
  rx_dims(ex, v, d);
  KILN_ASSERT(ref_axis_split(d, v->shape.rank, axis, outer, len, inner));
}

/* For each batch entry of matmul's output, the matrix index of a and b
 * under broadcasting of the leading dimensions. */
void rx_matmul_index(const ref_exec *ex, const ir_node *f, int64_t e,
                     int64_t *ia, int64_t *ib) {
  int64_t y[IR_MAX_DIMS], a[IR_MAX_DIMS], b[IR_MAX_DIMS];
  rx_dims(ex, f, y);
  rx_dims(ex, f->inputs[0], a);
  rx_dims(ex, f->inputs[1], b);
  int ry = f->shape.rank - 2, ra = f->inputs[0]->shape.rank - 2,
      rb = f->inputs[1]->shape.rank - 2;
  int64_t sa = 1, sb = 1;
  *ia = *ib = 0;
  for (int i = ry - 1; i >= 0; i--) {
    int64_t idx = e % y[i];
    e /= y[i];
    int ja = i - (ry - ra), jb = i - (ry - rb);
    if (ja >= 0) {
      *ia += (a[ja] == 1 ? 0 : idx) * sa;
      sa *= a[ja];
    }
    if (jb >= 0) {
      *ib += (b[jb] == 1 ? 0 : idx) * sb;
      sb *= b[jb];
    }
  }
}

static void matmul_fwd(const ref_exec *ex, const ir_node *f) {
  const ir_node *a = f->inputs[0], *b = f->inputs[1];
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
  for (int64_t e = 0; e < batches; e++) {
    int64_t ia, ib;
    rx_matmul_index(ex, f, e, &ia, &ib);
    ref_matmul_forward(&d, ex->buf[a->id] + ia * mk, ex->buf[b->id] + ib * kn,
                       ex->buf[f->id] + e * mn);
  }
}

static void binary_fwd(const ref_exec *ex, const ir_node *f) {
  const ir_node *a = f->inputs[0], *b = f->inputs[1];
  int64_t da[IR_MAX_DIMS], db[IR_MAX_DIMS];
  rx_dims(ex, a, da);
  rx_dims(ex, b, db);
  (f->op == IR_OP_ADD ? ref_add_fwd : ref_mul_fwd)(
      ex->buf[a->id], da, a->shape.rank, ex->buf[b->id], db, b->shape.rank,
      ex->buf[f->id]);
}

static void concat_fwd(const ref_exec *ex, const ir_node *f) {
  int k = f->n_inputs, axis = rx_axis_of(f, "axis", f->shape.rank);
  const ref_t *xs[RX_MAX_CONCAT];
  int64_t lens[RX_MAX_CONCAT], outer = 1, inner = 1;
  KILN_ASSERT(k <= RX_MAX_CONCAT);
  for (int i = 0; i < k; i++) {
    xs[i] = ex->buf[f->inputs[i]->id];
    rx_axis(ex, f->inputs[i], axis, &outer, &lens[i], &inner);
  }
  ref_concat_fwd(xs, lens, k, outer, inner, ex->buf[f->id]);
}

static void batchnorm_fwd(ref_exec *ex, const ir_node *f) {
  ref_bn_dims d;
  rx_bn_dims(ex, f, &d);
  const double *x = ex->buf[f->inputs[0]->id];
  double *y = ex->buf[f->id], *aux = ex->aux[f->id];
  double *gamma = rx_param_values(ex, f, "weight"),
         *beta = rx_param_values(ex, f, "bias"),
         *rm = rx_param_values(ex, f, "running_mean"),
         *rv = rx_param_values(ex, f, "running_var");
  double eps = rx_attr(f, "eps")->f;
  ex->batch_stats[f->id] = ex->run.training && rx_sym_is(f, "mode", "train");
  if (ex->batch_stats[f->id])
    ref_batchnorm_forward_train(&d, eps, rx_attr(f, "momentum")->f, x, gamma,
                                beta, y, aux, aux + d.c, rm, rv);
  else
    ref_batchnorm_forward_eval(&d, eps, x, gamma, beta, rm, rv, y);
}

kiln_status rx_forward(ref_exec *ex, const ir_node *f, kiln_error *err) {
  const ir_node *in0 = f->n_inputs ? f->inputs[0] : NULL;
  const double *x = in0 ? ex->buf[in0->id] : NULL;
  double *y = ex->buf[f->id];
  int64_t n = ex->numel[f->id], xn = in0 ? ex->numel[in0->id] : 0;
  switch (f->op) {
  case IR_OP_CONV2D: {
    ref_conv_dims d;
    rx_conv_dims(ex, f, &d);
    ref_conv2d_forward(&d, x, rx_param_values(ex, f, "weight"),
                       rx_param_values(ex, f, "bias"), y);
    break;
  }
  case IR_OP_LINEAR: {
    int in = (int)in0->shape.dim[in0->shape.rank - 1];
    int out = (int)f->shape.dim[f->shape.rank - 1];
    ref_linear_forward(xn / in, in, out, x, rx_param_values(ex, f, "weight"),
                       rx_param_values(ex, f, "bias"), y);
    break;
  }
  case IR_OP_MATMUL:
    matmul_fwd(ex, f);
    break;
  case IR_OP_BATCHNORM: {
    int64_t nn, c, inner;
    rx_nc_inner(ex, in0, &nn, &c, &inner);
    if (ex->run.training && rx_sym_is(f, "mode", "train") && nn * inner < 2)
      return rx_error(err, KILN_ERR_INVALID, f,
                      "batch statistics need more than one value per "
                      "channel (batch %lld)",
                      (long long)ex->batch);
    batchnorm_fwd(ex, f);
    break;
  }
  case IR_OP_LAYERNORM: {
    int dim = (int)f->shape.dim[f->shape.rank - 1];
    double *aux = ex->aux[f->id];
    ref_layernorm_forward(
        n / dim, dim, rx_attr(f, "eps")->f, x, rx_param_values(ex, f, "weight"),
        rx_param_values(ex, f, "bias"), y, aux, aux + n / dim);
    break;
  }
  case IR_OP_RELU:
    ref_relu_fwd(x, y, n);
    break;
  case IR_OP_LEAKY_RELU:
    ref_leaky_relu_fwd(x, y, n, rx_attr(f, "slope")->f);
    break;
  case IR_OP_PRELU: {
    int64_t nn, c, inner;
    rx_nc_inner(ex, in0, &nn, &c, &inner);
    ref_prelu_fwd(x, rx_param_values(ex, f, "weight"), y, nn, c, inner,
                  rx_attr(f, "shared")->i != 0);
    break;
  }
  case IR_OP_ELU:
    ref_elu_fwd(x, y, n, rx_attr(f, "alpha")->f);
    break;
  case IR_OP_GELU:
    ref_gelu_fwd(x, y, n,
                 rx_sym_is(f, "approximate", "tanh") ? REF_GELU_TANH
                                                     : REF_GELU_NONE);
    break;
  case IR_OP_SIGMOID:
    ref_sigmoid_fwd(x, y, n);
    break;
  case IR_OP_TANH:
    ref_tanh_fwd(x, y, n);
    break;
  case IR_OP_MAXOUT: {
    int64_t nn, c, inner;
    rx_nc_inner(ex, in0, &nn, &c, &inner);
    ref_maxout_fwd(x, y, nn, c, inner, rx_attr(f, "pieces")->i);
    break;
  }
  case IR_OP_SOFTMAX: {
    int64_t outer, len, inner;
    rx_axis(ex, in0, rx_axis_of(f, "axis", f->shape.rank), &outer, &len,
            &inner);
    ref_softmax_fwd(x, y, outer, len, inner);
    break;
  }
  case IR_OP_MAXPOOL:
  case IR_OP_AVGPOOL: {
    ref_pool_dims d;
    rx_pool_dims(ex, f, &d);
    (f->op == IR_OP_MAXPOOL ? ref_maxpool_forward : ref_avgpool_forward)(&d, x,
                                                                         y);
    break;
  }
  case IR_OP_GLOBAL_AVGPOOL: {
    int64_t nn, c, inner;
    rx_nc_inner(ex, in0, &nn, &c, &inner);
    ref_global_avgpool_forward((int)nn, (int)c, inner, x, y);
    break;
  }
  case IR_OP_ADD:
  case IR_OP_MUL:
    binary_fwd(ex, f);
    break;
  case IR_OP_CONCAT:
    if (f->n_inputs > RX_MAX_CONCAT)
      return rx_error(err, KILN_ERR_INVALID, f,
                      "the reference executor concatenates at most %d inputs",
                      RX_MAX_CONCAT);
    concat_fwd(ex, f);
    break;
  case IR_OP_FLATTEN:
  case IR_OP_RESHAPE:
    memcpy(y, x, sizeof(double) * (size_t)n);
    break;
  case IR_OP_DROPOUT:
    rx_dropout(ex, f, x, y, n);
    break;
  case IR_OP_CROSS_ENTROPY: {
    const int32_t *labels = ex->ibuf[f->inputs[1]->id];
    int64_t k = in0->shape.dim[in0->shape.rank - 1], rows = xn / k;
    int64_t bad = ref_labels_find_invalid(labels, rows, k);
    if (bad >= 0)
      return rx_error(err, KILN_ERR_INVALID, f,
                      "label %d of example %lld is outside 0..%lld",
                      (int)labels[bad], (long long)bad, (long long)k - 1);
    ref_cross_entropy_fwd(x, labels, rows, k, rx_attr(f, "smoothing")->f,
                          rx_reduction(f), y);
    break;
  }
  case IR_OP_MSE:
    y[0] = ref_mse_fwd(x, ex->buf[f->inputs[1]->id], xn, rx_reduction(f));
    break;
  case IR_OP_INPUT:
  case IR_OP_GRAD:
  case IR_OP_GRAD_NORM:
  case IR_OP_UPDATE:
  case IR_OP_COUNT:
    KILN_ASSERT(!"not a forward op");
  }
  return KILN_OK;
}
