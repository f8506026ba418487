/* train_loop.c — the training loop: kiln_train, on any backend
 * (runtime/backend.h).
 *
 * One run: autodiff the graph and add its update nodes (once per model),
 * create the backend at the batch size, initialise every parameter (then
 * fine-tune from a checkpoint, or resume one), load and fit the data, then
 * train epoch by epoch. A step fills a batch and makes one backend run
 * {training, update, seed, step, lr}: forward, backward, clipping, the
 * optimizer step and the EMA all happen in the graph (ir_add_updates), so
 * the loop never touches a gradient. After every epoch the loop evaluates
 * on the validation set (on the EMA weights when the train section keeps
 * them), feeds early stopping and writes checkpoints; at the end it
 * evaluates on the test set and draws the learning curve.
 *
 * Everything a step depends on is a function of (seed, epoch, step), so a
 * run resumed from a checkpoint (train_ckpt.h) continues bit for bit.
 *
 * Phases, one function each: run_open (model, backend, parameters, data),
 * train_step, log_step, end_epoch (validation, early stopping,
 * checkpoints), train_epochs, finish (test set, curve). The shared pieces
 * (data, batches, evaluation) are in train_eval.c.
 *
 * Backends size their buffers for one batch, so only full batches are run:
 * the last partial batch of every epoch (and of an evaluation set) is
 * skipped, and the run says so once. */
#include "frontend/load.h"
#include "runtime/train/train.h"
#include "runtime/train/train_ckpt.h"
#include "runtime/train/train_run.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

enum { TRAIN_LOG_EVERY = 50, TRAIN_PATH_MAX = 4096 };

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Every parameter by train_init_param, indexed by its position over all
 * nodes in graph order (buffers included, so an index never depends on
 * which layers are frozen), written to the backend. Update nodes come
 * after every layer: their optimizer state starts at zero and their EMA
 * weights ("ema") as a copy of the parameter they average. */
static kiln_status init_params(train_run *r, kiln_error *err) {
  ir_graph *g = r->g;
  int64_t most = 1; /* elements of the largest parameter */
  for (int i = 0; i < g->n_nodes; i++)
    for (int k = 0; k < g->nodes[i]->n_params; k++) {
      int64_t n = ir_shape_numel(&g->nodes[i]->params[k].shape, 1);
      most = n > most ? n : most;
    }
  float *buf = malloc(sizeof(float) * (size_t)most);
  if (!buf)
    return train_run_oom(err);
  uint64_t index = 0;
  for (int i = 0; i < g->n_nodes; i++) {
    const ir_node *n = g->nodes[i];
    for (int k = 0; k < n->n_params; k++, index++) {
      const ir_param *p = &n->params[k];
      if (n->op == IR_OP_UPDATE && strcmp(p->role, "ema") == 0) {
        r->ops->param_read(r->b, ir_update_param(n), buf);
      } else {
        ir_init init = p->init;
        if (init == IR_INIT_AUTO)
          init = train_init_auto(train_init_next_activation(g, n));
        train_init_param(p, init, r->seed, index, buf);
      }
      r->ops->param_write(r->b, p, buf);
    }
  }
  free(buf);
  return KILN_OK;
}

/* DIR/name into out; an error when it does not fit. */
static kiln_status out_path(const char *dir, const char *name, char *out,
                            kiln_error *err) {
  int w = snprintf(out, TRAIN_PATH_MAX, "%s/%s", dir, name);
  if (w < 0 || w >= TRAIN_PATH_MAX)
    return diag_error(err, KILN_ERR_INVALID, (kiln_loc){0},
                      "output directory name too long: '%s'", dir);
  return KILN_OK;
}

/* Appends p to a growing array of learning-curve points. */
static kiln_status push_point(train_point **pts, int *n, int *cap,
                              train_point p, kiln_error *err) {
  if (*n == *cap) {
    int c = *cap ? 2 * *cap : 64;
    train_point *grown = realloc(*pts, sizeof **pts * (size_t)c);
    if (!grown)
      return train_run_oom(err);
    *pts = grown, *cap = c;
  }
  (*pts)[(*n)++] = p;
  return KILN_OK;
}

/* DIR/name holding every tensor and the position before global step
 * `next` (0-based). */
static kiln_status save_ckpt(train_run *r, const char *name, int64_t next,
                             kiln_error *err) {
  char path[TRAIN_PATH_MAX];
  kiln_status st = out_path(r->o->out_dir, name, path, err);
  if (st)
    return st;
  train_ckpt_meta m = {.step = next,
                       .epoch = next / r->per_epoch,
                       .epoch_step = next % r->per_epoch,
                       .batch = r->batch,
                       .seed = r->seed,
                       .best_val_loss = r->early.best,
                       .best_epoch = r->early.best_epoch,
                       .bad_epochs = r->early.bad_epochs};
  return train_ckpt_save(path, r->g, r->b, &m, err);
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

/* Global step `step` (0-based), batch `s` of its epoch: one backend run
 * that also takes the optimizer step. *lr gets the step's learning rate. */
static kiln_status train_step(train_run *r, int64_t s, int64_t step, double *lr,
                              kiln_error *err) {
  data_iter_fill(&r->it, s, r->x, r->y);
  *lr = train_lr_at(&r->cfg.schedule, r->base_lr, step, r->per_epoch,
                    r->total_steps);
  rt_run run = {.training = true,
                .update = true,
                .seed = r->seed,
                .step = step,
                .lr = *lr};
  rt_result res;
  kiln_status st = train_run_batch(r, &run, &res, &r->sum, &r->correct, err);
  if (st)
    return st;
  r->seen++;
  if (res.skipped && r->log) {
    train_progress_break(&r->prog);
    fprintf(r->log, "step %lld: gradient norm is not finite; skipped\n",
            (long long)step + 1);
  }
  return KILN_OK;
}

/* The figures since the last reset, shown by the progress line. */
static void log_step(train_run *r, int64_t e, int64_t s, int64_t step,
                     double lr, bool last, double *loss, double *acc) {
  *loss = r->sum / (double)r->seen;
  *acc = r->z ? 100.0 * (double)r->correct / (double)(r->seen * r->batch) : 0.0;
  double dt = now_s() - r->t0;
  train_progress_stats ps = {
      .epoch = e,
      .epoch_step = s,
      .step = step,
      .loss = *loss,
      .acc = *acc,
      .lr = lr,
      .img_per_s = dt > 0 ? (double)(r->seen * r->batch) / dt : 0.0,
      .last = last};
  train_progress_step(&r->prog, &ps, now_s());
}

/* The validation after the step `step` (0-based) of epoch `e`; at a real
 * epoch end (not a --max-steps stop inside one) also early stopping, and,
 * with an output directory, the checkpoints. *stop is set when early
 * stopping ends the run. */
static kiln_status end_epoch(train_run *r, int64_t e, int64_t step,
                             bool epoch_end, bool stopping, double *vloss,
                             double *vacc, bool *has_val, bool *stop,
                             kiln_error *err) {
  kiln_status st = train_run_evaluate(r, &r->d.validation, r->cfg.ema > 0, step,
                                      vloss, vacc, has_val, err);
  if (st)
    return st;
  if (*has_val) {
    if (r->log)
      fprintf(r->log, "epoch %lld: val loss %.4f acc %.1f%%\n",
              (long long)e + 1, *vloss, r->z ? *vacc : 0.0);
    st = push_point(&r->vpts, &r->n_vpts, &r->cap_vpts,
                    (train_point){step + 1, *vloss, *vacc}, err);
    if (st)
      return st;
  }
  bool improved = false, early = false;
  if (epoch_end && *has_val) {
    int64_t before = r->early.best_epoch;
    early = train_early_observe(&r->early, *vloss);
    improved = r->early.best_epoch != before;
  }
  const kiln_train_opts *o = r->o;
  int64_t every = o->checkpoint_every ? o->checkpoint_every : 1;
  if (o->out_dir && improved &&
      (st = save_ckpt(r, "best.safetensors", step + 1, err)))
    return st;
  bool last = (epoch_end && ((e + 1) % every == 0 || e + 1 == r->cfg.epochs)) ||
              early || stopping;
  if (o->out_dir && last &&
      (st = save_ckpt(r, "last.safetensors", step + 1, err)))
    return st;
  if (early && r->log)
    fprintf(r->log,
            "early stopping: no improvement for %lld epochs (best val loss "
            "%.4f at epoch %lld)\n",
            (long long)r->early.bad_epochs, r->early.best,
            (long long)r->early.best_epoch + 1);
  *stop = *stop || early;
  return KILN_OK;
}

/* The epochs from the run's start position. */
static kiln_status train_epochs(train_run *r, int64_t *step_out,
                                kiln_error *err) {
  int64_t max_steps = r->o->max_steps;
  int64_t step = r->start_step;
  bool stop = max_steps > 0 && step >= max_steps;
  kiln_status st = KILN_OK;
  for (int64_t e = r->start_epoch; e < r->cfg.epochs && !stop; e++) {
    data_iter_set_epoch(&r->it, (uint64_t)e);
    double lr = r->base_lr;
    r->sum = 0, r->correct = 0, r->seen = 0, r->t0 = now_s();
    int64_t s0 = e == r->start_epoch ? r->start_epoch_step : 0;
    for (int64_t s = s0; s < r->per_epoch && !stop; s++, step++) {
      if ((st = train_step(r, s, step, &lr, err)))
        return st;
      bool stopping = max_steps > 0 && step + 1 >= max_steps;
      bool epoch_end = s + 1 == r->per_epoch, end = epoch_end || stopping;
      double loss, acc, vloss = 0, vacc = 0;
      log_step(r, e, s, step, lr, stopping, &loss, &acc);
      stop = stopping;
      /* The first step is recorded too, so the starting loss is on file. */
      if (step != r->start_step && (step + 1) % TRAIN_LOG_EVERY != 0 && !end)
        continue;
      st = push_point(&r->pts, &r->n_pts, &r->cap_pts,
                      (train_point){step + 1, loss, r->z ? acc : NAN}, err);
      bool has_val = false;
      if (!st && end)
        st = end_epoch(r, e, step, epoch_end, stopping, &vloss, &vacc, &has_val,
                       &stop, err);
      if (st)
        return st;
      csv_row(r, e + 1, step + 1, lr, loss, acc, has_val, vloss, vacc);
      r->sum = 0, r->correct = 0, r->seen = 0, r->t0 = now_s();
    }
  }
  *step_out = step;
  return KILN_OK;
}

/* After the epochs: the test set, and the learning curve. */
static kiln_status finish(train_run *r, int64_t step, kiln_error *err) {
  double tloss = 0, tacc = 0;
  kiln_status st = train_run_evaluate(r, &r->d.test, r->cfg.ema > 0, step,
                                      &tloss, &tacc, &r->has_test, err);
  if (st)
    return st;
  if (r->has_test && r->log)
    fprintf(r->log, "test loss %.4f acc %.1f%%\n", tloss, r->z ? tacc : 0.0);
  r->test_pt = (train_point){step, tloss, tacc};
  const kiln_train_opts *o = r->o;
  char path[TRAIN_PATH_MAX];
  const char *svg = o->curve_svg;
  if (!svg && o->out_dir) {
    if ((st = out_path(o->out_dir, "curve.svg", path, err)))
      return st;
    svg = path;
  }
  if (!svg)
    return KILN_OK;
  train_curve c = {.title = r->g->name ? r->g->name : "",
                   .train = r->pts,
                   .n_train = r->n_pts,
                   .val = r->vpts,
                   .n_val = r->n_vpts,
                   .test = r->has_test ? &r->test_pt : NULL};
  return train_curve_write(svg, &c, err);
}

/* The trained values of every parameter (optimizer state included), kept
 * in the model's arena. */
static void keep_weights(kiln_model *m, train_run *r) {
  ir_graph *g = &m->g;
  int n_params = 0;
  for (int i = 0; i < g->n_nodes; i++)
    n_params += g->nodes[i]->n_params;
  m->trained = ARENA_ARRAY(&m->a, float *, n_params + 1);
  int index = 0;
  for (int i = 0; i < g->n_nodes; i++)
    for (int k = 0; k < g->nodes[i]->n_params; k++, index++) {
      const ir_param *p = &g->nodes[i]->params[k];
      m->trained[index] =
          ARENA_ARRAY(&m->a, float, ir_shape_numel(&p->shape, 1));
      r->ops->param_read(r->b, p, m->trained[index]);
    }
}

/* The options over the model's train section, and the backend. */
static kiln_status apply_opts(train_run *r, const kiln_train_opts *o,
                              kiln_error *err) {
  kiln_status st = train_run_backend(r, o->backend, err);
  if (st)
    return st;
  if (o->epochs < 0 || o->batch < 0 || o->max_steps < 0 ||
      o->checkpoint_every < 0 || !(o->lr >= 0) || isinf(o->lr))
    return diag_error(err, KILN_ERR_INVALID, (kiln_loc){0},
                      "epochs, batch, max_steps and checkpoint_every must be "
                      "positive and lr a positive number");
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

/* The output directory (created when missing) and the metrics file, which
 * a resumed run appends to. */
static kiln_status open_outputs(train_run *r, kiln_error *err) {
  const kiln_train_opts *o = r->o;
  if (o->out_dir && mkdir(o->out_dir, 0777) != 0 && errno != EEXIST)
    return diag_error(err, KILN_ERR_IO, (kiln_loc){0},
                      "cannot create directory '%s': %s", o->out_dir,
                      strerror(errno));
  char csv_path[TRAIN_PATH_MAX];
  const char *csv = o->metrics_csv;
  if (!csv && o->out_dir) {
    kiln_status st = out_path(o->out_dir, "metrics.csv", csv_path, err);
    if (st)
      return st;
    csv = csv_path;
  }
  if (!csv)
    return KILN_OK;
  r->csv = fopen(csv, o->resume ? "a" : "w");
  if (!r->csv)
    return diag_error(err, KILN_ERR_IO, (kiln_loc){0}, "cannot write '%s': %s",
                      csv, strerror(errno));
  fseek(r->csv, 0, SEEK_END);
  if (ftell(r->csv) == 0)
    fputs("epoch,step,lr,train_loss,train_acc,val_loss,val_acc\n", r->csv);
  return KILN_OK;
}

/* The run's position from o->resume; the seed becomes the checkpoint's. */
static kiln_status resume(train_run *r, kiln_error *err) {
  const kiln_train_opts *o = r->o;
  train_ckpt_meta m;
  kiln_status st = train_ckpt_resume(o->resume, r->g, r->b, &m, err);
  if (st)
    return st;
  if (m.batch != r->batch)
    return diag_error(err, KILN_ERR_INVALID, (kiln_loc){0},
                      "'%s' was written with batch %lld; this run has %lld",
                      o->resume, (long long)m.batch, (long long)r->batch);
  if (o->has_seed && o->seed != m.seed)
    return diag_error(err, KILN_ERR_INVALID, (kiln_loc){0},
                      "'%s' was written with seed %llu; this run asks for "
                      "%llu",
                      o->resume, (unsigned long long)m.seed,
                      (unsigned long long)o->seed);
  r->seed = m.seed;
  r->start_step = m.step, r->start_epoch = m.epoch;
  r->start_epoch_step = m.epoch_step;
  r->early.best = m.best_val_loss, r->early.best_epoch = m.best_epoch;
  r->early.bad_epochs = m.bad_epochs, r->early.epochs_seen = m.epoch;
  return KILN_OK;
}

/* The training iterator and the schedule, once the data is loaded. */
static kiln_status plan_epochs(train_run *r, kiln_error *err) {
  if (r->d.train.n < r->batch)
    return diag_error(err, KILN_ERR_INVALID, (kiln_loc){0},
                      "the training set has %lld examples, fewer than one "
                      "batch of %lld",
                      (long long)r->d.train.n, (long long)r->batch);
  if (r->early.patience > 0 && r->d.validation.n < r->batch)
    return diag_error(err, KILN_ERR_INVALID, (kiln_loc){0},
                      "early_stopping needs validation data (the validation "
                      "set has %lld examples, batch %lld)",
                      (long long)r->d.validation.n, (long long)r->batch);
  r->per_epoch = r->d.train.n / r->batch;
  r->total_steps = r->cfg.epochs * r->per_epoch;
  r->base_lr = train_lr_base(&r->cfg, r->batch);
  if (r->start_epoch * r->per_epoch + r->start_epoch_step != r->start_step)
    return diag_error(
        err, KILN_ERR_INVALID, (kiln_loc){0},
        "'%s' stopped at step %lld (epoch %lld, step %lld of "
        "it), which does not fit %lld steps per epoch: the "
        "training set changed size",
        r->o->resume, (long long)r->start_step, (long long)r->start_epoch + 1,
        (long long)r->start_epoch_step + 1, (long long)r->per_epoch);
  kiln_status st =
      data_iter_init(&r->it, &r->d.train, r->batch, &r->g->data, r->seed, err);
  if (st)
    return st;
  r->iter_ready = true;
  if (r->log && r->d.train.n % r->batch)
    fprintf(r->log,
            "note: the last %lld training examples of each epoch are "
            "skipped: the %s backend runs whole batches of %lld\n",
            (long long)(r->d.train.n % r->batch), r->ops->name,
            (long long)r->batch);
  int64_t total = r->total_steps, max = r->o->max_steps;
  train_progress_init(&r->prog, r->log, r->o->progress_tty, r->cfg.epochs,
                      r->per_epoch, max > 0 && max < total ? max : total,
                      r->start_step, TRAIN_LOG_EVERY, now_s());
  return KILN_OK;
}

/* Everything before the first step: the training graph (autodiff and
 * update nodes, once per model), the outputs, the backend with every
 * parameter initialised, fine-tuned or resumed, and the data. */
static kiln_status run_open(train_run *r, kiln_model *m, kiln_error *err) {
  ir_graph *g = r->g;
  const kiln_train_opts *o = r->o;
  if (!g->loss)
    return diag_error(err, KILN_ERR_INVALID, (kiln_loc){0},
                      "model '%s' has no loss layer: training needs one "
                      "(e.g. loss = cross_entropy(logits, label))",
                      g->name ? g->name : "");
  kiln_status st;
  if (!m->differentiated) {
    if ((st = ir_autodiff(g, err)) || (st = ir_add_updates(g, err)))
      return st;
    m->differentiated = true;
  }
  train_early_init(&r->early, r->cfg.early_stop_patience,
                   r->cfg.early_stop_min_delta);
  if ((st = open_outputs(r, err)) || (st = train_run_find_io(r, err)))
    return st;
  if (!(r->b = r->ops->create(g, r->batch, err)))
    return err->status ? err->status : KILN_ERR_INTERNAL;
  if ((st = init_params(r, err)))
    return st;
  /* After init: fine-tuning overwrites the EMA copies init made. A resume
   * restores every tensor, so fine-tuning would change nothing. */
  if (g->train.finetune_from && !o->resume &&
      (st = train_ckpt_finetune(g->train.finetune_from, g, r->b, r->log, err)))
    return st;
  /* Before the data: the validation split is drawn with the seed. */
  if (o->resume && (st = resume(r, err)))
    return st;
  if ((st = train_run_load(r, err)))
    return st;
  return plan_epochs(r, err);
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
  train_run r = {.g = &m->g, .cfg = m->g.train, .log = o->log, .o = o};
  kiln_status st = apply_opts(&r, o, err);
  int64_t step = 0;
  if (!st)
    st = run_open(&r, m, err);
  if (!st)
    st = train_epochs(&r, &step, err);
  if (!st)
    st = finish(&r, step, err);
  if (!st)
    keep_weights(m, &r);
  if (r.csv && fclose(r.csv) != 0 && !st)
    st = diag_error(err, KILN_ERR_IO, (kiln_loc){0},
                    "cannot write the metrics file");
  train_run_close(&r);
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
