/* test_lower_gemm.c — lowering of linear and matmul (passes/lower_gemm.c)
 * and the driver's bookkeeping (passes/lower.c).
 *
 * Numbers: each model is lowered, run by the kernel IR interpreter and
 * compared node by node with the reference executor (plan_check.h),
 * forward values and every gradient, at odd sizes so that every tile has a
 * ragged edge. Structure: kernel counts per node and the GEMM grids,
 * against tile counts worked out by hand from the tiling rule of
 * lower_gemm.h: M and N cut in the fewest equal parts of at most 32 rows
 * (TM) and 64 columns, the columns rounded up to whole vectors of 8 (TN). */
#include "frontend/load.h"
#include "passes/lower.h"
#include "support/plan_check.h"
#include "test.h"

#include <stdlib.h>

/* Lowers and checks `text` in `mode`; prints the harness's message on a
 * mismatch. */
static void check_model(const char *text, kir_plan_mode mode, int64_t batch) {
  pc_opts o = {.mode = mode, .batch = batch};
  pc_report rep = {0};
  kiln_error err = {0};
  kiln_status st = pc_check_string("t", text, &o, &rep, &err);
  if (st)
    fprintf(stderr, "%s\n", err.message);
  CHECK_EQ_INT(st, KILN_OK);
  CHECK(rep.compared > 0);
}

/* ---- structure helpers ---- */

typedef struct lowered {
  kiln_model *m;
  arena a;
  kir_plan p;
} lowered;

static bool lower_text(lowered *l, const char *text, int64_t batch) {
  kiln_error err = {0};
  l->m = kiln_model_load_string("t", text, strlen(text), &err);
  if (!l->m) {
    fprintf(stderr, "%s\n", err.message);
    return false;
  }
  arena_init(&l->a);
  if (ir_autodiff(&l->m->g, &err) ||
      lower_plan(&l->m->g, batch, KIR_PLAN_TRAIN, &l->a, &l->p, &err)) {
    fprintf(stderr, "%s\n", err.message);
    return false;
  }
  return true;
}

static void lowered_free(lowered *l) {
  arena_free(&l->a);
  kiln_model_free(l->m);
}

/* The launches computing node `name`; *first is the first one. */
static int launches_of(const lowered *l, const char *name,
                       const kir_launch **first) {
  const ir_node *n = ir_graph_find(&l->m->g, name);
  KILN_ASSERT(n);
  int count = 0;
  *first = NULL;
  for (int i = 0; i < l->p.n_launches; i++)
    if (l->p.launches[i].node == n) {
      if (!count)
        *first = &l->p.launches[i];
      count++;
    }
  return count;
}

/* Blocks of a kernel: the product of its outer chain of GRID loops. */
static int64_t grid_blocks(const kir_kernel *k) {
  int64_t blocks = 1;
  const kir_stmt *s = k->body;
  while (s->n > 0 && s->body[0]->kind == KIR_S_LOOP &&
         s->body[0]->loop_kind == KIR_LOOP_GRID) {
    const kir_expr *e = s->body[0]->extent;
    if (e->op != KIR_CONST)
      return -1;
    blocks *= e->i;
    s = s->body[0]->then_;
  }
  return blocks;
}

/* Launch `which` of the `count` launches of node `name`: its grid and
 * threads per block. */
static void check_launch(const lowered *l, const char *name, int count,
                         int which, int64_t blocks, int threads) {
  const kir_launch *k;
  CHECK_EQ_INT(launches_of(l, name, &k), count);
  if (!k)
    return;
  k += which; /* a node's launches are consecutive */
  CHECK(k->node == ir_graph_find(&l->m->g, name));
  CHECK_EQ_INT(grid_blocks(k->k), blocks);
  CHECK_EQ_INT(k->k->block_threads, threads);
}

static void check_kernel(const lowered *l, const char *name, int64_t blocks,
                         int threads) {
  check_launch(l, name, 1, 0, blocks, threads);
}

/* ---- linear ---- */

TEST(linear_small) {
  const char *m = "model t\n"
                  "input x: f32[batch, 7]\n"
                  "input t: f32[batch, 5]\n"
                  "fc = linear(x, out=5)\n"
                  "loss = mse(fc, t)\n";
  check_model(m, KIR_PLAN_TRAIN, 3);
  check_model(m, KIR_PLAN_EVAL, 3);
}

/* Two layers over a 3-D input (rows = batch*3), so the first layer's input
 * gradient runs too; 39 rows, 45, 39 and 67 columns take two tiles. */
TEST(linear_chain) {
  const char *m = "model t\n"
                  "input x: f32[batch, 3, 45]\n"
                  "input t: f32[batch, 3, 67]\n"
                  "fc1 = linear(x, out=39)\n"
                  "a1 = tanh(fc1)\n"
                  "fc2 = linear(a1, out=67, bias=false)\n"
                  "loss = mse(fc2, t)\n";
  check_model(m, KIR_PLAN_TRAIN, 13);
}

TEST(linear_classifier) {
  check_model("model t\n"
              "input x: f32[batch, 1, 5, 7]\n"
              "input label: i32[batch]\n"
              "f = flatten(x)\n"
              "fc1 = linear(f, out=33)\n"
              "a = relu(fc1)\n"
              "fc2 = linear(a, out=9)\n"
              "loss = cross_entropy(fc2, label)\n",
              KIR_PLAN_TRAIN, 37);
}

/* Batch 37 x 3 = 111 rows (4 parts: TM 28), in 45 (TN 48: 1 tile), out
 * 67 (2 parts of 34: TN 40). fc: 4 x 2 tiles of 28 threads; dW is out x
 * in = 67 x 45: 3 parts of 23 rows x 1 tile; dx rows x in: 4 x 1.
 * With more than one row tile the forward first transposes W (67 x 45 in
 * tiles of 32 x 32: 3 x 2 blocks). */
TEST(linear_structure) {
  lowered l;
  if (!lower_text(&l,
                  "model t\n"
                  "input x: f32[batch, 3, 45]\n"
                  "input t: f32[batch, 3, 67]\n"
                  "h = linear(x, out=45)\n"
                  "fc = linear(h, out=67)\n"
                  "loss = mse(fc, t)\n",
                  37)) {
    CHECK(!"lowered");
    return;
  }
  check_launch(&l, "fc", 2, 0, 3 * 2, 32);
  check_launch(&l, "fc", 2, 1, 4 * 2, 28);
  CHECK_STR_CONTAINS(l.p.launches[0].k->name, "transpose_weight_h");
  check_kernel(&l, "grad/fc/weight", 3 * 1, 23);
  check_kernel(&l, "grad/fc/h", 4 * 1, 28);
  check_kernel(&l, "grad/fc/bias", 2, 1); /* 67 sums in tiles of 64 */
  const ir_node *fc = ir_graph_find(&l.m->g, "fc");
  int t = l.p.node_tensor[fc->id];
  CHECK(t >= 0 && l.p.tensors[t].count == 37 * 3 * 67);
  CHECK(l.p.fwd_end > 0 && l.p.fwd_end < l.p.bwd_end &&
        l.p.bwd_end == l.p.n_launches);
  for (int i = 0; i < l.p.n_launches; i++) /* forward first */
    CHECK((l.p.launches[i].node->op != IR_OP_GRAD) == (i < l.p.fwd_end));
  lowered_free(&l);
}

/* rows = 37*9 = 333: dW (11 x 13, one tile of 11 x 16) reduces over 11
 * chunks of 32 rows, so it is split in two over K (split-K: 2 blocks, then
 * the 143 pairs of partial sums added in tiles of 64: 3 blocks); dx has
 * 333 rows in 11 parts of 31. */
TEST(linear_split_k) {
  const char *m = "model t\n"
                  "input x: f32[batch, 9, 13]\n"
                  "input t: f32[batch, 9, 11]\n"
                  "h = linear(x, out=13)\n"
                  "fc = linear(h, out=11, bias=false)\n"
                  "loss = mse(fc, t)\n";
  check_model(m, KIR_PLAN_TRAIN, 37);
  lowered l;
  if (!lower_text(&l, m, 37)) {
    CHECK(!"lowered");
    return;
  }
  check_launch(&l, "grad/fc/weight", 2, 0, 2, 11);
  check_launch(&l, "grad/fc/weight", 2, 1, 3, 1);
  check_kernel(&l, "grad/fc/h", 11, 31);
  lowered_free(&l);
}

/* Sizes of 1 everywhere (K below the unroll of 4, 1-pixel images, a
 * matmul of a value with itself, batch 1 and 5). */
TEST(sizes_one) {
  const char *m = "model t\n"
                  "input x: f32[batch, 1, 1, 1]\n"
                  "input t: f32[batch, 1]\n"
                  "c = conv2d(x, out=1, kernel=1)\n"
                  "c2 = conv2d(c, out=3, kernel=3, padding=1)\n"
                  "f = flatten(c2)\n"
                  "h = linear(f, out=1)\n"
                  "r = reshape(h, shape=[batch, 1, 1])\n"
                  "p = matmul(r, r)\n"
                  "q = reshape(p, shape=[batch, 1])\n"
                  "loss = mse(q, t)\n";
  check_model(m, KIR_PLAN_TRAIN, 1);
  check_model(m, KIR_PLAN_TRAIN, 5);
}

/* ---- the driver ---- */

/* Tensors and sections of a whole training plan: a reshape between two
 * layers (its tensor and its gradient's are aliases, with no kernel),
 * optimizer state owned by update nodes (parameters with tensors; the
 * update nodes themselves have none), the order forward, backward
 * (grads, grad_norm), updates; and the evaluation plan of the same
 * graph, which lowers the forward nodes and the loss only. */
TEST(driver_plan) {
  const char *text = "model t\n"
                     "input x: f32[batch, 6]\n"
                     "input t: f32[batch, 5]\n"
                     "h = linear(x, out=15)\n"
                     "r = reshape(h, shape=[batch, 3, 5])\n"
                     "a = tanh(r)\n"
                     "f = flatten(a)\n"
                     "fc = linear(f, out=5)\n"
                     "loss = mse(fc, t)\n"
                     "train {\n"
                     "  optimizer = sgd(lr=0.1, momentum=0.9)\n"
                     "  clip_grad_norm = 1.0\n"
                     "}\n";
  kiln_error err = {0};
  kiln_model *m = kiln_model_load_string("t", text, strlen(text), &err);
  CHECK(m != NULL);
  if (!m)
    return;
  ir_graph *g = &m->g;
  CHECK_EQ_INT(ir_autodiff(g, &err), KILN_OK);
  CHECK_EQ_INT(ir_add_updates(g, &err), KILN_OK);
  arena a;
  arena_init(&a);
  kir_plan p, e;
  CHECK_EQ_INT(lower_plan(g, 7, KIR_PLAN_TRAIN, &a, &p, &err), KILN_OK);
  CHECK_EQ_INT(lower_plan(g, 7, KIR_PLAN_EVAL, &a, &e, &err), KILN_OK);
  const ir_node *h = ir_graph_find(g, "h"), *r = ir_graph_find(g, "r"),
                *f = ir_graph_find(g, "f"), *gr = ir_graph_find(g, "grad/r/h");
  CHECK(h && r && f && gr);
  int th = p.node_tensor[h->id];
  CHECK_EQ_INT(p.tensors[p.node_tensor[r->id]].alias, th);
  CHECK_EQ_INT(p.tensors[p.node_tensor[gr->id]].alias,
               p.node_tensor[gr->inputs[0]->id]);
  CHECK(p.tensors[p.node_tensor[f->id]].alias >= 0);
  CHECK_EQ_INT(p.tensors[th].alias, -1);
  CHECK_EQ_INT(p.tensors[th].count, 7 * 15);
  int sec = 0;
  for (int i = 0; i < p.n_launches; i++) {
    const ir_node *n = p.launches[i].node;
    CHECK(n != r && n != f && n != gr); /* views run nothing */
    int want = i < p.fwd_end ? 0 : i < p.bwd_end ? 1 : 2;
    int is =
        n->op == IR_OP_UPDATE ? 2
        : n->op == IR_OP_GRAD || n->op == IR_OP_GRAD_NORM || n->id > g->loss->id
            ? 1
            : 0;
    CHECK_EQ_INT(is, want);
    sec = is;
  }
  CHECK_EQ_INT(sec, 2);
  CHECK(p.fwd_end > 0 && p.fwd_end < p.bwd_end && p.bwd_end < p.n_launches);
  /* every parameter, optimizer state included, has its own tensor */
  int params = 0;
  for (int i = 0; i < g->n_nodes; i++) {
    const ir_node *n = g->nodes[i];
    if (n->op == IR_OP_UPDATE)
      CHECK_EQ_INT(p.node_tensor[n->id], -1);
    for (int k = 0; k < n->n_params; k++, params++) {
      int t = kir_plan_param_tensor(&p, &n->params[k]);
      CHECK(t >= 0 && p.tensors[t].role == KIR_T_PARAM &&
            p.tensors[t].param == &n->params[k]);
      CHECK_EQ_INT(kir_plan_param_tensor(&e, &n->params[k]) >= 0, 1);
    }
  }
  CHECK_EQ_INT(params, 2 * 2 + 2 * 2); /* weights and biases, momenta */
  /* evaluation: the forward and the loss, no gradient tensors */
  CHECK(e.n_launches > 0 && e.fwd_end == e.n_launches &&
        e.bwd_end == e.n_launches);
  for (int i = 0; i < e.n_launches; i++)
    CHECK(e.launches[i].node->id <= g->loss->id);
  CHECK_EQ_INT(e.node_tensor[gr->id], -1);
  arena_free(&a);
  kiln_model_free(m);
}

/* ---- matmul ---- */

TEST(matmul_batched) {
  check_model("model t\n"
              "input x: f32[batch, 3, 5, 7]\n"
              "input t: f32[batch, 3, 5, 5]\n"
              "fc = linear(x, out=7)\n"
              "w = linear(x, out=7)\n"
              "wt = reshape(w, shape=[batch, 3, 7, 5])\n"
              "h = matmul(fc, wt)\n"
              "loss = mse(h, t)\n",
              KIR_PLAN_TRAIN, 3);
}

/* b [7, 5] is shared by every (batch, 3) entry: its gradient sums them. */
TEST(matmul_broadcast_b) {
  check_model("model t\n"
              "input x: f32[batch, 3, 5, 7]\n"
              "input e: f32[7, 7]\n"
              "input t: f32[batch, 3, 5, 5]\n"
              "fc = linear(x, out=7)\n"
              "wm = linear(e, out=5)\n"
              "h = matmul(fc, wm)\n"
              "loss = mse(h, t)\n",
              KIR_PLAN_TRAIN, 5);
}

/* a [4, 1, ..] and b [batch, 1, 3, ..] broadcast to [batch, 4, 3, ..]:
 * each operand's gradient sums over the dimensions it lacks. */
TEST(matmul_broadcast_both) {
  const char *m = "model t\n"
                  "input e: f32[4, 1, 5, 7]\n"
                  "input x: f32[batch, 1, 3, 7, 6]\n"
                  "input t: f32[batch, 4, 3, 5, 5]\n"
                  "am = linear(e, out=7)\n"
                  "bm = linear(x, out=5)\n"
                  "h = matmul(am, bm)\n"
                  "loss = mse(h, t)\n";
  check_model(m, KIR_PLAN_TRAIN, 3);
  check_model(m, KIR_PLAN_EVAL, 3);
}

/* h [batch, 3, 5, 5]: 3*3 entries, one 5 x 8 tile each. The gradient of
 * the shared wm [7, 5] is one tile (7 x 8) reducing over F = 9 entries;
 * that of fc [batch, 3, 5, 7] 9 tiles of 5 x 8. */
TEST(matmul_structure) {
  lowered l;
  if (!lower_text(&l,
                  "model t\n"
                  "input x: f32[batch, 3, 5, 7]\n"
                  "input e: f32[7, 7]\n"
                  "input t: f32[batch, 3, 5, 5]\n"
                  "fc = linear(x, out=7)\n"
                  "wm = linear(e, out=5)\n"
                  "h = matmul(fc, wm)\n"
                  "loss = mse(h, t)\n",
                  3)) {
    CHECK(!"lowered");
    return;
  }
  check_kernel(&l, "h", 9, 5);
  check_kernel(&l, "grad/h/wm", 1, 7);
  check_kernel(&l, "grad/h/fc", 9, 5);
  lowered_free(&l);
}

int main(void) {
  RUN(linear_small);
  RUN(linear_chain);
  RUN(linear_classifier);
  RUN(linear_structure);
  RUN(linear_split_k);
  RUN(sizes_one);
  RUN(driver_plan);
  RUN(matmul_batched);
  RUN(matmul_broadcast_b);
  RUN(matmul_broadcast_both);
  RUN(matmul_structure);
  return TEST_SUMMARY();
}
