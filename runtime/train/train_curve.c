/* train_curve.c — the learning curve of a run as one standalone SVG file
 * (no scripts, fonts or stylesheets to fetch), so a run leaves a picture
 * beside its metrics CSV:
 *
 *   +------------------------- title (model name) ------------------------+
 *   |             legend: — train  — validation  o test                   |
 *   |  loss |                          accuracy (%) |                     |
 *   |       |  train + validation            |  train + validation        |
 *   |       +---------- step                 +---------- step             |
 *
 * Each panel's axes run between multiples of a "nice" tick step (1, 2 or
 * 5 times a power of ten, Heckbert's labelling rule with a ceiling so that
 * there are at most ~5 ticks), so that a reader (and
 * tests/py/test_curve_svg.py) can map every pixel back to the data from
 * two tick labels. Structure the test relies on: a <g class="panel"> per
 * panel holding one <polyline class="train"> and one <polyline
 * class="val"> (when the series has finite points), <g class="xtick"> and
 * <g class="ytick"> groups of a <line> at the tick and a <text> label. */
#include "runtime/train/train_report.h"

#include "support/support.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const kiln_loc no_loc = {NULL, 0, 0};

/* Plot area of a panel, relative to the panel's left edge; the panels are
 * TRAIN_CURVE_W / 2 wide. */
enum { PLOT_LEFT = 70, PLOT_RIGHT = 455, PLOT_TOP = 80, PLOT_BOTTOM = 360 };

static const char *const COLOR_TRAIN = "#1f77b4", *const COLOR_VAL = "#ff7f0e",
                         *const COLOR_TEST = "#2ca02c";

/* The smallest of 1, 2, 5 x 10^k that is >= x (x > 0). The tolerance
 * keeps a step that is nice up to rounding (1.2000000000000002 - 0.2 over
 * 5 ticks) from jumping to the next one. */
static double nice_ceil(double x) {
  double p = pow(10, floor(log10(x)));
  double f = x / p;
  double n = f <= 1 + 1e-9 ? 1 : f <= 2 + 1e-9 ? 2 : f <= 5 + 1e-9 ? 5 : 10;
  return n * p;
}

int train_nice_ticks(double lo, double hi, int target, double *ticks, int cap,
                     double *step_out) {
  if (step_out)
    *step_out = 0;
  if (!isfinite(lo) || !isfinite(hi) || !(hi > lo) || target < 1)
    return 0;
  double step = nice_ceil((hi - lo) / target);
  if (step_out)
    *step_out = step;
  /* k * step, not repeated additions, so errors never accumulate; the
   * slack admits a bound that is a tick up to rounding. */
  double k0 = ceil(lo / step - 1e-9), k1 = floor(hi / step + 1e-9);
  int n = 0;
  for (double k = k0; k <= k1 && n < cap; k++)
    ticks[n++] = k * step + 0.0; /* + 0.0: never print "-0" */
  return n;
}

void train_nice_range(double *lo, double *hi, int target) {
  if (!isfinite(*lo) || !isfinite(*hi)) {
    *lo = 0, *hi = 1;
    return;
  }
  if (!(*hi > *lo)) { /* one value: a range around it */
    double v = *lo, d = v == 0 ? 1 : fabs(v) / 2;
    *lo = v - d, *hi = v + d;
  }
  double step = nice_ceil((*hi - *lo) / target);
  *lo = floor(*lo / step + 1e-9) * step + 0.0;
  *hi = ceil(*hi / step - 1e-9) * step + 0.0;
}

/* ---- drawing ---- */

typedef struct axis {
  double lo, hi; /* data range */
  double p0, p1; /* pixels for lo and hi */
} axis;

static double to_px(const axis *a, double v) {
  return a->p0 + (v - a->lo) / (a->hi - a->lo) * (a->p1 - a->p0);
}

/* Tick labels: integers in full (steps are integers; "1e+06" reads
 * badly), other values in %g, which prints 0.30000000000000004 as 0.3. */
static void put_num(FILE *out, double v) {
  if (fabs(v) < 1e15 && v == floor(v))
    fprintf(out, "%.0f", v);
  else
    fprintf(out, "%g", v);
}

static void put_escaped(FILE *out, const char *s) {
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '&')
      fputs("&amp;", out);
    else if (c == '<')
      fputs("&lt;", out);
    else if (c == '>')
      fputs("&gt;", out);
    else if (c == '"')
      fputs("&quot;", out);
    else
      fputc(c < 0x20 || c == 0x7f ? '?' : (char)c, out);
  }
}

/* The value a panel plots: loss (0) or accuracy (1). */
static double value(const train_point *p, int which) {
  return which ? p->acc : p->loss;
}

static void extend(double *lo, double *hi, double v) {
  if (isfinite(v)) {
    *lo = fmin(*lo, v);
    *hi = fmax(*hi, v);
  }
}

static void put_series(FILE *out, const train_point *pts, int n, int which,
                       const axis *x, const axis *y, const char *cls,
                       const char *color, bool dots) {
  int finite = 0;
  for (int i = 0; i < n; i++)
    finite += isfinite(value(&pts[i], which)) && isfinite((double)pts[i].step);
  if (finite == 0)
    return;
  fprintf(out,
          "<polyline class=\"%s\" fill=\"none\" stroke=\"%s\" "
          "stroke-width=\"1.5\" points=\"",
          cls, color);
  for (int i = 0, k = 0; i < n; i++) {
    double v = value(&pts[i], which);
    if (isfinite(v))
      fprintf(out, "%s%.2f,%.2f", k++ ? " " : "", to_px(x, (double)pts[i].step),
              to_px(y, v));
  }
  fputs("\"/>\n", out);
  for (int i = 0; dots && i < n; i++) {
    double v = value(&pts[i], which);
    if (isfinite(v))
      fprintf(out,
              "<circle class=\"%s-point\" cx=\"%.2f\" cy=\"%.2f\" r=\"3\" "
              "fill=\"%s\"/>\n",
              cls, to_px(x, (double)pts[i].step), to_px(y, v), color);
  }
}

static void put_ticks(FILE *out, const axis *a, bool vertical,
                      const axis *other) {
  double ticks[16];
  int n = train_nice_ticks(a->lo, a->hi, TRAIN_CURVE_TARGET_TICKS, ticks,
                           (int)ARRAY_LEN(ticks), NULL);
  for (int i = 0; i < n; i++) {
    double p = to_px(a, ticks[i]);
    if (vertical) { /* a y tick: grid line across, label left (baseline
                     * 4 px down centres 12 px digits on the line) */
      fprintf(out,
              "<g class=\"ytick\"><line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" "
              "y2=\"%.2f\" stroke=\"#dddddd\"/><text x=\"%.2f\" y=\"%.2f\" "
              "text-anchor=\"end\">",
              other->p0, p, other->p1, p, other->p0 - 6, p + 4);
    } else { /* an x tick: a mark below the axis, label under it */
      fprintf(out,
              "<g class=\"xtick\"><line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" "
              "y2=\"%.2f\" stroke=\"#000000\"/><text x=\"%.2f\" y=\"%.2f\" "
              "text-anchor=\"middle\">",
              p, other->p0, p, other->p0 + 5, p, other->p0 + 18);
    }
    put_num(out, ticks[i]);
    fputs("</text></g>\n", out);
  }
}

/* One panel at horizontal offset x0: loss (which = 0) or accuracy. */
static void put_panel(FILE *out, const train_curve *c, int which, double x0,
                      const axis *x_data) {
  double lo = INFINITY, hi = -INFINITY;
  for (int i = 0; i < c->n_train; i++)
    extend(&lo, &hi, value(&c->train[i], which));
  for (int i = 0; i < c->n_val; i++)
    extend(&lo, &hi, value(&c->val[i], which));
  if (c->test)
    extend(&lo, &hi, value(c->test, which));
  if (lo > hi) { /* nothing finite: an empty, labelled panel */
    lo = 0;
    hi = which ? 100 : 1;
  }
  train_nice_range(&lo, &hi, TRAIN_CURVE_TARGET_TICKS);
  axis x = *x_data, y = {lo, hi, PLOT_BOTTOM, PLOT_TOP};
  x.p0 += x0;
  x.p1 += x0;
  const char *name = which ? "accuracy" : "loss";
  fprintf(out, "<g class=\"panel\" id=\"%s\">\n", name);
  fprintf(out,
          "<rect x=\"%.2f\" y=\"%d\" width=\"%.2f\" height=\"%d\" "
          "fill=\"none\" stroke=\"#000000\"/>\n",
          x.p0, PLOT_TOP, x.p1 - x.p0, PLOT_BOTTOM - PLOT_TOP);
  axis y_at_left = {0, 0, x.p0, x.p1}, x_at_bottom = {0, 0, PLOT_BOTTOM, 0};
  put_ticks(out, &y, true, &y_at_left);
  put_ticks(out, &x, false, &x_at_bottom);
  fprintf(out,
          "<text class=\"xlabel\" x=\"%.2f\" y=\"%d\" "
          "text-anchor=\"middle\">step</text>\n",
          (x.p0 + x.p1) / 2, PLOT_BOTTOM + 40);
  fprintf(out,
          "<text class=\"ylabel\" x=\"%.2f\" y=\"%d\" text-anchor=\"middle\" "
          "transform=\"rotate(-90 %.2f %d)\">%s</text>\n",
          x0 + 20, (PLOT_TOP + PLOT_BOTTOM) / 2, x0 + 20,
          (PLOT_TOP + PLOT_BOTTOM) / 2, which ? "accuracy (%)" : "loss");
  put_series(out, c->train, c->n_train, which, &x, &y, "train", COLOR_TRAIN,
             false);
  put_series(out, c->val, c->n_val, which, &x, &y, "val", COLOR_VAL, true);
  if (c->test && isfinite(value(c->test, which)))
    fprintf(out,
            "<circle class=\"test\" cx=\"%.2f\" cy=\"%.2f\" r=\"5\" "
            "fill=\"none\" stroke=\"%s\" stroke-width=\"2\"/>\n",
            to_px(&x, (double)c->test->step), to_px(&y, value(c->test, which)),
            COLOR_TEST);
  fputs("</g>\n", out);
}

static void put_legend(FILE *out, const train_curve *c) {
  const char *names[] = {"train", "validation", "test"};
  const char *colors[] = {COLOR_TRAIN, COLOR_VAL, COLOR_TEST};
  int n = c->test ? 3 : 2;
  double x = TRAIN_CURVE_W / 2.0 - 55.0 * n;
  fputs("<g class=\"legend\">\n", out);
  for (int i = 0; i < n; i++, x += 110) {
    if (i < 2)
      fprintf(out,
              "<line x1=\"%.2f\" y1=\"52\" x2=\"%.2f\" y2=\"52\" stroke=\"%s\" "
              "stroke-width=\"2\"/>\n",
              x, x + 24, colors[i]);
    else
      fprintf(out,
              "<circle cx=\"%.2f\" cy=\"52\" r=\"5\" fill=\"none\" "
              "stroke=\"%s\" stroke-width=\"2\"/>\n",
              x + 12, colors[i]);
    fprintf(out, "<text x=\"%.2f\" y=\"56\">%s</text>\n", x + 30, names[i]);
  }
  fputs("</g>\n", out);
}

void train_curve_svg(FILE *out, const train_curve *c) {
  /* One step axis for both panels, from 0: the runs start there. */
  double xlo = 0, xhi = 0;
  for (int i = 0; i < c->n_train; i++)
    extend(&xlo, &xhi, (double)c->train[i].step);
  for (int i = 0; i < c->n_val; i++)
    extend(&xlo, &xhi, (double)c->val[i].step);
  if (c->test)
    extend(&xlo, &xhi, (double)c->test->step);
  if (xhi <= xlo)
    xhi = xlo + 1; /* no points: an empty axis from 0 */
  train_nice_range(&xlo, &xhi, TRAIN_CURVE_TARGET_TICKS);
  axis x = {xlo, xhi, PLOT_LEFT, PLOT_RIGHT};
  fprintf(out,
          "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
          "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
          "height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" "
          "font-size=\"12\">\n"
          "<rect width=\"100%%\" height=\"100%%\" fill=\"#ffffff\"/>\n"
          "<text class=\"title\" x=\"%d\" y=\"28\" text-anchor=\"middle\" "
          "font-size=\"18\">",
          TRAIN_CURVE_W, TRAIN_CURVE_H, TRAIN_CURVE_W, TRAIN_CURVE_H,
          TRAIN_CURVE_W / 2);
  put_escaped(out, c->title ? c->title : "");
  fputs("</text>\n", out);
  put_legend(out, c);
  put_panel(out, c, 0, 0, &x);
  put_panel(out, c, 1, TRAIN_CURVE_W / 2.0, &x);
  fputs("</svg>\n", out);
}

kiln_status train_curve_write(const char *path, const train_curve *c,
                              kiln_error *err) {
  /* Beside the target, so that rename() stays within one file system; a
   * viewer that reloads the file never sees half a document. */
  size_t cap = strlen(path) + 32;
  char *tmp = malloc(cap);
  KILN_ASSERT(tmp && "out of memory");
  snprintf(tmp, cap, "%s.tmp.%ld", path, (long)getpid());
  errno = 0;
  FILE *f = fopen(tmp, "w");
  if (!f) {
    int saved = errno;
    free(tmp);
    return diag_error(err, KILN_ERR_IO, no_loc, "cannot write '%s': %s", path,
                      strerror(saved));
  }
  train_curve_svg(f, c);
  bool ok = !ferror(f) && fflush(f) == 0 && fsync(fileno(f)) == 0;
  int saved = errno;
  if (fclose(f) != 0 && ok) {
    ok = false;
    saved = errno;
  }
  if (ok && rename(tmp, path) != 0) {
    ok = false;
    saved = errno;
  }
  if (!ok)
    remove(tmp);
  free(tmp);
  if (!ok)
    return diag_error(err, KILN_ERR_IO, no_loc, "cannot write '%s': %s", path,
                      saved ? strerror(saved) : "write failed");
  return KILN_OK;
}
