/* test_passes.c — the graph passes and the pass manager (passes/).
 *
 *   1. each pass as before/after text in the model syntax (TVM's
 *      test_transform_* style): the "after" model is parsed and printed,
 *      and must equal the printed graph the pass leaves;
 *   2. values: the rewritten graph's outputs against the original graph's
 *      through the reference executor (the oracle), on random weights and,
 *      for BatchNorm folding, non-trivial running statistics: bit for bit
 *      for the exact passes, within 1e-5 relative for folding (float64
 *      folding, one float32 rounding of the folded weights);
 *   3. the pass manager: levels, --disable-pass by pass and by fusion
 *      pattern, the fuse limit, unknown names with a suggestion, dump
 *      --after, and ir_verify catching a deliberately broken pass;
 *   4. every model in models/ through the whole pipeline: it verifies,
 *      training graphs keep their parameter count, inference graphs lose
 *      exactly the BatchNorm parameters they folded (and gain the biases
 *      folding adds); the small ones also compare outputs. */
#include "test.h"

#include "frontend/load.h"
#include "passes/passes.h"
#include "ref_fd.h"
#include "runtime/reference/ref_exec.h"

#include <dirent.h>
#include <stdlib.h>

static kiln_model *load(const char *name, const char *text) {
  kiln_error err = {0};
  kiln_model *m = kiln_model_load_string(name, text, strlen(text), &err);
  if (!m)
    fprintf(stderr, "%s\n", err.message);
  return m;
}

static char *print_graph(const ir_graph *g) {
  FILE *f = tmpfile();
  KILN_ASSERT(f);
  ir_print(g, f);
  long n = ftell(f);
  rewind(f);
  char *s = malloc((size_t)n + 1);
  size_t got = fread(s, 1, (size_t)n, f);
  s[got] = '\0';
  fclose(f);
  return s;
}

/* Only the pass called `name`, as a one-row table. */
static kiln_status run_one(const char *name, ir_graph *g, bool inference,
                           kiln_error *err) {
  for (int i = 0; i < pass_pipeline_len; i++) {
    if (strcmp(pass_pipeline[i].name, name) != 0)
      continue;
    pass_opts o;
    pass_opts_default(&o);
    o.inference = inference;
    o.verify = true;
    return pass_run_table(&pass_pipeline[i], 1, g, &o, err);
  }
  KILN_ASSERT(!"no such pass");
  return KILN_ERR_INTERNAL;
}

/* `before` through pass `name` (then dce, unless the pass is dce, so that
 * bypassed nodes disappear) must print as `after` does. */
static void check_rewrite(const char *name, bool inference, const char *before,
                          const char *after) {
  kiln_model *mb = load("before", before), *ma = load("after", after);
  CHECK(mb && ma);
  if (!mb || !ma)
    return;
  kiln_error err = {0};
  CHECK(run_one(name, &mb->g, inference, &err) == KILN_OK);
  if (strcmp(name, "dce") != 0)
    CHECK(run_one("dce", &mb->g, inference, &err) == KILN_OK);
  char *got = print_graph(&mb->g), *want = print_graph(&ma->g);
  if (strcmp(got, want) != 0) {
    fprintf(stderr, "pass %s gave:\n%s\nexpected:\n%s\n", name, got, want);
    CHECK(!"rewrite differs");
  }
  free(got);
  free(want);
  kiln_model_free(mb);
  kiln_model_free(ma);
}

#define HEAD "model t\ninput x: f32[batch, 4, 3, 4]\ninput label: i32[batch]\n"

TEST(test_dce_removes_dead_branch) {
  check_rewrite("dce", false,
                HEAD "input unused: f32[batch, 5]\n"
                     "f = flatten(x)\n"
                     "dead = relu(f)\n"
                     "dead2 = linear(dead, out=3)\n"
                     "fc = linear(f, out=7)\n"
                     "loss = cross_entropy(fc, label)\n",
                HEAD "input unused: f32[batch, 5]\n"
                     "f = flatten(x)\n"
                     "fc = linear(f, out=7)\n"
                     "loss = cross_entropy(fc, label)\n");
}

TEST(test_cse_merges_identical_relus) {
  /* the two relus merge, and then the two adds that read them; the
   * dropouts (own masks) and the linears (own weights) do not */
  check_rewrite("cse", false,
                HEAD "f = flatten(x)\n"
                     "a = relu(f)\n"
                     "b = relu(f)\n"
                     "s1 = add(a, b)\n"
                     "s2 = add(b, a)\n"
                     "s3 = add(a, a)\n"
                     "d1 = dropout(s1)\n"
                     "d2 = dropout(s3)\n"
                     "l1 = linear(d1, out=48)\n"
                     "l2 = linear(d2, out=48)\n"
                     "t = add(l1, l2)\n"
                     "u = add(t, s2)\n"
                     "fc = linear(u, out=7)\n"
                     "loss = cross_entropy(fc, label)\n",
                HEAD "f = flatten(x)\n"
                     "a = relu(f)\n"
                     "s1 = add(a, a)\n"
                     "d1 = dropout(s1)\n"
                     "d2 = dropout(s1)\n"
                     "l1 = linear(d1, out=48)\n"
                     "l2 = linear(d2, out=48)\n"
                     "t = add(l1, l2)\n"
                     "u = add(t, s1)\n"
                     "fc = linear(u, out=7)\n"
                     "loss = cross_entropy(fc, label)\n");
}

TEST(test_simplify_views_dropout_relu) {
  /* r2(r1(x)) is one reshape of x; flatten(r3) is flatten(x) (same
   * shape); flatten(r4, start=2) is not flatten(x, start=2) ([b, 2, 24]
   * vs [b, 4, 12]) and stays; r6 reshapes to the shape it has */
  check_rewrite("simplify", false,
                HEAD "r1 = reshape(x, shape=[batch, 12, 4])\n"
                     "r2 = reshape(r1, shape=[batch, 48])\n"
                     "r3 = reshape(x, shape=[batch, 2, 24])\n"
                     "f3 = flatten(r3)\n"
                     "r4 = reshape(x, shape=[batch, 2, 6, 4])\n"
                     "f4 = flatten(r4, start=2)\n"
                     "e4 = relu(f4)\n"
                     "f5 = flatten(e4)\n"

                     "d = dropout(r2, p=0)\n"
                     "a = relu(d)\n"
                     "aa = relu(a)\n"
                     "aaa = relu(aa)\n"
                     "r6 = reshape(aaa, shape=[batch, 48])\n"
                     "s = add(r6, f3)\n"
                     "t = add(s, f5)\n"
                     "fc = linear(t, out=7)\n"
                     "loss = cross_entropy(fc, label)\n",
                HEAD "r2 = reshape(x, shape=[batch, 48])\n"
                     "f3 = flatten(x)\n"
                     "r4 = reshape(x, shape=[batch, 2, 6, 4])\n"
                     "f4 = flatten(r4, start=2)\n"
                     "e4 = relu(f4)\n"
                     "f5 = flatten(e4)\n"
                     "a = relu(r2)\n"
                     "s = add(a, f3)\n"
                     "t = add(s, f5)\n"
                     "fc = linear(t, out=7)\n"
                     "loss = cross_entropy(fc, label)\n");
}

TEST(test_strip_dropout_inference_only) {
  const char *src = HEAD "f = flatten(x)\n"
                         "d = dropout(f, p=0.3)\n"
                         "fc = linear(d, out=7)\n"
                         "loss = cross_entropy(fc, label)\n";
  check_rewrite("strip_dropout", true, src,
                HEAD "f = flatten(x)\n"
                     "fc = linear(f, out=7)\n"
                     "loss = cross_entropy(fc, label)\n");
  /* a training graph keeps it: the pass does not apply */
  check_rewrite("strip_dropout", false, src, src);
}

TEST(test_fold_bn_rewrite) {
  /* c1 gets a bias; c2's batchnorm stays because c2 has another use */
  check_rewrite("fold_bn", true,
                HEAD "c1 = conv2d(x, out=5, kernel=3, padding=1, bias=false)\n"
                     "b1 = batchnorm(c1)\n"
                     "c2 = conv2d(b1, out=5, kernel=1)\n"
                     "b2 = batchnorm(c2)\n"
                     "s = add(b2, c2)\n"
                     "f = flatten(s)\n"
                     "fc = linear(f, out=7)\n"
                     "loss = cross_entropy(fc, label)\n",
                HEAD "c1 = conv2d(x, out=5, kernel=3, padding=1)\n"
                     "c2 = conv2d(c1, out=5, kernel=1)\n"
                     "b2 = batchnorm(c2)\n"
                     "s = add(b2, c2)\n"
                     "f = flatten(s)\n"
                     "fc = linear(f, out=7)\n"
                     "loss = cross_entropy(fc, label)\n");
}

/* ir/rewrite.c: a node appended after the node that comes to use it is
 * moved before it by compaction, which keeps everything else in place. */
TEST(test_compact_restores_topological_order) {
  kiln_model *m = load("t", HEAD "f = flatten(x)\n"
                                 "a = relu(f)\n"
                                 "fc = linear(a, out=7)\n"
                                 "loss = cross_entropy(fc, label)\n");
  kiln_model *want = load("t", HEAD "f = flatten(x)\n"
                                    "a = relu(f)\n"
                                    "t = tanh(f)\n"
                                    "fc = linear(t, out=7)\n"
                                    "loss = cross_entropy(fc, label)\n");
  CHECK(m && want);
  if (!m || !want)
    return;
  ir_graph *g = &m->g;
  kiln_error err = {0};
  ir_node *f = ir_graph_find(g, "f"), *a = ir_graph_find(g, "a");
  ir_node *t = ir_node_new(g, IR_OP_TANH, "t", (kiln_loc){0}, &f, 1);
  CHECK(ir_node_finish(g, t, &err) == KILN_OK);
  CHECK_EQ_INT(t->id, g->n_nodes - 1); /* after fc and loss */
  ir_graph_replace_uses(g, a, t);
  CHECK(ir_verify(g, &err) != KILN_OK); /* fc reads a later node */
  ir_graph_compact(g);
  CHECK(ir_verify(g, &err) == KILN_OK);
  int uses[16];
  KILN_ASSERT(g->n_nodes <= 16);
  ir_graph_use_counts(g, uses);
  CHECK_EQ_INT(uses[a->id], 0);
  CHECK_EQ_INT(uses[t->id], 1);
  char *got = print_graph(g), *exp = print_graph(&want->g);
  CHECK(strcmp(got, exp) == 0);
  free(got);
  free(exp);
  kiln_model_free(m);
  kiln_model_free(want);
}

/* ---- values through the reference executor ---- */

typedef struct src_ctx {
  ref_exec *ex;
  const ir_graph *g;
} src_ctx;

static const ir_param *find_param(const ir_graph *g, const char *name) {
  for (int i = 0; i < g->n_nodes; i++)
    for (int k = 0; k < g->nodes[i]->n_params; k++)
      if (strcmp(g->nodes[i]->params[k].name, name) == 0)
        return &g->nodes[i]->params[k];
  return NULL;
}

static const float *source(void *user, const char *name, int64_t numel) {
  src_ctx *s = user;
  const ir_param *p = find_param(s->g, name);
  int64_t n = 0;
  float *v = p ? ref_exec_param(s->ex, p, &n) : NULL;
  return v && n == numel ? v : NULL;
}

/* Random weights; BatchNorm statistics and scales well away from the
 * identity, so that folding has something to get wrong. */
static void fill_params(ref_exec *ex, const ir_graph *g, fd_rng *r) {
  for (int i = 0; i < g->n_nodes; i++) {
    const ir_node *n = g->nodes[i];
    for (int k = 0; k < n->n_params; k++) {
      int64_t cnt;
      float *v = ref_exec_param(ex, &n->params[k], &cnt);
      const char *role = n->params[k].role;
      bool bn = n->op == IR_OP_BATCHNORM;
      for (int64_t j = 0; j < cnt; j++) {
        double u = fd_uniform(r, -0.3, 0.3);
        if (bn && strcmp(role, "running_var") == 0)
          u = fd_uniform(r, 0.2, 3.0);
        else if (bn && strcmp(role, "running_mean") == 0)
          u = fd_uniform(r, -0.5, 0.5);
        else if (bn && strcmp(role, "weight") == 0)
          u = fd_uniform(r, 0.5, 2.0);
        v[j] = (float)u;
      }
    }
  }
}

static void fill_inputs(ref_exec *ex, const ir_graph *g, int64_t batch) {
  fd_rng r = {99};
  kiln_error err = {0};
  for (int i = 0; i < g->n_nodes; i++) {
    const ir_node *n = g->nodes[i];
    if (n->op != IR_OP_INPUT)
      continue;
    int64_t cnt = ir_shape_numel(&n->shape, batch);
    float *f = malloc(sizeof(float) * (size_t)cnt);
    int32_t *l = malloc(sizeof(int32_t) * (size_t)cnt);
    for (int64_t j = 0; j < cnt; j++) {
      f[j] = (float)fd_uniform(&r, -1, 1);
      l[j] = (int32_t)(fd_next(&r) % 2);
    }
    if (ir_dtype_is_float(n->dtype))
      CHECK(ref_exec_set_input_f32(ex, n->name, f, &err) == KILN_OK);
    else
      CHECK(ref_exec_set_input_i32(ex, n->name, l, &err) == KILN_OK);
    free(f);
    free(l);
  }
}

/* Parameters of the graph after the passes (pass_param_values): folded
 * ones computed from the original values, the rest copied by name. */
static void map_params(ref_exec *ex1, const ir_graph *g1,
                       const pass_fold_log *log, src_ctx *src) {
  kiln_error err = {0};
  for (int i = 0; i < g1->n_nodes; i++) {
    for (int k = 0; k < g1->nodes[i]->n_params; k++) {
      const ir_param *p = &g1->nodes[i]->params[k];
      int64_t n;
      float *v = ref_exec_param(ex1, p, &n);
      CHECK(pass_param_values(log, p, source, src, v, &err) == KILN_OK);
    }
  }
}

/* The model's first output and loss, eval mode, before and after the
 * pipeline under `o`: max |difference| <= rtol * max |before|. Returns
 * the number of folds. */
static int compare_outputs(const char *name, const char *text, pass_opts *o,
                           double rtol) {
  enum { BATCH = 3 };
  kiln_model *m0 = load(name, text), *m1 = load(name, text);
  CHECK(m0 && m1);
  if (!m0 || !m1)
    return -1;
  kiln_error err = {0};
  pass_fold_log log = {0};
  o->folds = &log;
  o->verify = true;
  CHECK(pass_run_pipeline(&m1->g, o, &err) == KILN_OK);
  ref_exec *ex0 = ref_exec_new(&m0->g, BATCH, &err);
  ref_exec *ex1 = ref_exec_new(&m1->g, BATCH, &err);
  CHECK(ex0 && ex1);
  if (ex0 && ex1) {
    fd_rng r = {2026};
    fill_params(ex0, &m0->g, &r);
    src_ctx src = {ex0, &m0->g};
    map_params(ex1, &m1->g, &log, &src);
    fill_inputs(ex0, &m0->g, BATCH);
    fill_inputs(ex1, &m1->g, BATCH);
    rt_run run = {.training = false};
    CHECK(ref_exec_run(ex0, &run, NULL, &err) == KILN_OK);
    CHECK(ref_exec_run(ex1, &run, NULL, &err) == KILN_OK);
    int64_t n0, n1;
    const double *y0 = ref_exec_output(ex0, m0->g.outputs[0], &n0);
    const double *y1 = ref_exec_output(ex1, m1->g.outputs[0], &n1);
    CHECK_EQ_INT(n0, n1);
    double scale = 0, diff = 0;
    for (int64_t i = 0; i < n0 && i < n1; i++) {
      scale = fmax(scale, fabs(y0[i]));
      diff = fmax(diff, fabs(y0[i] - y1[i]));
    }
    CHECK(scale > 1e-3); /* a zero output would compare equal vacuously */
    if (!(diff <= rtol * scale))
      fprintf(stderr, "%s: outputs differ by %g (scale %g)\n", name, diff,
              scale);
    CHECK(diff <= rtol * scale);
    double l0 = ref_exec_loss(ex0), l1 = ref_exec_loss(ex1);
    CHECK(fabs(l0 - l1) <= rtol * fabs(l0) + (rtol ? 1e-12 : 0));
  }
  ref_exec_free(ex0);
  ref_exec_free(ex1);
  kiln_model_free(m0);
  kiln_model_free(m1);
  return log.n;
}

static const char *const fold_model =
    HEAD "c1 = conv2d(x, out=5, kernel=3, padding=1, bias=false)\n"
         "b1 = batchnorm(c1)\n"
         "a1 = relu(b1)\n"
         "c2 = conv2d(a1, out=7, kernel=3, stride=2, groups=1)\n"
         "b2 = batchnorm(c2, affine=false, eps=0.01)\n"
         "f = flatten(b2)\n"
         "d = dropout(f, p=0.4)\n"
         "l1 = linear(d, out=9)\n"
         "b3 = batchnorm(l1)\n"
         "fc = linear(b3, out=3)\n"
         "loss = cross_entropy(fc, label)\n";

TEST(test_fold_bn_values_match_reference) {
  pass_opts o;
  pass_opts_default(&o);
  o.inference = true;
  CHECK_EQ_INT(compare_outputs("fold", fold_model, &o, 1e-5), 3);
}

static const float *no_values(void *user, const char *name, int64_t numel) {
  return NULL;
}

TEST(test_fold_values_missing_parameter) {
  kiln_model *m = load("fold", fold_model);
  pass_fold_log log = {0};
  pass_opts o;
  pass_opts_default(&o);
  o.inference = true;
  o.folds = &log;
  kiln_error err = {0};
  CHECK(pass_run_pipeline(&m->g, &o, &err) == KILN_OK);
  CHECK_EQ_INT(log.n, 3);
  /* what the records say: c1 had no bias, b2 no affine parameters */
  CHECK(log.n == 3 && !log.folds[0].bias && log.folds[0].gamma);
  CHECK(log.n == 3 && log.folds[1].bias && !log.folds[1].gamma);
  CHECK(log.n == 3 && log.folds[1].eps == 0.01);
  CHECK(log.n == 3 && log.folds[2].channels == 9 &&
        log.folds[2].per_channel == 7); /* c2's map is 7x1x1 */
  float w[5 * 4 * 9], b[5];
  CHECK_EQ_INT(pass_fold_bn_values(&log.folds[0], no_values, NULL, w, b, &err),
               KILN_ERR_NAME);
  CHECK_STR_CONTAINS(err.message, "no values for parameter 'c1.weight'");
  kiln_model_free(m);
}

TEST(test_exact_passes_bit_for_bit) {
  /* -O1: no folding, every rewrite exact, so outputs are identical */
  pass_opts o;
  pass_opts_default(&o);
  o.opt_level = 1;
  o.inference = true;
  CHECK_EQ_INT(compare_outputs("exact", fold_model, &o, 0), 0);
}

/* ---- the pass manager ---- */

static int count_op(const ir_graph *g, ir_op op) {
  int n = 0;
  for (int i = 0; i < g->n_nodes; i++)
    n += g->nodes[i]->op == op;
  return n;
}

/* fold_model through the pipeline under `o`: number of batchnorms left. */
static int bns_left(pass_opts *o, kiln_status want) {
  kiln_model *m = load("fold", fold_model);
  kiln_error err = {0};
  o->inference = true;
  CHECK_EQ_INT(pass_run_pipeline(&m->g, o, &err), want);
  int n = count_op(&m->g, IR_OP_BATCHNORM);
  kiln_model_free(m);
  return n;
}

TEST(test_levels_and_disable) {
  pass_opts o;
  pass_opts_default(&o);
  CHECK_EQ_INT(bns_left(&o, KILN_OK), 0);
  o.opt_level = 1;
  CHECK_EQ_INT(bns_left(&o, KILN_OK), 3);
  const char *conv_only[] = {"conv_bn"}, *pass[] = {"fold_bn"};
  pass_opts_default(&o);
  o.n_disabled = 1;
  o.disabled = conv_only; /* a pattern: linear_bn still folds */
  CHECK_EQ_INT(bns_left(&o, KILN_OK), 2);
  o.disabled = pass;
  CHECK_EQ_INT(bns_left(&o, KILN_OK), 3);
  /* -O0 runs nothing: the dropout stays even in an inference graph */
  kiln_model *m = load("fold", fold_model);
  pass_opts_default(&o);
  o.opt_level = 0;
  o.inference = true;
  kiln_error err = {0};
  char *before = print_graph(&m->g);
  CHECK(pass_run_pipeline(&m->g, &o, &err) == KILN_OK);
  char *after = print_graph(&m->g);
  CHECK(strcmp(before, after) == 0);
  free(before);
  free(after);
  kiln_model_free(m);
}

TEST(test_fuse_limit_counts_fusions) {
  pass_opts o;
  pass_opts_default(&o);
  for (int limit = 0; limit <= 4; limit++) {
    o.fuse_limit = limit;
    CHECK_EQ_INT(bns_left(&o, KILN_OK), limit >= 3 ? 0 : 3 - limit);
  }
  /* the first fusion in graph order is the one the limit keeps */
  kiln_model *m = load("fold", fold_model);
  pass_fold_log log = {0};
  pass_opts_default(&o);
  o.inference = true;
  o.fuse_limit = 1;
  o.folds = &log;
  kiln_error err = {0};
  CHECK(pass_run_pipeline(&m->g, &o, &err) == KILN_OK);
  CHECK_EQ_INT(log.n, 1);
  CHECK(log.n == 1 && strcmp(log.folds[0].bn, "b1") == 0);
  CHECK(ir_graph_find(&m->g, "b2") && !ir_graph_find(&m->g, "b1"));
  kiln_model_free(m);
}

TEST(test_unknown_pass_names) {
  pass_opts o;
  pass_opts_default(&o);
  const char *bad[] = {"dcee"};
  o.n_disabled = 1;
  o.disabled = bad;
  kiln_model *m = load("fold", fold_model);
  kiln_error err = {0};
  CHECK_EQ_INT(pass_run_pipeline(&m->g, &o, &err), KILN_ERR_NAME);
  CHECK_STR_CONTAINS(err.message, "unknown pass 'dcee' in --disable-pass "
                                  "(did you mean 'dce'?)");
  CHECK_STR_CONTAINS(err.message, "passes: strip_dropout, simplify, fold_bn");
  CHECK_STR_CONTAINS(err.message, "fusion patterns: conv_bn, linear_bn");
  pass_opts_default(&o);
  o.dump_after = "fold-bn";
  CHECK_EQ_INT(pass_run_pipeline(&m->g, &o, &err), KILN_ERR_NAME);
  CHECK_STR_CONTAINS(err.message, "in --after (did you mean 'fold_bn'?)");
  /* a pattern is not a pass: there is no graph "after conv_bn" */
  o.dump_after = "conv_bn";
  CHECK_EQ_INT(pass_run_pipeline(&m->g, &o, &err), KILN_ERR_NAME);
  kiln_model_free(m);
}

TEST(test_dump_after) {
  kiln_model *m = load("fold", fold_model);
  pass_opts o;
  pass_opts_default(&o);
  const char *off[] = {"simplify"};
  o.n_disabled = 1;
  o.disabled = off;
  o.inference = true;
  o.dump_after = "strip_dropout";
  o.dump_out = tmpfile();
  kiln_error err = {0};
  CHECK(pass_run_pipeline(&m->g, &o, &err) == KILN_OK);
  long n = ftell(o.dump_out);
  rewind(o.dump_out);
  char buf[4096] = {0};
  CHECK(fread(buf, 1, sizeof buf - 1, o.dump_out) == (size_t)n);
  fclose(o.dump_out);
  /* after strip_dropout, before fold_bn: b1 is there, d is not */
  CHECK_STR_CONTAINS(buf, "# after pass strip_dropout\nmodel t\n");
  CHECK_STR_CONTAINS(buf, "b1 = batchnorm(c1)");
  CHECK_STR_CONTAINS(buf, "l1 = linear(f, out=9)");
  CHECK(!strstr(buf, "= dropout("));
  /* a skipped pass still prints, and says why */
  o.dump_after = "simplify";
  o.dump_out = tmpfile();
  CHECK(pass_run_pipeline(&m->g, &o, &err) == KILN_OK);
  rewind(o.dump_out);
  memset(buf, 0, sizeof buf);
  CHECK(fread(buf, 1, sizeof buf - 1, o.dump_out) > 0);
  fclose(o.dump_out);
  CHECK_STR_CONTAINS(buf, "# after pass simplify (skipped: disabled)");
  kiln_model_free(m);
}

/* A pass that breaks the graph: a zero-sized dimension. */
static kiln_status break_shapes(pass_ctx *c) {
  c->g->nodes[c->g->n_nodes - 1]->shape.dim[0] = 0;
  c->g->nodes[c->g->n_nodes - 1]->shape.rank = 1;
  return KILN_OK;
}

TEST(test_verify_catches_broken_pass) {
  pass_info table[] = {
      pass_pipeline[pass_pipeline_len - 1], /* dce: fine */
      {"break_shapes", break_shapes, 1, PASS_BOTH, NULL, "breaks the graph"},
      pass_pipeline[pass_pipeline_len - 1],
  };
  kiln_model *m = load("fold", fold_model);
  pass_opts o;
  pass_opts_default(&o);
  o.verify = true;
  kiln_error err = {0};
  CHECK_EQ_INT(pass_run_table(table, 3, &m->g, &o, &err), KILN_ERR_INTERNAL);
  CHECK_STR_CONTAINS(err.message, "IR verifier: node");
  CHECK_STR_CONTAINS(err.message, "invalid shape");
  CHECK_STR_CONTAINS(err.message, "after graph pass 'break_shapes'");
  kiln_model_free(m);
}

/* ---- every model in models/ ---- */

static int64_t total_params(const ir_graph *g) {
  int64_t n = 0;
  for (int i = 0; i < g->n_nodes; i++)
    n += ir_node_param_count(g->nodes[i], true) +
         ir_node_param_count(g->nodes[i], false);
  return n;
}

static char *read_text(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  rewind(f);
  char *s = malloc((size_t)n + 1);
  s[fread(s, 1, (size_t)n, f)] = '\0';
  fclose(f);
  return s;
}

static void check_model(const char *path) {
  char *text = read_text(path);
  CHECK(text != NULL);
  if (!text)
    return;
  for (int inference = 0; inference <= 1; inference++) {
    kiln_model *m = load(path, text);
    CHECK(m != NULL);
    if (!m)
      continue;
    int64_t before = total_params(&m->g);
    pass_fold_log log = {0};
    pass_opts o;
    pass_opts_default(&o);
    o.inference = inference;
    o.verify = true;
    o.folds = &log;
    kiln_error err = {0};
    CHECK(pass_run_pipeline(&m->g, &o, &err) == KILN_OK);
    CHECK(ir_verify(&m->g, &err) == KILN_OK);
    int64_t expect = before;
    for (int f = 0; f < log.n; f++) {
      const pass_bn_fold *fo = &log.folds[f];
      int64_t c = fo->channels;
      expect -= c * (2 + (fo->gamma ? 1 : 0) + (fo->beta ? 1 : 0));
      expect += fo->bias ? 0 : c;
    }
    if (total_params(&m->g) != expect)
      fprintf(stderr, "%s (%s)\n", path, inference ? "inference" : "training");
    CHECK_EQ_INT(total_params(&m->g), expect);
    if (!inference)
      CHECK_EQ_INT(log.n, 0);
    /* nothing foldable is left behind */
    for (int i = 0; inference && i < m->g.n_nodes; i++) {
      const ir_node *n = m->g.nodes[i];
      CHECK(n->op != IR_OP_DROPOUT);
      CHECK(n->op != IR_OP_BATCHNORM || n->inputs[0]->op != IR_OP_CONV2D);
    }
    if (inference)
      printf("%s: %d batchnorms folded, %lld -> %lld parameters\n", path, log.n,
             (long long)before, (long long)total_params(&m->g));
    /* values where the reference executor is quick enough */
    if (inference && kiln_model_macs(m) < 50000000) {
      pass_opts_default(&o);
      o.inference = true;
      CHECK(compare_outputs(path, text, &o, 1e-5) == log.n);
    }
    kiln_model_free(m);
  }
  free(text);
}

TEST(test_every_model) {
  DIR *d = opendir("models");
  CHECK(d != NULL);
  if (!d)
    return;
  int seen = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    size_t len = strlen(e->d_name);
    if (len < 6 || strcmp(e->d_name + len - 5, ".kiln") != 0)
      continue;
    char path[512];
    snprintf(path, sizeof path, "models/%s", e->d_name);
    check_model(path);
    seen++;
  }
  closedir(d);
  CHECK(seen >= 7);
}

int main(void) {
  RUN(test_dce_removes_dead_branch);
  RUN(test_cse_merges_identical_relus);
  RUN(test_simplify_views_dropout_relu);
  RUN(test_strip_dropout_inference_only);
  RUN(test_fold_bn_rewrite);
  RUN(test_compact_restores_topological_order);
  RUN(test_fold_bn_values_match_reference);
  RUN(test_fold_values_missing_parameter);
  RUN(test_exact_passes_bit_for_bit);
  RUN(test_levels_and_disable);
  RUN(test_fuse_limit_counts_fusions);
  RUN(test_unknown_pass_names);
  RUN(test_dump_after);
  RUN(test_verify_catches_broken_pass);
  RUN(test_every_model);
  return TEST_SUMMARY();
}
