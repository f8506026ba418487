/* ref_dropout.c — inverted dropout whose mask is a pure function of
 * (seed, stream, element index), drawn from Philox (support/philox.c).
 *
 *   keep(i) = philox_uniform(seed, stream, i) >= p
 *   y_i     = keep(i) ? x_i / (1 - p) : 0
 *   dx_i    = keep(i) ? dy_i / (1 - p) : 0
 *
 * No mask tensor exists: the backward draws the same numbers again, and so
 * does any fused kernel on the CPU or the GPU, in any order, for any slice.
 *
 * How a caller forms the inputs:
 *   seed   the `train` section's seed (the same on every rank);
 *   stream ref_dropout_stream(step, layer) = (step << 32) | layer, where step
 *          is the optimizer step counted from 0 (not reset per epoch) and
 *          layer is the dropout layer's id in the graph IR, unique in the
 *          model (a model has at most 200,000 layers, so 16 bits would not
 *          do). The forward and backward of one step use the same stream;
 *          every step draws a fresh mask.
 *   index  the element's global row-major index in the layer's tensor for
 *          the whole global batch: a rank or micro-batch that holds examples
 *          b0.. passes first = b0 * (elements per example). The mask then
 *          does not depend on how the batch is split.
 *
 * Exactness: philox_uniform returns m * 2^-24 with m = word >> 8, exactly,
 * and converts to double exactly, so `u >= p` here is the exact comparison
 * m >= ceil(p * 2^24) (p * 2^24 is exact in double). A code generator must
 * use that integer threshold, or compare in double; comparing with
 * (float)p can differ when p is not a multiple of 2^-24. */
#include "runtime/reference/ref_pointwise.h"

#include "support/support.h"

uint64_t ref_dropout_stream(uint64_t step, uint32_t layer) {
  KILN_ASSERT(step < (UINT64_C(1) << 32));
  return step << 32 | layer;
}

bool ref_dropout_keep(uint64_t seed, uint64_t stream, uint64_t index,
                      double p) {
  return (double)philox_uniform(seed, stream, index) >= p;
}

/* Forward and backward are the same masked scaling; only the tensor
 * differs (x then dy). */
static void dropout_apply(const ref_t *in, ref_t *out, int64_t n, double p,
                          uint64_t seed, uint64_t stream, uint64_t first) {
  KILN_ASSERT(p >= 0 && p < 1);
  if (p == 0) {
    /* Every u >= 0, so every element is kept with scale 1: skip Philox. */
    for (int64_t i = 0; i < n; i++)
      out[i] = in[i];
    return;
  }
  for (int64_t i = 0; i < n; i++) {
    bool keep = ref_dropout_keep(seed, stream, first + (uint64_t)i, p);
    out[i] = keep ? in[i] / (1 - p) : 0; /* as PyTorch: x / (1 - p) */
  }
}

void ref_dropout_fwd(const ref_t *x, ref_t *y, int64_t n, double p,
                     uint64_t seed, uint64_t stream, uint64_t first) {
  dropout_apply(x, y, n, p, seed, stream, first);
}

void ref_dropout_bwd(const ref_t *dy, ref_t *dx, int64_t n, double p,
                     uint64_t seed, uint64_t stream, uint64_t first) {
  dropout_apply(dy, dx, n, p, seed, stream, first);
}
