/* test_update.c — the optimizer as graph ops (ir_add_updates, ir/update.c)
 * and the reference backend that runs them (runtime/backend.h).
 *
 *   1. equivalence: N steps of every optimizer (and weight decay, L1,
 *      clipping, EMA) through the graph's update nodes on the "reference"
 *      backend leave the same parameters, BatchNorm buffers, optimizer
 *      state and EMA weights as the host-side path this test runs itself
 *      as the oracle: ref_exec forward/backward on a graph without update
 *      nodes, then train_clip_grad_norm, train_opt_step and
 *      train_ema_update, as the training loop did before the update moved
 *      into the graph. Models: models/mlp.kiln (dropout) and a small
 *      conv + batchnorm + dropout model. Also a non-finite gradient
 *      (skipped, nothing changes) and evaluation on the EMA weights;
 *   2. structure: one update node per parameter gradient, state names,
 *      grad_norm only with clipping, the verifier, the dump;
 *   3. counts: what internal nodes own is not a model parameter. */
#include "test.h"

#include "frontend/load.h"
#include "ref_fd.h"
#include "runtime/backend.h"
#include "runtime/reference/ref_exec.h"
#include "runtime/train/train.h"

#include <stdlib.h>

enum { STEPS = 4, SEED = 11 };

static const char *const bn_model =
    "model bnnet\n"
    "input image: f32[batch, 2, 6, 6]\n"
    "input label: i32[batch]\n"
    "c1 = conv2d(image, out=4, kernel=3, padding=1)\n"
    "bn1 = batchnorm(c1)\n"
    "act1 = relu(bn1)\n"
    "drop1 = dropout(act1, p=0.3)\n"
    "flat = flatten(drop1)\n"
    "fc = linear(flat, out=3)\n"
    "loss = cross_entropy(fc, label)\n";

static kiln_model *load_text(const char *text) {
  kiln_error err = {0};
  kiln_model *m = kiln_model_load_string("t.kiln", text, strlen(text), &err);
  if (!m)
    fprintf(stderr, "%s\n", err.message);
  return m;
}

static kiln_model *load_path(const char *path) {
  kiln_error err = {0};
  kiln_model *m = kiln_model_load_file(path, &err);
  if (!m)
    fprintf(stderr, "%s\n", err.message);
  return m;
}

/* ---- 1. equivalence with the host-side path ---- */

typedef struct opt_case {
  const char *what;
  ir_optim_kind kind;
  double momentum;
  bool nesterov;
  double wd;
  ir_wd_mode wd_mode;
  double l1, clip, ema;
} opt_case;

static const opt_case cases[] = {
    {"sgd", IR_OPTIM_SGD, 0, false, 0, IR_WD_L2, 0, 0, 0},
    {"momentum", IR_OPTIM_SGD, 0.9, false, 0, IR_WD_L2, 0, 0, 0},
    {"nesterov", IR_OPTIM_SGD, 0.9, true, 0, IR_WD_L2, 0, 0, 0},
    {"adagrad", IR_OPTIM_ADAGRAD, 0, false, 0, IR_WD_L2, 0, 0, 0},
    {"rmsprop", IR_OPTIM_RMSPROP, 0, false, 0, IR_WD_L2, 0, 0, 0},
    {"rmsprop momentum", IR_OPTIM_RMSPROP, 0.9, false, 0, IR_WD_L2, 0, 0, 0},
    {"adam", IR_OPTIM_ADAM, 0, false, 0, IR_WD_L2, 0, 0, 0},
    {"adamw", IR_OPTIM_ADAMW, 0, false, 0.05, IR_WD_DECOUPLED, 0, 0, 0},
    {"sgd l2 + l1", IR_OPTIM_SGD, 0.5, false, 0.01, IR_WD_L2, 0.001, 0, 0},
    {"adam clip + ema", IR_OPTIM_ADAM, 0, false, 0, IR_WD_L2, 0, 0.05, 0.9},
    {"rmsprop all", IR_OPTIM_RMSPROP, 0.9, false, 0.01, IR_WD_DECOUPLED, 0.001,
     0.05, 0.5},
};

static void apply_case(ir_train_cfg *c, const opt_case *oc) {
  c->optim.kind = oc->kind;
  c->optim.momentum = oc->momentum;
  c->optim.nesterov = oc->nesterov;
  c->optim.eps = oc->kind == IR_OPTIM_ADAGRAD ? 1e-10 : 1e-8;
  c->weight_decay = oc->wd;
  c->weight_decay_mode = oc->wd_mode;
  c->l1 = oc->l1;
  c->clip_grad_norm = oc->clip;
  c->ema = oc->ema;
}

/* The oracle's state for one trainable parameter. */
typedef struct host_slot {
  const ir_param *p; /* in the oracle's graph */
  float *w;          /* the oracle executor's storage */
  int64_t n;
  float *grad, *bufs, *ema_w;
  train_opt_state opt;
  train_ema ema;
} host_slot;

/* Fixed-seed values of the forward parameters, by position in graph order:
 * uniform(-0.1, 0.1), BatchNorm scale around 1, running variance 1. */
static void init_value(const ir_node *n, const ir_param *p, uint64_t index,
                       float *out) {
  fd_rng r = {SEED * 1000 + index};
  bool var = strcmp(p->role, "running_var") == 0;
  bool scale = n->op == IR_OP_BATCHNORM && strcmp(p->role, "weight") == 0;
  for (int64_t j = 0; j < ir_shape_numel(&p->shape, 1); j++)
    out[j] = var ? 1.0f : (float)(fd_uniform(&r, -0.1, 0.1) + scale);
}

/* Inputs of step `step`: pixels in [-1, 1) (NaN at pixel 0 when `nan`),
 * labels in [0, classes). */
static void make_batch(const ir_graph *g, int64_t batch, int64_t step, bool nan,
                       float *x, int32_t *y) {
  const ir_node *img = ir_graph_find(g, "image");
  int64_t nx = ir_shape_numel(&img->shape, batch);
  const ir_node *logits = g->loss->inputs[0];
  int64_t classes = logits->shape.dim[logits->shape.rank - 1];
  fd_rng r = {SEED + 77 * (uint64_t)step};
  for (int64_t i = 0; i < nx; i++)
    x[i] = (float)fd_uniform(&r, -1, 1);
  if (nan)
    x[0] = NAN;
  for (int64_t i = 0; i < batch; i++)
    y[i] = (int32_t)(fd_next(&r) % (uint64_t)classes);
}

static double rel_diff(float a, float b) {
  if (a == b || (isnan(a) && isnan(b)))
    return 0;
  return fabs((double)a - b) / fmax(fabs((double)a), fabs((double)b));
}

/* Compares every parameter of the backend's graph `g` (forward ones, and
 * update state by name) with the oracle's. Returns the largest relative
 * difference; *exact counts bit-identical tensors. */
static double compare_all(const ir_graph *g, const rt_backend_ops *ops,
                          rt_backend *b, const ir_graph *hg, ref_exec *hx,
                          host_slot *slots, int n_slots, int *exact,
                          int *total) {
  double worst = 0;
  for (int i = 0; i < g->n_nodes; i++) {
    const ir_node *n = g->nodes[i];
    for (int k = 0; k < n->n_params; k++) {
      const ir_param *p = &n->params[k];
      int64_t len = ir_shape_numel(&p->shape, 1);
      float *got = malloc(sizeof(float) * (size_t)len);
      ops->param_read(b, p, got);
      const float *want = NULL;
      if (n->op != IR_OP_UPDATE) {
        want = ref_exec_param(hx, &hg->nodes[i]->params[k], NULL);
      } else {
        const ir_param *owner = ir_update_param(n);
        for (int s = 0; s < n_slots; s++) {
          if (strcmp(slots[s].p->name, owner->name) != 0)
            continue;
          if (strcmp(p->role, "ema") == 0)
            want = slots[s].ema_w;
          for (int q = 0; q < slots[s].opt.n_bufs; q++)
            if (strcmp(slots[s].opt.role[q], p->role) == 0)
              want = slots[s].opt.buf[q];
        }
      }
      CHECK(want != NULL);
      if (want) {
        bool same = true;
        for (int64_t j = 0; j < len; j++) {
          double d = rel_diff(got[j], want[j]);
          worst = d > worst || isnan(d) ? d : worst;
          same &= got[j] == want[j];
        }
        *exact += same;
        (*total)++;
      }
      free(got);
    }
  }
  return worst;
}

/* STEPS training steps of model `text` (or the file `path`) under case
 * oc, on both paths; then, with clipping and `nan_step`, a step whose
 * gradient is NaN (skipped), and with EMA an evaluation. (A NaN input
 * would also poison BatchNorm's running statistics, on both paths alike,
 * and with them the evaluation: models with BatchNorm skip that step.) */
static void check_case(const char *text, const char *path, int64_t batch,
                       bool nan_step, const opt_case *oc) {
  kiln_model *m = text ? load_text(text) : load_path(path);
  kiln_model *hm = text ? load_text(text) : load_path(path);
  CHECK(m && hm);
  if (!m || !hm) {
    kiln_model_free(m);
    kiln_model_free(hm);
    return;
  }
  kiln_error err = {0};
  ir_graph *g = &m->g, *hg = &hm->g;
  apply_case(&g->train, oc);
  apply_case(&hg->train, oc);
  CHECK_EQ_INT(ir_autodiff(g, &err), KILN_OK);
  CHECK_EQ_INT(ir_add_updates(g, &err), KILN_OK);
  CHECK_EQ_INT(ir_autodiff(hg, &err), KILN_OK);
  const rt_backend_ops *ops = rt_backend_find("reference");
  KILN_ASSERT(ops);
  rt_backend *b = ops->create(g, batch, &err);
  ref_exec *hx = ref_exec_new(hg, batch, &err);
  KILN_ASSERT(b && hx);

  /* The same initial values on both sides; state zero, EMA = weights. */
  uint64_t index = 0;
  for (int i = 0; i < g->n_nodes; i++) {
    const ir_node *n = g->nodes[i];
    for (int k = 0; k < n->n_params; k++, index++) {
      const ir_param *p = &n->params[k];
      float *v = calloc((size_t)ir_shape_numel(&p->shape, 1), sizeof(float));
      if (n->op == IR_OP_UPDATE && strcmp(p->role, "ema") == 0)
        ops->param_read(b, ir_update_param(n), v);
      else if (n->op != IR_OP_UPDATE)
        init_value(n, p, index, v);
      ops->param_write(b, p, v);
      if (n->op != IR_OP_UPDATE)
        memcpy(ref_exec_param(hx, &hg->nodes[i]->params[k], NULL), v,
               sizeof(float) * (size_t)ir_shape_numel(&p->shape, 1));
      free(v);
    }
  }
  int n_slots = hg->n_param_grads;
  host_slot *slots = calloc((size_t)n_slots, sizeof *slots);
  float **grads = calloc((size_t)n_slots, sizeof *grads);
  int64_t *lens = calloc((size_t)n_slots, sizeof *lens);
  const char *roles[TRAIN_OPT_MAX_BUFS];
  int n_bufs = train_opt_buf_roles(&hg->train, roles);
  for (int k = 0; k < n_slots; k++) {
    host_slot *s = &slots[k];
    s->p = hg->grad_params[k];
    s->w = ref_exec_param(hx, s->p, &s->n);
    s->grad = malloc(sizeof(float) * (size_t)s->n);
    s->bufs = malloc(sizeof(float) * (size_t)(s->n * (n_bufs + 1)));
    s->ema_w = malloc(sizeof(float) * (size_t)s->n);
    train_opt_state_init(&s->opt, &hg->train, s->n, s->bufs);
    train_ema_init(&s->ema, s->ema_w, s->w, s->n);
    grads[k] = s->grad;
    lens[k] = s->n;
  }

  const ir_node *img = ir_graph_find(g, "image");
  float *x = malloc(sizeof(float) * (size_t)ir_shape_numel(&img->shape, batch));
  int32_t *y = malloc(sizeof(int32_t) * (size_t)batch);
  bool clip = oc->clip > 0;
  int steps = STEPS + (clip && nan_step ? 1 : 0);
  for (int step = 0; step < steps; step++) {
    /* with clipping, the last step has a NaN gradient: skipped */
    bool nan = step == STEPS;
    make_batch(g, batch, step, nan, x, y);
    double lr = 0.05 * (1.0 - 0.1 * step);
    /* the graph path, through the backend interface */
    rt_run run = {
        .training = true, .update = true, .seed = SEED, .step = step, .lr = lr};
    rt_result res = {0};
    CHECK_EQ_INT(ops->set_input(b, img, x, &err), KILN_OK);
    CHECK_EQ_INT(ops->set_input(b, ir_graph_find(g, "label"), y, &err),
                 KILN_OK);
    CHECK_EQ_INT(ops->run(b, &run, &res, &err), KILN_OK);
    /* the oracle: the old loop's update() */
    rt_run hrun = {.training = true, .seed = SEED, .step = step};
    CHECK_EQ_INT(ref_exec_set_input_f32(hx, "image", x, &err), KILN_OK);
    CHECK_EQ_INT(ref_exec_set_input_i32(hx, "label", y, &err), KILN_OK);
    CHECK_EQ_INT(ref_exec_run(hx, &hrun, NULL, &err), KILN_OK);
    CHECK(res.loss == ref_exec_loss(hx) || (nan && isnan(res.loss)));
    for (int k = 0; k < n_slots; k++) {
      const double *gr = ref_exec_param_grad(hx, slots[k].p);
      for (int64_t i = 0; i < slots[k].n; i++)
        slots[k].grad[i] = (float)gr[i];
    }
    bool skipped = false;
    if (clip) {
      double norm = train_clip_grad_norm(grads, lens, n_slots, oc->clip);
      skipped = !isfinite(norm);
      CHECK(res.grad_norm == norm || (skipped && !isfinite(res.grad_norm)));
      CHECK(!skipped || nan);
    } else {
      CHECK(res.grad_norm == 0);
    }
    CHECK(res.skipped == skipped);
    for (int k = 0; k < n_slots && !skipped; k++) {
      train_opt_step(&hg->train, &slots[k].opt, slots[k].w, slots[k].grad, lr);
      if (oc->ema > 0)
        train_ema_update(&slots[k].ema, slots[k].w, oc->ema);
    }
    int exact = 0, total = 0;
    double worst =
        compare_all(g, ops, b, hg, hx, slots, n_slots, &exact, &total);
    /* Both paths do the same float32 operations in the same order, so
     * they agree bit for bit; 1e-6 is the contract a reordering may use. */
    if (!(worst <= 1e-6) || exact != total)
      fprintf(stderr,
              "%s, %s, step %d: %d of %d tensors differ, by up to %.3g "
              "relative\n",
              g->name, oc->what, step, total - exact, total, worst);
    CHECK(worst <= 1e-6);
    CHECK_EQ_INT(exact, total);
  }

  /* Evaluation on the EMA weights = evaluation with them as the weights. */
  if (oc->ema > 0) {
    make_batch(g, batch, 99, false, x, y);
    rt_run eval = {.ema = true, .seed = SEED, .step = 0};
    rt_result res = {0};
    CHECK_EQ_INT(ops->set_input(b, img, x, &err), KILN_OK);
    CHECK_EQ_INT(ops->set_input(b, ir_graph_find(g, "label"), y, &err),
                 KILN_OK);
    CHECK_EQ_INT(ops->run(b, &eval, &res, &err), KILN_OK);
    for (int k = 0; k < n_slots; k++)
      train_ema_swap(&slots[k].ema, slots[k].w);
    rt_run heval = {.seed = SEED, .step = 0};
    CHECK_EQ_INT(ref_exec_set_input_f32(hx, "image", x, &err), KILN_OK);
    CHECK_EQ_INT(ref_exec_set_input_i32(hx, "label", y, &err), KILN_OK);
    CHECK_EQ_INT(ref_exec_run(hx, &heval, NULL, &err), KILN_OK);
    CHECK(res.loss == ref_exec_loss(hx));
    /* and without ema the live weights, which differ */
    rt_run live = {.seed = SEED, .step = 0};
    rt_result lres = {0};
    CHECK_EQ_INT(ops->run(b, &live, &lres, &err), KILN_OK);
    CHECK(lres.loss != res.loss);
  }

  for (int k = 0; k < n_slots; k++) {
    free(slots[k].grad);
    free(slots[k].bufs);
    free(slots[k].ema_w);
  }
  free(slots);
  free(grads);
  free(lens);
  free(x);
  free(y);
  ops->destroy(b);
  ref_exec_free(hx);
  kiln_model_free(m);
  kiln_model_free(hm);
}

TEST(test_equivalence_mlp) {
  for (size_t c = 0; c < ARRAY_LEN(cases); c++)
    check_case(NULL, "models/mlp.kiln", 4, true, &cases[c]);
}

TEST(test_equivalence_bn_dropout) {
  for (size_t c = 0; c < ARRAY_LEN(cases); c++)
    check_case(bn_model, NULL, 5, false, &cases[c]);
}

/* An update run needs update nodes, and EMA is for evaluation. */
TEST(test_run_errors) {
  kiln_model *m = load_text(bn_model);
  CHECK(m);
  if (!m)
    return;
  kiln_error err = {0};
  CHECK_EQ_INT(ir_add_updates(&m->g, &err), KILN_ERR_INVALID);
  CHECK_STR_CONTAINS(err.message, "after ir_autodiff");
  CHECK_EQ_INT(ir_autodiff(&m->g, &err), KILN_OK);
  ref_exec *ex = ref_exec_new(&m->g, 2, &err);
  rt_run upd = {.training = true, .update = true, .lr = 0.1};
  CHECK_EQ_INT(ref_exec_run(ex, &upd, NULL, &err), KILN_ERR_INVALID);
  CHECK_STR_CONTAINS(err.message, "ir_add_updates");
  rt_run ema = {.training = true, .ema = true};
  CHECK_EQ_INT(ref_exec_run(ex, &ema, NULL, &err), KILN_ERR_INVALID);
  ref_exec_free(ex);
  kiln_model_free(m);
}

/* ---- 2. structure ---- */

static void check_structure(const opt_case *oc, int n_state,
                            const char *const *roles) {
  kiln_model *m = load_path("models/mlp.kiln");
  CHECK(m);
  if (!m)
    return;
  kiln_error err = {0};
  ir_graph *g = &m->g;
  apply_case(&g->train, oc);
  CHECK_EQ_INT(ir_autodiff(g, &err), KILN_OK);
  CHECK_EQ_INT(ir_add_updates(g, &err), KILN_OK);
  CHECK_EQ_INT(g->n_updates, g->n_param_grads);
  CHECK_EQ_INT(g->n_updates, 6);
  CHECK((g->grad_norm != NULL) == (oc->clip > 0));
  if (g->grad_norm) {
    CHECK(strcmp(g->grad_norm->name, "grad_norm") == 0);
    CHECK_EQ_INT(g->grad_norm->n_inputs, g->n_param_grads);
    CHECK_EQ_INT(g->grad_norm->shape.rank, 0);
  }
  int n_update_nodes = 0;
  for (int i = 0; i < g->n_nodes; i++)
    n_update_nodes += g->nodes[i]->op == IR_OP_UPDATE;
  CHECK_EQ_INT(n_update_nodes, g->n_param_grads);
  for (int k = 0; k < g->n_updates; k++) {
    const ir_node *u = g->updates[k];
    const ir_param *p = g->grad_params[k];
    char want[128];
    snprintf(want, sizeof want, "update/%s", p->name);
    CHECK(strcmp(u->name, want) == 0);
    CHECK(ir_update_param(u) == p);
    CHECK(u->inputs[0] == g->grad_nodes[k]);
    CHECK_EQ_INT(u->n_inputs, oc->clip > 0 ? 2 : 1);
    CHECK_EQ_INT(u->shape.rank, 0);
    CHECK_EQ_INT(u->n_params, n_state);
    for (int s = 0; s < u->n_params && s < n_state; s++) {
      snprintf(want, sizeof want, "%s.%s", p->name, roles[s]);
      CHECK(strcmp(u->params[s].name, want) == 0);
      CHECK(strcmp(u->params[s].role, roles[s]) == 0);
      CHECK(!u->params[s].trainable && u->params[s].init == IR_INIT_ZEROS);
      CHECK(ir_shape_eq(&u->params[s].shape, &p->shape));
    }
  }
  CHECK_EQ_INT(ir_verify(g, &err), KILN_OK);
  /* The dump shows the update nodes and their state. */
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  kiln_model_dump(m, f);
  fclose(f);
  CHECK_STR_CONTAINS(text, oc->clip > 0
                               ? "update/fc1.weight = update(grad/fc1/weight, "
                                 "grad_norm)  # f32[]"
                               : "update/fc1.weight = update(grad/fc1/weight)"
                                 "  # f32[]");
  if (n_state) {
    char want[128];
    snprintf(want, sizeof want, "state fc3.bias.%s", roles[0]);
    CHECK_STR_CONTAINS(text, want);
  }
  if (oc->clip > 0)
    CHECK_STR_CONTAINS(text, "grad_norm = grad_norm(grad/fc3/weight");
  free(text);
  /* The verifier catches an update reading another parameter's gradient. */
  ir_node *u = g->updates[0];
  ir_node *saved = u->inputs[0];
  u->inputs[0] = g->grad_nodes[1];
  CHECK_EQ_INT(ir_verify(g, &err), KILN_ERR_INTERNAL);
  CHECK_STR_CONTAINS(err.message, "is not the gradient of");
  u->inputs[0] = saved;
  int wrt = u->wrt;
  u->wrt = -1 - u->fwd->n_params;
  CHECK_EQ_INT(ir_verify(g, &err), KILN_ERR_INTERNAL);
  u->wrt = wrt;
  CHECK_EQ_INT(ir_verify(g, &err), KILN_OK);
  kiln_model_free(m);
}

TEST(test_structure) {
  static const char *const adam[] = {"exp_avg", "exp_avg_sq", "ema"};
  static const char *const rms[] = {"square_avg", "momentum"};
  static const char *const mom[] = {"momentum"};
  check_structure(&cases[0], 0, NULL); /* sgd: no state */
  check_structure(&cases[1], 1, mom);  /* momentum */
  check_structure(&cases[5], 2, rms);  /* rmsprop with momentum */
  check_structure(&cases[9], 3, adam); /* adam, clipping, EMA */
  check_structure(&cases[10], 3,
                  (const char *const[]){"square_avg", "momentum", "ema"});
}

/* A layer called grad_norm keeps its name; the pass's node moves aside. */
TEST(test_grad_norm_name_taken) {
  kiln_model *m = load_text("model t\ninput x: f32[batch, 3]\n"
                            "input label: i32[batch]\n"
                            "grad_norm = linear(x, out=2)\n"
                            "loss = cross_entropy(grad_norm, label)\n");
  CHECK(m);
  if (!m)
    return;
  kiln_error err = {0};
  m->g.train.clip_grad_norm = 1;
  CHECK_EQ_INT(ir_autodiff(&m->g, &err), KILN_OK);
  CHECK_EQ_INT(ir_add_updates(&m->g, &err), KILN_OK);
  CHECK(m->g.grad_norm &&
        strcmp(m->g.grad_norm->name, "update/grad_norm") == 0);
  kiln_model_free(m);
}

/* Model files cannot name the internal ops. */
TEST(test_ops_are_internal) {
  kiln_error err = {0};
  const char *text = "model t\ninput x: f32[batch, 3]\ny = update(x)\n";
  kiln_model *m = kiln_model_load_string("t", text, strlen(text), &err);
  CHECK(m == NULL);
  CHECK_STR_CONTAINS(err.message, "unknown op or block 'update'");
  kiln_model_free(m);
  text = "model t\ninput x: f32[batch, 3]\ny = grad_norm(x)\n";
  m = kiln_model_load_string("t", text, strlen(text), &err);
  CHECK(m == NULL);
  CHECK_STR_CONTAINS(err.message, "unknown op or block 'grad_norm'");
  kiln_model_free(m);
  CHECK(ir_op_table[IR_OP_UPDATE].internal);
  CHECK(ir_op_table[IR_OP_GRAD_NORM].internal);
}

/* ---- 3. counts ---- */

TEST(test_counts_leave_out_state) {
  kiln_model *m = load_text(bn_model);
  CHECK(m);
  if (!m)
    return;
  int64_t params = kiln_model_param_count(m);
  int64_t buffers = kiln_model_buffer_count(m);
  CHECK_EQ_INT(params, 4 * 2 * 9 + 4 + 4 + 4 + 3 * 144 + 3);
  CHECK_EQ_INT(buffers, 8);
  char *before = NULL, *after = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&before, &len);
  kiln_model_summary(m, f);
  fclose(f);
  kiln_error err = {0};
  m->g.train.optim.kind = IR_OPTIM_ADAM;
  m->g.train.ema = 0.99;
  m->g.train.clip_grad_norm = 1;
  CHECK_EQ_INT(ir_autodiff(&m->g, &err), KILN_OK);
  CHECK_EQ_INT(ir_add_updates(&m->g, &err), KILN_OK);
  CHECK_EQ_INT(kiln_model_param_count(m), params);
  CHECK_EQ_INT(kiln_model_buffer_count(m), buffers);
  for (int k = 0; k < m->g.n_updates; k++) {
    CHECK_EQ_INT(ir_node_param_count(m->g.updates[k], true), 0);
    CHECK_EQ_INT(ir_node_param_count(m->g.updates[k], false), 0);
  }
  f = open_memstream(&after, &len);
  kiln_model_summary(m, f);
  fclose(f);
  /* the parameter lines below the table are the same */
  static const char *const lines[] = {
      "\nTotal params: ", "\nTrainable params: ", "\nNon-trainable (buffers): ",
      "\nParameter memory (with buffers): "};
  for (size_t k = 0; k < ARRAY_LEN(lines); k++) {
    const char *lb = strstr(before, lines[k]), *la = strstr(after, lines[k]);
    CHECK(lb && la);
    if (lb && la) {
      size_t nb = strcspn(lb + 1, "\n"), na = strcspn(la + 1, "\n");
      CHECK(nb == na && strncmp(lb, la, nb + 1) == 0);
    }
  }
  CHECK_STR_CONTAINS(before, "Total params: 519\n");
  free(before);
  free(after);
  kiln_model_free(m);
}

/* ---- the backend table ---- */

TEST(test_backend_table) {
  const rt_backend_ops *ops = rt_backend_find("reference");
  CHECK(ops && strcmp(ops->name, "reference") == 0);
  CHECK(rt_backend_find("nope") == NULL);
  CHECK(rt_backend_find(NULL) == NULL);
  CHECK_STR_CONTAINS(rt_backend_names(), "reference");
  kiln_model *m = load_text(bn_model);
  CHECK(m);
  if (!m)
    return;
  kiln_error err = {0};
  kiln_train_opts o = {.backend = "nope"};
  CHECK_EQ_INT(kiln_train(m, &o, &err), KILN_ERR_INVALID);
  CHECK_STR_CONTAINS(err.message, "unknown backend 'nope'; available: "
                                  "reference");
  /* a forward-only run on the backend reads back outputs and gradients */
  CHECK_EQ_INT(ir_autodiff(&m->g, &err), KILN_OK);
  rt_backend *b = ops->create(&m->g, 2, &err);
  CHECK(b && b->ops == ops);
  float x[2 * 72] = {0};
  int32_t y[2] = {0, 2};
  const ir_node *fc = ir_graph_find(&m->g, "fc");
  CHECK_EQ_INT(ops->set_input(b, ir_graph_find(&m->g, "image"), x, &err),
               KILN_OK);
  CHECK_EQ_INT(ops->set_input(b, ir_graph_find(&m->g, "label"), y, &err),
               KILN_OK);
  rt_run run = {.training = true, .seed = 1};
  rt_result res = {0};
  CHECK_EQ_INT(ops->run(b, &run, &res, &err), KILN_OK);
  CHECK_NEAR(res.loss, log(3.0), 1e-12); /* zero weights: uniform logits */
  float z[6] = {1};
  CHECK_EQ_INT(ops->read_output(b, fc, z, &err), KILN_OK);
  CHECK(z[0] == 0 && z[5] == 0);
  float gb[3];
  CHECK(ops->grad_read(b, &fc->params[1], gb));
  CHECK_NEAR(gb[0], (2.0 / 3 - 1) / 2, 1e-6); /* labels 0 and 2 */
  CHECK_NEAR(gb[1], (2.0 / 3) / 2, 1e-6);
  CHECK(!ops->grad_read(b, &ir_graph_find(&m->g, "bn1")->params[2], gb));
  ops->destroy(b);
  kiln_model_free(m);
}

int main(void) {
  RUN(test_equivalence_mlp);
  RUN(test_equivalence_bn_dropout);
  RUN(test_run_errors);
  RUN(test_structure);
  RUN(test_grad_norm_name_taken);
  RUN(test_ops_are_internal);
  RUN(test_counts_leave_out_state);
  RUN(test_backend_table);
  return TEST_SUMMARY();
}
