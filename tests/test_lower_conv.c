/* test_lower_conv.c — conv2d lowered as implicit GEMMs
 * (passes/lower_conv.c): forward, backward data, filter and bias.
 *
 * Numbers: each model is lowered, run by the kernel IR interpreter and
 * compared node by node with the reference executor (plan_check.h; the
 * reference's conv backward is itself checked by finite differences), on
 * odd sizes with stride, padding, dilation and groups, so that every
 * window edge and every ragged tile is exercised. Structure: one kernel
 * per node, with the grid the tiling rule of lower_gemm.h gives, worked
 * out by hand below. */
#include "frontend/load.h"
#include "passes/lower.h"
#include "support/plan_check.h"
#include "test.h"

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

/* The brief's case: 3 -> 5 channels, 3x3, stride 2, padding 1, 9x11. */
TEST(conv_stride_pad) {
  const char *m = "model t\n"
                  "input x: f32[batch, 3, 9, 11]\n"
                  "input t: f32[batch, 5, 5, 6]\n"
                  "c1 = conv2d(x, out=5, kernel=3, stride=2, padding=1)\n"
                  "loss = mse(c1, t)\n";
  check_model(m, KIR_PLAN_TRAIN, 3);
  check_model(m, KIR_PLAN_EVAL, 3);
}

/* A 1x1 convolution, a grouped one with dilation, unequal strides and
 * padding wider than the dilated window's reach, and a depthwise one
 * without bias: the input gradient of every layer but the first runs. */
TEST(conv_groups_dilation) {
  check_model(
      "model t\n"
      "input x: f32[batch, 6, 9, 11]\n"
      "input t: f32[batch, 9, 4, 6]\n"
      "c0 = conv2d(x, out=6, kernel=1)\n"
      "c1 = conv2d(c0, out=9, kernel=(3, 2), stride=(2, 1), padding=(1, 2), "
      "dilation=(2, 3), groups=3)\n"
      "a = tanh(c1)\n"
      "c2 = conv2d(a, out=9, kernel=3, stride=(1, 2), padding=1, groups=9, "
      "bias=false)\n"
      "loss = mse(c2, t)\n",
      KIR_PLAN_TRAIN, 3);
}

/* Stride 3 with a 2x2 kernel skips input pixels: their gradient (of h)
 * is 0. */
TEST(conv_stride_gaps) {
  check_model("model t\n"
              "input x: f32[batch, 2, 11, 13]\n"
              "input t: f32[batch, 3, 4, 4]\n"
              "h = conv2d(x, out=2, kernel=1)\n"
              "c = conv2d(h, out=3, kernel=2, stride=3)\n"
              "loss = mse(c, t)\n",
              KIR_PLAN_TRAIN, 5);
}

/* A small classifier: conv, relu, pool, linear, cross_entropy. */
TEST(conv_classifier) {
  check_model("model t\n"
              "input x: f32[batch, 1, 9, 9]\n"
              "input label: i32[batch]\n"
              "c1 = conv2d(x, out=7, kernel=3, padding=1)\n"
              "a1 = relu(c1)\n"
              "p1 = avgpool(a1, kernel=2)\n"
              "c2 = conv2d(p1, out=5, kernel=3)\n"
              "f = flatten(c2)\n"
              "fc = linear(f, out=3)\n"
              "loss = cross_entropy(fc, label)\n",
              KIR_PLAN_TRAIN, 3);
}

/* ---- structure ---- */

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
static void check_launch(const kir_plan *p, const ir_graph *g, const char *name,
                         int count, int which, int64_t blocks, int threads) {
  const ir_node *n = ir_graph_find(g, name);
  int seen = 0;
  for (int i = 0; i < p->n_launches; i++) {
    const kir_launch *l = &p->launches[i];
    if (l->node != n)
      continue;
    if (seen++ != which)
      continue;
    CHECK_EQ_INT(grid_blocks(l->k), blocks);
    CHECK_EQ_INT(l->k->block_threads, threads);
  }
  CHECK_EQ_INT(seen, count);
}

/* x [3, 3, 17, 19], 37 filters 3x3, padding 1: y [3, 37, 17, 19]. The
 * pixels of the forward and data GEMMs are tiled in 2-D, whole rows of 19
 * up to 64 columns: tiles of 3 rows (57 pixels), ceil(17/3) = 6 per image.
 *   forward: j = 3 images, M = 37 (2 parts: TM 19), 6 pixel tiles: 36
 *            blocks
 *   data:    j = 3, M = 3 channels (TM 3), 6 tiles: 18 blocks, fewer
 *            than 32, and K = 37*9 = 333 (11 chunks of 32): split in 2 over
 *            K (36 blocks), then 3*3*323 = 2907 partial pairs summed in
 *            tiles of 64 (46 blocks, one thread each)
 *   filter:  j = 1 group, M = 37 (TM 19: 2), N = 3*3*3 = 27 (TN 32), K =
 *            3*323 = 969 (31 chunks): ceil(32/2) = 16 splits wanted, at
 *            most 31/4 = 7 (4 chunks each at least): 7 x 2 blocks; sums of
 *            37*27 = 999 in tiles of 64 (16 blocks)
 *   bias:    one block per output channel, one thread. */
TEST(conv_structure) {
  const char *text = "model t\n"
                     "input x: f32[batch, 3, 17, 19]\n"
                     "input t: f32[batch, 37, 17, 19]\n"
                     "h = conv2d(x, out=3, kernel=1)\n"
                     "c = conv2d(h, out=37, kernel=3, padding=1)\n"
                     "loss = mse(c, t)\n";
  kiln_error err = {0};
  kiln_model *m = kiln_model_load_string("t", text, strlen(text), &err);
  CHECK(m != NULL);
  if (!m)
    return;
  arena a;
  arena_init(&a);
  kir_plan p;
  CHECK_EQ_INT(ir_autodiff(&m->g, &err), KILN_OK);
  kiln_status st = lower_plan(&m->g, 3, KIR_PLAN_TRAIN, &a, &p, &err);
  CHECK_EQ_INT(st, KILN_OK);
  if (!st) {
    check_launch(&p, &m->g, "c", 1, 0, 3 * 2 * 6, 19);
    check_launch(&p, &m->g, "grad/c/h", 2, 0, 2 * 3 * 1 * 6, 3);
    check_launch(&p, &m->g, "grad/c/h", 2, 1, 46, 1);
    check_launch(&p, &m->g, "grad/c/weight", 2, 0, 7 * 1 * 2 * 1, 19);
    check_launch(&p, &m->g, "grad/c/weight", 2, 1, 16, 1);
    check_launch(&p, &m->g, "grad/c/bias", 1, 0, 37, 1);
  }
  arena_free(&a);
  kiln_model_free(m);
}

int main(void) {
  RUN(conv_stride_pad);
  RUN(conv_groups_dilation);
  RUN(conv_stride_gaps);
  RUN(conv_classifier);
  RUN(conv_structure);
  return TEST_SUMMARY();
}
