/* ref_linear.c — linear (y = x W^T + b) and batched matmul, forward and
 * backward, as plain triple loops with the sum in the innermost loop.
 *
 * The formulas, with x [rows, in], W [out, in], dy [rows, out]:
 *   dx = dy W        dW = dy^T x        db = column sums of dy
 * and for c = a b with a [m, k], b [k, n], dc [m, n]:
 *   da = dc b^T      db = a^T dc
 * A matrix shared by every batch entry (ref_matmul_dims.a_shared/b_shared)
 * gets the sum of its per-entry gradients.
 *
 * Guarantees: outputs are written in full, never accumulated into. */
#include "runtime/reference/ref_nn.h"
#include "support/support.h"

#include <string.h>

void ref_linear_forward(int64_t rows, int in, int out, const ref_t *x,
                        const ref_t *weight, const ref_t *bias, ref_t *y) {
  for (int64_t r = 0; r < rows; r++)
    for (int o = 0; o < out; o++) {
      const ref_t *xr = x + r * in, *wo = weight + (int64_t)o * in;
      ref_t s = bias ? bias[o] : 0.0;
      for (int i = 0; i < in; i++)
        s += xr[i] * wo[i];
      y[r * out + o] = s;
    }
}

void ref_linear_backward_data(int64_t rows, int in, int out, const ref_t *dy,
                              const ref_t *weight, ref_t *dx) {
  for (int64_t r = 0; r < rows; r++)
    for (int i = 0; i < in; i++) {
      ref_t s = 0;
      for (int o = 0; o < out; o++)
        s += dy[r * out + o] * weight[(int64_t)o * in + i];
      dx[r * in + i] = s;
    }
}

void ref_linear_backward_weight(int64_t rows, int in, int out, const ref_t *x,
                                const ref_t *dy, ref_t *dweight) {
  for (int o = 0; o < out; o++)
    for (int i = 0; i < in; i++) {
      ref_t s = 0;
      for (int64_t r = 0; r < rows; r++)
        s += dy[r * out + o] * x[r * in + i];
      dweight[(int64_t)o * in + i] = s;
    }
}

void ref_linear_backward_bias(int64_t rows, int out, const ref_t *dy,
                              ref_t *dbias) {
  for (int o = 0; o < out; o++) {
    ref_t s = 0;
    for (int64_t r = 0; r < rows; r++)
      s += dy[r * out + o];
    dbias[o] = s;
  }
}

/* Offsets of batch entry `e` in a, b and c: a shared matrix stays at 0. */
static int64_t mm_a_off(const ref_matmul_dims *d, int64_t e) {
  return d->a_shared ? 0 : e * d->m * d->k;
}

static int64_t mm_b_off(const ref_matmul_dims *d, int64_t e) {
  return d->b_shared ? 0 : e * d->k * d->n;
}

void ref_matmul_forward(const ref_matmul_dims *d, const ref_t *a,
                        const ref_t *b, ref_t *c) {
  KILN_ASSERT(d->batch >= 0 && d->m >= 0 && d->k >= 0 && d->n >= 0);
  for (int64_t e = 0; e < d->batch; e++) {
    const ref_t *ae = a + mm_a_off(d, e), *be = b + mm_b_off(d, e);
    ref_t *ce = c + e * d->m * d->n;
    for (int i = 0; i < d->m; i++)
      for (int j = 0; j < d->n; j++) {
        ref_t s = 0;
        for (int p = 0; p < d->k; p++)
          s += ae[(int64_t)i * d->k + p] * be[(int64_t)p * d->n + j];
        ce[(int64_t)i * d->n + j] = s;
      }
  }
}

void ref_matmul_backward(const ref_matmul_dims *d, const ref_t *a,
                         const ref_t *b, const ref_t *dc, ref_t *da,
                         ref_t *db) {
  KILN_ASSERT(d->batch >= 0 && d->m >= 0 && d->k >= 0 && d->n >= 0);
  /* Zero first: a shared operand's gradient sums over the batch. */
  if (da)
    memset(da, 0,
           (size_t)((d->a_shared ? 1 : d->batch) * d->m * d->k) * sizeof *da);
  if (db)
    memset(db, 0,
           (size_t)((d->b_shared ? 1 : d->batch) * d->k * d->n) * sizeof *db);
  for (int64_t e = 0; e < d->batch; e++) {
    const ref_t *ae = a + mm_a_off(d, e), *be = b + mm_b_off(d, e);
    const ref_t *ge = dc + e * d->m * d->n;
    if (da) {
      ref_t *dae = da + mm_a_off(d, e);
      for (int i = 0; i < d->m; i++)
        for (int p = 0; p < d->k; p++) {
          ref_t s = 0;
          for (int j = 0; j < d->n; j++)
            s += ge[(int64_t)i * d->n + j] * be[(int64_t)p * d->n + j];
          dae[(int64_t)i * d->k + p] += s;
        }
    }
    if (db) {
      ref_t *dbe = db + mm_b_off(d, e);
      for (int p = 0; p < d->k; p++)
        for (int j = 0; j < d->n; j++) {
          ref_t s = 0;
          for (int i = 0; i < d->m; i++)
            s += ae[(int64_t)i * d->k + p] * ge[(int64_t)i * d->n + j];
          dbe[(int64_t)p * d->n + j] += s;
        }
    }
  }
}
