/* lower_gemm_build.c — the tiled GEMM kernel builder of lower_gemm.h
 * (tiles, views, packing, the multiply, split-K, the 2-D column layout of
 * convolutions) and the two small kernels products need beside it: a
 * transpose and the bias gradients' sums. The rules using it are in
 * lower_gemm.c (linear, matmul) and lower_conv.c.
 *
 * Needs: operands bound to plan tensors (gemm_bind) and views that stay
 * in bounds wherever they say an element exists. Guarantees: every output
 * element written once per launch (partials included), sums in a fixed
 * order, every kernel verified through lower_launch. */
#include "passes/lower_gemm.h"

/* ---- the builder ---- */

/* Equal parts of at most `cap`: the fewest tiles, with the least
 * padding among them. */
static int64_t part(int64_t v, int64_t cap) {
  int64_t parts = (v + cap - 1) / cap;
  return (v + parts - 1) / parts;
}

void gemm_tiles(int64_t m, int64_t n, int64_t k, int *tm, int *tn, int *tk) {
  *tm = (int)part(m, 32);
  *tn = (int)((part(n, 64) + 7) / 8 * 8); /* whole 8-wide vectors */
  *tk = k >= 32 ? 32 : (int)((k + 3) / 4 * 4);
}

void gemm_init(gemm *g, lower_ctx *c, const char *prefix, const ir_node *n,
               int64_t e, int64_t f, int64_t m, int64_t nn, int64_t k) {
  KILN_ASSERT(e >= 1 && f >= 1 && m >= 1 && nn >= 1 && k >= 1);
  *g = (gemm){.c = c, .node = n, .E = e, .F = f, .M = m, .N = nn, .K = k};
  gemm_tiles(m, nn, k, &g->tm, &g->tn, &g->tk);
  g->k = kir_kernel_new(c->a, lower_kernel_name(c, prefix, n), g->tm);
}

void gemm_columns_2d(gemm *g, int64_t nx) {
  KILN_ASSERT(nx >= 1 && g->N % nx == 0);
  g->nx = nx;
  g->ny = g->N / nx;
  /* Whole image rows up to 64 columns a tile, wider rows cut in equal
   * parts: no power of two, because rows of 10 or 14 pixels would waste
   * a third of a power-of-two tile (the vector loops take the tail). */
  int64_t parts = (nx + 63) / 64;
  g->tnx = (int)((nx + parts - 1) / parts);
  int64_t rows = 64 / g->tnx;
  g->tny = (int)(rows < g->ny ? rows : g->ny);
  /* The tile's row stride in the shared B tile and the accumulators,
   * and the multiply's vector loop: whole 8-wide vectors (60 or 49
   * columns would leave a scalar remainder loop as slow as the vector
   * part); pack and store skip the padding (see gemm_emit). */
  g->tn = (g->tnx * g->tny + 7) / 8 * 8;
}

gemm_view *gemm_bind(gemm *g, gemm_which w, const char *name, int t) {
  KILN_ASSERT(g->n_args < 4 && (w == GEMM_OUT) == (g->n_args == 0));
  const kir_tensor *tt = &g->c->plan->tensors[t];
  gemm_view *v = &g->v[w];
  v->buf = kir_global(g->k, name, tt->type, tt->count, w != GEMM_OUT);
  g->args[g->n_args++] = t;
  return v;
}

kir_expr *gemm_i(gemm *g, int64_t v) {
  return kir_i64(g->k, v);
}

kir_expr *gemm_v(gemm *g, kir_var *v) {
  return v ? kir_ref(g->k, v) : kir_i64(g->k, 0);
}

kir_expr *gemm_op(gemm *g, kir_op op, kir_expr *a, kir_expr *b) {
  return kir_bin(g->k, op, a, b);
}

static kir_expr *and_(gemm *g, kir_expr *a, kir_expr *b) {
  return a ? (b ? gemm_op(g, KIR_AND, a, b) : a) : b;
}

/* The index of element (row, col) of view w, and its validity. */
static kir_expr *view_at(gemm *g, gemm_which w, kir_var *row, kir_var *col,
                         kir_expr **valid) {
  gemm_view *v = &g->v[w];
  *valid = NULL;
  if (v->at)
    return v->at(g, w, row, col, valid);
  kir_expr *i = v->base ? v->base(g, w) : gemm_i(g, 0);
  if (v->rs)
    i = gemm_op(g, KIR_ADD, i,
                gemm_op(g, KIR_MUL, gemm_v(g, row), gemm_i(g, v->rs)));
  if (v->cs)
    i = gemm_op(g, KIR_ADD, i,
                gemm_op(g, KIR_MUL, gemm_v(g, col), gemm_i(g, v->cs)));
  return i;
}

/* dst[at] = operand w at (row, col), or 0 outside [0, rows) x [0, cols)
 * or where the view says so. The load sits under an if (never out of
 * bounds); LLVM if-converts it into a masked load or gather, which
 * measured faster than a select over a clamped index. */
static void pack_one(gemm *g, gemm_which w, kir_buf *dst, kir_expr *at,
                     kir_var *row, kir_var *col, kir_expr *in_bounds) {
  kir_kernel *k = g->k;
  kir_expr *uv;
  kir_expr *idx = view_at(g, w, row, col, &uv);
  kir_var *okv = kir_let(k, "ok", and_(g, in_bounds, uv));
  kir_var *dv = kir_let(k, "dst", at);
  kir_if(k, kir_ref(k, okv));
  kir_store(k, dst, kir_ref(k, dv), kir_load(k, g->v[w].buf, idx));
  kir_else(k);
  kir_store(k, dst, kir_ref(k, dv), kir_f32(k, 0.0f));
  kir_end(k);
}

/* t*stride + i */
static kir_expr *tile_at(gemm *g, kir_var *t, int64_t stride, kir_var *i) {
  return gemm_op(g, KIR_ADD,
                 gemm_op(g, KIR_MUL, gemm_v(g, t), gemm_i(g, stride)),
                 gemm_v(g, i));
}

/* Whether the A tile is stored k-major (as[k*TM + m]): when A is read
 * down its columns (a transposed operand, rs == 1), so that both the
 * reads and the shared stores of the packing loop are contiguous. */
static bool a_by_col(const gemm *g) {
  const gemm_view *v = &g->v[GEMM_A];
  return v->by_col || (!v->at && v->rs == 1 && v->cs != 1);
}

/* Packs the rt x ct tile (rt0, ct0) of operand w (element (i, j) is
 * (rt0*rt + i, ct0*ct + j)) into dst, row-major (i*ct + j) or, by_col,
 * column-major (j*rt + i). The tile is cut into lines, rows or columns,
 * dealt to the threads round robin; the vector loop runs along a line. */
static void pack(gemm *g, gemm_which w, bool by_col, kir_buf *dst, kir_var *t,
                 kir_var *rt0, int rt, int64_t rows, kir_var *ct0, int ct,
                 int64_t cols) {
  kir_kernel *k = g->k;
  int lines = by_col ? ct : rt, along = by_col ? rt : ct, tm = g->tm;
  kir_var *li =
      kir_for(k, KIR_LOOP_SERIAL, "li", gemm_i(g, (lines + tm - 1) / tm));
  kir_var *line = kir_let(k, "line", tile_at(g, li, tm, t));
  if (lines % tm)
    kir_if(k, gemm_op(g, KIR_LT, gemm_v(g, line), gemm_i(g, lines)));
  kir_var *e = kir_for(k, KIR_LOOP_VECTOR, "e", gemm_i(g, along));
  kir_var *i = by_col ? e : line, *j = by_col ? line : e;
  kir_var *row = kir_let(k, "row", tile_at(g, rt0, rt, i));
  kir_var *col = kir_let(k, "col", tile_at(g, ct0, ct, j));
  kir_expr *at = by_col ? tile_at(g, j, rt, i) : tile_at(g, i, ct, j);
  pack_one(g, w, dst, at, row, col,
           and_(g, gemm_op(g, KIR_LT, gemm_v(g, row), gemm_i(g, rows)),
                gemm_op(g, KIR_LT, gemm_v(g, col), gemm_i(g, cols))));
  kir_end(k); /* e */
  if (lines % tm)
    kir_end(k);
  kir_end(k); /* li */
}

/* The B tile is always k-major (bs[k*TN + n]), what the multiply's vector
 * loop reads; a B read along k is gathered. */
/* The B tile of a 2-D column space (see gemm_columns_2d): row `line` of
 * the tile holds tny rows of tnx columns, the vector loop along x, so
 * that views affine in x (a convolution's input row) load contiguously. */
static void pack_b_2d(gemm *g, kir_buf *bs, kir_var *t, kir_var *kc) {
  kir_kernel *k = g->k;
  int tm = g->tm, tk = g->tk;
  kir_var *li =
      kir_for(k, KIR_LOOP_SERIAL, "li", gemm_i(g, (tk + tm - 1) / tm));
  kir_var *line = kir_let(k, "line", tile_at(g, li, tm, t));
  if (tk % tm)
    kir_if(k, gemm_op(g, KIR_LT, gemm_v(g, line), gemm_i(g, tk)));
  kir_var *row = kir_let(k, "row", tile_at(g, kc, tk, line));
  kir_var *ty = kir_for(k, KIR_LOOP_SERIAL, "ty", gemm_i(g, g->tny));
  g->cy = kir_let(k, "y", tile_at(g, g->by, g->tny, ty));
  kir_var *tx = kir_for(k, KIR_LOOP_VECTOR, "tx", gemm_i(g, g->tnx));
  g->cx = kir_let(k, "x", tile_at(g, g->bx, g->tnx, tx));
  kir_var *col = kir_let(k, "col", tile_at(g, g->cy, g->nx, g->cx));
  kir_expr *in = and_(g, gemm_op(g, KIR_LT, gemm_v(g, row), gemm_i(g, g->K)),
                      gemm_op(g, KIR_LT, gemm_v(g, g->cy), gemm_i(g, g->ny)));
  in = and_(g, in, gemm_op(g, KIR_LT, gemm_v(g, g->cx), gemm_i(g, g->nx)));
  kir_expr *at = gemm_op(g, KIR_ADD,
                         gemm_op(g, KIR_MUL, gemm_v(g, line), gemm_i(g, g->tn)),
                         tile_at(g, ty, g->tnx, tx));
  pack_one(g, GEMM_B, bs, at, row, col, in);
  kir_end(k); /* tx */
  kir_end(k); /* ty */
  if (tk % tm)
    kir_end(k);
  kir_end(k); /* li */
  g->cy = g->cx = NULL;
}

static void pack_tiles(gemm *g, kir_var *bm, kir_var *bn, kir_var *kc,
                       kir_buf *as, kir_buf *bs) {
  kir_kernel *k = g->k;
  kir_var *t = kir_for(k, KIR_LOOP_THREAD, "t", gemm_i(g, g->tm));
  pack(g, GEMM_A, a_by_col(g), as, t, bm, g->tm, g->M, kc, g->tk, g->K);
  if (g->nx)
    pack_b_2d(g, bs, t, kc);
  else
    pack(g, GEMM_B, false, bs, t, kc, g->tk, g->K, bn, g->tn, g->N);
  kir_end(k); /* t */
}

/* acc[t][n] += sum over the tile's k of as[t][k] * bs[k][n], four k at a
 * time (the accumulator row is loaded and stored once per four). */
static void multiply(gemm *g, kir_buf *as, kir_buf *bs, kir_buf *acc) {
  kir_kernel *k = g->k;
  int tn = g->tn, tk = g->tk;
  kir_var *t = kir_for(k, KIR_LOOP_THREAD, "t", gemm_i(g, g->tm));
  kir_var *q = kir_for(k, KIR_LOOP_SERIAL, "q", gemm_i(g, tk / 4));
  kir_var *av[4];
  for (int u = 0; u < 4; u++) {
    /* element (t, 4q + u) of the A tile */
    kir_expr *kq =
        gemm_op(g, KIR_ADD, gemm_op(g, KIR_MUL, gemm_v(g, q), gemm_i(g, 4)),
                gemm_i(g, u));
    kir_expr *i =
        a_by_col(g)
            ? gemm_op(g, KIR_ADD, gemm_op(g, KIR_MUL, kq, gemm_i(g, g->tm)),
                      gemm_v(g, t))
            : gemm_op(g, KIR_ADD,
                      gemm_op(g, KIR_MUL, gemm_v(g, t), gemm_i(g, tk)), kq);
    av[u] = kir_let(k, "a", kir_load(k, as, i));
  }
  kir_var *n = kir_for(k, KIR_LOOP_VECTOR, "n", gemm_i(g, tn));
  kir_var *ai = kir_let(k, "ai", tile_at(g, t, tn, n));
  kir_expr *s = kir_load(k, acc, kir_ref(k, ai));
  for (int u = 0; u < 4; u++) {
    /* row 4q + u of the B tile */
    kir_expr *row = gemm_op(
        g, KIR_ADD, gemm_op(g, KIR_MUL, gemm_v(g, q), gemm_i(g, 4 * tn)),
        gemm_i(g, (int64_t)u * tn));
    kir_expr *b = kir_load(k, bs, gemm_op(g, KIR_ADD, row, gemm_v(g, n)));
    s = kir_bin(k, KIR_ADD, s, kir_bin(k, KIR_MUL, kir_ref(k, av[u]), b));
  }
  kir_store(k, acc, kir_ref(k, ai), s);
  kir_end(k); /* n */
  kir_end(k); /* q */
  kir_end(k); /* t */
}

static void store_tile(gemm *g, kir_var *bm, kir_var *bn, kir_buf *acc) {
  kir_kernel *k = g->k;
  int tm = g->tm, tn = g->tn;
  kir_var *t = kir_for(k, KIR_LOOP_THREAD, "t", gemm_i(g, tm));
  kir_var *sm = kir_let(k, "sm", tile_at(g, bm, tm, t));
  kir_if(k, gemm_op(g, KIR_LT, gemm_v(g, sm), gemm_i(g, g->M)));
  kir_var *sn, *ty = NULL;
  kir_expr *ai;
  if (g->nx) { /* rows y of the tile inside the image, x up to its edge */
    ty = kir_for(k, KIR_LOOP_SERIAL, "ty", gemm_i(g, g->tny));
    g->cy = kir_let(k, "y", tile_at(g, g->by, g->tny, ty));
    kir_if(k, gemm_op(g, KIR_LT, gemm_v(g, g->cy), gemm_i(g, g->ny)));
    kir_expr *left =
        gemm_op(g, KIR_SUB, gemm_i(g, g->nx),
                gemm_op(g, KIR_MUL, gemm_v(g, g->bx), gemm_i(g, g->tnx)));
    kir_var *tx = kir_for(k, KIR_LOOP_VECTOR, "tx",
                          gemm_op(g, KIR_MIN, gemm_i(g, g->tnx), left));
    g->cx = kir_let(k, "x", tile_at(g, g->bx, g->tnx, tx));
    sn = kir_let(k, "sn", tile_at(g, g->cy, g->nx, g->cx));
    ai = gemm_op(g, KIR_ADD, gemm_op(g, KIR_MUL, gemm_v(g, t), gemm_i(g, tn)),
                 tile_at(g, ty, g->tnx, tx));
  } else {
    kir_expr *left = gemm_op(g, KIR_SUB, gemm_i(g, g->N),
                             gemm_op(g, KIR_MUL, gemm_v(g, bn), gemm_i(g, tn)));
    kir_var *n = kir_for(k, KIR_LOOP_VECTOR, "n",
                         gemm_op(g, KIR_MIN, gemm_i(g, tn), left));
    sn = kir_let(k, "sn", tile_at(g, bn, tn, n));
    ai = tile_at(g, t, tn, n);
  }
  kir_expr *v = kir_load(k, acc, ai), *valid;
  if (g->v[GEMM_BIAS].buf) {
    kir_expr *bi = view_at(g, GEMM_BIAS, sm, sn, &valid);
    KILN_ASSERT(!valid && "bias views are always in bounds");
    v = kir_bin(k, KIR_ADD, v, kir_load(k, g->v[GEMM_BIAS].buf, bi));
  }
  kir_expr *oi;
  if (g->split) { /* partial sums: [split][j][m][n] */
    kir_expr *e = gemm_op(
        g, KIR_ADD, gemm_op(g, KIR_MUL, gemm_v(g, g->split), gemm_i(g, g->E)),
        gemm_v(g, g->j));
    e = gemm_op(g, KIR_ADD, gemm_op(g, KIR_MUL, e, gemm_i(g, g->M)),
                gemm_v(g, sm));
    oi = gemm_op(g, KIR_ADD, gemm_op(g, KIR_MUL, e, gemm_i(g, g->N)),
                 gemm_v(g, sn));
  } else {
    oi = view_at(g, GEMM_OUT, sm, sn, &valid);
    KILN_ASSERT(!valid && "output views are always in bounds");
  }
  kir_store(k, g->v[GEMM_OUT].buf, oi, v);
  kir_end(k); /* n or tx */
  if (ty) {
    kir_end(k); /* if y */
    kir_end(k); /* ty */
    g->cy = g->cx = NULL;
  }
  kir_end(k); /* if */
  kir_end(k); /* t */
}

/* Split-K: a product with too few tiles to keep the CPU threads (or the
 * GPU) busy but a long K runs as S products over K ranges into partial
 * sums, which a second kernel adds up in a fixed order. Without a bias
 * only (it must be added once), and only for outputs stored densely,
 * out[(j*M + m)*N + n], which every rule's output is. */
enum { GEMM_MIN_BLOCKS = 32, GEMM_MIN_CHUNKS = 4 };

static int64_t split_count(const gemm *g, int64_t chunks) {
  int64_t col_tiles =
      g->nx ? ((g->ny + g->tny - 1) / g->tny) * ((g->nx + g->tnx - 1) / g->tnx)
            : (g->N + g->tn - 1) / g->tn;
  int64_t blocks = g->E * ((g->M + g->tm - 1) / g->tm) * col_tiles;
  if (g->v[GEMM_BIAS].buf || blocks >= GEMM_MIN_BLOCKS ||
      chunks < 2 * GEMM_MIN_CHUNKS)
    return 1;
  int64_t s = (GEMM_MIN_BLOCKS + blocks - 1) / blocks;
  if (s > chunks / GEMM_MIN_CHUNKS)
    s = chunks / GEMM_MIN_CHUNKS;
  int64_t per = (chunks + s - 1) / s;
  return (chunks + per - 1) / per; /* no empty split */
}

kiln_status gemm_emit(gemm *g) {
  kir_kernel *k = g->k;
  int tm = g->tm, tn = g->tn, tk = g->tk;
  KILN_ASSERT(g->v[GEMM_OUT].buf && g->v[GEMM_A].buf && g->v[GEMM_B].buf);
  int64_t chunks = (g->K + tk - 1) / tk, splits = split_count(g, chunks);
  int64_t per = (chunks + splits - 1) / splits, dense = g->E * g->M * g->N;
  int out = g->args[0];
  if (splits > 1) {
    KILN_ASSERT(g->c->plan->tensors[out].count == dense);
    g->args[0] =
        lower_scratch(g->c, arena_printf(g->c->a, "%s.partial", k->name),
                      KIR_F32, splits * dense);
    g->v[GEMM_OUT].buf->count = splits * dense;
    g->split = kir_for(k, KIR_LOOP_GRID, "split", gemm_i(g, splits));
  }
  kir_buf *as = kir_shared(k, "as", KIR_F32, (int64_t)tm * tk);
  kir_buf *bs = kir_shared(k, "bs", KIR_F32, (int64_t)tk * tn);
  kir_buf *acc = kir_shared(k, "acc", KIR_F32, (int64_t)tm * tn);
  if (g->E > 1)
    g->j = kir_for(k, KIR_LOOP_GRID, "j", gemm_i(g, g->E));
  kir_var *bm =
      kir_for(k, KIR_LOOP_GRID, "bm", gemm_i(g, (g->M + tm - 1) / tm));
  kir_var *bn = NULL;
  if (g->nx) {
    g->by = kir_for(k, KIR_LOOP_GRID, "by",
                    gemm_i(g, (g->ny + g->tny - 1) / g->tny));
    g->bx = kir_for(k, KIR_LOOP_GRID, "bx",
                    gemm_i(g, (g->nx + g->tnx - 1) / g->tnx));
  } else {
    bn = kir_for(k, KIR_LOOP_GRID, "bn", gemm_i(g, (g->N + tn - 1) / tn));
  }
  kir_var *t = kir_for(k, KIR_LOOP_THREAD, "t", gemm_i(g, tm));
  kir_var *n = kir_for(k, KIR_LOOP_VECTOR, "n", gemm_i(g, tn));
  kir_store(k, acc, tile_at(g, t, tn, n), kir_f32(k, 0.0f));
  kir_end(k);
  if (g->nx && tn > g->tnx * g->tny) {
    /* the padding columns of the B tile, which packing never writes,
     * hold zeros (multiplied into accumulators that are never stored) */
    kir_var *r = kir_for(k, KIR_LOOP_SERIAL, "r", gemm_i(g, tk));
    kir_if(k,
           gemm_op(g, KIR_EQ, gemm_op(g, KIR_MOD, gemm_v(g, r), gemm_i(g, tm)),
                   gemm_v(g, t)));
    kir_var *p =
        kir_for(k, KIR_LOOP_VECTOR, "p", gemm_i(g, tn - g->tnx * g->tny));
    kir_store(
        k, bs,
        gemm_op(g, KIR_ADD, tile_at(g, r, tn, p), gemm_i(g, g->tnx * g->tny)),
        kir_f32(k, 0.0f));
    kir_end(k); /* p */
    kir_end(k); /* if */
    kir_end(k); /* r */
  }
  kir_end(k);
  if (g->nx && tn > g->tnx * g->tny)
    kir_barrier(k);
  if (g->F > 1)
    g->f = kir_for(k, KIR_LOOP_SERIAL, "f", gemm_i(g, g->F));
  kir_var *kc = kir_for(k, KIR_LOOP_SERIAL, "kc", gemm_i(g, per));
  if (g->split) /* the last split's chunks past K pack zeros */
    kc = kir_let(
        k, "kk0",
        gemm_op(g, KIR_ADD,
                gemm_op(g, KIR_MUL, gemm_v(g, g->split), gemm_i(g, per)),
                gemm_v(g, kc)));
  pack_tiles(g, bm, bn, kc, as, bs);
  kir_barrier(k);
  multiply(g, as, bs, acc);
  kir_barrier(k);
  kir_end(k); /* kc */
  if (g->F > 1)
    kir_end(k);
  g->f = NULL; /* the store runs outside the f loop */
  store_tile(g, bm, bn, acc);
  kir_end(k); /* bn or bx */
  if (g->nx)
    kir_end(k); /* by */
  kir_end(k);   /* bm */
  if (g->E > 1)
    kir_end(k);
  if (g->split)
    kir_end(k);
  KILN_ASSERT(k->depth == 0);
  kiln_status st = lower_launch(g->c, k, g->args, g->node);
  if (st || splits == 1)
    return st;
  return gemm_sum_rows(g->c, arena_printf(g->c->a, "splitk_sum_%s", k->name),
                       g->node, g->args[0], out, splits, dense, 1);
}

/* ---- bias gradients ---- */

kiln_status gemm_sum_rows(lower_ctx *c, const char *prefix, const ir_node *n,
                          int in, int out, int64_t b, int64_t o, int64_t p) {
  enum { TS = 64 };
  kir_kernel *k = kir_kernel_new(c->a, lower_kernel_name(c, prefix, n), 1);
  const kir_tensor *ti = &c->plan->tensors[in], *to = &c->plan->tensors[out];
  KILN_ASSERT(ti->count == b * o * p && to->count == o);
  kir_buf *y = kir_global(k, "out", to->type, to->count, false);
  kir_buf *x = kir_global(k, "in", ti->type, ti->count, true);
  kir_buf *acc = kir_shared(k, "acc", KIR_F32, TS);
  gemm g = {.k = k}; /* for the expression shorthands */
  /* P == 1: a tile of TS outputs, summed down the rows, vectorised over
   * the outputs. P > 1: one output, TS running partial sums over the
   * contiguous plane, added up in order at the end. */
  bool across = p == 1;
  kir_var *bo = kir_for(k, KIR_LOOP_GRID, "bo",
                        gemm_i(&g, across ? (o + TS - 1) / TS : o));
  kir_for(k, KIR_LOOP_THREAD, "t", gemm_i(&g, 1)); /* one thread per block */
  kir_var *i = kir_for(k, KIR_LOOP_VECTOR, "i", gemm_i(&g, TS));
  kir_store(k, acc, gemm_v(&g, i), kir_f32(k, 0.0f));
  kir_end(k);
  kir_var *r = kir_for(k, KIR_LOOP_SERIAL, "r", gemm_i(&g, b));
  kir_expr *row0; /* index of (r, first output of the tile, p = 0) */
  kir_expr *left;
  kir_var *pc = NULL;
  if (across) {
    row0 =
        gemm_op(&g, KIR_ADD, gemm_op(&g, KIR_MUL, gemm_v(&g, r), gemm_i(&g, o)),
                gemm_op(&g, KIR_MUL, gemm_v(&g, bo), gemm_i(&g, TS)));
    left = gemm_op(&g, KIR_SUB, gemm_i(&g, o),
                   gemm_op(&g, KIR_MUL, gemm_v(&g, bo), gemm_i(&g, TS)));
  } else {
    pc = kir_for(k, KIR_LOOP_SERIAL, "pc", gemm_i(&g, (p + TS - 1) / TS));
    kir_expr *plane = gemm_op(
        &g, KIR_MUL,
        gemm_op(&g, KIR_ADD, gemm_op(&g, KIR_MUL, gemm_v(&g, r), gemm_i(&g, o)),
                gemm_v(&g, bo)),
        gemm_i(&g, p));
    row0 = gemm_op(&g, KIR_ADD, plane,
                   gemm_op(&g, KIR_MUL, gemm_v(&g, pc), gemm_i(&g, TS)));
    left = gemm_op(&g, KIR_SUB, gemm_i(&g, p),
                   gemm_op(&g, KIR_MUL, gemm_v(&g, pc), gemm_i(&g, TS)));
  }
  kir_var *base = kir_let(k, "base", row0);
  i = kir_for(k, KIR_LOOP_VECTOR, "i",
              gemm_op(&g, KIR_MIN, gemm_i(&g, TS), left));
  kir_store(
      k, acc, gemm_v(&g, i),
      kir_bin(k, KIR_ADD, kir_load(k, acc, gemm_v(&g, i)),
              kir_load(k, x,
                       gemm_op(&g, KIR_ADD, gemm_v(&g, base), gemm_v(&g, i)))));
  kir_end(k); /* i */
  if (pc)
    kir_end(k);
  kir_end(k); /* r */
  if (across) {
    kir_expr *left2 =
        gemm_op(&g, KIR_SUB, gemm_i(&g, o),
                gemm_op(&g, KIR_MUL, gemm_v(&g, bo), gemm_i(&g, TS)));
    i = kir_for(k, KIR_LOOP_VECTOR, "i",
                gemm_op(&g, KIR_MIN, gemm_i(&g, TS), left2));
    kir_store(k, y,
              gemm_op(&g, KIR_ADD,
                      gemm_op(&g, KIR_MUL, gemm_v(&g, bo), gemm_i(&g, TS)),
                      gemm_v(&g, i)),
              kir_load(k, acc, gemm_v(&g, i)));
    kir_end(k);
  } else {
    kir_var *s = kir_let(k, "s", kir_f32(k, 0.0f));
    i = kir_for(k, KIR_LOOP_SERIAL, "i", gemm_i(&g, TS));
    kir_assign(
        k, s,
        kir_bin(k, KIR_ADD, kir_ref(k, s), kir_load(k, acc, gemm_v(&g, i))));
    kir_end(k);
    kir_store(k, y, gemm_v(&g, bo), kir_ref(k, s));
  }
  kir_end(k); /* t */
  kir_end(k); /* bo */
  int args[2] = {out, in};
  return lower_launch(c, k, args, n);
}

kiln_status gemm_transpose(lower_ctx *c, const char *prefix, const ir_node *n,
                           int in, int out, int64_t rows, int64_t cols) {
  enum { T = 32 };
  kir_kernel *k = kir_kernel_new(c->a, lower_kernel_name(c, prefix, n), T);
  const kir_tensor *ti = &c->plan->tensors[in], *to = &c->plan->tensors[out];
  KILN_ASSERT(ti->count == rows * cols && to->count == rows * cols);
  kir_buf *y = kir_global(k, "out", to->type, to->count, false);
  kir_buf *x = kir_global(k, "in", ti->type, ti->count, true);
  kir_buf *tile = kir_shared(k, "tile", ti->type, T * (T + 1));
  gemm g = {.k = k};
  kir_var *bi = kir_for(k, KIR_LOOP_GRID, "bi", gemm_i(&g, (rows + T - 1) / T));
  kir_var *bj = kir_for(k, KIR_LOOP_GRID, "bj", gemm_i(&g, (cols + T - 1) / T));
  /* thread t reads row t of the tile, then writes column t of it as row t
   * of the transposed tile (both global accesses contiguous) */
  for (int phase = 0; phase < 2; phase++) {
    kir_var *t = kir_for(k, KIR_LOOP_THREAD, "t", gemm_i(&g, T));
    kir_var *r = kir_let(k, "r", tile_at(&g, phase ? bj : bi, T, t));
    kir_if(k,
           gemm_op(&g, KIR_LT, gemm_v(&g, r), gemm_i(&g, phase ? cols : rows)));
    kir_expr *left = gemm_op(
        &g, KIR_SUB, gemm_i(&g, phase ? rows : cols),
        gemm_op(&g, KIR_MUL, gemm_v(&g, phase ? bi : bj), gemm_i(&g, T)));
    kir_var *e = kir_for(k, KIR_LOOP_VECTOR, "e",
                         gemm_op(&g, KIR_MIN, gemm_i(&g, T), left));
    kir_expr *gi = gemm_op(
        &g, KIR_ADD,
        gemm_op(&g, KIR_MUL, gemm_v(&g, r), gemm_i(&g, phase ? rows : cols)),
        tile_at(&g, phase ? bi : bj, T, e));
    if (!phase)
      kir_store(k, tile, tile_at(&g, t, T + 1, e), kir_load(k, x, gi));
    else
      kir_store(k, y, gi, kir_load(k, tile, tile_at(&g, e, T + 1, t)));
    kir_end(k); /* e */
    kir_end(k); /* if */
    kir_end(k); /* t */
    if (!phase)
      kir_barrier(k);
  }
  kir_end(k); /* bj */
  kir_end(k); /* bi */
  int args[2] = {out, in};
  return lower_launch(c, k, args, n);
}
