/* train_progress.c — the progress of a training run, two ways:
 *
 *   on a terminal: one line, redrawn in place ("\r" ... "\033[K"), with a
 *     bar over the epoch and the ETA of the whole run; the epoch's last
 *     step ends it with '\n', so each epoch leaves one line behind;
 *   elsewhere (a log file, CI): one plain line at the run's first step,
 *     every log_every steps and at each epoch's end, in the format the
 *     tests and scripts grep ("epoch 1/4 step 50/937 loss ... img/s").
 *
 * The caller passes the clock (`now`, seconds) and whether the stream is a
 * terminal, so everything here is a pure function of its arguments and the
 * tests compare exact strings. */
#include "runtime/train/train_report.h"

#include <math.h>
#include <string.h>

/* Redraws faster than this are invisible and cost terminal bandwidth. */
static const double TRAIN_REDRAW_S = 0.1;

void train_fmt_eta(char *out, size_t cap, double seconds) {
  if (!(seconds >= 0) || !isfinite(seconds)) {
    snprintf(out, cap, "-:--");
    return;
  }
  /* Rounded once, then split: 59.6 s is "1:00", never "0:60". */
  double r = floor(seconds + 0.5);
  if (r >= 1e15) { /* beyond any run; keeps the integer conversion exact */
    snprintf(out, cap, "-:--");
    return;
  }
  long long t = (long long)r, h = t / 3600, m = t / 60 % 60, s = t % 60;
  if (h > 0)
    snprintf(out, cap, "%lld:%02lld:%02lld", h, m, s);
  else
    snprintf(out, cap, "%lld:%02lld", m, s);
}

void train_fmt_bar(char *out, size_t cap, int64_t done, int64_t total,
                   int width) {
  if (cap == 0)
    return;
  if (done < 0)
    done = 0;
  if (done > total)
    done = total;
  int64_t full = total > 0 ? done * width / total : 0;
  size_t k = 0;
  if (k + 1 < cap)
    out[k++] = '[';
  for (int i = 0; i < width && k + 1 < cap; i++)
    out[k++] = i < full ? '#' : '-';
  if (k + 1 < cap)
    out[k++] = ']';
  out[k] = '\0';
}

void train_progress_init(train_progress *p, FILE *f, bool tty, int64_t epochs,
                         int64_t steps_per_epoch, int64_t total_steps,
                         int64_t first_step, int log_every, double now) {
  *p = (train_progress){.f = f,
                        .tty = tty,
                        .epochs = epochs,
                        .steps_per_epoch = steps_per_epoch,
                        .total_steps = total_steps,
                        .first_step = first_step,
                        .log_every = log_every > 0 ? log_every : 1,
                        .t_start = now,
                        .t_drawn = -INFINITY};
}

/* Seconds left in the run at the rate measured since this process started
 * (validation time included, since it recurs every epoch); -1 when there
 * is no rate yet. */
static double eta_s(const train_progress *p, int64_t step, double now) {
  int64_t done = step + 1 - p->first_step, left = p->total_steps - (step + 1);
  if (done <= 0 || !(now > p->t_start))
    return -1;
  if (left < 0)
    left = 0;
  return (now - p->t_start) / (double)done * (double)left;
}

void train_progress_line(const train_progress *p, const train_progress_stats *s,
                         double now, char *out, size_t cap) {
  if (!p->tty) {
    snprintf(out, cap,
             "epoch %lld/%lld step %lld/%lld loss %.4f acc %.1f%% lr %.4g "
             "%.0f img/s",
             (long long)s->epoch + 1, (long long)p->epochs,
             (long long)s->epoch_step + 1, (long long)p->steps_per_epoch,
             s->loss, s->acc, s->lr, s->img_per_s);
    return;
  }
  char bar[32], eta[32];
  train_fmt_bar(bar, sizeof bar, s->epoch_step + 1, p->steps_per_epoch, 20);
  train_fmt_eta(eta, sizeof eta, eta_s(p, s->step, now));
  snprintf(out, cap,
           "epoch %lld/%lld %s %lld/%lld loss %.4f acc %.1f%% lr %.4g %.0f "
           "img/s ETA %s",
           (long long)s->epoch + 1, (long long)p->epochs, bar,
           (long long)s->epoch_step + 1, (long long)p->steps_per_epoch, s->loss,
           s->acc, s->lr, s->img_per_s, eta);
}

bool train_progress_step(train_progress *p, const train_progress_stats *s,
                         double now) {
  if (!p->f)
    return false;
  bool end = s->epoch_step + 1 >= p->steps_per_epoch || s->last;
  bool due = p->tty ? end || now - p->t_drawn >= TRAIN_REDRAW_S
                    : s->step == p->first_step ||
                          (s->step + 1) % p->log_every == 0 || end;
  if (!due)
    return false;
  char line[256];
  train_progress_line(p, s, now, line, sizeof line);
  if (p->tty) {
    fprintf(p->f, "\r%s\033[K%s", line, end ? "\n" : "");
    p->line_open = !end;
    p->t_drawn = now;
  } else {
    fprintf(p->f, "%s\n", line);
  }
  fflush(p->f);
  return true;
}

void train_progress_break(train_progress *p) {
  if (p->f && p->line_open) {
    fputc('\n', p->f);
    p->line_open = false;
  }
}
