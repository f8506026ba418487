/* train_run.h — the state that kiln_train (train_loop.c) and kiln_eval
 * (train_eval.c) share: one model on one backend at one batch, its data and
 * a batch of host buffers. Private to runtime/train/.
 *
 *   train_run_backend   backend name ("cpu" by default) -> r->ops
 *   train_run_find_io   the image and label inputs and the logits
 *   train_run_load      the data sets, fitted, and one batch of buffers
 *   train_run_batch     one backend run on r->x/r->y (+ loss, correct)
 *   train_run_evaluate  mean loss and accuracy over a set's full batches
 *   train_run_close     frees what the above made */
#ifndef KILN_RUNTIME_TRAIN_RUN_H
#define KILN_RUNTIME_TRAIN_RUN_H

#include "runtime/backend.h"
#include "runtime/data/data.h"
#include "runtime/train/train_report.h"

typedef struct train_run {
  ir_graph *g;
  ir_train_cfg cfg; /* the train section with the options applied */
  int64_t batch;
  uint64_t seed;
  const rt_backend_ops *ops;
  rt_backend *b;
  const ir_node *x_in, *y_in, *logits;
  int n_classes;
  data_sets d;
  bool data_loaded;
  data_iter it;
  bool iter_ready;
  float *x;
  int32_t *y;
  float *z; /* one batch of logits, for accuracy; NULL: no accuracy */
  FILE *log, *csv;
  /* the schedule */
  int64_t per_epoch, total_steps;
  double base_lr;
  /* the figures since the last progress line */
  double sum, t0;
  int64_t correct, seen;
  /* where the run starts (0, or a checkpoint's position) */
  int64_t start_step, start_epoch, start_epoch_step;
  const kiln_train_opts *o;
  train_progress prog;
  train_early early;
  /* the learning curve: train points at log lines, val points per epoch */
  train_point *pts, *vpts;
  int n_pts, cap_pts, n_vpts, cap_vpts;
  train_point test_pt;
  bool has_test;
} train_run;

/* The backend called `name` (NULL: "cpu", the default) into r->ops. */
kiln_status train_run_backend(train_run *r, const char *name, kiln_error *err);
kiln_status train_run_find_io(train_run *r, kiln_error *err);
/* Loads and fits the data sets (split by r->seed) and allocates r->x, r->y
 * and r->z for one batch. */
kiln_status train_run_load(train_run *r, kiln_error *err);
kiln_status train_run_batch(train_run *r, const rt_run *run, rt_result *res,
                            double *loss, int64_t *correct, kiln_error *err);
/* Over the full batches of `set`, with run {.ema = ema, .step = step};
 * *done false when it has none. acc in percent. */
kiln_status train_run_evaluate(train_run *r, const data_set *set, bool ema,
                               int64_t step, double *loss, double *acc,
                               bool *done, kiln_error *err);
void train_run_close(train_run *r);
kiln_status train_run_oom(kiln_error *err);

#endif
