/* test_memplan.c — the memory planner by its properties (style.md: no
 * fixed offsets): for every model in models/, TRAIN and EVAL plans at an
 * odd batch, with and without in-place outputs, the checker passes, the
 * planned peak is below one buffer per tensor and at least the bytes live
 * at the busiest launch; the checker rejects overlapping, misaligned and
 * too-short layouts; the in-place proof accepts the elementwise loop and
 * refuses what breaks it. The strongest check runs mlp and lenet5 through
 * the kernel IR interpreter twice, once with a tensor per buffer and once
 * with every activation inside one planned block: before every launch each
 * argument it reads must hold the same bits in both, and the loss, outputs,
 * gradients and updated parameters must be bit-identical. */
#include "tests/test.h"

#include "frontend/load.h"
#include "passes/lower.h"
#include "passes/memplan.h"
#include "tests/support/kir_interp.h"

#include <dirent.h>
#include <stdlib.h>

enum { BATCH = 3 };

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int list_models(arena *A, const char **names, int cap) {
  DIR *d = opendir("models");
  CHECK(d != NULL);
  if (!d)
    return 0;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) && n < cap) {
    size_t len = strlen(e->d_name);
    if (len > 5 && strcmp(e->d_name + len - 5, ".kiln") == 0)
      names[n++] = arena_printf(A, "models/%s", e->d_name);
  }
  closedir(d);
  qsort(names, (size_t)n, sizeof *names, cmp_str);
  return n;
}

static kiln_model *load_train(const char *path) {
  kiln_error err = {0};
  kiln_model *m = kiln_model_load_file(path, &err);
  if (!m) {
    fprintf(stderr, "%s: %s\n", path, err.message);
    return NULL;
  }
  if (ir_autodiff(&m->g, &err) || ir_add_updates(&m->g, &err)) {
    fprintf(stderr, "%s: %s\n", path, err.message);
    kiln_model_free(m);
    return NULL;
  }
  return m;
}

static int root(const kir_plan *p, int t) {
  while (p->tensors[t].alias >= 0)
    t = p->tensors[t].alias;
  return t;
}

/* The bytes of ACT roots live at the busiest launch: a lower bound of any
 * layout without in-place sharing. */
static int64_t live_lower_bound(const kir_plan *p, const memplan *m) {
  int64_t best = 0;
  for (int l = 0; l < p->n_launches; l++) {
    int64_t sum = 0;
    for (int t = 0; t < p->n_tensors; t++)
      if (p->tensors[t].alias < 0 && m->arena[t] == MEMPLAN_ACT &&
          m->first[t] <= l && l <= m->last[t])
        sum += m->bytes[t];
    if (sum > best)
      best = sum;
  }
  return best;
}

TEST(every_model_plans_and_checks) {
  arena A;
  arena_init(&A);
  const char *names[64];
  int n = list_models(&A, names, 64);
  CHECK(n >= 7);
  for (int i = 0; i < n; i++) {
    kiln_model *m = load_train(names[i]);
    CHECK(m != NULL);
    if (!m)
      continue;
    for (int mode = 0; mode < 2; mode++)
      for (int inplace = 0; inplace < 2; inplace++) {
        kiln_error err = {0};
        kir_plan p;
        memplan mp;
        memplan_opts o = {.inplace = inplace};
        kiln_status st =
            lower_plan(&m->g, BATCH, (kir_plan_mode)mode, &A, &p, &err);
        if (!st)
          st = memplan_build(&p, &o, &A, &mp, &err);
        if (!st)
          st = memplan_check(&p, &mp, &err);
        if (st) {
          fprintf(stderr, "%s mode %d inplace %d: %s\n", names[i], mode,
                  inplace, err.message);
          CHECK(!"planning failed");
          continue;
        }
        CHECK(mp.planned_bytes < mp.unplanned_bytes);
        CHECK_EQ_INT(mp.planned_bytes, mp.arena_bytes[MEMPLAN_ACT]);
        if (!inplace)
          CHECK(mp.planned_bytes >= live_lower_bound(&p, &mp));
        else
          CHECK(mp.n_inplace > 0); /* every model has a dying relu input */
        if (mode == KIR_PLAN_TRAIN && !inplace) {
          /* the loss and every parameter gradient survive the backward */
          int lt = root(&p, p.node_tensor[m->g.loss->id]);
          CHECK_EQ_INT(mp.last[lt], p.n_launches - 1);
          for (int k = 0; k < m->g.n_param_grads; k++) {
            int gt = root(&p, p.node_tensor[m->g.grad_nodes[k]->id]);
            CHECK(mp.last[gt] >= p.bwd_end);
          }
        }
      }
    kiln_model_free(m);
  }
  arena_free(&A);
}

/* Two distinct ACT roots bound to one launch. */
static bool pick_pair(const kir_plan *p, const memplan *m, int *a, int *b) {
  for (int l = 0; l < p->n_launches; l++) {
    const kir_launch *L = &p->launches[l];
    int first = -1;
    for (int i = 0; i < L->k->n_bufs && L->k->bufs[i]->space == KIR_GLOBAL;
         i++) {
      int r = root(p, L->args[i]);
      if (m->arena[r] != MEMPLAN_ACT)
        continue;
      if (first >= 0 && r != first) {
        *a = first;
        *b = r;
        return true;
      }
      first = r;
    }
  }
  return false;
}

static void move_root(const kir_plan *p, memplan *m, int r, int64_t off) {
  for (int t = 0; t < p->n_tensors; t++)
    if (root(p, t) == r)
      m->offset[t] = off;
}

TEST(checker_rejects_bad_layouts) {
  arena A;
  arena_init(&A);
  kiln_model *m = load_train("models/lenet5.kiln");
  CHECK(m != NULL);
  if (!m)
    return;
  kiln_error err = {0};
  kir_plan p;
  memplan mp;
  CHECK_EQ_INT(lower_plan(&m->g, BATCH, KIR_PLAN_TRAIN, &A, &p, &err), 0);
  CHECK_EQ_INT(memplan_build(&p, NULL, &A, &mp, &err), 0);
  CHECK_EQ_INT(memplan_check(&p, &mp, &err), 0);
  int a = -1, b = -1;
  CHECK(pick_pair(&p, &mp, &a, &b));
  if (a >= 0) {
    int64_t old = mp.offset[b];
    move_root(&p, &mp, b, mp.offset[a]);
    CHECK_EQ_INT(memplan_check(&p, &mp, &err), KILN_ERR_INTERNAL);
    CHECK_STR_CONTAINS(err.message, "live at the same time and overlap");
    move_root(&p, &mp, b, old + 4);
    CHECK_EQ_INT(memplan_check(&p, &mp, &err), KILN_ERR_INTERNAL);
    CHECK_STR_CONTAINS(err.message, "not aligned");
    move_root(&p, &mp, b, mp.arena_bytes[MEMPLAN_ACT]);
    CHECK_EQ_INT(memplan_check(&p, &mp, &err), KILN_ERR_INTERNAL);
    CHECK_STR_CONTAINS(err.message, "past the end");
    move_root(&p, &mp, b, old);
    CHECK_EQ_INT(memplan_check(&p, &mp, &err), 0);
    /* a live range that ends before a use */
    int last = mp.last[a];
    mp.last[a] = mp.first[a] - 1;
    CHECK_EQ_INT(memplan_check(&p, &mp, &err), KILN_ERR_INTERNAL);
    CHECK_STR_CONTAINS(err.message, "outside its live range");
    mp.last[a] = last;
  }
  /* parameters never share */
  int p0 = p.param_tensor[0], p1 = p.param_tensor[1];
  int64_t old = mp.offset[p1];
  mp.offset[p1] = mp.offset[p0];
  CHECK_EQ_INT(memplan_check(&p, &mp, &err), KILN_ERR_INTERNAL);
  CHECK_STR_CONTAINS(err.message, "never shared");
  mp.offset[p1] = old;
  kiln_model_free(m);
  arena_free(&A);
}

/* ---- the in-place proof on hand-built kernels ---- */

enum ip_variant { IP_OK, IP_SHIFTED, IP_LOAD_AFTER, IP_SERIAL, IP_TWO_GRIDS };

static bool inplace_variant(enum ip_variant v) {
  arena A;
  arena_init(&A);
  enum { N = 999, BT = 256 };
  kir_kernel *k = kir_kernel_new(&A, "ew", BT);
  kir_buf *x = kir_global(k, "x", KIR_F32, N, true);
  kir_buf *y = kir_global(k, "y", KIR_F32, N, false);
  kir_buf *z = kir_global(k, "z", KIR_F32, N, false);
  kir_var *row = NULL;
  if (v == IP_TWO_GRIDS)
    row = kir_for(k, KIR_LOOP_GRID, "row", kir_i64(k, 2));
  kir_var *b = kir_for(k, KIR_LOOP_GRID, "b", kir_i64(k, (N + BT - 1) / BT));
  kir_var *t = kir_for(k, KIR_LOOP_THREAD, "t", kir_i64(k, BT));
  kir_var *i = kir_let(
      k, "i",
      kir_bin(k, KIR_ADD, kir_bin(k, KIR_MUL, kir_ref(k, b), kir_i64(k, BT)),
              kir_ref(k, t)));
  kir_if(k, kir_bin(k, KIR_LT, kir_ref(k, i), kir_i64(k, N - 1)));
  kir_expr *xi = kir_load(k, x, kir_ref(k, i));
  if (v == IP_SHIFTED) {
    kir_var *j =
        kir_let(k, "j", kir_bin(k, KIR_ADD, kir_ref(k, i), kir_i64(k, 1)));
    xi = kir_load(k, x, kir_ref(k, j));
  }
  kir_var *r = NULL;
  if (v == IP_SERIAL)
    r = kir_for(k, KIR_LOOP_SERIAL, "r", kir_i64(k, 2));
  kir_expr *val = kir_bin(k, KIR_MAX, xi, kir_f32(k, 0));
  if (r)
    val = kir_bin(k, KIR_ADD, val, kir_cast(k, KIR_F32, kir_ref(k, r)));
  if (row)
    val = kir_bin(k, KIR_ADD, val, kir_cast(k, KIR_F32, kir_ref(k, row)));
  kir_store(k, y, kir_ref(k, i), val);
  if (r)
    kir_end(k);
  kir_store(k, z, kir_ref(k, i),
            v == IP_LOAD_AFTER ? kir_load(k, x, kir_ref(k, i)) : kir_f32(k, 1));
  while (k->depth > 0)
    kir_end(k);
  kiln_error err = {0};
  CHECK_EQ_INT(kir_verify(k, &err), KILN_OK);
  int args[3] = {0, 1, 2};
  kir_launch L = {.k = k, .args = args};
  bool ok = memplan_inplace_ok(&L, 0, 1);
  CHECK(!memplan_inplace_ok(&L, 1, 0)); /* x is never written */
  arena_free(&A);
  return ok;
}

TEST(inplace_proof) {
  CHECK(inplace_variant(IP_OK));
  CHECK(!inplace_variant(IP_SHIFTED));
  CHECK(!inplace_variant(IP_LOAD_AFTER));
  CHECK(!inplace_variant(IP_SERIAL));
  CHECK(!inplace_variant(IP_TWO_GRIDS));
}

/* ---- planned and unplanned runs through the interpreter ---- */

static uint64_t rng_next(uint64_t *s) {
  *s = *s * 6364136223846793005ull + 1442695040888963407ull;
  return *s >> 33;
}

static float uniform(uint64_t *s, float lo, float hi) {
  return lo + (hi - lo) * (float)rng_next(s) / (float)(1ull << 31);
}

/* Parameters small and random (state and buffers positive), data in
 * [-1, 1), labels in range: the same values in both runs. */
static void fill(const kir_plan *p, kir_interp_plan *ip[2]) {
  uint64_t s = 12345;
  for (int t = 0; t < p->n_tensors; t++) {
    const kir_tensor *x = &p->tensors[t];
    if (x->alias >= 0 || (x->role != KIR_T_PARAM && x->role != KIR_T_INPUT))
      continue;
    for (int64_t e = 0; e < x->count; e++) {
      bool trainable = x->role == KIR_T_PARAM && x->param->trainable;
      float f = x->role == KIR_T_INPUT ? uniform(&s, -1, 1)
                : trainable            ? uniform(&s, -0.5f, 0.5f)
                                       : uniform(&s, 0.05f, 0.5f);
      int32_t lab = (int32_t)(e % 3);
      for (int k = 0; k < 2; k++) {
        void *d = kir_interp_plan_tensor(ip[k], t);
        if (x->type == KIR_F32)
          ((float *)d)[e] = f;
        else
          ((int32_t *)d)[e] = lab;
      }
    }
  }
}

static int64_t tensor_bytes(const kir_plan *p, int t) {
  return p->tensors[t].count * kir_type_size(p->tensors[t].type);
}

static bool same(const kir_plan *p, kir_interp_plan *ip[2], int t) {
  return memcmp(kir_interp_plan_tensor(ip[0], t),
                kir_interp_plan_tensor(ip[1], t),
                (size_t)tensor_bytes(p, t)) == 0;
}

static void same_node(const kir_plan *p, kir_interp_plan *ip[2],
                      const ir_node *n, const char *what) {
  if (!n || p->node_tensor[n->id] < 0)
    return;
  if (!same(p, ip, p->node_tensor[n->id])) {
    fprintf(stderr, "%s '%s' differs after the planned run\n", what, n->name);
    CHECK(!"planned and unplanned runs differ");
  }
}

/* Runs launch by launch; before each, every argument the kernel reads
 * must hold the same bits in both layouts. Returns launches checked. */
static int run_both(const kir_plan *p, kir_interp_plan *ip[2], int from,
                    int to) {
  kir_scalars sc = {.seed = 7, .step = 3, .lr = 0.01f};
  for (int l = from; l < to; l++) {
    const kir_launch *L = &p->launches[l];
    for (int i = 0; i < L->k->n_bufs && L->k->bufs[i]->space == KIR_GLOBAL; i++)
      if (L->k->bufs[i]->read_only && !same(p, ip, L->args[i])) {
        fprintf(stderr, "launch %d (%s): input '%s' overwritten\n", l,
                L->k->name, p->tensors[L->args[i]].name);
        CHECK(!"a tensor read after being written was clobbered");
        return l - from;
      }
    for (int k = 0; k < 2; k++) {
      kiln_error err = {0};
      kiln_status st = kir_interp_plan_run(ip[k], l, l + 1, &sc, &err);
      if (st) {
        fprintf(stderr, "%s\n", err.message);
        CHECK(!"interpreter failed");
        return l - from;
      }
    }
  }
  return to - from;
}

static void planned_run(const char *path, bool inplace) {
  arena A;
  arena_init(&A);
  kiln_model *m = load_train(path);
  CHECK(m != NULL);
  if (!m)
    return;
  const ir_graph *g = &m->g;
  kiln_error err = {0};
  kir_plan p;
  memplan mp;
  memplan_opts o = {.inplace = inplace};
  CHECK_EQ_INT(lower_plan(g, BATCH, KIR_PLAN_TRAIN, &A, &p, &err), 0);
  CHECK_EQ_INT(memplan_build(&p, &o, &A, &mp, &err), 0);
  CHECK_EQ_INT(memplan_check(&p, &mp, &err), 0);
  CHECK(!inplace || mp.n_inplace > 0);
  bool *in_arena = ARENA_ARRAY(&A, bool, p.n_tensors);
  for (int t = 0; t < p.n_tensors; t++)
    in_arena[t] = mp.arena[t] == MEMPLAN_ACT;
  kir_interp_plan *ip[2] = {
      kir_interp_plan_new(&p),
      kir_interp_plan_new_placed(&p, in_arena, mp.offset,
                                 mp.arena_bytes[MEMPLAN_ACT])};
  /* the layout is real: some activations share bytes */
  int shared = 0;
  for (int a = 0; a < p.n_tensors; a++)
    for (int b = a + 1; b < p.n_tensors; b++)
      shared +=
          in_arena[a] && in_arena[b] && p.tensors[a].alias < 0 &&
          p.tensors[b].alias < 0 &&
          kir_interp_plan_tensor(ip[1], a) == kir_interp_plan_tensor(ip[1], b);
  CHECK(shared > 0);
  fill(&p, ip);
  CHECK_EQ_INT(run_both(&p, ip, 0, p.bwd_end), p.bwd_end);
  same_node(&p, ip, g->loss, "loss");
  same_node(&p, ip, g->grad_norm, "grad_norm");
  for (int i = 0; i < g->n_outputs; i++)
    same_node(&p, ip, g->outputs[i], "output");
  for (int i = 0; i < g->n_param_grads; i++)
    same_node(&p, ip, g->grad_nodes[i], "gradient");
  CHECK(g->n_param_grads > 0);
  int nu = p.n_launches - p.bwd_end;
  CHECK(nu > 0);
  CHECK_EQ_INT(run_both(&p, ip, p.bwd_end, p.n_launches), nu);
  for (int t = 0; t < p.n_tensors; t++)
    if (p.tensors[t].role == KIR_T_PARAM && !same(&p, ip, t)) {
      fprintf(stderr, "parameter '%s' differs after the update\n",
              p.tensors[t].name);
      CHECK(!"updated parameters differ");
    }
  kir_interp_plan_free(ip[0]);
  kir_interp_plan_free(ip[1]);
  kiln_model_free(m);
  arena_free(&A);
}

TEST(mlp_planned_run_is_bit_identical) {
  planned_run("models/mlp.kiln", false);
  planned_run("models/mlp.kiln", true);
}

TEST(lenet5_planned_run_is_bit_identical) {
  planned_run("models/lenet5.kiln", false);
  planned_run("models/lenet5.kiln", true);
}

int main(void) {
  RUN(inplace_proof);
  RUN(checker_rejects_bad_layouts);
  RUN(every_model_plans_and_checks);
  RUN(mlp_planned_run_is_bit_identical);
  RUN(lenet5_planned_run_is_bit_identical);
  return TEST_SUMMARY();
}
