/* lower_pool.c — maxpool, avgpool and global_avgpool as kernels, forward
 * and backward, with the reference executor's semantics
 * (runtime/reference/ref_pool.c): stride 0 means the kernel size, maxpool
 * pads with -infinity, avgpool counts padding as zeros (every window
 * divides by kh*kw).
 *
 * The window kernels are a GRID over planes x rows around a VECTOR loop
 * over the row (global_avgpool: elementwise over planes or elements), and
 * every output element is computed by one iteration: nothing is
 * accumulated across iterations, so no atomics, and results do not depend
 * on the schedule.
 *
 * The backward is a gather: each input element visits the windows that
 * contain it (at most ceil(kh/sh) x ceil(kw/sw) of them; found by one
 * division when windows do not overlap) and sums their gradient. maxpool saves
 * nothing: for each such window it recomputes the argmax from x exactly as the
 * forward picks its value (first maximum in row-major window order wins; a NaN
 * beats any number but not an earlier NaN) and takes the window's gradient only
 * when the argmax is itself. Overlapping windows cost a recomputation each,
 * which is cheaper than a scatter that would need atomics or a serial pass per
 * plane. */
#include "passes/lower.h"

#include <math.h>

/* Expression shorthands over the kernel `k` in scope. */
#define R(v) kir_ref(k, (v))
#define C64(v) kir_i64(k, (int64_t)(v))
#define F32(v) kir_f32(k, (float)(v))
#define B(op, a, b) kir_bin(k, KIR_##op, (a), (b))

enum { POOL_CHUNK = 1024, POOL_UNROLL_MAX = 8 };

typedef struct pool_dims {
  int64_t planes; /* N * C */
  int64_t h, w, oh, ow;
  int64_t kh, kw, sh, sw, ph, pw;
} pool_dims;

static const ir_attr *pool_attr(const ir_node *n, const char *name) {
  int i = ir_op_attr_index(n->op, name);
  KILN_ASSERT(i >= 0);
  return &n->attrs[i];
}

static void pool_dims_of(lower_ctx *c, const ir_node *f, pool_dims *d) {
  int64_t x[IR_MAX_DIMS], y[IR_MAX_DIMS];
  lower_dims(c, f->inputs[0], x);
  lower_dims(c, f, y);
  const int64_t *kk = pool_attr(f, "kernel")->pair,
                *s = pool_attr(f, "stride")->pair,
                *p = pool_attr(f, "padding")->pair;
  *d = (pool_dims){.planes = x[0] * x[1],
                   .h = x[2],
                   .w = x[3],
                   .oh = y[2],
                   .ow = y[3],
                   .kh = kk[0],
                   .kw = kk[1],
                   .sh = s[0] ? s[0] : kk[0],
                   .sw = s[1] ? s[1] : kk[1],
                   .ph = p[0],
                   .pw = p[1]};
  KILN_ASSERT(d->oh > 0 && d->ow > 0 && d->sh > 0 && d->sw > 0);
}

/* A loop over a window dimension: unrolled when short. */
static kir_var *pool_window_loop(kir_kernel *k, const char *name,
                                 int64_t extent) {
  return kir_for(k,
                 extent <= POOL_UNROLL_MAX ? KIR_LOOP_UNROLL : KIR_LOOP_SERIAL,
                 name, C64(extent));
}

/* Opens "if 0 <= v < n" when the axis is padded; without padding the shape
 * rule keeps every window inside the input and no test is needed. Close
 * with pool_guard_end(k, pad). */
static void pool_guard(kir_kernel *k, kir_var *v, int64_t n, int64_t pad) {
  if (pad > 0)
    kir_if(k, B(AND, B(LE, C64(0), R(v)), B(LT, R(v), C64(n))));
}

static void pool_guard_end(kir_kernel *k, int64_t pad) {
  if (pad > 0)
    kir_end(k);
}

/* The condition under which v (a float) replaces the running maximum
 * `best`: greater, or a NaN over a number (isnan as v != v). */
static kir_expr *pool_beats(kir_kernel *k, kir_var *v, kir_var *best) {
  return B(OR, B(LT, R(best), R(v)),
           B(AND, B(NE, R(v), R(v)), B(EQ, R(best), R(best))));
}

/* grid p < planes: grid r < rows: vector col < cols — returns the three
 * loop variables; close with three kir_end. */
static void pool_grid(kir_kernel *k, int64_t planes, int64_t rows, int64_t cols,
                      kir_var **p, kir_var **r, kir_var **col) {
  *p = kir_for(k, KIR_LOOP_GRID, "p", C64(planes));
  *r = kir_for(k, KIR_LOOP_GRID, "r", C64(rows));
  *col = kir_for(k, KIR_LOOP_VECTOR, "q", C64(cols));
}

/* Input row iy (or column) of window position o, offset kk. */
static kir_var *pool_in_coord(kir_kernel *k, const char *name, kir_var *o,
                              int64_t stride, int64_t pad, kir_var *kk) {
  return kir_let(k, name,
                 B(ADD, B(SUB, B(MUL, R(o), C64(stride)), C64(pad)), R(kk)));
}

static kiln_status pool_fwd_window(lower_ctx *c, const ir_node *n) {
  pool_dims d;
  pool_dims_of(c, n, &d);
  bool max = n->op == IR_OP_MAXPOOL;
  kir_kernel *k = kir_kernel_new(
      c->a, lower_kernel_name(c, max ? "maxpool_fwd" : "avgpool_fwd", n), 0);
  kir_buf *x = kir_global(k, "x", KIR_F32, d.planes * d.h * d.w, true);
  kir_buf *y = kir_global(k, "y", KIR_F32, d.planes * d.oh * d.ow, false);
  kir_var *p, *oy, *ox;
  pool_grid(k, d.planes, d.oh, d.ow, &p, &oy, &ox);
  kir_var *acc = kir_let(k, max ? "best" : "sum", F32(max ? -INFINITY : 0.0));
  kir_var *ky = pool_window_loop(k, "ky", d.kh);
  kir_var *iy = pool_in_coord(k, "iy", oy, d.sh, d.ph, ky);
  pool_guard(k, iy, d.h, d.ph);
  kir_var *kx = pool_window_loop(k, "kx", d.kw);
  kir_var *ix = pool_in_coord(k, "ix", ox, d.sw, d.pw, kx);
  pool_guard(k, ix, d.w, d.pw);
  kir_var *v = kir_let(
      k, "v",
      kir_load(k, x,
               B(ADD, B(MUL, B(ADD, B(MUL, R(p), C64(d.h)), R(iy)), C64(d.w)),
                 R(ix))));
  if (max)
    kir_assign(k, acc, kir_select(k, pool_beats(k, v, acc), R(v), R(acc)));
  else
    kir_assign(k, acc, B(ADD, R(acc), R(v)));
  pool_guard_end(k, d.pw);
  kir_end(k); /* kx */
  pool_guard_end(k, d.ph);
  kir_end(k); /* ky */
  kir_expr *out = max ? R(acc) : B(DIV, R(acc), F32(d.kh * d.kw));
  kir_store(
      k, y,
      B(ADD, B(MUL, B(ADD, B(MUL, R(p), C64(d.oh)), R(oy)), C64(d.ow)), R(ox)),
      out);
  kir_end(k);
  kir_end(k);
  kir_end(k);
  int args[2] = {lower_node_tensor(c, n->inputs[0]), lower_node_tensor(c, n)};
  return lower_launch(c, k, args, n);
}

/* Opens the scopes over the windows (oy or ox) that contain input
 * element i along one axis and returns the window's index; close with
 * pool_window_end. Overlapping windows (stride < kernel): a loop over the
 * window offsets kk, keeping those where t = i + pad - kk is a multiple of
 * the stride (o = t / stride). Otherwise an element lies in at most one
 * window, found by one division, with no loop. */
static kir_var *pool_window_of(kir_kernel *k, const char *axis, kir_var *i,
                               int64_t kernel, int64_t stride, int64_t pad,
                               int64_t outs) {
  bool y = axis[0] == 'y';
  if (stride >= kernel) {
    kir_var *o = kir_let(k, y ? "oy" : "ox",
                         B(DIV, B(ADD, R(i), C64(pad)), C64(stride)));
    kir_expr *off = B(SUB, B(ADD, R(i), C64(pad)), B(MUL, R(o), C64(stride)));
    kir_if(k, B(AND, B(LT, off, C64(kernel)), B(LT, R(o), C64(outs))));
    return o;
  }
  kir_var *kk = pool_window_loop(k, y ? "ky" : "kx", kernel);
  kir_var *t =
      kir_let(k, y ? "ty" : "tx", B(SUB, B(ADD, R(i), C64(pad)), R(kk)));
  kir_expr *ok = B(LE, C64(0), R(t));
  if (stride > 1)
    ok = B(AND, ok, B(EQ, B(MOD, R(t), C64(stride)), C64(0)));
  ok = B(AND, ok, B(LT, B(DIV, R(t), C64(stride)), C64(outs)));
  kir_if(k, ok);
  return kir_let(k, y ? "oy" : "ox", B(DIV, R(t), C64(stride)));
}

static void pool_window_end(kir_kernel *k, int64_t kernel, int64_t stride) {
  kir_end(k); /* if inside */
  if (stride < kernel)
    kir_end(k); /* the offsets' loop */
}

/* Recomputes the argmax (an index into the plane) of window (oy, ox) as
 * the forward chooses its value; -1 only for a window of padding, which
 * the shape rule excludes. */
static kir_var *pool_argmax(kir_kernel *k, const pool_dims *d, kir_buf *x,
                            kir_var *p, kir_var *oy, kir_var *ox) {
  kir_var *bi = kir_let(k, "bi", C64(-1));
  kir_var *bv = kir_let(k, "bv", F32(-INFINITY));
  kir_var *ky = pool_window_loop(k, "wy", d->kh);
  kir_var *iy = pool_in_coord(k, "jy", oy, d->sh, d->ph, ky);
  pool_guard(k, iy, d->h, d->ph);
  kir_var *kx = pool_window_loop(k, "wx", d->kw);
  kir_var *ix = pool_in_coord(k, "jx", ox, d->sw, d->pw, kx);
  pool_guard(k, ix, d->w, d->pw);
  kir_var *at = kir_let(k, "at", B(ADD, B(MUL, R(iy), C64(d->w)), R(ix)));
  kir_var *v = kir_let(
      k, "xv", kir_load(k, x, B(ADD, B(MUL, R(p), C64(d->h * d->w)), R(at))));
  kir_if(k, B(OR, B(LT, R(bi), C64(0)), pool_beats(k, v, bv)));
  kir_assign(k, bi, R(at));
  kir_assign(k, bv, R(v));
  kir_end(k); /* if beats */
  pool_guard_end(k, d->pw);
  kir_end(k); /* kx */
  pool_guard_end(k, d->ph);
  kir_end(k); /* ky */
  return bi;
}

/* maxpool whose windows tile the input exactly (stride = kernel, no
 * padding, no leftover rows or columns: LeNet's 2x2 pools): one pass over
 * the windows, each finding its argmax once and writing its dy there and
 * 0 to the rest of the window, instead of every input element finding
 * its window's argmax again (kernel^2 reads of x per element). */
static bool pool_tiles(const pool_dims *d) {
  return d->sh == d->kh && d->sw == d->kw && d->ph == 0 && d->pw == 0 &&
         d->h == d->oh * d->kh && d->w == d->ow * d->kw;
}

static kiln_status pool_bwd_max_tiled(lower_ctx *c, const ir_node *gn,
                                      const pool_dims *d) {
  const ir_node *f = gn->fwd;
  kir_kernel *k =
      kir_kernel_new(c->a, lower_kernel_name(c, "maxpool_bwd", gn), 0);
  kir_buf *dy = kir_global(k, "dy", KIR_F32, d->planes * d->oh * d->ow, true);
  kir_buf *x = kir_global(k, "x", KIR_F32, d->planes * d->h * d->w, true);
  kir_buf *dx = kir_global(k, "dx", KIR_F32, d->planes * d->h * d->w, false);
  kir_var *p, *oy, *ox;
  pool_grid(k, d->planes, d->oh, d->ow, &p, &oy, &ox);
  kir_var *bi = pool_argmax(k, d, x, p, oy, ox);
  kir_var *g = kir_let(
      k, "g",
      kir_load(k, dy,
               B(ADD,
                 B(MUL, B(ADD, B(MUL, R(p), C64(d->oh)), R(oy)), C64(d->ow)),
                 R(ox))));
  kir_var *wy = pool_window_loop(k, "wy", d->kh);
  kir_var *wx = pool_window_loop(k, "wx", d->kw);
  kir_var *at = kir_let(
      k, "at",
      B(ADD, B(MUL, B(ADD, B(MUL, R(oy), C64(d->kh)), R(wy)), C64(d->w)),
        B(ADD, B(MUL, R(ox), C64(d->kw)), R(wx))));
  kir_store(k, dx, B(ADD, B(MUL, R(p), C64(d->h * d->w)), R(at)),
            kir_select(k, B(EQ, R(bi), R(at)), R(g), F32(0)));
  kir_end(k); /* wx */
  kir_end(k); /* wy */
  kir_end(k);
  kir_end(k);
  kir_end(k);
  int args[3] = {lower_node_tensor(c, gn->inputs[0]),
                 lower_node_tensor(c, f->inputs[0]), lower_node_tensor(c, gn)};
  return lower_launch(c, k, args, gn);
}

static kiln_status pool_bwd_window(lower_ctx *c, const ir_node *gn) {
  const ir_node *f = gn->fwd;
  pool_dims d;
  pool_dims_of(c, f, &d);
  bool max = f->op == IR_OP_MAXPOOL;
  if (max && pool_tiles(&d))
    return pool_bwd_max_tiled(c, gn, &d);
  KILN_ASSERT(gn->wrt == 0 && "pools have no parameters");
  kir_kernel *k = kir_kernel_new(
      c->a, lower_kernel_name(c, max ? "maxpool_bwd" : "avgpool_bwd", gn), 0);
  kir_buf *dy = kir_global(k, "dy", KIR_F32, d.planes * d.oh * d.ow, true);
  kir_buf *x =
      max ? kir_global(k, "x", KIR_F32, d.planes * d.h * d.w, true) : NULL;
  kir_buf *dx = kir_global(k, "dx", KIR_F32, d.planes * d.h * d.w, false);
  kir_var *p, *iy, *ix;
  pool_grid(k, d.planes, d.h, d.w, &p, &iy, &ix);
  kir_var *me = kir_let(k, "me", B(ADD, B(MUL, R(iy), C64(d.w)), R(ix)));
  kir_var *acc = kir_let(k, "acc", F32(0));
  kir_var *oy = pool_window_of(k, "y", iy, d.kh, d.sh, d.ph, d.oh);
  kir_var *ox = pool_window_of(k, "x", ix, d.kw, d.sw, d.pw, d.ow);
  kir_expr *g = kir_load(
      k, dy,
      B(ADD, B(MUL, B(ADD, B(MUL, R(p), C64(d.oh)), R(oy)), C64(d.ow)), R(ox)));
  if (max) {
    kir_var *bi = pool_argmax(k, &d, x, p, oy, ox);
    kir_if(k, B(EQ, R(bi), R(me)));
    kir_assign(k, acc, B(ADD, R(acc), g));
    kir_end(k);
  } else {
    kir_assign(k, acc, B(ADD, R(acc), g));
  }
  pool_window_end(k, d.kw, d.sw);
  pool_window_end(k, d.kh, d.sh);
  kir_expr *out = max ? R(acc) : B(DIV, R(acc), F32(d.kh * d.kw));
  kir_store(k, dx, B(ADD, B(MUL, R(p), C64(d.h * d.w)), R(me)), out);
  kir_end(k);
  kir_end(k);
  kir_end(k);
  int args[3], n = 0;
  args[n++] = lower_node_tensor(c, gn->inputs[0]);
  if (max)
    args[n++] = lower_node_tensor(c, f->inputs[0]);
  args[n++] = lower_node_tensor(c, gn);
  return lower_launch(c, k, args, gn);
}

/* Elementwise frame: grid b < ceil(n / chunk): vector t < chunk: let i;
 * if i < n. Returns i; close with three kir_end. */
static kir_var *pool_each(kir_kernel *k, int64_t n) {
  int64_t chunk = n < POOL_CHUNK ? n : POOL_CHUNK;
  kir_var *b = kir_for(k, KIR_LOOP_GRID, "b", C64((n + chunk - 1) / chunk));
  kir_var *t = kir_for(k, KIR_LOOP_VECTOR, "t", C64(chunk));
  kir_var *i = kir_let(k, "i", B(ADD, B(MUL, R(b), C64(chunk)), R(t)));
  kir_if(k, B(LT, R(i), C64(n)));
  return i;
}

static void pool_each_end(kir_kernel *k) {
  kir_end(k);
  kir_end(k);
  kir_end(k);
}

/* global_avgpool: [N, C, H, W] -> [N, C], one serial sum per plane. */
static kiln_status pool_fwd_global(lower_ctx *c, const ir_node *n) {
  int64_t planes = lower_numel(c, n);
  int64_t hw = lower_numel(c, n->inputs[0]) / planes;
  kir_kernel *k =
      kir_kernel_new(c->a, lower_kernel_name(c, "global_avgpool_fwd", n), 0);
  kir_buf *x = kir_global(k, "x", KIR_F32, planes * hw, true);
  kir_buf *y = kir_global(k, "y", KIR_F32, planes, false);
  kir_var *p = pool_each(k, planes);
  kir_var *s = kir_let(k, "sum", F32(0));
  kir_var *j = kir_for(k, KIR_LOOP_SERIAL, "j", C64(hw));
  kir_assign(k, s,
             B(ADD, R(s), kir_load(k, x, B(ADD, B(MUL, R(p), C64(hw)), R(j)))));
  kir_end(k);
  kir_store(k, y, R(p), B(DIV, R(s), F32(hw)));
  pool_each_end(k);
  int args[2] = {lower_node_tensor(c, n->inputs[0]), lower_node_tensor(c, n)};
  return lower_launch(c, k, args, n);
}

static kiln_status pool_bwd_global(lower_ctx *c, const ir_node *gn) {
  const ir_node *f = gn->fwd;
  int64_t planes = lower_numel(c, f), total = lower_numel(c, gn);
  int64_t hw = total / planes;
  kir_kernel *k =
      kir_kernel_new(c->a, lower_kernel_name(c, "global_avgpool_bwd", gn), 0);
  kir_buf *dy = kir_global(k, "dy", KIR_F32, planes, true);
  kir_buf *dx = kir_global(k, "dx", KIR_F32, total, false);
  kir_var *i = pool_each(k, total);
  kir_store(k, dx, R(i),
            B(DIV, kir_load(k, dy, B(DIV, R(i), C64(hw))), F32(hw)));
  pool_each_end(k);
  int args[2] = {lower_node_tensor(c, gn->inputs[0]), lower_node_tensor(c, gn)};
  return lower_launch(c, k, args, gn);
}

kiln_status lower_pool_fwd(lower_ctx *c, const ir_node *n) {
  switch (n->op) {
  case IR_OP_MAXPOOL:
  case IR_OP_AVGPOOL:
    return pool_fwd_window(c, n);
  case IR_OP_GLOBAL_AVGPOOL:
    return pool_fwd_global(c, n);
  default:
    KILN_ASSERT(!"lower_pool_fwd: not a pool");
    return KILN_ERR_INTERNAL;
  }
}

kiln_status lower_pool_bwd(lower_ctx *c, const ir_node *gn) {
  KILN_ASSERT(gn->op == IR_OP_GRAD && gn->fwd);
  switch (gn->fwd->op) {
  case IR_OP_MAXPOOL:
  case IR_OP_AVGPOOL:
    return pool_bwd_window(c, gn);
  case IR_OP_GLOBAL_AVGPOOL:
    return pool_bwd_global(c, gn);
  default:
    KILN_ASSERT(!"lower_pool_bwd: not a pool");
    return KILN_ERR_INTERNAL;
  }
}
