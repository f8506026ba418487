/* train_loop.c — the training loop on the reference executor: kiln_train.
 *
 * One run: autodiff the graph (once per model), create a ref_exec at the
 * batch size, initialise every parameter, load and fit the data, then per
 * step fill a batch, run forward and backward, clip, schedule the LR, take
 * an optimizer step per trainable parameter and update the EMA; after every
 * epoch evaluate on the validation set, and at the end on the test set.
 *
 * The executor's buffers are sized for one batch, so only full batches are
 * run: the last partial batch of every epoch (and of an evaluation set) is
 * skipped, and the run says so once. */
#include "frontend/load.h"
#include "runtime/data/data.h"
#include "runtime/reference/ref_exec.h"
#include "runtime/train/train.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { TRAIN_LOG_EVERY = 50 };

/* A trainable, unfrozen parameter with its float32 gradient, optimizer
 * state and EMA weights (one malloc per slot, pointed into). */
typedef struct train_slot {
  const ir_param *p;
  float *w; /* the executor's float32 storage */
  int64_t n;
  float *grad;
  train_opt_state opt;
  train_ema ema;
  float *mem;
} train_slot;

typedef struct train_run {
  ir_graph *g;
  ir_train_cfg cfg;
  int64_t batch;
  uint64_t seed;
  ref_exec *ex;
  const ir_node *x_in, *y_in, *logits;
  int n_classes;
  data_sets d;
  bool data_loaded;
  data_iter it;
  bool iter_ready;
  float *x;
  int32_t *y;
  train_slot *slots;
  float **grads; /* slots[k].grad, for train_clip_grad_norm */
  int64_t *lens;
  int n_slots;
  FILE *log, *csv;
} train_run;

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static kiln_status oom(kiln_error *err) {
  return diag_error(err, KILN_ERR_INTERNAL, (kiln_loc){0}, "out of memory");
}

/* The graph's inputs, found by dtype: the float one takes the images, the
 * integer one the labels; and the logits, the loss's first input. */
static kiln_status find_io(train_run *r, kiln_error *err) {
  ir_graph *g = r->g;
  for (int i = 0; i < g->n_nodes; i++) {
    const ir_node *n = g->nodes[i];
    if (n->op != IR_OP_INPUT)
      continue;
    if (ir_dtype_is_float(n->dtype) && !r->x_in)
      r->x_in = n;
    else if (!ir_dtype_is_float(n->dtype) && !r->y_in)
      r->y_in = n;
  }
  if (!r->x_in || !r->y_in)
    return diag_error(err, KILN_ERR_INVALID, (kiln_loc){0},
                      "model '%s': training needs a float input (the "
                      "images) and an integer input (the labels)",
                      g->name ? g->name : "");
  r->logits = g->loss->inputs[0];
  const ir_shape *s = &r->logits->shape;
  r->n_classes = s->rank > 0 ? (int)s->dim[s->rank - 1] : 1;
  return KILN_OK;
}

/* Every parameter by train_init_param, indexed by its position over all
 * nodes in graph order (buffers included, so an index never depends on
 * which layers are frozen); then the trainable ones get their slots. */
static kiln_status init_params(train_run *r, kiln_error *err) {
  ir_graph *g = r->g;
  uint64_t index = 0;
  for (int i = 0; i < g->n_nodes; i++) {
    const ir_node *n = g->nodes[i];
    for (int k = 0; k < n->n_params; k++, index++) {
      const ir_param *p = &n->params[k];
      int64_t len = 0;
      float *w = ref_exec_param(r->ex, p, &len);
      KILN_ASSERT(w);
      ir_init init = p->init;
      if (init == IR_INIT_AUTO)
        init = train_init_auto(train_init_next_activation(g, n));
      train_init_param(p, init, r->seed, index, w);
    }
  }
  r->n_slots = g->n_param_grads;
  r->slots = calloc((size_t)r->n_slots + 1, sizeof *r->slots);
  r->grads = calloc((size_t)r->n_slots + 1, sizeof *r->grads);
  r->lens = calloc((size_t)r->n_slots + 1, sizeof *r->lens);
  if (!r->slots || !r->grads || !r->lens)
    return oom(err);
  const char *roles[TRAIN_OPT_MAX_BUFS];
  int n_bufs = train_opt_buf_roles(&r->cfg, roles);
  for (int k = 0; k < r->n_slots; k++) {
    train_slot *s = &r->slots[k];
    s->p = g->grad_params[k];
    s->w = ref_exec_param(r->ex, s->p, &s->n);
    KILN_ASSERT(s->w);
    /* grad, optimizer buffers, EMA weights */
    s->mem = malloc(sizeof(float) * (size_t)s->n * (size_t)(2 + n_bufs));
    if (!s->mem)
      return oom(err);
    s->grad = s->mem;
    train_opt_state_init(&s->opt, &r->cfg, s->n, s->mem + 2 * s->n);
    if (r->cfg.ema > 0)
      train_ema_init(&s->ema, s->mem + s->n, s->w, s->n);
    r->grads[k] = s->grad;
    r->lens[k] = s->n;
  }
  return KILN_OK;
}

static kiln_status load_data(train_run *r, kiln_error *err) {
  kiln_status st = data_sets_load(&r->d, &r->g->data, r->seed, err);
  if (st)
    return st;
  r->data_loaded = true;
  const ir_shape *s = &r->x_in->shape;
  st = data_sets_fit(&r->d, s->rank - 1, s->dim + 1, r->n_classes, err);
  if (st)
    return st;
  if (r->d.train.n < r->batch)
    return diag_error(err, KILN_ERR_INVALID, (kiln_loc){0},
                      "the training set has %lld examples, fewer than one "
                      "batch of %lld",
                      (long long)r->d.train.n, (long long)r->batch);
  st = data_iter_init(&r->it, &r->d.train, r->batch, &r->g->data, r->seed, err);
  if (st)
    return st;
  r->iter_ready = true;
  r->x = malloc(sizeof(float) * (size_t)(r->batch * r->d.train.example_size));
  r->y = malloc(sizeof(int32_t) * (size_t)r->batch);
  return r->x && r->y ? KILN_OK : oom(err);
}

/* Sets the batch in r->x/r->y, runs, and adds the loss and the number of
 * correct argmax predictions to *loss and *correct. */
static kiln_status run_batch(train_run *r, bool training, int64_t step,
                             double *loss, int64_t *correct, kiln_error *err) {
  kiln_status st = ref_exec_set_input_f32(r->ex, r->x_in->name, r->x, err);
  if (!st)
    st = ref_exec_set_input_i32(r->ex, r->y_in->name, r->y, err);
  if (!st)
    st = training ? ref_exec_run(r->ex, true, r->seed, step, err)
                  : ref_exec_run_forward(r->ex, false, r->seed, step, err);
  if (st)
    return st;
  *loss += ref_exec_loss(r->ex);
  int64_t numel = 0;
  const double *z = ref_exec_output(r->ex, r->logits, &numel);
  int64_t c = r->n_classes;
  if (!z || numel != r->batch * c)
    return KILN_OK; /* not one row of logits per example: no accuracy */
  for (int64_t i = 0; i < r->batch; i++) {
    int64_t best = 0;
    for (int64_t j = 1; j < c; j++)
      if (z[i * c + j] > z[i * c + best])
        best = j;
    *correct += best == r->y[i];
  }
  return KILN_OK;
}

/* EMA weights in (and back out): evaluation sees the averaged weights. */
static void swap_ema(train_run *r) {
  if (r->cfg.ema > 0)
    for (int k = 0; k < r->n_slots; k++)
      train_ema_swap(&r->slots[k].ema, r->slots[k].w);
}

/* Mean loss and accuracy (%) over the full batches of `set`; false when it
 * has none. */
static kiln_status evaluate(train_run *r, const data_set *set, int64_t step,
                            double *loss, double *acc, bool *done,
                            kiln_error *err) {
  *done = false;
  int64_t steps = set->n / r->batch;
  if (steps == 0)
    return KILN_OK;
  data_iter it;
  kiln_status st = data_iter_init(&it, set, r->batch, NULL, r->seed, err);
  if (st)
    return st;
  swap_ema(r);
  double sum = 0;
  int64_t correct = 0;
  for (int64_t s = 0; s < steps && !st; s++) {
    data_iter_fill(&it, s, r->x, r->y);
    st = run_batch(r, false, step, &sum, &correct, err);
  }
  swap_ema(r);
  data_iter_free(&it);
  *loss = sum / (double)steps;
  *acc = 100.0 * (double)correct / (double)(steps * r->batch);
  *done = !st;
  return st;
}

/* One optimizer step from the executor's gradients; false in *skipped when
 * clipping found a non-finite norm (the step is then not taken). */
static void update(train_run *r, double lr, bool *skipped) {
  for (int k = 0; k < r->n_slots; k++) {
    train_slot *s = &r->slots[k];
    const double *g = ref_exec_param_grad(r->ex, s->p);
    KILN_ASSERT(g);
    for (int64_t i = 0; i < s->n; i++)
      s->grad[i] = (float)g[i];
  }
  *skipped = false;
  if (r->cfg.clip_grad_norm > 0) {
    double norm = train_clip_grad_norm(r->grads, r->lens, r->n_slots,
                                       r->cfg.clip_grad_norm);
    if (!isfinite(norm)) {
      *skipped = true;
      return;
    }
  }
  for (int k = 0; k < r->n_slots; k++) {
    train_slot *s = &r->slots[k];
    train_opt_step(&r->cfg, &s->opt, s->w, s->grad, lr);
    if (r->cfg.ema > 0)
      train_ema_update(&s->ema, s->w, r->cfg.ema);
  }
}

static void csv_row(train_run *r, int64_t epoch, int64_t step, double lr,
                    double loss, double acc, bool has_val, double vloss,
                    double vacc) {
  if (!r->csv)
    return;
  fprintf(r->csv, "%lld,%lld,%.6g,%.6f,%.4f,", (long long)epoch,
          (long long)step, lr, loss, acc);
  if (has_val)
    fprintf(r->csv, "%.6f,%.4f\n", vloss, vacc);
  else
    fputs(",\n", r->csv);
}

/* The epochs. `total` counts steps over the run, for the schedule. */
static kiln_status train_epochs(train_run *r, int64_t max_steps,
                                kiln_error *err) {
  int64_t per_epoch = r->d.train.n / r->batch;
  int64_t epochs = r->cfg.epochs, total = epochs * per_epoch, step = 0;
  double base_lr = train_lr_base(&r->cfg, r->batch);
  if (r->log && r->d.train.n % r->batch)
    fprintf(r->log,
            "note: the last %lld training examples of each epoch are "
            "skipped: the reference executor runs whole batches of %lld\n",
            (long long)(r->d.train.n % r->batch), (long long)r->batch);
  for (int64_t e = 0; e < epochs; e++) {
    data_iter_set_epoch(&r->it, (uint64_t)e);
    double sum = 0, t0 = now_s(), lr = base_lr;
    int64_t correct = 0, seen = 0;
    bool stop = false;
    for (int64_t s = 0; s < per_epoch && !stop; s++, step++) {
      data_iter_fill(&r->it, s, r->x, r->y);
      kiln_status st = run_batch(r, true, step, &sum, &correct, err);
      if (st)
        return st;
      seen++;
      lr = train_lr_at(&r->cfg.schedule, base_lr, step, per_epoch, total);
      bool skipped;
      update(r, lr, &skipped);
      if (skipped && r->log)
        fprintf(r->log, "step %lld: gradient norm is not finite; skipped\n",
                (long long)step + 1);
      stop = max_steps > 0 && step + 1 >= max_steps;
      bool end = s + 1 == per_epoch || stop;
      /* The first step is logged too, so the starting loss is on record. */
      if (step == 0 || (step + 1) % TRAIN_LOG_EVERY == 0 || end) {
        double loss = sum / (double)seen;
        double acc = 100.0 * (double)correct / (double)(seen * r->batch);
        double dt = now_s() - t0;
        if (r->log)
          fprintf(r->log,
                  "epoch %lld/%lld step %lld/%lld loss %.4f acc %.1f%% lr "
                  "%.4g %.0f img/s\n",
                  (long long)e + 1, (long long)epochs, (long long)s + 1,
                  (long long)per_epoch, loss, acc, lr,
                  dt > 0 ? (double)(seen * r->batch) / dt : 0.0);
        double vloss = 0, vacc = 0;
        bool has_val = false;
        if (end) {
          st =
              evaluate(r, &r->d.validation, step, &vloss, &vacc, &has_val, err);
          if (st)
            return st;
          if (has_val && r->log)
            fprintf(r->log, "epoch %lld: val loss %.4f acc %.1f%%\n",
                    (long long)e + 1, vloss, vacc);
        }
        csv_row(r, e + 1, step + 1, lr, loss, acc, has_val, vloss, vacc);
        sum = 0, correct = 0, seen = 0, t0 = now_s();
      }
    }
    if (stop)
      break;
  }
  double tloss = 0, tacc = 0;
  bool has_test = false;
  kiln_status st = evaluate(r, &r->d.test, step, &tloss, &tacc, &has_test, err);
  if (!st && has_test && r->log)
    fprintf(r->log, "test loss %.4f acc %.1f%%\n", tloss, tacc);
  return st;
}

/* The trained values of every parameter, kept in the model's arena. */
static void keep_weights(kiln_model *m, train_run *r) {
  ir_graph *g = &m->g;
  int n_params = 0;
  for (int i = 0; i < g->n_nodes; i++)
    n_params += g->nodes[i]->n_params;
  m->trained = ARENA_ARRAY(&m->a, float *, n_params + 1);
  int index = 0;
  for (int i = 0; i < g->n_nodes; i++)
    for (int k = 0; k < g->nodes[i]->n_params; k++, index++) {
      int64_t n = 0;
      float *w = ref_exec_param(r->ex, &g->nodes[i]->params[k], &n);
      m->trained[index] = ARENA_ARRAY(&m->a, float, n);
      memcpy(m->trained[index], w, sizeof(float) * (size_t)n);
    }
}

static void run_free(train_run *r) {
  for (int k = 0; r->slots && k < r->n_slots; k++)
    free(r->slots[k].mem);
  free(r->slots);
  free(r->grads);
  free(r->lens);
  free(r->x);
  free(r->y);
  if (r->iter_ready)
    data_iter_free(&r->it);
  if (r->data_loaded)
    data_sets_free(&r->d);
  ref_exec_free(r->ex);
}

/* The options over the model's train section. */
static kiln_status apply_opts(train_run *r, const kiln_train_opts *o,
                              kiln_error *err) {
  if (o->epochs < 0 || o->batch < 0 || o->max_steps < 0 || !(o->lr >= 0) ||
      isinf(o->lr))
    return diag_error(err, KILN_ERR_INVALID, (kiln_loc){0},
                      "epochs, batch and max_steps must be positive and lr a "
                      "positive number");
  if (o->epochs)
    r->cfg.epochs = o->epochs;
  if (o->batch)
    r->cfg.batch = o->batch;
  if (o->lr > 0)
    r->cfg.optim.lr = o->lr;
  if (o->has_seed)
    r->cfg.seed = o->seed;
  r->batch = r->cfg.batch;
  r->seed = r->cfg.seed;
  return KILN_OK;
}

KILN_API kiln_status kiln_train(kiln_model *m, const kiln_train_opts *o,
                                kiln_error *err) {
  kiln_error local;
  if (!err)
    err = &local;
  err->status = KILN_OK;
  err->message[0] = '\0';
  kiln_train_opts none = {0};
  if (!o)
    o = &none;
  ir_graph *g = &m->g;
  train_run r = {.g = g, .cfg = g->train, .log = o->log};
  kiln_status st = apply_opts(&r, o, err);
  if (st)
    return st;
  if (!g->loss)
    return diag_error(err, KILN_ERR_INVALID, (kiln_loc){0},
                      "model '%s' has no loss layer: training needs one "
                      "(e.g. loss = cross_entropy(logits, label))",
                      g->name ? g->name : "");
  if (!m->differentiated) {
    if ((st = ir_autodiff(g, err)))
      return st;
    m->differentiated = true;
  }
  if (o->metrics_csv) {
    r.csv = fopen(o->metrics_csv, "w");
    if (!r.csv)
      return diag_error(err, KILN_ERR_IO, (kiln_loc){0},
                        "cannot write '%s': %s", o->metrics_csv,
                        strerror(errno));
    fputs("epoch,step,lr,train_loss,train_acc,val_loss,val_acc\n", r.csv);
  }
  st = find_io(&r, err);
  if (!st && !(r.ex = ref_exec_new(g, r.batch, err)))
    st = err->status ? err->status : KILN_ERR_INTERNAL;
  if (!st)
    st = init_params(&r, err);
  if (!st)
    st = load_data(&r, err);
  if (!st)
    st = train_epochs(&r, o->max_steps, err);
  if (!st)
    keep_weights(m, &r);
  if (r.csv && fclose(r.csv) != 0 && !st)
    st = diag_error(err, KILN_ERR_IO, (kiln_loc){0}, "cannot write '%s'",
                    o->metrics_csv);
  run_free(&r);
  return st;
}

const float *train_trained_param(const kiln_model *m, const char *name,
                                 int64_t *n) {
  if (!m->trained)
    return NULL;
  int index = 0;
  for (int i = 0; i < m->g.n_nodes; i++)
    for (int k = 0; k < m->g.nodes[i]->n_params; k++, index++) {
      const ir_param *p = &m->g.nodes[i]->params[k];
      if (strcmp(p->name, name) == 0) {
        if (n)
          *n = ir_shape_numel(&p->shape, 1);
        return m->trained[index];
      }
    }
  return NULL;
}
