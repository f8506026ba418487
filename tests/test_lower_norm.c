/* test_lower_norm.c — lowering of batchnorm and layernorm
 * (passes/lower_norm.c) against the reference executor through the
 * plan-check harness (tests/support/plan_check.h): forward values, the
 * saved statistics' effect on every gradient (dx, dgamma, dbeta), and the
 * running statistics the training forward updates (compared as
 * parameters), on odd sizes (batch 3 and 5, 5 channels, 7x9 images).
 * Covers batchnorm on [N, C, H, W] and [N, C], mode = eval inside a
 * training plan (running statistics, no update), affine = false, a
 * non-default momentum, evaluation plans, and layernorm over the last
 * dimension of rank-2 and rank-3 inputs. Plus the scratch tensors the
 * backward reads, hand-computed statistics, and the error for a batch
 * with one value per channel.
 *
 * Layers before a train-mode batchnorm have no bias: the gradient of such
 * a bias is exactly zero (batchnorm removes the mean), and comparing two
 * roundings of zero would test nothing. */
#include "test.h"

#include "frontend/load.h"
#include "passes/lower.h"
#include "runtime/cpu/rt_cpu.h"
#include "support/kir_interp.h"
#include "support/plan_check.h"

#include <stdlib.h>

/* Both plan executors: the kernel IR interpreter (the definition) and the
 * compiled CPU plan. */
static const pc_executor *const executors[] = {&pc_interp_executor,
                                               &pc_cpu_executor};

static void check_model(const char *what, const char *text, int64_t batch,
                        kir_plan_mode mode, bool update, bool cpu) {
  /* the compiled plan costs an LLVM compile: only where asked */
  for (size_t e = 0; e < (cpu ? ARRAY_LEN(executors) : 1); e++) {
    pc_opts o = {
        .mode = mode, .batch = batch, .update = update, .exec = executors[e]};
    pc_report rep = {0};
    kiln_error err = {0};
    kiln_status st = pc_check_string(what, text, &o, &rep, &err);
    if (st)
      fprintf(stderr, "%s (%s): %s\n", what, executors[e]->name, err.message);
    CHECK(st == KILN_OK);
    CHECK(rep.compared > 0);
  }
}

static const char *const conv_bn_model =
    "model convbn\n"
    "input x: f32[batch, 3, 7, 9]\n"
    "input label: i32[batch]\n"
    "c = conv2d(x, out=5, kernel=3, padding=1, bias=false)\n"
    "b = batchnorm(c, momentum=0.3)\n"
    "r = relu(b)\n"
    "e = batchnorm(r, mode=eval)\n"
    "g = global_avgpool(e)\n"
    "logits = linear(g, out=7)\n"
    "loss = cross_entropy(logits, label)\n";

TEST(batchnorm_4d_train_and_eval_mode) {
  check_model("convbn", conv_bn_model, 3, KIR_PLAN_TRAIN, true, true);
  check_model("convbn_b5", conv_bn_model, 5, KIR_PLAN_TRAIN, false, false);
  check_model("convbn_eval", conv_bn_model, 3, KIR_PLAN_EVAL, false, true);
}

/* [N, C] batchnorm (statistics over the batch only), without affine
 * parameters, then layernorm on [N, D] and on [N, T, D]. */
static const char *const dense_model = "model dense\n"
                                       "input x: f32[batch, 11]\n"
                                       "input y: f32[batch, 3, 5]\n"
                                       "h = linear(x, out=15, bias=false)\n"
                                       "b = batchnorm(h, affine=false)\n"
                                       "ln1 = layernorm(b)\n"
                                       "t = tanh(ln1)\n"
                                       "r = reshape(t, shape=[batch, 3, 5])\n"
                                       "ln2 = layernorm(r, eps=0.01)\n"
                                       "s = linear(ln2, out=5)\n"
                                       "loss = mse(s, y)\n";

TEST(batchnorm_2d_and_layernorm) {
  check_model("dense", dense_model, 5, KIR_PLAN_TRAIN, true, true);
  check_model("dense_b3", dense_model, 3, KIR_PLAN_TRAIN, false, false);
  check_model("dense_eval", dense_model, 5, KIR_PLAN_EVAL, false, false);
}

/* A group large enough (batch 11 x 9x11 = 1089 values per channel) for
 * a block of 64 threads, each with several runs of 16 values, the last
 * partial, and a layernorm without affine parameters. */
TEST(norm_wider_groups) {
  check_model("wide",
              "model wide\n"
              "input x: f32[batch, 3, 9, 11]\n"
              "input label: i32[batch]\n"
              "c = conv2d(x, out=5, kernel=1, bias=false)\n"
              "b = batchnorm(c, eps=0.001)\n"
              "g = global_avgpool(b)\n"
              "l = layernorm(g, affine=false)\n"
              "logits = linear(l, out=3)\n"
              "loss = cross_entropy(logits, label)\n",
              11, KIR_PLAN_TRAIN, false, true);
}

/* The one even size in these tests, on purpose: 3x16 images make each
 * channel's stretches a multiple of the 16-element runs the threads take,
 * which the lowering handles with one index computation per run. */
TEST(batchnorm_aligned_runs) {
  check_model("aligned",
              "model aligned\n"
              "input x: f32[batch, 3, 3, 16]\n"
              "input label: i32[batch]\n"
              "c = conv2d(x, out=5, kernel=1, bias=false)\n"
              "b = batchnorm(c)\n"
              "g = global_avgpool(b)\n"
              "logits = linear(g, out=3)\n"
              "loss = cross_entropy(logits, label)\n",
              3, KIR_PLAN_TRAIN, true, true);
}

static kiln_model *load(const char *text, kiln_error *err) {
  kiln_model *m = kiln_model_load_string("t.kiln", text, strlen(text), err);
  if (!m)
    fprintf(stderr, "%s\n", err->message);
  return m;
}

static int scratch_tensor(const kir_plan *p, const char *name) {
  for (int t = 0; t < p->n_tensors; t++)
    if (p->tensors[t].role == KIR_T_SCRATCH &&
        strcmp(p->tensors[t].name, name) == 0)
      return t;
  return -1;
}

/* Hand-computed statistics: one channel of values 1, 2, 3, 6 (batch 4,
 * [N, 1]): mean 3, biased variance 3.5, unbiased 14/3; momentum 0.5 from
 * running (0, 1) gives (1.5, 17/6). The saved 1/std is 1/sqrt(3.5+eps). */
TEST(batchnorm_statistics_by_hand) {
  kiln_error err = {0};
  kiln_model *m = load("model bn1\n"
                       "input x: f32[batch, 1]\n"
                       "input y: f32[batch, 1]\n"
                       "w = prelu(x)\n"
                       "b = batchnorm(w, momentum=0.5, eps=0.25)\n"
                       "loss = mse(b, y)\n",
                       &err);
  CHECK(m != NULL);
  if (!m)
    return;
  ir_graph *g = &m->g;
  arena a;
  arena_init(&a);
  kir_plan p;
  CHECK(ir_autodiff(g, &err) == KILN_OK);
  CHECK(ir_add_updates(g, &err) == KILN_OK);
  CHECK(lower_plan(g, 4, KIR_PLAN_TRAIN, &a, &p, &err) == KILN_OK);
  int tm = scratch_tensor(&p, "b.save_mean");
  int ti = scratch_tensor(&p, "b.save_invstd");
  CHECK(tm >= 0 && ti >= 0);
  kir_interp_plan *ip = kir_interp_plan_new(&p);
  const ir_node *x = ir_graph_find(g, "x"), *w = ir_graph_find(g, "w");
  const ir_node *b = ir_graph_find(g, "b");
  static const float xv[4] = {1, 2, 3, 6};
  memcpy(kir_interp_plan_tensor(ip, p.node_tensor[x->id]), xv, sizeof xv);
  float *slope =
      kir_interp_plan_tensor(ip, kir_plan_param_tensor(&p, &w->params[0]));
  slope[0] = 0.25f;
  float *gamma = NULL, *rm = NULL, *rv = NULL;
  for (int k = 0; k < b->n_params; k++) {
    float *v =
        kir_interp_plan_tensor(ip, kir_plan_param_tensor(&p, &b->params[k]));
    if (strcmp(b->params[k].role, "weight") == 0)
      gamma = v;
    if (strcmp(b->params[k].role, "running_mean") == 0)
      rm = v;
    if (strcmp(b->params[k].role, "running_var") == 0)
      rv = v;
  }
  CHECK(gamma && rm && rv);
  if (gamma && rm && rv && tm >= 0 && ti >= 0) {
    gamma[0] = 1;
    rv[0] = 1; /* rm starts at 0 */
    kir_scalars sc = {.seed = 1};
    CHECK(kir_interp_plan_run(ip, 0, p.fwd_end, &sc, &err) == KILN_OK);
    const float *mean = kir_interp_plan_tensor(ip, tm);
    const float *inv = kir_interp_plan_tensor(ip, ti);
    CHECK_NEAR(mean[0], 3.0, 1e-6);
    CHECK_NEAR(inv[0], 1.0 / sqrt(3.75), 1e-6);
    CHECK_NEAR(rm[0], 1.5, 1e-6);
    CHECK_NEAR(rv[0], 0.5 + 0.5 * 14.0 / 3.0, 1e-6);
    const float *y = kir_interp_plan_tensor(ip, p.node_tensor[b->id]);
    CHECK_NEAR(y[3], 3.0 / sqrt(3.75), 1e-6);
  }
  kir_interp_plan_free(ip);
  arena_free(&a);
  kiln_model_free(m);
}

/* Batch statistics of one value per channel are undefined: lowering a
 * training plan says so, an evaluation plan (running statistics) is
 * fine. */
TEST(batchnorm_needs_two_values) {
  kiln_error err = {0};
  kiln_model *m = load("model bn1\n"
                       "input x: f32[batch, 3]\n"
                       "input y: f32[batch, 3]\n"
                       "w = prelu(x)\n"
                       "b = batchnorm(w)\n"
                       "loss = mse(b, y)\n",
                       &err);
  CHECK(m != NULL);
  if (!m)
    return;
  arena a;
  arena_init(&a);
  kir_plan p;
  CHECK(ir_autodiff(&m->g, &err) == KILN_OK);
  CHECK(ir_add_updates(&m->g, &err) == KILN_OK);
  CHECK(lower_plan(&m->g, 1, KIR_PLAN_TRAIN, &a, &p, &err) == KILN_ERR_INVALID);
  CHECK_STR_CONTAINS(err.message, "more than one value per channel");
  kiln_error err2 = {0};
  CHECK(lower_plan(&m->g, 1, KIR_PLAN_EVAL, &a, &p, &err2) == KILN_OK);
  arena_free(&a);
  kiln_model_free(m);
}

int main(void) {
  RUN(batchnorm_4d_train_and_eval_mode);
  RUN(batchnorm_2d_and_layernorm);
  RUN(norm_wider_groups);
  RUN(batchnorm_aligned_runs);
  RUN(batchnorm_statistics_by_hand);
  RUN(batchnorm_needs_two_values);
  return TEST_SUMMARY();
}
