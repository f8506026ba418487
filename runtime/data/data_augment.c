/* data_augment.c — training-time augmentation of an NCHW float batch.
 *
 * Each augmentation of the `data` section's list is applied in list order,
 * to every example, on the normalised values. Example i of a batch whose
 * first example is the e-th of epoch `epoch` draws from its own generator
 *   data_rng_init(seed, DATA_STREAM_AUGMENT, epoch, (e + i) * 16 + k)
 * for the k-th augmentation of the list, so what happens to an example
 * depends only on (seed, epoch, its position in the epoch, k): not on the
 * batch size, on how a batch is split between processes, or on the other
 * augmentations. Exact semantics, for an example of C x H x W values:
 *
 *   random_crop(padding=P): the image is padded with P zeros on every side
 *     and an H x W window is cut at top = U(0..2P), left = U(0..2P) (drawn
 *     in that order), all channels alike:
 *       out[c][y][x] = in[c][y + top - P][x + left - P], 0 outside the image.
 *     This is torchvision's RandomCrop(size=(H, W), padding=P).
 *   hflip(p): with probability p (u = U[0, 1) < p) every row is reversed:
 *       out[c][y][x] = in[c][y][W - 1 - x].
 *   cutout(size=S, p): with probability p (u drawn first), a centre
 *     cy = U(0..H-1), cx = U(0..W-1) is drawn and the square of rows
 *     [cy - S/2, cy - S/2 + S) and columns [cx - S/2, cx - S/2 + S), clipped
 *     to the image, is set to 0 in every channel (S/2 rounds down: for odd S
 *     the square is centred on (cy, cx)). As in DeVries & Taylor's Cutout the
 *     square may lie partly outside the image.
 *
 * "Zero" is zero in the normalised values, i.e. the mean pixel (with the
 * default normalize = (0, 1) that is a black pixel, as torchvision pads).
 * p = 0 never applies an augmentation and p = 1 always does. */
#include "runtime/data/data.h"

#include "support/support.h"

#include <string.h>

static const kiln_loc no_loc = {NULL, 0, 0};

/* The per-augmentation key word is index * 16 + k. */
_Static_assert(IR_MAX_AUGMENT <= 16, "augmentation key packs k in 4 bits");

/* Generous but finite: keeps 2P + 1 and the offsets far from overflow. */
enum { AUG_MAX_PADDING = 1 << 20 };

static const char *aug_name(ir_aug_kind k) {
  switch (k) {
  case IR_AUG_RANDOM_CROP:
    return "random_crop";
  case IR_AUG_HFLIP:
    return "hflip";
  case IR_AUG_CUTOUT:
    return "cutout";
  }
  return "?";
}

kiln_status data_augment_check(const ir_augment *aug, int n_aug, int rank,
                               const int64_t *shape, kiln_error *err) {
  if (n_aug == 0)
    return KILN_OK;
  if (n_aug < 0 || n_aug > IR_MAX_AUGMENT)
    return diag_error(err, KILN_ERR_INVALID, no_loc,
                      "data: %d augmentations (at most %d)", n_aug,
                      IR_MAX_AUGMENT);
  if (rank != 3)
    return diag_error(err, KILN_ERR_SHAPE, no_loc,
                      "data: augmentation needs image examples [C, H, W]; "
                      "these are [%lld%s] (the model's input shape is given "
                      "to them by data_sets_fit)",
                      (long long)shape[0], rank > 1 ? ", ..." : "");
  for (int k = 0; k < n_aug; k++) {
    const ir_augment *a = &aug[k];
    const char *name = aug_name(a->kind);
    if ((a->kind == IR_AUG_HFLIP || a->kind == IR_AUG_CUTOUT) &&
        !(a->p >= 0 && a->p <= 1))
      return diag_error(err, KILN_ERR_INVALID, no_loc,
                        "data: %s: p must be in [0, 1], got %g", name, a->p);
    if (a->kind == IR_AUG_RANDOM_CROP &&
        (a->padding < 0 || a->padding > AUG_MAX_PADDING))
      return diag_error(err, KILN_ERR_INVALID, no_loc,
                        "data: random_crop: padding must be in 0..%d, got "
                        "%lld",
                        AUG_MAX_PADDING, (long long)a->padding);
    if (a->kind == IR_AUG_CUTOUT && a->size < 1)
      return diag_error(err, KILN_ERR_INVALID, no_loc,
                        "data: cutout: size must be at least 1, got %lld",
                        (long long)a->size);
  }
  return KILN_OK;
}

/* Shifts each h x w plane so that out[y][x] = in[y + dy][x + dx] (0 where
 * that is outside), in place: rows are visited in the direction that reads
 * every source row before it is overwritten, and memmove handles a row
 * shifted onto itself. */
static void shift(float *img, int64_t c, int64_t h, int64_t w, int64_t dy,
                  int64_t dx) {
  int64_t adx = dx < 0 ? -dx : dx;
  for (int64_t ch = 0; ch < c; ch++) {
    float *plane = img + ch * h * w;
    for (int64_t t = 0; t < h; t++) {
      int64_t y = dy > 0 ? t : h - 1 - t;
      int64_t sy = y + dy;
      float *dst = plane + y * w;
      if (sy < 0 || sy >= h || adx >= w) {
        memset(dst, 0, (size_t)w * sizeof(float));
        continue;
      }
      const float *src = plane + sy * w;
      size_t keep = (size_t)(w - adx);
      if (dx >= 0) {
        memmove(dst, src + dx, keep * sizeof(float));
        memset(dst + keep, 0, (size_t)adx * sizeof(float));
      } else {
        memmove(dst + adx, src, keep * sizeof(float));
        memset(dst, 0, (size_t)adx * sizeof(float));
      }
    }
  }
}

static void hflip(float *img, int64_t c, int64_t h, int64_t w) {
  for (int64_t r = 0; r < c * h; r++) {
    float *row = img + r * w;
    for (int64_t a = 0, b = w - 1; a < b; a++, b--) {
      float t = row[a];
      row[a] = row[b];
      row[b] = t;
    }
  }
}

static void zero_square(float *img, int64_t c, int64_t h, int64_t w, int64_t cy,
                        int64_t cx, int64_t size) {
  int64_t y0 = cy - size / 2, x0 = cx - size / 2;
  int64_t y1 = y0 + size, x1 = x0 + size;
  y0 = y0 < 0 ? 0 : y0;
  x0 = x0 < 0 ? 0 : x0;
  y1 = y1 > h ? h : y1;
  x1 = x1 > w ? w : x1;
  if (y0 >= y1 || x0 >= x1)
    return;
  for (int64_t ch = 0; ch < c; ch++)
    for (int64_t y = y0; y < y1; y++)
      memset(img + (ch * h + y) * w + x0, 0, (size_t)(x1 - x0) * sizeof(float));
}

static void augment_one(float *img, int64_t c, int64_t h, int64_t w,
                        const ir_augment *a, data_rng *r) {
  switch (a->kind) {
  case IR_AUG_RANDOM_CROP: {
    uint64_t span = 2 * (uint64_t)a->padding + 1;
    int64_t top = (int64_t)data_rng_below(r, span);
    int64_t left = (int64_t)data_rng_below(r, span);
    if (top != a->padding || left != a->padding)
      shift(img, c, h, w, top - a->padding, left - a->padding);
    break;
  }
  case IR_AUG_HFLIP:
    if (data_rng_unit(r) < a->p)
      hflip(img, c, h, w);
    break;
  case IR_AUG_CUTOUT:
    if (data_rng_unit(r) < a->p) {
      int64_t cy = (int64_t)data_rng_below(r, (uint64_t)h);
      int64_t cx = (int64_t)data_rng_below(r, (uint64_t)w);
      zero_square(img, c, h, w, cy, cx, a->size);
    }
    break;
  }
}

void data_augment_batch(float *x, int64_t batch, int64_t c, int64_t h,
                        int64_t w, const ir_augment *aug, int n_aug,
                        uint64_t seed, uint64_t epoch, int64_t first_index) {
  KILN_ASSERT(n_aug >= 0 && n_aug <= IR_MAX_AUGMENT);
  KILN_ASSERT(c > 0 && h > 0 && w > 0 && first_index >= 0);
  for (int64_t i = 0; i < batch; i++) {
    float *img = x + i * c * h * w;
    uint64_t index = (uint64_t)(first_index + i);
    for (int k = 0; k < n_aug; k++) {
      data_rng r = data_rng_init(seed, DATA_STREAM_AUGMENT, epoch,
                                 index * 16 + (uint64_t)k);
      augment_one(img, c, h, w, &aug[k], &r);
    }
  }
}
