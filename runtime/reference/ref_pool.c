/* ref_pool.c — maxpool, avgpool and global_avgpool, forward and backward.
 *
 * Semantics are the model format's (docs/model-format.md, "Ops"): stride 0
 * means the kernel size, padding is at most half the kernel (so every
 * window holds at least one real element), maxpool's padding is -infinity
 * and avgpool's padding counts as zeros in the average: every window
 * divides by kh*kw, PyTorch's count_include_pad=True.
 *
 * maxpool saves nothing: its backward recomputes each window's argmax from
 * x with the same function the forward uses (pool_argmax), so the two
 * cannot disagree. On ties the first maximum in row-major window order
 * wins and takes the whole gradient; a NaN counts as the maximum (the
 * first NaN wins), so NaNs propagate as they do in PyTorch.
 *
 * Guarantees: outputs are written in full, never accumulated into. */
#include "runtime/reference/ref_nn.h"
#include "support/support.h"

#include <math.h>
#include <string.h>

bool ref_pool_dims_finish(ref_pool_dims *d) {
  if (d->n < 1 || d->c < 1 || d->h < 1 || d->w < 1 || d->kh < 1 || d->kw < 1 ||
      d->sh < 0 || d->sw < 0 || d->ph < 0 || d->pw < 0)
    return false;
  if (d->sh == 0)
    d->sh = d->kh;
  if (d->sw == 0)
    d->sw = d->kw;
  /* PyTorch's limit; beyond it a window could hold only padding. */
  if (2 * d->ph > d->kh || 2 * d->pw > d->kw)
    return false;
  int64_t ph = (int64_t)d->h + 2 * d->ph, pw = (int64_t)d->w + 2 * d->pw;
  if (ph < d->kh || pw < d->kw)
    return false;
  d->oh = (int)((ph - d->kh) / d->sh + 1);
  d->ow = (int)((pw - d->kw) / d->sw + 1);
  return true;
}

static int64_t pool_x_plane(const ref_pool_dims *d) {
  return (int64_t)d->h * d->w;
}

static int64_t pool_y_plane(const ref_pool_dims *d) {
  return (int64_t)d->oh * d->ow;
}

/* Index in the input plane `xp` of the maximum of window (oy, ox), or -1
 * if the window holds only padding (impossible for finished dims). */
static int64_t pool_argmax(const ref_pool_dims *d, const ref_t *xp, int oy,
                           int ox) {
  int64_t best = -1;
  for (int ky = 0; ky < d->kh; ky++) {
    const int iy = oy * d->sh - d->ph + ky;
    if (iy < 0 || iy >= d->h)
      continue;
    for (int kx = 0; kx < d->kw; kx++) {
      const int ix = ox * d->sw - d->pw + kx;
      if (ix < 0 || ix >= d->w)
        continue;
      const int64_t i = (int64_t)iy * d->w + ix;
      /* Strictly greater: an equal later value does not replace the first
       * maximum. A NaN replaces any number but not an earlier NaN. */
      if (best < 0 || xp[i] > xp[best] || (isnan(xp[i]) && !isnan(xp[best])))
        best = i;
    }
  }
  return best;
}

void ref_maxpool_forward(const ref_pool_dims *d, const ref_t *x, ref_t *y) {
  KILN_ASSERT(d->oh > 0 && d->ow > 0 && d->sh > 0 && d->sw > 0);
  for (int64_t p = 0; p < (int64_t)d->n * d->c; p++) {
    const ref_t *xp = x + p * pool_x_plane(d);
    ref_t *yp = y + p * pool_y_plane(d);
    for (int oy = 0; oy < d->oh; oy++)
      for (int ox = 0; ox < d->ow; ox++) {
        int64_t i = pool_argmax(d, xp, oy, ox);
        yp[oy * d->ow + ox] = i < 0 ? -INFINITY : xp[i];
      }
  }
}

void ref_maxpool_backward(const ref_pool_dims *d, const ref_t *x,
                          const ref_t *dy, ref_t *dx) {
  KILN_ASSERT(d->oh > 0 && d->ow > 0 && d->sh > 0 && d->sw > 0);
  memset(dx, 0, (size_t)((int64_t)d->n * d->c * pool_x_plane(d)) * sizeof *dx);
  for (int64_t p = 0; p < (int64_t)d->n * d->c; p++) {
    const ref_t *xp = x + p * pool_x_plane(d);
    const ref_t *gp = dy + p * pool_y_plane(d);
    ref_t *dxp = dx + p * pool_x_plane(d);
    /* Overlapping windows (stride < kernel) may pick the same element;
     * its gradient is the sum over those windows. */
    for (int oy = 0; oy < d->oh; oy++)
      for (int ox = 0; ox < d->ow; ox++) {
        int64_t i = pool_argmax(d, xp, oy, ox);
        if (i >= 0)
          dxp[i] += gp[oy * d->ow + ox];
      }
  }
}

void ref_avgpool_forward(const ref_pool_dims *d, const ref_t *x, ref_t *y) {
  KILN_ASSERT(d->oh > 0 && d->ow > 0 && d->sh > 0 && d->sw > 0);
  const ref_t scale = 1.0 / ((ref_t)d->kh * d->kw);
  for (int64_t p = 0; p < (int64_t)d->n * d->c; p++) {
    const ref_t *xp = x + p * pool_x_plane(d);
    ref_t *yp = y + p * pool_y_plane(d);
    for (int oy = 0; oy < d->oh; oy++)
      for (int ox = 0; ox < d->ow; ox++) {
        ref_t s = 0; /* padding adds zeros */
        for (int ky = 0; ky < d->kh; ky++) {
          const int iy = oy * d->sh - d->ph + ky;
          if (iy < 0 || iy >= d->h)
            continue;
          for (int kx = 0; kx < d->kw; kx++) {
            const int ix = ox * d->sw - d->pw + kx;
            if (ix >= 0 && ix < d->w)
              s += xp[(int64_t)iy * d->w + ix];
          }
        }
        yp[oy * d->ow + ox] = s * scale;
      }
  }
}

void ref_avgpool_backward(const ref_pool_dims *d, const ref_t *dy, ref_t *dx) {
  KILN_ASSERT(d->oh > 0 && d->ow > 0 && d->sh > 0 && d->sw > 0);
  const ref_t scale = 1.0 / ((ref_t)d->kh * d->kw);
  memset(dx, 0, (size_t)((int64_t)d->n * d->c * pool_x_plane(d)) * sizeof *dx);
  for (int64_t p = 0; p < (int64_t)d->n * d->c; p++) {
    const ref_t *gp = dy + p * pool_y_plane(d);
    ref_t *dxp = dx + p * pool_x_plane(d);
    for (int oy = 0; oy < d->oh; oy++)
      for (int ox = 0; ox < d->ow; ox++) {
        const ref_t g = gp[oy * d->ow + ox] * scale;
        for (int ky = 0; ky < d->kh; ky++) {
          const int iy = oy * d->sh - d->ph + ky;
          if (iy < 0 || iy >= d->h)
            continue;
          for (int kx = 0; kx < d->kw; kx++) {
            const int ix = ox * d->sw - d->pw + kx;
            if (ix >= 0 && ix < d->w)
              dxp[(int64_t)iy * d->w + ix] += g;
          }
        }
      }
  }
}

void ref_global_avgpool_forward(int n, int c, int64_t hw, const ref_t *x,
                                ref_t *y) {
  KILN_ASSERT(hw > 0);
  for (int64_t p = 0; p < (int64_t)n * c; p++) {
    ref_t s = 0;
    for (int64_t i = 0; i < hw; i++)
      s += x[p * hw + i];
    y[p] = s / (ref_t)hw;
  }
}

void ref_global_avgpool_backward(int n, int c, int64_t hw, const ref_t *dy,
                                 ref_t *dx) {
  KILN_ASSERT(hw > 0);
  for (int64_t p = 0; p < (int64_t)n * c; p++)
    for (int64_t i = 0; i < hw; i++)
      dx[p * hw + i] = dy[p] / (ref_t)hw;
}
