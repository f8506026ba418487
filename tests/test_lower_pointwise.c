/* test_lower_pointwise.c — lowering of the pointwise and tensor ops
 * (passes/lower_pointwise.c, lower_act.c, lower_tensor.c).
 *
 * Numbers: one small model per group of ops is lowered and compared node
 * by node with the reference executor (plan_check.h): forward values and
 * every gradient, in the training plan and (forward only) the evaluation
 * plan, at odd batches so the last block of every kernel is partial. Each
 * plan runs twice: in the kernel IR interpreter and compiled for the CPU
 * (LLVM JIT, runtime/cpu). Broadcast operands and shared slopes depend on
 * parameters (prelu of a small input), so the gradients that reduce over
 * broadcast dimensions are checked too, short and split in slices.
 *
 * Dropout is checked exactly: which elements the plan zeroes, forward and
 * backward, against the reference executor and against the mask computed
 * here from support/philox.c, including a p placed 2^-30 above one
 * element's uniform, where comparing in f32 with (float)p would keep an
 * element the reference drops.
 *
 * Structure: kernel names, one launch per node (two for a split sum), one
 * grid x thread nest per kernel (a guard only for a partial block), no
 * atomics anywhere; and every kernel compiles with NVRTC for sm_80. */
#include "codegen/cuda/cuda.h"
#include "frontend/load.h"
#include "passes/lower.h"
#include "runtime/cpu/rt_cpu.h"
#include "runtime/reference/ref_exec.h"
#include "runtime/reference/ref_pointwise.h"
#include "support/kir_interp.h"
#include "support/plan_check.h"
#include "test.h"

#include <stdlib.h>

/* Lowers and checks `text` in `mode` at `batch`, run by the kernel IR
 * interpreter and by the compiled CPU plan; prints the harness's message
 * on a mismatch. */
static void check_model(const char *text, kir_plan_mode mode, int64_t batch) {
  const pc_executor *execs[] = {&pc_interp_executor, &pc_cpu_executor};
  for (size_t e = 0; e < ARRAY_LEN(execs); e++) {
    pc_opts o = {
        .mode = mode, .batch = batch, .seed = 7, .step = 3, .exec = execs[e]};
    pc_report rep = {0};
    kiln_error err = {0};
    kiln_status st = pc_check_string("t", text, &o, &rep, &err);
    if (st)
      fprintf(stderr, "%s (%s): %s\n", execs[e]->name,
              mode == KIR_PLAN_TRAIN ? "train" : "eval", err.message);
    CHECK_EQ_INT(st, KILN_OK);
    CHECK(rep.compared > 0);
  }
}

static void check_both(const char *text, int64_t batch) {
  check_model(text, KIR_PLAN_TRAIN, batch);
  check_model(text, KIR_PLAN_EVAL, batch);
}

/* ---- numbers against the reference ---- */

/* Every activation on a prelu output (learned per-channel slopes), summed
 * so each one's gradient flows; slopes and alphas are negative for two of
 * them so a backward that read y instead of x would be caught. */
static const char *act_model = "model act\n"
                               "input x: f32[batch, 3, 5]\n"
                               "input t: f32[batch, 3, 5]\n"
                               "p = prelu(x)\n"
                               "a = relu(p)\n"
                               "b = leaky_relu(p, slope=-0.3)\n"
                               "c = elu(p, alpha=0.7)\n"
                               "c2 = elu(p, alpha=-0.4)\n"
                               "d = gelu(p)\n"
                               "e = gelu(p, approximate=tanh)\n"
                               "f = sigmoid(p)\n"
                               "g = tanh(p)\n"
                               "l = leaky_relu(p)\n"
                               "s1 = add(a, b)\n"
                               "s2 = add(s1, c)\n"
                               "s3 = add(s2, c2)\n"
                               "s4 = add(s3, d)\n"
                               "s5 = add(s4, e)\n"
                               "s6 = add(s5, f)\n"
                               "s7 = add(s6, g)\n"
                               "s8 = add(s7, l)\n"
                               "loss = mse(s8, t)\n";

TEST(activations) {
  check_both(act_model, 3);
  check_model(act_model, KIR_PLAN_TRAIN, 61); /* 915 elements: 4 blocks */
}

/* Inputs doubled seven times (|x| up to 128): sigmoid's and elu's exp
 * must not overflow, gelu's tails must stay finite. */
TEST(activations_wide_range) {
  check_model("model wide\n"
              "input x: f32[batch, 5, 3]\n"
              "input t: f32[batch, 5, 3]\n"
              "p = prelu(x)\n"
              "k1 = add(p, p)\nk2 = add(k1, k1)\nk3 = add(k2, k2)\n"
              "k4 = add(k3, k3)\nk5 = add(k4, k4)\nk6 = add(k5, k5)\n"
              "k = add(k6, k6)\n"
              "a = sigmoid(k)\n"
              "b = elu(k)\n"
              "c = gelu(k)\n"
              "d = gelu(k, approximate=tanh)\n"
              "s = add(a, b)\n"
              "s2 = add(s, c)\n"
              "s3 = add(s2, d)\n"
              "loss = mse(s3, t)\n",
              KIR_PLAN_TRAIN, 5);
}

/* Shared and per-channel prelu on 2-D and 4-D inputs. */
TEST(prelu) {
  check_both("model pr\n"
             "input x: f32[batch, 7]\n"
             "input t: f32[batch, 7]\n"
             "a = prelu(x)\n"
             "b = prelu(a, shared=true)\n"
             "loss = mse(b, t)\n",
             5);
  check_both("model pr4\n"
             "input y: f32[batch, 3, 5, 3]\n"
             "input u: f32[batch, 3, 5, 3]\n"
             "b = prelu(y, shared=true)\n"
             "c = prelu(b)\n"
             "loss = mse(c, u)\n",
             5);
}

/* Broadcasting: [1, 5], [3, 1] and [batch, 1, 5] against [batch, 3, 5];
 * a scalar-like [1, 1]; [batch, 1, 5] with [3, 1] (both operands
 * broadcast); mul(d, d) (both gradients of one value); and each operand
 * on either side. */
static const char *bcast_model = "model bc\n"
                                 "input x: f32[batch, 3, 5]\n"
                                 "input t: f32[batch, 3, 5]\n"
                                 "input v: f32[1, 5]\n"
                                 "input w: f32[3, 1]\n"
                                 "input z: f32[batch, 1, 5]\n"
                                 "input o: f32[1, 1]\n"
                                 "p = prelu(x, shared=true)\n"
                                 "pv = prelu(v)\n"
                                 "pw = prelu(w)\n"
                                 "pz = prelu(z)\n"
                                 "po = prelu(o)\n"
                                 "a = add(p, pv)\n"
                                 "b = mul(a, pw)\n"
                                 "c = mul(pz, b)\n"
                                 "d = add(c, p)\n"
                                 "e = mul(d, d)\n"
                                 "f = add(pw, e)\n"
                                 "g = mul(po, f)\n"
                                 "h = add(g, po)\n"
                                 "k = add(pz, pw)\n"
                                 "h2 = mul(h, k)\n"
                                 "loss = mse(h2, t)\n";

TEST(broadcast) {
  check_both(bcast_model, 3);
  check_model(bcast_model, KIR_PLAN_TRAIN, 23);
}

/* Operands of lower rank: [1, 7, 1] and [batch, 7, 1] against [batch, 7,
 * 5] (gradients reduce over the batch and the last dimension), and a
 * rank-1 [5] (over everything but the last dimension). */
TEST(broadcast_rank) {
  check_model("model bcr\n"
              "input x: f32[batch, 7, 5]\n"
              "input t: f32[batch, 7, 5]\n"
              "input v: f32[1, 7, 1]\n"
              "input s: f32[batch, 7]\n"
              "input w: f32[1, 5]\n"
              "pw = prelu(w)\n"
              "w1 = reshape(pw, shape=[5])\n"
              "pv = prelu(v)\n"
              "ps = prelu(s)\n"
              "r = reshape(ps, shape=[batch, 7, 1])\n"
              "h = linear(x, out=5)\n"
              "a = mul(h, pv)\n"
              "b = add(r, a)\n"
              "b1 = mul(w1, b)\n"
              "loss = mse(b1, t)\n",
              KIR_PLAN_TRAIN, 9);
}

/* Reductions long enough to split (pw_reduce): at batch 37, per-channel
 * and shared slopes over 37 x 35 and 37 x 105 terms, and a [1, 3, 1]
 * operand summed over the batch and 45 positions — slices of 19 and 10
 * batch entries, the last one short. */
static const char *split_slopes = "model sp1\n"
                                  "input x: f32[batch, 3, 5, 7]\n"
                                  "input t: f32[batch, 3, 5, 7]\n"
                                  "a = prelu(x)\n"
                                  "b = prelu(a, shared=true)\n"
                                  "loss = mse(b, t)\n";
static const char *split_bcast = "model sp2\n"
                                 "input y: f32[batch, 3, 45]\n"
                                 "input v: f32[1, 3, 1]\n"
                                 "input u: f32[batch, 3, 45]\n"
                                 "pv = prelu(v)\n"
                                 "py = prelu(y)\n"
                                 "m = mul(py, pv)\n"
                                 "s = add(m, pv)\n"
                                 "loss = mse(s, u)\n";

TEST(split_reductions) {
  check_model(split_slopes, KIR_PLAN_TRAIN, 37);
  check_model(split_bcast, KIR_PLAN_TRAIN, 37);
}

static const char *rows_model = "model rowsb\n"
                                "input x: f32[batch, 3, 67]\n"
                                "input v: f32[3, 1]\n"
                                "input w: f32[1, 67]\n"
                                "input z: f32[batch, 1, 67]\n"
                                "input t: f32[batch, 3, 67]\n"
                                "p = prelu(x)\n"
                                "pv = prelu(v)\n"
                                "pw = prelu(w)\n"
                                "pz = prelu(z)\n"
                                "a = add(p, pv)\n"
                                "b = mul(pw, a)\n"
                                "c = add(pz, pv)\n"
                                "d = mul(b, c)\n"
                                "loss = mse(d, t)\n";

/* Long rows (>= PW_ROW_MIN) take the row layout: prelu over 81 and 289
 * positions (two blocks per row, the second partial), broadcast operands
 * [3, 1] and [1, 67] and [batch, 1, 67] against [batch, 3, 67]. */
TEST(row_layout) {
  check_both("model rows\n"
             "input x: f32[batch, 3, 9, 9]\n"
             "input t: f32[batch, 3, 9, 9]\n"
             "a = prelu(x)\n"
             "b = prelu(a, shared=true)\n"
             "loss = mse(b, t)\n",
             3);
  check_model("model rows2\n"
              "input x: f32[batch, 3, 17, 17]\n"
              "input t: f32[batch, 3, 17, 17]\n"
              "a = prelu(x)\n"
              "loss = mse(a, t)\n",
              KIR_PLAN_TRAIN, 3);
  check_both(rows_model, 5);
}

/* maxout, softmax along a middle and the last axis, concat of three
 * inputs along axis 1 and of two along the last axis, flatten and reshape
 * (views: the driver aliases them and their gradients, no kernel). */
static const char *tensor_model = "model tens\n"
                                  "input x: f32[batch, 6, 3]\n"
                                  "input y: f32[batch, 5, 3]\n"
                                  "input t: f32[batch, 13, 5]\n"
                                  "p = prelu(x)\n"
                                  "q = prelu(y)\n"
                                  "m = maxout(p, pieces=3)\n"
                                  "s = softmax(p, axis=1)\n"
                                  "s2 = softmax(q)\n"
                                  "c = concat(m, s, s2, axis=1)\n"
                                  "h = linear(c, out=2)\n"
                                  "c2 = concat(c, h, axis=-1)\n"
                                  "f = flatten(c2)\n"
                                  "r = reshape(f, shape=[batch, 13, 5])\n"
                                  "loss = mse(r, t)\n";

TEST(tensor_ops) {
  check_both(tensor_model, 3);
  check_model(tensor_model, KIR_PLAN_TRAIN, 11);
}

/* maxout with pieces 1 (a copy) and 2 over 4-D input, and ties: relu makes
 * many zeros, so the first of equal maxima must take the gradient. */
TEST(maxout_ties) {
  check_both("model mo\n"
             "input x: f32[batch, 4, 3, 5]\n"
             "input t: f32[batch, 2, 3, 5]\n"
             "p = prelu(x)\n"
             "r = relu(p)\n"
             "m = maxout(r, pieces=2)\n"
             "m1 = maxout(m, pieces=1)\n"
             "s = softmax(m1, axis=-1)\n"
             "loss = mse(s, t)\n",
             5);
}

/* Dropout in both modes through the harness (values within tolerance);
 * the exact mask is checked below. */
static const char *dropout_model = "model dr\n"
                                   "input x: f32[batch, 7, 9]\n"
                                   "input t: f32[batch, 7, 9]\n"
                                   "p = prelu(x)\n"
                                   "d = dropout(p, p=0.3)\n"
                                   "e = dropout(d, p=0.5)\n"
                                   "z = dropout(e, p=0.0)\n"
                                   "loss = mse(z, t)\n";

TEST(dropout_plans) {
  check_both(dropout_model, 5);
}

/* ---- dropout's mask, exactly ---- */

/* A model lowered for training and run once by the interpreter and by the
 * reference executor on the same nonzero values (so a zero in an output
 * can only come from a mask). */
typedef struct pair_run {
  kiln_model *m;
  arena a;
  kir_plan p;
  ref_exec *ex;
  kir_interp_plan *ip;
} pair_run;

static uint64_t lcg_state = 12345;

/* A value with |v| in [0.5, 1.5) and either sign. */
static float nonzero_value(void) {
  lcg_state = lcg_state * 6364136223846793005u + 1442695040888963407u;
  double u = (double)(lcg_state >> 11) / 9007199254740992.0;
  return (float)(u < 0.5 ? -(0.5 + 2 * u) : 0.5 + 2 * (u - 0.5));
}

static bool pair_run_train(pair_run *r, const char *text, int64_t batch,
                           uint64_t seed, int64_t step) {
  kiln_error err = {0};
  memset(r, 0, sizeof *r);
  arena_init(&r->a);
  r->m = kiln_model_load_string("t", text, strlen(text), &err);
  if (!r->m || ir_autodiff(&r->m->g, &err) ||
      lower_plan(&r->m->g, batch, KIR_PLAN_TRAIN, &r->a, &r->p, &err) ||
      !(r->ex = ref_exec_new(&r->m->g, batch, &err))) {
    fprintf(stderr, "%s\n", err.message);
    return false;
  }
  r->ip = kir_interp_plan_new(&r->p);
  const ir_graph *g = &r->m->g;
  for (int i = 0; i < g->n_nodes; i++) {
    const ir_node *n = g->nodes[i];
    for (int k = 0; k < n->n_params; k++) {
      int64_t cnt;
      float *ref = ref_exec_param(r->ex, &n->params[k], &cnt);
      float *plan = kir_interp_plan_tensor(
          r->ip, kir_plan_param_tensor(&r->p, &n->params[k]));
      for (int64_t j = 0; j < cnt; j++)
        ref[j] = plan[j] = nonzero_value();
    }
    if (n->op != IR_OP_INPUT)
      continue;
    int64_t cnt = ir_shape_numel(&n->shape, batch);
    float *plan = kir_interp_plan_tensor(r->ip, r->p.node_tensor[n->id]);
    for (int64_t j = 0; j < cnt; j++)
      plan[j] = nonzero_value();
    if (ref_exec_set_input_f32(r->ex, n->name, plan, &err)) {
      fprintf(stderr, "%s\n", err.message);
      return false;
    }
  }
  rt_run run = {.training = true, .seed = seed, .step = step};
  kir_scalars s = {.seed = (int64_t)seed, .step = step};
  if (ref_exec_run(r->ex, &run, NULL, &err) ||
      kir_interp_plan_run(r->ip, 0, r->p.bwd_end, &s, &err)) {
    fprintf(stderr, "%s\n", err.message);
    return false;
  }
  return true;
}

static void pair_run_free(pair_run *r) {
  if (r->ip)
    kir_interp_plan_free(r->ip);
  if (r->ex)
    ref_exec_free(r->ex);
  arena_free(&r->a);
  if (r->m)
    kiln_model_free(r->m);
}

/* The oracle: ref_dropout.c's definition written out again. */
static bool keeps(uint64_t seed, int64_t step, const ir_node *layer, int64_t i,
                  double p) {
  uint64_t stream = (uint64_t)step << 32 | (uint32_t)layer->id;
  return (double)philox_uniform(seed, stream, (uint64_t)i) >= p;
}

/* Node `name`'s zeros, in the plan and in the reference, must be exactly
 * the elements that one of `layers` drops; elsewhere the values agree. */
static void check_zeros(const pair_run *r, const char *name,
                        const ir_node *const *layers, const double *ps,
                        int n_layers, uint64_t seed, int64_t step) {
  const ir_node *n = ir_graph_find(&r->m->g, name);
  CHECK(n != NULL);
  if (!n)
    return;
  int64_t cnt;
  const double *ref = ref_exec_output(r->ex, n, &cnt);
  const float *plan = kir_interp_plan_tensor(r->ip, r->p.node_tensor[n->id]);
  int wrong = 0, dropped = 0;
  for (int64_t i = 0; i < cnt; i++) {
    bool kept = true;
    for (int l = 0; l < n_layers; l++)
      kept = kept && keeps(seed, step, layers[l], i, ps[l]);
    dropped += !kept;
    bool ok = (plan[i] == 0) == !kept && (ref[i] == 0) == !kept &&
              fabs(plan[i] - ref[i]) <= 1e-5 * (1 + fabs(ref[i]));
    if (!ok && wrong++ < 3)
      fprintf(stderr, "  %s[%lld]: plan %g, reference %g, kept %d\n", name,
              (long long)i, plan[i], ref[i], kept);
  }
  CHECK_EQ_INT(wrong, 0);
  CHECK(dropped > 0 && dropped < cnt); /* a mask, not all or nothing */
}

/* Two layers; the first's p sits 2^-30 above the uniform of an element
 * (which the reference therefore drops, and (float)p would keep), the
 * second's p is exactly another element's uniform (kept: u >= p). */
TEST(dropout_mask_exact) {
  const uint64_t seed = 0x5eedf00dULL;
  const int64_t step = 11, batch = 5;
  const char *fmt = "model dr\n"
                    "input x: f32[batch, 7, 9]\n"
                    "input t: f32[batch, 7, 9]\n"
                    "p = prelu(x)\n"
                    "d = dropout(p, p=%.17g)\n"
                    "e = dropout(d, p=%.17g)\n"
                    "loss = mse(e, t)\n";
  char text[512];
  snprintf(text, sizeof text, fmt, 0.5, 0.5);
  kiln_error err = {0};
  kiln_model *m = kiln_model_load_string("t", text, strlen(text), &err);
  CHECK(m != NULL);
  if (!m)
    return;
  const ir_node *d = ir_graph_find(&m->g, "d"), *e = ir_graph_find(&m->g, "e");
  /* Pick the edge elements from the uniforms the two layers draw. */
  uint64_t sd = (uint64_t)step << 32 | (uint32_t)d->id;
  uint64_t se = (uint64_t)step << 32 | (uint32_t)e->id;
  int64_t i0 = 0, i1 = 0;
  while (!(philox_uniform(seed, sd, (uint64_t)i0) > 0.25 &&
           philox_uniform(seed, sd, (uint64_t)i0) < 0.5))
    i0++;
  double p0 = (double)philox_uniform(seed, sd, (uint64_t)i0) + 0x1p-30;
  while (!(philox_uniform(seed, sd, (uint64_t)i1) >= p0 &&
           philox_uniform(seed, se, (uint64_t)i1) > 0.25 &&
           philox_uniform(seed, se, (uint64_t)i1) < 0.5))
    i1++;
  double p1 = (double)philox_uniform(seed, se, (uint64_t)i1);
  CHECK((float)p0 == philox_uniform(seed, sd, (uint64_t)i0)); /* the trap */
  CHECK(i0 < batch * 63 && i1 < batch * 63);
  kiln_model_free(m);

  snprintf(text, sizeof text, fmt, p0, p1);
  pair_run r;
  if (!pair_run_train(&r, text, batch, seed, step)) {
    CHECK(!"ran");
    pair_run_free(&r);
    return;
  }
  d = ir_graph_find(&r.m->g, "d");
  e = ir_graph_find(&r.m->g, "e");
  int ip = ir_op_attr_index(IR_OP_DROPOUT, "p");
  CHECK(d->attrs[ip].f == p0 && e->attrs[ip].f == p1); /* parsed exactly */
  const ir_node *both[2] = {d, e};
  double ps[2] = {p0, p1};
  check_zeros(&r, "d", both, ps, 1, seed, step);
  check_zeros(&r, "e", both, ps, 2, seed, step);
  /* the backward regenerates each layer's mask */
  check_zeros(&r, "grad/e/d", both + 1, ps + 1, 1, seed, step);
  check_zeros(&r, "grad/d/p", both, ps, 2, seed, step);
  const float *dv = kir_interp_plan_tensor(r.ip, r.p.node_tensor[d->id]);
  const float *ev = kir_interp_plan_tensor(r.ip, r.p.node_tensor[e->id]);
  CHECK(dv[i0] == 0);                /* u = p0 - 2^-30: dropped */
  CHECK(dv[i1] != 0 && ev[i1] != 0); /* u = p1 exactly: kept */
  pair_run_free(&r);
}

/* Another step draws another mask; the same step the same one. */
TEST(dropout_mask_steps) {
  const char *text = "model dr\n"
                     "input x: f32[batch, 7, 9]\n"
                     "input t: f32[batch, 7, 9]\n"
                     "p = prelu(x)\n"
                     "d = dropout(p, p=0.4)\n"
                     "loss = mse(d, t)\n";
  for (int64_t step = 0; step < 3; step++) {
    pair_run r;
    if (!pair_run_train(&r, text, 3, 99, step)) {
      CHECK(!"ran");
      pair_run_free(&r);
      return;
    }
    const ir_node *d = ir_graph_find(&r.m->g, "d");
    double p = 0.4;
    check_zeros(&r, "d", &d, &p, 1, 99, step);
    check_zeros(&r, "grad/d/p", &d, &p, 1, 99, step);
    pair_run_free(&r);
  }
}

/* ---- structure ---- */

typedef struct lowered {
  kiln_model *m;
  arena a;
  kir_plan p;
} lowered;

static bool lower_text(lowered *l, const char *text, int64_t batch,
                       kir_plan_mode mode) {
  kiln_error err = {0};
  arena_init(&l->a);
  l->m = kiln_model_load_string("t", text, strlen(text), &err);
  if (!l->m || ir_autodiff(&l->m->g, &err) ||
      lower_plan(&l->m->g, batch, mode, &l->a, &l->p, &err)) {
    fprintf(stderr, "%s\n", err.message);
    return false;
  }
  return true;
}

static void lowered_free(lowered *l) {
  arena_free(&l->a);
  if (l->m)
    kiln_model_free(l->m);
}

/* The launches of node `name` (first in *k). */
static int launches_of(const lowered *l, const char *name,
                       const kir_kernel **k) {
  const ir_node *n = ir_graph_find(&l->m->g, name);
  KILN_ASSERT(n);
  int count = 0;
  *k = NULL;
  for (int i = 0; i < l->p.n_launches; i++)
    if (l->p.launches[i].node == n && count++ == 0)
      *k = l->p.launches[i].k;
  return count;
}

/* Counts statements of `kind` (and loops of `loop`) under s. */
static int count_stmts(const kir_stmt *s, kir_stmt_kind kind,
                       kir_loop_kind loop) {
  if (!s)
    return 0;
  int n = s->kind == kind && (kind != KIR_S_LOOP || s->loop_kind == loop);
  for (int i = 0; s->kind == KIR_S_SEQ && i < s->n; i++)
    n += count_stmts(s->body[i], kind, loop);
  return n + count_stmts(s->then_, kind, loop) +
         count_stmts(s->else_, kind, loop);
}

/* Node `name` has one kernel called `kname`: grid of `blocks`, `threads`
 * per block, a bound guard exactly when the last block is partial. */
static void check_kernel(const lowered *l, const char *name, const char *kname,
                         int64_t blocks, int threads, bool guard) {
  const kir_kernel *k;
  CHECK_EQ_INT(launches_of(l, name, &k), 1);
  if (!k)
    return;
  CHECK_STR_CONTAINS(k->name, kname);
  CHECK(strcmp(k->name, kname) == 0);
  CHECK_EQ_INT(k->block_threads, threads);
  const kir_stmt *grid = k->body->body[0];
  CHECK(grid->kind == KIR_S_LOOP && grid->loop_kind == KIR_LOOP_GRID &&
        grid->extent->i == blocks);
  const kir_stmt *thread = grid->then_->body[0];
  CHECK(thread->kind == KIR_S_LOOP && thread->loop_kind == KIR_LOOP_THREAD);
  /* let i, then the guard */
  const kir_stmt *after = thread->then_->n > 1 ? thread->then_->body[1] : NULL;
  CHECK((after && after->kind == KIR_S_IF) == guard);
}

TEST(structure_names_and_loops) {
  lowered l;
  /* 61 * 15 = 915 elements: 4 blocks of 256, the last partial */
  if (lower_text(&l, act_model, 61, KIR_PLAN_TRAIN)) {
    check_kernel(&l, "a", "relu_fwd_a", 4, 256, true);
    check_kernel(&l, "grad/a/p", "relu_bwd_a", 4, 256, true);
    check_kernel(&l, "e", "gelu_fwd_e", 4, 256, true);
    check_kernel(&l, "p", "prelu_fwd_p", 4, 256, true);
    check_kernel(&l, "grad/p/weight", "prelu_bwd_weight_p", 1, 3, false);
    check_kernel(&l, "s1", "add_fwd_s1", 4, 256, true);
  }
  lowered_free(&l);
  /* 3 * 15 = 45 elements: one block of exactly 45 threads, no guard */
  if (lower_text(&l, act_model, 3, KIR_PLAN_TRAIN)) {
    check_kernel(&l, "f", "sigmoid_fwd_f", 1, 45, false);
    check_kernel(&l, "grad/f/p", "sigmoid_bwd_f", 1, 45, false);
  }
  lowered_free(&l);
}

/* The product of the extents of the serial loops under s. */
static int64_t serial_product(const kir_stmt *s) {
  if (!s)
    return 1;
  int64_t n = s->kind == KIR_S_LOOP && s->loop_kind == KIR_LOOP_SERIAL
                  ? s->extent->i
                  : 1;
  for (int i = 0; s->kind == KIR_S_SEQ && i < s->n; i++)
    n *= serial_product(s->body[i]);
  return n * serial_product(s->then_) * serial_product(s->else_);
}

/* A broadcast operand's gradient is one kernel over its own elements, each
 * summing serially over what it was broadcast along, one loop per
 * (merged) broadcast dimension: pv [1, 5] against [3, 3, 5] sums 9
 * values in one loop, pw [3, 1] 3 x 5 in two, po [1, 1] all 45 in one. */
TEST(structure_broadcast_reduction) {
  lowered l;
  if (lower_text(&l, bcast_model, 3, KIR_PLAN_TRAIN)) {
    struct {
      const char *node, *kernel;
      int threads, loops;
      int64_t len;
    } want[] = {{"grad/a/pv", "add_bwd_b_a", 5, 1, 9},
                {"grad/b/pw", "mul_bwd_b_b", 3, 2, 15},
                {"grad/g/po", "mul_bwd_a_g", 1, 1, 45},
                {"grad/h/po", "add_bwd_b_h", 1, 1, 45},
                {"grad/a/p", "add_bwd_a_a", 45, 0, 1}};
    for (size_t i = 0; i < ARRAY_LEN(want); i++) {
      const kir_kernel *k;
      CHECK_EQ_INT(launches_of(&l, want[i].node, &k), 1);
      if (!k)
        continue;
      CHECK_STR_CONTAINS(k->name, want[i].kernel);
      CHECK_EQ_INT(k->block_threads, want[i].threads);
      CHECK_EQ_INT(count_stmts(k->body, KIR_S_LOOP, KIR_LOOP_SERIAL),
                   want[i].loops);
      CHECK_EQ_INT(serial_product(k->body), want[i].len);
    }
  }
  lowered_free(&l);
}

/* Node `name` has a split reduction: a kernel of m * parts threads into
 * the scratch tensor "<name>.partial", then "<kernel>_sum" of m threads. */
static void check_split(const lowered *l, const char *name, int64_t m,
                        int64_t parts) {
  const ir_node *n = ir_graph_find(&l->m->g, name);
  KILN_ASSERT(n);
  int first = -1, count = 0;
  for (int i = 0; i < l->p.n_launches; i++)
    if (l->p.launches[i].node == n && count++ == 0)
      first = i;
  CHECK_EQ_INT(count, 2);
  if (count != 2)
    return;
  const kir_launch *a = &l->p.launches[first], *b = a + 1;
  CHECK_EQ_INT(a->k->block_threads, m * parts);
  const kir_tensor *part = &l->p.tensors[a->args[a->k->n_bufs - 1]];
  CHECK(part->role == KIR_T_SCRATCH && part->count == m * parts);
  CHECK(strcmp(b->k->name, arena_printf(l->p.a, "%s_sum", a->k->name)) == 0);
  CHECK_EQ_INT(b->k->block_threads, m);
  CHECK_EQ_INT(b->args[1], l->p.node_tensor[n->id]);
}

TEST(structure_split) {
  lowered l;
  if (lower_text(&l, split_slopes, 37, KIR_PLAN_TRAIN)) {
    check_split(&l, "grad/a/weight", 3, 2);
    check_split(&l, "grad/b/weight", 1, 4);
  }
  lowered_free(&l);
  if (lower_text(&l, split_bcast, 37, KIR_PLAN_TRAIN)) {
    check_split(&l, "grad/m/pv", 3, 2);
    check_split(&l, "grad/s/pv", 3, 2);
  }
  lowered_free(&l);
  /* at batch 3 the same sums are short: one kernel each */
  if (lower_text(&l, split_slopes, 3, KIR_PLAN_TRAIN)) {
    const kir_kernel *k;
    CHECK_EQ_INT(launches_of(&l, "grad/b/weight", &k), 1);
  }
  lowered_free(&l);
}

static bool has_role(const kir_kernel *k, kir_scalar_role role) {
  for (int i = 0; i < k->n_vars; i++)
    if (k->vars[i]->role == role)
      return true;
  return false;
}

/* Views have no kernel; dropout in an evaluation plan is a copy; no kernel
 * of any plan here uses atomics. */
TEST(structure_views_eval_atomics) {
  const char *models[] = {act_model, bcast_model, split_bcast, tensor_model};
  for (size_t m = 0; m < ARRAY_LEN(models); m++) {
    lowered l;
    if (lower_text(&l, models[m], 37, KIR_PLAN_TRAIN))
      for (int i = 0; i < l.p.n_launches; i++)
        CHECK_EQ_INT(count_stmts(l.p.launches[i].k->body, KIR_S_ATOMIC_ADD,
                                 KIR_LOOP_SERIAL),
                     0);
    lowered_free(&l);
  }
  const char *text = "model v\n"
                     "input x: f32[batch, 3, 5]\n"
                     "input t: f32[batch, 15]\n"
                     "p = prelu(x)\n"
                     "d = dropout(p, p=0.2)\n"
                     "f = flatten(d)\n"
                     "loss = mse(f, t)\n";
  lowered l;
  if (lower_text(&l, text, 3, KIR_PLAN_TRAIN)) {
    const kir_kernel *k;
    CHECK_EQ_INT(launches_of(&l, "f", &k), 0);
    CHECK_EQ_INT(launches_of(&l, "grad/f/d", &k), 0);
    CHECK_EQ_INT(launches_of(&l, "d", &k), 1);
    CHECK(k && has_role(k, KIR_SCALAR_SEED) && has_role(k, KIR_SCALAR_STEP));
    CHECK_EQ_INT(launches_of(&l, "grad/d/p", &k), 1);
    CHECK(k && has_role(k, KIR_SCALAR_SEED) && has_role(k, KIR_SCALAR_STEP));
  }
  lowered_free(&l);
  if (lower_text(&l, text, 3, KIR_PLAN_EVAL)) {
    const kir_kernel *k;
    CHECK_EQ_INT(launches_of(&l, "d", &k), 1); /* a copy: no random bits */
    CHECK(k && !has_role(k, KIR_SCALAR_SEED) && !has_role(k, KIR_SCALAR_STEP));
  }
  lowered_free(&l);
}

/* ---- every kernel compiles for the GPU ---- */

/* The kernels of the models above, rendered as CUDA C and compiled by
 * NVRTC for sm_80 with warnings as errors (no GPU needed). Skipped,
 * visibly, where NVRTC cannot be loaded. */
TEST(nvrtc_compiles) {
  kiln_error err = {0};
  int major, minor;
  if (cg_cuda_nvrtc_version(&major, &minor, &err) != KILN_OK) {
    printf("SKIPPED nvrtc_compiles: %s\n", err.message);
    return;
  }
  /* every kind of kernel here, in the plan that has it */
  struct {
    const char *text;
    kir_plan_mode mode;
  } plans[] = {{act_model, KIR_PLAN_TRAIN},   {bcast_model, KIR_PLAN_TRAIN},
               {split_bcast, KIR_PLAN_TRAIN}, {tensor_model, KIR_PLAN_TRAIN},
               {rows_model, KIR_PLAN_TRAIN},  {dropout_model, KIR_PLAN_TRAIN},
               {dropout_model, KIR_PLAN_EVAL}};
  int total = 0;
  for (size_t m = 0; m < ARRAY_LEN(plans); m++) {
    lowered l;
    if (!lower_text(&l, plans[m].text, 37, plans[m].mode)) {
      CHECK(!"lowered");
      lowered_free(&l);
      continue;
    }
    cg_cuda_job *jobs = ARENA_ARRAY(&l.a, cg_cuda_job, l.p.n_launches);
    for (int i = 0; i < l.p.n_launches; i++) {
      strbuf sb;
      strbuf_init(&sb);
      cg_cuda_render(&sb, l.p.launches[i].k);
      jobs[i].name = l.p.launches[i].k->name;
      jobs[i].src = arena_strdup(&l.a, sb.data);
      strbuf_free(&sb);
    }
    cg_cuda_opts o = {.arch = 80, .werror = true, .no_cache = true};
    kiln_status st =
        cg_cuda_compile_all(jobs, l.p.n_launches, &o, 2, NULL, &err);
    if (st)
      fprintf(stderr, "%s\n", err.message);
    CHECK_EQ_INT(st, KILN_OK);
    for (int i = 0; i < l.p.n_launches; i++)
      cg_cuda_binary_free(&jobs[i].bin);
    total += l.p.n_launches;
    lowered_free(&l);
  }
  CHECK(total > 100);
  printf("nvrtc_compiles: %d kernels for sm_80\n", total);
}

int main(void) {
  RUN(activations);
  RUN(activations_wide_range);
  RUN(prelu);
  RUN(broadcast);
  RUN(broadcast_rank);
  RUN(split_reductions);
  RUN(row_layout);
  RUN(tensor_ops);
  RUN(maxout_ties);
  RUN(dropout_plans);
  RUN(dropout_mask_exact);
  RUN(dropout_mask_steps);
  RUN(structure_names_and_loops);
  RUN(structure_broadcast_reduction);
  RUN(structure_split);
  RUN(structure_views_eval_atomics);
  RUN(nvrtc_compiles);
  return TEST_SUMMARY();
}
