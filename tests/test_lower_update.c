/* test_lower_update.c — lowering of grad_norm and the optimizer update
 * nodes (passes/lower_update.c) against the reference executor, whose
 * update nodes apply train_clip/train_opt_step/train_ema as the training
 * loop does:
 *
 *   1. through the plan-check harness (tests/support/plan_check.h, with
 *      update on): one update from the same random state, for every
 *      optimizer (plain SGD, momentum, Nesterov, AdaGrad, RMSProp with and
 *      without momentum, Adam, AdamW), coupled L2, L1 and decoupled decay,
 *      EMA, clipping off, on and active, at steps 0 and 6 (momentum's
 *      first step, Adam's bias correction);
 *   2. several consecutive steps on both executors, comparing every
 *      parameter, optimizer state and EMA weight after each, so state
 *      carried between steps is checked too;
 *   3. a non-finite gradient norm: the update kernels change nothing
 *      (parameters, state, EMA), while a finite one does; and the norm
 *      itself against a sum of squares computed here;
 *   4. structure: two grad_norm kernels in the backward section, one
 *      kernel per update node after it, no atomics. */
#include "test.h"

#include "frontend/load.h"
#include "passes/lower.h"
#include "runtime/cpu/rt_cpu.h"
#include "runtime/reference/ref_exec.h"
#include "support/kir_interp.h"
#include "support/plan_check.h"

#include <math.h>
#include <stdlib.h>

/* Both plan executors: the kernel IR interpreter (the definition) and the
 * compiled CPU plan. */
static const pc_executor *const executors[] = {&pc_interp_executor,
                                               &pc_cpu_executor};

/* conv + batchnorm + linear layers: parameters of several sizes, two
 * larger than an update chunk (1024: big.weight has 1041 elements), and
 * a BatchNorm whose running statistics the optimizer leaves alone. */
static const char *const model_fmt =
    "model upd\n"
    "input x: f32[batch, 3, 7, 9]\n"
    "input label: i32[batch]\n"
    "c = conv2d(x, out=5, kernel=3, padding=1, bias=false)\n"
    "b = batchnorm(c)\n"
    "r = relu(b)\n"
    "g = global_avgpool(r)\n"
    "h = linear(g, out=3)\n"
    "t = tanh(h)\n"
    "big = linear(t, out=347)\n"
    "logits = linear(big, out=5)\n"
    "loss = cross_entropy(logits, label)\n"
    "train { %s }\n";

static const char *const configs[] = {
    "optimizer = sgd(lr=0.1)",
    "optimizer = sgd(lr=0.1, momentum=0.9)",
    "optimizer = sgd(lr=0.1, momentum=0.9, nesterov=true) weight_decay = 0.01",
    "optimizer = sgd(lr=0.1, momentum=0.5) weight_decay = 0.05 "
    "weight_decay_mode = decoupled l1 = 0.001",
    "optimizer = adagrad(lr=0.1) l1 = 0.01",
    "optimizer = adagrad(lr=0.1, eps=0.001) weight_decay = 0.1 "
    "weight_decay_mode = decoupled",
    "optimizer = rmsprop(lr=0.01)",
    "optimizer = rmsprop(lr=0.01, alpha=0.9, momentum=0.5) weight_decay = 0.1",
    "optimizer = adam(lr=0.01) weight_decay = 0.1",
    "optimizer = adam(lr=0.01, betas=(0.8, 0.99), eps=0.001) l1 = 0.01",
    "optimizer = adamw(lr=0.01) weight_decay = 0.1",
    "optimizer = adamw(lr=0.01) weight_decay = 0.1 weight_decay_mode = l2",
};

/* clipping off, on but above the norm, on and active; EMA with the
 * active clip. */
static const char *const extras[] = {"", " clip_grad_norm = 100",
                                     " clip_grad_norm = 0.05 ema = 0.9"};

static char *model_text(const char *cfg, const char *extra) {
  char train[512];
  snprintf(train, sizeof train, "%s%s", cfg, extra);
  size_t cap = strlen(model_fmt) + strlen(train) + 1;
  char *text = malloc(cap);
  snprintf(text, cap, model_fmt, train);
  return text;
}

TEST(update_every_optimizer) {
  static const int64_t steps[] = {0, 6};
  /* each optimizer with one of the clipping/EMA variants, in turn, so
   * that every variant meets several optimizers */
  for (size_t c = 0; c < ARRAY_LEN(configs); c++) {
    const char *extra = extras[c % ARRAY_LEN(extras)];
    char *text = model_text(configs[c], extra);
    /* the compiled plan (an LLVM compile each) on a subset, at step 6:
     * SGD with momentum, decoupled decay and L1; RMSProp with momentum, L2
     * and a clip; AdamW in L2 mode with an active clip and EMA */
    bool cpu = c % 4 == 3;
    for (size_t s = 0; s < ARRAY_LEN(steps); s++)
      for (size_t e = 0; e < (cpu && s == 1 ? ARRAY_LEN(executors) : 1); e++) {
        pc_opts o = {.update = true,
                     .step = steps[s],
                     .lr = 0.03f,
                     .exec = executors[e]};
        pc_report rep = {0};
        kiln_error err = {0};
        kiln_status st = pc_check_string("upd", text, &o, &rep, &err);
        if (st)
          fprintf(stderr, "%s%s, step %lld (%s): %s\n", configs[c], extra,
                  (long long)steps[s], executors[e]->name, err.message);
        CHECK(st == KILN_OK);
        CHECK(rep.used_update > 0);
      }
    free(text);
  }
}

/* ---- both executors over several steps ---- */

typedef struct two {
  kiln_model *m;
  ir_graph *g;
  arena a;
  kir_plan p;
  ref_exec *ex;
  kir_interp_plan *ip;
} two;

static double lcg(uint32_t *s) {
  *s = *s * 1664525u + 1013904223u;
  return (*s >> 8) / 16777216.0;
}

/* Loads, lowers at batch 3 and gives both executors the same parameters,
 * state (positive where it must be) and inputs. */
static bool two_open(two *t, const char *text) {
  kiln_error err = {0};
  memset(t, 0, sizeof *t);
  arena_init(&t->a);
  t->m = kiln_model_load_string("t.kiln", text, strlen(text), &err);
  if (!t->m || ir_autodiff(&t->m->g, &err) || ir_add_updates(&t->m->g, &err) ||
      lower_plan(&t->m->g, 3, KIR_PLAN_TRAIN, &t->a, &t->p, &err) ||
      !(t->ex = ref_exec_new(&t->m->g, 3, &err))) {
    fprintf(stderr, "%s\n", err.message);
    return false;
  }
  t->g = &t->m->g;
  t->ip = kir_interp_plan_new(&t->p);
  uint32_t seed = 5;
  for (int i = 0; i < t->g->n_nodes; i++) {
    const ir_node *n = t->g->nodes[i];
    for (int k = 0; k < n->n_params; k++) {
      int64_t cnt;
      float *r = ref_exec_param(t->ex, &n->params[k], &cnt);
      float *q = kir_interp_plan_tensor(
          t->ip, kir_plan_param_tensor(&t->p, &n->params[k]));
      const char *role = n->params[k].role;
      bool positive =
          strcmp(role, "running_var") == 0 || strcmp(role, "sum") == 0 ||
          strcmp(role, "square_avg") == 0 || strcmp(role, "exp_avg_sq") == 0;
      for (int64_t j = 0; j < cnt; j++)
        r[j] = q[j] = positive ? (float)(0.01 + 0.1 * lcg(&seed))
                               : (float)(lcg(&seed) - 0.5);
    }
    if (n->op != IR_OP_INPUT)
      continue;
    int64_t cnt = ir_shape_numel(&n->shape, 3);
    void *q = kir_interp_plan_tensor(t->ip, t->p.node_tensor[n->id]);
    if (n->dtype == IR_I32) {
      int32_t *lab = q;
      for (int64_t j = 0; j < cnt; j++)
        lab[j] = (int32_t)(lcg(&seed) * 5);
      ref_exec_set_input_i32(t->ex, n->name, lab, &err);
    } else {
      float *x = q;
      for (int64_t j = 0; j < cnt; j++)
        x[j] = (float)(2 * lcg(&seed) - 1);
      ref_exec_set_input_f32(t->ex, n->name, x, &err);
    }
  }
  return true;
}

static void two_close(two *t) {
  if (t->ip)
    kir_interp_plan_free(t->ip);
  if (t->ex)
    ref_exec_free(t->ex);
  arena_free(&t->a);
  kiln_model_free(t->m);
}

/* Every parameter of every node (state and EMA included) within rtol of
 * the tensor's largest value. */
static void two_compare(two *t, const char *what, int step, double rtol) {
  for (int i = 0; i < t->g->n_nodes; i++) {
    const ir_node *n = t->g->nodes[i];
    for (int k = 0; k < n->n_params; k++) {
      int64_t cnt;
      const float *r = ref_exec_param(t->ex, &n->params[k], &cnt);
      const float *q = kir_interp_plan_tensor(
          t->ip, kir_plan_param_tensor(&t->p, &n->params[k]));
      double mx = 0, worst = 0;
      int64_t at = 0;
      for (int64_t j = 0; j < cnt; j++)
        mx = fmax(mx, fabs(r[j]));
      for (int64_t j = 0; j < cnt; j++)
        if (!(fabs(r[j] - q[j]) <= worst)) {
          worst = fabs(r[j] - q[j]);
          at = j;
        }
      if (!(worst <= rtol * mx)) {
        fprintf(stderr, "%s, step %d: %s[%lld]: plan %.9g vs reference %.9g\n",
                what, step, n->params[k].name, (long long)at, q[at], r[at]);
        CHECK(!"parameters differ");
        return;
      }
    }
  }
}

TEST(update_consecutive_steps) {
  static const char *const cfgs[] = {
      "optimizer = sgd(lr=0.1, momentum=0.9, nesterov=true) "
      "clip_grad_norm = 0.05 ema = 0.9",
      "optimizer = rmsprop(lr=0.01, momentum=0.5) l1 = 0.01",
      "optimizer = adamw(lr=0.01) weight_decay = 0.1 clip_grad_norm = 0.1 "
      "ema = 0.5",
  };
  for (size_t c = 0; c < ARRAY_LEN(cfgs); c++) {
    char *text = model_text(cfgs[c], "");
    two t;
    if (!two_open(&t, text)) {
      CHECK(!"could not lower");
    } else {
      for (int s = 0; s < 4; s++) {
        kiln_error err = {0};
        double lr = 0.02 * (s + 1); /* a schedule: lr is per run */
        rt_run run = {
            .training = true, .update = true, .seed = 3, .step = s, .lr = lr};
        CHECK(ref_exec_run(t.ex, &run, NULL, &err) == KILN_OK);
        kir_scalars sc = {.seed = 3, .step = s, .lr = (float)lr};
        CHECK(kir_interp_plan_run(t.ip, 0, t.p.n_launches, &sc, &err) ==
              KILN_OK);
        two_compare(&t, cfgs[c], s, 2e-5);
      }
    }
    two_close(&t);
    free(text);
  }
}

/* ---- a non-finite norm skips the update ---- */

static void snapshot(two *t, float *out, int64_t cap, int64_t *used) {
  *used = 0;
  for (int i = 0; i < t->g->n_nodes; i++) {
    const ir_node *n = t->g->nodes[i];
    for (int k = 0; k < n->n_params; k++) {
      int tt = kir_plan_param_tensor(&t->p, &n->params[k]);
      int64_t cnt = t->p.tensors[tt].count;
      KILN_ASSERT(*used + cnt <= cap);
      memcpy(out + *used, kir_interp_plan_tensor(t->ip, tt),
             sizeof(float) * (size_t)cnt);
      *used += cnt;
    }
  }
}

TEST(update_skips_nonfinite_norm) {
  char *text = model_text("optimizer = adam(lr=0.01) weight_decay = 0.1",
                          " clip_grad_norm = 0.5 ema = 0.9");
  two t;
  if (!two_open(&t, text)) {
    CHECK(!"could not lower");
    two_close(&t);
    free(text);
    return;
  }
  enum { CAP = 1 << 16 };
  float *before = malloc(CAP * sizeof(float));
  float *after = malloc(CAP * sizeof(float));
  int64_t nb, na;
  kir_scalars sc = {.seed = 3, .step = 2, .lr = 0.01f};
  kiln_error err = {0};
  /* the backward, then the norm recomputed over a poisoned gradient */
  CHECK(kir_interp_plan_run(t.ip, 0, t.p.bwd_end, &sc, &err) == KILN_OK);
  const ir_node *gn = t.g->grad_nodes[0];
  float *grad = kir_interp_plan_tensor(t.ip, t.p.node_tensor[gn->id]);
  const float *norm =
      kir_interp_plan_tensor(t.ip, t.p.node_tensor[t.g->grad_norm->id]);
  double sq = 0;
  for (int k = 0; k < t.g->n_param_grads; k++) {
    const ir_node *d = t.g->grad_nodes[k];
    int tt = t.p.node_tensor[d->id];
    const float *v = kir_interp_plan_tensor(t.ip, tt);
    for (int64_t j = 0; j < t.p.tensors[tt].count; j++)
      sq += (double)v[j] * v[j];
  }
  CHECK_NEAR(norm[0], sqrt(sq), 1e-5 * sqrt(sq));
  int first = -1, last = -1; /* the grad_norm launches */
  for (int i = t.p.fwd_end; i < t.p.bwd_end; i++)
    if (t.p.launches[i].node == t.g->grad_norm) {
      if (first < 0)
        first = i;
      last = i + 1;
    }
  CHECK(first >= 0);
  float keep = grad[0];
  grad[0] = INFINITY;
  snapshot(&t, before, CAP, &nb);
  CHECK(kir_interp_plan_run(t.ip, first, last, &sc, &err) == KILN_OK);
  CHECK(isinf(norm[0]));
  CHECK(kir_interp_plan_run(t.ip, t.p.bwd_end, t.p.n_launches, &sc, &err) ==
        KILN_OK);
  snapshot(&t, after, CAP, &na);
  CHECK(memcmp(before, after, sizeof(float) * (size_t)nb) == 0);
  grad[0] = NAN;
  CHECK(kir_interp_plan_run(t.ip, first, last, &sc, &err) == KILN_OK);
  CHECK(isnan(norm[0]));
  CHECK(kir_interp_plan_run(t.ip, t.p.bwd_end, t.p.n_launches, &sc, &err) ==
        KILN_OK);
  snapshot(&t, after, CAP, &na);
  CHECK(memcmp(before, after, sizeof(float) * (size_t)nb) == 0);
  /* finite again: the same launches do change the parameters */
  grad[0] = keep;
  CHECK(kir_interp_plan_run(t.ip, first, last, &sc, &err) == KILN_OK);
  CHECK(kir_interp_plan_run(t.ip, t.p.bwd_end, t.p.n_launches, &sc, &err) ==
        KILN_OK);
  snapshot(&t, after, CAP, &na);
  CHECK(memcmp(before, after, sizeof(float) * (size_t)nb) != 0);
  free(before);
  free(after);
  two_close(&t);
  free(text);
}

static bool has_atomic(const kir_stmt *s) {
  if (!s)
    return false;
  if (s->kind == KIR_S_ATOMIC_ADD)
    return true;
  for (int i = 0; i < s->n; i++)
    if (has_atomic(s->body[i]))
      return true;
  return has_atomic(s->then_) || has_atomic(s->else_);
}

static bool has_scalar(const kir_kernel *k, kir_scalar_role role) {
  for (int i = 0; i < k->n_vars; i++)
    if (k->vars[i]->role == role)
      return true;
  return false;
}

/* Where the kernels are: grad_norm's two in the backward section, one per
 * update node in the update section, reading lr and (Adam) the step; no
 * atomics anywhere. */
TEST(update_plan_structure) {
  char *text = model_text("optimizer = adam(lr=0.01)",
                          " clip_grad_norm = 0.5 ema = 0.9");
  two t;
  if (!two_open(&t, text)) {
    CHECK(!"could not lower");
    two_close(&t);
    free(text);
    return;
  }
  int norm_launches = 0;
  int *per_update = calloc((size_t)t.g->n_nodes, sizeof(int));
  for (int i = 0; i < t.p.n_launches; i++) {
    const kir_launch *l = &t.p.launches[i];
    CHECK(!has_atomic(l->k->body));
    if (l->node == t.g->grad_norm) {
      norm_launches++;
      CHECK(i >= t.p.fwd_end && i < t.p.bwd_end);
    }
    if (l->node->op == IR_OP_UPDATE) {
      per_update[l->node->id]++;
      CHECK(i >= t.p.bwd_end);
      CHECK(has_scalar(l->k, KIR_SCALAR_LR));
      CHECK(has_scalar(l->k, KIR_SCALAR_STEP));
    }
  }
  CHECK_EQ_INT(norm_launches, 2);
  CHECK_EQ_INT(t.p.n_launches - t.p.bwd_end, t.g->n_updates);
  for (int u = 0; u < t.g->n_updates; u++)
    CHECK_EQ_INT(per_update[t.g->updates[u]->id], 1);
  free(per_update);
  two_close(&t);
  free(text);
}

int main(void) {
  RUN(update_every_optimizer);
  RUN(update_consecutive_steps);
  RUN(update_skips_nonfinite_norm);
  RUN(update_plan_structure);
  return TEST_SUMMARY();
}
