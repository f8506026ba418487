/* ref_exec_impl.h — the executor's state, shared by ref_exec.c (buffers,
 * parameters, the run loop), ref_exec_fwd.c (forward ops),
 * ref_exec_bwd.c (grad nodes) and ref_exec_update.c (grad_norm and update
 * nodes). Not part of the executor's interface. */
#ifndef KILN_REF_EXEC_IMPL_H
#define KILN_REF_EXEC_IMPL_H

#include "runtime/reference/ref.h"
#include "runtime/reference/ref_exec.h"

#include <string.h>

/* Inputs of one concat the executor handles (fixed-size argument arrays). */
#define RX_MAX_CONCAT 64

typedef struct rx_param {
  const ir_param *p;
  int64_t n;
  float *f32;             /* canonical storage */
  double *d;              /* this run's values, from f32 or the override;
                             NULL for state, which only updates read */
  const double *override; /* caller's, or NULL */
  bool state;             /* owned by an update node (optimizer, EMA) */
  int ema;                /* index of this parameter's EMA weights, or -1 */
} rx_param;

struct ref_exec {
  const ir_graph *g;
  int64_t batch;
  int64_t *numel; /* per node id */
  double **buf;   /* per node id; NULL for integer nodes */
  int32_t **ibuf; /* per node id; integer nodes only */
  bool *input_set;
  bool *is_bwd;      /* a grad node or computed from one */
  double **aux;      /* batchnorm/layernorm: saved mean, inv_std */
  bool *batch_stats; /* batchnorm: the last forward used batch statistics */
  int *param_base;   /* per node id: index of its first parameter */
  int n_params;
  rx_param *params;
  double *scratch; /* concat and matmul backward */
  int64_t scratch_n;
  float *grad32; /* update: one gradient as float32 */
  rt_run run;    /* the current (or last) run */
  bool skipped;  /* this run's gradient norm is not finite */
};

/* n's shape with the batch dimension replaced by the executor's batch. */
void rx_dims(const ref_exec *ex, const ir_node *n, int64_t dims[IR_MAX_DIMS]);
/* The double values of n's parameter with role `role`, or NULL. */
double *rx_param_values(const ref_exec *ex, const ir_node *n, const char *role);
/* A scratch buffer of at least n doubles, valid until the next call. */
double *rx_scratch(ref_exec *ex, int64_t n);
/* "layer 'NAME' (op): ..." at the node's statement. */
kiln_status rx_error(kiln_error *err, kiln_status st, const ir_node *n,
                     const char *fmt, ...) KILN_PRINTF(4, 5);

/* Attribute helpers: the node's attribute `name` (asserted to exist). */
static inline const ir_attr *rx_attr(const ir_node *n, const char *name) {
  int k = ir_op_attr_index(n->op, name);
  KILN_ASSERT(k >= 0);
  return &n->attrs[k];
}
static inline bool rx_sym_is(const ir_node *n, const char *name,
                             const char *word) {
  return strcmp(rx_attr(n, name)->sym, word) == 0;
}
static inline ref_reduction rx_reduction(const ir_node *n) {
  return rx_sym_is(n, "reduction", "sum") ? REF_REDUCTION_SUM
                                          : REF_REDUCTION_MEAN;
}
/* A possibly negative axis attribute, normalised against rank. */
static inline int rx_axis_of(const ir_node *n, const char *name, int rank) {
  int64_t a = rx_attr(n, name)->i;
  return (int)(a < 0 ? a + rank : a);
}

/* Kernel sizes of forward node f, from its attributes and input shapes
 * (ref_exec_fwd.c); the backward uses the same. */
void rx_conv_dims(const ref_exec *ex, const ir_node *f, ref_conv_dims *d);
void rx_pool_dims(const ref_exec *ex, const ir_node *f, ref_pool_dims *d);
/* Dropout node f applied to `in` (x forward, dy backward: the same mask and
 * scale, redrawn from the run's seed and step); the identity when the run is
 * not training. */
void rx_dropout(const ref_exec *ex, const ir_node *f, const double *in,
                double *out, int64_t n);
void rx_bn_dims(const ref_exec *ex, const ir_node *f, ref_bn_dims *d);
/* Value x [N, C, rest...] viewed as [N, C, inner]. */
void rx_nc_inner(const ref_exec *ex, const ir_node *x, int64_t *n, int64_t *c,
                 int64_t *inner);
/* Value v viewed as [outer, len, inner] around `axis`. */
void rx_axis(const ref_exec *ex, const ir_node *v, int axis, int64_t *outer,
             int64_t *len, int64_t *inner);
/* The matrices of a and b that matmul f's output matrix e multiplies,
 * under broadcasting of the leading dimensions. */
void rx_matmul_index(const ref_exec *ex, const ir_node *f, int64_t e,
                     int64_t *ia, int64_t *ib);

kiln_status rx_forward(ref_exec *ex, const ir_node *n, kiln_error *err);
kiln_status rx_backward(ref_exec *ex, const ir_node *n, kiln_error *err);
/* ref_exec_update.c: grad_norm sets ex->skipped when the norm is not
 * finite; an update node then leaves everything as it is. */
void rx_grad_norm(ref_exec *ex, const ir_node *n);
void rx_update(ref_exec *ex, const ir_node *u);

#endif
