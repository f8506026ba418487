/* lower_gemm.h — the tiled matrix-product kernel builder
 * (lower_gemm_build.c) that lower_gemm.c (linear, matmul) and
 * lower_conv.c (conv2d as an implicit GEMM) share; not part of lowering's
 * interface (passes/lower.h).
 *
 * One builder, one loop nest. For every "entry" j < E (a batch of
 * independent products: matmul's leading dimensions, conv's (image,
 * group) pairs) it computes
 *
 *   out[j](m, n) = bias(m, n) + sum over f < F, k < K of A(m, k) * B(k, n)
 *
 * where F is an outer reduction for operands that were broadcast over
 * several entries (their gradient sums those entries). The kernel:
 *
 *   [grid split < S,] grid j < E, grid bm < ceil(M/TM),
 *   grid bn < ceil(N/TN) (or grid by, grid bx: 2-D columns):  one tile
 *     thread t < TM: acc[t][:] = 0              (shared accumulators)
 *     serial f < F, serial kc < ceil(K/TK) (this split's share):
 *       thread t < TM: pack A rows, B rows       (shared, zero-padded)
 *       barrier
 *       thread t < TM: acc[t][n] += A[t][k] * B[k][n]   (vector over n)
 *       barrier
 *     thread t < TM: out = acc (+ bias) where m < M, n < N
 *
 * Packing gathers the operands through the view callbacks below, so any
 * layout (transposed weights, convolution windows with padding, dilation
 * and stride) is read once per tile into a contiguous, zero-padded shared
 * tile; the inner loops then run over fixed extents with no guards, which
 * is what vectorises on the CPU and what becomes shared-memory tiles (and
 * later MMA) on the GPU. Sums run in a fixed order: no atomics, the same
 * bits every run (split-K adds its partial sums in order too). */
#ifndef KILN_LOWER_GEMM_H
#define KILN_LOWER_GEMM_H

#include "passes/lower.h"

typedef struct gemm gemm;

/* Where element (row, col) of an operand lives. Strided views use
 * base + row*rs + col*cs, with base from the `base` callback (NULL: 0);
 * `at` (when set) replaces that and may also return a validity condition
 * (*valid, NULL = always valid; an invalid element reads as 0). Both may
 * append lets at the builder's cursor; they see g->j and g->f. */
typedef enum gemm_which { GEMM_A, GEMM_B, GEMM_OUT, GEMM_BIAS } gemm_which;

typedef struct gemm_view {
  kir_buf *buf;
  int64_t rs, cs;
  kir_expr *(*base)(gemm *g, gemm_which w);
  kir_expr *(*at)(gemm *g, gemm_which w, kir_var *row, kir_var *col,
                  kir_expr **valid);
  /* A only: pack the tile column by column (the vector loop down a
   * column, the tile stored k-major), for views contiguous along the row
   * index. Strided views with rs == 1 get it without asking. */
  bool by_col;
} gemm_view;

struct gemm {
  lower_ctx *c;
  kir_kernel *k;
  const ir_node *node;
  int64_t E, F, M, N, K;
  int tm, tn, tk;
  kir_var *j, *f; /* NULL while E (or F) is 1: index 0 */
  kir_var *split; /* split-K: the K range (see gemm_emit), or NULL */
  /* 2-D columns (gemm_columns_2d): N = ny * nx, tiles of tny x tnx
   * (tny * tnx = TN) on the grid (by, bx); while B is packed or the output
   * stored, (cy, cx) are the current column's coordinates. */
  int64_t nx, ny;
  int tnx, tny;
  kir_var *by, *bx, *cy, *cx;
  gemm_view v[4]; /* indexed by gemm_which; v[GEMM_BIAS].buf may be NULL */
  int args[4];    /* plan tensors of the GLOBAL buffers, in order */
  int n_args;
  const void *op; /* the rule's own dimensions */
};

/* Tile sizes for an M x N x K product: M and N cut into the fewest equal
 * parts of at most 32 rows (TM) and 64 columns (TN, rounded up to a
 * multiple of 8, whole vectors), so that ragged sizes waste little;
 * TK = min(K rounded up to a multiple of 4, 32). */
void gemm_tiles(int64_t m, int64_t n, int64_t k, int *tm, int *tn, int *tk);
/* Starts kernel "<prefix>_<node name>" for an E x (F x) M x N x K
 * product computed for node n. */
void gemm_init(gemm *g, lower_ctx *c, const char *prefix, const ir_node *n,
               int64_t e, int64_t f, int64_t m, int64_t nn, int64_t k);
/* Lays the N columns out as an image of N/nx rows of nx (a convolution's
 * pixels): tiles become tny x tnx rectangles of whole rows (up to 64
 * pixels; wider rows cut in equal parts), TN = tny * tnx, and B is packed
 * row by row of them, so a view affine in the column's x (g->cx) reads
 * memory contiguously instead of through a gather. Call after gemm_init. */
void gemm_columns_2d(gemm *g, int64_t nx);
/* Binds operand w to plan tensor t (declaring its GLOBAL buffer). Bind
 * GEMM_OUT first: it is the only buffer written. */
gemm_view *gemm_bind(gemm *g, gemm_which w, const char *name, int t);
/* Builds the loop nest above and appends the launch. A product with
 * fewer than 32 tiles, a long K (8 chunks or more) and no bias is split
 * over K ranges (an outer grid loop over the splits, each summing into
 * its own partial output in a scratch tensor) and followed by a second
 * launch adding the partial sums in order: deterministic, and enough
 * blocks for every thread. */
kiln_status gemm_emit(gemm *g);

/* Expression shorthands for view callbacks. */
kir_expr *gemm_i(gemm *g, int64_t v);
kir_expr *gemm_v(gemm *g, kir_var *v); /* NULL: the constant 0 */
kir_expr *gemm_op(gemm *g, kir_op op, kir_expr *a, kir_expr *b);

/* out = in^T for in [rows, cols] (tiles of 32 x 32 through shared). */
kiln_status gemm_transpose(lower_ctx *c, const char *prefix, const ir_node *n,
                           int in, int out, int64_t rows, int64_t cols);
/* out[o] = sum over b < B, p < P of in[(b*O + o)*P + p]: bias gradients
 * (linear: P = 1; conv: P = the output plane), one kernel, vectorised
 * over o (P == 1) or over p, in a fixed order. */
kiln_status gemm_sum_rows(lower_ctx *c, const char *prefix, const ir_node *n,
                          int in, int out, int64_t b, int64_t o, int64_t p);

#endif
