/* test_train_report.c — the reporting pieces of a training run
 * (runtime/train/train_report.h) against hand-computed values:
 *   - nice ticks and axis ranges (1, 2, 5 x 10^k);
 *   - the ETA and bar strings, the log and terminal progress lines, and
 *     when each is written (log every N steps; terminal redraws at most
 *     10 times a second, '\n' at an epoch's end);
 *   - early stopping on hand-made loss sequences: plateau, reset,
 *     min_delta at its boundary, NaN, patience 0;
 *   - the SVG writer's error paths, escaping and non-finite points (its
 *     geometry is checked by tests/py/test_curve_svg.py). */
#include "runtime/train/train_report.h"
#include "support/support.h"
#include "test.h"

#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[64];

/* ---- nice ticks ---- */

static void check_ticks(double lo, double hi, const double *want, int n_want,
                        double want_step) {
  double t[16], step = -1;
  int n = train_nice_ticks(lo, hi, 5, t, 16, &step);
  CHECK_EQ_INT(n, n_want);
  CHECK_NEAR(step, want_step, 1e-12);
  for (int i = 0; i < n && i < n_want; i++)
    CHECK_NEAR(t[i], want[i], 1e-12);
}

TEST(test_nice_ticks) {
  check_ticks(0, 2.3, (double[]){0, 0.5, 1, 1.5, 2}, 5, 0.5);
  check_ticks(0, 100, (double[]){0, 20, 40, 60, 80, 100}, 6, 20);
  /* raw step 0.132 -> 0.2; the ticks stay inside the range */
  check_ticks(0.31, 0.97, (double[]){0.4, 0.6, 0.8}, 3, 0.2);
  check_ticks(-3, 7, (double[]){-2, 0, 2, 4, 6}, 5, 2);
  check_ticks(0, 1, (double[]){0, 0.2, 0.4, 0.6, 0.8, 1}, 6, 0.2);
  /* 12 * 0.1 is 1.2000000000000002, so the raw step is a hair above 0.2:
   * still the step 0.2, not 0.5 */
  check_ticks(0.2, 12 * 0.1, (double[]){0.2, 0.4, 0.6, 0.8, 1, 1.2}, 6, 0.2);
  check_ticks(0, 937, (double[]){0, 200, 400, 600, 800}, 5, 200);
  check_ticks(1e-4, 5e-4, (double[]){1e-4, 2e-4, 3e-4, 4e-4, 5e-4}, 5, 1e-4);
  double t[3], step;
  CHECK_EQ_INT(train_nice_ticks(0, 100, 5, t, 3, &step), 3); /* cap */
  CHECK_NEAR(t[2], 40, 1e-12);
  CHECK_EQ_INT(train_nice_ticks(1, 1, 5, t, 3, &step), 0);
  CHECK_EQ_INT(step, 0);
  CHECK_EQ_INT(train_nice_ticks(2, 1, 5, t, 3, NULL), 0);
  CHECK_EQ_INT(train_nice_ticks(0, NAN, 5, t, 3, NULL), 0);
  CHECK_EQ_INT(train_nice_ticks(0, INFINITY, 5, t, 3, NULL), 0);
}

static void check_range(double lo, double hi, double want_lo, double want_hi) {
  train_nice_range(&lo, &hi, 5);
  CHECK_NEAR(lo, want_lo, 1e-12);
  CHECK_NEAR(hi, want_hi, 1e-12);
}

TEST(test_nice_range) {
  check_range(0.31, 2.3, 0, 2.5);   /* step 0.5 */
  check_range(60, 98, 60, 100);     /* step 10 */
  check_range(0, 937, 0, 1000);     /* step 200 */
  check_range(2.3, 2.3, 1, 3.5);    /* [1.15, 3.45], step 0.5 */
  check_range(0, 0, -1, 1);         /* [-1, 1], step 0.5 */
  check_range(NAN, 1, 0, 1);        /* nothing to show */
  check_range(-0.7, -0.1, -0.8, 0); /* step 0.2 */
}

/* ---- progress ---- */

static void check_eta(double s, const char *want) {
  char buf[32];
  train_fmt_eta(buf, sizeof buf, s);
  CHECK(strcmp(buf, want) == 0);
  if (strcmp(buf, want))
    fprintf(stderr, "eta(%g) = '%s', want '%s'\n", s, buf, want);
}

TEST(test_fmt_eta) {
  check_eta(0, "0:00");
  check_eta(83, "1:23");
  check_eta(3723, "1:02:03");
  check_eta(59.4, "0:59");
  check_eta(59.6, "1:00"); /* rounded before splitting: never "0:60" */
  check_eta(3599.5, "1:00:00");
  check_eta(36000 * 10 + 61, "100:01:01");
  check_eta(-1, "-:--");
  check_eta(NAN, "-:--");
  check_eta(INFINITY, "-:--");
  char small[4];
  train_fmt_eta(small, sizeof small, 83); /* truncated, terminated */
  CHECK(strcmp(small, "1:2") == 0);
}

static void check_bar(int64_t done, int64_t total, int width,
                      const char *want) {
  char buf[64];
  train_fmt_bar(buf, sizeof buf, done, total, width);
  CHECK(strcmp(buf, want) == 0);
  if (strcmp(buf, want))
    fprintf(stderr, "bar(%lld/%lld) = '%s', want '%s'\n", (long long)done,
            (long long)total, buf, want);
}

TEST(test_fmt_bar) {
  check_bar(0, 468, 20, "[--------------------]");
  check_bar(234, 468, 20, "[##########----------]"); /* 50% */
  check_bar(468, 468, 20, "[####################]");
  check_bar(240, 468, 20, "[##########----------]"); /* 10.26 cells */
  check_bar(467, 468, 20, "[###################-]"); /* 19.96: not full */
  check_bar(1, 3, 4, "[#---]");
  check_bar(900, 468, 5, "[#####]"); /* clamped */
  check_bar(-5, 468, 5, "[-----]");
  check_bar(0, 0, 3, "[---]");
  char small[5];
  train_fmt_bar(small, sizeof small, 1, 2, 8);
  CHECK(strcmp(small, "[###") == 0);
}

TEST(test_progress_lines) {
  train_progress p;
  char line[256];
  /* The log format the loop has always written (tests grep it). */
  train_progress_init(&p, NULL, false, 4, 937, 3748, 0, 50, 0);
  train_progress_stats s = {.epoch = 0,
                            .epoch_step = 49,
                            .step = 49,
                            .loss = 0.51234,
                            .acc = 81.23,
                            .lr = 0.05,
                            .img_per_s = 640.2};
  train_progress_line(&p, &s, 10, line, sizeof line);
  CHECK(strcmp(line, "epoch 1/4 step 50/937 loss 0.5123 acc 81.2% lr 0.05 "
                     "640 img/s") == 0);
  /* Terminal: 708 steps in 354 s, 3972 left at 0.5 s each = 1986 s. */
  train_progress_init(&p, NULL, true, 10, 468, 4680, 0, 50, 100);
  s = (train_progress_stats){.epoch = 1,
                             .epoch_step = 239,
                             .step = 707,
                             .loss = 0.4321,
                             .acc = 84.2,
                             .lr = 0.01,
                             .img_per_s = 5230};
  train_progress_line(&p, &s, 454, line, sizeof line);
  CHECK(strcmp(line, "epoch 2/10 [##########----------] 240/468 loss 0.4321 "
                     "acc 84.2% lr 0.01 5230 img/s ETA 33:06") == 0);
  /* Resumed at step 600: the rate counts only this process's 108 steps
   * (54 s), so the ETA is the same 1986 s. No time yet: no ETA. */
  train_progress_init(&p, NULL, true, 10, 468, 4680, 600, 50, 400);
  train_progress_line(&p, &s, 454, line, sizeof line);
  CHECK_STR_CONTAINS(line, "ETA 33:06");
  train_progress_line(&p, &s, 400, line, sizeof line);
  CHECK_STR_CONTAINS(line, "img/s ETA -:--");
}

static int count_char(const char *s, char c) {
  int n = 0;
  for (; s && *s; s++)
    n += *s == c;
  return n;
}

TEST(test_progress_log_schedule) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  train_progress p;
  /* 2 epochs of 60 steps, a line every 50 steps. */
  train_progress_init(&p, f, false, 2, 60, 120, 0, 50, 0);
  int written = 0;
  for (int64_t step = 0; step < 120; step++) {
    train_progress_stats s = {.epoch = step / 60,
                              .epoch_step = step % 60,
                              .step = step,
                              .loss = 1,
                              .acc = 50,
                              .lr = 0.1,
                              .img_per_s = 100};
    written += train_progress_step(&p, &s, (double)step);
  }
  train_progress_break(&p); /* no open line: writes nothing */
  fclose(f);
  /* steps 1, 50, 60 (epoch end), 100, 120 (epoch end) */
  CHECK_EQ_INT(written, 5);
  CHECK_EQ_INT(count_char(text, '\n'), 5);
  CHECK_EQ_INT(count_char(text, '\r'), 0);
  const char *start = "epoch 1/2 step 1/60 loss 1.0000 acc 50.0% lr 0.1 100 "
                      "img/s\nepoch 1/2 step 50/60 ";
  CHECK(text && strncmp(text, start, strlen(start)) == 0);
  CHECK_STR_CONTAINS(text, "\nepoch 1/2 step 60/60 ");
  CHECK_STR_CONTAINS(text, "\nepoch 2/2 step 40/60 "); /* global step 100 */
  CHECK_STR_CONTAINS(text, "\nepoch 2/2 step 60/60 ");
  free(text);

  /* Resumed at global step 70: its first step is logged; a max_steps stop
   * mid-epoch too. */
  text = NULL;
  f = open_memstream(&text, &len);
  train_progress_init(&p, f, false, 2, 60, 120, 70, 50, 0);
  train_progress_stats s = {.epoch = 1, .epoch_step = 10, .step = 70};
  CHECK(train_progress_step(&p, &s, 1));
  s = (train_progress_stats){.epoch = 1, .epoch_step = 11, .step = 71};
  CHECK(!train_progress_step(&p, &s, 2));
  s.last = true;
  CHECK(train_progress_step(&p, &s, 3));
  fclose(f);
  CHECK_STR_CONTAINS(text, "epoch 2/2 step 11/60 ");
  CHECK_STR_CONTAINS(text, "epoch 2/2 step 12/60 ");
  free(text);
}

TEST(test_progress_terminal) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  train_progress p;
  /* One epoch of 10 steps, one every 1/16 s: redrawn every second step
   * (1/8 s >= 0.1 s) and at the last. */
  train_progress_init(&p, f, true, 1, 10, 10, 0, 50, 0);
  int written = 0;
  for (int64_t step = 0; step < 10; step++) {
    train_progress_stats s = {.epoch = 0,
                              .epoch_step = step,
                              .step = step,
                              .loss = 0.5,
                              .acc = 90,
                              .lr = 0.01,
                              .img_per_s = 1000};
    written += train_progress_step(&p, &s, (double)(step + 1) / 16);
  }
  fclose(f);
  CHECK_EQ_INT(written, 6); /* steps 1, 3, 5, 7, 9 and 10 */
  CHECK_EQ_INT(count_char(text, '\r'), 6);
  CHECK_EQ_INT(count_char(text, '\n'), 1);
  const char *first = "\repoch 1/1 [##------------------] 1/10 ";
  CHECK(text && strncmp(text, first, strlen(first)) == 0);
  const char *end = "\repoch 1/1 [####################] 10/10 loss 0.5000 "
                    "acc 90.0% lr 0.01 1000 img/s ETA 0:00\033[K\n";
  CHECK(text && len >= strlen(end) &&
        strcmp(text + len - strlen(end), end) == 0);
  free(text);

  /* A message in the middle of an epoch starts on its own line, once. */
  text = NULL;
  f = open_memstream(&text, &len);
  train_progress_init(&p, f, true, 1, 10, 10, 0, 50, 0);
  train_progress_stats s = {.epoch_step = 3, .step = 3};
  CHECK(train_progress_step(&p, &s, 1));
  train_progress_break(&p);
  train_progress_break(&p);
  fclose(f);
  CHECK_EQ_INT(count_char(text, '\n'), 1);
  CHECK(text && len > 0 && text[len - 1] == '\n');
  free(text);
  /* No stream: nothing to do. */
  train_progress_init(&p, NULL, true, 1, 10, 10, 0, 50, 0);
  CHECK(!train_progress_step(&p, &s, 1));
}

/* ---- early stopping ---- */

/* Feeds losses; returns the 1-based observation that said stop, or 0. */
static int run_early(train_early *e, const double *loss, int n) {
  for (int i = 0; i < n; i++)
    if (train_early_observe(e, loss[i]))
      return i + 1;
  return 0;
}

TEST(test_early_stopping) {
  train_early e;
  /* Plateau: the best is epoch 1 (0.9); two epochs without beating it. */
  train_early_init(&e, 2, 0);
  CHECK_EQ_INT(run_early(&e, (double[]){1.0, 0.9, 0.95, 0.91, 0.5}, 5), 4);
  CHECK(e.best == 0.9);
  CHECK_EQ_INT(e.best_epoch, 1);
  CHECK_EQ_INT(e.bad_epochs, 2);
  /* An improvement resets the count. */
  train_early_init(&e, 2, 0);
  CHECK_EQ_INT(run_early(&e, (double[]){1, 1.1, 0.5, 0.6, 0.7}, 5), 5);
  CHECK_EQ_INT(e.best_epoch, 2);
  /* Equal is not better. */
  train_early_init(&e, 1, 0);
  CHECK_EQ_INT(run_early(&e, (double[]){1.0, 1.0}, 2), 2);
  /* min_delta (0.25, exact in binary): 0.75 is not below 1 - 0.25 ... */
  train_early_init(&e, 1, 0.25);
  CHECK_EQ_INT(run_early(&e, (double[]){1.0, 0.75}, 2), 2);
  CHECK(e.best == 1.0);
  /* ... the next double below it is. */
  train_early_init(&e, 1, 0.25);
  CHECK_EQ_INT(run_early(&e, (double[]){1.0, nextafter(0.75, 0)}, 2), 0);
  CHECK_EQ_INT(e.best_epoch, 1);
  /* NaN never improves, first epoch included; +inf neither. */
  train_early_init(&e, 2, 0);
  CHECK_EQ_INT(run_early(&e, (double[]){NAN, 0.5, NAN, INFINITY}, 4), 4);
  CHECK(e.best == 0.5);
  CHECK_EQ_INT(e.best_epoch, 1);
  train_early_init(&e, 1, 0);
  CHECK(train_early_observe(&e, NAN));
  CHECK(isinf(e.best) && e.best_epoch == -1);
  /* Patience 0 is off. */
  train_early_init(&e, 0, 0);
  for (int i = 0; i < 100; i++)
    CHECK(!train_early_observe(&e, 1.0 + i));
  CHECK_EQ_INT(e.bad_epochs, 99);
  /* State restored from a checkpoint continues the count. */
  train_early_init(&e, 3, 0);
  e.best = 0.4, e.best_epoch = 5, e.bad_epochs = 2, e.epochs_seen = 8;
  CHECK(train_early_observe(&e, 0.4));
  train_early_init(&e, 3, 0);
  e.best = 0.4, e.best_epoch = 5, e.bad_epochs = 2, e.epochs_seen = 8;
  CHECK(!train_early_observe(&e, 0.3));
  CHECK_EQ_INT(e.best_epoch, 8);
}

/* ---- the SVG writer ---- */

static const train_point tr[] = {{1, 2.3, 10}, {50, 1.2, 55}, {100, 0.6, 80}};
static const train_point va[] = {{50, 1.4, 50}, {100, 0.7, 78}};

static char *svg_text(const train_curve *c) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  train_curve_svg(f, c);
  fclose(f);
  return text;
}

static int count_str(const char *hay, const char *needle) {
  int n = 0;
  for (const char *p = hay; p && (p = strstr(p, needle)); p++)
    n++;
  return n;
}

TEST(test_curve_content) {
  train_curve c = {
      .title = "a<b&\"c\"", .train = tr, .n_train = 3, .val = va, .n_val = 2};
  char *s = svg_text(&c);
  CHECK_STR_CONTAINS(s, ">a&lt;b&amp;&quot;c&quot;</text>");
  CHECK_EQ_INT(count_str(s, "<polyline class=\"train\""), 2);
  CHECK_EQ_INT(count_str(s, "<polyline class=\"val\""), 2);
  CHECK_EQ_INT(count_str(s, "<circle class=\"val-point\""), 4);
  CHECK_EQ_INT(count_str(s, "<circle class=\"test\""), 0);
  CHECK_EQ_INT(count_str(s, ">test</text>"), 0); /* no legend entry */
  free(s);
  /* No accuracy (NAN): the accuracy panel has no series; a NaN loss is
   * left out of its polyline; a test point is drawn in both panels. */
  train_point tr2[] = {{1, 2.3, NAN}, {50, NAN, NAN}, {100, 0.6, NAN}};
  train_point te = {100, 0.65, 77};
  c = (train_curve){.title = "m", .train = tr2, .n_train = 3, .test = &te};
  s = svg_text(&c);
  CHECK_EQ_INT(count_str(s, "<polyline class=\"train\""), 1);
  CHECK_EQ_INT(count_str(s, "<polyline class=\"val\""), 0);
  CHECK_EQ_INT(count_str(s, "<circle class=\"test\""), 2);
  CHECK_EQ_INT(count_str(s, ">test</text>"), 1);
  /* two points: one space between them */
  const char *pl = s ? strstr(s, "<polyline class=\"train\"") : NULL;
  const char *pts = pl ? strstr(pl, "points=\"") : NULL;
  const char *close = pts ? strchr(pts + 8, '"') : NULL;
  CHECK(pts && close);
  int spaces = 0;
  for (const char *q = pts ? pts + 8 : NULL; q && q < close; q++)
    spaces += *q == ' ';
  CHECK_EQ_INT(spaces, 1);
  free(s);
  /* Nothing at all still makes a document. */
  c = (train_curve){0};
  s = svg_text(&c);
  CHECK_STR_CONTAINS(s, "</svg>\n");
  CHECK_EQ_INT(count_str(s, "<polyline"), 0);
  free(s);
}

static bool exists(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0;
}

TEST(test_curve_write) {
  train_curve c = {
      .title = "mlp", .train = tr, .n_train = 3, .val = va, .n_val = 2};
  kiln_error err;
  char path[128], tmp[160];
  snprintf(path, sizeof path, "%s/curve.svg", tmpdir);
  CHECK_EQ_INT(train_curve_write(path, &c, &err), KILN_OK);
  FILE *f = fopen(path, "r");
  char head[64] = {0};
  CHECK(f && fread(head, 1, 38, f) == 38);
  if (f)
    fclose(f);
  CHECK(strncmp(head, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>", 38) == 0);
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
  CHECK(!exists(tmp));
  remove(path);
  /* A missing directory: the message names the path and the reason. */
  const char *bad = "/nonexistent-kiln-dir/curve.svg";
  CHECK_EQ_INT(train_curve_write(bad, &c, &err), KILN_ERR_IO);
  CHECK_STR_CONTAINS(err.message, "cannot write '/nonexistent-kiln-dir/"
                                  "curve.svg': No such file or directory");
  /* A directory in the way: the rename fails, the temporary goes. */
  CHECK_EQ_INT(train_curve_write(tmpdir, &c, &err), KILN_ERR_IO);
  CHECK_STR_CONTAINS(err.message, tmpdir);
  CHECK_STR_CONTAINS(err.message, "Is a directory");
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", tmpdir, (long)getpid());
  CHECK(!exists(tmp));
}

int main(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/kiln-test-train-report-XXXXXX");
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    return 1;
  }
  RUN(test_nice_ticks);
  RUN(test_nice_range);
  RUN(test_fmt_eta);
  RUN(test_fmt_bar);
  RUN(test_progress_lines);
  RUN(test_progress_log_schedule);
  RUN(test_progress_terminal);
  RUN(test_early_stopping);
  RUN(test_curve_content);
  RUN(test_curve_write);
  rmdir(tmpdir);
  return TEST_SUMMARY();
}
