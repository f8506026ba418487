/* test_lower_fastpaths.c — the CPU fast paths of lowering, each against
 * the reference executor through the plan-check harness
 * (tests/support/plan_check.h), on the kernel IR interpreter and on the
 * compiled CPU plan, with odd sizes:
 *
 *  - maxpool whose windows tile the input exactly (lower_pool.c's one-pass
 *    backward), with ties (relu zeros) and without, and a check that the
 *    backward kernel really is the one-pass one (a grid over windows);
 *  - batchnorm in eval mode (lower_norm.c's per-row frame) and in train
 *    mode with planes that are not a multiple of the 16-element runs;
 *  - convolutions whose 2-D column tiles are padded to whole vectors
 *    (7x7 and 10x10 outputs: 49 and 60 columns), stride 1 and 2. */
#include "test.h"

#include "frontend/load.h"
#include "passes/lower.h"
#include "support/plan_check.h"

#include <string.h>

static const pc_executor *const executors[] = {&pc_interp_executor,
                                               &pc_cpu_executor};

static void check_model(const char *what, const char *text, int64_t batch,
                        kir_plan_mode mode) {
  for (size_t e = 0; e < ARRAY_LEN(executors); e++) {
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

/* 3x3 and 1x5 windows tiling 9x15 and 3x5 planes exactly; relu makes
 * ties (windows of zeros, where the first maximum takes the whole
 * gradient). */
static const char *pool_text = "model tiled\n"
                               "input x: f32[batch, 5, 9, 15]\n"
                               "input y: f32[batch, 5, 3, 1]\n"
                               "s = prelu(x)\n"
                               "r = relu(s)\n"
                               "mp = maxpool(r, kernel=3)\n"
                               "mq = maxpool(s, kernel=3)\n"
                               "t = add(mp, mq)\n"
                               "mr = maxpool(t, kernel=(1, 5))\n"
                               "loss = mse(mr, y)\n";

TEST(maxpool_tiled_backward) {
  check_model("tiled", pool_text, 3, KIR_PLAN_TRAIN);
}

/* The backward of an exactly tiled maxpool is one kernel over the
 * windows (planes x output rows blocks), not over the input rows. */
TEST(maxpool_tiled_structure) {
  kiln_error err = {0};
  kiln_model *m =
      kiln_model_load_string("tiled", pool_text, strlen(pool_text), &err);
  CHECK(m != NULL);
  if (!m)
    return;
  ir_graph *g = &m->g;
  if (ir_autodiff(g, &err) || ir_add_updates(g, &err)) {
    fprintf(stderr, "%s\n", err.message);
    CHECK(!"autodiff");
  }
  arena a;
  arena_init(&a);
  kir_plan p;
  CHECK(lower_plan(g, 3, KIR_PLAN_TRAIN, &a, &p, &err) == KILN_OK);
  int found = 0;
  for (int l = 0; l < p.n_launches; l++) {
    const kir_launch *ln = &p.launches[l];
    if (strncmp(ln->k->name, "maxpool_bwd_grad_mp", 19) != 0)
      continue;
    found++;
    const kir_stmt *s = ln->k->body;
    int64_t blocks = 1;
    while (s->n > 0 && s->body[0]->kind == KIR_S_LOOP &&
           s->body[0]->loop_kind == KIR_LOOP_GRID) {
      CHECK(s->body[0]->extent->op == KIR_CONST);
      blocks *= s->body[0]->extent->i;
      s = s->body[0]->then_;
    }
    CHECK_EQ_INT(blocks, 3 * 5 * 3); /* images x channels x output rows */
  }
  CHECK_EQ_INT(found, 1);
  arena_free(&a);
  kiln_model_free(m);
}

/* Planes of 5x4 = 20 elements: runs with a masked tail. */
static const char *norm_text = "model bn\n"
                               "input x: f32[batch, 3, 7, 9]\n"
                               "input y: f32[batch, 3, 5, 4]\n"
                               "c = conv2d(x, out=3, kernel=3, stride=(1, 2))\n"
                               "b = batchnorm(c)\n"
                               "r = relu(b)\n"
                               "loss = mse(r, y)\n";

TEST(batchnorm_rows_train) {
  check_model("bn", norm_text, 5, KIR_PLAN_TRAIN);
}

TEST(batchnorm_rows_eval) {
  check_model("bn", norm_text, 5, KIR_PLAN_EVAL);
}

/* Output planes of 7x10 (60 columns a tile, padded to 64) and 7x7 (49,
 * padded to 56), and a stride-2 convolution's data gradient. */
TEST(conv_padded_column_tiles) {
  check_model("cols",
              "model cols\n"
              "input x: f32[batch, 3, 11, 13]\n"
              "input y: f32[batch, 5, 4, 4]\n"
              "c1 = conv2d(x, out=7, kernel=(5, 4))\n"
              "a1 = relu(c1)\n"
              "c2 = conv2d(a1, out=5, kernel=(1, 4), bias=false)\n"
              "c3 = conv2d(c2, out=5, kernel=3, stride=2, padding=1)\n"
              "loss = mse(c3, y)\n",
              3, KIR_PLAN_TRAIN);
}

int main(void) {
  RUN(maxpool_tiled_backward);
  RUN(maxpool_tiled_structure);
  RUN(batchnorm_rows_train);
  RUN(batchnorm_rows_eval);
  RUN(conv_padded_column_tiles);
  return TEST_SUMMARY();
}
