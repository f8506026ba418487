/* ref_conv.c — conv2d forward and backward (data, filter, bias), with
 * stride, padding, dilation and groups, in the direct (seven nested loops)
 * form.
 *
 * Forward and the two backward products all visit the same set of
 * (input element, weight element, output element) triples; conv_visit()
 * enumerates that set once and each kernel says which product it
 * accumulates. The three kernels then cannot disagree about which input
 * pixel a weight tap reads, which is where hand-written conv backwards
 * usually go wrong (padding offsets, dilation, the group's channel range).
 *
 * Requires: dims finished by ref_conv_dims_finish(). Guarantees: outputs
 * are written in full (zeroed first), never accumulated into. */
#include "runtime/reference/ref_nn.h"
#include "support/support.h"

#include <string.h>

/* floor((in + 2*pad - dil*(k-1) - 1) / stride) + 1, or 0 when the dilated
 * kernel does not fit the padded input. */
static int64_t conv_out_size(int64_t in, int k, int stride, int pad, int dil) {
  int64_t span = (int64_t)dil * (k - 1) + 1;
  int64_t padded = in + 2 * (int64_t)pad;
  if (padded < span)
    return 0;
  return (padded - span) / stride + 1;
}

bool ref_conv_dims_finish(ref_conv_dims *d) {
  if (d->n < 1 || d->c < 1 || d->h < 1 || d->w < 1 || d->k < 1 || d->kh < 1 ||
      d->kw < 1 || d->sh < 1 || d->sw < 1 || d->ph < 0 || d->pw < 0 ||
      d->dh < 1 || d->dw < 1 || d->groups < 1)
    return false;
  if (d->c % d->groups || d->k % d->groups)
    return false;
  int64_t oh = conv_out_size(d->h, d->kh, d->sh, d->ph, d->dh);
  int64_t ow = conv_out_size(d->w, d->kw, d->sw, d->pw, d->dw);
  if (oh < 1 || ow < 1 || oh > INT32_MAX || ow > INT32_MAX)
    return false;
  d->oh = (int)oh;
  d->ow = (int)ow;
  return true;
}

typedef enum conv_product {
  CONV_Y,  /* y[yi]  += x[xi] * w[wi]   (forward) */
  CONV_DX, /* dx[xi] += dy[yi] * w[wi]  (backward data) */
  CONV_DW, /* dw[wi] += dy[yi] * x[xi]  (backward filter) */
} conv_product;

/* Visits every triple where output (b, o, oy, ox) reads input
 * (b, cin, iy, ix) through weight (o, ci, ky, kx), with
 *   iy = oy*sh - ph + ky*dh,  ix = ox*sw - pw + kx*dw,
 *   cin = group(o) * c/groups + ci,
 * skipping taps that land in the padding (they read zero). `x` is the
 * input (or NULL for CONV_DX), `y` the output or its gradient (NULL for
 * CONV_Y) and `out` the array being accumulated. */
static void conv_visit(const ref_conv_dims *d, conv_product what,
                       const ref_t *x, const ref_t *w, const ref_t *y,
                       ref_t *out) {
  KILN_ASSERT(d->oh > 0 && d->ow > 0 && d->groups > 0);
  const int cg = d->c / d->groups, kg = d->k / d->groups;
  for (int b = 0; b < d->n; b++)
    for (int o = 0; o < d->k; o++) {
      const int g = o / kg;
      for (int oy = 0; oy < d->oh; oy++)
        for (int ox = 0; ox < d->ow; ox++) {
          const int64_t yi =
              (((int64_t)b * d->k + o) * d->oh + oy) * d->ow + ox;
          for (int ci = 0; ci < cg; ci++) {
            const int cin = g * cg + ci;
            for (int ky = 0; ky < d->kh; ky++) {
              const int iy = oy * d->sh - d->ph + ky * d->dh;
              if (iy < 0 || iy >= d->h)
                continue;
              for (int kx = 0; kx < d->kw; kx++) {
                const int ix = ox * d->sw - d->pw + kx * d->dw;
                if (ix < 0 || ix >= d->w)
                  continue;
                const int64_t xi =
                    (((int64_t)b * d->c + cin) * d->h + iy) * d->w + ix;
                const int64_t wi =
                    (((int64_t)o * cg + ci) * d->kh + ky) * d->kw + kx;
                switch (what) {
                case CONV_Y:
                  out[yi] += x[xi] * w[wi];
                  break;
                case CONV_DX:
                  out[xi] += y[yi] * w[wi];
                  break;
                case CONV_DW:
                  out[wi] += y[yi] * x[xi];
                  break;
                }
              }
            }
          }
        }
    }
}

static int64_t conv_x_numel(const ref_conv_dims *d) {
  return (int64_t)d->n * d->c * d->h * d->w;
}

static int64_t conv_y_numel(const ref_conv_dims *d) {
  return (int64_t)d->n * d->k * d->oh * d->ow;
}

static int64_t conv_w_numel(const ref_conv_dims *d) {
  return (int64_t)d->k * (d->c / d->groups) * d->kh * d->kw;
}

void ref_conv2d_forward(const ref_conv_dims *d, const ref_t *x,
                        const ref_t *weight, const ref_t *bias, ref_t *y) {
  /* Start every output at its bias so the visit only adds products. */
  const int64_t plane = (int64_t)d->oh * d->ow;
  for (int b = 0; b < d->n; b++)
    for (int o = 0; o < d->k; o++) {
      ref_t *yp = y + ((int64_t)b * d->k + o) * plane;
      for (int64_t i = 0; i < plane; i++)
        yp[i] = bias ? bias[o] : 0.0;
    }
  conv_visit(d, CONV_Y, x, weight, NULL, y);
}

void ref_conv2d_backward_data(const ref_conv_dims *d, const ref_t *dy,
                              const ref_t *weight, ref_t *dx) {
  memset(dx, 0, (size_t)conv_x_numel(d) * sizeof *dx);
  conv_visit(d, CONV_DX, NULL, weight, dy, dx);
}

void ref_conv2d_backward_filter(const ref_conv_dims *d, const ref_t *x,
                                const ref_t *dy, ref_t *dweight) {
  memset(dweight, 0, (size_t)conv_w_numel(d) * sizeof *dweight);
  conv_visit(d, CONV_DW, x, NULL, dy, dweight);
}

void ref_conv2d_backward_bias(const ref_conv_dims *d, const ref_t *dy,
                              ref_t *dbias) {
  KILN_ASSERT(conv_y_numel(d) > 0);
  const int64_t plane = (int64_t)d->oh * d->ow;
  for (int o = 0; o < d->k; o++) {
    ref_t s = 0;
    for (int b = 0; b < d->n; b++) {
      const ref_t *g = dy + ((int64_t)b * d->k + o) * plane;
      for (int64_t i = 0; i < plane; i++)
        s += g[i];
    }
    dbias[o] = s;
  }
}
