/* lower_pointwise.h — what the three files lowering the pointwise ops share
 * (not part of lowering's interface, passes/lower.h):
 *
 *   lower_pointwise.c  the two rules the driver calls (dispatch by op), the
 *                      kernel builder helpers below, copies and dropout;
 *   lower_act.c        activations (relu .. tanh, prelu), forward and
 *                      backward;
 *   lower_tensor.c     add and mul with broadcasting, maxout, softmax,
 *                      concat.
 *
 * Every kernel here walks the elements of one tensor with the same loop
 * nest (pw_loop): a GRID over blocks of PW_BLOCK elements and a THREAD
 * loop over the block, with a bound guard for the odd tail — the shape
 * both renderers map best: on the GPU one thread per element, adjacent
 * threads on adjacent elements (coalesced); on the CPU the pool splits the
 * grid and the LLVM renderer vectorises the thread loop (it gives THREAD
 * and VECTOR loops the same hint). A GRID of chunks around a VECTOR loop
 * would leave one GPU thread per chunk (block_threads 0 maps grid
 * iterations to threads): a few threads, strided accesses. Kernels whose
 * elements share per-row values (prelu's slope, a broadcast operand's
 * offset) use rows instead (pw_rows_*), so the division by the row length
 * happens once per block and the thread loop stays vectorisable.
 * Reductions (gradients of broadcast operands, prelu's slopes, softmax
 * rows) give every output element its own serial loops, split in slices
 * when they are long (pw_reduce), so sums have a fixed order and no
 * atomics are needed. */
#ifndef KILN_LOWER_POINTWISE_H
#define KILN_LOWER_POINTWISE_H

#include "passes/lower.h"

/* Elements per block (grid iteration): a common CUDA block size, and on
 * the CPU a vectorised run long enough to hide the loop overhead. */
#define PW_BLOCK 256
/* Reductions split their first loop when an element sums more than
 * PW_PART_LEN terms, into at most enough slices for about
 * PW_SPLIT_THREADS threads in all. */
#define PW_PART_LEN 1024
#define PW_SPLIT_THREADS 8192

/* A kernel being built with the plan tensor bound to each GLOBAL buffer. */
typedef struct pw_kernel {
  lower_ctx *c;
  kir_kernel *k;
  const ir_node *node; /* the node the launch computes */
  kir_var *col;        /* pw_rows_begin: the block within the row */
  int n_args, cap_args;
  int *args;
} pw_kernel;

/* ---- lower_pointwise.c: kernel helpers ---- */

/* A kernel named "<prefix>_<name of f>" computing node n; its block size
 * is set by pw_loop. */
void pw_begin(pw_kernel *pk, lower_ctx *c, const char *prefix, const ir_node *f,
              const ir_node *n);
/* GLOBAL buffers bound to plan tensors, read-only (in) or written (out). */
kir_buf *pw_in(pw_kernel *pk, const char *name, int tensor);
kir_buf *pw_out(pw_kernel *pk, const char *name, int tensor);
/* Opens the loop nest over elements [0, count) and returns the element
 * index (i64); pw_loop_end closes it. */
kir_var *pw_loop(pw_kernel *pk, int64_t count);
void pw_loop_end(pw_kernel *pk);
/* Rows of `len` contiguous elements, for kernels whose elements share
 * something per row (a slope, a broadcast operand's offset):
 *   grid row < rows: grid b < ceil(len / bt):
 *     <block-level lets: once per block, not per element>
 *     thread t < bt: q = b * bt + t (guard q < len)
 * pw_rows_begin opens the grid loops and returns the row; after the
 * caller's lets, pw_rows_threads opens the thread loop and returns q;
 * pw_loop_end closes everything. Element (row, q) is row * len + q. Worth
 * it for rows of at least PW_ROW_MIN elements (whole warps, vector runs
 * free of divisions). */
#define PW_ROW_MIN 64
kir_var *pw_rows_begin(pw_kernel *pk, int64_t rows, int64_t len);
kir_var *pw_rows_threads(pw_kernel *pk, int64_t len);
/* Verifies and appends the launch. */
kiln_status pw_launch(pw_kernel *pk);

/* out[i] = fn(i, x) for every element i, x[j] a variable holding
 * in[j][i]. */
typedef kir_expr *(*pw_map_fn)(pw_kernel *pk, kir_var *i, kir_var *const *x,
                               const void *ctx);
kiln_status pw_map(lower_ctx *c, const char *prefix, const ir_node *f,
                   const ir_node *n, const int *in, int n_in, int out,
                   pw_map_fn fn, const void *ctx);
/* out = in, element by element (shape changes, eval dropout, dy passed
 * through), unless out is an alias of in. */
kiln_status pw_copy(lower_ctx *c, const char *prefix, const ir_node *f,
                    const ir_node *n, int in, int out);

/* A deterministic reduction into tensor `out` of m elements:
 *   for every output element j < m (the loop nest): acc = 0
 *     <serial loops the caller opens with pw_reduce_for, `outer` the
 *      extent of the first, `len` the product of all>:
 *       acc += term                                   (pw_reduce_add)
 *   out[j] = acc                                      (pw_reduce_launch)
 * When few elements sum many terms (a slope or a broadcast operand's
 * gradient over a whole batch) one thread per element would leave the GPU
 * idle and one CPU core busy: the first loop is then split into `parts`
 * slices, each summed by its own thread into a scratch tensor of m *
 * parts partial sums, and a second kernel adds each element's partials in
 * order. Either way every sum has a fixed order: no atomics. */
typedef struct pw_reduce {
  kir_var *j, *acc; /* the output element, the running sum */
  kir_var *e;       /* the loop nest's element: j, or j * parts + slice */
  kir_var *slice;
  kir_buf *dst; /* out, or the partial sums */
  int out;      /* the output tensor */
  int64_t m, outer, parts, chunk;
  int open; /* statements opened after the nest, to close */
} pw_reduce;
void pw_reduce_begin(pw_kernel *pk, pw_reduce *rd, int out, int64_t m,
                     int64_t outer, int64_t len);
kir_var *pw_reduce_for(pw_kernel *pk, pw_reduce *rd, int64_t extent);
void pw_reduce_add(pw_kernel *pk, pw_reduce *rd, kir_expr *term);
/* Stores, closes and launches the kernel (and the partials' sum). */
kiln_status pw_reduce_launch(pw_kernel *pk, pw_reduce *rd);

/* Attributes of forward node f. */
const ir_attr *pw_attr(const ir_node *f, const char *name);
bool pw_sym_is(const ir_node *f, const char *name, const char *word);
/* A possibly negative axis attribute of f normalised against rank. */
int pw_axis(const ir_node *f, int rank);
/* Value v (a node) at the plan's batch viewed as [N, C, inner] (prelu,
 * maxout) or as [outer, len, inner] around axis (softmax, concat). */
void pw_nc_inner(lower_ctx *c, const ir_node *v, int64_t *n, int64_t *ch,
                 int64_t *inner);
void pw_axis_split(lower_ctx *c, const ir_node *v, int axis, int64_t *outer,
                   int64_t *len, int64_t *inner);

/* Expression shorthands (f32 unless the operands say otherwise). */
static inline kir_expr *pw_f(pw_kernel *pk, double v) {
  return kir_f32(pk->k, (float)v);
}
static inline kir_expr *pw_i(pw_kernel *pk, int64_t v) {
  return kir_i64(pk->k, v);
}
static inline kir_expr *pw_v(pw_kernel *pk, kir_var *v) {
  return kir_ref(pk->k, v);
}
static inline kir_expr *pw_bin(pw_kernel *pk, kir_op op, kir_expr *a,
                               kir_expr *b) {
  return kir_bin(pk->k, op, a, b);
}
/* a > b, for the "x > 0" branches of the reference's activations. */
static inline kir_expr *pw_gt(pw_kernel *pk, kir_expr *a, kir_expr *b) {
  return kir_bin(pk->k, KIR_LT, b, a);
}
/* (i / stride) % extent, with the division left out for stride 1 and the
 * remainder for extent <= 0 (an outermost dimension). */
kir_expr *pw_digit(pw_kernel *pk, kir_var *i, int64_t stride, int64_t extent);

/* ---- lower_act.c ---- */
kiln_status pw_act_fwd(lower_ctx *c, const ir_node *n);
kiln_status pw_act_bwd(lower_ctx *c, const ir_node *gn);
kiln_status pw_prelu_fwd(lower_ctx *c, const ir_node *n);
kiln_status pw_prelu_bwd(lower_ctx *c, const ir_node *gn);

/* ---- lower_tensor.c ---- */
kiln_status pw_binary_fwd(lower_ctx *c, const ir_node *n);
kiln_status pw_binary_bwd(lower_ctx *c, const ir_node *gn);
kiln_status pw_maxout_fwd(lower_ctx *c, const ir_node *n);
kiln_status pw_maxout_bwd(lower_ctx *c, const ir_node *gn);
kiln_status pw_softmax_fwd(lower_ctx *c, const ir_node *n);
kiln_status pw_softmax_bwd(lower_ctx *c, const ir_node *gn);
kiln_status pw_concat_fwd(lower_ctx *c, const ir_node *n);
kiln_status pw_concat_bwd(lower_ctx *c, const ir_node *gn);

#endif
