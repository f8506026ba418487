/* test_data_set.c — loading data sets from a `data` configuration: value
 * scaling and normalisation, the train/validation split, per-epoch
 * shuffling, augmentation against hand-computed images, and the batch
 * iterator. Files are written to a temporary directory; the readers
 * themselves are tested in test_data.c. */
#include "runtime/data/data.h"
#include "support/support.h"
#include "test.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmp_dir[64];
static char made[32][128];
static int n_made;
static kiln_error err;

static const char *write_file(const char *name, const void *data, size_t len) {
  KILN_ASSERT(n_made < (int)ARRAY_LEN(made));
  char *path = made[n_made++];
  snprintf(path, sizeof made[0], "%s/%s", tmp_dir, name);
  FILE *f = fopen(path, "wb");
  KILN_ASSERT(f);
  KILN_ASSERT(fwrite(data, 1, len, f) == len);
  fclose(f);
  return path;
}

/* IDX images [n, h, w] with pixel j of image i = (i * 7 + j) % 256, and
 * labels [n_labels] with label i = i % 10. */
static const char *idx_images(const char *name, uint32_t n, uint32_t h,
                              uint32_t w) {
  size_t len = 16 + (size_t)n * h * w;
  unsigned char *b = malloc(len);
  uint32_t head[4] = {0x803, n, h, w};
  for (int k = 0; k < 4; k++)
    for (int j = 0; j < 4; j++)
      b[4 * k + j] = (unsigned char)(head[k] >> (24 - 8 * j));
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < (size_t)h * w; j++)
      b[16 + i * h * w + j] = (unsigned char)((i * 7 + j) % 256);
  const char *p = write_file(name, b, len);
  free(b);
  return p;
}

static const char *idx_labels(const char *name, uint32_t n) {
  unsigned char b[1024];
  KILN_ASSERT(8 + n <= sizeof b);
  uint32_t head[2] = {0x801, n};
  for (int k = 0; k < 2; k++)
    for (int j = 0; j < 4; j++)
      b[4 * k + j] = (unsigned char)(head[k] >> (24 - 8 * j));
  for (uint32_t i = 0; i < n; i++)
    b[8 + i] = (unsigned char)(i % 10);
  return write_file(name, b, 8 + n);
}

static ir_data_cfg idx_cfg(const char *ti, const char *tl, const char *vi,
                           const char *vl) {
  ir_data_cfg c;
  memset(&c, 0, sizeof c);
  c.format = IR_DATA_IDX;
  c.train_images = ti, c.train_labels = tl;
  c.test_images = vi, c.test_labels = vl;
  c.validation = 0.2;
  c.shuffle = true;
  c.mean = 0.5, c.std = 0.25;
  return c;
}

static const char *tr_i, *tr_l, *te_i, *te_l;

TEST(test_load_and_split) {
  ir_data_cfg cfg = idx_cfg(tr_i, tr_l, te_i, te_l);
  data_sets d;
  CHECK_EQ_INT(data_sets_load(&d, &cfg, 7, &err), KILN_OK);
  CHECK_EQ_INT(d.train.n, 80);
  CHECK_EQ_INT(d.validation.n, 20);
  CHECK_EQ_INT(d.test.n, 30);
  CHECK_EQ_INT(d.train.n_classes, 10);
  CHECK(d.train.rank == 3 && d.train.shape[0] == 1 && d.train.shape[1] == 2 &&
        d.train.shape[2] == 3);
  /* (x / 255 - 0.5) / 0.25, in float as torchvision computes it. */
  for (int64_t i = 0; i < 30; i++)
    for (int64_t j = 0; j < 6; j++) {
      float px = (float)((i * 7 + j) % 256);
      CHECK(d.test.x[i * 6 + j] == (px / 255.0f - 0.5f) / 0.25f);
    }
  /* Every row in exactly one set; each set ascending. */
  int seen[100] = {0};
  for (int64_t i = 0; i < d.train.n; i++) {
    seen[d.train.rows[i]]++;
    CHECK(i == 0 || d.train.rows[i] > d.train.rows[i - 1]);
  }
  for (int64_t i = 0; i < d.validation.n; i++) {
    seen[d.validation.rows[i]] += 2;
    CHECK(i == 0 || d.validation.rows[i] > d.validation.rows[i - 1]);
  }
  for (int r = 0; r < 100; r++)
    CHECK(seen[r] == 1 || seen[r] == 2);
  /* Not the last 20%: a class-sorted file still gives a mixed set. */
  CHECK(d.validation.rows[0] < 80);
  int64_t first_val[20];
  memcpy(first_val, d.validation.rows, sizeof first_val);
  data_sets_free(&d);

  /* The same seed, the same split; another seed, another split. */
  CHECK_EQ_INT(data_sets_load(&d, &cfg, 7, &err), KILN_OK);
  CHECK(memcmp(first_val, d.validation.rows, sizeof first_val) == 0);
  data_sets_free(&d);
  CHECK_EQ_INT(data_sets_load(&d, &cfg, 8, &err), KILN_OK);
  CHECK(memcmp(first_val, d.validation.rows, sizeof first_val) != 0);
  data_sets_free(&d);

  /* No hold-out, no test files. */
  cfg = idx_cfg(tr_i, tr_l, NULL, NULL);
  cfg.validation = 0;
  CHECK_EQ_INT(data_sets_load(&d, &cfg, 7, &err), KILN_OK);
  CHECK(d.train.n == 100 && d.train.rows == NULL && d.validation.n == 0);
  CHECK(d.test.n == 0 && d.test.rank == 3);
  data_sets_free(&d);
  /* 0.005 * 100 rounds to 1 held-out example. */
  cfg.validation = 0.005;
  CHECK_EQ_INT(data_sets_load(&d, &cfg, 7, &err), KILN_OK);
  CHECK(d.train.n == 99 && d.validation.n == 1);
  data_sets_free(&d);
}

TEST(test_load_errors) {
  data_sets d;
  const char *l50 = idx_labels("l50.idx", 50);
  ir_data_cfg cfg = idx_cfg(tr_i, l50, NULL, NULL);
  CHECK_EQ_INT(data_sets_load(&d, &cfg, 0, &err), KILN_ERR_TYPE);
  CHECK_STR_CONTAINS(err.message, "train-img.idx' has 100 images but '");
  CHECK_STR_CONTAINS(err.message, "l50.idx' has 50 labels");
  CHECK(d.train_x == NULL);

  const char *wide = idx_images("wide.idx", 30, 2, 4);
  cfg = idx_cfg(tr_i, tr_l, wide, te_l);
  CHECK_EQ_INT(data_sets_load(&d, &cfg, 0, &err), KILN_ERR_SHAPE);
  CHECK_STR_CONTAINS(err.message, "wide.idx' are [1, 2, 4] but those of '");

  cfg = idx_cfg(tr_i, tr_l, te_i, NULL);
  CHECK_EQ_INT(data_sets_load(&d, &cfg, 0, &err), KILN_ERR_INVALID);
  CHECK_STR_CONTAINS(err.message, "test_images and test_labels must be set "
                                  "together");
  cfg = idx_cfg(tr_i, tr_l, NULL, NULL);
  cfg.validation = 1;
  CHECK_EQ_INT(data_sets_load(&d, &cfg, 0, &err), KILN_ERR_INVALID);
  CHECK_STR_CONTAINS(err.message, "validation must be in [0, 1)");
  cfg.validation = 0.999;
  CHECK_EQ_INT(data_sets_load(&d, &cfg, 0, &err), KILN_ERR_INVALID);
  CHECK_STR_CONTAINS(err.message, "holds out all 100 training examples");
  cfg.validation = 0;
  cfg.std = 0;
  CHECK_EQ_INT(data_sets_load(&d, &cfg, 0, &err), KILN_ERR_INVALID);
  CHECK_STR_CONTAINS(err.message, "positive std");

  const char *csv = write_file("a.csv", "1,2,3\n", 6);
  cfg = idx_cfg(csv, tr_l, NULL, NULL);
  cfg.format = IR_DATA_CSV;
  CHECK_EQ_INT(data_sets_load(&d, &cfg, 0, &err), KILN_ERR_INVALID);
  CHECK_STR_CONTAINS(err.message, "format csv reads the labels from the first "
                                  "column of train_images");
}

TEST(test_csv_set_and_fit) {
  const char *text = "label,a,b,c,d\n3,0,51,102,255\n12,1,2,3,4\n";
  const char *csv = write_file("fit.csv", text, strlen(text));
  ir_data_cfg cfg = idx_cfg(csv, NULL, NULL, NULL);
  cfg.format = IR_DATA_CSV;
  cfg.validation = 0;
  cfg.mean = 0, cfg.std = 1;
  data_sets d;
  CHECK_EQ_INT(data_sets_load(&d, &cfg, 0, &err), KILN_OK);
  CHECK(d.train.n == 2 && d.train.rank == 1 && d.train.shape[0] == 4);
  CHECK_EQ_INT(d.train.n_classes, 13);
  CHECK(d.train.x[1] == 0.2f && d.train.x[3] == 1.0f);
  int64_t bad[3] = {1, 2, 3}, good[3] = {1, 2, 2};
  CHECK_EQ_INT(data_sets_fit(&d, 3, bad, 13, &err), KILN_ERR_SHAPE);
  CHECK_STR_CONTAINS(err.message, "takes 6 values per example but the data "
                                  "has 4");
  CHECK_EQ_INT(data_sets_fit(&d, 3, good, 10, &err), KILN_ERR_TYPE);
  CHECK_STR_CONTAINS(err.message, "label 12 of example 1 of the training file "
                                  "is out of range for a model with 10 "
                                  "classes");
  CHECK_EQ_INT(data_sets_fit(&d, 3, good, 13, &err), KILN_OK);
  CHECK(d.train.rank == 3 && d.train.shape[1] == 2 && d.train.shape[2] == 2);
  CHECK(d.test.rank == 3 && d.validation.rank == 3);
  data_sets_free(&d);
}

/* ---- random numbers and shuffling ---- */

static bool is_permutation(const int64_t *o, int64_t n) {
  char *seen = calloc((size_t)n + 1, 1);
  bool ok = true;
  for (int64_t i = 0; i < n; i++) {
    ok = ok && o[i] >= 0 && o[i] < n && !seen[o[i]];
    if (o[i] >= 0 && o[i] < n)
      seen[o[i]] = 1;
  }
  free(seen);
  return ok;
}

TEST(test_shuffle) {
  enum { N = 1000 };
  static int64_t a[N], b[N], c[N];
  data_shuffle(a, N, 42, 0);
  data_shuffle(b, N, 42, 0);
  CHECK(is_permutation(a, N));
  CHECK(memcmp(a, b, sizeof a) == 0); /* same (seed, epoch) */
  data_shuffle(b, N, 42, 1);
  CHECK(is_permutation(b, N));
  CHECK(memcmp(a, b, sizeof a) != 0); /* another epoch */
  data_shuffle(c, N, 43, 0);
  CHECK(memcmp(a, c, sizeof a) != 0); /* another seed */
  int fixed = 0;
  for (int i = 0; i < N; i++)
    fixed += a[i] == i;
  CHECK(fixed < 10); /* a shuffle, not the identity: ~1 expected */
  data_shuffle(a, 1, 1, 1);
  CHECK(a[0] == 0);
  data_shuffle(a, 0, 1, 1);

  /* Uniformity of data_rng_below and data_rng_unit, loosely (5 sigma). */
  data_rng r = data_rng_init(1, 2, 3, 4);
  int counts[10] = {0};
  double sum = 0;
  for (int i = 0; i < 100000; i++) {
    counts[data_rng_below(&r, 10)]++;
    double u = data_rng_unit(&r);
    CHECK(u >= 0 && u < 1);
    sum += u;
  }
  for (int k = 0; k < 10; k++)
    CHECK(counts[k] > 10000 - 475 && counts[k] < 10000 + 475);
  CHECK_NEAR(sum / 100000, 0.5, 0.005);
  data_rng r2 = data_rng_init(1, 2, 3, 5);
  data_rng r3 = data_rng_init(1, 2, 3, 5);
  CHECK(data_rng_next(&r2) == data_rng_next(&r3));
  r = data_rng_init(1, 2, 3, 4);
  CHECK(data_rng_next(&r) != data_rng_next(&r2));
}

/* ---- augmentation ---- */

/* A 1 x 3 x 4 image with values 1..12, row by row. */
static void image_3x4(float *x) {
  for (int i = 0; i < 12; i++)
    x[i] = (float)(i + 1);
}

static bool same(const float *a, const float *b, int n) {
  return memcmp(a, b, sizeof(float) * (size_t)n) == 0;
}

/* The first seed whose example 0, augmentation 0 of epoch 0 draws `want`
 * from data_rng_below(span) twice (or, with span2 = 0, once after a unit
 * draw below p). Tests pin down exact outcomes this way. */
static uint64_t seed_for_crop(uint64_t span, uint64_t top, uint64_t left) {
  for (uint64_t s = 0;; s++) {
    data_rng r = data_rng_init(s, DATA_STREAM_AUGMENT, 0, 0);
    uint64_t t = data_rng_below(&r, span), l = data_rng_below(&r, span);
    if (t == top && l == left)
      return s;
  }
}

TEST(test_augment_flip_and_identity) {
  float x[24], orig[24];
  image_3x4(x);
  image_3x4(x + 12);
  memcpy(orig, x, sizeof x);
  ir_augment flip = {.kind = IR_AUG_HFLIP, .p = 1};
  data_augment_batch(x, 2, 1, 3, 4, &flip, 1, 5, 0, 0);
  static const float want[12] = {4, 3, 2, 1, 8, 7, 6, 5, 12, 11, 10, 9};
  CHECK(same(x, want, 12) && same(x + 12, want, 12));
  /* Two channels of one example flip together. */
  memcpy(x, orig, sizeof x);
  data_augment_batch(x, 1, 2, 3, 4, &flip, 1, 5, 0, 0);
  CHECK(same(x, want, 12) && same(x + 12, want, 12));

  /* p = 0 is the identity for every kind, whatever the seed. */
  ir_augment none[3] = {{.kind = IR_AUG_HFLIP, .p = 0},
                        {.kind = IR_AUG_CUTOUT, .size = 2, .p = 0},
                        {.kind = IR_AUG_RANDOM_CROP, .padding = 0}};
  for (uint64_t s = 0; s < 50; s++) {
    memcpy(x, orig, sizeof x);
    data_augment_batch(x, 2, 1, 3, 4, none, 3, s, s, (int64_t)s);
    CHECK(same(x, orig, 24));
  }
  /* hflip(p = 0.5) flips about half of the examples. */
  int flipped = 0;
  for (int64_t i = 0; i < 2000; i++) {
    image_3x4(x);
    flip.p = 0.5;
    data_augment_batch(x, 1, 1, 3, 4, &flip, 1, 9, 3, i);
    flipped += same(x, want, 12);
  }
  CHECK(flipped > 900 && flipped < 1100);
}

TEST(test_augment_crop) {
  float x[12];
  ir_augment crop = {.kind = IR_AUG_RANDOM_CROP, .padding = 1};
  /* top = 0, left = 2: the window starts one row above the image and one
   * column right of it. */
  image_3x4(x);
  data_augment_batch(x, 1, 1, 3, 4, &crop, 1, seed_for_crop(3, 0, 2), 0, 0);
  static const float want_a[12] = {0, 0, 0, 0, 2, 3, 4, 0, 6, 7, 8, 0};
  CHECK(same(x, want_a, 12));
  /* top = 2, left = 0: one row down, one column left. */
  image_3x4(x);
  data_augment_batch(x, 1, 1, 3, 4, &crop, 1, seed_for_crop(3, 2, 0), 0, 0);
  static const float want_b[12] = {0, 5, 6, 7, 0, 9, 10, 11, 0, 0, 0, 0};
  CHECK(same(x, want_b, 12));
  /* top = left = 1: the image itself. */
  image_3x4(x);
  data_augment_batch(x, 1, 1, 3, 4, &crop, 1, seed_for_crop(3, 1, 1), 0, 0);
  static const float want_c[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  CHECK(same(x, want_c, 12));
  /* Padding 2, top = 4, left = 4 (two down, two right), two channels. */
  float y[24];
  image_3x4(y);
  image_3x4(y + 12);
  crop.padding = 2;
  data_augment_batch(y, 1, 2, 3, 4, &crop, 1, seed_for_crop(5, 4, 4), 0, 0);
  static const float want_d[12] = {11, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  CHECK(same(y, want_d, 12) && same(y + 12, want_d, 12));
  /* Padding past the image's size: all offsets are reached, none crash. */
  crop.padding = 9;
  int seen[19 * 19] = {0};
  for (int64_t i = 0; i < 4000; i++) {
    image_3x4(x);
    data_augment_batch(x, 1, 1, 3, 4, &crop, 1, 1, 0, i);
    data_rng r = data_rng_init(1, DATA_STREAM_AUGMENT, 0, (uint64_t)i * 16);
    uint64_t t = data_rng_below(&r, 19), l = data_rng_below(&r, 19);
    seen[t * 19 + l] = 1;
    /* The same window computed directly. */
    float want[12];
    for (int yy = 0; yy < 3; yy++)
      for (int xx = 0; xx < 4; xx++) {
        int sy = yy + (int)t - 9, sx = xx + (int)l - 9;
        want[yy * 4 + xx] = sy >= 0 && sy < 3 && sx >= 0 && sx < 4
                                ? (float)(sy * 4 + sx + 1)
                                : 0;
      }
    CHECK(same(x, want, 12));
  }
  int reached = 0;
  for (int k = 0; k < 19 * 19; k++)
    reached += seen[k];
  CHECK_EQ_INT(reached, 19 * 19);
}

TEST(test_augment_cutout) {
  float x[12];
  ir_augment cut = {.kind = IR_AUG_CUTOUT, .size = 3, .p = 1};
  /* Find seeds whose centre is (0, 0) and (1, 2): a unit draw, then cy,
   * then cx. */
  uint64_t s00 = 0, s12 = 0;
  bool f00 = false, f12 = false;
  for (uint64_t s = 0; !(f00 && f12); s++) {
    data_rng r = data_rng_init(s, DATA_STREAM_AUGMENT, 0, 0);
    data_rng_unit(&r);
    uint64_t cy = data_rng_below(&r, 3), cx = data_rng_below(&r, 4);
    if (!f00 && cy == 0 && cx == 0)
      s00 = s, f00 = true;
    if (!f12 && cy == 1 && cx == 2)
      s12 = s, f12 = true;
  }
  /* Centre (0, 0), size 3: rows -1..1 and columns -1..1, clipped. */
  image_3x4(x);
  data_augment_batch(x, 1, 1, 3, 4, &cut, 1, s00, 0, 0);
  static const float want_a[12] = {0, 0, 3, 4, 0, 0, 7, 8, 9, 10, 11, 12};
  CHECK(same(x, want_a, 12));
  /* Centre (1, 2), size 3: rows 0..2, columns 1..3. */
  image_3x4(x);
  data_augment_batch(x, 1, 1, 3, 4, &cut, 1, s12, 0, 0);
  static const float want_b[12] = {1, 0, 0, 0, 5, 0, 0, 0, 9, 0, 0, 0};
  CHECK(same(x, want_b, 12));
  /* Size 2 at (1, 2): rows 0..1, columns 1..2 (S/2 rounds down). */
  cut.size = 2;
  image_3x4(x);
  data_augment_batch(x, 1, 1, 3, 4, &cut, 1, s12, 0, 0);
  static const float want_c[12] = {1, 0, 0, 4, 5, 0, 0, 8, 9, 10, 11, 12};
  CHECK(same(x, want_c, 12));
}

TEST(test_augment_keys) {
  /* The same examples give the same result however the batch is cut; a
   * different epoch gives a different result. */
  enum { B = 8, E = 1 * 6 * 6 };
  ir_augment augs[3] = {{.kind = IR_AUG_RANDOM_CROP, .padding = 2},
                        {.kind = IR_AUG_HFLIP, .p = 0.5},
                        {.kind = IR_AUG_CUTOUT, .size = 2, .p = 0.5}};
  static float a[B * E], b[B * E], c[B * E];
  for (int i = 0; i < B * E; i++)
    a[i] = b[i] = c[i] = (float)(i % 37) + 1;
  data_augment_batch(a, B, 1, 6, 6, augs, 3, 11, 2, 100);
  data_augment_batch(b, 3, 1, 6, 6, augs, 3, 11, 2, 100);
  data_augment_batch(b + 3 * E, 5, 1, 6, 6, augs, 3, 11, 2, 103);
  data_augment_batch(c, B, 1, 6, 6, augs, 3, 11, 3, 100);
  CHECK(same(a, b, B * E));
  CHECK(!same(a, c, B * E));

  /* Each augmentation of the list has its own numbers: two hflip(0.5)
   * leave an example flipped when exactly one fires, half of the time (with
   * shared numbers they would always cancel). */
  ir_augment two[2] = {{.kind = IR_AUG_HFLIP, .p = 0.5},
                       {.kind = IR_AUG_HFLIP, .p = 0.5}};
  int flipped = 0;
  for (int64_t i = 0; i < 1000; i++) {
    float x[2] = {1, 2};
    data_augment_batch(x, 1, 1, 1, 2, two, 2, 4, 0, i);
    flipped += x[0] == 2;
  }
  CHECK(flipped > 420 && flipped < 580);

  kiln_error e;
  int64_t img[3] = {1, 6, 6}, vec[1] = {784};
  CHECK_EQ_INT(data_augment_check(augs, 3, 3, img, &e), KILN_OK);
  CHECK_EQ_INT(data_augment_check(augs, 3, 1, vec, &e), KILN_ERR_SHAPE);
  CHECK_STR_CONTAINS(e.message, "augmentation needs image examples [C, H, W]; "
                                "these are [784]");
  augs[1].p = 1.5;
  CHECK_EQ_INT(data_augment_check(augs, 3, 3, img, &e), KILN_ERR_INVALID);
  CHECK_STR_CONTAINS(e.message, "hflip: p must be in [0, 1], got 1.5");
  augs[1].p = 0.5;
  augs[0].padding = -1;
  CHECK_EQ_INT(data_augment_check(augs, 3, 3, img, &e), KILN_ERR_INVALID);
  CHECK_STR_CONTAINS(e.message, "random_crop: padding must be in 0..");
  augs[0].padding = 2;
  augs[2].size = 0;
  CHECK_EQ_INT(data_augment_check(augs, 3, 3, img, &e), KILN_ERR_INVALID);
  CHECK_STR_CONTAINS(e.message, "cutout: size must be at least 1");
}

/* ---- batches ---- */

TEST(test_batches) {
  /* 10 examples of 1 x 1 x 2; example r holds (r, -r), label r % 3. */
  float store[20];
  int32_t labels[10];
  for (int r = 0; r < 10; r++) {
    store[2 * r] = (float)r;
    store[2 * r + 1] = (float)-r;
    labels[r] = r % 3;
  }
  int64_t rows[7] = {0, 2, 3, 5, 6, 8, 9};
  data_set s = {.name = "train",
                .n = 7,
                .rank = 3,
                .shape = {1, 1, 2},
                .example_size = 2,
                .x = store,
                .y = labels,
                .rows = rows,
                .n_classes = 3};
  data_iter it;
  CHECK_EQ_INT(data_iter_init(&it, &s, 3, NULL, 1, &err), KILN_OK);
  CHECK_EQ_INT(data_iter_steps(&it), 3);
  float x[6];
  int32_t y[3];
  /* Evaluation: the set's own order; the last batch has 1 example. */
  int64_t want_rows[7] = {0, 2, 3, 5, 6, 8, 9}, k = 0;
  for (int64_t step = 0; step < 3; step++) {
    int64_t got = data_iter_fill(&it, step, x, y);
    CHECK_EQ_INT(got, step < 2 ? 3 : 1);
    for (int64_t i = 0; i < got; i++, k++) {
      CHECK(x[2 * i] == (float)want_rows[k] && x[2 * i + 1] == -x[2 * i]);
      CHECK_EQ_INT(y[i], want_rows[k] % 3);
    }
  }
  CHECK_EQ_INT(data_iter_fill(&it, 3, x, y), 0);
  CHECK_EQ_INT(data_iter_fill(&it, -1, x, y), 0);
  data_iter_free(&it);

  /* Training with shuffle and an augmentation that never fires: every row
   * once per epoch, labels with their images, epochs in different orders,
   * and an epoch's order computed again is the same. */
  ir_data_cfg cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.shuffle = true;
  cfg.n_augment = 1;
  cfg.augment[0] = (ir_augment){.kind = IR_AUG_HFLIP, .p = 0};
  CHECK_EQ_INT(data_iter_init(&it, &s, 3, &cfg, 99, &err), KILN_OK);
  float order[2][7];
  for (uint64_t epoch = 0; epoch < 2; epoch++) {
    data_iter_set_epoch(&it, epoch);
    int count[10] = {0};
    k = 0;
    for (int64_t step = 0; step < data_iter_steps(&it); step++) {
      int64_t got = data_iter_fill(&it, step, x, y);
      for (int64_t i = 0; i < got; i++, k++) {
        int r = (int)x[2 * i];
        CHECK(r >= 0 && r < 10 && x[2 * i + 1] == -x[2 * i]);
        CHECK_EQ_INT(y[i], r % 3);
        count[r]++;
        order[epoch][k] = x[2 * i];
      }
    }
    CHECK_EQ_INT(k, 7);
    for (int r = 0; r < 10; r++)
      CHECK_EQ_INT(count[r], (r == 1 || r == 4 || r == 7) ? 0 : 1);
  }
  CHECK(memcmp(order[0], order[1], sizeof order[0]) != 0);
  data_iter_set_epoch(&it, 0);
  int64_t got = data_iter_fill(&it, 1, x, y);
  CHECK(got == 3 && x[0] == order[0][3] && x[2] == order[0][4]);
  data_iter_free(&it);

  /* Training batches are augmented: flip(p = 1) swaps the two values. */
  cfg.shuffle = false;
  cfg.augment[0].p = 1;
  CHECK_EQ_INT(data_iter_init(&it, &s, 4, &cfg, 99, &err), KILN_OK);
  CHECK_EQ_INT(data_iter_fill(&it, 1, x, y), 3);
  CHECK(x[0] == -6.0f && x[1] == 6.0f && x[4] == -9.0f && x[5] == 9.0f);
  data_iter_free(&it);

  CHECK_EQ_INT(data_iter_init(&it, &s, 0, NULL, 1, &err), KILN_ERR_INVALID);
  CHECK_STR_CONTAINS(err.message, "batch must be at least 1");
  s.rank = 1, s.shape[0] = 2;
  CHECK_EQ_INT(data_iter_init(&it, &s, 4, &cfg, 1, &err), KILN_ERR_SHAPE);
}

int main(void) {
  snprintf(tmp_dir, sizeof tmp_dir, "/tmp/kiln-test-data-set-XXXXXX");
  if (!mkdtemp(tmp_dir)) {
    perror("mkdtemp");
    return 1;
  }
  tr_i = idx_images("train-img.idx", 100, 2, 3);
  tr_l = idx_labels("train-lab.idx", 100);
  te_i = idx_images("test-img.idx", 30, 2, 3);
  te_l = idx_labels("test-lab.idx", 30);
  RUN(test_load_and_split);
  RUN(test_load_errors);
  RUN(test_csv_set_and_fit);
  RUN(test_shuffle);
  RUN(test_augment_flip_and_identity);
  RUN(test_augment_crop);
  RUN(test_augment_cutout);
  RUN(test_augment_keys);
  RUN(test_batches);
  for (int i = 0; i < n_made; i++)
    unlink(made[i]);
  rmdir(tmp_dir);
  return TEST_SUMMARY();
}
