/* train_report.h — what a training run shows and decides from its metrics:
 * the learning-curve SVG, the progress line, and early stopping.
 * Prototypes are grouped by the file that defines them.
 *
 *   (step, loss, acc) points --train_curve_write--> standalone SVG file
 *   per-step figures --train_progress_step--> a redrawn terminal line, or
 *                                             a log line every N steps
 *   validation loss per epoch --train_early_observe--> stop or go on
 *
 * The formatting is kept apart from the printing (train_fmt_eta,
 * train_fmt_bar, train_nice_ticks, train_progress_line) so that the tests
 * compare exact strings and numbers. */
#ifndef KILN_RUNTIME_TRAIN_REPORT_H
#define KILN_RUNTIME_TRAIN_REPORT_H

#include "kiln.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- train_curve.c: the learning curve as SVG ---- */

/* One measurement at a global step (1-based: after that many steps).
 * acc is in percent; a non-finite loss or acc is left out of its panel
 * (NAN for a model without accuracy). */
typedef struct train_point {
  int64_t step;
  double loss, acc;
} train_point;

typedef struct train_curve {
  const char *title; /* the model name */
  const train_point *train;
  int n_train;
  const train_point *val; /* one per epoch */
  int n_val;
  const train_point *test; /* the final test evaluation, or NULL */
} train_curve;

/* The SVG's geometry, shared with tests/py/test_curve_svg.py's reading of
 * it: two panels side by side, loss then accuracy. */
enum { TRAIN_CURVE_W = 960, TRAIN_CURVE_H = 420, TRAIN_CURVE_TARGET_TICKS = 5 };

/* Ticks on "nice" values (1, 2 or 5 times a power of ten) inside
 * [lo, hi]: the step is the smallest nice number >= (hi - lo) / target, so
 * there are at most target + 1 of them. Returns how many (at most cap)
 * were written to ticks; *step_out (when not NULL) gets the step.
 *   0..2.3 -> 0, 0.5, 1, 1.5, 2      0..100 -> 0, 20, 40, 60, 80, 100
 * An empty or non-finite range gives 0 ticks. */
int train_nice_ticks(double lo, double hi, int target, double *ticks, int cap,
                     double *step_out);
/* Widens [*lo, *hi] outwards to multiples of its nice tick step, so the
 * axis starts and ends on a tick; a single value gets a range around it. */
void train_nice_range(double *lo, double *hi, int target);

/* The SVG document for c, to out. */
void train_curve_svg(FILE *out, const train_curve *c);
/* Writes it to path atomically ("<path>.tmp.<pid>", then rename); a failure
 * is KILN_ERR_IO naming path, with strerror, and leaves no temporary. */
kiln_status train_curve_write(const char *path, const train_curve *c,
                              kiln_error *err);

/* ---- train_progress.c: the progress line ---- */

/* "m:ss" below an hour, else "h:mm:ss", rounded to the nearest second:
 * 0 -> "0:00", 83 -> "1:23", 3723 -> "1:02:03"; "-:--" when negative or
 * not finite. */
void train_fmt_eta(char *out, size_t cap, double seconds);
/* "[" + width cells + "]": done * width / total cells (rounded down) of '#',
 * the rest '-'; done is clamped to [0, total]. */
void train_fmt_bar(char *out, size_t cap, int64_t done, int64_t total,
                   int width);

/* What the loop measured at one step. */
typedef struct train_progress_stats {
  int64_t epoch;      /* 0-based */
  int64_t epoch_step; /* 0-based index of the step just run in its epoch */
  int64_t step;       /* 0-based global index of the step just run */
  double loss, acc;   /* since the last log line; acc in percent */
  double lr;
  double img_per_s;
  bool last; /* the run stops after this step (max_steps) */
} train_progress_stats;

typedef struct train_progress {
  FILE *f;
  bool tty; /* redraw one line; otherwise log lines */
  int64_t epochs, steps_per_epoch;
  int64_t total_steps; /* of the whole run, for the ETA */
  int64_t first_step;  /* where this process started (a resume) */
  int log_every;       /* log lines: the first step, every N, epoch ends */
  double t_start;      /* seconds, the caller's clock */
  double t_drawn;      /* when the terminal line was last drawn */
  bool line_open;      /* a terminal line without its '\n' yet */
} train_progress;

/* A run of `epochs` x `steps_per_epoch` steps (total_steps of them, fewer
 * with max_steps) starting at global step first_step at time now. */
void train_progress_init(train_progress *p, FILE *f, bool tty, int64_t epochs,
                         int64_t steps_per_epoch, int64_t total_steps,
                         int64_t first_step, int log_every, double now);
/* The line for s at time `now`, without '\r' or '\n':
 *   log:      "epoch 1/4 step 50/937 loss 0.5123 acc 81.2% lr 0.05 640 img/s"
 *   terminal: "epoch 2/10 [##########----------] 240/468 loss 0.4321
 *              acc 84.2% lr 0.01 5230 img/s ETA 1:23" (one line) */
void train_progress_line(const train_progress *p, const train_progress_stats *s,
                         double now, char *out, size_t cap);
/* After each step: on a terminal, redraws the line ("\r" line "\033[K")
 * at most 10 times a second and always at an epoch's last step, which
 * also ends the line; otherwise writes a log line at the run's first
 * step, every log_every steps and at an epoch's last step. Returns whether
 * it wrote. */
bool train_progress_step(train_progress *p, const train_progress_stats *s,
                         double now);
/* Ends an open terminal line, so that another message starts on its own. */
void train_progress_break(train_progress *p);

/* ---- train_early.c: early stopping on the validation loss ---- */

/* Keras EarlyStopping(monitor='val_loss', mode='min'): a validation loss
 * improves when it is below best - min_delta (NaN never does); the run
 * stops when bad_epochs reaches patience (0: never). */
typedef struct train_early {
  int64_t patience;
  double min_delta;
  double best;        /* INFINITY before the first observation */
  int64_t best_epoch; /* 0-based; -1 before */
  int64_t bad_epochs;
  int64_t epochs_seen; /* the next observation is of this epoch */
} train_early;

void train_early_init(train_early *e, int64_t patience, double min_delta);
/* One epoch's validation loss; returns true when training should stop. */
bool train_early_observe(train_early *e, double val_loss);

#endif
