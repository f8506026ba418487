/* test_lower_pool.c — lowering of maxpool, avgpool and global_avgpool
 * (passes/lower_pool.c), forward and backward, against the reference
 * executor through the plan-check harness (tests/support/plan_check.h):
 * every node's value and gradient of small models with odd sizes (batch
 * 3 and 5, 5 channels, 7x9 images), overlapping and padded windows, and
 * ties (maxpool over relu outputs: windows of zeros, where the first
 * maximum in row-major order must take the whole gradient). Plus the
 * kernel structure (one kernel per pool node and per gradient, no
 * atomics) and hand-computed values on a 3x3 input. */
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

/* Runs the harness and fails with its message. */
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

/* Overlapping windows with padding (maxpool 3/2/1), a stride-1 padded
 * average, then global_avgpool: every backward sums several windows. */
static const char *const overlap_model =
    "model pools\n"
    "input x: f32[batch, 3, 7, 9]\n"
    "input label: i32[batch]\n"
    "c = conv2d(x, out=5, kernel=3, padding=1)\n"
    "mp = maxpool(c, kernel=3, stride=2, padding=1)\n"
    "ap = avgpool(mp, kernel=2, stride=1, padding=1)\n"
    "g = global_avgpool(ap)\n"
    "logits = linear(g, out=5)\n"
    "loss = cross_entropy(logits, label)\n";

TEST(pool_overlapping_padded) {
  check_model("overlap", overlap_model, 3, KIR_PLAN_TRAIN, true);
  check_model("overlap_b5", overlap_model, 5, KIR_PLAN_TRAIN, false);
  check_model("overlap_eval", overlap_model, 3, KIR_PLAN_EVAL, false);
}

/* Default strides (= kernel) that do not divide 7x9 (the last row and
 * column are dropped), a rectangular kernel, and a non-square stride. */
TEST(pool_default_stride_rectangular) {
  check_model("rect",
              "model rect\n"
              "input x: f32[batch, 5, 7, 9]\n"
              "input y: f32[batch, 5, 1, 2]\n"
              "s = prelu(x)\n"
              "mp = maxpool(s, kernel=(2, 3))\n"
              "ap = avgpool(mp, kernel=(3, 1), stride=(1, 2))\n"
              "loss = mse(ap, y)\n",
              3, KIR_PLAN_TRAIN, true);
}

/* Windows with gaps between them (stride 3 > kernel 2) and padded
 * non-overlapping windows: the backward finds an element's only window by
 * division, and elements in no window get a zero gradient. */
TEST(pool_gaps_and_padding) {
  check_model("gaps",
              "model gaps\n"
              "input x: f32[batch, 5, 7, 9]\n"
              "input label: i32[batch]\n"
              "s = prelu(x)\n"
              "mp = maxpool(s, kernel=2, stride=3, padding=1)\n"
              "ap = avgpool(mp, kernel=2, padding=1)\n"
              "f = flatten(ap)\n"
              "logits = linear(f, out=3)\n"
              "loss = cross_entropy(logits, label)\n",
              3, KIR_PLAN_TRAIN, true);
}

/* relu makes about half the inputs exactly 0, so many windows hold tied
 * maxima (all zeros); the reference gives the gradient to the first in
 * row-major order, and so must the recomputed argmax. */
TEST(maxpool_ties) {
  check_model("ties",
              "model ties\n"
              "input x: f32[batch, 3, 7, 9]\n"
              "input label: i32[batch]\n"
              "c = conv2d(x, out=5, kernel=1)\n"
              "r = relu(c)\n"
              "mp = maxpool(r, kernel=3, stride=1, padding=1)\n"
              "f = flatten(mp)\n"
              "logits = linear(f, out=3)\n"
              "loss = cross_entropy(logits, label)\n",
              3, KIR_PLAN_TRAIN, true);
}

static ir_graph *lowered(kiln_model **m, const char *text, arena *a,
                         kir_plan *p) {
  kiln_error err = {0};
  *m = kiln_model_load_string("t.kiln", text, strlen(text), &err);
  if (!*m) {
    fprintf(stderr, "%s\n", err.message);
    return NULL;
  }
  ir_graph *g = &(*m)->g;
  if (ir_autodiff(g, &err) || ir_add_updates(g, &err) ||
      lower_plan(g, 1, KIR_PLAN_TRAIN, a, p, &err)) {
    fprintf(stderr, "%s\n", err.message);
    return NULL;
  }
  return g;
}

static bool kernel_has_atomic(const kir_stmt *s) {
  if (!s)
    return false;
  if (s->kind == KIR_S_ATOMIC_ADD)
    return true;
  for (int i = 0; i < s->n; i++)
    if (kernel_has_atomic(s->body[i]))
      return true;
  return kernel_has_atomic(s->then_) || kernel_has_atomic(s->else_);
}

/* One kernel per pool node and per pool gradient, none with atomics; and
 * on a hand-checkable 3x3 input: maxpool 2x2 stride 1 with a tie. */
TEST(pool_structure_and_values) {
  arena a;
  arena_init(&a);
  kiln_model *m = NULL;
  kir_plan p;
  ir_graph *g = lowered(&m,
                        "model small\n"
                        "input x: f32[batch, 1, 3, 3]\n"
                        "input y: f32[batch, 1, 2, 2]\n"
                        "s = prelu(x)\n"
                        "mp = maxpool(s, kernel=2, stride=1)\n"
                        "loss = mse(mp, y, reduction=sum)\n",
                        &a, &p);
  CHECK(g != NULL);
  if (!g) {
    kiln_model_free(m);
    arena_free(&a);
    return;
  }
  int pool_fwd = 0, pool_bwd = 0;
  for (int i = 0; i < p.n_launches; i++) {
    const ir_node *n = p.launches[i].node;
    const ir_node *f = n->op == IR_OP_GRAD ? n->fwd : n;
    if (f->op != IR_OP_MAXPOOL)
      continue;
    pool_fwd += n->op != IR_OP_GRAD;
    pool_bwd += n->op == IR_OP_GRAD;
    CHECK(!kernel_has_atomic(p.launches[i].k->body));
  }
  CHECK_EQ_INT(pool_fwd, 1);
  CHECK_EQ_INT(pool_bwd, 1);

  /* x = [[1, 5, 2], [5, 0, 3], [4, 4, 4]] (prelu keeps positives); the
   * windows' maxima: 5 (the 5 at (0,1) wins the tie with (1,0)), 5 at
   * (0,1), 5 at (1,0), and 4 at (2,1) (tied with (2,2)). With y = 0 and
   * sum reduction dloss/dmp = 2 mp, so (0,1) gathers 10 from two
   * windows. */
  kir_interp_plan *ip = kir_interp_plan_new(&p);
  const ir_node *x = ir_graph_find(g, "x"), *y = ir_graph_find(g, "y");
  const ir_node *s = ir_graph_find(g, "s"), *mp = ir_graph_find(g, "mp");
  static const float xv[9] = {1, 5, 2, 5, 0, 3, 4, 4, 4};
  memcpy(kir_interp_plan_tensor(ip, p.node_tensor[x->id]), xv, sizeof xv);
  memset(kir_interp_plan_tensor(ip, p.node_tensor[y->id]), 0,
         4 * sizeof(float));
  float *slope =
      kir_interp_plan_tensor(ip, kir_plan_param_tensor(&p, s->params));
  slope[0] = 0.25f;
  kir_scalars sc = {.seed = 1, .step = 0, .lr = 0.0f};
  kiln_error err = {0};
  CHECK(kir_interp_plan_run(ip, 0, p.bwd_end, &sc, &err) == KILN_OK);
  const float *out = kir_interp_plan_tensor(ip, p.node_tensor[mp->id]);
  CHECK_NEAR(out[0], 5, 0);
  CHECK_NEAR(out[1], 5, 0);
  CHECK_NEAR(out[2], 5, 0);
  CHECK_NEAR(out[3], 4, 0);
  const ir_node *dx = NULL;
  for (int i = 0; i < g->n_nodes; i++)
    if (g->nodes[i]->op == IR_OP_GRAD && g->nodes[i]->fwd == mp)
      dx = g->nodes[i];
  CHECK(dx != NULL);
  if (dx) {
    const float *d = kir_interp_plan_tensor(ip, p.node_tensor[dx->id]);
    static const float want[9] = {0, 20, 0, 10, 0, 0, 0, 8, 0};
    for (int i = 0; i < 9; i++)
      CHECK_NEAR(d[i], want[i], 0);
  }
  kir_interp_plan_free(ip);
  kiln_model_free(m);
  arena_free(&a);
}

int main(void) {
  RUN(pool_overlapping_padded);
  RUN(pool_default_stride_rectangular);
  RUN(pool_gaps_and_padding);
  RUN(maxpool_ties);
  RUN(pool_structure_and_values);
  return TEST_SUMMARY();
}
