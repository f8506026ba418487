/* lower_norm.c — batchnorm and layernorm as kernels, forward and backward,
 * with the reference executor's semantics (runtime/reference/ref_norm.c).
 *
 * Both normalise groups of elements: batchnorm a channel over (N, H, W),
 * layernorm a row over its last dimension. A statistic of a group is one
 * block: GRID over groups, the block's THREAD loop strides over the
 * group's elements into a LOCAL partial, and BLOCK_REDUCE adds the
 * threads' partials in a fixed order. Reductions are therefore
 * deterministic (no atomics) and the same code is a real block reduction
 * on the GPU. Statistics are two-pass like the reference's (mean, then the
 * mean of squared deviations), which keeps the variance accurate in f32.
 *
 * Batch statistics (batchnorm in a training plan with mode = train, and
 * layernorm always) are stored by the forward in scratch tensors
 * "<node>.save_mean" and "<node>.save_invstd" for the backward. The same
 * forward kernel updates running_mean/running_var as PyTorch does (biased
 * variance normalises; the running variance takes the unbiased one).
 * Otherwise batchnorm uses the running statistics and is elementwise.
 *
 * Gradients: one kernel per grad node (dx, dgamma, dbeta each recompute
 * the sums they need; fusing them is the fusion passes' business). dx of
 * batch statistics projects out the group mean and the xhat component:
 *   dx = a * inv / M * (M * g - sum g - xhat * sum g * xhat)
 * with g = dy (batchnorm, a = gamma[c]) or dy * gamma[j] (layernorm,
 * a = 1). dgamma and dbeta reduce over the other axis: channels for
 * batchnorm, columns (over rows) for layernorm. */
#include "passes/lower.h"

#include <string.h>

/* Expression shorthands over the kernel `k` in scope. */
#define R(v) kir_ref(k, (v))
#define C64(v) kir_i64(k, (int64_t)(v))
#define F32(v) kir_f32(k, (float)(v))
#define B(op, a, b) kir_bin(k, KIR_##op, (a), (b))
#define LD(buf, i) kir_load(k, (buf), (i))

enum { NORM_CHUNK = 1024, NORM_RUN = 16 };

/* Element e of group g is at g*gs + (e / s)*os + e % s: a channel of
 * [N, C, S] (gs = s = S, os = C*S), a row of [R, D] (gs = s = D), or a
 * column of [R, D] (gs = s = 1, os = D). */
typedef struct norm_group {
  int64_t groups, m; /* groups (blocks) and elements per group */
  int64_t gs, s, os;
} norm_group;

/* Where a kernel finds mean and 1/std. */
typedef struct norm_stats {
  kir_buf *mean, *inv; /* saved batch statistics, or NULL */
  kir_buf *rm, *rv;    /* running statistics (batchnorm in eval mode) */
  float eps;
} norm_stats;

static const ir_attr *norm_attr(const ir_node *n, const char *name) {
  int i = ir_op_attr_index(n->op, name);
  KILN_ASSERT(i >= 0);
  return &n->attrs[i];
}

static const ir_param *norm_param(const ir_node *n, const char *role) {
  for (int i = 0; i < n->n_params; i++)
    if (strcmp(n->params[i].role, role) == 0)
      return &n->params[i];
  return NULL;
}

/* Whether n normalises with statistics of the data (stored for the
 * backward) rather than running ones. */
static bool norm_batch_stats(lower_ctx *c, const ir_node *n) {
  return n->op == IR_OP_LAYERNORM ||
         (c->training && strcmp(norm_attr(n, "mode")->sym, "train") == 0);
}

/* [N, C, S] of batchnorm's input, or [R, D] (n = R, c = 1, s = D) of
 * layernorm's. */
static void norm_shape(lower_ctx *c, const ir_node *f, int64_t *n, int64_t *ch,
                       int64_t *s) {
  int64_t total = lower_numel(c, f);
  if (f->op == IR_OP_LAYERNORM) {
    *s = f->shape.dim[f->shape.rank - 1];
    *ch = 1;
    *n = total / *s;
    return;
  }
  int64_t d[IR_MAX_DIMS];
  lower_dims(c, f, d);
  *n = d[0];
  *ch = d[1];
  *s = total / (d[0] * d[1]);
}

/* Threads of a group's block: one per run of the group (see
 * norm_strided), between a warp and 256. */
static int norm_threads(int64_t m) {
  int64_t runs = m / NORM_RUN;
  return runs >= 256 ? 256 : runs >= 128 ? 128 : runs >= 64 ? 64 : 32;
}

/* Elements per run (see norm_strided). */
static int64_t norm_run(const norm_group *d) {
  return d->m < NORM_RUN ? d->m : NORM_RUN;
}

static kir_expr *norm_index(kir_kernel *k, const norm_group *d, kir_var *g,
                            kir_var *e) {
  kir_expr *base = B(MUL, R(g), C64(d->gs));
  if (d->s >= d->m)
    return B(ADD, base, R(e));
  if (d->s == 1)
    return B(ADD, base, B(MUL, R(e), C64(d->os)));
  return B(ADD, B(ADD, base, B(MUL, B(DIV, R(e), C64(d->s)), C64(d->os))),
           B(MOD, R(e), C64(d->s)));
}

/* Inside a thread loop: visits the thread's elements of group g; returns
 * e, the element's position in the group, in *lane the position in its
 * run (0 <= lane < norm_run) and in *idx its index in the tensor; close
 * with norm_strided_end(k, depth) where *depth is k->depth before.
 *
 * Thread t takes runs of NORM_RUN consecutive elements, every
 * block_threads-th run: on the CPU, where a thread loop runs one thread
 * after the other, each cache line is then read by one thread only (a
 * cyclic split of single elements reads every line once per thread: 3x
 * slower measured on a 33x32x32x32 batchnorm). In the row case below a
 * thread takes a contiguous stretch of runs instead (t*J .. t*J + J-1),
 * so the CPU reads the group once front to back, as its prefetchers
 * like, instead of sweeping it once per thread. Where the group is made of
 * contiguous rows (batchnorm: an image's plane), runs are cut per row, so
 * the row and the index are computed once per run, not per element with
 * a division, and the run loop is one vector loop with a masked tail.
 * The run loop is always VECTOR: reductions accumulate into per-lane
 * partials (norm_acc_*), which is what lets them vectorise at all (a
 * single f32 accumulator is a serial chain of dependent adds). */
static kir_var *norm_strided(kir_kernel *k, const norm_group *d, kir_var *g,
                             kir_var *t, int *depth, kir_var **lane,
                             kir_var **idx) {
  int64_t nt = k->block_threads, run = norm_run(d);
  *depth = k->depth;
  if (d->s < d->m && d->s > 1) {
    int64_t rows = d->m / d->s, per = (d->s + run - 1) / run;
    int64_t runs = rows * per;
    int64_t per_thread = (runs + nt - 1) / nt;
    kir_var *j = kir_for(k, KIR_LOOP_SERIAL, "j", C64(per_thread));
    kir_var *q = kir_let(k, "q", B(ADD, B(MUL, R(t), C64(per_thread)), R(j)));
    kir_if(k, B(LT, R(q), C64(runs)));
    kir_var *r = per == 1 ? q : kir_let(k, "r", B(DIV, R(q), C64(per)));
    kir_expr *p0 = per == 1 ? C64(0) : B(MUL, B(MOD, R(q), C64(per)), C64(run));
    kir_var *p = kir_let(k, "p0", p0);
    kir_var *base = kir_let(
        k, "base",
        B(ADD, B(ADD, B(MUL, R(g), C64(d->gs)), B(MUL, R(r), C64(d->os))),
          R(p)));
    kir_var *row0 = kir_let(k, "e0", B(ADD, B(MUL, R(r), C64(d->s)), R(p)));
    kir_var *v = kir_for(k, KIR_LOOP_VECTOR, "v", C64(run));
    if (d->s % run)
      kir_if(k, B(LT, B(ADD, R(p), R(v)), C64(d->s)));
    *lane = v;
    *idx = kir_let(k, "i", B(ADD, R(base), R(v)));
    return kir_let(k, "e", B(ADD, R(row0), R(v)));
  }
  int64_t span = nt * run;
  kir_var *j = kir_for(k, KIR_LOOP_SERIAL, "j", C64((d->m + span - 1) / span));
  kir_var *e0 =
      kir_let(k, "e0", B(MUL, B(ADD, B(MUL, R(j), C64(nt)), R(t)), C64(run)));
  kir_var *v = kir_for(k, KIR_LOOP_VECTOR, "v", C64(run));
  kir_var *e = kir_let(k, "e", B(ADD, R(e0), R(v)));
  kir_if(k, B(LT, R(e), C64(d->m)));
  *lane = v;
  *idx = kir_let(k, "i", norm_index(k, d, g, e));
  return e;
}

static void norm_strided_end(kir_kernel *k, int depth) {
  while (k->depth > depth)
    kir_end(k);
}

/* Per-lane partial sums of a reduction (a LOCAL buffer of norm_run
 * floats): zeroed at the start of the thread loop, acc[lane] += v inside
 * norm_strided, and added up in lane order into part[0] (what
 * BLOCK_REDUCE reads) at the end: a fixed order, so still deterministic. */
static kir_buf *norm_acc_new(kir_kernel *k, const norm_group *d,
                             const char *name) {
  return kir_local(k, name, KIR_F32, norm_run(d));
}

static void norm_acc_zero(kir_kernel *k, const norm_group *d, kir_buf *acc) {
  kir_var *v = kir_for(k, KIR_LOOP_VECTOR, "z", C64(norm_run(d)));
  kir_store(k, acc, R(v), F32(0));
  kir_end(k);
}

static void norm_acc_add(kir_kernel *k, kir_buf *acc, kir_var *lane,
                         kir_expr *v) {
  kir_store(k, acc, R(lane), B(ADD, LD(acc, R(lane)), v));
}

static void norm_acc_total(kir_kernel *k, const norm_group *d, kir_buf *acc,
                           kir_buf *part) {
  kir_var *a = kir_let(k, "a", F32(0));
  kir_var *v = kir_for(k, KIR_LOOP_SERIAL, "l", C64(norm_run(d)));
  kir_assign(k, a, B(ADD, R(a), LD(acc, R(v))));
  kir_end(k);
  kir_store(k, part, C64(0), R(a));
}

static kir_var *norm_thread(kir_kernel *k) {
  return kir_for(k, KIR_LOOP_THREAD, "t", C64(k->block_threads));
}

/* Lets for the mean and 1/std of statistics row `at`. */
static void norm_load_stats(kir_kernel *k, const norm_stats *st, kir_var *at,
                            kir_var **mean, kir_var **inv) {
  if (st->mean) {
    *mean = kir_let(k, "mean", LD(st->mean, R(at)));
    *inv = kir_let(k, "inv", LD(st->inv, R(at)));
    return;
  }
  *mean = kir_let(k, "mean", LD(st->rm, R(at)));
  *inv =
      kir_let(k, "inv",
              B(DIV, F32(1),
                kir_un(k, KIR_SQRT, B(ADD, LD(st->rv, R(at)), F32(st->eps)))));
}

/* Elementwise frame over [N, C, S] by rows of S (one image's channel):
 * grid r < N*C, grid b < S/chunk, with the channel computed once per
 * block (norm_rows), then the row's elements (norm_row_elems). What the
 * caller computes between the two from the channel (statistics,
 * 1/sqrt, gamma) is loop invariant, instead of a division and gathers
 * per element. Close with norm_rows_end. */
typedef struct norm_rows_frame {
  int64_t s, chunk;
  kir_var *r, *b;
} norm_rows_frame;

static kir_var *norm_rows(kir_kernel *k, norm_rows_frame *f, int64_t n,
                          int64_t ch, int64_t s) {
  f->s = s;
  f->chunk = s < NORM_CHUNK ? s : NORM_CHUNK;
  f->r = kir_for(k, KIR_LOOP_GRID, "r", C64(n * ch));
  f->b = kir_for(k, KIR_LOOP_GRID, "b", C64((s + f->chunk - 1) / f->chunk));
  return kir_let(k, "c", ch == 1 ? C64(0) : B(MOD, R(f->r), C64(ch)));
}

static kir_var *norm_row_elems(kir_kernel *k, const norm_rows_frame *f) {
  kir_var *t = kir_for(k, KIR_LOOP_VECTOR, "t", C64(f->chunk));
  kir_var *p = kir_let(k, "p", B(ADD, B(MUL, R(f->b), C64(f->chunk)), R(t)));
  kir_if(k, B(LT, R(p), C64(f->s)));
  return kir_let(k, "i", B(ADD, B(MUL, R(f->r), C64(f->s)), R(p)));
}

static void norm_rows_end(kir_kernel *k) {
  for (int i = 0; i < 4; i++) /* if, vector, grid b, grid r */
    kir_end(k);
}

/* Forward with batch statistics: sum, then squared deviations, then the
 * normalising pass, which also saves the statistics and (batchnorm)
 * updates the running ones from thread 0. */
static kiln_status norm_fwd_batch(lower_ctx *c, const ir_node *n) {
  bool ln = n->op == IR_OP_LAYERNORM;
  int64_t nn, ch, s, total = lower_numel(c, n);
  norm_shape(c, n, &nn, &ch, &s);
  norm_group d =
      ln ? (norm_group){.groups = nn, .m = s, .gs = s, .s = s}
         : (norm_group){
               .groups = ch, .m = nn * s, .gs = s, .s = s, .os = ch * s};
  if (!ln && d.m < 2)
    return diag_error(c->err, KILN_ERR_INVALID, n->loc,
                      "layer '%s' (batchnorm): batch statistics need more "
                      "than one value per channel (batch %lld)",
                      n->name, (long long)c->batch);
  const ir_param *pw = norm_param(n, "weight"), *pb = norm_param(n, "bias");
  const ir_param *prm = ln ? NULL : norm_param(n, "running_mean");
  const ir_param *prv = ln ? NULL : norm_param(n, "running_var");
  int64_t affine_n = ln ? s : ch;
  kir_kernel *k = kir_kernel_new(
      c->a, lower_kernel_name(c, ln ? "layernorm_fwd" : "batchnorm_fwd", n),
      norm_threads(d.m));
  int args[8], na = 0;
  kir_buf *x = kir_global(k, "x", KIR_F32, total, true);
  args[na++] = lower_node_tensor(c, n->inputs[0]);
  kir_buf *gamma = NULL, *beta = NULL, *rm = NULL, *rv = NULL;
  if (pw) {
    gamma = kir_global(k, "gamma", KIR_F32, affine_n, true);
    args[na++] = lower_param_tensor(c, pw);
  }
  if (pb) {
    beta = kir_global(k, "beta", KIR_F32, affine_n, true);
    args[na++] = lower_param_tensor(c, pb);
  }
  kir_buf *y = kir_global(k, "y", KIR_F32, total, false);
  args[na++] = lower_node_tensor(c, n);
  kir_buf *smean = kir_global(k, "save_mean", KIR_F32, d.groups, false);
  args[na++] = lower_scratch(c, arena_printf(c->a, "%s.save_mean", n->name),
                             KIR_F32, d.groups);
  kir_buf *sinv = kir_global(k, "save_invstd", KIR_F32, d.groups, false);
  args[na++] = lower_scratch(c, arena_printf(c->a, "%s.save_invstd", n->name),
                             KIR_F32, d.groups);
  if (prm) {
    rm = kir_global(k, "running_mean", KIR_F32, ch, false);
    args[na++] = lower_param_tensor(c, prm);
  }
  if (prv) {
    rv = kir_global(k, "running_var", KIR_F32, ch, false);
    args[na++] = lower_param_tensor(c, prv);
  }
  kir_buf *part = kir_local(k, "part", KIR_F32, 1);
  kir_buf *acc = norm_acc_new(k, &d, "acc");
  kir_buf *sum = kir_shared(k, "sum", KIR_F32, 1);
  kir_buf *sq = kir_shared(k, "sq", KIR_F32, 1);
  float eps = (float)norm_attr(n, "eps")->f;

  kir_var *g = kir_for(k, KIR_LOOP_GRID, "g", C64(d.groups));
  /* pass 1: the sum */
  kir_var *t = norm_thread(k);
  norm_acc_zero(k, &d, acc);
  kir_var *i, *lane;
  int depth;
  kir_var *e = norm_strided(k, &d, g, t, &depth, &lane, &i);
  norm_acc_add(k, acc, lane, LD(x, R(i)));
  norm_strided_end(k, depth);
  norm_acc_total(k, &d, acc, part);
  kir_end(k);
  kir_block_reduce(k, KIR_ADD, sum, part);
  kir_barrier(k);
  /* pass 2: squared deviations from the mean */
  t = norm_thread(k);
  kir_var *mean = kir_let(k, "mean", B(DIV, LD(sum, C64(0)), F32(d.m)));
  norm_acc_zero(k, &d, acc);
  e = norm_strided(k, &d, g, t, &depth, &lane, &i);
  kir_var *dev = kir_let(k, "dev", B(SUB, LD(x, R(i)), R(mean)));
  norm_acc_add(k, acc, lane, B(MUL, R(dev), R(dev)));
  norm_strided_end(k, depth);
  norm_acc_total(k, &d, acc, part);
  kir_end(k);
  kir_block_reduce(k, KIR_ADD, sq, part);
  kir_barrier(k);
  /* pass 3: normalise; thread 0 keeps the statistics */
  t = norm_thread(k);
  mean = kir_let(k, "mean", B(DIV, LD(sum, C64(0)), F32(d.m)));
  kir_var *inv =
      kir_let(k, "inv",
              B(DIV, F32(1),
                kir_un(k, KIR_SQRT,
                       B(ADD, B(DIV, LD(sq, C64(0)), F32(d.m)), F32(eps)))));
  e = norm_strided(k, &d, g, t, &depth, &lane, &i);
  kir_var *at = ln ? e : g; /* the affine parameters' index */
  /* gamma * (x - mean) * inv + beta, in the reference's order */
  kir_expr *v = B(SUB, LD(x, R(i)), R(mean));
  v = gamma ? B(MUL, B(MUL, LD(gamma, R(at)), v), R(inv)) : B(MUL, v, R(inv));
  if (beta)
    v = B(ADD, v, LD(beta, R(at)));
  kir_store(k, y, R(i), v);
  norm_strided_end(k, depth);
  kir_if(k, B(EQ, R(t), C64(0)));
  kir_store(k, smean, R(g), R(mean));
  kir_store(k, sinv, R(g), R(inv));
  if (rm || rv) {
    float mom = (float)norm_attr(n, "momentum")->f;
    float keep = (float)(1.0 - norm_attr(n, "momentum")->f);
    if (rm)
      kir_store(
          k, rm, R(g),
          B(ADD, B(MUL, F32(keep), LD(rm, R(g))), B(MUL, F32(mom), R(mean))));
    if (rv) /* unbiased, as PyTorch stores it */
      kir_store(k, rv, R(g),
                B(ADD, B(MUL, F32(keep), LD(rv, R(g))),
                  B(MUL, F32(mom), B(DIV, LD(sq, C64(0)), F32(d.m - 1)))));
  }
  kir_end(k); /* if t == 0 */
  kir_end(k); /* thread */
  kir_end(k); /* grid */
  return lower_launch(c, k, args, n);
}

/* batchnorm with running statistics: elementwise. */
static kiln_status norm_fwd_eval(lower_ctx *c, const ir_node *n) {
  int64_t nn, ch, s, total = lower_numel(c, n);
  norm_shape(c, n, &nn, &ch, &s);
  const ir_param *pw = norm_param(n, "weight"), *pb = norm_param(n, "bias");
  kir_kernel *k =
      kir_kernel_new(c->a, lower_kernel_name(c, "batchnorm_eval_fwd", n), 0);
  int args[6], na = 0;
  kir_buf *x = kir_global(k, "x", KIR_F32, total, true);
  args[na++] = lower_node_tensor(c, n->inputs[0]);
  kir_buf *gamma = NULL, *beta = NULL;
  if (pw) {
    gamma = kir_global(k, "gamma", KIR_F32, ch, true);
    args[na++] = lower_param_tensor(c, pw);
  }
  if (pb) {
    beta = kir_global(k, "beta", KIR_F32, ch, true);
    args[na++] = lower_param_tensor(c, pb);
  }
  norm_stats st = {.eps = (float)norm_attr(n, "eps")->f};
  st.rm = kir_global(k, "running_mean", KIR_F32, ch, true);
  args[na++] = lower_param_tensor(c, norm_param(n, "running_mean"));
  st.rv = kir_global(k, "running_var", KIR_F32, ch, true);
  args[na++] = lower_param_tensor(c, norm_param(n, "running_var"));
  kir_buf *y = kir_global(k, "y", KIR_F32, total, false);
  args[na++] = lower_node_tensor(c, n);
  norm_rows_frame fr;
  kir_var *cc = norm_rows(k, &fr, nn, ch, s);
  kir_var *mean, *inv;
  norm_load_stats(k, &st, cc, &mean, &inv);
  kir_var *ga = gamma ? kir_let(k, "ga", LD(gamma, R(cc))) : NULL;
  kir_var *be = beta ? kir_let(k, "be", LD(beta, R(cc))) : NULL;
  kir_var *i = norm_row_elems(k, &fr);
  kir_expr *v = B(SUB, LD(x, R(i)), R(mean));
  v = ga ? B(MUL, B(MUL, R(ga), v), R(inv)) : B(MUL, v, R(inv));
  if (be)
    v = B(ADD, v, R(be));
  kir_store(k, y, R(i), v);
  norm_rows_end(k);
  return lower_launch(c, k, args, n);
}

kiln_status lower_norm_fwd(lower_ctx *c, const ir_node *n) {
  KILN_ASSERT(n->op == IR_OP_BATCHNORM || n->op == IR_OP_LAYERNORM);
  return norm_batch_stats(c, n) ? norm_fwd_batch(c, n) : norm_fwd_eval(c, n);
}

/* ---- backward ---- */

/* Binds the statistics f's forward used: the saved ones, or batchnorm's
 * running ones. */
static norm_stats norm_bind_stats(lower_ctx *c, kir_kernel *k, const ir_node *f,
                                  int64_t groups, int *args, int *na) {
  norm_stats st = {.eps = (float)norm_attr(f, "eps")->f};
  if (norm_batch_stats(c, f)) {
    st.mean = kir_global(k, "save_mean", KIR_F32, groups, true);
    args[(*na)++] = lower_scratch(
        c, arena_printf(c->a, "%s.save_mean", f->name), KIR_F32, groups);
    st.inv = kir_global(k, "save_invstd", KIR_F32, groups, true);
    args[(*na)++] = lower_scratch(
        c, arena_printf(c->a, "%s.save_invstd", f->name), KIR_F32, groups);
  } else {
    st.rm = kir_global(k, "running_mean", KIR_F32, groups, true);
    args[(*na)++] = lower_param_tensor(c, norm_param(f, "running_mean"));
    st.rv = kir_global(k, "running_var", KIR_F32, groups, true);
    args[(*na)++] = lower_param_tensor(c, norm_param(f, "running_var"));
  }
  return st;
}

/* dgamma (sum of dy * xhat) or dbeta (sum of dy) per channel (batchnorm)
 * or per column over rows (layernorm). */
static kiln_status norm_bwd_param(lower_ctx *c, const ir_node *gn, bool gamma) {
  const ir_node *f = gn->fwd;
  bool ln = f->op == IR_OP_LAYERNORM;
  int64_t nn, ch, s, total = lower_numel(c, f);
  norm_shape(c, f, &nn, &ch, &s);
  norm_group d =
      ln ? (norm_group){.groups = s, .m = nn, .gs = 1, .s = 1, .os = s}
         : (norm_group){
               .groups = ch, .m = nn * s, .gs = s, .s = s, .os = ch * s};
  kir_kernel *k = kir_kernel_new(
      c->a, lower_kernel_name(c, ln ? "layernorm_bwd" : "batchnorm_bwd", gn),
      norm_threads(d.m));
  int args[6], na = 0;
  kir_buf *dy = kir_global(k, "dy", KIR_F32, total, true);
  args[na++] = lower_node_tensor(c, gn->inputs[0]);
  kir_buf *x = NULL;
  norm_stats st = {0};
  if (gamma) {
    x = kir_global(k, "x", KIR_F32, total, true);
    args[na++] = lower_node_tensor(c, f->inputs[0]);
    st = norm_bind_stats(c, k, f, ln ? nn : ch, args, &na);
  }
  kir_buf *out =
      kir_global(k, gamma ? "dgamma" : "dbeta", KIR_F32, d.groups, false);
  args[na++] = lower_node_tensor(c, gn);
  kir_buf *part = kir_local(k, "part", KIR_F32, 1);
  kir_buf *acc = norm_acc_new(k, &d, "acc");
  kir_buf *sum = kir_shared(k, "sum", KIR_F32, 1);

  kir_var *g = kir_for(k, KIR_LOOP_GRID, "g", C64(d.groups));
  kir_var *t = norm_thread(k);
  norm_acc_zero(k, &d, acc);
  kir_var *i, *lane;
  int depth;
  kir_var *e = norm_strided(k, &d, g, t, &depth, &lane, &i);
  if (gamma) {
    /* statistics per channel (batchnorm) or per row = element (layernorm) */
    kir_var *mean, *inv;
    norm_load_stats(k, &st, ln ? e : g, &mean, &inv);
    norm_acc_add(
        k, acc, lane,
        B(MUL, LD(dy, R(i)), B(MUL, B(SUB, LD(x, R(i)), R(mean)), R(inv))));
  } else {
    norm_acc_add(k, acc, lane, LD(dy, R(i)));
  }
  norm_strided_end(k, depth);
  norm_acc_total(k, &d, acc, part);
  kir_end(k);
  kir_block_reduce(k, KIR_ADD, sum, part);
  kir_barrier(k);
  t = norm_thread(k);
  kir_if(k, B(EQ, R(t), C64(0)));
  kir_store(k, out, R(g), LD(sum, C64(0)));
  kir_end(k);
  kir_end(k);
  kir_end(k);
  return lower_launch(c, k, args, gn);
}

/* dx of batchnorm with running statistics: dy * gamma * inv. */
static kiln_status norm_bwd_dx_eval(lower_ctx *c, const ir_node *gn) {
  const ir_node *f = gn->fwd;
  int64_t nn, ch, s, total = lower_numel(c, f);
  norm_shape(c, f, &nn, &ch, &s);
  const ir_param *pw = norm_param(f, "weight");
  kir_kernel *k =
      kir_kernel_new(c->a, lower_kernel_name(c, "batchnorm_eval_bwd", gn), 0);
  int args[5], na = 0;
  kir_buf *dy = kir_global(k, "dy", KIR_F32, total, true);
  args[na++] = lower_node_tensor(c, gn->inputs[0]);
  kir_buf *gamma = NULL;
  if (pw) {
    gamma = kir_global(k, "gamma", KIR_F32, ch, true);
    args[na++] = lower_param_tensor(c, pw);
  }
  norm_stats st = norm_bind_stats(c, k, f, ch, args, &na);
  kir_buf *dx = kir_global(k, "dx", KIR_F32, total, false);
  args[na++] = lower_node_tensor(c, gn);
  norm_rows_frame fr;
  kir_var *cc = norm_rows(k, &fr, nn, ch, s);
  kir_var *mean, *inv;
  norm_load_stats(k, &st, cc, &mean, &inv);
  (void)mean;
  kir_var *ga = gamma ? kir_let(k, "ga", LD(gamma, R(cc))) : NULL;
  kir_var *i = norm_row_elems(k, &fr);
  kir_expr *v = LD(dy, R(i));
  if (ga)
    v = B(MUL, v, R(ga));
  kir_store(k, dx, R(i), B(MUL, v, R(inv)));
  norm_rows_end(k);
  return lower_launch(c, k, args, gn);
}

/* dx through batch statistics: per group, sum g and sum g * xhat, then
 * the projection (see the top of the file). */
static kiln_status norm_bwd_dx(lower_ctx *c, const ir_node *gn) {
  const ir_node *f = gn->fwd;
  bool ln = f->op == IR_OP_LAYERNORM;
  int64_t nn, ch, s, total = lower_numel(c, f);
  norm_shape(c, f, &nn, &ch, &s);
  norm_group d =
      ln ? (norm_group){.groups = nn, .m = s, .gs = s, .s = s}
         : (norm_group){
               .groups = ch, .m = nn * s, .gs = s, .s = s, .os = ch * s};
  const ir_param *pw = norm_param(f, "weight");
  kir_kernel *k = kir_kernel_new(
      c->a, lower_kernel_name(c, ln ? "layernorm_bwd" : "batchnorm_bwd", gn),
      norm_threads(d.m));
  int args[6], na = 0;
  kir_buf *dy = kir_global(k, "dy", KIR_F32, total, true);
  args[na++] = lower_node_tensor(c, gn->inputs[0]);
  kir_buf *x = kir_global(k, "x", KIR_F32, total, true);
  args[na++] = lower_node_tensor(c, f->inputs[0]);
  kir_buf *gamma = NULL;
  if (pw) {
    gamma = kir_global(k, "gamma", KIR_F32, ln ? s : ch, true);
    args[na++] = lower_param_tensor(c, pw);
  }
  norm_stats st = norm_bind_stats(c, k, f, d.groups, args, &na);
  kir_buf *dx = kir_global(k, "dx", KIR_F32, total, false);
  args[na++] = lower_node_tensor(c, gn);
  kir_buf *part = kir_local(k, "part", KIR_F32, 1);
  kir_buf *sg = kir_shared(k, "sum_g", KIR_F32, 1);
  kir_buf *sgx = kir_shared(k, "sum_gx", KIR_F32, 1);
  kir_buf *part2 = kir_local(k, "part2", KIR_F32, 1);
  kir_buf *acc = norm_acc_new(k, &d, "acc");
  kir_buf *acc2 = norm_acc_new(k, &d, "acc2");

  kir_var *g = kir_for(k, KIR_LOOP_GRID, "grp", C64(d.groups));
  for (int pass = 0; pass < 2; pass++) {
    kir_var *t = norm_thread(k);
    kir_var *mean, *inv;
    norm_load_stats(k, &st, g, &mean, &inv);
    kir_var *scale = NULL;
    if (pass == 0) {
      norm_acc_zero(k, &d, acc);
      norm_acc_zero(k, &d, acc2);
    } else {
      /* a * inv / M, with a = gamma[c] for batchnorm */
      kir_expr *sc = B(DIV, R(inv), F32(d.m));
      if (gamma && !ln)
        sc = B(MUL, LD(gamma, R(g)), sc);
      scale = kir_let(k, "scale", sc);
    }
    kir_var *i, *lane;
    int depth;
    kir_var *e = norm_strided(k, &d, g, t, &depth, &lane, &i);
    kir_var *xhat =
        kir_let(k, "xhat", B(MUL, B(SUB, LD(x, R(i)), R(mean)), R(inv)));
    kir_expr *gv = LD(dy, R(i));
    if (gamma && ln)
      gv = B(MUL, gv, LD(gamma, R(e)));
    kir_var *gval = kir_let(k, "gv", gv);
    if (pass == 0) {
      norm_acc_add(k, acc, lane, R(gval));
      norm_acc_add(k, acc2, lane, B(MUL, R(gval), R(xhat)));
    } else {
      kir_expr *proj = B(SUB, B(SUB, B(MUL, F32(d.m), R(gval)), LD(sg, C64(0))),
                         B(MUL, R(xhat), LD(sgx, C64(0))));
      kir_store(k, dx, R(i), B(MUL, R(scale), proj));
    }
    norm_strided_end(k, depth);
    if (pass == 0) {
      norm_acc_total(k, &d, acc, part);
      norm_acc_total(k, &d, acc2, part2);
    }
    kir_end(k); /* thread */
    if (pass == 0) {
      /* a barrier between the reductions: a GPU reduction may reuse its
       * scratch */
      kir_block_reduce(k, KIR_ADD, sg, part);
      kir_barrier(k);
      kir_block_reduce(k, KIR_ADD, sgx, part2);
      kir_barrier(k);
    }
  }
  kir_end(k); /* grid */
  return lower_launch(c, k, args, gn);
}

kiln_status lower_norm_bwd(lower_ctx *c, const ir_node *gn) {
  const ir_node *f = gn->fwd;
  KILN_ASSERT(gn->op == IR_OP_GRAD &&
              (f->op == IR_OP_BATCHNORM || f->op == IR_OP_LAYERNORM));
  if (gn->wrt == 0)
    return norm_batch_stats(c, f) ? norm_bwd_dx(c, gn)
                                  : norm_bwd_dx_eval(c, gn);
  const char *role = f->params[-1 - gn->wrt].role;
  KILN_ASSERT((strcmp(role, "weight") == 0 || strcmp(role, "bias") == 0) &&
              "only gamma and beta are trained");
  return norm_bwd_param(c, gn, strcmp(role, "weight") == 0);
}
