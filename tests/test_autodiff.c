/* test_autodiff.c — ir_autodiff and the reference executor (ref_exec.h).
 *
 *   1. structure: the grad nodes autodiff builds for a small graph (names,
 *      shapes, fan-out sums, frozen layers and labels skipped), and that
 *      model files cannot name the internal grad op;
 *   2. whole models (mlp, lenet5, resnet_small at batch 2): every trainable
 *      parameter's gradient against central finite differences of the
 *      loss the executor computes (training run, fixed seed and step);
 *   3. ops the models do not use, each in a small inline model.
 *
 * Finite differences in double: parameters are stored as float32, so a
 * step of 3e-7 is not representable around a typical weight. The test
 * therefore gives the parameter a double override (ref_exec_param_override)
 * holding exactly its float32 values (one training run at that point gives
 * every analytic gradient) and perturbs the override in double, re-running
 * the forward from the parameter's layer on. Error sources: truncation
 * (h^2 |L'''| ~ 1e-13) and rounding (1e-16 |L| / h ~ 1e-9), well below the
 * tolerance |a - n| <= 1e-8 + 1e-4 max(|a|, |n|); a wrong rule is off by
 * O(1). The step is that small because of kinks: with h = 1e-4 a perturbed
 * conv weight in resnet_small moves enough ReLU inputs (tens of thousands
 * per layer, behind batch statistics) across 0 that half the entries
 * differ by ~1e-3; at 1e-6 one in 260, at 3e-7 none. A model may still
 * show `max_bad` mismatches (1, reported) for an unlucky kink; a broken
 * rule fails dozens. Large tensors get sampled entries plus one check of
 * the whole tensor along a random direction. Dropout is valid under finite
 * differences because its mask depends only on (seed, step, layer,
 * element) and the step is fixed. */
#include "test.h"

#include "frontend/load.h"
#include "ref_fd.h"
#include "runtime/reference/ref_exec.h"

#include <stdlib.h>

#define AD_H 3e-7
#define AD_RTOL 1e-4
#define AD_ATOL 1e-8

/* One training run (forward and backward, no update). */
static kiln_status run_training(ref_exec *ex, uint64_t seed, int64_t step,
                                kiln_error *err) {
  rt_run r = {.training = true, .seed = seed, .step = step};
  return ref_exec_run(ex, &r, NULL, err);
}

static kiln_model *load(const char *name, const char *text) {
  kiln_error err = {0};
  kiln_model *m = kiln_model_load_string(name, text, strlen(text), &err);
  if (!m)
    fprintf(stderr, "%s\n", err.message);
  return m;
}

/* Fixed-seed parameters: uniform(-0.1, 0.1), scales of normalisations
 * around 1, running variances 1. */
static void fill_params(ref_exec *ex, const ir_graph *g, fd_rng *r) {
  for (int i = 0; i < g->n_nodes; i++) {
    const ir_node *n = g->nodes[i];
    for (int k = 0; k < n->n_params; k++) {
      int64_t cnt;
      float *v = ref_exec_param(ex, &n->params[k], &cnt);
      bool norm = n->op == IR_OP_BATCHNORM || n->op == IR_OP_LAYERNORM;
      bool var = strcmp(n->params[k].role, "running_var") == 0;
      for (int64_t j = 0; j < cnt; j++) {
        double u = fd_uniform(r, -0.1, 0.1);
        if (var)
          u = 1;
        else if (norm && strcmp(n->params[k].role, "weight") == 0)
          u += 1;
        v[j] = (float)u;
      }
    }
  }
}

/* Random float inputs in [-1, 1) and labels in [0, classes). */
static void fill_inputs(ref_exec *ex, const ir_graph *g, int64_t batch,
                        int classes, fd_rng *r) {
  kiln_error err = {0};
  for (int i = 0; i < g->n_nodes; i++) {
    const ir_node *n = g->nodes[i];
    if (n->op != IR_OP_INPUT)
      continue;
    int64_t cnt = ir_shape_numel(&n->shape, batch);
    if (ir_dtype_is_float(n->dtype)) {
      float *v = malloc(sizeof(float) * (size_t)cnt);
      for (int64_t j = 0; j < cnt; j++)
        v[j] = (float)fd_uniform(r, -1, 1);
      CHECK(ref_exec_set_input_f32(ex, n->name, v, &err) == KILN_OK);
      free(v);
    } else {
      int32_t *v = malloc(sizeof(int32_t) * (size_t)cnt);
      for (int64_t j = 0; j < cnt; j++)
        v[j] = (int32_t)(fd_next(r) % (uint64_t)classes);
      CHECK(ref_exec_set_input_i32(ex, n->name, v, &err) == KILN_OK);
      free(v);
    }
  }
}

typedef struct fd_stats {
  int checked, bad, nonzero;
} fd_stats;

enum { SEED = 7, STEP = 3 };

/* The central difference of the loss along direction u of p's values v
 * (which the executor reads through an override); only the part of the
 * graph from p's layer on is recomputed. */
static double fd_along(ref_exec *ex, const ir_node *owner, double *v,
                       const double *u, int64_t n) {
  kiln_error err = {0};
  double l[2];
  for (int side = 0; side < 2; side++) {
    double h = side ? -AD_H : AD_H;
    for (int64_t i = 0; i < n; i++)
      v[i] += h * u[i];
    CHECK(ref_exec_rerun_from(ex, owner, &err) == KILN_OK);
    l[side] = ref_exec_loss(ex);
    for (int64_t i = 0; i < n; i++)
      v[i] -= h * u[i];
  }
  return (l[0] - l[1]) / (2 * AD_H);
}

static void compare(fd_stats *s, const char *what, int64_t i, double a,
                    double num) {
  double mag = fmax(fabs(num), fabs(a));
  s->checked++;
  s->nonzero += mag > 1e-6;
  if (!(fabs(num - a) <= AD_ATOL + AD_RTOL * mag)) { /* NaN fails too */
    if (s->bad < 8)
      fprintf(stderr, "  %s[%lld]: analytic %.10g, numeric %.10g\n", what,
              (long long)i, a, num);
    s->bad++;
  }
}

/* Checks up to `samples` entries of the gradient `grad` of parameter k of
 * the graph (all of them when it is small), and when `directional`, the
 * whole tensor at once along a random direction u: sum(grad * u) against
 * the difference along u, which no wrong entry escapes unnoticed unless
 * errors cancel by chance. */
static void check_param(ref_exec *ex, const ir_graph *g, int k,
                        const double *grad, int samples, bool directional,
                        fd_rng *r, fd_stats *s) {
  const ir_param *p = g->grad_params[k];
  const ir_node *owner = g->grad_nodes[k]->fwd;
  int64_t n;
  float *f = ref_exec_param(ex, p, &n);
  double *v = malloc(sizeof(double) * (size_t)n);
  double *u = calloc((size_t)n, sizeof(double));
  for (int64_t i = 0; i < n; i++)
    v[i] = f[i];
  ref_exec_param_override(ex, p, v);
  int m = n <= samples ? (int)n : samples;
  for (int t = 0; t < m; t++) {
    int64_t i = n <= samples ? t : (int64_t)(fd_next(r) % (uint64_t)n);
    u[i] = 1;
    compare(s, p->name, i, grad[i], fd_along(ex, owner, v, u, n));
    u[i] = 0;
  }
  if (directional && n > samples) {
    /* |u| ~ 0.6 whatever n: a step as small as for one entry */
    fd_fill(r, u, (size_t)n, -1, 1);
    for (int64_t i = 0; i < n; i++)
      u[i] /= sqrt((double)n);
    compare(s, p->name, -1, fd_dot(grad, u, (size_t)n),
            fd_along(ex, owner, v, u, n));
  }
  ref_exec_param_override(ex, p, NULL);
  free(v);
  free(u);
}

/* Autodiff of m, executor at `batch`, every parameter gradient checked;
 * `max_bad` mismatches are tolerated (see the top). Frees m. */
static void check_model(kiln_model *m, int64_t batch, int classes, int samples,
                        int max_bad) {
  CHECK(m != NULL);
  if (!m)
    return;
  ir_graph *g = &m->g;
  kiln_error err = {0};
  CHECK(ir_autodiff(g, &err) == KILN_OK);
  if (err.status)
    fprintf(stderr, "%s\n", err.message);
  ref_exec *ex = ref_exec_new(g, batch, &err);
  CHECK(ex != NULL && g->n_param_grads > 0);
  if (!ex || !g->n_param_grads) {
    ref_exec_free(ex);
    kiln_model_free(m);
    return;
  }
  fd_rng r = {42};
  fill_params(ex, g, &r);
  fill_inputs(ex, g, batch, classes, &r);
  /* One training run gives every analytic gradient: the overrides used
   * below hold exactly the float32 values, so the point is the same. */
  CHECK(run_training(ex, SEED, STEP, &err) == KILN_OK);
  double **grads = calloc((size_t)g->n_param_grads, sizeof(double *));
  for (int k = 0; k < g->n_param_grads; k++) {
    int64_t n;
    ref_exec_param(ex, g->grad_params[k], &n);
    grads[k] = malloc(sizeof(double) * (size_t)n);
    memcpy(grads[k], ref_exec_param_grad(ex, g->grad_params[k]),
           sizeof(double) * (size_t)n);
  }
  fd_stats s = {0};
  for (int k = 0; k < g->n_param_grads; k++) {
    check_param(ex, g, k, grads[k], samples, true, &r, &s);
    free(grads[k]);
  }
  free(grads);
  if (s.bad)
    fprintf(stderr, "%s: %d of %d gradient checks differ\n", g->name, s.bad,
            s.checked);
  CHECK(s.bad <= max_bad);
  CHECK(s.nonzero > s.checked / 2); /* the check saw real gradients */
  ref_exec_free(ex);
  kiln_model_free(m);
}

TEST(test_structure) {
  kiln_model *m = load("s", "model s\n"
                            "input x: f32[batch, 4]\n"
                            "input label: i32[batch]\n"
                            "a = linear(x, out=3)\n"
                            "b = relu(a)\n"
                            "c = mul(b, b)\n"
                            "d = add(c, a)\n"
                            "fz = linear(x, out=3)\n"
                            "e = add(d, fz)\n"
                            "loss = cross_entropy(e, label)\n"
                            "train {\n  freeze = [fz]\n}\n");
  CHECK(m != NULL);
  if (!m)
    return;
  ir_graph *g = &m->g;
  kiln_error err = {0};
  int n_fwd = g->n_nodes;
  CHECK(ir_autodiff(g, &err) == KILN_OK);
  static const struct {
    const char *name;
    ir_op op;
    const char *fwd; /* NULL for sums */
    int wrt;
    const char *shape;
  } want[] = {
      {"grad/loss/e", IR_OP_GRAD, "loss", 0, "[batch, 3]"},
      {"grad/e/d", IR_OP_GRAD, "e", 0, "[batch, 3]"},
      {"grad/d/c", IR_OP_GRAD, "d", 0, "[batch, 3]"},
      {"grad/d/a", IR_OP_GRAD, "d", 1, "[batch, 3]"},
      {"grad/c/b", IR_OP_GRAD, "c", 0, "[batch, 3]"},
      {"grad/c/b#1", IR_OP_GRAD, "c", 1, "[batch, 3]"},
      {"grad/b", IR_OP_ADD, NULL, 0, "[batch, 3]"},
      {"grad/b/a", IR_OP_GRAD, "b", 0, "[batch, 3]"},
      {"grad/a", IR_OP_ADD, NULL, 0, "[batch, 3]"},
      {"grad/a/weight", IR_OP_GRAD, "a", -1, "[3, 4]"},
      {"grad/a/bias", IR_OP_GRAD, "a", -2, "[3]"},
  };
  arena scratch;
  arena_init(&scratch);
  for (size_t k = 0; k < ARRAY_LEN(want); k++) {
    const ir_node *n = ir_graph_find(g, want[k].name);
    CHECK(n != NULL);
    if (!n) {
      fprintf(stderr, "  missing %s\n", want[k].name);
      continue;
    }
    CHECK_EQ_INT(n->op, want[k].op);
    CHECK(strcmp(ir_shape_str(&scratch, &n->shape), want[k].shape) == 0);
    if (want[k].fwd) {
      CHECK(n->fwd && strcmp(n->fwd->name, want[k].fwd) == 0);
      CHECK_EQ_INT(n->wrt, want[k].wrt);
    }
  }
  arena_free(&scratch);
  /* exactly these: nothing for x, label, the frozen layer or e's fz side */
  CHECK_EQ_INT(g->n_nodes - n_fwd, (int)ARRAY_LEN(want));
  CHECK(!ir_graph_find(g, "grad/fz/weight") && !ir_graph_find(g, "grad/fz"));
  CHECK(!ir_graph_find(g, "grad/e/fz") && !ir_graph_find(g, "grad/a/x"));
  CHECK(!ir_graph_find(g, "grad/loss/label"));
  /* the loss's own gradient has no dy input: logits only (+ labels) */
  CHECK_EQ_INT(ir_graph_find(g, "grad/loss/e")->n_inputs, 2);
  CHECK_EQ_INT(g->n_param_grads, 2);
  CHECK(strcmp(g->grad_params[0]->name, "a.weight") == 0 ||
        strcmp(g->grad_params[1]->name, "a.weight") == 0);
  FILE *null = fopen("/dev/null", "w");
  if (null) { /* printing a graph with grad nodes must work */
    ir_print(g, null);
    fclose(null);
  }
  /* the verifier catches a grad node whose shape is wrong */
  ir_node *gw = ir_graph_find(g, "grad/a/weight");
  gw->shape.dim[0]++;
  CHECK(ir_verify(g, &err) == KILN_ERR_INTERNAL);
  CHECK_STR_CONTAINS(err.message, "grad/a/weight");
  gw->shape.dim[0]--;
  CHECK(ir_verify(g, &err) == KILN_OK);
  kiln_model_free(m);
  check_model(load("s", "model s\n"
                        "input x: f32[batch, 4]\n"
                        "input label: i32[batch]\n"
                        "a = linear(x, out=3)\n"
                        "b = tanh(a)\n"
                        "c = mul(b, b)\n"
                        "d = add(c, a)\n"
                        "loss = cross_entropy(d, label)\n"),
              3, 3, 1000, 0);
}

TEST(test_grad_op_is_internal) {
  kiln_error err = {0};
  const char *text = "model g\ninput x: f32[batch, 4]\ny = grad(x)\n";
  kiln_model *m = kiln_model_load_string("g", text, strlen(text), &err);
  CHECK(m == NULL);
  CHECK_STR_CONTAINS(err.message, "unknown op or block 'grad'");
  kiln_model_free(m);
}

TEST(test_errors) {
  kiln_model *m = load("e", "model e\n"
                            "input x: f32[batch, 4]\n"
                            "input label: i32[batch]\n"
                            "a = linear(x, out=3)\n"
                            "loss = cross_entropy(a, label)\n");
  CHECK(m != NULL);
  if (!m)
    return;
  kiln_error err = {0};
  CHECK(ir_autodiff(&m->g, &err) == KILN_OK);
  ref_exec *ex = ref_exec_new(&m->g, 2, &err);
  float x[8] = {0};
  int32_t bad[2] = {1, 3};
  CHECK(run_training(ex, 1, 0, &err) == KILN_ERR_INVALID);
  CHECK_STR_CONTAINS(err.message, "never set");
  CHECK(ref_exec_set_input_f32(ex, "x", x, &err) == KILN_OK);
  CHECK(ref_exec_set_input_i32(ex, "x", bad, &err) == KILN_ERR_TYPE);
  CHECK(ref_exec_set_input_f32(ex, "nope", x, &err) == KILN_ERR_NAME);
  CHECK(ref_exec_set_input_i32(ex, "label", bad, &err) == KILN_OK);
  CHECK(run_training(ex, 1, 0, &err) == KILN_ERR_INVALID);
  CHECK_STR_CONTAINS(err.message, "label 3 of example 1 is outside 0..2");
  ref_exec_free(ex);
  kiln_model_free(m);
  m = load("n", "model n\ninput x: f32[batch, 4]\na = relu(x)\noutput a\n");
  CHECK(m && ir_autodiff(&m->g, &err) == KILN_ERR_INVALID);
  kiln_model_free(m);
}

TEST(test_models) {
  static const struct {
    const char *path;
    int samples, max_bad;
  } models[] = {
      {"models/mlp.kiln", 20, 1},
      {"models/lenet5.kiln", 20, 1},
      {"models/resnet_small.kiln", 1, 1},
  };
  for (size_t k = 0; k < ARRAY_LEN(models); k++) {
    kiln_error err = {0};
    kiln_model *m = kiln_model_load_file(models[k].path, &err);
    if (!m)
      fprintf(stderr, "%s\n", err.message);
    check_model(m, 2, 10, models[k].samples, models[k].max_bad);
  }
}

/* One op between a linear layer (whose gradient then runs through the op's
 * backward) and a classifier; %s is the op's line(s), reading h and
 * defining o. */
static void check_op(const char *ops, bool rank4) {
  char text[2048];
  snprintf(text, sizeof text,
           "model op\n"
           "input x: f32[%s]\n"
           "input label: i32[batch]\n"
           "input t: f32[batch, 4]\n"
           "input w: f32[3, 4]\n"
           "h = %s\n"
           "%s\n"
           "flat = flatten(o)\n"
           "f = linear(flat, out=4)\n"
           "loss = cross_entropy(f, label)\n",
           rank4 ? "batch, 2, 4, 4" : "batch, 6",
           rank4 ? "conv2d(x, out=4, kernel=3, padding=1)" : "linear(x, out=6)",
           ops);
  fprintf(stderr, "op: %s\n", ops);
  check_model(load("op", text), 3, 4, 1000, 0);
}

TEST(test_ops) {
  check_op("o = prelu(h)", false);
  check_op("o = prelu(h, shared=true)", true);
  check_op("o = elu(h, alpha=0.7)", false);
  check_op("o = gelu(h)", false);
  check_op("o = gelu(h, approximate=tanh)", false);
  check_op("o = sigmoid(h)", false);
  check_op("o = tanh(h)", false);
  check_op("o = leaky_relu(h, slope=0.1)", false);
  check_op("o = maxout(h, pieces=2)", false);
  check_op("o = maxout(h, pieces=2)", true);
  check_op("o = softmax(h)", false);
  check_op("o = softmax(h, axis=1)", true);
  check_op("o = layernorm(h)", false);
  check_op("o = avgpool(h, kernel=2)", true);
  check_op("o = avgpool(h, kernel=3, stride=1, padding=1)", true);
  check_op("o = maxpool(h, kernel=2)", true);
  check_op("g = tanh(h)\no = concat(h, g, axis=1)", false);
  check_op("g = tanh(h)\no = concat(g, h, axis=2)", true);
  check_op("g = sigmoid(h)\no = mul(h, g)", false);
  check_op("g = global_avgpool(h)\nr = reshape(g, shape=[batch, 4, 1, 1])\n"
           "o = mul(h, r)",
           true);
  check_op("a = reshape(h, shape=[batch, 2, 3])\n"
           "k = linear(x, out=12)\nb = reshape(k, shape=[batch, 3, 4])\n"
           "o = matmul(a, b)",
           false);
  check_op("a = reshape(h, shape=[batch, 2, 3])\no = matmul(a, w)", false);
  check_op("o = batchnorm(h)", false);
  check_op("o = batchnorm(h, affine=false)", true);
  /* mse: a float target and a regression head */
  check_model(load("mse", "model mse\n"
                          "input x: f32[batch, 6]\n"
                          "input t: f32[batch, 4]\n"
                          "h = linear(x, out=4)\n"
                          "o = elu(h)\n"
                          "loss = mse(o, t)\n"),
              3, 4, 1000, 0);
  check_model(load("mses", "model mses\n"
                           "input x: f32[batch, 6]\n"
                           "input t: f32[batch, 4]\n"
                           "h = linear(x, out=4)\n"
                           "p = linear(x, out=4)\n"
                           "loss = mse(h, p, reduction=sum)\n"),
              3, 4, 1000, 0);
}

int main(void) {
  RUN(test_structure);
  RUN(test_grad_op_is_internal);
  RUN(test_errors);
  RUN(test_ops);
  RUN(test_models);
  return TEST_SUMMARY();
}
