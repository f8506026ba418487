/* lower_conv.c — conv2d forward and backward (data, filter, bias) as
 * implicit GEMMs on the builder of lower_gemm.h: no im2col buffer, the
 * convolution windows are gathered straight into the builder's shared
 * tiles, with padding, stride, dilation and groups in the gather's index
 * arithmetic (zero where a tap lands in the padding).
 *
 * Semantics are the reference's (runtime/reference/ref_conv.c): x [N, C,
 * H, W], weight [K, C/groups, kh, kw], y [N, K, OH, OW], output (b, o, oy,
 * ox) reads input (b, g*C/groups + ci, oy*sh - ph + ky*dh, ox*sw - pw +
 * kx*dw) through weight (o, ci, ky, kx), g = o / (K/groups). Per group:
 *
 *   forward   y[b,g](o, p)   = sum over (ci,ky,kx) of w(o, ci..) x-window
 *             M = K/groups, N = OH*OW, K = C/groups*kh*kw, j = (b, g)
 *   data      dx[b,g](c, q)  = sum over (o,ky,kx) of w(o, c, ky, kx) *
 *             dy(o, oy, ox) where q = (iy, ix) and oy*sh = iy + ph - ky*dh
 *             (taps whose stride does not divide read 0)
 *             M = C/groups, N = H*W, K = K/groups*kh*kw, j = (b, g)
 *   filter    dw[g](o, (ci,ky,kx)) = sum over (b, p) of dy(b, o, p) *
 *             x-window(b, ci, ky, kx, p)
 *             M = K/groups, N = C/groups*kh*kw, K = N*OH*OW, j = g
 *   bias      db[o] = sum over b, p of dy(b, o, p)   (gemm_sum_rows)
 *
 * The forward and the data gradient tile their pixel columns as image
 * rows (gemm_columns_2d), so the views take (oy, ox) or (iy, ix) from the
 * builder without a division and a stride-1 window row is read as one
 * contiguous (masked) load.
 *
 * Needs: tensors for the node, its input and parameters (lower.c).
 * Guarantees: outputs written in full, sums in a fixed order. */
#include "passes/lower_gemm.h"

#include <string.h>

typedef struct conv_dims {
  int64_t n, c, h, w, k, kh, kw, sh, sw, ph, pw, dh, dw, groups, oh, ow;
  int64_t cg, kg; /* channels per group: in, out */
  bool i32;       /* every index fits in i32 (see dv) */
} conv_dims;

static const ir_attr *attr(const ir_node *f, const char *name) {
  int i = ir_op_attr_index(f->op, name);
  KILN_ASSERT(i >= 0);
  return &f->attrs[i];
}

static void conv_dims_of(lower_ctx *c, const ir_node *f, conv_dims *d) {
  int64_t x[IR_MAX_DIMS], y[IR_MAX_DIMS];
  lower_dims(c, f->inputs[0], x);
  lower_dims(c, f, y);
  const int64_t *k = attr(f, "kernel")->pair, *s = attr(f, "stride")->pair,
                *p = attr(f, "padding")->pair, *dl = attr(f, "dilation")->pair;
  *d = (conv_dims){.n = x[0],
                   .c = x[1],
                   .h = x[2],
                   .w = x[3],
                   .k = y[1],
                   .kh = k[0],
                   .kw = k[1],
                   .sh = s[0],
                   .sw = s[1],
                   .ph = p[0],
                   .pw = p[1],
                   .dh = dl[0],
                   .dw = dl[1],
                   .groups = attr(f, "groups")->i,
                   .oh = y[2],
                   .ow = y[3]};
  d->cg = d->c / d->groups;
  d->kg = d->k / d->groups;
  int64_t most = d->n * d->c * d->h * d->w;
  if (d->n * d->k * d->oh * d->ow > most)
    most = d->n * d->k * d->oh * d->ow;
  if (d->k * d->cg * d->kh * d->kw > most)
    most = d->k * d->cg * d->kh * d->kw;
  d->i32 = most < ((int64_t)1 << 30);
}

/* Shorthands over the gemm's kernel. */
static kir_expr *I(gemm *g, int64_t v) {
  return gemm_i(g, v);
}
static kir_expr *V(gemm *g, kir_var *v) {
  return gemm_v(g, v);
}
static kir_expr *add(gemm *g, kir_expr *a, kir_expr *b) {
  return gemm_op(g, KIR_ADD, a, b);
}
static kir_expr *mul(gemm *g, kir_expr *a, int64_t b) {
  return b == 1 ? a : gemm_op(g, KIR_MUL, a, I(g, b));
}
/* Division and remainder by a constant, in i32 where every index of the
 * convolution fits: the views divide inside vector loops (a tap into
 * channel and offsets, a pixel into row and column), and a vector of i64
 * divided by a constant is scalarised on x86 (no 64-bit multiply-high),
 * while i32 becomes a few vector multiplies. Same truncation either way. */
static kir_expr *div_mod(gemm *g, kir_op op, kir_expr *a, int64_t b) {
  const conv_dims *d = g->op;
  if (!d->i32)
    return gemm_op(g, op, a, I(g, b));
  kir_kernel *k = g->k;
  kir_expr *r = kir_bin(k, op, kir_cast(k, KIR_I32, a), kir_int(k, KIR_I32, b));
  return kir_cast(k, KIR_I64, r);
}
static kir_expr *dv(gemm *g, kir_expr *a, int64_t b) {
  return b == 1 ? a : div_mod(g, KIR_DIV, a, b);
}
static kir_expr *md(gemm *g, kir_expr *a, int64_t b) {
  return div_mod(g, KIR_MOD, a, b);
}
/* 0 <= a < hi */
static kir_expr *in_range(gemm *g, kir_var *a, int64_t hi) {
  return gemm_op(g, KIR_AND, gemm_op(g, KIR_LE, I(g, 0), V(g, a)),
                 gemm_op(g, KIR_LT, V(g, a), I(g, hi)));
}
static kir_var *let(gemm *g, const char *name, kir_expr *v) {
  return kir_let(g->k, name, v);
}

/* The image and group of entry j (j = b*groups + g). */
static kir_expr *img(gemm *g) {
  const conv_dims *d = g->op;
  return dv(g, V(g, g->j), d->groups);
}
static kir_expr *grp(gemm *g) {
  const conv_dims *d = g->op;
  return d->groups == 1 ? I(g, 0) : md(g, V(g, g->j), d->groups);
}

/* The x element under tap (ci, ky, kx) of output pixel p (oy, ox) of
 * image b, group g; *valid is false in the padding. */
static kir_expr *x_window(gemm *g, kir_expr *b, kir_expr *grp_, kir_var *tap,
                          kir_expr *oy, kir_expr *ox, kir_expr **valid) {
  const conv_dims *d = g->op;
  int64_t khw = d->kh * d->kw;
  kir_var *ci = let(g, "ci", dv(g, V(g, tap), khw));
  kir_var *ky = let(g, "ky", dv(g, md(g, V(g, tap), khw), d->kw));
  kir_var *kx = let(g, "kx", md(g, V(g, tap), d->kw));
  kir_var *iy = let(
      g, "iy",
      add(g, mul(g, oy, d->sh), add(g, I(g, -d->ph), mul(g, V(g, ky), d->dh))));
  kir_var *ix = let(
      g, "ix",
      add(g, mul(g, ox, d->sw), add(g, I(g, -d->pw), mul(g, V(g, kx), d->dw))));
  *valid = gemm_op(g, KIR_AND, in_range(g, iy, d->h), in_range(g, ix, d->w));
  kir_expr *chan =
      add(g, mul(g, b, d->c), add(g, mul(g, grp_, d->cg), V(g, ci)));
  return add(g, mul(g, add(g, mul(g, chan, d->h), V(g, iy)), d->w), V(g, ix));
}

/* ---- forward ---- */

static kir_expr *fwd_at(gemm *g, gemm_which w, kir_var *row, kir_var *col,
                        kir_expr **valid) {
  const conv_dims *d = g->op;
  int64_t kk = d->cg * d->kh * d->kw, plane = d->oh * d->ow;
  switch (w) {
  case GEMM_A: /* weight (g*kg + o, tap) */
    return add(g, mul(g, add(g, mul(g, grp(g), d->kg), V(g, row)), kk),
               V(g, col));
  case GEMM_B: /* x window (tap, p) */
    /* 2-D columns: the pixel's (oy, ox) without a division */
    return x_window(g, img(g), grp(g), row, V(g, g->cy), V(g, g->cx), valid);
  case GEMM_OUT: /* y (b, g*kg + o, p) */
    return add(g,
               mul(g,
                   add(g, mul(g, img(g), d->k),
                       add(g, mul(g, grp(g), d->kg), V(g, row))),
                   plane),
               V(g, col));
  case GEMM_BIAS:
    return add(g, mul(g, grp(g), d->kg), V(g, row));
  }
  return NULL;
}

kiln_status lower_conv2d_fwd(lower_ctx *c, const ir_node *n) {
  conv_dims d;
  conv_dims_of(c, n, &d);
  const ir_param *w = &n->params[0],
                 *b = n->n_params > 1 ? &n->params[1] : NULL;
  KILN_ASSERT(strcmp(w->role, "weight") == 0);
  gemm g;
  gemm_init(&g, c, "conv2d_fwd", n, d.n * d.groups, 1, d.kg, d.oh * d.ow,
            d.cg * d.kh * d.kw);
  gemm_columns_2d(&g, d.ow);
  g.op = &d;
  gemm_bind(&g, GEMM_OUT, "y", lower_node_tensor(c, n))->at = fwd_at;
  gemm_bind(&g, GEMM_A, "weight", lower_param_tensor(c, w))->at = fwd_at;
  gemm_bind(&g, GEMM_B, "x", lower_node_tensor(c, n->inputs[0]))->at = fwd_at;
  if (b)
    gemm_bind(&g, GEMM_BIAS, "bias", lower_param_tensor(c, b))->at = fwd_at;
  return gemm_emit(&g);
}

/* ---- backward data ---- */

static kir_expr *data_at(gemm *g, gemm_which w, kir_var *row, kir_var *col,
                         kir_expr **valid) {
  const conv_dims *d = g->op;
  int64_t khw = d->kh * d->kw;
  switch (w) {
  case GEMM_A: { /* weight (g*kg + o, c, ky, kx) with col = (o, ky, kx) */
    kir_expr *o = add(g, mul(g, grp(g), d->kg), dv(g, V(g, col), khw));
    return add(g, mul(g, add(g, mul(g, o, d->cg), V(g, row)), khw),
               md(g, V(g, col), khw));
  }
  case GEMM_B: { /* dy (b, g*kg + o, oy, ox) with row = (o, ky, kx) and
                    col = (iy, ix) */
    kir_var *o = let(g, "o", dv(g, V(g, row), khw));
    kir_var *ky = let(g, "ky", dv(g, md(g, V(g, row), khw), d->kw));
    kir_var *kx = let(g, "kx", md(g, V(g, row), d->kw));
    /* oy*sh = iy + ph - ky*dh */
    kir_var *ny =
        let(g, "ny",
            add(g, add(g, V(g, g->cy), I(g, d->ph)), mul(g, V(g, ky), -d->dh)));
    kir_var *nx =
        let(g, "nx",
            add(g, add(g, V(g, g->cx), I(g, d->pw)), mul(g, V(g, kx), -d->dw)));
    kir_var *oy = let(g, "oy", dv(g, V(g, ny), d->sh));
    kir_var *ox = let(g, "ox", dv(g, V(g, nx), d->sw));
    kir_expr *ok = gemm_op(g, KIR_AND, in_range(g, ny, d->sh * d->oh),
                           in_range(g, nx, d->sw * d->ow));
    if (d->sh > 1)
      ok = gemm_op(g, KIR_AND, ok,
                   gemm_op(g, KIR_EQ, md(g, V(g, ny), d->sh), I(g, 0)));
    if (d->sw > 1)
      ok = gemm_op(g, KIR_AND, ok,
                   gemm_op(g, KIR_EQ, md(g, V(g, nx), d->sw), I(g, 0)));
    *valid = ok;
    kir_expr *chan =
        add(g, mul(g, img(g), d->k), add(g, mul(g, grp(g), d->kg), V(g, o)));
    return add(g, mul(g, add(g, mul(g, chan, d->oh), V(g, oy)), d->ow),
               V(g, ox));
  }
  case GEMM_OUT: /* dx (b, g*cg + c, q) */
    return add(g,
               mul(g,
                   add(g, mul(g, img(g), d->c),
                       add(g, mul(g, grp(g), d->cg), V(g, row))),
                   d->h * d->w),
               V(g, col));
  default:
    KILN_ASSERT(!"conv backward data has no bias");
    return NULL;
  }
}

/* ---- backward filter ---- */

static kir_expr *filter_at(gemm *g, gemm_which w, kir_var *row, kir_var *col,
                           kir_expr **valid) {
  const conv_dims *d = g->op;
  int64_t plane = d->oh * d->ow, kk = d->cg * d->kh * d->kw;
  kir_expr *gr = d->groups == 1 ? I(g, 0) : V(g, g->j);
  switch (w) {
  case GEMM_A: { /* dy (b, g*kg + o, p) with col = (b, p) */
    kir_expr *chan = add(g, mul(g, dv(g, V(g, col), plane), d->k),
                         add(g, mul(g, gr, d->kg), V(g, row)));
    return add(g, mul(g, chan, plane), md(g, V(g, col), plane));
  }
  case GEMM_B: { /* x window with row = (b, p), col = tap */
    kir_var *b = let(g, "b", dv(g, V(g, row), plane));
    kir_var *p = let(g, "p", md(g, V(g, row), plane));
    return x_window(g, V(g, b), gr, col, dv(g, V(g, p), d->ow),
                    md(g, V(g, p), d->ow), valid);
  }
  case GEMM_OUT: /* dw (g*kg + o, tap) */
    return add(g, mul(g, add(g, mul(g, gr, d->kg), V(g, row)), kk), V(g, col));
  default:
    KILN_ASSERT(!"conv backward filter has no bias");
    return NULL;
  }
}

kiln_status lower_conv2d_bwd(lower_ctx *c, const ir_node *gn) {
  const ir_node *f = gn->fwd;
  conv_dims d;
  conv_dims_of(c, f, &d);
  int dy = lower_node_tensor(c, gn->inputs[0]), dst = lower_node_tensor(c, gn);
  const ir_param *w = &f->params[0];
  gemm g;
  if (gn->wrt == 0) {
    gemm_init(&g, c, "conv2d_bwd_data", gn, d.n * d.groups, 1, d.cg, d.h * d.w,
              d.kg * d.kh * d.kw);
    gemm_columns_2d(&g, d.w);
    g.op = &d;
    gemm_bind(&g, GEMM_OUT, "dx", dst)->at = data_at;
    gemm_bind(&g, GEMM_A, "weight", lower_param_tensor(c, w))->at = data_at;
    gemm_bind(&g, GEMM_B, "dy", dy)->at = data_at;
    return gemm_emit(&g);
  }
  KILN_ASSERT(gn->wrt < 0);
  const char *role = f->params[-1 - gn->wrt].role;
  if (strcmp(role, "bias") == 0)
    return gemm_sum_rows(c, "conv2d_bwd_bias", gn, dy, dst, d.n, d.k,
                         d.oh * d.ow);
  KILN_ASSERT(strcmp(role, "weight") == 0);
  gemm_init(&g, c, "conv2d_bwd_filter", gn, d.groups, 1, d.kg,
            d.cg * d.kh * d.kw, d.n * d.oh * d.ow);
  g.op = &d;
  gemm_bind(&g, GEMM_OUT, "dweight", dst)->at = filter_at;
  gemm_bind(&g, GEMM_A, "dy", dy)->at = filter_at;
  gemm_bind(&g, GEMM_B, "x", lower_node_tensor(c, f->inputs[0]))->at =
      filter_at;
  return gemm_emit(&g);
}
