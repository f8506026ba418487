/* ref_nn.h — reference kernels of the "nn" ops: conv2d, linear, matmul,
 * pooling, batchnorm and layernorm, forward and backward (see ref.h for the
 * conventions: double precision, PyTorch layouts, backward kernels write,
 * never accumulate into, the input gradients).
 *
 * Sizes travel in small plain structs; a *_dims_finish() function derives
 * the output size with PyTorch's formula and says whether the window fits.
 * Pointers documented "may be NULL" select an optional input (a bias) or an
 * output the caller does not want (a gradient it will not use).
 *
 *   ref_conv.c    conv2d: forward, backward data, filter and bias
 *   ref_linear.c  linear: forward, backward data, weight and bias;
 *                 batched matmul: forward and backward
 *   ref_pool.c    maxpool, avgpool, global_avgpool: forward and backward
 *   ref_norm.c    batchnorm (train and eval), layernorm: forward and
 *                 backward */
#ifndef KILN_REF_NN_H
#define KILN_REF_NN_H

#include <stdbool.h>
#include <stdint.h>

/* ref_pointwise.h defines ref_t identically under the same guard, so either
 * header can come first. */
#ifndef KILN_REF_T
#define KILN_REF_T
typedef double ref_t;
#endif

/* ---- conv2d (ref_conv.c) ----
 * x [n, c, h, w], weight [k, c/groups, kh, kw], bias [k], y [n, k, oh, ow].
 * Output channel o belongs to group o / (k/groups) and reads the input
 * channels of that group. Padding reads as zero. */
typedef struct ref_conv_dims {
  int n, c, h, w; /* input */
  int k;          /* output channels */
  int kh, kw;     /* kernel */
  int sh, sw;     /* stride, >= 1 */
  int ph, pw;     /* padding, >= 0 */
  int dh, dw;     /* dilation, >= 1 */
  int groups;     /* divides c and k */
  int oh, ow;     /* output; set by ref_conv_dims_finish */
} ref_conv_dims;

/* Sets oh, ow: floor((h + 2*ph - dh*(kh-1) - 1) / sh) + 1. Returns false
 * when a size is out of range, groups does not divide c and k, or the
 * dilated kernel does not fit the padded input. */
bool ref_conv_dims_finish(ref_conv_dims *d);
void ref_conv2d_forward(const ref_conv_dims *d, const ref_t *x,
                        const ref_t *weight, const ref_t *bias /* or NULL */,
                        ref_t *y);
void ref_conv2d_backward_data(const ref_conv_dims *d, const ref_t *dy,
                              const ref_t *weight, ref_t *dx);
void ref_conv2d_backward_filter(const ref_conv_dims *d, const ref_t *x,
                                const ref_t *dy, ref_t *dweight);
void ref_conv2d_backward_bias(const ref_conv_dims *d, const ref_t *dy,
                              ref_t *dbias);

/* ---- linear and matmul (ref_linear.c) ----
 * linear: x [rows, in] (leading dimensions flattened into rows),
 * weight [out, in], bias [out], y [rows, out]; y = x W^T + b. */
void ref_linear_forward(int64_t rows, int in, int out, const ref_t *x,
                        const ref_t *weight, const ref_t *bias /* or NULL */,
                        ref_t *y);
void ref_linear_backward_data(int64_t rows, int in, int out, const ref_t *dy,
                              const ref_t *weight, ref_t *dx);
void ref_linear_backward_weight(int64_t rows, int in, int out, const ref_t *x,
                                const ref_t *dy, ref_t *dweight);
void ref_linear_backward_bias(int64_t rows, int out, const ref_t *dy,
                              ref_t *dbias);

/* matmul: a [batch, m, k] times b [batch, k, n] gives c [batch, m, n].
 * a_shared (b_shared) means a (b) is one matrix used by every batch entry,
 * the common broadcast of [B, m, k] x [k, n]; its gradient then sums over
 * the batch. Other broadcasts of the leading dimensions are left to the
 * caller, which expands them into contiguous batches. */
typedef struct ref_matmul_dims {
  int64_t batch;
  int m, k, n;
  bool a_shared, b_shared;
} ref_matmul_dims;

void ref_matmul_forward(const ref_matmul_dims *d, const ref_t *a,
                        const ref_t *b, ref_t *c);
/* da = dc b^T, db = a^T dc; either output may be NULL. */
void ref_matmul_backward(const ref_matmul_dims *d, const ref_t *a,
                         const ref_t *b, const ref_t *dc, ref_t *da, ref_t *db);

/* ---- pooling (ref_pool.c) ----
 * x [n, c, h, w], y [n, c, oh, ow]; no dilation. As in the model format:
 * stride 0 means "same as the kernel", padding is at most half the kernel,
 * maxpool's padding is -infinity, avgpool's padding counts as zeros
 * included in the average (PyTorch's count_include_pad=True), so every
 * window divides by kh*kw. */
typedef struct ref_pool_dims {
  int n, c, h, w;
  int kh, kw;
  int sh, sw; /* 0: same as the kernel (replaced by ref_pool_dims_finish) */
  int ph, pw;
  int oh, ow; /* set by ref_pool_dims_finish */
} ref_pool_dims;

/* Resolves a zero stride and sets oh, ow; false when sizes are out of
 * range, padding exceeds half the kernel or the kernel does not fit. */
bool ref_pool_dims_finish(ref_pool_dims *d);
void ref_maxpool_forward(const ref_pool_dims *d, const ref_t *x, ref_t *y);
/* Recomputes each window's argmax from x (nothing is saved by the forward).
 * On ties the first maximum in row-major window order (top row first, left
 * to right) takes the whole gradient. */
void ref_maxpool_backward(const ref_pool_dims *d, const ref_t *x,
                          const ref_t *dy, ref_t *dx);
void ref_avgpool_forward(const ref_pool_dims *d, const ref_t *x, ref_t *y);
void ref_avgpool_backward(const ref_pool_dims *d, const ref_t *dy, ref_t *dx);
/* [n, c, hw] -> [n, c]: the mean over the hw spatial elements. */
void ref_global_avgpool_forward(int n, int c, int64_t hw, const ref_t *x,
                                ref_t *y);
void ref_global_avgpool_backward(int n, int c, int64_t hw, const ref_t *dy,
                                 ref_t *dx);

/* ---- batchnorm and layernorm (ref_norm.c) ----
 * batchnorm: x [n, c, spatial] (spatial = h*w, or 1 for [N, C]); gamma and
 * beta [c], NULL for affine=false (gamma 1, beta 0, and dgamma/dbeta may
 * be NULL). Statistics are per channel over n*spatial elements. */
typedef struct ref_bn_dims {
  int n, c;
  int64_t spatial;
} ref_bn_dims;

/* Training: normalises with the batch mean and biased variance and saves
 * mean and inv_std = 1/sqrt(var + eps) per channel for the backward. The
 * running statistics (either may be NULL) are updated in place as PyTorch
 * does: r = (1 - momentum)*r + momentum*batch, with the unbiased variance
 * (count/(count-1)) in running_var. PyTorch refuses count 1; here the
 * biased variance (0) is used then, and callers should reject it first. */
void ref_batchnorm_forward_train(const ref_bn_dims *d, double eps,
                                 double momentum, const ref_t *x,
                                 const ref_t *gamma, const ref_t *beta,
                                 ref_t *y, ref_t *save_mean,
                                 ref_t *save_inv_std, ref_t *running_mean,
                                 ref_t *running_var);
/* Eval: normalises with the running statistics, which stay unchanged. */
void ref_batchnorm_forward_eval(const ref_bn_dims *d, double eps,
                                const ref_t *x, const ref_t *gamma,
                                const ref_t *beta, const ref_t *running_mean,
                                const ref_t *running_var, ref_t *y);
/* Training backward, through the batch statistics: with xhat the
 * normalised input and M = n*spatial,
 *   dbeta = sum dy, dgamma = sum dy*xhat,
 *   dx = gamma*inv_std/M * (M*dy - dbeta - xhat*dgamma).
 * dx, dgamma and dbeta may each be NULL. */
void ref_batchnorm_backward_train(const ref_bn_dims *d, const ref_t *x,
                                  const ref_t *dy, const ref_t *gamma,
                                  const ref_t *save_mean,
                                  const ref_t *save_inv_std, ref_t *dx,
                                  ref_t *dgamma, ref_t *dbeta);
/* Eval backward: the statistics are constants, so dx = dy*gamma*inv_std
 * with the running inv_std. dx, dgamma and dbeta may each be NULL. */
void ref_batchnorm_backward_eval(const ref_bn_dims *d, double eps,
                                 const ref_t *x, const ref_t *dy,
                                 const ref_t *gamma, const ref_t *running_mean,
                                 const ref_t *running_var, ref_t *dx,
                                 ref_t *dgamma, ref_t *dbeta);

/* layernorm: x [rows, dim], normalised over the last dim elements with the
 * biased variance; gamma and beta [dim] or NULL (affine=false). Saves mean
 * and inv_std per row. */
void ref_layernorm_forward(int64_t rows, int dim, double eps, const ref_t *x,
                           const ref_t *gamma, const ref_t *beta, ref_t *y,
                           ref_t *save_mean, ref_t *save_inv_std);
/* With g = dy*gamma: dx = inv_std/D * (D*g - sum g - xhat*sum(g*xhat));
 * dgamma = sum over rows of dy*xhat, dbeta = sum of dy. dx, dgamma and
 * dbeta may each be NULL. */
void ref_layernorm_backward(int64_t rows, int dim, const ref_t *x,
                            const ref_t *dy, const ref_t *gamma,
                            const ref_t *save_mean, const ref_t *save_inv_std,
                            ref_t *dx, ref_t *dgamma, ref_t *dbeta);

#endif
