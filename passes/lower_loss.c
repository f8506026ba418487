/* lower_loss.c — the losses as kernels: cross_entropy (with label
 * smoothing) and mse, forward and backward, with the reference executor's
 * semantics (runtime/reference/ref_loss.c). The loss tensor has one
 * element; reduction "mean" divides by the rows (cross_entropy) or the
 * elements (mse), "sum" does not.
 *
 * Forward: a first kernel writes one partial per row (cross_entropy) or
 * per chunk of elements (mse) into a scratch tensor, then a one-block
 * kernel adds the partials (THREAD partials, BLOCK_REDUCE) and scales.
 * Both orders are fixed, so the loss is deterministic.
 *
 * cross_entropy works on log-sum-exp with the maximum subtracted:
 *   lse_r = max_j z_rj + log sum_j exp(z_rj - max)
 *   row   = (1 - eps) (lse_r - z_r,label) + eps (lse_r - mean_j z_rj)
 * which is the reference's -sum_j t_j log softmax_j for the smoothed
 * target t = (1 - eps) onehot + eps / K. lse_r is kept in the scratch
 * tensor "<node>.lse" so that the backward is one elementwise pass:
 *   dz_rj = (exp(z_rj - lse_r) - t_rj) * dloss / N.
 * A label outside [0, K) cannot be reported from a kernel: it is never used
 * as an index (the kernel reads column 0 instead) and makes the row's loss
 * NaN, so the loss says so; a backend should reject such labels when
 * they are set, as the reference executor does.
 *
 * The loss's own grad node has no dy (dloss = 1); any other loss node
 * differentiated by autodiff reads dloss from its dy tensor. */
#include "passes/lower.h"

#include <math.h>
#include <string.h>

/* Expression shorthands over the kernel `k` in scope. */
#define R(v) kir_ref(k, (v))
#define C64(v) kir_i64(k, (int64_t)(v))
#define F32(v) kir_f32(k, (float)(v))
#define B(op, a, b) kir_bin(k, KIR_##op, (a), (b))
#define LD(buf, i) kir_load(k, (buf), (i))

enum { LOSS_CHUNK = 1024, LOSS_PARTIAL = 4096, LOSS_THREADS = 128 };

static const ir_attr *loss_attr(const ir_node *n, const char *name) {
  int i = ir_op_attr_index(n->op, name);
  KILN_ASSERT(i >= 0);
  return &n->attrs[i];
}

static bool loss_mean(const ir_node *n) {
  return strcmp(loss_attr(n, "reduction")->sym, "mean") == 0;
}

/* Elementwise frame: grid b: vector t: let i; if i < n. Close with three
 * kir_end. */
static kir_var *loss_each(kir_kernel *k, int64_t n) {
  int64_t chunk = n < LOSS_CHUNK ? n : LOSS_CHUNK;
  kir_var *b = kir_for(k, KIR_LOOP_GRID, "b", C64((n + chunk - 1) / chunk));
  kir_var *t = kir_for(k, KIR_LOOP_VECTOR, "t", C64(chunk));
  kir_var *i = kir_let(k, "i", B(ADD, B(MUL, R(b), C64(chunk)), R(t)));
  kir_if(k, B(LT, R(i), C64(n)));
  return i;
}

static void loss_each_end(kir_kernel *k) {
  kir_end(k);
  kir_end(k);
  kir_end(k);
}

/* out[0] = scale * sum of the n values of tensor `src`, by one block. */
static kiln_status loss_finish(lower_ctx *c, const ir_node *n, int src,
                               int64_t count, double scale) {
  kir_kernel *k =
      kir_kernel_new(c->a, lower_kernel_name(c, "loss_sum", n), LOSS_THREADS);
  kir_buf *part = kir_global(k, "partial", KIR_F32, count, true);
  kir_buf *out = kir_global(k, "loss", KIR_F32, 1, false);
  kir_buf *acc = kir_local(k, "acc", KIR_F32, 1);
  kir_buf *sum = kir_shared(k, "sum", KIR_F32, 1);
  kir_var *t = kir_for(k, KIR_LOOP_THREAD, "t", C64(LOSS_THREADS));
  kir_var *a = kir_let(k, "a", F32(0));
  kir_var *j = kir_for(k, KIR_LOOP_SERIAL, "j",
                       C64((count + LOSS_THREADS - 1) / LOSS_THREADS));
  kir_var *i = kir_let(k, "i", B(ADD, R(t), B(MUL, R(j), C64(LOSS_THREADS))));
  kir_if(k, B(LT, R(i), C64(count)));
  kir_assign(k, a, B(ADD, R(a), LD(part, R(i))));
  kir_end(k);
  kir_end(k);
  kir_store(k, acc, C64(0), R(a));
  kir_end(k);
  kir_block_reduce(k, KIR_ADD, sum, acc);
  kir_barrier(k);
  t = kir_for(k, KIR_LOOP_THREAD, "t", C64(LOSS_THREADS));
  kir_if(k, B(EQ, R(t), C64(0)));
  kir_expr *v = LD(sum, C64(0));
  if (scale != 1.0)
    v = B(MUL, v, F32(scale));
  kir_store(k, out, C64(0), v);
  kir_end(k);
  kir_end(k);
  int args[2] = {src, lower_node_tensor(c, n)};
  return lower_launch(c, k, args, n);
}

static int loss_scratch(lower_ctx *c, const ir_node *n, const char *what,
                        int64_t count) {
  return lower_scratch(c, arena_printf(c->a, "%s.%s", n->name, what), KIR_F32,
                       count);
}

/* The label of row r as an i64 column, and whether it is in [0, kk). */
static kir_var *loss_label(kir_kernel *k, kir_buf *labels, kir_var *r,
                           int64_t kk, kir_var **ok) {
  kir_var *lab = kir_let(k, "lab", kir_cast(k, KIR_I64, LD(labels, R(r))));
  *ok = kir_let(k, "ok", B(AND, B(LE, C64(0), R(lab)), B(LT, R(lab), C64(kk))));
  return lab;
}

static kiln_status loss_ce_fwd(lower_ctx *c, const ir_node *n) {
  const ir_node *z = n->inputs[0];
  int64_t kk = z->shape.dim[1], rows = lower_numel(c, z) / kk;
  double eps = loss_attr(n, "smoothing")->f;
  int lse_t = loss_scratch(c, n, "lse", rows);
  int row_t = loss_scratch(c, n, "row_loss", rows);
  kir_kernel *k =
      kir_kernel_new(c->a, lower_kernel_name(c, "cross_entropy_fwd", n), 0);
  kir_buf *logits = kir_global(k, "logits", KIR_F32, rows * kk, true);
  kir_buf *labels = kir_global(k, "labels", KIR_I32, rows, true);
  kir_buf *lse = kir_global(k, "lse", KIR_F32, rows, false);
  kir_buf *row_loss = kir_global(k, "row_loss", KIR_F32, rows, false);
  kir_var *r = loss_each(k, rows);
  kir_var *base = kir_let(k, "base", B(MUL, R(r), C64(kk)));
  kir_var *mx = kir_let(k, "mx", F32(-INFINITY));
  kir_var *j = kir_for(k, KIR_LOOP_SERIAL, "j", C64(kk));
  kir_var *v = kir_let(k, "v", LD(logits, B(ADD, R(base), R(j))));
  /* as fmax: a NaN logit does not become the maximum (it still makes
   * the sum of exponentials NaN) */
  kir_assign(k, mx, kir_select(k, B(LT, R(mx), R(v)), R(v), R(mx)));
  kir_end(k);
  kir_var *se = kir_let(k, "se", F32(0));
  kir_var *sz = kir_let(k, "sz", F32(0));
  j = kir_for(k, KIR_LOOP_SERIAL, "j", C64(kk));
  v = kir_let(k, "v", LD(logits, B(ADD, R(base), R(j))));
  kir_assign(k, se, B(ADD, R(se), kir_un(k, KIR_EXP, B(SUB, R(v), R(mx)))));
  kir_assign(k, sz, B(ADD, R(sz), R(v)));
  kir_end(k);
  kir_var *l = kir_let(k, "l", B(ADD, R(mx), kir_un(k, KIR_LOG, R(se))));
  kir_store(k, lse, R(r), R(l));
  kir_var *ok;
  kir_var *lab = loss_label(k, labels, r, kk, &ok);
  kir_expr *col = kir_select(k, R(ok), R(lab), C64(0));
  kir_expr *nll = B(SUB, R(l), LD(logits, B(ADD, R(base), col)));
  kir_expr *row = nll;
  if (eps != 0)
    row = B(ADD, B(MUL, F32(1 - eps), nll),
            B(MUL, F32(eps), B(SUB, R(l), B(DIV, R(sz), F32(kk)))));
  /* 0/0 rather than a NaN constant: renderers need not spell NaN */
  kir_store(k, row_loss, R(r),
            kir_select(k, R(ok), row, B(DIV, F32(0), F32(0))));
  loss_each_end(k);
  int args[4] = {lower_node_tensor(c, z), lower_node_tensor(c, n->inputs[1]),
                 lse_t, row_t};
  kiln_status st = lower_launch(c, k, args, n);
  if (st)
    return st;
  return loss_finish(c, n, row_t, rows, loss_mean(n) ? 1.0 / rows : 1.0);
}

/* dloss/dz = (softmax - smoothed target) * dloss / N. */
static kiln_status loss_ce_bwd(lower_ctx *c, const ir_node *gn) {
  const ir_node *f = gn->fwd, *z = f->inputs[0];
  KILN_ASSERT(gn->wrt == 0 && "labels have no gradient");
  bool has_dy = f != c->g->loss;
  int64_t kk = z->shape.dim[1], total = lower_numel(c, z), rows = total / kk;
  double eps = loss_attr(f, "smoothing")->f;
  double scale = loss_mean(f) ? 1.0 / rows : 1.0;
  kir_kernel *k =
      kir_kernel_new(c->a, lower_kernel_name(c, "cross_entropy_bwd", gn), 0);
  int args[5], na = 0;
  kir_buf *dy = NULL;
  if (has_dy) {
    dy = kir_global(k, "dy", KIR_F32, 1, true);
    args[na++] = lower_node_tensor(c, gn->inputs[0]);
  }
  kir_buf *logits = kir_global(k, "logits", KIR_F32, total, true);
  args[na++] = lower_node_tensor(c, z);
  kir_buf *labels = kir_global(k, "labels", KIR_I32, rows, true);
  args[na++] = lower_node_tensor(c, f->inputs[1]);
  kir_buf *lse = kir_global(k, "lse", KIR_F32, rows, true);
  args[na++] = loss_scratch(c, f, "lse", rows);
  kir_buf *dz = kir_global(k, "dz", KIR_F32, total, false);
  args[na++] = lower_node_tensor(c, gn);
  kir_var *i = loss_each(k, total);
  kir_var *r = kir_let(k, "r", B(DIV, R(i), C64(kk)));
  kir_var *ok;
  kir_var *lab = loss_label(k, labels, r, kk, &ok);
  (void)ok; /* an invalid label matches no column: never an index here */
  kir_expr *hit = B(EQ, B(SUB, R(i), B(MUL, R(r), C64(kk))), R(lab));
  kir_expr *t = kir_select(k, hit, F32(1 - eps + eps / kk), F32(eps / kk));
  kir_expr *p = kir_un(k, KIR_EXP, B(SUB, LD(logits, R(i)), LD(lse, R(r))));
  kir_expr *sc = F32(scale);
  if (dy)
    sc = loss_mean(f) ? B(DIV, LD(dy, C64(0)), F32(rows)) : LD(dy, C64(0));
  kir_store(k, dz, R(i), B(MUL, B(SUB, p, t), sc));
  loss_each_end(k);
  return lower_launch(c, k, args, gn);
}

/* mse: partial sums of (p - t)^2 over chunks, then their sum. */
static kiln_status loss_mse_fwd(lower_ctx *c, const ir_node *n) {
  int64_t total = lower_numel(c, n->inputs[0]);
  int64_t chunk = total < LOSS_PARTIAL ? total : LOSS_PARTIAL;
  int64_t parts = (total + chunk - 1) / chunk;
  int part_t = loss_scratch(c, n, "partial", parts);
  kir_kernel *k = kir_kernel_new(c->a, lower_kernel_name(c, "mse_fwd", n), 0);
  kir_buf *p = kir_global(k, "prediction", KIR_F32, total, true);
  kir_buf *t = kir_global(k, "target", KIR_F32, total, true);
  kir_buf *part = kir_global(k, "partial", KIR_F32, parts, false);
  kir_var *b = kir_for(k, KIR_LOOP_GRID, "b", C64(parts));
  kir_var *a = kir_let(k, "a", F32(0));
  kir_var *j = kir_for(k, KIR_LOOP_SERIAL, "j", C64(chunk));
  kir_var *i = kir_let(k, "i", B(ADD, B(MUL, R(b), C64(chunk)), R(j)));
  kir_if(k, B(LT, R(i), C64(total)));
  kir_var *d = kir_let(k, "d", B(SUB, LD(p, R(i)), LD(t, R(i))));
  kir_assign(k, a, B(ADD, R(a), B(MUL, R(d), R(d))));
  kir_end(k);
  kir_end(k);
  kir_store(k, part, R(b), R(a));
  kir_end(k);
  int args[3] = {lower_node_tensor(c, n->inputs[0]),
                 lower_node_tensor(c, n->inputs[1]), part_t};
  kiln_status st = lower_launch(c, k, args, n);
  if (st)
    return st;
  return loss_finish(c, n, part_t, parts, loss_mean(n) ? 1.0 / total : 1.0);
}

/* d/dp = 2 (p - t) dloss / n; the target's gradient is its negative. */
static kiln_status loss_mse_bwd(lower_ctx *c, const ir_node *gn) {
  const ir_node *f = gn->fwd;
  KILN_ASSERT(gn->wrt == 0 || gn->wrt == 1);
  bool has_dy = f != c->g->loss;
  int64_t total = lower_numel(c, f->inputs[0]);
  double scale = 2.0 * (loss_mean(f) ? 1.0 / total : 1.0);
  if (gn->wrt == 1)
    scale = -scale;
  kir_kernel *k = kir_kernel_new(c->a, lower_kernel_name(c, "mse_bwd", gn), 0);
  int args[4], na = 0;
  kir_buf *dy = NULL;
  if (has_dy) {
    dy = kir_global(k, "dy", KIR_F32, 1, true);
    args[na++] = lower_node_tensor(c, gn->inputs[0]);
  }
  kir_buf *p = kir_global(k, "prediction", KIR_F32, total, true);
  args[na++] = lower_node_tensor(c, f->inputs[0]);
  kir_buf *t = kir_global(k, "target", KIR_F32, total, true);
  args[na++] = lower_node_tensor(c, f->inputs[1]);
  kir_buf *out =
      kir_global(k, gn->wrt == 0 ? "dp" : "dt", KIR_F32, total, false);
  args[na++] = lower_node_tensor(c, gn);
  kir_var *i = loss_each(k, total);
  kir_expr *sc = F32(scale);
  if (dy)
    sc = B(MUL, LD(dy, C64(0)), sc);
  kir_store(k, out, R(i), B(MUL, B(SUB, LD(p, R(i)), LD(t, R(i))), sc));
  loss_each_end(k);
  return lower_launch(c, k, args, gn);
}

kiln_status lower_loss_fwd(lower_ctx *c, const ir_node *n) {
  switch (n->op) {
  case IR_OP_CROSS_ENTROPY:
    return loss_ce_fwd(c, n);
  case IR_OP_MSE:
    return loss_mse_fwd(c, n);
  default:
    KILN_ASSERT(!"lower_loss_fwd: not a loss");
    return KILN_ERR_INTERNAL;
  }
}

kiln_status lower_loss_bwd(lower_ctx *c, const ir_node *gn) {
  KILN_ASSERT(gn->op == IR_OP_GRAD && gn->fwd);
  switch (gn->fwd->op) {
  case IR_OP_CROSS_ENTROPY:
    return loss_ce_bwd(c, gn);
  case IR_OP_MSE:
    return loss_mse_bwd(c, gn);
  default:
    KILN_ASSERT(!"lower_loss_bwd: not a loss");
    return KILN_ERR_INTERNAL;
  }
}
