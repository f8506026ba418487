/* lower_pointwise.c — lowering of the pointwise and tensor ops (the rules
 * lower_pointwise_fwd and lower_pointwise_bwd of passes/lower.h), the
 * elementwise kernel helpers lower_act.c and lower_tensor.c build on, and
 * the ops too small for a file of their own: shape changes and dropout.
 *
 * Needs: the driver has made a tensor for every node (a grad node's tensor
 * holds its gradient) and, for flatten/reshape, may have made the output
 * an alias of the input. Guarantees: every kernel reads its inputs and
 * writes each element of its output exactly once, in a loop nest whose
 * iterations are independent (see pw_loop), so they run in any order on
 * the CPU pool or the GPU and give the same bits every time.
 *
 * The numerics follow the reference executor (runtime/reference/), the
 * oracle, in float32: same formulas, same branch at the kinks, same
 * dropout mask. */
#include "passes/lower_pointwise.h"

#include <math.h>
#include <string.h>

/* ---- kernel helpers ---- */

void pw_begin(pw_kernel *pk, lower_ctx *c, const char *prefix, const ir_node *f,
              const ir_node *n) {
  *pk = (pw_kernel){.c = c, .node = n};
  pk->k = kir_kernel_new(c->a, lower_kernel_name(c, prefix, f), 0);
}

static kir_buf *bind(pw_kernel *pk, const char *name, int tensor, bool ro) {
  const kir_tensor *t = &pk->c->plan->tensors[tensor];
  kir_buf *b = kir_global(pk->k, name, t->type, t->count, ro);
  ARENA_PUSH(pk->c->a, pk->args, pk->n_args, pk->cap_args, tensor);
  KILN_ASSERT(pk->n_args == b->id + 1 && "globals are declared first");
  return b;
}

kir_buf *pw_in(pw_kernel *pk, const char *name, int tensor) {
  return bind(pk, name, tensor, true);
}

kir_buf *pw_out(pw_kernel *pk, const char *name, int tensor) {
  return bind(pk, name, tensor, false);
}

/* grid b < ceil(count / bt): thread t < bt: i = b * bt + t, with the guard
 * i < count only when the last block is partial; a tensor smaller than a
 * block is one block of exactly its size. The block size is set here,
 * when the count is known (pw_begin made the kernel without threads). */
kir_var *pw_loop(pw_kernel *pk, int64_t count) {
  kir_kernel *k = pk->k;
  KILN_ASSERT(count > 0 && k->depth == 0 && k->block_threads == 0 &&
              "one loop nest per kernel");
  int64_t bt = count < PW_BLOCK ? count : PW_BLOCK;
  k->block_threads = (int)bt;
  kir_var *b = kir_for(k, KIR_LOOP_GRID, "b", pw_i(pk, (count + bt - 1) / bt));
  kir_var *t = kir_for(k, KIR_LOOP_THREAD, "t", pw_i(pk, bt));
  /* b * bt + t even for one block: every variable is used (NVRTC warns
   * about unused ones, and warnings are errors) */
  kir_var *i = kir_let(k, "i",
                       pw_bin(pk, KIR_ADD,
                              pw_bin(pk, KIR_MUL, pw_v(pk, b), pw_i(pk, bt)),
                              pw_v(pk, t)));
  if (count % bt != 0)
    kir_if(k, pw_bin(pk, KIR_LT, pw_v(pk, i), pw_i(pk, count)));
  return i;
}

kir_var *pw_rows_begin(pw_kernel *pk, int64_t rows, int64_t len) {
  kir_kernel *k = pk->k;
  KILN_ASSERT(rows > 0 && len > 0 && k->depth == 0 && k->block_threads == 0 &&
              "one loop nest per kernel");
  int64_t bt = len < PW_BLOCK ? len : PW_BLOCK;
  k->block_threads = (int)bt;
  kir_var *r = kir_for(k, KIR_LOOP_GRID, "row", pw_i(pk, rows));
  pk->col = kir_for(k, KIR_LOOP_GRID, "b", pw_i(pk, (len + bt - 1) / bt));
  return r;
}

kir_var *pw_rows_threads(pw_kernel *pk, int64_t len) {
  kir_kernel *k = pk->k;
  int64_t bt = k->block_threads;
  kir_var *t = kir_for(k, KIR_LOOP_THREAD, "t", pw_i(pk, bt));
  kir_var *q = kir_let(
      k, "q",
      pw_bin(pk, KIR_ADD, pw_bin(pk, KIR_MUL, pw_v(pk, pk->col), pw_i(pk, bt)),
             pw_v(pk, t)));
  if (len % bt != 0)
    kir_if(k, pw_bin(pk, KIR_LT, pw_v(pk, q), pw_i(pk, len)));
  return q;
}

void pw_loop_end(pw_kernel *pk) {
  /* Close the guard (if any), the thread loop and the grid loop: the loop
   * nest is all a kernel here opens at depth 0. */
  while (pk->k->depth > 0)
    kir_end(pk->k);
}

kiln_status pw_launch(pw_kernel *pk) {
  KILN_ASSERT(pk->k->depth == 0 && "a loop or if left open");
  return lower_launch(pk->c, pk->k, pk->args, pk->node);
}

kiln_status pw_map(lower_ctx *c, const char *prefix, const ir_node *f,
                   const ir_node *n, const int *in, int n_in, int out,
                   pw_map_fn fn, const void *ctx) {
  pw_kernel pk;
  pw_begin(&pk, c, prefix, f, n);
  kir_buf **bufs = ARENA_ARRAY(c->a, kir_buf *, n_in);
  kir_var **x = ARENA_ARRAY(c->a, kir_var *, n_in);
  for (int j = 0; j < n_in; j++)
    bufs[j] = pw_in(&pk, arena_printf(c->a, "in%d", j), in[j]);
  kir_buf *y = pw_out(&pk, "out", out);
  kir_var *i = pw_loop(&pk, c->plan->tensors[out].count);
  for (int j = 0; j < n_in; j++) {
    KILN_ASSERT(c->plan->tensors[in[j]].count == c->plan->tensors[out].count);
    x[j] = kir_let(pk.k, arena_printf(c->a, "x%d", j),
                   kir_load(pk.k, bufs[j], pw_v(&pk, i)));
  }
  kir_store(pk.k, y, pw_v(&pk, i), fn(&pk, i, x, ctx));
  pw_loop_end(&pk);
  return pw_launch(&pk);
}

static kir_expr *map_identity(pw_kernel *pk, kir_var *i, kir_var *const *x,
                              const void *ctx) {
  return pw_v(pk, x[0]);
}

kiln_status pw_copy(lower_ctx *c, const char *prefix, const ir_node *f,
                    const ir_node *n, int in, int out) {
  const kir_tensor *t = c->plan->tensors;
  int root_in = t[in].alias >= 0 ? t[in].alias : in;
  int root_out = t[out].alias >= 0 ? t[out].alias : out;
  if (root_in == root_out)
    return KILN_OK; /* the driver made them one storage (a view) */
  return pw_map(c, prefix, f, n, &in, 1, out, map_identity, NULL);
}

void pw_reduce_begin(pw_kernel *pk, pw_reduce *rd, int out, int64_t m,
                     int64_t outer, int64_t len) {
  KILN_ASSERT(m > 0 && outer > 0 && len >= outer);
  *rd = (pw_reduce){.out = out, .m = m, .outer = outer, .parts = 1};
  int64_t parts = (len + PW_PART_LEN - 1) / PW_PART_LEN;
  int64_t most = (PW_SPLIT_THREADS + m - 1) / m;
  parts = parts < most ? parts : most;
  parts = parts < outer ? parts : outer;
  if (parts > 1) {
    rd->chunk = (outer + parts - 1) / parts;
    rd->parts = (outer + rd->chunk - 1) / rd->chunk; /* no empty slice */
  }
  lower_ctx *c = pk->c;
  if (rd->parts == 1) {
    rd->dst = pw_out(pk, "out", out);
  } else {
    int t = lower_scratch(c, arena_printf(c->a, "%s.partial", pk->node->name),
                          KIR_F32, m * rd->parts);
    rd->dst = pw_out(pk, "partial", t);
  }
  rd->e = pw_loop(pk, m * rd->parts);
  rd->j = rd->e;
  if (rd->parts > 1) {
    rd->j = kir_let(pk->k, "j", pw_digit(pk, rd->e, rd->parts, 0));
    rd->slice = kir_let(pk->k, "slice", pw_digit(pk, rd->e, 1, rd->parts));
  }
  rd->acc = kir_let(pk->k, "acc", pw_f(pk, 0));
}

/* The first loop of a split reduction runs over its slice only:
 * r = slice * chunk + r', guarded when the last slice is short. */
kir_var *pw_reduce_for(pw_kernel *pk, pw_reduce *rd, int64_t extent) {
  KILN_ASSERT(extent > 0);
  bool first = rd->open == 0;
  KILN_ASSERT(!first || extent == rd->outer);
  rd->open++;
  if (!first || rd->parts == 1)
    return kir_for(pk->k, KIR_LOOP_SERIAL, "r", pw_i(pk, extent));
  kir_var *rr = kir_for(pk->k, KIR_LOOP_SERIAL, "r", pw_i(pk, rd->chunk));
  kir_var *r = kir_let(
      pk->k, "r",
      pw_bin(pk, KIR_ADD,
             pw_bin(pk, KIR_MUL, pw_v(pk, rd->slice), pw_i(pk, rd->chunk)),
             pw_v(pk, rr)));
  if (rd->outer % rd->chunk != 0) {
    kir_if(pk->k, pw_bin(pk, KIR_LT, pw_v(pk, r), pw_i(pk, rd->outer)));
    rd->open++;
  }
  return r;
}

void pw_reduce_add(pw_kernel *pk, pw_reduce *rd, kir_expr *term) {
  kir_assign(pk->k, rd->acc, pw_bin(pk, KIR_ADD, pw_v(pk, rd->acc), term));
}

kiln_status pw_reduce_launch(pw_kernel *pk, pw_reduce *rd) {
  for (int i = 0; i < rd->open; i++)
    kir_end(pk->k);
  kir_store(pk->k, rd->dst, pw_v(pk, rd->e), pw_v(pk, rd->acc));
  pw_loop_end(pk);
  kiln_status st = pw_launch(pk);
  if (st || rd->parts == 1)
    return st;
  /* out[j] = the sum of j's partials, slice by slice */
  pw_kernel sk;
  lower_ctx *c = pk->c;
  sk = (pw_kernel){.c = c, .node = pk->node};
  sk.k = kir_kernel_new(c->a, arena_printf(c->a, "%s_sum", pk->k->name), 0);
  kir_buf *part = pw_in(&sk, "partial", pk->args[rd->dst->id]);
  kir_buf *out = pw_out(&sk, "out", rd->out);
  kir_var *j = pw_loop(&sk, rd->m);
  kir_var *acc = kir_let(sk.k, "acc", pw_f(&sk, 0));
  kir_var *p = kir_for(sk.k, KIR_LOOP_SERIAL, "p", pw_i(&sk, rd->parts));
  kir_expr *at = pw_bin(
      &sk, KIR_ADD, pw_bin(&sk, KIR_MUL, pw_v(&sk, j), pw_i(&sk, rd->parts)),
      pw_v(&sk, p));
  kir_assign(sk.k, acc,
             pw_bin(&sk, KIR_ADD, pw_v(&sk, acc), kir_load(sk.k, part, at)));
  kir_end(sk.k);
  kir_store(sk.k, out, pw_v(&sk, j), pw_v(&sk, acc));
  pw_loop_end(&sk);
  return pw_launch(&sk);
}

kir_expr *pw_digit(pw_kernel *pk, kir_var *i, int64_t stride, int64_t extent) {
  kir_expr *e = pw_v(pk, i);
  if (stride != 1)
    e = pw_bin(pk, KIR_DIV, e, pw_i(pk, stride));
  if (extent > 0)
    e = pw_bin(pk, KIR_MOD, e, pw_i(pk, extent));
  return e;
}

/* ---- attributes and views ---- */

const ir_attr *pw_attr(const ir_node *f, const char *name) {
  int k = ir_op_attr_index(f->op, name);
  KILN_ASSERT(k >= 0);
  return &f->attrs[k];
}

bool pw_sym_is(const ir_node *f, const char *name, const char *word) {
  return strcmp(pw_attr(f, name)->sym, word) == 0;
}

int pw_axis(const ir_node *f, int rank) {
  int64_t a = pw_attr(f, "axis")->i;
  if (a < 0)
    a += rank;
  KILN_ASSERT(a >= 0 && a < rank && "the shape rule checked the axis");
  return (int)a;
}

void pw_nc_inner(lower_ctx *c, const ir_node *v, int64_t *n, int64_t *ch,
                 int64_t *inner) {
  int64_t d[IR_MAX_DIMS];
  lower_dims(c, v, d);
  *n = d[0];
  *ch = v->shape.rank > 1 ? d[1] : 1;
  *inner = lower_numel(c, v) / (*n * *ch);
}

void pw_axis_split(lower_ctx *c, const ir_node *v, int axis, int64_t *outer,
                   int64_t *len, int64_t *inner) {
  int64_t d[IR_MAX_DIMS];
  lower_dims(c, v, d);
  *outer = *inner = 1;
  for (int i = 0; i < axis; i++)
    *outer *= d[i];
  *len = d[axis];
  for (int i = axis + 1; i < v->shape.rank; i++)
    *inner *= d[i];
}

/* ---- dropout ---- */

/* Inverted dropout with the reference's mask (ref_dropout.c):
 *   keep(i) = philox_uniform(seed, (step << 32) | layer id, i) >= p
 * The uniform is m * 2^-24 exactly, so comparing it in f32 with
 * ceil(p * 2^24) * 2^-24 (also exact in f32) is the reference's exact
 * comparison with p in double; comparing with (float)p would not be.
 * Forward (x) and backward (dy) apply the same mask and scale; no mask
 * tensor exists. */
typedef struct dropout_ctx {
  const ir_node *f;
  double p;
} dropout_ctx;

static kir_expr *map_dropout(pw_kernel *pk, kir_var *i, kir_var *const *x,
                             const void *vctx) {
  const dropout_ctx *dc = vctx;
  kir_kernel *k = pk->k;
  kir_var *seed = kir_scalar_param(k, KIR_SCALAR_SEED);
  kir_var *step = kir_scalar_param(k, KIR_SCALAR_STEP);
  kir_expr *stream =
      pw_bin(pk, KIR_OR, pw_bin(pk, KIR_SHL, pw_v(pk, step), pw_i(pk, 32)),
             pw_i(pk, dc->f->id));
  kir_expr *u = kir_philox(k, pw_v(pk, seed), stream, pw_v(pk, i));
  double threshold = ceil(dc->p * 16777216.0) / 16777216.0;
  return kir_select(
      k, pw_bin(pk, KIR_LE, pw_f(pk, threshold), u),
      pw_bin(pk, KIR_MUL, pw_v(pk, x[0]), pw_f(pk, 1.0 / (1.0 - dc->p))),
      pw_f(pk, 0));
}

static kiln_status dropout(lower_ctx *c, const char *prefix, const ir_node *f,
                           const ir_node *n, int in, int out) {
  dropout_ctx dc = {.f = f, .p = pw_attr(f, "p")->f};
  KILN_ASSERT(dc.p >= 0 && dc.p < 1);
  /* Off outside training, and p = 0 keeps everything with scale 1. */
  if (!c->training || dc.p == 0)
    return pw_copy(c, prefix, f, n, in, out);
  return pw_map(c, prefix, f, n, &in, 1, out, map_dropout, &dc);
}

/* ---- the rules ---- */

kiln_status lower_pointwise_fwd(lower_ctx *c, const ir_node *n) {
  switch (n->op) {
  case IR_OP_RELU:
  case IR_OP_LEAKY_RELU:
  case IR_OP_ELU:
  case IR_OP_GELU:
  case IR_OP_SIGMOID:
  case IR_OP_TANH:
    return pw_act_fwd(c, n);
  case IR_OP_PRELU:
    return pw_prelu_fwd(c, n);
  case IR_OP_MAXOUT:
    return pw_maxout_fwd(c, n);
  case IR_OP_SOFTMAX:
    return pw_softmax_fwd(c, n);
  case IR_OP_ADD:
  case IR_OP_MUL:
    return pw_binary_fwd(c, n);
  case IR_OP_CONCAT:
    return pw_concat_fwd(c, n);
  case IR_OP_FLATTEN:
  case IR_OP_RESHAPE:
    return pw_copy(c, "copy_fwd", n, n, lower_node_tensor(c, n->inputs[0]),
                   lower_node_tensor(c, n));
  case IR_OP_DROPOUT:
    return dropout(c, "dropout_fwd", n, n, lower_node_tensor(c, n->inputs[0]),
                   lower_node_tensor(c, n));
  default:
    KILN_ASSERT(!"not a pointwise op");
    return KILN_ERR_INTERNAL;
  }
}

kiln_status lower_pointwise_bwd(lower_ctx *c, const ir_node *gn) {
  const ir_node *f = gn->fwd;
  KILN_ASSERT(gn->op == IR_OP_GRAD && f && gn->n_inputs > 0);
  switch (f->op) {
  case IR_OP_RELU:
  case IR_OP_LEAKY_RELU:
  case IR_OP_ELU:
  case IR_OP_GELU:
  case IR_OP_SIGMOID:
  case IR_OP_TANH:
    return pw_act_bwd(c, gn);
  case IR_OP_PRELU:
    return pw_prelu_bwd(c, gn);
  case IR_OP_MAXOUT:
    return pw_maxout_bwd(c, gn);
  case IR_OP_SOFTMAX:
    return pw_softmax_bwd(c, gn);
  case IR_OP_ADD:
  case IR_OP_MUL:
    return pw_binary_bwd(c, gn);
  case IR_OP_CONCAT:
    return pw_concat_bwd(c, gn);
  case IR_OP_FLATTEN:
  case IR_OP_RESHAPE:
    /* The gradient has the input's shape and dy's elements in the same
     * row-major order. */
    return pw_copy(c, "copy_bwd", f, gn, lower_node_tensor(c, gn->inputs[0]),
                   lower_node_tensor(c, gn));
  case IR_OP_DROPOUT:
    return dropout(c, "dropout_bwd", f, gn, lower_node_tensor(c, gn->inputs[0]),
                   lower_node_tensor(c, gn));
  default:
    KILN_ASSERT(!"not a pointwise op");
    return KILN_ERR_INTERNAL;
  }
}
