/* passes.h — the graph passes and the pass manager that runs them.
 *
 * Where they run: on the FORWARD graph, after elaboration and before
 * ir_autodiff (data flow: model -> forward graph -> graph passes ->
 * ir_autodiff -> ir_add_updates -> lowering). A training graph's passes
 * therefore only ever see forward nodes; the cleanup passes still treat
 * grad, grad_norm and update nodes correctly (as roots, never merged) so
 * that they are safe on a differentiated graph too. The inference graph
 * is the forward graph evaluated in eval mode (BatchNorm reads its running
 * statistics, dropout is the identity), which is what makes BatchNorm
 * folding and dropout removal legal there and only there.
 *
 * The pipeline (pipeline.c) is a table in declared order, one pass per
 * file; each pass has a minimum optimisation level and the kind of graph
 * it applies to:
 *
 *   -O0  no pass runs: the graph as the model file builds it;
 *   -O1  exact cleanups: results are bit for bit those of -O0;
 *   -O2  (default) also passes that change rounding (BatchNorm folding)
 *        and, later, the fusions.
 *
 * Any pass, and any fusion pattern a pass declares, can be switched off by
 * name (--disable-pass). Fusion passes ask pass_fusion_allowed() before
 * each fusion: it honours disabled patterns and counts fusions against
 * fuse_limit over the whole pipeline, so bisecting on the limit finds the
 * one fusion that breaks a result. The graph is compacted (ir/rewrite.c)
 * and, in debug builds or with opts.verify, checked by ir_verify after
 * every pass; a failure names the pass.
 *
 * Pointwise epilogues (a ReLU after a convolution becoming the
 * convolution's epilogue) are a lowering matter, not a graph rewrite: the
 * graph keeps the relu node and lowering fuses it. */
#ifndef KILN_PASSES_PASSES_H
#define KILN_PASSES_PASSES_H

#include "ir/ir.h"

#include <stdio.h>

/* ---- fold_bn.c: what a BatchNorm fold did, for transforming values ---- */

/* One batchnorm folded into the conv2d or linear layer before it. Names
 * are those of the graph BEFORE the pass (how a checkpoint or a backend
 * of the unfolded graph knows them); new_weight/new_bias are the folded
 * layer's parameters in the graph after it (same names, plus a bias when
 * the layer had none). */
typedef struct pass_bn_fold {
  const char *layer, *bn; /* node names */
  const char *weight;     /* the layer's weight [C, ...] */
  const char *bias;       /* the layer's bias [C], NULL when it had none */
  const char *gamma;      /* BN weight [C], NULL when affine=false */
  const char *beta;       /* BN bias [C], NULL when affine=false */
  const char *mean, *var; /* BN running statistics [C] */
  double eps;
  int64_t channels, per_channel; /* the weight is channels x per_channel */
  const ir_param *new_weight, *new_bias;
} pass_bn_fold;

typedef struct pass_fold_log {
  int n, cap;
  pass_bn_fold *folds; /* in the graph's arena */
} pass_fold_log;

/* Parameter values of the graph before the passes, by name: numel float32
 * values, or NULL when there are none under that name. */
typedef const float *(*pass_param_source)(void *user, const char *name,
                                          int64_t numel);

/* The folded layer's parameters, computed in float64 and rounded once:
 *   s  = gamma / sqrt(var + eps)       (gamma = 1, beta = 0 without affine)
 *   W' = W * s                         (per output channel)
 *   b' = (b - mean) * s + beta         (b = 0 when the layer had no bias)
 * weight gets channels*per_channel values, bias channels. KILN_ERR_NAME
 * when `src` lacks one of the original parameters. */
kiln_status pass_fold_bn_values(const pass_bn_fold *f, pass_param_source src,
                                void *user, float *weight, float *bias,
                                kiln_error *err);
/* The numel values of parameter p of the graph after the pipeline: from
 * the fold in `log` that made it, or else copied from `src` under p's name
 * (every other parameter keeps its name and values). How a backend of the
 * folded graph is loaded from a checkpoint of the unfolded one. */
kiln_status pass_param_values(const pass_fold_log *log, const ir_param *p,
                              pass_param_source src, void *user, float *out,
                              kiln_error *err);

/* ---- pipeline.c: the pass manager ---- */

typedef enum pass_graph_kind {
  PASS_TRAINING = 1,  /* the forward graph of a training step */
  PASS_INFERENCE = 2, /* the forward graph in eval mode */
  PASS_BOTH = 3,
} pass_graph_kind;

typedef struct pass_opts {
  int opt_level;  /* 0, 1 or 2 (pass_opts_default: 2) */
  bool inference; /* the graph is an inference graph */
  /* Pass or fusion-pattern names switched off (--disable-pass). */
  int n_disabled;
  const char *const *disabled;
  int64_t fuse_limit; /* apply only the first N fusions; -1: no limit */
  /* Print the graph after this pass (text, or dot when dump_dot) to
   * dump_out; NULL: no dump. */
  const char *dump_after;
  FILE *dump_out;
  bool dump_dot;
  bool verify; /* ir_verify after every pass (always in debug builds) */
  /* fold_bn appends a record per fold here when not NULL */
  pass_fold_log *folds;
} pass_opts;

void pass_opts_default(pass_opts *o);

typedef struct pass_info pass_info;

/* What a running pass sees. */
typedef struct pass_ctx {
  ir_graph *g;
  const pass_opts *opts;
  kiln_error *err;
  const pass_info *pass; /* the pass running now */
  int64_t fusions;       /* fusions applied so far, over the pipeline */
  int changes;           /* nodes the running pass removed or rewrote */
} pass_ctx;

struct pass_info {
  const char *name;
  kiln_status (*run)(pass_ctx *c);
  int min_opt_level;
  pass_graph_kind applies_to;
  /* fusion pattern names the pass asks pass_fusion_allowed about;
   * NULL-terminated, or NULL */
  const char *const *patterns;
  const char *doc;
};

/* The pipeline in the order it runs. */
extern const pass_info pass_pipeline[];
extern const int pass_pipeline_len;

/* Whether the running pass may apply one fusion of `pattern` (which it
 * must declare): false when the pattern or the pass is disabled or the
 * fuse limit is reached; true counts the fusion. */
bool pass_fusion_allowed(pass_ctx *c, const char *pattern);

/* Runs pass_pipeline on g in place. Unknown names in o->disabled or
 * o->dump_after are KILN_ERR_NAME listing the valid ones; a pass's own
 * error, or a graph that fails ir_verify after a pass (KILN_ERR_INTERNAL,
 * naming the pass), stops the pipeline. */
kiln_status pass_run_pipeline(ir_graph *g, const pass_opts *o, kiln_error *err);
/* The same over any table (tests run deliberately broken passes). */
kiln_status pass_run_table(const pass_info *table, int n, ir_graph *g,
                           const pass_opts *o, kiln_error *err);
/* `kiln dump --passes`: one line per pass: name, level, graphs, doc,
 * and its fusion patterns. */
void pass_print_pipeline(FILE *out);

/* ---- the passes, one file each ---- */

/* simplify.c: algebraic identities the IR has (reshape/flatten chains,
 * identity views, dropout p=0, relu(relu(x))). */
kiln_status pass_simplify(pass_ctx *c);
/* strip_dropout.c: inference only; dropout is the identity in eval. */
kiln_status pass_strip_dropout(pass_ctx *c);
/* fold_bn.c: inference only; batchnorm after conv2d/linear folded. */
kiln_status pass_fold_bn(pass_ctx *c);
/* cse.c: common-subexpression elimination. */
kiln_status pass_cse(pass_ctx *c);
/* dce.c: dead-code elimination. */
kiln_status pass_dce(pass_ctx *c);

#endif
