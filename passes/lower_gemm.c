/* lower_gemm.c — the rules of linear and matmul, forward and backward, on
 * the tiled GEMM builder of lower_gemm.h (lower_gemm_build.c).
 *
 * Every product is one gemm_emit kernel (plus the sum of split-K, or the
 * weight transpose before linear's forward); bias gradients, which are
 * plain sums, use gemm_sum_rows. The formulas are the reference
 * executor's (runtime/reference/ref_linear.c), with x [rows, in],
 * W [out, in], dy [rows, out]:
 *   y = x W^T + b     dx = dy W     dW = dy^T x     db = column sums of dy
 * and for matmul c = a b with a [.., m, k], b [.., k, n]:
 *   da = dc b^T       db = a^T dc
 * where an operand broadcast over leading dimensions receives the sum of
 * its per-entry gradients (the builder's F loop), as ref_exec_bwd.c's
 * matmul_bwd does. Transposed operands need no copy: the builder gathers
 * any layout into its shared tiles (at the price of a gather, which is
 * why linear's forward transposes W once when several row tiles would
 * gather it).
 *
 * Needs: tensors for the node, its input(s) and parameters (lower.c).
 * Guarantees: outputs written in full, never accumulated into. */
#include "passes/lower_gemm.h"

#include <string.h>

/* ---- linear ---- */

static const ir_param *param_role(const ir_node *f, const char *role) {
  for (int k = 0; k < f->n_params; k++)
    if (strcmp(f->params[k].role, role) == 0)
      return &f->params[k];
  return NULL;
}

/* x viewed as [rows, in], the output as [rows, out]. */
static void linear_dims(lower_ctx *c, const ir_node *f, int64_t *rows,
                        int64_t *in, int64_t *out) {
  const ir_node *x = f->inputs[0];
  *in = x->shape.dim[x->shape.rank - 1];
  *out = f->shape.dim[f->shape.rank - 1];
  *rows = lower_numel(c, x) / *in;
}

static void strided(gemm_view *v, int64_t rs, int64_t cs) {
  v->rs = rs;
  v->cs = cs;
}

kiln_status lower_linear_fwd(lower_ctx *c, const ir_node *n) {
  int64_t rows, in, out;
  linear_dims(c, n, &rows, &in, &out);
  const ir_param *w = param_role(n, "weight"), *b = param_role(n, "bias");
  int wt = lower_param_tensor(c, w);
  kiln_status st;
  gemm g;
  /* B(k, n) = W[n, k]. With more than one row tile every B tile is packed
   * once per row tile: transposing W once is cheaper than gathering it
   * each time. */
  gemm_tiles(rows, out, in, &g.tm, &g.tn, &g.tk);
  bool transpose = rows > g.tm;
  if (transpose) {
    int t = lower_scratch(c, arena_printf(c->a, "%s.weight_t", n->name),
                          KIR_F32, out * in);
    if ((st = gemm_transpose(c, "transpose_weight", n, wt, t, out, in)))
      return st;
    wt = t;
  }
  gemm_init(&g, c, "linear_fwd", n, 1, 1, rows, out, in);
  strided(gemm_bind(&g, GEMM_OUT, "y", lower_node_tensor(c, n)), out, 1);
  strided(gemm_bind(&g, GEMM_A, "x", lower_node_tensor(c, n->inputs[0])), in,
          1);
  if (transpose)
    strided(gemm_bind(&g, GEMM_B, "weight_t", wt), out, 1);
  else
    strided(gemm_bind(&g, GEMM_B, "weight", wt), 1, in);
  if (b)
    strided(gemm_bind(&g, GEMM_BIAS, "bias", lower_param_tensor(c, b)), 0, 1);
  return gemm_emit(&g);
}

kiln_status lower_linear_bwd(lower_ctx *c, const ir_node *gn) {
  const ir_node *f = gn->fwd;
  int64_t rows, in, out;
  linear_dims(c, f, &rows, &in, &out);
  int dy = lower_node_tensor(c, gn->inputs[0]), dst = lower_node_tensor(c, gn);
  gemm g;
  if (gn->wrt == 0) { /* dx = dy W: [rows, out] x [out, in] */
    gemm_init(&g, c, "linear_bwd_data", gn, 1, 1, rows, in, out);
    strided(gemm_bind(&g, GEMM_OUT, "dx", dst), in, 1);
    strided(gemm_bind(&g, GEMM_A, "dy", dy), out, 1);
    strided(gemm_bind(&g, GEMM_B, "weight",
                      lower_param_tensor(c, param_role(f, "weight"))),
            in, 1);
    return gemm_emit(&g);
  }
  KILN_ASSERT(gn->wrt < 0);
  const char *role = f->params[-1 - gn->wrt].role;
  if (strcmp(role, "bias") == 0)
    return gemm_sum_rows(c, "linear_bwd_bias", gn, dy, dst, rows, out, 1);
  KILN_ASSERT(strcmp(role, "weight") == 0);
  /* dW = dy^T x: [out, rows] x [rows, in] */
  gemm_init(&g, c, "linear_bwd_weight", gn, 1, 1, out, in, rows);
  strided(gemm_bind(&g, GEMM_OUT, "dweight", dst), in, 1);
  strided(gemm_bind(&g, GEMM_A, "dy", dy), 1, out);
  strided(gemm_bind(&g, GEMM_B, "x", lower_node_tensor(c, f->inputs[0])), in,
          1);
  return gemm_emit(&g);
}

/* ---- matmul ----
 * Leading ("entry") dimensions of y, with a's and b's aligned to them
 * (missing leading dimensions are 1). `owner` says what the grid index j
 * enumerates: y's entries (-1, the forward) or the matrices of operand 0
 * or 1, whose gradient then sums over the F entries it was broadcast to. */
typedef struct mm_dims {
  int rank;
  int64_t y[IR_MAX_DIMS], ab[2][IR_MAX_DIMS];
  int64_t m, k, n;
  int owner;
} mm_dims;

static void mm_dims_of(lower_ctx *c, const ir_node *f, int owner, mm_dims *d) {
  *d = (mm_dims){.rank = f->shape.rank - 2, .owner = owner};
  int64_t y[IR_MAX_DIMS], x[IR_MAX_DIMS];
  lower_dims(c, f, y);
  for (int i = 0; i < d->rank; i++)
    d->y[i] = y[i];
  for (int o = 0; o < 2; o++) {
    const ir_node *in = f->inputs[o];
    int r = in->shape.rank - 2, off = d->rank - r;
    lower_dims(c, in, x);
    for (int i = 0; i < d->rank; i++)
      d->ab[o][i] = i >= off ? x[i - off] : 1;
    if (o == 0) {
      d->m = x[r];
      d->k = x[r + 1];
    } else {
      d->n = x[r + 1];
    }
  }
}

static int64_t mm_count(const mm_dims *d, int which) {
  int64_t p = 1;
  for (int i = 0; i < d->rank; i++)
    p *= which < 0 ? d->y[i] : d->ab[which][i];
  return p;
}

/* The coordinate of y's leading dimension i for the current (j, f). */
static kir_expr *mm_coord(gemm *g, const mm_dims *d, int i) {
  int64_t sj = 1, sf = 1;
  bool from_j = d->owner < 0 || d->ab[d->owner][i] == d->y[i];
  for (int q = i + 1; q < d->rank; q++) {
    if (d->owner < 0) {
      sj *= d->y[q];
    } else if (d->ab[d->owner][q] == d->y[q]) {
      sj *= d->y[q];
    } else {
      sf *= d->y[q];
    }
  }
  kir_expr *v = from_j ? gemm_v(g, g->j) : gemm_v(g, g->f);
  v = gemm_op(g, KIR_DIV, v, gemm_i(g, from_j ? sj : sf));
  return gemm_op(g, KIR_MOD, v, gemm_i(g, d->y[i]));
}

/* The matrix index of y (which < 0) or of operand `which` for the
 * current (j, f), times the matrix size. */
static kir_expr *mm_base(gemm *g, const mm_dims *d, int which, int64_t size) {
  kir_expr *e = gemm_i(g, 0);
  int64_t s = 1;
  for (int i = d->rank - 1; i >= 0; i--) {
    int64_t ext = which < 0 ? d->y[i] : d->ab[which][i];
    if (ext == 1)
      continue; /* broadcast (or size 1): coordinate ignored */
    e = gemm_op(g, KIR_ADD, e,
                gemm_op(g, KIR_MUL, mm_coord(g, d, i), gemm_i(g, s)));
    s *= ext;
  }
  return gemm_op(g, KIR_MUL, e, gemm_i(g, size));
}

/* Which matrix each view reads: forward (owner -1): out = y, A = a,
 * B = b; da (owner 0): out = da, A = dc, B = b; db (owner 1): out = db,
 * A = a, B = dc. */
static kir_expr *mm_view_base(gemm *g, gemm_which w) {
  const mm_dims *d = g->op;
  int64_t mk = d->m * d->k, kn = d->k * d->n, mn = d->m * d->n;
  static const int which[3][3] = {
      /* A, B, OUT */
      {0, 1, -1}, /* forward */
      {-1, 1, 0}, /* da */
      {0, -1, 1}, /* db */
  };
  int o = which[d->owner + 1][w];
  return mm_base(g, d, o, o == 0 ? mk : o == 1 ? kn : mn);
}

kiln_status lower_matmul_fwd(lower_ctx *c, const ir_node *n) {
  mm_dims d;
  mm_dims_of(c, n, -1, &d);
  gemm g;
  gemm_init(&g, c, "matmul_fwd", n, mm_count(&d, -1), 1, d.m, d.n, d.k);
  g.op = &d;
  gemm_view *v = gemm_bind(&g, GEMM_OUT, "c", lower_node_tensor(c, n));
  strided(v, d.n, 1);
  v->base = mm_view_base;
  v = gemm_bind(&g, GEMM_A, "a", lower_node_tensor(c, n->inputs[0]));
  strided(v, d.k, 1);
  v->base = mm_view_base;
  v = gemm_bind(&g, GEMM_B, "b", lower_node_tensor(c, n->inputs[1]));
  strided(v, d.n, 1);
  v->base = mm_view_base;
  return gemm_emit(&g);
}

kiln_status lower_matmul_bwd(lower_ctx *c, const ir_node *gn) {
  const ir_node *f = gn->fwd;
  KILN_ASSERT(gn->wrt == 0 || gn->wrt == 1);
  mm_dims d;
  mm_dims_of(c, f, gn->wrt, &d);
  int64_t mats = mm_count(&d, gn->wrt), entries = mm_count(&d, -1);
  KILN_ASSERT(entries % mats == 0);
  int dc = lower_node_tensor(c, gn->inputs[0]);
  gemm g;
  gemm_view *v;
  if (gn->wrt == 0) { /* da = dc b^T: [m, n] x [n, k] */
    gemm_init(&g, c, "matmul_bwd_a", gn, mats, entries / mats, d.m, d.k, d.n);
    g.op = &d;
    v = gemm_bind(&g, GEMM_OUT, "da", lower_node_tensor(c, gn));
    strided(v, d.k, 1);
    v->base = mm_view_base;
    v = gemm_bind(&g, GEMM_A, "dc", dc);
    strided(v, d.n, 1);
    v->base = mm_view_base;
    v = gemm_bind(&g, GEMM_B, "b", lower_node_tensor(c, f->inputs[1]));
    strided(v, 1, d.n);
    v->base = mm_view_base;
  } else { /* db = a^T dc: [k, m] x [m, n] */
    gemm_init(&g, c, "matmul_bwd_b", gn, mats, entries / mats, d.k, d.n, d.m);
    g.op = &d;
    v = gemm_bind(&g, GEMM_OUT, "db", lower_node_tensor(c, gn));
    strided(v, d.n, 1);
    v->base = mm_view_base;
    v = gemm_bind(&g, GEMM_A, "a", lower_node_tensor(c, f->inputs[0]));
    strided(v, 1, d.k);
    v->base = mm_view_base;
    v = gemm_bind(&g, GEMM_B, "dc", dc);
    strided(v, d.n, 1);
    v->base = mm_view_base;
  }
  return gemm_emit(&g);
}
