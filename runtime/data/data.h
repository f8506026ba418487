/* data.h — the data stage of the training runtime: readers for the IDX, NPY
 * and CSV formats, the loaded train/validation/test sets, deterministic
 * shuffling, augmentation and the batch iterator. Prototypes are grouped by
 * the file that defines them.
 *
 *   ir_data_cfg --data_sets_load--> data_sets (train, validation, test)
 *     files: data_file.c reads bytes (plain or gzip), data_idx.c,
 *            data_npy.c and data_csv.c turn them into data_images/labels;
 *     data_set.c scales u8 pixels to [0,1], normalises, splits off the
 *            validation rows and owns the random numbers;
 *   data_iter --data_iter_fill(step)--> one [B, C, H, W] batch + labels,
 *            shuffled per epoch and augmented (data_augment.c) when training.
 *
 * Everything random is a pure function of (seed, purpose, epoch, index):
 * the same seed gives the same split, the same order in every epoch and the
 * same augmentation, whatever the batch size or the number of processes.
 *
 * Errors in data files are user-input errors: a kiln_status and a message
 * naming the file (CSV: file:line:col with the line and a caret). */
#ifndef KILN_RUNTIME_DATA_H
#define KILN_RUNTIME_DATA_H

#include "ir/config.h"
#include "kiln.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Rank of one example (not counting the example dimension): [F], [H, W] is
 * stored as [1, H, W], [C, H, W]. */
enum { DATA_MAX_RANK = 3 };

/* A data file (after decompression) larger than this is refused: a header
 * cannot make us allocate more, and a gzip bomb stops here. */
#define DATA_MAX_FILE_BYTES ((int64_t)8 << 30)
/* Labels are class indices; a larger one is a corrupt file, not a model
 * with a million classes. */
#define DATA_MAX_CLASSES 100000

/* ---- data_file.c: bytes in, and the arrays every reader fills ---- */

typedef struct data_bytes {
  unsigned char *data; /* len bytes plus a terminating NUL (for CSV) */
  size_t len;
} data_bytes;

/* Reads a whole file through zlib, which passes plain files through and
 * inflates gzip ones (recognised by their magic bytes, not by the name). */
kiln_status data_file_read(const char *path, data_bytes *out, kiln_error *err);
void data_bytes_free(data_bytes *b);

/* Images as stored in the file: 8-bit sources keep their 0..255 values
 * here; data_set.c scales them. */
typedef struct data_images {
  int64_t n;
  int rank; /* of one example */
  int64_t shape[DATA_MAX_RANK];
  int64_t example_size; /* product of shape */
  float *x;             /* n * example_size values, malloc'd */
  bool u8;              /* 8-bit pixel intensities */
} data_images;

typedef struct data_labels {
  int64_t n;
  int32_t *y; /* malloc'd */
} data_labels;

/* Sets the shape and allocates x, checking that n * prod(shape) neither
 * overflows nor exceeds the size limits (KILN_ERR_TYPE naming `path`). */
kiln_status data_images_alloc(data_images *im, const char *path, int64_t n,
                              int rank, const int64_t *shape, kiln_error *err);
kiln_status data_labels_alloc(data_labels *lb, const char *path, int64_t n,
                              kiln_error *err);
void data_images_free(data_images *im);
void data_labels_free(data_labels *lb);
/* a * b into *out; false on overflow or a negative operand. */
bool data_mul_ok(int64_t a, int64_t b, int64_t *out);

/* ---- data_idx.c: the MNIST family (magic 0x803 u8 [n, rows, cols],
 * 0x801 u8 [n]); big-endian header, plain or gzip ---- */

kiln_status data_idx_read_images(const char *path, data_images *out,
                                 kiln_error *err);
kiln_status data_idx_read_labels(const char *path, data_labels *out,
                                 kiln_error *err);

/* ---- data_npy.c: NumPy .npy v1/v2/v3, C order; descr <f4 <f8 |u1 <i4
 * <i8. Images [n, F], [n, H, W] or [n, C, H, W]; labels [n] integers ---- */

kiln_status data_npy_read_images(const char *path, data_images *out,
                                 kiln_error *err);
kiln_status data_npy_read_labels(const char *path, data_labels *out,
                                 kiln_error *err);

/* ---- data_csv.c: one example per row, label first, then the features;
 * an optional header row. Examples are [F]; data_sets_fit reshapes ---- */

kiln_status data_csv_read(const char *path, data_images *im, data_labels *lb,
                          kiln_error *err);

/* ---- data_set.c: loaded sets, split, random numbers ---- */

/* One set of examples: rows of a store shared between sets. */
typedef struct data_set {
  const char *name; /* "train", "validation", "test": for messages */
  int64_t n;
  int rank; /* of one example */
  int64_t shape[DATA_MAX_RANK];
  int64_t example_size;
  const float *x;      /* store: row r is x + r * example_size */
  const int32_t *y;    /* store: label of row r is y[r] */
  const int64_t *rows; /* example i is store row rows[i]; NULL: row i */
  int n_classes;       /* 1 + the largest label of train and test */
} data_set;

typedef struct data_sets {
  data_set train, validation, test; /* n == 0: absent */
  float *train_x, *test_x;          /* owned stores */
  int32_t *train_y, *test_y;
  int64_t *train_rows, *validation_rows;
} data_sets;

/* Loads train (and test, when both its paths are set) as cfg says, then
 * holds out round(cfg->validation * n) training rows chosen by a
 * permutation keyed by `seed`. On error *d is left empty. */
kiln_status data_sets_load(data_sets *d, const ir_data_cfg *cfg, uint64_t seed,
                           kiln_error *err);
/* Checks the data against a model: example shape with the same element count
 * as `shape` (then takes that shape: a CSV's [784] becomes [1, 28, 28]) and
 * every label below n_classes. */
kiln_status data_sets_fit(data_sets *d, int rank, const int64_t *shape,
                          int n_classes, kiln_error *err);
void data_sets_free(data_sets *d);

/* A counter-based generator (splitmix64's mixer over key + counter): the
 * stream is a pure function of the four key words. */
typedef struct data_rng {
  uint64_t key, ctr;
} data_rng;

enum data_stream {
  DATA_STREAM_SPLIT = 1,
  DATA_STREAM_SHUFFLE = 2,
  DATA_STREAM_AUGMENT = 3,
};

data_rng data_rng_init(uint64_t seed, uint64_t stream, uint64_t a, uint64_t b);
uint64_t data_rng_next(data_rng *r);
uint64_t data_rng_below(data_rng *r, uint64_t bound); /* uniform, unbiased */
double data_rng_unit(data_rng *r);                    /* uniform in [0, 1) */
/* order = a permutation of 0..n-1 (Fisher-Yates) drawn from r. */
void data_permutation(int64_t *order, int64_t n, data_rng *r);
/* The order of an epoch: data_permutation keyed by (seed, epoch). */
void data_shuffle(int64_t *order, int64_t n, uint64_t seed, uint64_t epoch);

/* ---- data_augment.c: random crop, horizontal flip, cutout ---- */

/* Checks parameters and that the examples are images [C, H, W]. */
kiln_status data_augment_check(const ir_augment *aug, int n_aug, int rank,
                               const int64_t *shape, kiln_error *err);
/* Augments x [batch, c, h, w] in place. Example i of the batch is the
 * (first_index + i)-th example of the epoch; its random numbers depend only
 * on (seed, epoch, that index, the augmentation's position in the list). */
void data_augment_batch(float *x, int64_t batch, int64_t c, int64_t h,
                        int64_t w, const ir_augment *aug, int n_aug,
                        uint64_t seed, uint64_t epoch, int64_t first_index);

/* ---- data_batch.c: batches of one set ---- */

typedef struct data_iter {
  const data_set *set;
  int64_t batch;
  bool shuffle;
  ir_augment augment[IR_MAX_AUGMENT]; /* a copy of the cfg's list */
  int n_augment;                      /* 0: none (evaluation) */
  uint64_t seed;
  uint64_t epoch;
  int64_t *order; /* this epoch's order of 0..n-1, malloc'd */
} data_iter;

/* Training: shuffle and augment as cfg says. Evaluation: cfg NULL, file
 * order, no augmentation. Starts at epoch 0. */
kiln_status data_iter_init(data_iter *it, const data_set *set, int64_t batch,
                           const ir_data_cfg *cfg, uint64_t seed,
                           kiln_error *err);
void data_iter_free(data_iter *it);
void data_iter_set_epoch(data_iter *it, uint64_t epoch);
/* Steps per epoch: ceil(n / batch); the last batch may be partial. */
int64_t data_iter_steps(const data_iter *it);
/* Fills x [batch, ...example shape] and y [batch] for `step` of the current
 * epoch; returns the number of examples written (batch, fewer for the last
 * step, 0 past the end). Rows past that count are left untouched. */
int64_t data_iter_fill(const data_iter *it, int64_t step, float *x, int32_t *y);

#endif
