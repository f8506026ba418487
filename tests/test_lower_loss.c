/* test_lower_loss.c — lowering of cross_entropy and mse
 * (passes/lower_loss.c) against the reference executor through the
 * plan-check harness (tests/support/plan_check.h): the loss value and
 * dloss/dinput of cross_entropy with and without label smoothing, mean and
 * sum reductions, an odd class count (7) and batch (3, 5); mse with both
 * reductions and a computed target (whose gradient is the negative of the
 * prediction's). Plus hand-computed values: the loss of known logits, a
 * label out of range (NaN loss, never an out-of-bounds read) and large
 * logits that would overflow exp without the max subtracted. */
#include "test.h"

#include "frontend/load.h"
#include "passes/lower.h"
#include "runtime/cpu/rt_cpu.h"
#include "support/kir_interp.h"
#include "support/plan_check.h"

#include <math.h>
#include <stdlib.h>

/* Both plan executors: the kernel IR interpreter (the definition) and the
 * compiled CPU plan. */
static const pc_executor *const executors[] = {&pc_interp_executor,
                                               &pc_cpu_executor};

static void check_model(const char *what, const char *text, int64_t batch,
                        kir_plan_mode mode, bool cpu) {
  /* the compiled plan costs an LLVM compile: only where asked */
  for (size_t e = 0; e < (cpu ? ARRAY_LEN(executors) : 1); e++) {
    pc_opts o = {.mode = mode, .batch = batch, .exec = executors[e]};
    pc_report rep = {0};
    kiln_error err = {0};
    kiln_status st = pc_check_string(what, text, &o, &rep, &err);
    if (st)
      fprintf(stderr, "%s (%s): %s\n", what, executors[e]->name, err.message);
    CHECK(st == KILN_OK);
    CHECK(rep.compared > 0);
  }
}

static const char *ce_model(char *buf, size_t cap, const char *attrs) {
  snprintf(buf, cap,
           "model ce\n"
           "input x: f32[batch, 11]\n"
           "input label: i32[batch]\n"
           "logits = linear(x, out=7)\n"
           "loss = cross_entropy(logits, label%s)\n",
           attrs);
  return buf;
}

TEST(cross_entropy_variants) {
  static const char *const attrs[] = {"", ", smoothing=0.1", ", reduction=sum",
                                      ", smoothing=0.3, reduction=sum",
                                      ", smoothing=1.0"};
  char buf[512];
  for (size_t i = 0; i < ARRAY_LEN(attrs); i++) {
    ce_model(buf, sizeof buf, attrs[i]);
    check_model(attrs[i], buf, 3, KIR_PLAN_TRAIN, i == 1);
    check_model(attrs[i], buf, 5, KIR_PLAN_TRAIN, i == 3);
    check_model(attrs[i], buf, 5, KIR_PLAN_EVAL, false);
  }
}

/* mse of a prediction and a target that is itself computed: both get
 * gradients (wrt 0 and wrt 1), with mean and sum reductions. */
TEST(mse_variants) {
  static const char *const red[] = {"mean", "sum"};
  char buf[512];
  for (size_t i = 0; i < ARRAY_LEN(red); i++) {
    snprintf(buf, sizeof buf,
             "model m\n"
             "input x: f32[batch, 3, 5]\n"
             "p = linear(x, out=7)\n"
             "t = linear(x, out=7)\n"
             "loss = mse(p, t, reduction=%s)\n",
             red[i]);
    check_model(red[i], buf, 3, KIR_PLAN_TRAIN, i == 0);
    check_model(red[i], buf, 5, KIR_PLAN_EVAL, false);
  }
}

/* A linear layer with zero weights passes its bias through: the logits
 * are the bias for every row. */
typedef struct ce_fixture {
  kiln_model *m;
  arena a;
  kir_plan p;
  kir_interp_plan *ip;
  float *bias; /* plan tensors */
  int32_t *labels;
  const ir_node *loss, *dlogits;
} ce_fixture;

static bool ce_open(ce_fixture *f, const char *attrs) {
  char buf[512];
  kiln_error err = {0};
  memset(f, 0, sizeof *f);
  arena_init(&f->a);
  ce_model(buf, sizeof buf, attrs);
  f->m = kiln_model_load_string("t.kiln", buf, strlen(buf), &err);
  if (!f->m || ir_autodiff(&f->m->g, &err) || ir_add_updates(&f->m->g, &err) ||
      lower_plan(&f->m->g, 3, KIR_PLAN_TRAIN, &f->a, &f->p, &err)) {
    fprintf(stderr, "%s\n", err.message);
    return false;
  }
  ir_graph *g = &f->m->g;
  f->ip = kir_interp_plan_new(&f->p);
  const ir_node *lin = ir_graph_find(g, "logits");
  f->bias = kir_interp_plan_tensor(
      f->ip, kir_plan_param_tensor(&f->p, &lin->params[1]));
  f->labels = kir_interp_plan_tensor(
      f->ip, f->p.node_tensor[ir_graph_find(g, "label")->id]);
  f->loss = g->loss;
  for (int i = 0; i < g->n_nodes; i++)
    if (g->nodes[i]->op == IR_OP_GRAD && g->nodes[i]->fwd == g->loss)
      f->dlogits = g->nodes[i];
  return f->dlogits != NULL;
}

static void ce_close(ce_fixture *f) {
  if (f->ip)
    kir_interp_plan_free(f->ip);
  arena_free(&f->a);
  kiln_model_free(f->m);
}

static float ce_run(ce_fixture *f) {
  kir_scalars sc = {.seed = 1};
  kiln_error err = {0};
  CHECK(kir_interp_plan_run(f->ip, 0, f->p.bwd_end, &sc, &err) == KILN_OK);
  return *(float *)kir_interp_plan_tensor(f->ip, f->p.node_tensor[f->loss->id]);
}

/* Logits (0, ln 2, 0, ..., 0) with K = 7: sum exp = 8, so the row loss of
 * label 1 is ln 8 - ln 2 = ln 4 and of label 0 is ln 8; with smoothing
 * 0.5 a row adds 0.5 (ln 8 - ln 2 / 7) instead of half its nll. */
TEST(cross_entropy_by_hand) {
  ce_fixture f;
  if (!ce_open(&f, ", smoothing=0.5")) {
    CHECK(!"could not lower");
    ce_close(&f);
    return;
  }
  f.bias[1] = (float)log(2.0);
  f.labels[0] = 1;
  f.labels[1] = 0;
  f.labels[2] = 1;
  double l8 = log(8.0), l2 = log(2.0);
  double rows =
      0.5 * (l8 - l2) + 0.5 * l8 + 0.5 * (l8 - l2) + 3 * 0.5 * (l8 - l2 / 7);
  CHECK_NEAR(ce_run(&f), rows / 3, 1e-6);
  /* dlogits of row 1 (label 0): (softmax - (0.5 onehot + 0.5/7)) / 3 */
  const float *d = kir_interp_plan_tensor(f.ip, f.p.node_tensor[f.dlogits->id]);
  CHECK_NEAR(d[7 + 0], (1.0 / 8 - 0.5 - 0.5 / 7) / 3, 1e-6);
  CHECK_NEAR(d[7 + 1], (2.0 / 8 - 0.5 / 7) / 3, 1e-6);
  CHECK_NEAR(d[7 + 6], (1.0 / 8 - 0.5 / 7) / 3, 1e-6);

  /* a label out of range: the loss is NaN and nothing reads outside the
   * logits (the interpreter checks every access) */
  f.labels[2] = 7;
  CHECK(isnan(ce_run(&f)));
  f.labels[2] = -1;
  CHECK(isnan(ce_run(&f)));
  ce_close(&f);
}

/* Logits of 1000 and 0: exp(1000) overflows f32, the shifted form does
 * not. Row loss of label 0 is log(1 + 6 e^-1000) = 0, of label 1 is 1000. */
TEST(cross_entropy_large_logits) {
  ce_fixture f;
  if (!ce_open(&f, ", reduction=sum")) {
    CHECK(!"could not lower");
    ce_close(&f);
    return;
  }
  f.bias[0] = 1000.0f;
  f.labels[0] = 0;
  f.labels[1] = 0;
  f.labels[2] = 1;
  CHECK_NEAR(ce_run(&f), 1000.0, 1e-3);
  const float *d = kir_interp_plan_tensor(f.ip, f.p.node_tensor[f.dlogits->id]);
  CHECK_NEAR(d[0], 0.0, 1e-6);       /* softmax 1 - target 1 */
  CHECK_NEAR(d[14 + 1], -1.0, 1e-6); /* softmax 0 - target 1 */
  CHECK_NEAR(d[14 + 0], 1.0, 1e-6);
  ce_close(&f);
}

int main(void) {
  RUN(cross_entropy_variants);
  RUN(mse_variants);
  RUN(cross_entropy_by_hand);
  RUN(cross_entropy_large_logits);
  return TEST_SUMMARY();
}
