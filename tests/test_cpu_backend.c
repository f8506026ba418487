/* test_cpu_backend.c — the "cpu" backend (lowered plans, JIT-compiled by
 * LLVM, run on the thread pool) against the "reference" backend (the
 * double-precision reference executor, the oracle), both driven through
 * runtime/backend.h exactly as the training loop drives them: the same
 * initial parameters and batches, several training steps with updates,
 * then evaluation. Compared after every step: the loss, the gradient norm,
 * every gradient, every parameter, BatchNorm buffer, optimizer state and
 * EMA weight; after evaluation the loss and the logits. Also: a forward
 * run against hand-computed values, the compiled plan executor plugged
 * into lowering's harness (tests/support/plan_check.h), and the thread
 * pool's parallel for.
 *
 * Tolerances: the reference computes in double and rounds to float32 only
 * where it stores, the compiled code in float32 throughout, so values
 * agree to a few float32 ulps of accumulated rounding: 2e-4 of each
 * tensor's largest magnitude (a wrong kernel or a wrong dropout mask is
 * off by O(1) of it). Batches are odd (7) so that no loop divides evenly
 * into tiles. */
#include "test.h"

#include "frontend/load.h"
#include "ref_fd.h"
#include "runtime/backend.h"
#include "runtime/cpu/rt_cpu.h"
#include "support/plan_check.h"

#include <stdlib.h>

enum { BATCH = 7, STEPS = 3, SEED = 5 };
#define TOL 2e-4

static const char *const bn_model =
    "model bnnet\n"
    "input image: f32[batch, 2, 7, 7]\n"
    "input label: i32[batch]\n"
    "c1 = conv2d(image, out=3, kernel=3, padding=1)\n"
    "bn1 = batchnorm(c1)\n"
    "act1 = relu(bn1)\n"
    "drop1 = dropout(act1, p=0.3)\n"
    "flat = flatten(drop1)\n"
    "fc = linear(flat, out=5)\n"
    "loss = cross_entropy(fc, label)\n";

static kiln_model *load(const char *text, const char *path) {
  kiln_error err = {0};
  kiln_model *m =
      text ? kiln_model_load_string("t.kiln", text, strlen(text), &err)
           : kiln_model_load_file(path, &err);
  if (!m)
    fprintf(stderr, "%s\n", err.message);
  return m;
}

/* max |got - want| over max |want| (floored), the tensor-relative error. */
static double tensor_err(const float *got, const float *want, int64_t n) {
  double d = 0, scale = 1e-3;
  for (int64_t i = 0; i < n; i++) {
    double e = fabs((double)got[i] - want[i]);
    d = e > d || isnan(e) ? e : d;
    scale = fmax(scale, fabs((double)want[i]));
  }
  return d / scale;
}

typedef struct both {
  const rt_backend_ops *ref, *cpu;
  rt_backend *rb, *cb;
  const ir_graph *g;
  const char *what;
} both;

/* Every parameter of the graph (update state included) on both sides. */
static void check_params(both *t, int step) {
  const ir_graph *g = t->g;
  for (int i = 0; i < g->n_nodes; i++) {
    const ir_node *n = g->nodes[i];
    for (int k = 0; k < n->n_params; k++) {
      const ir_param *p = &n->params[k];
      int64_t len = ir_shape_numel(&p->shape, 1);
      float *want = malloc(sizeof(float) * (size_t)len);
      float *got = malloc(sizeof(float) * (size_t)len);
      t->ref->param_read(t->rb, p, want);
      t->cpu->param_read(t->cb, p, got);
      double e = tensor_err(got, want, len);
      if (!(e <= TOL))
        fprintf(stderr, "%s step %d: parameter %s off by %.3g\n", t->what, step,
                p->name, e);
      CHECK(e <= TOL);
      free(want);
      free(got);
    }
  }
}

static void check_grads(both *t, int step) {
  const ir_graph *g = t->g;
  for (int k = 0; k < g->n_param_grads; k++) {
    const ir_param *p = g->grad_params[k];
    int64_t len = ir_shape_numel(&p->shape, 1);
    float *want = malloc(sizeof(float) * (size_t)len);
    float *got = malloc(sizeof(float) * (size_t)len);
    CHECK(t->ref->grad_read(t->rb, p, want));
    CHECK(t->cpu->grad_read(t->cb, p, got));
    double e = tensor_err(got, want, len);
    if (!(e <= TOL))
      fprintf(stderr, "%s step %d: gradient of %s off by %.3g\n", t->what, step,
              p->name, e);
    CHECK(e <= TOL);
    free(want);
    free(got);
  }
}

static void set_inputs(both *t, const float *x, const int32_t *y,
                       kiln_error *err) {
  const ir_node *img = ir_graph_find(t->g, "image");
  const ir_node *lab = ir_graph_find(t->g, "label");
  CHECK_EQ_INT(t->ref->set_input(t->rb, img, x, err), KILN_OK);
  CHECK_EQ_INT(t->ref->set_input(t->rb, lab, y, err), KILN_OK);
  CHECK_EQ_INT(t->cpu->set_input(t->cb, img, x, err), KILN_OK);
  CHECK_EQ_INT(t->cpu->set_input(t->cb, lab, y, err), KILN_OK);
}

/* Runs r on both and compares the results. */
static void run_both(both *t, const rt_run *r, int step) {
  kiln_error err = {0};
  rt_result want = {0}, got = {0};
  CHECK_EQ_INT(t->ref->run(t->rb, r, &want, &err), KILN_OK);
  kiln_status st = t->cpu->run(t->cb, r, &got, &err);
  if (st != KILN_OK)
    fprintf(stderr, "%s\n", err.message);
  CHECK_EQ_INT(st, KILN_OK);
  if (!(fabs(got.loss - want.loss) <= TOL * fmax(1, fabs(want.loss))))
    fprintf(stderr, "%s step %d: loss %.9g, reference %.9g\n", t->what, step,
            got.loss, want.loss);
  CHECK(fabs(got.loss - want.loss) <= TOL * fmax(1, fabs(want.loss)));
  CHECK(got.skipped == want.skipped);
  CHECK((isfinite(got.grad_norm) && fabs(got.grad_norm - want.grad_norm) <=
                                        TOL * fmax(1, want.grad_norm)) ||
        (!isfinite(got.grad_norm) && !isfinite(want.grad_norm)));
}

typedef struct opt_case {
  const char *what;
  ir_optim_kind kind;
  double momentum, clip, ema;
} opt_case;

static void check_model(const char *text, const char *path,
                        const opt_case *oc) {
  kiln_model *m = load(text, path);
  CHECK(m != NULL);
  if (!m)
    return;
  kiln_error err = {0};
  ir_graph *g = &m->g;
  g->train.optim.kind = oc->kind;
  g->train.optim.momentum = oc->momentum;
  g->train.clip_grad_norm = oc->clip;
  g->train.ema = oc->ema;
  /* Adam divides by sqrt(v) + eps: with the default eps (1e-8) a gradient
   * element near zero moves its weight by about +-lr whatever its
   * rounding, so float32 and double disagree there by O(lr). A larger eps
   * keeps the step a smooth function of the gradient (the formula and
   * every kernel stay the same). */
  if (oc->kind == IR_OPTIM_ADAM)
    g->train.optim.eps = 1e-3;
  CHECK_EQ_INT(ir_autodiff(g, &err), KILN_OK);
  CHECK_EQ_INT(ir_add_updates(g, &err), KILN_OK);
  both t = {
      rt_backend_find("reference"), &rt_backend_cpu, NULL, NULL, g, oc->what};
  t.rb = t.ref->create(g, BATCH, &err);
  CHECK(t.rb != NULL);
  t.cb = t.cpu->create(g, BATCH, &err);
  if (!t.cb)
    fprintf(stderr, "cpu backend: %s\n", err.message);
  CHECK(t.cb != NULL);
  if (!t.rb || !t.cb)
    goto done;

  /* The same initial values on both sides; EMA weights = the weights. */
  uint64_t index = 0;
  for (int i = 0; i < g->n_nodes; i++) {
    const ir_node *n = g->nodes[i];
    for (int k = 0; k < n->n_params; k++, index++) {
      const ir_param *p = &n->params[k];
      int64_t len = ir_shape_numel(&p->shape, 1);
      float *v = calloc((size_t)len, sizeof(float));
      fd_rng r = {SEED * 1000 + index};
      if (n->op == IR_OP_UPDATE && strcmp(p->role, "ema") == 0)
        t.ref->param_read(t.rb, ir_update_param(n), v);
      else if (n->op != IR_OP_UPDATE)
        for (int64_t j = 0; j < len; j++)
          v[j] = strcmp(p->role, "running_var") == 0
                     ? 1.0f
                     : (float)fd_uniform(&r, -0.2, 0.2);
      t.ref->param_write(t.rb, p, v);
      t.cpu->param_write(t.cb, p, v);
      free(v);
    }
  }

  const ir_node *img = ir_graph_find(g, "image");
  int64_t nx = ir_shape_numel(&img->shape, BATCH);
  const ir_node *logits = g->loss->inputs[0];
  int64_t classes = logits->shape.dim[logits->shape.rank - 1];
  float *x = malloc(sizeof(float) * (size_t)nx);
  int32_t y[BATCH];
  for (int step = 0; step < STEPS; step++) {
    fd_rng r = {SEED + 31 * (uint64_t)step};
    for (int64_t i = 0; i < nx; i++)
      x[i] = (float)fd_uniform(&r, -1, 1);
    for (int i = 0; i < BATCH; i++)
      y[i] = (int32_t)(fd_next(&r) % (uint64_t)classes);
    set_inputs(&t, x, y, &err);
    rt_run run = {.training = true,
                  .update = true,
                  .seed = SEED,
                  .step = step,
                  .lr = 0.05 * (1.0 - 0.2 * step)};
    run_both(&t, &run, step);
    check_grads(&t, step);
    check_params(&t, step);
  }
  /* A NaN input gives a NaN gradient norm: with clipping the step is
   * skipped on both sides and nothing changes. */
  if (oc->clip > 0) {
    x[0] = NAN;
    set_inputs(&t, x, y, &err);
    rt_run run = {.training = true,
                  .update = true,
                  .seed = SEED,
                  .step = STEPS,
                  .lr = 0.05};
    rt_result got = {0};
    CHECK_EQ_INT(t.cpu->run(t.cb, &run, &got, &err), KILN_OK);
    CHECK(got.skipped);
    CHECK_EQ_INT(t.ref->run(t.rb, &run, NULL, &err), KILN_OK);
    check_params(&t, STEPS);
    x[0] = 0.5f;
  }
  /* Evaluation (running statistics, no dropout), live and EMA weights. */
  for (int ema = 0; ema <= (oc->ema > 0); ema++) {
    set_inputs(&t, x, y, &err);
    rt_run ev = {.ema = ema, .seed = SEED, .step = 0};
    run_both(&t, &ev, 100 + ema);
    float *want = malloc(sizeof(float) * (size_t)(BATCH * classes));
    float *got = malloc(sizeof(float) * (size_t)(BATCH * classes));
    CHECK_EQ_INT(t.ref->read_output(t.rb, logits, want, &err), KILN_OK);
    CHECK_EQ_INT(t.cpu->read_output(t.cb, logits, got, &err), KILN_OK);
    CHECK(tensor_err(got, want, BATCH * classes) <= TOL);
    free(want);
    free(got);
  }
  free(x);
done:
  if (t.cb)
    t.cpu->destroy(t.cb);
  if (t.rb)
    t.ref->destroy(t.rb);
  kiln_model_free(m);
}

static const opt_case sgd = {"sgd momentum", IR_OPTIM_SGD, 0.9, 0, 0};
static const opt_case adam = {"adam clip ema", IR_OPTIM_ADAM, 0, 0.5, 0.9};

TEST(test_mlp_sgd) {
  check_model(NULL, "models/mlp.kiln", &sgd);
}

TEST(test_mlp_adam_clip_ema) {
  check_model(NULL, "models/mlp.kiln", &adam);
}

TEST(test_conv_bn_dropout) {
  check_model(bn_model, NULL, &sgd);
}

/* Invalid runs are refused as by the reference backend. */
TEST(test_run_errors) {
  kiln_model *m = load(NULL, "models/mlp.kiln");
  CHECK(m != NULL);
  if (!m)
    return;
  kiln_error err = {0};
  CHECK_EQ_INT(ir_autodiff(&m->g, &err), KILN_OK);
  CHECK_EQ_INT(ir_add_updates(&m->g, &err), KILN_OK);
  rt_backend *b = rt_backend_cpu.create(&m->g, 3, &err);
  CHECK(b != NULL);
  if (b) {
    rt_run r = {.update = true};
    CHECK_EQ_INT(rt_backend_cpu.run(b, &r, NULL, &err), KILN_ERR_INVALID);
    rt_run e = {.training = true, .ema = true};
    CHECK_EQ_INT(rt_backend_cpu.run(b, &e, NULL, &err), KILN_ERR_INVALID);
    CHECK_STR_CONTAINS(err.message, "EMA");
    rt_backend_cpu.destroy(b);
  }
  kiln_model_free(m);
}

/* A graph with gradients but no update nodes, zero weights: uniform
 * logits, so the loss is log(classes) and the bias gradient is
 * (softmax - onehot) / batch, computed here by hand. */
TEST(test_forward_only_by_hand) {
  kiln_model *m = load(bn_model, NULL);
  CHECK(m != NULL);
  if (!m)
    return;
  kiln_error err = {0};
  CHECK_EQ_INT(ir_autodiff(&m->g, &err), KILN_OK);
  rt_backend *b = rt_backend_cpu.create(&m->g, 3, &err);
  if (!b)
    fprintf(stderr, "%s\n", err.message);
  CHECK(b != NULL);
  if (b) {
    float x[3 * 2 * 7 * 7] = {0};
    int32_t y[3] = {0, 4, 4};
    const ir_node *fc = ir_graph_find(&m->g, "fc");
    CHECK_EQ_INT(
        rt_backend_cpu.set_input(b, ir_graph_find(&m->g, "image"), x, &err),
        KILN_OK);
    CHECK_EQ_INT(
        rt_backend_cpu.set_input(b, ir_graph_find(&m->g, "label"), y, &err),
        KILN_OK);
    rt_run run = {.training = true, .seed = 1};
    rt_result res = {0};
    CHECK_EQ_INT(rt_backend_cpu.run(b, &run, &res, &err), KILN_OK);
    CHECK_NEAR(res.loss, log(5.0), 1e-6);
    CHECK(res.grad_norm == 0 && !res.skipped);
    float z[15] = {1};
    CHECK_EQ_INT(rt_backend_cpu.read_output(b, fc, z, &err), KILN_OK);
    CHECK(z[0] == 0 && z[14] == 0);
    float gb[5];
    CHECK(rt_backend_cpu.grad_read(b, &fc->params[1], gb));
    CHECK_NEAR(gb[0], (3 * 0.2 - 1) / 3, 1e-6); /* label 0 once */
    CHECK_NEAR(gb[1], 0.2, 1e-6);
    CHECK_NEAR(gb[4], (3 * 0.2 - 2) / 3, 1e-6); /* label 4 twice */
    /* running statistics are parameters without gradients */
    CHECK(!rt_backend_cpu.grad_read(b, &ir_graph_find(&m->g, "bn1")->params[2],
                                    gb));
    rt_backend_cpu.destroy(b);
  }
  kiln_model_free(m);
}

/* ---- the thread pool ---- */

static void mark(void *ctx, int64_t begin, int64_t end) {
  int *marks = ctx;
  for (int64_t i = begin; i < end; i++)
    marks[i]++;
}

/* Every index exactly once, for grids smaller and larger than the pool. */
TEST(test_pool_coverage) {
  static const int threads[] = {1, 2, 3, 8};
  static const int64_t sizes[] = {1, 2, 5, 7, 1001, 100003};
  int *marks = malloc(sizeof(int) * 100003);
  for (size_t ti = 0; ti < ARRAY_LEN(threads); ti++) {
    rt_cpu_pool *p = rt_cpu_pool_new(threads[ti]);
    CHECK_EQ_INT(rt_cpu_pool_threads(p), threads[ti]);
    for (size_t si = 0; si < ARRAY_LEN(sizes); si++) {
      for (int rep = 0; rep < 3; rep++) {
        memset(marks, 0, sizeof(int) * (size_t)sizes[si]);
        rt_cpu_pool_for(p, sizes[si], mark, marks);
        int bad = 0;
        for (int64_t i = 0; i < sizes[si]; i++)
          bad += marks[i] != 1;
        if (bad)
          fprintf(stderr, "pool %d threads, n %lld: %d wrong\n", threads[ti],
                  (long long)sizes[si], bad);
        CHECK_EQ_INT(bad, 0);
      }
    }
    rt_cpu_pool_free(p);
  }
  free(marks);
  /* KILN_THREADS sizes the default pool. */
  setenv("KILN_THREADS", "5", 1);
  rt_cpu_pool *p = rt_cpu_pool_new(0);
  CHECK_EQ_INT(rt_cpu_pool_threads(p), 5);
  rt_cpu_pool_free(p);
  unsetenv("KILN_THREADS");
}

/* ---- the compiled plan executor in lowering's harness ---- */

/* Node by node against the reference executor (plan_check): forward,
 * backward and the update in training mode, and the forward in eval. */
static void plan_check(const char *path, const char *text, int64_t batch) {
  static const kir_plan_mode modes[] = {KIR_PLAN_TRAIN, KIR_PLAN_EVAL};
  for (size_t i = 0; i < ARRAY_LEN(modes); i++) {
    pc_opts o = {.mode = modes[i],
                 .update = modes[i] == KIR_PLAN_TRAIN,
                 .batch = batch,
                 .step = 3,
                 .exec = &pc_cpu_executor};
    pc_report rep = {0};
    kiln_error err = {0};
    kiln_status st = path ? pc_check_file(path, &o, &rep, &err)
                          : pc_check_string("t", text, &o, &rep, &err);
    if (st != KILN_OK)
      fprintf(stderr, "%s (%s): %s\n", path ? path : "text",
              modes[i] == KIR_PLAN_TRAIN ? "train" : "eval", err.message);
    CHECK_EQ_INT(st, KILN_OK);
    CHECK(rep.compared > 0 && rep.launches > 0);
  }
}

TEST(test_plan_check_mlp) {
  plan_check("models/mlp.kiln", NULL, 5);
}

TEST(test_plan_check_lenet5) {
  plan_check("models/lenet5.kiln", NULL, 3);
}

TEST(test_plan_check_bn) {
  plan_check(NULL, bn_model, 7);
}

int main(void) {
  RUN(test_pool_coverage);
  RUN(test_mlp_sgd);
  RUN(test_mlp_adam_clip_ema);
  RUN(test_conv_bn_dropout);
  RUN(test_run_errors);
  RUN(test_forward_only_by_hand);
  RUN(test_plan_check_mlp);
  RUN(test_plan_check_lenet5);
  RUN(test_plan_check_bn);
  return TEST_SUMMARY();
}
