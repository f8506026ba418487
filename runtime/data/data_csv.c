/* data_csv.c — comma-separated examples, the layout of Kaggle's
 * Fashion-MNIST CSV files:
 *
 *   label,pixel1,pixel2,...,pixel784      <- optional header row
 *   9,0,0,0,...,0
 *
 * One example per line: the label (a non-negative integer) in the first
 * column, then F features. The first row is a header when any of its fields
 * is not a number; every other row must be all numbers. Every row has the
 * same number of columns as the first. Fields may be padded with spaces or
 * tabs; lines may end in CRLF; blank lines are allowed only at the end.
 * No quoting: a numeric CSV has no use for it.
 *
 * Examples are [F]: data_sets_fit gives them the model's input shape (784
 * -> [1, 28, 28]). When every feature in the file is an integer in 0..255
 * the file is read as 8-bit pixels (u8), so it is scaled to [0, 1] exactly
 * as the IDX files of the same data are; any other value makes the
 * features plain floats, taken as written.
 *
 * Errors point at file:line:col and show the line with a caret. */
#include "runtime/data/data.h"

#include "support/support.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct csv_field {
  const char *p; /* trimmed */
  size_t len;
} csv_field;

/* number := [+-] ( digits [ "." [digits] ] | "." digits ) [ [eE] [+-] digits ]
 * The same subset strtod reads, without its "inf", "nan" and hex forms. */
static bool is_number(csv_field f, bool *integer) {
  size_t i = 0, digits = 0;
  if (i < f.len && (f.p[i] == '+' || f.p[i] == '-'))
    i++;
  bool neg = f.len > 0 && f.p[0] == '-';
  while (i < f.len && f.p[i] >= '0' && f.p[i] <= '9')
    i++, digits++;
  *integer = !neg;
  if (i < f.len && f.p[i] == '.') {
    *integer = false;
    i++;
    while (i < f.len && f.p[i] >= '0' && f.p[i] <= '9')
      i++, digits++;
  }
  if (digits == 0)
    return false;
  if (i < f.len && (f.p[i] == 'e' || f.p[i] == 'E')) {
    *integer = false;
    i++;
    if (i < f.len && (f.p[i] == '+' || f.p[i] == '-'))
      i++;
    size_t exp_digits = 0;
    while (i < f.len && f.p[i] >= '0' && f.p[i] <= '9')
      i++, exp_digits++;
    if (exp_digits == 0)
      return false;
  }
  return i == f.len;
}

/* Splits line [p, end) at commas into fields trimmed of blanks; returns the
 * number of fields (at most cap are stored). */
static int64_t split(const char *p, const char *end, csv_field *fields,
                     int64_t cap) {
  int64_t n = 0;
  for (;;) {
    const char *q = p;
    while (q < end && *q != ',')
      q++;
    const char *a = p, *b = q;
    while (a < b && (*a == ' ' || *a == '\t'))
      a++;
    while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
      b--;
    if (n < cap)
      fields[n] = (csv_field){a, (size_t)(b - a)};
    n++;
    if (q == end)
      return n;
    p = q + 1;
  }
}

static int col_of(const char *line, const char *at) {
  return (int)(at - line) + 1;
}

typedef struct csv_state {
  src_file file;
  float *x;
  int32_t *y;
  int64_t n, cap; /* examples stored, and room for */
  int64_t columns;
  csv_field *fields; /* columns + 1 entries: one spare to see extra fields */
  bool all_u8;
} csv_state;

static kiln_status csv_row(csv_state *s, int line_no, const char *line,
                           const char *end, kiln_error *err) {
  kiln_loc loc = {&s->file, line_no, 1};
  int64_t got = split(line, end, s->fields, s->columns + 1);
  if (got != s->columns) {
    if (got > s->columns)
      loc.col = col_of(line, s->fields[s->columns].p);
    return diag_error(err, KILN_ERR_TYPE, loc,
                      "ragged row: %lld columns, expected %lld as in the "
                      "first row",
                      (long long)got, (long long)s->columns);
  }
  if (s->n == s->cap) {
    s->cap = s->cap ? s->cap * 2 : 256;
    int64_t floats = 0;
    if (!data_mul_ok(s->cap, s->columns - 1, &floats) ||
        floats > DATA_MAX_FILE_BYTES / (int64_t)sizeof(float))
      return diag_error(err, KILN_ERR_TYPE, loc, "too much data in one file");
    s->x = realloc(s->x, (size_t)floats * sizeof(float));
    s->y = realloc(s->y, (size_t)s->cap * sizeof(int32_t));
    KILN_ASSERT(s->x && s->y && "out of memory");
  }
  for (int64_t i = 0; i < s->columns; i++) {
    csv_field f = s->fields[i];
    loc.col = col_of(line, f.p);
    bool integer = false;
    if (!is_number(f, &integer))
      return diag_error(err, KILN_ERR_TYPE, loc,
                        "expected a number, found '%.*s'",
                        (int)(f.len > 40 ? 40 : f.len), f.p);
    /* The field ends at a comma, blank or line end, so strtod stops at the
     * end of the number validated above. */
    double v = strtod(f.p, NULL);
    if (i == 0) {
      if (!integer || v >= DATA_MAX_CLASSES)
        return diag_error(err, KILN_ERR_TYPE, loc,
                          "the label must be an integer in 0..%d, found "
                          "'%.*s'",
                          DATA_MAX_CLASSES - 1, (int)(f.len > 40 ? 40 : f.len),
                          f.p);
      s->y[s->n] = (int32_t)v;
      continue;
    }
    float fv = (float)v;
    if (!isfinite(fv))
      return diag_error(err, KILN_ERR_TYPE, loc,
                        "'%.*s' is out of the range of a float",
                        (int)(f.len > 40 ? 40 : f.len), f.p);
    if (!integer || v > 255)
      s->all_u8 = false;
    s->x[s->n * (s->columns - 1) + (i - 1)] = fv;
  }
  s->n++;
  return KILN_OK;
}

static kiln_status csv_parse(csv_state *s, kiln_error *err) {
  const char *p = s->file.text, *end = p + s->file.len;
  int line_no = 0, blank_line = 0;
  bool first = true;
  while (p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    const char *next = eol ? eol + 1 : end;
    const char *line = p, *stop = eol ? eol : end;
    p = next;
    if (line_no == INT_MAX) {
      kiln_loc none = {NULL, 0, 0};
      return diag_error(err, KILN_ERR_TYPE, none, "'%s': too many lines",
                        s->file.name);
    }
    line_no++;
    if (stop > line && stop[-1] == '\r')
      stop--;
    const char *q = line;
    while (q < stop && (*q == ' ' || *q == '\t'))
      q++;
    if (q == stop) {
      if (!blank_line)
        blank_line = line_no;
      continue;
    }
    if (blank_line) {
      kiln_loc loc = {&s->file, blank_line, 1};
      return diag_error(err, KILN_ERR_TYPE, loc,
                        "blank line before the end of the file");
    }
    if (first) {
      first = false;
      s->columns = split(line, stop, NULL, 0);
      if (s->columns < 2) {
        kiln_loc loc = {&s->file, line_no, 1};
        return diag_error(err, KILN_ERR_TYPE, loc,
                          "expected a label and at least one feature per row");
      }
      s->fields = malloc((size_t)(s->columns + 1) * sizeof(csv_field));
      KILN_ASSERT(s->fields && "out of memory");
      split(line, stop, s->fields, s->columns + 1);
      bool numeric = true, integer = false;
      for (int64_t i = 0; i < s->columns; i++)
        numeric = numeric && is_number(s->fields[i], &integer);
      if (!numeric)
        continue; /* a header row: names are not checked */
    }
    kiln_status st = csv_row(s, line_no, line, stop, err);
    if (st != KILN_OK)
      return st;
  }
  if (s->n == 0) {
    kiln_loc loc = {&s->file, line_no > 0 ? line_no : 1, 1};
    return diag_error(err, KILN_ERR_TYPE, loc, "no examples in the file");
  }
  return KILN_OK;
}

kiln_status data_csv_read(const char *path, data_images *im, data_labels *lb,
                          kiln_error *err) {
  memset(im, 0, sizeof *im);
  memset(lb, 0, sizeof *lb);
  data_bytes b;
  kiln_status st = data_file_read(path, &b, err);
  if (st != KILN_OK)
    return st;
  csv_state s = {.file = {path, (const char *)b.data, b.len}, .all_u8 = true};
  if (memchr(b.data, '\0', b.len)) {
    kiln_loc none = {NULL, 0, 0};
    st = diag_error(err, KILN_ERR_TYPE, none,
                    "'%s': a NUL byte: this is not a text CSV file", path);
  } else {
    st = csv_parse(&s, err);
  }
  free(s.fields);
  data_bytes_free(&b);
  if (st != KILN_OK) {
    free(s.x);
    free(s.y);
    return st;
  }
  im->n = s.n;
  im->rank = 1;
  im->shape[0] = s.columns - 1;
  im->example_size = s.columns - 1;
  im->x = s.x;
  im->u8 = s.all_u8;
  lb->n = s.n;
  lb->y = s.y;
  return KILN_OK;
}
