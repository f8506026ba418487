/* data_set.c — the train, validation and test sets of a model's `data`
 * section, and the random numbers of the data stage.
 *
 * Loading (data_sets_load):
 *   1. read images and labels in cfg->format; their counts must agree;
 *   2. values: 8-bit sources are divided by 255 (float32, as torchvision's
 *      ToTensor does), then every value becomes (x - mean) / std, again in
 *      float32 as torchvision's Normalize computes it;
 *   3. split: a permutation of the training rows keyed by (seed,
 *      DATA_STREAM_SPLIT) chooses the validation rows: its first
 *      round(validation * n) entries. The choice depends on the seed and on
 *      n only, so a file sorted by class still gives a validation set drawn
 *      from every class. Each set lists its rows in file order; the batch
 *      iterator shuffles.
 * The test set is the test files, whole, when both paths are set.
 *
 * Random numbers: splitmix64's output function applied to key + counter, a
 * counter-based generator whose key absorbs (seed, stream, a, b). The
 * generator for epoch e's order is (seed, DATA_STREAM_SHUFFLE, e, 0), so any
 * epoch's order is computed directly, identically on every process.
 * support/philox.c (Philox4x32-10, shared with the GPU kernels) may replace
 * it later; nothing outside this file depends on how the bits are made. */
#include "runtime/data/data.h"

#include "support/support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const kiln_loc no_loc = {NULL, 0, 0};

/* ---- random numbers ---- */

static const uint64_t golden = 0x9e3779b97f4a7c15u;

static uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

/* mix64 is a bijection, so for a given key distinct words give distinct
 * keys: no two (stream, a, b) of one seed share a stream by construction. */
static uint64_t absorb(uint64_t key, uint64_t word) {
  return mix64(key ^ mix64(word + golden));
}

data_rng data_rng_init(uint64_t seed, uint64_t stream, uint64_t a, uint64_t b) {
  uint64_t k = mix64(seed + golden);
  k = absorb(k, stream);
  k = absorb(k, a);
  k = absorb(k, b);
  return (data_rng){k, 0};
}

uint64_t data_rng_next(data_rng *r) {
  r->ctr++;
  return mix64(r->key + r->ctr * golden);
}

uint64_t data_rng_below(data_rng *r, uint64_t bound) {
  KILN_ASSERT(bound > 0);
  /* Reject the lowest 2^64 mod bound values so that every residue is
   * equally likely; at most one draw in two is rejected. */
  uint64_t threshold = (0 - bound) % bound;
  for (;;) {
    uint64_t v = data_rng_next(r);
    if (v >= threshold)
      return v % bound;
  }
}

double data_rng_unit(data_rng *r) {
  return (double)(data_rng_next(r) >> 11) * 0x1.0p-53;
}

void data_permutation(int64_t *order, int64_t n, data_rng *r) {
  for (int64_t i = 0; i < n; i++)
    order[i] = i;
  for (int64_t i = n - 1; i > 0; i--) {
    int64_t j = (int64_t)data_rng_below(r, (uint64_t)i + 1);
    int64_t t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
}

void data_shuffle(int64_t *order, int64_t n, uint64_t seed, uint64_t epoch) {
  data_rng r = data_rng_init(seed, DATA_STREAM_SHUFFLE, epoch, 0);
  data_permutation(order, n, &r);
}

/* ---- loading ---- */

static kiln_status read_pair(const ir_data_cfg *cfg, const char *images,
                             const char *labels, data_images *im,
                             data_labels *lb, kiln_error *err) {
  kiln_status st = KILN_OK;
  switch (cfg->format) {
  case IR_DATA_IDX:
    st = data_idx_read_images(images, im, err);
    if (st == KILN_OK)
      st = data_idx_read_labels(labels, lb, err);
    break;
  case IR_DATA_NPY:
    st = data_npy_read_images(images, im, err);
    if (st == KILN_OK)
      st = data_npy_read_labels(labels, lb, err);
    break;
  case IR_DATA_CSV:
    st = data_csv_read(images, im, lb, err);
    break;
  }
  if (st == KILN_OK && im->n != lb->n)
    st = diag_error(err, KILN_ERR_TYPE, no_loc,
                    "'%s' has %lld images but '%s' has %lld labels", images,
                    (long long)im->n, labels ? labels : images,
                    (long long)lb->n);
  if (st != KILN_OK) {
    data_images_free(im);
    data_labels_free(lb);
  }
  return st;
}

/* Checks which paths are set: CSV files carry their labels, so a separate
 * label path would be ignored, and that is refused rather than hidden. */
static kiln_status check_paths(const char *which, const ir_data_cfg *cfg,
                               const char *images, const char *labels,
                               kiln_error *err) {
  if (cfg->format == IR_DATA_CSV) {
    if (labels && (!images || strcmp(labels, images) != 0))
      return diag_error(err, KILN_ERR_INVALID, no_loc,
                        "data: format csv reads the labels from the first "
                        "column of %s_images; %s_labels must not be set",
                        which, which);
    return KILN_OK;
  }
  if (!images != !labels)
    return diag_error(err, KILN_ERR_INVALID, no_loc,
                      "data: %s_images and %s_labels must be set together",
                      which, which);
  return KILN_OK;
}

static void normalise(data_images *im, float mean, float std) {
  int64_t total = im->n * im->example_size;
  for (int64_t i = 0; i < total; i++) {
    float v = im->u8 ? im->x[i] / 255.0f : im->x[i];
    im->x[i] = (v - mean) / std;
  }
}

/* "[1, 28, 28]" */
static const char *shape_text(char buf[96], const data_images *im) {
  size_t n = 0;
  buf[n++] = '[';
  for (int i = 0; i < im->rank; i++)
    n += (size_t)snprintf(buf + n, 96 - n, "%s%lld", i ? ", " : "",
                          (long long)im->shape[i]);
  snprintf(buf + n, 96 - n, "]");
  return buf;
}

static int max_label(const data_labels *lb) {
  int32_t m = -1;
  for (int64_t i = 0; i < lb->n; i++)
    if (lb->y[i] > m)
      m = lb->y[i];
  return m;
}

static void set_from(data_set *s, const char *name, const data_images *im,
                     const int32_t *y, int64_t n, const int64_t *rows) {
  s->name = name;
  s->n = n;
  s->rank = im->rank;
  memcpy(s->shape, im->shape, sizeof s->shape);
  s->example_size = im->example_size;
  s->x = im->x;
  s->y = y;
  s->rows = rows;
}

/* Splits the n training rows into train and validation (see the top). */
static kiln_status split(data_sets *d, const data_images *im, int64_t n,
                         double fraction, uint64_t seed, kiln_error *err) {
  if (!(fraction >= 0 && fraction < 1))
    return diag_error(err, KILN_ERR_INVALID, no_loc,
                      "data: validation must be in [0, 1), got %g", fraction);
  int64_t n_val = llround(fraction * (double)n);
  if (n_val >= n)
    return diag_error(err, KILN_ERR_INVALID, no_loc,
                      "data: validation = %g holds out all %lld training "
                      "examples",
                      fraction, (long long)n);
  if (n_val == 0) {
    set_from(&d->train, "train", im, d->train_y, n, NULL);
    set_from(&d->validation, "validation", im, d->train_y, 0, NULL);
    return KILN_OK;
  }
  int64_t *order = malloc((size_t)n * sizeof(int64_t));
  unsigned char *held = calloc((size_t)n, 1);
  d->train_rows = malloc((size_t)(n - n_val) * sizeof(int64_t));
  d->validation_rows = malloc((size_t)n_val * sizeof(int64_t));
  KILN_ASSERT(order && held && d->train_rows && d->validation_rows);
  data_rng r = data_rng_init(seed, DATA_STREAM_SPLIT, 0, 0);
  data_permutation(order, n, &r);
  for (int64_t i = 0; i < n_val; i++)
    held[order[i]] = 1;
  int64_t nt = 0, nv = 0;
  for (int64_t row = 0; row < n; row++) {
    if (held[row])
      d->validation_rows[nv++] = row;
    else
      d->train_rows[nt++] = row;
  }
  KILN_ASSERT(nt == n - n_val && nv == n_val);
  free(order);
  free(held);
  set_from(&d->train, "train", im, d->train_y, nt, d->train_rows);
  set_from(&d->validation, "validation", im, d->train_y, nv,
           d->validation_rows);
  return KILN_OK;
}

kiln_status data_sets_load(data_sets *d, const ir_data_cfg *cfg, uint64_t seed,
                           kiln_error *err) {
  memset(d, 0, sizeof *d);
  if (!cfg->train_images)
    return diag_error(err, KILN_ERR_INVALID, no_loc,
                      "data: train_images is not set");
  if (!(cfg->std > 0) || !isfinite(cfg->std) || !isfinite(cfg->mean))
    return diag_error(err, KILN_ERR_INVALID, no_loc,
                      "data: normalize needs a finite mean and a positive "
                      "std, got (%g, %g)",
                      cfg->mean, cfg->std);
  kiln_status st =
      check_paths("train", cfg, cfg->train_images, cfg->train_labels, err);
  if (st == KILN_OK)
    st = check_paths("test", cfg, cfg->test_images, cfg->test_labels, err);
  if (st != KILN_OK)
    return st;

  data_images tr = {0}, te = {0};
  data_labels trl = {0}, tel = {0};
  st = read_pair(cfg, cfg->train_images, cfg->train_labels, &tr, &trl, err);
  if (st == KILN_OK && tr.n == 0)
    st = diag_error(err, KILN_ERR_TYPE, no_loc, "'%s': no training examples",
                    cfg->train_images);
  if (st == KILN_OK && cfg->test_images)
    st = read_pair(cfg, cfg->test_images, cfg->test_labels, &te, &tel, err);
  if (st == KILN_OK && te.x &&
      (te.rank != tr.rank ||
       memcmp(te.shape, tr.shape, sizeof(int64_t) * (size_t)tr.rank) != 0)) {
    char a[96], b[96];
    st = diag_error(err, KILN_ERR_SHAPE, no_loc,
                    "the examples of '%s' are %s but those of '%s' are %s",
                    cfg->test_images, shape_text(a, &te), cfg->train_images,
                    shape_text(b, &tr));
  }
  if (st != KILN_OK) {
    data_images_free(&tr);
    data_labels_free(&trl);
    data_images_free(&te);
    data_labels_free(&tel);
    return st;
  }

  normalise(&tr, (float)cfg->mean, (float)cfg->std);
  normalise(&te, (float)cfg->mean, (float)cfg->std);
  d->train_x = tr.x;
  d->train_y = trl.y;
  d->test_x = te.x;
  d->test_y = tel.y;
  st = split(d, &tr, tr.n, cfg->validation, seed, err);
  if (st != KILN_OK) {
    data_sets_free(d);
    return st;
  }
  if (te.x) {
    set_from(&d->test, "test", &te, tel.y, te.n, NULL);
  } else { /* no test files: an empty set shaped like the others */
    set_from(&d->test, "test", &tr, NULL, 0, NULL);
    d->test.x = NULL;
  }
  int top = max_label(&trl), top_test = max_label(&tel);
  int n_classes = 1 + (top > top_test ? top : top_test);
  d->train.n_classes = d->validation.n_classes = d->test.n_classes = n_classes;
  return KILN_OK;
}

static kiln_status check_labels(const char *which, const int32_t *y, int64_t n,
                                int n_classes, kiln_error *err) {
  for (int64_t i = 0; i < n; i++)
    if (y[i] >= n_classes)
      return diag_error(err, KILN_ERR_TYPE, no_loc,
                        "label %d of example %lld of the %s file is out of "
                        "range for a model with %d classes",
                        (int)y[i], (long long)i, which, n_classes);
  return KILN_OK;
}

kiln_status data_sets_fit(data_sets *d, int rank, const int64_t *shape,
                          int n_classes, kiln_error *err) {
  KILN_ASSERT(rank >= 1 && rank <= DATA_MAX_RANK);
  int64_t size = 1;
  for (int i = 0; i < rank; i++)
    if (!data_mul_ok(size, shape[i], &size))
      size = -1;
  if (size != d->train.example_size)
    return diag_error(err, KILN_ERR_SHAPE, no_loc,
                      "the model's input takes %lld values per example but "
                      "the data has %lld",
                      (long long)size, (long long)d->train.example_size);
  if (n_classes < 1)
    return diag_error(err, KILN_ERR_INVALID, no_loc, "a model with %d classes",
                      n_classes);
  /* Train and validation share the training store. */
  kiln_status st = check_labels("training", d->train_y,
                                d->train.n + d->validation.n, n_classes, err);
  if (st == KILN_OK)
    st = check_labels("test", d->test_y, d->test.n, n_classes, err);
  if (st != KILN_OK)
    return st;
  data_set *sets[] = {&d->train, &d->validation, &d->test};
  for (size_t s = 0; s < ARRAY_LEN(sets); s++) {
    sets[s]->rank = rank;
    memset(sets[s]->shape, 0, sizeof sets[s]->shape);
    memcpy(sets[s]->shape, shape, sizeof(int64_t) * (size_t)rank);
    sets[s]->n_classes = n_classes;
  }
  return KILN_OK;
}

void data_sets_free(data_sets *d) {
  free(d->train_x);
  free(d->train_y);
  free(d->test_x);
  free(d->test_y);
  free(d->train_rows);
  free(d->validation_rows);
  memset(d, 0, sizeof *d);
}
