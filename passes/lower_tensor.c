/* lower_tensor.c — kernels for the ops that combine or rearrange whole
 * tensors: add and mul with NumPy broadcasting, maxout, softmax, concat;
 * forward and backward.
 *
 * Broadcasting is computed once per node (bc_view): the output's shape with
 * size-1 dimensions dropped and neighbours merged where both inputs allow
 * it, and each input's element stride along every remaining dimension (0
 * where it is broadcast). An input's element for output index o is then
 * sum_d ((o / ostride_d) % out_d) * st_d. The gradient of a broadcast input
 * sums dy over the dimensions it was broadcast along: per input element,
 * serial loops over those dimensions in increasing output order (as the
 * reference sums), split in slices when long (pw_reduce), so the result
 * is deterministic without atomics. Forward, an innermost dimension of at
 * least PW_ROW_MIN elements takes the row layout (pw_rows_*): the
 * divisions once per block, contiguous or repeated loads per element. */
#include "passes/lower_pointwise.h"

/* ---- broadcasting ---- */

typedef struct bc_view {
  int rank;
  int64_t out[IR_MAX_DIMS];
  int64_t ostride[IR_MAX_DIMS];
  int64_t st[2][IR_MAX_DIMS]; /* element stride of input 0 and 1 */
} bc_view;

static void bc_init(lower_ctx *c, const ir_node *f, bc_view *v) {
  int r = f->shape.rank;
  int64_t od[IR_MAX_DIMS], st[2][IR_MAX_DIMS];
  lower_dims(c, f, od);
  for (int w = 0; w < 2; w++) {
    const ir_node *x = f->inputs[w];
    int64_t xd[IR_MAX_DIMS], stride = 1;
    lower_dims(c, x, xd);
    /* inputs align at the right; a missing dimension counts as 1 */
    for (int d = r - 1; d >= 0; d--) {
      int k = d - (r - x->shape.rank);
      st[w][d] = k < 0 || xd[k] == 1 ? 0 : stride;
      if (k >= 0)
        stride *= xd[k];
    }
  }
  /* Drop size-1 dimensions; merge d into the previous kept dimension p
   * when both inputs step through p exactly as through d * out_d. */
  v->rank = 0;
  for (int d = 0; d < r; d++) {
    if (od[d] == 1)
      continue;
    int p = v->rank - 1;
    if (p >= 0 && v->st[0][p] == st[0][d] * od[d] &&
        v->st[1][p] == st[1][d] * od[d]) {
      v->out[p] *= od[d];
      v->st[0][p] = st[0][d];
      v->st[1][p] = st[1][d];
      continue;
    }
    v->out[v->rank] = od[d];
    v->st[0][v->rank] = st[0][d];
    v->st[1][v->rank] = st[1][d];
    v->rank++;
  }
  if (v->rank == 0) { /* a single element */
    v->rank = 1;
    v->out[0] = 1;
    v->st[0][0] = v->st[1][0] = 0;
  }
  int64_t s = 1;
  for (int d = v->rank - 1; d >= 0; d--) {
    v->ostride[d] = s;
    s *= v->out[d];
  }
}

/* Input w laid out like the output (no dimension broadcast). */
static bool bc_full(const bc_view *v, int w) {
  for (int d = 0; d < v->rank; d++)
    if (v->st[w][d] != v->ostride[d])
      return false;
  return true;
}

/* Input w's element for output index o, from the first `dims`
 * dimensions only, with o counting units of `unit` elements (a row of the
 * innermost dimension when dims = rank - 1). */
static kir_expr *bc_index(pw_kernel *pk, const bc_view *v, int w, kir_var *o,
                          int dims, int64_t unit) {
  if (dims == v->rank && bc_full(v, w))
    return pw_v(pk, o);
  kir_expr *e = NULL;
  for (int d = 0; d < dims; d++) {
    if (v->st[w][d] == 0)
      continue;
    kir_expr *t = pw_digit(pk, o, v->ostride[d] / unit, d ? v->out[d] : 0);
    if (v->st[w][d] != 1)
      t = pw_bin(pk, KIR_MUL, t, pw_i(pk, v->st[w][d]));
    e = e ? pw_bin(pk, KIR_ADD, e, t) : t;
  }
  return e ? e : pw_i(pk, 0);
}

/* acc + v * stride, leaving out what is trivial (acc may be NULL). */
static kir_expr *add_term(pw_kernel *pk, kir_expr *acc, kir_var *v,
                          int64_t stride) {
  if (stride == 0)
    return acc;
  kir_expr *t = pw_v(pk, v);
  if (stride != 1)
    t = pw_bin(pk, KIR_MUL, t, pw_i(pk, stride));
  return acc ? pw_bin(pk, KIR_ADD, acc, t) : t;
}

static const char *binary_name(const ir_node *f) {
  return f->op == IR_OP_ADD ? "add" : "mul";
}

kiln_status pw_binary_fwd(lower_ctx *c, const ir_node *n) {
  bc_view v;
  bc_init(c, n, &v);
  pw_kernel pk;
  pw_begin(&pk, c, n->op == IR_OP_ADD ? "add_fwd" : "mul_fwd", n, n);
  kir_buf *a = pw_in(&pk, "a", lower_node_tensor(c, n->inputs[0]));
  kir_buf *b = pw_in(&pk, "b", lower_node_tensor(c, n->inputs[1]));
  kir_buf *y = pw_out(&pk, "y", lower_node_tensor(c, n));
  kir_var *o;
  kir_expr *ia, *ib;
  int r = v.rank;
  int64_t len = v.out[r - 1];
  if ((!bc_full(&v, 0) || !bc_full(&v, 1)) && r > 1 && len >= PW_ROW_MIN) {
    /* rows of the innermost dimension: each input's row offset once per
     * block, then contiguous (stride 1) or repeated (0) elements */
    kir_var *row = pw_rows_begin(&pk, lower_numel(c, n) / len, len);
    kir_var *ra = kir_let(pk.k, "ra", bc_index(&pk, &v, 0, row, r - 1, len));
    kir_var *rb = kir_let(pk.k, "rb", bc_index(&pk, &v, 1, row, r - 1, len));
    kir_var *q = pw_rows_threads(&pk, len);
    o = kir_let(pk.k, "o",
                pw_bin(&pk, KIR_ADD,
                       pw_bin(&pk, KIR_MUL, pw_v(&pk, row), pw_i(&pk, len)),
                       pw_v(&pk, q)));
    ia = add_term(&pk, pw_v(&pk, ra), q, v.st[0][r - 1]);
    ib = add_term(&pk, pw_v(&pk, rb), q, v.st[1][r - 1]);
  } else {
    o = pw_loop(&pk, lower_numel(c, n));
    ia = bc_index(&pk, &v, 0, o, r, 1);
    ib = bc_index(&pk, &v, 1, o, r, 1);
  }
  kir_expr *va = kir_load(pk.k, a, ia), *vb = kir_load(pk.k, b, ib);
  kir_store(pk.k, y, pw_v(&pk, o),
            pw_bin(&pk, n->op == IR_OP_ADD ? KIR_ADD : KIR_MUL, va, vb));
  pw_loop_end(&pk);
  return pw_launch(&pk);
}

/* d(input w): dy (add) or dy * other (mul), summed over the dimensions w
 * is broadcast along. */
kiln_status pw_binary_bwd(lower_ctx *c, const ir_node *gn) {
  const ir_node *f = gn->fwd;
  int w = gn->wrt;
  KILN_ASSERT((w == 0 || w == 1) && "add and mul have no parameters");
  bool is_mul = f->op == IR_OP_MUL;
  bc_view v;
  bc_init(c, f, &v);
  pw_kernel pk;
  pw_begin(&pk, c,
           arena_printf(c->a, "%s_bwd_%c", binary_name(f), w ? 'b' : 'a'), f,
           gn);
  kir_buf *dy = pw_in(&pk, "dy", lower_node_tensor(c, gn->inputs[0]));
  kir_buf *other =
      is_mul ? pw_in(&pk, "other", lower_node_tensor(c, f->inputs[1 - w]))
             : NULL;
  int64_t m = lower_numel(c, f->inputs[w]), len = 1, outer = 0;
  for (int d = 0; d < v.rank; d++)
    if (!v.st[w][d]) {
      len *= v.out[d];
      outer = outer ? outer : v.out[d];
    }
  if (len == 1) {
    kir_buf *dx = pw_out(&pk, "dx", lower_node_tensor(c, gn));
    /* not broadcast: input w is laid out like the output */
    kir_var *o = pw_loop(&pk, m);
    kir_expr *g = kir_load(pk.k, dy, pw_v(&pk, o));
    if (is_mul)
      g = pw_bin(&pk, KIR_MUL, g,
                 kir_load(pk.k, other, bc_index(&pk, &v, 1 - w, o, v.rank, 1)));
    kir_store(pk.k, dx, pw_v(&pk, o), g);
    pw_loop_end(&pk);
    return pw_launch(&pk);
  }
  /* The output index o (and the other operand's, oi) of dx's element j:
   * kept dimensions are digits of j (whose strides are st[w]), added once
   * per j; each broadcast dimension is a serial loop adding its stride,
   * the innermost dimension innermost. */
  pw_reduce rd;
  pw_reduce_begin(&pk, &rd, lower_node_tensor(c, gn), m, outer, len);
  kir_expr *o = NULL, *oi = NULL;
  bool outermost = true;
  for (int d = 0; d < v.rank; d++) {
    if (!v.st[w][d])
      continue;
    kir_var *id = kir_let(
        pk.k, "d", pw_digit(&pk, rd.j, v.st[w][d], outermost ? 0 : v.out[d]));
    outermost = false;
    o = add_term(&pk, o, id, v.ostride[d]);
    oi = add_term(&pk, oi, id, v.st[1 - w][d]);
  }
  kir_var *ov = kir_let(pk.k, "o", o ? o : pw_i(&pk, 0));
  kir_var *oiv = is_mul ? kir_let(pk.k, "oi", oi ? oi : pw_i(&pk, 0)) : NULL;
  for (int d = 0; d < v.rank; d++) {
    if (v.st[w][d])
      continue;
    kir_var *r = pw_reduce_for(&pk, &rd, v.out[d]);
    ov = kir_let(pk.k, "o", add_term(&pk, pw_v(&pk, ov), r, v.ostride[d]));
    if (is_mul && v.st[1 - w][d])
      oiv =
          kir_let(pk.k, "oi", add_term(&pk, pw_v(&pk, oiv), r, v.st[1 - w][d]));
  }
  kir_expr *g = kir_load(pk.k, dy, pw_v(&pk, ov));
  if (is_mul)
    g = pw_bin(&pk, KIR_MUL, g, kir_load(pk.k, other, pw_v(&pk, oiv)));
  pw_reduce_add(&pk, &rd, g);
  return pw_reduce_launch(&pk, &rd);
}

/* ---- maxout: output channel g of [N, C / pieces, inner] is the first
 * maximum of input channels g * pieces .. g * pieces + pieces - 1 ---- */

typedef struct maxout_view {
  int64_t n, ch, inner, pieces, groups;
} maxout_view;

static maxout_view maxout_of(lower_ctx *c, const ir_node *f) {
  maxout_view v;
  pw_nc_inner(c, f->inputs[0], &v.n, &v.ch, &v.inner);
  v.pieces = pw_attr(f, "pieces")->i;
  KILN_ASSERT(v.pieces > 0 && v.ch % v.pieces == 0);
  v.groups = v.ch / v.pieces;
  return v;
}

/* Scans the group starting at x[base] (channels `inner` apart) and returns
 * the variable holding the maximum; *arg (when asked) the piece holding
 * the first maximum (strict comparison, as the reference). */
static kir_var *maxout_scan(pw_kernel *pk, kir_buf *x, kir_var *base,
                            const maxout_view *v, kir_var **arg) {
  kir_var *best = kir_let(pk->k, "best", kir_load(pk->k, x, pw_v(pk, base)));
  if (arg)
    *arg = kir_let(pk->k, "arg", pw_i(pk, 0));
  if (v->pieces == 1)
    return best;
  kir_var *k = kir_for(pk->k, KIR_LOOP_SERIAL, "k", pw_i(pk, v->pieces - 1));
  kir_var *piece =
      kir_let(pk->k, "piece", pw_bin(pk, KIR_ADD, pw_v(pk, k), pw_i(pk, 1)));
  kir_expr *at =
      pw_bin(pk, KIR_ADD, pw_v(pk, base),
             pw_bin(pk, KIR_MUL, pw_v(pk, piece), pw_i(pk, v->inner)));
  kir_var *val = kir_let(pk->k, "v", kir_load(pk->k, x, at));
  kir_var *take =
      kir_let(pk->k, "take", pw_bin(pk, KIR_LT, pw_v(pk, best), pw_v(pk, val)));
  kir_assign(pk->k, best,
             kir_select(pk->k, pw_v(pk, take), pw_v(pk, val), pw_v(pk, best)));
  if (arg)
    kir_assign(
        pk->k, *arg,
        kir_select(pk->k, pw_v(pk, take), pw_v(pk, piece), pw_v(pk, *arg)));
  kir_end(pk->k);
  return best;
}

/* base = (b * C + g * pieces) * inner + j */
static kir_var *maxout_base(pw_kernel *pk, const maxout_view *v, kir_var *b,
                            kir_var *g, kir_var *j) {
  kir_expr *row =
      pw_bin(pk, KIR_ADD, pw_bin(pk, KIR_MUL, pw_v(pk, b), pw_i(pk, v->ch)),
             pw_bin(pk, KIR_MUL, pw_v(pk, g), pw_i(pk, v->pieces)));
  return kir_let(pk->k, "base",
                 pw_bin(pk, KIR_ADD,
                        pw_bin(pk, KIR_MUL, row, pw_i(pk, v->inner)),
                        pw_v(pk, j)));
}

kiln_status pw_maxout_fwd(lower_ctx *c, const ir_node *n) {
  maxout_view v = maxout_of(c, n);
  pw_kernel pk;
  pw_begin(&pk, c, "maxout_fwd", n, n);
  kir_buf *x = pw_in(&pk, "x", lower_node_tensor(c, n->inputs[0]));
  kir_buf *y = pw_out(&pk, "y", lower_node_tensor(c, n));
  kir_var *o = pw_loop(&pk, lower_numel(c, n));
  kir_var *b = kir_let(pk.k, "bn", pw_digit(&pk, o, v.groups * v.inner, 0));
  kir_var *g = kir_let(pk.k, "g", pw_digit(&pk, o, v.inner, v.groups));
  kir_var *j = kir_let(pk.k, "j", pw_digit(&pk, o, 1, v.inner));
  kir_var *best = maxout_scan(&pk, x, maxout_base(&pk, &v, b, g, j), &v, NULL);
  kir_store(pk.k, y, pw_v(&pk, o), pw_v(&pk, best));
  pw_loop_end(&pk);
  return pw_launch(&pk);
}

/* Per input element: recompute its group's argmax (no index tensor) and
 * take dy where this element is it, 0 elsewhere. */
kiln_status pw_maxout_bwd(lower_ctx *c, const ir_node *gn) {
  const ir_node *f = gn->fwd;
  maxout_view v = maxout_of(c, f);
  pw_kernel pk;
  pw_begin(&pk, c, "maxout_bwd", f, gn);
  kir_buf *dy = pw_in(&pk, "dy", lower_node_tensor(c, gn->inputs[0]));
  kir_buf *x = pw_in(&pk, "x", lower_node_tensor(c, f->inputs[0]));
  kir_buf *dx = pw_out(&pk, "dx", lower_node_tensor(c, gn));
  kir_var *i = pw_loop(&pk, lower_numel(c, gn));
  kir_var *b = kir_let(pk.k, "bn", pw_digit(&pk, i, v.ch * v.inner, 0));
  kir_var *ch = kir_let(pk.k, "ch", pw_digit(&pk, i, v.inner, v.ch));
  kir_var *j = kir_let(pk.k, "j", pw_digit(&pk, i, 1, v.inner));
  kir_var *g = kir_let(pk.k, "g", pw_digit(&pk, ch, v.pieces, 0));
  kir_var *arg;
  maxout_scan(&pk, x, maxout_base(&pk, &v, b, g, j), &v, &arg);
  /* dy[(b * groups + g) * inner + j] */
  kir_expr *row = pw_bin(
      &pk, KIR_ADD, pw_bin(&pk, KIR_MUL, pw_v(&pk, b), pw_i(&pk, v.groups)),
      pw_v(&pk, g));
  kir_expr *at =
      pw_bin(&pk, KIR_ADD, pw_bin(&pk, KIR_MUL, row, pw_i(&pk, v.inner)),
             pw_v(&pk, j));
  kir_expr *mine =
      pw_bin(&pk, KIR_EQ, pw_v(&pk, arg), pw_digit(&pk, ch, 1, v.pieces));
  kir_store(pk.k, dx, pw_v(&pk, i),
            kir_select(pk.k, mine, kir_load(pk.k, dy, at), pw_f(&pk, 0)));
  pw_loop_end(&pk);
  return pw_launch(&pk);
}

/* ---- softmax along an axis: one row (outer, inner position) per
 * element of the loop nest, its `len` values `inner` apart ---- */

typedef struct row_view {
  int64_t outer, len, inner;
  kir_var *base;
} row_view;

/* Opens the loop over rows and sets v->base to the row's first element. */
static void rows_begin(pw_kernel *pk, lower_ctx *c, const ir_node *f,
                       row_view *v) {
  pw_axis_split(c, f, pw_axis(f, f->shape.rank), &v->outer, &v->len, &v->inner);
  kir_var *q = pw_loop(pk, v->outer * v->inner);
  kir_expr *o = pw_bin(pk, KIR_MUL, pw_digit(pk, q, v->inner, 0),
                       pw_i(pk, v->len * v->inner));
  if (v->inner > 1)
    o = pw_bin(pk, KIR_ADD, o, pw_digit(pk, q, 1, v->inner));
  v->base = kir_let(pk->k, "base", o);
}

/* Opens a serial loop over the row; returns the element's index. */
static kir_var *row_for(pw_kernel *pk, const row_view *v) {
  kir_var *s = kir_for(pk->k, KIR_LOOP_SERIAL, "s", pw_i(pk, v->len));
  kir_expr *off = v->inner == 1
                      ? pw_v(pk, s)
                      : pw_bin(pk, KIR_MUL, pw_v(pk, s), pw_i(pk, v->inner));
  return kir_let(pk->k, "e", pw_bin(pk, KIR_ADD, pw_v(pk, v->base), off));
}

/* Subtract the row's maximum first so no exp overflows (as the
 * reference), then normalise by the sum. */
kiln_status pw_softmax_fwd(lower_ctx *c, const ir_node *n) {
  pw_kernel pk;
  pw_begin(&pk, c, "softmax_fwd", n, n);
  kir_buf *x = pw_in(&pk, "x", lower_node_tensor(c, n->inputs[0]));
  kir_buf *y = pw_out(&pk, "y", lower_node_tensor(c, n));
  row_view v;
  rows_begin(&pk, c, n, &v);
  kir_var *mx = kir_let(pk.k, "mx", kir_load(pk.k, x, pw_v(&pk, v.base)));
  kir_var *e = row_for(&pk, &v);
  kir_assign(
      pk.k, mx,
      pw_bin(&pk, KIR_MAX, pw_v(&pk, mx), kir_load(pk.k, x, pw_v(&pk, e))));
  kir_end(pk.k);
  kir_var *sum = kir_let(pk.k, "sum", pw_f(&pk, 0));
  e = row_for(&pk, &v);
  kir_var *ex =
      kir_let(pk.k, "ex",
              kir_un(pk.k, KIR_EXP,
                     pw_bin(&pk, KIR_SUB, kir_load(pk.k, x, pw_v(&pk, e)),
                            pw_v(&pk, mx))));
  kir_store(pk.k, y, pw_v(&pk, e), pw_v(&pk, ex));
  kir_assign(pk.k, sum, pw_bin(&pk, KIR_ADD, pw_v(&pk, sum), pw_v(&pk, ex)));
  kir_end(pk.k);
  e = row_for(&pk, &v);
  kir_store(
      pk.k, y, pw_v(&pk, e),
      pw_bin(&pk, KIR_DIV, kir_load(pk.k, y, pw_v(&pk, e)), pw_v(&pk, sum)));
  kir_end(pk.k);
  pw_loop_end(&pk);
  return pw_launch(&pk);
}

/* dx = y * (dy - sum(dy * y)) over the row (reads y, as the reference). */
kiln_status pw_softmax_bwd(lower_ctx *c, const ir_node *gn) {
  const ir_node *f = gn->fwd;
  pw_kernel pk;
  pw_begin(&pk, c, "softmax_bwd", f, gn);
  kir_buf *dy = pw_in(&pk, "dy", lower_node_tensor(c, gn->inputs[0]));
  kir_buf *y = pw_in(&pk, "y", lower_node_tensor(c, f));
  kir_buf *dx = pw_out(&pk, "dx", lower_node_tensor(c, gn));
  row_view v;
  rows_begin(&pk, c, f, &v);
  kir_var *dot = kir_let(pk.k, "dot", pw_f(&pk, 0));
  kir_var *e = row_for(&pk, &v);
  kir_assign(pk.k, dot,
             pw_bin(&pk, KIR_ADD, pw_v(&pk, dot),
                    pw_bin(&pk, KIR_MUL, kir_load(pk.k, y, pw_v(&pk, e)),
                           kir_load(pk.k, dy, pw_v(&pk, e)))));
  kir_end(pk.k);
  e = row_for(&pk, &v);
  kir_store(pk.k, dx, pw_v(&pk, e),
            pw_bin(&pk, KIR_MUL, kir_load(pk.k, y, pw_v(&pk, e)),
                   pw_bin(&pk, KIR_SUB, kir_load(pk.k, dy, pw_v(&pk, e)),
                          pw_v(&pk, dot))));
  kir_end(pk.k);
  pw_loop_end(&pk);
  return pw_launch(&pk);
}

/* ---- concat along an axis: input i is [outer, len_i, inner] and fills
 * positions off_i .. off_i + len_i - 1 of the output's axis ---- */

/* One kernel over the output: each element finds its input by its
 * position p along the axis (one if per input, not nested, so any number
 * of inputs fits the builder). */
kiln_status pw_concat_fwd(lower_ctx *c, const ir_node *n) {
  int axis = pw_axis(n, n->shape.rank);
  int64_t outer, total, inner;
  pw_axis_split(c, n, axis, &outer, &total, &inner);
  pw_kernel pk;
  pw_begin(&pk, c, "concat_fwd", n, n);
  kir_buf **xs = ARENA_ARRAY(c->a, kir_buf *, n->n_inputs);
  for (int i = 0; i < n->n_inputs; i++)
    xs[i] = pw_in(&pk, arena_printf(c->a, "x%d", i),
                  lower_node_tensor(c, n->inputs[i]));
  kir_buf *y = pw_out(&pk, "y", lower_node_tensor(c, n));
  kir_var *o = pw_loop(&pk, lower_numel(c, n));
  kir_var *row = kir_let(pk.k, "row", pw_digit(&pk, o, total * inner, 0));
  kir_var *p = kir_let(pk.k, "p", pw_digit(&pk, o, inner, total));
  kir_var *q = kir_let(pk.k, "q", pw_digit(&pk, o, 1, inner));
  int64_t off = 0;
  for (int i = 0; i < n->n_inputs; i++) {
    int64_t o1, len, in1;
    pw_axis_split(c, n->inputs[i], axis, &o1, &len, &in1);
    kir_expr *lo = pw_bin(&pk, KIR_LE, pw_i(&pk, off), pw_v(&pk, p));
    kir_expr *hi = pw_bin(&pk, KIR_LT, pw_v(&pk, p), pw_i(&pk, off + len));
    kir_if(pk.k, pw_bin(&pk, KIR_AND, lo, hi));
    /* x_i[(row * len + p - off) * inner + q] */
    kir_expr *r = pw_bin(&pk, KIR_ADD,
                         pw_bin(&pk, KIR_MUL, pw_v(&pk, row), pw_i(&pk, len)),
                         pw_bin(&pk, KIR_SUB, pw_v(&pk, p), pw_i(&pk, off)));
    kir_expr *at = pw_bin(
        &pk, KIR_ADD, pw_bin(&pk, KIR_MUL, r, pw_i(&pk, inner)), pw_v(&pk, q));
    kir_store(pk.k, y, pw_v(&pk, o), kir_load(pk.k, xs[i], at));
    kir_end(pk.k);
    off += len;
  }
  KILN_ASSERT(off == total);
  pw_loop_end(&pk);
  return pw_launch(&pk);
}

/* d(input w) is its slice of dy: element e = (row, rest) of x_w reads
 * dy[row * total * inner + off_w * inner + rest]. */
kiln_status pw_concat_bwd(lower_ctx *c, const ir_node *gn) {
  const ir_node *f = gn->fwd;
  int axis = pw_axis(f, f->shape.rank), w = gn->wrt;
  KILN_ASSERT(w >= 0 && w < f->n_inputs);
  int64_t outer, total, inner, off = 0, len = 0;
  pw_axis_split(c, f, axis, &outer, &total, &inner);
  for (int i = 0; i <= w; i++) {
    int64_t o1, in1;
    off += len;
    pw_axis_split(c, f->inputs[i], axis, &o1, &len, &in1);
  }
  pw_kernel pk;
  pw_begin(&pk, c, arena_printf(c->a, "concat_bwd%d", w), f, gn);
  kir_buf *dy = pw_in(&pk, "dy", lower_node_tensor(c, gn->inputs[0]));
  kir_buf *dx = pw_out(&pk, "dx", lower_node_tensor(c, gn));
  kir_var *e = pw_loop(&pk, lower_numel(c, gn));
  kir_expr *row = pw_digit(&pk, e, len * inner, 0);
  kir_expr *at =
      pw_bin(&pk, KIR_ADD, pw_bin(&pk, KIR_MUL, row, pw_i(&pk, total * inner)),
             pw_i(&pk, off * inner));
  at = pw_bin(&pk, KIR_ADD, at, pw_digit(&pk, e, 1, len * inner));
  kir_store(pk.k, dx, pw_v(&pk, e), kir_load(pk.k, dy, at));
  pw_loop_end(&pk);
  return pw_launch(&pk);
}
