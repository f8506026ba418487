/* fold_bn.c — inference graphs only: a batchnorm reading a conv2d (or a
 * 2-D linear) whose output nothing else uses is folded into that layer.
 * In eval mode BatchNorm is a per-channel affine map of its input,
 *   y = (x - mean) * s + beta,   s = gamma / sqrt(var + eps),
 * and the layer is linear in its weight per output channel, so
 *   W' = W * s,   b' = (b - mean) * s + beta
 * give the same y from one layer: the layer gets a bias if it had none,
 * the batchnorm node disappears and its uses read the layer.
 *
 * The graph rewrite changes parameters, not values: each fold is recorded
 * (pass_opts.folds) with the names of the parameters it consumed, and
 * pass_fold_bn_values computes the folded weights from the original values
 * in float64, rounding once to float32 (the numerics policy of issue 6:
 * folding is exact up to that rounding and is checked against the unfolded
 * graph through the reference executor).
 *
 * Each fold is a fusion pattern (conv_bn, linear_bn): it can be disabled by
 * name and counts against --fuse-limit. Not folded: a layer with another
 * use (its unnormalised output is still needed), a linear whose output is
 * not [N, C] (BatchNorm's channel would not be its feature), layers on a
 * different pipeline stage than the batchnorm.
 *
 * Needs: an inference graph. Guarantees: outputs equal within rounding. */
#include "passes/passes.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const ir_param *param_of(const ir_node *n, const char *role) {
  for (int k = 0; k < n->n_params; k++)
    if (strcmp(n->params[k].role, role) == 0)
      return &n->params[k];
  return NULL;
}

static const char *name_of(const ir_param *p) {
  return p ? p->name : NULL;
}

static bool foldable(const ir_node *bn, const ir_node *x, const int *uses) {
  if (x->op != IR_OP_CONV2D && x->op != IR_OP_LINEAR)
    return false;
  if (x->op == IR_OP_LINEAR && x->shape.rank != 2)
    return false;
  return uses[x->id] == 1 && x->stage == bn->stage && x->dtype == IR_F32 &&
         bn->dtype == IR_F32;
}

static kiln_status fold(pass_ctx *c, ir_node *bn, ir_node *x) {
  ir_graph *g = c->g;
  pass_bn_fold f = {
      .layer = x->name,
      .bn = bn->name,
      .weight = x->params[0].name,
      .bias = name_of(param_of(x, "bias")),
      .gamma = name_of(param_of(bn, "weight")),
      .beta = name_of(param_of(bn, "bias")),
      .mean = name_of(param_of(bn, "running_mean")),
      .var = name_of(param_of(bn, "running_var")),
      .eps = bn->attrs[ir_op_attr_index(IR_OP_BATCHNORM, "eps")].f,
  };
  KILN_ASSERT(f.mean && f.var);
  f.channels = x->params[0].shape.dim[0];
  f.per_channel = ir_shape_numel(&x->params[0].shape, 1) / f.channels;
  KILN_ASSERT(f.channels == bn->shape.dim[1]);
  ir_attr *bias = &x->attrs[ir_op_attr_index(x->op, "bias")];
  bias->i = 1;
  bias->set = true;
  kiln_status st = ir_node_reinfer(g, x, c->err);
  if (st)
    return st;
  f.new_weight = param_of(x, "weight");
  f.new_bias = param_of(x, "bias");
  KILN_ASSERT(f.new_weight && f.new_bias);
  ir_graph_replace_uses(g, bn, x);
  ir_graph_remove(g, bn);
  c->changes++;
  pass_fold_log *log = c->opts->folds;
  if (log)
    ARENA_PUSH(g->a, log->folds, log->n, log->cap, f);
  return KILN_OK;
}

kiln_status pass_fold_bn(pass_ctx *c) {
  ir_graph *g = c->g;
  int *uses = ARENA_ARRAY(g->a, int, g->n_nodes);
  ir_graph_use_counts(g, uses);
  for (int i = 0; i < g->n_nodes; i++) {
    ir_node *bn = g->nodes[i];
    if (bn->op != IR_OP_BATCHNORM)
      continue;
    ir_node *x = bn->inputs[0];
    if (!foldable(bn, x, uses))
      continue;
    if (!pass_fusion_allowed(c,
                             x->op == IR_OP_CONV2D ? "conv_bn" : "linear_bn"))
      continue;
    kiln_status st = fold(c, bn, x);
    if (st)
      return st;
  }
  return KILN_OK;
}

static const float *need(pass_param_source src, void *user, const char *name,
                         int64_t numel, kiln_error *err) {
  const float *v = src(user, name, numel);
  if (!v)
    diag_error(err, KILN_ERR_NAME, (kiln_loc){0},
               "graph passes: no values for parameter '%s' (%lld elements)",
               name, (long long)numel);
  return v;
}

kiln_status pass_fold_bn_values(const pass_bn_fold *f, pass_param_source src,
                                void *user, float *weight, float *bias,
                                kiln_error *err) {
  int64_t ch = f->channels, per = f->per_channel;
  /* the first missing one is reported */
  const float *w, *b = NULL, *gamma = NULL, *beta = NULL, *mean, *var;
  if (!(w = need(src, user, f->weight, ch * per, err)) ||
      (f->bias && !(b = need(src, user, f->bias, ch, err))) ||
      (f->gamma && !(gamma = need(src, user, f->gamma, ch, err))) ||
      (f->beta && !(beta = need(src, user, f->beta, ch, err))) ||
      !(mean = need(src, user, f->mean, ch, err)) ||
      !(var = need(src, user, f->var, ch, err)))
    return KILN_ERR_NAME;
  for (int64_t o = 0; o < ch; o++) {
    double s = (gamma ? (double)gamma[o] : 1.0) / sqrt((double)var[o] + f->eps);
    for (int64_t j = 0; j < per; j++)
      weight[o * per + j] = (float)((double)w[o * per + j] * s);
    double b0 = b ? (double)b[o] : 0.0;
    bias[o] =
        (float)((b0 - (double)mean[o]) * s + (beta ? (double)beta[o] : 0.0));
  }
  return KILN_OK;
}

kiln_status pass_param_values(const pass_fold_log *log, const ir_param *p,
                              pass_param_source src, void *user, float *out,
                              kiln_error *err) {
  for (int i = 0; log && i < log->n; i++) {
    const pass_bn_fold *f = &log->folds[i];
    if (p != f->new_weight && p != f->new_bias)
      continue;
    /* both are computed together; the one not asked for is scratch */
    int64_t other =
        p == f->new_weight ? f->channels : f->channels * f->per_channel;
    float *tmp = malloc(sizeof(float) * (size_t)other);
    KILN_ASSERT(tmp);
    kiln_status st = p == f->new_weight
                         ? pass_fold_bn_values(f, src, user, out, tmp, err)
                         : pass_fold_bn_values(f, src, user, tmp, out, err);
    free(tmp);
    return st;
  }
  int64_t n = ir_shape_numel(&p->shape, 1);
  const float *v = need(src, user, p->name, n, err);
  if (!v)
    return KILN_ERR_NAME;
  memcpy(out, v, sizeof(float) * (size_t)n);
  return KILN_OK;
}
