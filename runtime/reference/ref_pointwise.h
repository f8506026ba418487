/* ref_pointwise.h — reference kernels for activations, broadcasting
 * add/mul, concat, softmax, the losses and dropout (see ref.h for the
 * conventions: double precision, PyTorch layouts, backward kernels write
 * the input gradients, never accumulate).
 *
 * Element-wise ops take a flat element count n. Ops that work along one
 * axis take the tensor viewed as [outer, len, inner]: outer is the product
 * of the dimensions before the axis, inner of those after it;
 * ref_axis_split() computes the three from a shape. Ops with per-channel
 * data (prelu, maxout) view x [N, C, ...] as [N, C, inner].
 *
 * Which saved tensor a backward kernel reads is chosen so that the
 * training graph stores as little as possible: relu, sigmoid and tanh
 * differentiate from their output y (which the next layer keeps anyway);
 * ops whose derivative cannot be recovered from y for every attribute
 * value (leaky_relu and elu with a negative slope/alpha, gelu, prelu,
 * maxout) read their input x. */
#ifndef KILN_REF_POINTWISE_H
#define KILN_REF_POINTWISE_H

#include <stdbool.h>
#include <stdint.h>

#ifndef KILN_REF_T
#define KILN_REF_T
typedef double ref_t;
#endif

/* Broadcasting supports tensors of up to this many dimensions. */
#define REF_MAX_RANK 8

typedef enum ref_gelu_approx {
  REF_GELU_NONE, /* x * Phi(x), Phi by erf */
  REF_GELU_TANH, /* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
} ref_gelu_approx;

typedef enum ref_reduction {
  REF_REDUCTION_MEAN,
  REF_REDUCTION_SUM,
} ref_reduction;

/* ---- ref_act.c: activations ---- */
void ref_relu_fwd(const ref_t *x, ref_t *y, int64_t n);
void ref_relu_bwd(const ref_t *y, const ref_t *dy, ref_t *dx, int64_t n);
void ref_leaky_relu_fwd(const ref_t *x, ref_t *y, int64_t n, double slope);
void ref_leaky_relu_bwd(const ref_t *x, const ref_t *dy, ref_t *dx, int64_t n,
                        double slope);
void ref_elu_fwd(const ref_t *x, ref_t *y, int64_t n, double alpha);
void ref_elu_bwd(const ref_t *x, const ref_t *dy, ref_t *dx, int64_t n,
                 double alpha);
void ref_gelu_fwd(const ref_t *x, ref_t *y, int64_t n, ref_gelu_approx a);
void ref_gelu_bwd(const ref_t *x, const ref_t *dy, ref_t *dx, int64_t n,
                  ref_gelu_approx a);
void ref_sigmoid_fwd(const ref_t *x, ref_t *y, int64_t n);
void ref_sigmoid_bwd(const ref_t *y, const ref_t *dy, ref_t *dx, int64_t n);
void ref_tanh_fwd(const ref_t *x, ref_t *y, int64_t n);
void ref_tanh_bwd(const ref_t *y, const ref_t *dy, ref_t *dx, int64_t n);
/* prelu: x [N, C, inner]; w has C slopes, or one when shared. */
void ref_prelu_fwd(const ref_t *x, const ref_t *w, ref_t *y, int64_t n,
                   int64_t c, int64_t inner, bool shared);
void ref_prelu_bwd_data(const ref_t *x, const ref_t *w, const ref_t *dy,
                        ref_t *dx, int64_t n, int64_t c, int64_t inner,
                        bool shared);
void ref_prelu_bwd_weight(const ref_t *x, const ref_t *dy, ref_t *dw, int64_t n,
                          int64_t c, int64_t inner, bool shared);
/* maxout: x [N, C, inner] -> y [N, C/pieces, inner]; output channel j is the
 * max of input channels j*pieces .. j*pieces+pieces-1. */
void ref_maxout_fwd(const ref_t *x, ref_t *y, int64_t n, int64_t c,
                    int64_t inner, int64_t pieces);
void ref_maxout_bwd(const ref_t *x, const ref_t *dy, ref_t *dx, int64_t n,
                    int64_t c, int64_t inner, int64_t pieces);

/* ---- ref_tensor.c: broadcasting, concat, softmax ---- */
/* NumPy's rule: shapes aligned at the right, each pair of dimensions equal
 * or one of them 1. Writes the result's shape and rank; false when the
 * shapes do not broadcast or the result has more than REF_MAX_RANK dims. */
bool ref_broadcast_shape(const int64_t *as, int ar, const int64_t *bs, int br,
                         int64_t *out, int *out_rank);
/* Views a shape as [outer, len, inner] around `axis` (negative counts from
 * the end). False when the axis is out of range. */
bool ref_axis_split(const int64_t *shape, int rank, int axis, int64_t *outer,
                    int64_t *len, int64_t *inner);
/* y has the broadcast shape of a and b. Backward: da and db have a's and
 * b's shapes (dy summed over the dimensions each was broadcast along);
 * either may be NULL when that gradient is not needed. */
void ref_add_fwd(const ref_t *a, const int64_t *as, int ar, const ref_t *b,
                 const int64_t *bs, int br, ref_t *y);
void ref_add_bwd(const ref_t *dy, const int64_t *as, int ar, const int64_t *bs,
                 int br, ref_t *da, ref_t *db);
void ref_mul_fwd(const ref_t *a, const int64_t *as, int ar, const ref_t *b,
                 const int64_t *bs, int br, ref_t *y);
void ref_mul_bwd(const ref_t *a, const int64_t *as, int ar, const ref_t *b,
                 const int64_t *bs, int br, const ref_t *dy, ref_t *da,
                 ref_t *db);
/* concat of k inputs, input i viewed as [outer, lens[i], inner]; the
 * backward splits dy back into the k gradients. */
void ref_concat_fwd(const ref_t *const *xs, const int64_t *lens, int k,
                    int64_t outer, int64_t inner, ref_t *y);
void ref_concat_bwd(const ref_t *dy, const int64_t *lens, int k, int64_t outer,
                    int64_t inner, ref_t *const *dxs);
/* softmax along the middle axis of [outer, len, inner]; the backward reads
 * y: dx = y * (dy - sum(dy * y)). */
void ref_softmax_fwd(const ref_t *x, ref_t *y, int64_t outer, int64_t len,
                     int64_t inner);
void ref_softmax_bwd(const ref_t *y, const ref_t *dy, ref_t *dx, int64_t outer,
                     int64_t len, int64_t inner);

/* ---- ref_loss.c: losses ---- */
/* The first row whose label lies outside [0, k), or -1 when all are valid.
 * Labels come from user data, so a bad one is an error to report, not an
 * assertion. */
int64_t ref_labels_find_invalid(const int32_t *labels, int64_t n, int64_t k);
/* cross_entropy of logits [n, k] against integer labels, with PyTorch's
 * label smoothing: target = (1 - eps) * onehot + eps / k. Both return 0, or
 * -1 without writing anything when a label is out of range. The backward
 * writes dlogits = (softmax - target) * dloss (/ n for the mean). */
int ref_cross_entropy_fwd(const ref_t *logits, const int32_t *labels, int64_t n,
                          int64_t k, double smoothing, ref_reduction red,
                          ref_t *loss);
int ref_cross_entropy_bwd(const ref_t *logits, const int32_t *labels, int64_t n,
                          int64_t k, double smoothing, ref_reduction red,
                          ref_t dloss, ref_t *dlogits);
/* mse over n elements: sum or mean of (p - t)^2. dt may be NULL. */
ref_t ref_mse_fwd(const ref_t *p, const ref_t *t, int64_t n, ref_reduction red);
void ref_mse_bwd(const ref_t *p, const ref_t *t, int64_t n, ref_reduction red,
                 ref_t dloss, ref_t *dp, ref_t *dt);

/* ---- ref_dropout.c: inverted dropout, mask from Philox ---- */
/* The Philox stream of one dropout layer at one training step:
 * (step << 32) | layer, so that every (step, layer) pair draws different
 * numbers for up to 2^32 layers and 2^32 steps. */
uint64_t ref_dropout_stream(uint64_t step, uint32_t layer);
/* Whether element `index` is kept: philox_uniform(seed, stream, index) >= p. */
bool ref_dropout_keep(uint64_t seed, uint64_t stream, uint64_t index, double p);
/* x holds elements first .. first+n-1 of the layer's tensor (first is the
 * global element index of x[0], so a slice or one rank's share of the batch
 * draws the same mask as the whole). y = x / (1 - p) where kept, else 0.
 * The backward regenerates the mask: dx = dy / (1 - p) where kept. */
void ref_dropout_fwd(const ref_t *x, ref_t *y, int64_t n, double p,
                     uint64_t seed, uint64_t stream, uint64_t first);
void ref_dropout_bwd(const ref_t *dy, ref_t *dx, int64_t n, double p,
                     uint64_t seed, uint64_t stream, uint64_t first);

#endif
