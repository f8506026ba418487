/* ref_exec.c — the reference executor's storage and run loop: one double
 * buffer per node, the float32 parameter store with its per-run double
 * copy, inputs, and the loop that runs each node through ref_exec_fwd.c
 * (forward ops), ref_exec_bwd.c (autodiff's grad nodes) or
 * ref_exec_update.c (the optimizer's nodes). See ref_exec.h for the
 * interface and why parameters are float32.
 *
 * Optimizer state and EMA weights (the parameters of update nodes) have no
 * double copy: only the update reads them, in float32, as train_opt_step
 * does. An evaluation with EMA converts a parameter's EMA weights instead
 * of the parameter into its double copy. */
#include "runtime/reference/ref_exec_impl.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static void *xcalloc(int64_t n, size_t size) {
  void *p = calloc((size_t)(n > 0 ? n : 1), size);
  KILN_ASSERT(p && "out of memory");
  return p;
}

kiln_status rx_error(kiln_error *err, kiln_status st, const ir_node *n,
                     const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return diag_error(err, st, n->loc, "layer '%s' (%s): %s", n->name,
                    ir_op_table[n->op].name, msg);
}

void rx_dims(const ref_exec *ex, const ir_node *n, int64_t dims[IR_MAX_DIMS]) {
  for (int i = 0; i < n->shape.rank; i++)
    dims[i] = n->shape.dim[i] == IR_DIM_BATCH ? ex->batch : n->shape.dim[i];
}

double *rx_param_values(const ref_exec *ex, const ir_node *n,
                        const char *role) {
  for (int k = 0; k < n->n_params; k++)
    if (strcmp(n->params[k].role, role) == 0)
      return ex->params[ex->param_base[n->id] + k].d;
  return NULL;
}

double *rx_scratch(ref_exec *ex, int64_t n) {
  if (n > ex->scratch_n) {
    free(ex->scratch);
    ex->scratch = xcalloc(n, sizeof(double));
    ex->scratch_n = n;
  }
  return ex->scratch;
}

ref_exec *ref_exec_new(const ir_graph *g, int64_t batch, kiln_error *err) {
  if (batch < 1) {
    diag_error(err, KILN_ERR_INVALID, (kiln_loc){0},
               "batch size %lld: must be at least 1", (long long)batch);
    return NULL;
  }
  ref_exec *ex = xcalloc(1, sizeof *ex);
  int nn = g->n_nodes;
  ex->g = g;
  ex->batch = batch;
  ex->numel = xcalloc(nn, sizeof(int64_t));
  ex->buf = xcalloc(nn, sizeof(double *));
  ex->ibuf = xcalloc(nn, sizeof(int32_t *));
  ex->input_set = xcalloc(nn, sizeof(bool));
  ex->is_bwd = xcalloc(nn, sizeof(bool));
  ex->aux = xcalloc(nn, sizeof(double *));
  ex->batch_stats = xcalloc(nn, sizeof(bool));
  ex->param_base = xcalloc(nn, sizeof(int));
  for (int i = 0; i < nn; i++) {
    const ir_node *n = g->nodes[i];
    ex->numel[i] = ir_shape_numel(&n->shape, batch);
    ex->param_base[i] = ex->n_params;
    ex->n_params += n->n_params;
    bool bwd = n->op == IR_OP_GRAD;
    for (int k = 0; k < n->n_inputs && !bwd; k++)
      bwd = ex->is_bwd[n->inputs[k]->id];
    ex->is_bwd[i] = bwd;
    if (ir_dtype_is_float(n->dtype)) {
      ex->buf[i] = xcalloc(ex->numel[i], sizeof(double));
    } else if (n->op == IR_OP_INPUT) {
      ex->ibuf[i] = xcalloc(ex->numel[i], sizeof(int32_t));
    } else {
      rx_error(err, KILN_ERR_INVALID, n,
               "the reference executor computes integer values only as "
               "graph inputs");
      ref_exec_free(ex);
      return NULL;
    }
    /* Per-channel (batchnorm) or per-row (layernorm) mean and inv_std. */
    if (n->op == IR_OP_BATCHNORM || n->op == IR_OP_LAYERNORM) {
      int64_t d[IR_MAX_DIMS];
      rx_dims(ex, n, d);
      int64_t rows =
          n->op == IR_OP_BATCHNORM ? d[1] : ex->numel[i] / d[n->shape.rank - 1];
      ex->aux[i] = xcalloc(2 * rows, sizeof(double));
    }
  }
  ex->params = xcalloc(ex->n_params, sizeof(rx_param));
  int64_t max_grad = 0;
  for (int i = 0; i < nn; i++) {
    const ir_node *n = g->nodes[i];
    for (int k = 0; k < n->n_params; k++) {
      rx_param *rp = &ex->params[ex->param_base[i] + k];
      rp->p = &n->params[k];
      rp->n = ir_shape_numel(&rp->p->shape, 1);
      rp->f32 = xcalloc(rp->n, sizeof(float));
      rp->state = n->op == IR_OP_UPDATE;
      rp->d = rp->state ? NULL : xcalloc(rp->n, sizeof(double));
      rp->ema = -1;
    }
    if (n->op == IR_OP_UPDATE) {
      rx_param *owner = &ex->params[ex->param_base[n->fwd->id] - 1 - n->wrt];
      for (int k = 0; k < n->n_params; k++)
        if (strcmp(n->params[k].role, "ema") == 0)
          owner->ema = ex->param_base[i] + k;
      max_grad = owner->n > max_grad ? owner->n : max_grad;
    }
  }
  ex->grad32 = xcalloc(max_grad, sizeof(float));
  return ex;
}

void ref_exec_free(ref_exec *ex) {
  if (!ex)
    return;
  for (int i = 0; i < ex->g->n_nodes; i++) {
    free(ex->buf[i]);
    free(ex->ibuf[i]);
    free(ex->aux[i]);
  }
  for (int k = 0; k < ex->n_params; k++) {
    free(ex->params[k].f32);
    free(ex->params[k].d);
  }
  free(ex->params);
  free(ex->numel);
  free(ex->buf);
  free(ex->ibuf);
  free(ex->input_set);
  free(ex->is_bwd);
  free(ex->aux);
  free(ex->batch_stats);
  free(ex->param_base);
  free(ex->scratch);
  free(ex->grad32);
  free(ex);
}

static const ir_node *find_input(ref_exec *ex, const char *name, bool want_int,
                                 kiln_error *err) {
  const ir_node *n = ir_graph_find(ex->g, name);
  if (!n || n->op != IR_OP_INPUT) {
    diag_error(err, KILN_ERR_NAME, (kiln_loc){0},
               "model '%s' has no input '%s'", ex->g->name, name);
    return NULL;
  }
  if (want_int == ir_dtype_is_float(n->dtype)) {
    diag_error(err, KILN_ERR_TYPE, n->loc, "input '%s' is %s, not %s", name,
               ir_dtype_name(n->dtype), want_int ? "integer" : "float");
    return NULL;
  }
  return n;
}

kiln_status ref_exec_set_input_f32(ref_exec *ex, const char *name,
                                   const float *data, kiln_error *err) {
  const ir_node *n = find_input(ex, name, false, err);
  if (!n)
    return err->status;
  for (int64_t i = 0; i < ex->numel[n->id]; i++)
    ex->buf[n->id][i] = data[i];
  ex->input_set[n->id] = true;
  return KILN_OK;
}

kiln_status ref_exec_set_input_i32(ref_exec *ex, const char *name,
                                   const int32_t *data, kiln_error *err) {
  const ir_node *n = find_input(ex, name, true, err);
  if (!n)
    return err->status;
  memcpy(ex->ibuf[n->id], data, sizeof(int32_t) * (size_t)ex->numel[n->id]);
  ex->input_set[n->id] = true;
  return KILN_OK;
}

/* This run's double copy of every parameter the forward reads. */
static void load_params(ref_exec *ex) {
  bool ema = ex->run.ema && !ex->run.training;
  for (int k = 0; k < ex->n_params; k++) {
    rx_param *rp = &ex->params[k];
    if (rp->state)
      continue;
    const float *src = ema && rp->ema >= 0 ? ex->params[rp->ema].f32 : rp->f32;
    for (int64_t i = 0; i < rp->n; i++)
      rp->d[i] = rp->override ? rp->override[i] : (double)src[i];
  }
}

/* Runs the nodes from `from` on; the backward ones (grad, grad_norm,
 * update) only when `backward`. */
static kiln_status run(ref_exec *ex, int from, bool backward, kiln_error *err) {
  load_params(ex);
  kiln_status st = KILN_OK;
  for (int i = from; i < ex->g->n_nodes && !st; i++) {
    const ir_node *n = ex->g->nodes[i];
    if (ex->is_bwd[i] && !backward)
      continue;
    switch (n->op) {
    case IR_OP_INPUT:
      if (!ex->input_set[i])
        st = diag_error(err, KILN_ERR_INVALID, n->loc,
                        "input '%s' was never set", n->name);
      break;
    case IR_OP_GRAD:
      st = rx_backward(ex, n, err);
      break;
    case IR_OP_GRAD_NORM:
      rx_grad_norm(ex, n);
      break;
    case IR_OP_UPDATE:
      if (ex->run.update)
        rx_update(ex, n);
      break;
    default:
      st = rx_forward(ex, n, err);
    }
  }
  if (st)
    return st;
  /* Running statistics may have changed: the float32 copy is canonical.
   * Overridden parameters are the caller's and stay as they are; updates
   * wrote their float32 values themselves. */
  for (int k = 0; k < ex->n_params; k++) {
    rx_param *rp = &ex->params[k];
    if (!rp->p->trainable && !rp->override && !rp->state)
      for (int64_t i = 0; i < rp->n; i++)
        rp->f32[i] = (float)rp->d[i];
  }
  return KILN_OK;
}

kiln_status ref_exec_run(ref_exec *ex, const rt_run *r, rt_result *out,
                         kiln_error *err) {
  const ir_graph *g = ex->g;
  if (r->update && (!r->training || (g->n_param_grads && !g->n_updates)))
    return diag_error(err, KILN_ERR_INVALID, (kiln_loc){0},
                      "model '%s': an update run needs a training run of a "
                      "graph with update nodes (ir_add_updates)",
                      g->name ? g->name : "?");
  if (r->ema && r->training)
    return diag_error(err, KILN_ERR_INVALID, (kiln_loc){0},
                      "EMA weights are for evaluation runs, not training");
  ex->run = *r;
  ex->skipped = false;
  kiln_status st = run(ex, 0, r->training, err);
  if (st || !out)
    return st;
  *out = (rt_result){.loss = g->loss ? ref_exec_loss(ex) : 0,
                     .grad_norm = g->grad_norm && r->training
                                      ? ex->buf[g->grad_norm->id][0]
                                      : 0,
                     .skipped = ex->skipped && r->update};
  return KILN_OK;
}

kiln_status ref_exec_rerun_from(ref_exec *ex, const ir_node *from,
                                kiln_error *err) {
  KILN_ASSERT(from->id >= 0 && from->id < ex->g->n_nodes &&
              ex->g->nodes[from->id] == from);
  return run(ex, from->id, false, err);
}

const double *ref_exec_output(const ref_exec *ex, const ir_node *n,
                              int64_t *numel) {
  KILN_ASSERT(n->id >= 0 && n->id < ex->g->n_nodes && ex->g->nodes[n->id] == n);
  if (numel)
    *numel = ex->numel[n->id];
  return ex->buf[n->id];
}

double ref_exec_loss(const ref_exec *ex) {
  KILN_ASSERT(ex->g->loss && "the model has no loss");
  return ex->buf[ex->g->loss->id][0];
}

static rx_param *find_param(const ref_exec *ex, const ir_param *p) {
  for (int k = 0; k < ex->n_params; k++)
    if (ex->params[k].p == p)
      return &ex->params[k];
  return NULL;
}

float *ref_exec_param(ref_exec *ex, const ir_param *p, int64_t *n) {
  rx_param *rp = find_param(ex, p);
  if (n)
    *n = rp ? rp->n : 0;
  return rp ? rp->f32 : NULL;
}

const double *ref_exec_param_grad(const ref_exec *ex, const ir_param *p) {
  const ir_graph *g = ex->g;
  for (int k = 0; k < g->n_param_grads; k++)
    if (g->grad_params[k] == p)
      return ex->buf[g->grad_nodes[k]->id];
  return NULL;
}

void ref_exec_param_override(ref_exec *ex, const ir_param *p,
                             const double *values) {
  rx_param *rp = find_param(ex, p);
  KILN_ASSERT(rp && "not a parameter of this graph");
  rp->override = values;
}
