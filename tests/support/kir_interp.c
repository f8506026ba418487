/* kir_interp.c — a tree-walking interpreter of the kernel IR (see
 * kir_interp.h for the semantics it defines). Slow on purpose: clarity and
 * checks (bounds, poison, undefined integer operations) over speed. */
#include "tests/support/kir_interp.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A scalar value: integers and bool in i (normalised to their type's
 * range), f32 in f. */
typedef struct ival {
  int64_t i;
  float f;
} ival;

typedef struct ictx {
  const kir_kernel *k;
  void **mem;    /* per buffer: its storage */
  ival *vars;    /* per variable */
  int64_t tid;   /* the thread loop's variable: selects LOCAL copies */
  int64_t lanes; /* copies of each LOCAL buffer */
  const kir_stmt *stmt;
  kiln_error *err;
  bool failed;
} ictx;

KILN_PRINTF(2, 3)
static void fail(ictx *c, const char *fmt, ...) {
  if (c->failed)
    return;
  c->failed = true;
  strbuf msg;
  strbuf_init(&msg);
  strbuf_printf(&msg, "kernel '%s': ", c->k->name);
  va_list ap;
  va_start(ap, fmt);
  strbuf_vprintf(&msg, fmt, ap);
  va_end(ap);
  if (c->stmt) {
    strbuf_puts(&msg, " at: ");
    kir_print_stmt_line(&msg, c->stmt);
  }
  c->err->status = KILN_ERR_INTERNAL;
  snprintf(c->err->message, sizeof c->err->message, "%s", msg.data);
  strbuf_free(&msg);
}

/* Wraps an integer to t's range (two's complement). */
static int64_t norm(kir_type t, int64_t v) {
  switch (t) {
  case KIR_BOOL:
    return v != 0;
  case KIR_I32:
    return (int64_t)(int32_t)(uint32_t)(uint64_t)v;
  case KIR_U32:
    return (int64_t)(uint32_t)(uint64_t)v;
  default:
    return v;
  }
}

/* ---- memory ---- */

/* The element offset of b[index] for the current thread, or -1. */
static int64_t offset(ictx *c, const kir_buf *b, int64_t index) {
  if (index < 0 || index >= b->count) {
    fail(c, "index %lld out of bounds of '%s[%lld]'", (long long)index, b->name,
         (long long)b->count);
    return -1;
  }
  if (b->space == KIR_LOCAL)
    return c->tid * b->count + index;
  return index;
}

static ival mem_read(ictx *c, const kir_buf *b, int64_t index) {
  ival v = {0, 0};
  int64_t o = offset(c, b, index);
  if (o < 0)
    return v;
  void *p = c->mem[b->id];
  switch (b->type) {
  case KIR_F32:
    v.f = ((float *)p)[o];
    break;
  case KIR_I32:
    v.i = ((int32_t *)p)[o];
    break;
  case KIR_I64:
    v.i = ((int64_t *)p)[o];
    break;
  case KIR_U32:
    v.i = ((uint32_t *)p)[o];
    break;
  default:
    v.i = ((uint8_t *)p)[o] != 0;
    break;
  }
  return v;
}

static void mem_write(ictx *c, const kir_buf *b, int64_t index, ival v) {
  int64_t o = offset(c, b, index);
  if (o < 0)
    return;
  void *p = c->mem[b->id];
  switch (b->type) {
  case KIR_F32:
    ((float *)p)[o] = v.f;
    break;
  case KIR_I32:
    ((int32_t *)p)[o] = (int32_t)v.i;
    break;
  case KIR_I64:
    ((int64_t *)p)[o] = v.i;
    break;
  case KIR_U32:
    ((uint32_t *)p)[o] = (uint32_t)v.i;
    break;
  default:
    ((uint8_t *)p)[o] = (uint8_t)(v.i != 0);
    break;
  }
}

/* Fills n elements of type t with poison. */
static void poison(void *p, kir_type t, int64_t n) {
  if (t == KIR_F32) {
    for (int64_t i = 0; i < n; i++)
      ((float *)p)[i] = NAN;
  } else {
    memset(p, 0x5a, (size_t)(n * kir_type_size(t)));
  }
}

static void poison_block(ictx *c) {
  for (int i = 0; i < c->k->n_bufs; i++) {
    const kir_buf *b = c->k->bufs[i];
    if (b->space != KIR_GLOBAL)
      poison(c->mem[i], b->type,
             b->space == KIR_LOCAL ? b->count * c->lanes : b->count);
  }
}

/* ---- expressions ---- */

static ival eval(ictx *c, const kir_expr *e);

static ival f32v(float f) {
  return (ival){0, f};
}

static ival intv(kir_type t, int64_t i) {
  return (ival){norm(t, i), 0};
}

static ival eval_cast(ictx *c, kir_type to, kir_type from, ival x) {
  if (to == KIR_F32) {
    if (from == KIR_F32)
      return x;
    return f32v(from == KIR_U32 ? (float)(uint32_t)x.i : (float)x.i);
  }
  if (from != KIR_F32)
    return intv(to, x.i);
  if (to == KIR_BOOL)
    return intv(to, x.f != 0.0f);
  /* f32 -> integer truncates; out of range is undefined in C and LLVM */
  double lo = to == KIR_I32 ? -2147483648.0 : to == KIR_U32 ? 0.0 : -0x1p63;
  double hi = to == KIR_I32   ? 2147483648.0
              : to == KIR_U32 ? 4294967296.0
                              : 0x1p63;
  double t = trunc((double)x.f);
  if (!(t >= lo && t < hi)) {
    fail(c, "cast of %g to %s is out of range", (double)x.f, kir_type_name(to));
    return intv(to, 0);
  }
  return intv(to, (int64_t)t);
}

static ival eval_f32(ictx *c, kir_op op, const float *a) {
  switch (op) {
  case KIR_NEG:
    return f32v(-a[0]);
  case KIR_ABS:
    return f32v(fabsf(a[0]));
  case KIR_EXP:
    return f32v(expf(a[0]));
  case KIR_LOG:
    return f32v(logf(a[0]));
  case KIR_TANH:
    return f32v(tanhf(a[0]));
  case KIR_ERF:
    return f32v(erff(a[0]));
  case KIR_SQRT:
    return f32v(sqrtf(a[0]));
  case KIR_RSQRT:
    return f32v(1.0f / sqrtf(a[0]));
  case KIR_FLOOR:
    return f32v(floorf(a[0]));
  case KIR_ADD:
    return f32v(a[0] + a[1]);
  case KIR_SUB:
    return f32v(a[0] - a[1]);
  case KIR_MUL:
    return f32v(a[0] * a[1]);
  case KIR_DIV:
    return f32v(a[0] / a[1]);
  case KIR_MIN:
    return f32v(fminf(a[0], a[1]));
  case KIR_MAX:
    return f32v(fmaxf(a[0], a[1]));
  case KIR_POW:
    return f32v(powf(a[0], a[1]));
  case KIR_LT:
    return intv(KIR_BOOL, a[0] < a[1]);
  case KIR_LE:
    return intv(KIR_BOOL, a[0] <= a[1]);
  case KIR_EQ:
    return intv(KIR_BOOL, a[0] == a[1]);
  case KIR_NE:
    return intv(KIR_BOOL, a[0] != a[1]);
  default:
    fail(c, "op %s on f32", kir_op_name(op));
    return f32v(0);
  }
}

static ival eval_int(ictx *c, kir_op op, kir_type t, const int64_t *a) {
  uint64_t x = (uint64_t)a[0], y = (uint64_t)a[1];
  int width = t == KIR_I64 ? 64 : 32;
  switch (op) {
  case KIR_NEG:
    return intv(t, (int64_t)(0 - x));
  case KIR_NOT:
    return intv(t, !a[0]);
  case KIR_ABS:
    return intv(t, a[0] < 0 ? (int64_t)(0 - x) : a[0]);
  case KIR_ADD:
    return intv(t, (int64_t)(x + y));
  case KIR_SUB:
    return intv(t, (int64_t)(x - y));
  case KIR_MUL:
    return intv(t, (int64_t)(x * y));
  case KIR_DIV:
  case KIR_MOD:
    if (a[1] == 0) {
      fail(c, "integer %s by zero", kir_op_name(op));
      return intv(t, 0);
    }
    if (a[0] == INT64_MIN && a[1] == -1) /* wraps, as the hardware does */
      return intv(t, op == KIR_DIV ? INT64_MIN : 0);
    return intv(t, op == KIR_DIV ? a[0] / a[1] : a[0] % a[1]);
  case KIR_MIN:
    return intv(t, a[0] < a[1] ? a[0] : a[1]);
  case KIR_MAX:
    return intv(t, a[0] > a[1] ? a[0] : a[1]);
  case KIR_AND:
    return intv(t, (int64_t)(x & y));
  case KIR_OR:
    return intv(t, (int64_t)(x | y));
  case KIR_XOR:
    return intv(t, (int64_t)(x ^ y));
  case KIR_SHL:
  case KIR_SHR:
    if (a[1] < 0 || a[1] >= width) {
      fail(c, "shift of a %s by %lld", kir_type_name(t), (long long)a[1]);
      return intv(t, 0);
    }
    if (op == KIR_SHL)
      return intv(t, (int64_t)(x << a[1]));
    /* logical for u32 (stored non-negative), arithmetic for signed */
    return intv(t, a[0] >> a[1]);
  case KIR_LT:
    return intv(KIR_BOOL, a[0] < a[1]);
  case KIR_LE:
    return intv(KIR_BOOL, a[0] <= a[1]);
  case KIR_EQ:
    return intv(KIR_BOOL, a[0] == a[1]);
  case KIR_NE:
    return intv(KIR_BOOL, a[0] != a[1]);
  default:
    fail(c, "op %s on %s", kir_op_name(op), kir_type_name(t));
    return intv(t, 0);
  }
}

static ival eval(ictx *c, const kir_expr *e) {
  if (c->failed)
    return (ival){0, 0};
  switch (e->op) {
  case KIR_CONST:
    return e->type == KIR_F32 ? f32v(e->f) : intv(e->type, e->i);
  case KIR_VAR:
    return c->vars[e->var->id];
  case KIR_LOAD:
    return mem_read(c, e->buf, eval(c, e->a[0]).i);
  case KIR_CAST:
    return eval_cast(c, e->type, e->a[0]->type, eval(c, e->a[0]));
  case KIR_SELECT: {
    ival cond = eval(c, e->a[0]), a = eval(c, e->a[1]), b = eval(c, e->a[2]);
    return cond.i ? a : b;
  }
  case KIR_PHILOX: {
    ival s = eval(c, e->a[0]), st = eval(c, e->a[1]), ix = eval(c, e->a[2]);
    return f32v(philox_uniform((uint64_t)s.i, (uint64_t)st.i, (uint64_t)ix.i));
  }
  default:
    break;
  }
  /* unary and binary ops (a[1] is set exactly for the binary ones) */
  ival v[2] = {eval(c, e->a[0]), {0, 0}};
  if (e->a[1])
    v[1] = eval(c, e->a[1]);
  kir_type t = e->a[0]->type; /* operand type (comparisons: bool result) */
  if (t == KIR_I64) {         /* index arithmetic: the hot path, inline */
    uint64_t x = (uint64_t)v[0].i, y = (uint64_t)v[1].i;
    switch (e->op) {
    case KIR_ADD:
      return (ival){(int64_t)(x + y), 0};
    case KIR_SUB:
      return (ival){(int64_t)(x - y), 0};
    case KIR_MUL:
      return (ival){(int64_t)(x * y), 0};
    case KIR_LT:
      return (ival){v[0].i < v[1].i, 0};
    case KIR_LE:
      return (ival){v[0].i <= v[1].i, 0};
    case KIR_EQ:
      return (ival){v[0].i == v[1].i, 0};
    case KIR_DIV:
      if (v[1].i > 0)
        return (ival){v[0].i / v[1].i, 0};
      break;
    case KIR_MOD:
      if (v[1].i > 0)
        return (ival){v[0].i % v[1].i, 0};
      break;
    default:
      break;
    }
  } else if (t == KIR_F32 && e->a[1]) {
    switch (e->op) {
    case KIR_ADD:
      return f32v(v[0].f + v[1].f);
    case KIR_MUL:
      return f32v(v[0].f * v[1].f);
    default:
      break;
    }
  }
  if (t == KIR_F32) {
    float f[2] = {v[0].f, v[1].f};
    return eval_f32(c, e->op, f);
  }
  int64_t i[2] = {v[0].i, v[1].i};
  return eval_int(c, e->op, t, i);
}

/* ---- statements ---- */

static void exec(ictx *c, const kir_stmt *s);

static void exec_seq(ictx *c, const kir_stmt *seq) {
  for (int i = 0; i < seq->n && !c->failed; i++)
    exec(c, seq->body[i]);
}

static void exec_block_reduce(ictx *c, const kir_stmt *s) {
  const kir_buf *src = s->src;
  int64_t saved = c->tid;
  c->tid = 0;
  ival acc = mem_read(c, src, 0);
  for (int64_t t = 1; t < c->lanes && !c->failed; t++) {
    c->tid = t;
    ival x = mem_read(c, src, 0);
    if (src->type == KIR_F32)
      acc.f = s->reduce_op == KIR_ADD ? acc.f + x.f : fmaxf(acc.f, x.f);
    else if (s->reduce_op == KIR_ADD)
      acc = intv(src->type, (int64_t)((uint64_t)acc.i + (uint64_t)x.i));
    else
      acc = x.i > acc.i ? x : acc;
  }
  c->tid = saved;
  mem_write(c, s->buf, 0, acc);
}

static void exec_mma(ictx *c, const kir_stmt *s) {
  float *C = c->mem[s->mma[0]->id];
  const float *A = c->mem[s->mma[1]->id], *B = c->mem[s->mma[2]->id];
  int M = s->mma_m, N = s->mma_n, K = s->mma_k;
  for (int m = 0; m < M; m++)
    for (int n = 0; n < N; n++) {
      float acc = C[m * N + n];
      for (int k = 0; k < K; k++)
        acc += A[m * K + k] * B[k * N + n];
      C[m * N + n] = acc;
    }
}

static void exec(ictx *c, const kir_stmt *s) {
  c->stmt = s;
  switch (s->kind) {
  case KIR_S_SEQ:
    exec_seq(c, s);
    return;
  case KIR_S_LOOP: {
    int64_t n = eval(c, s->extent).i;
    for (int64_t i = 0; i < n && !c->failed; i++) {
      c->vars[s->var->id] = intv(KIR_I64, i);
      if (s->loop_kind == KIR_LOOP_GRID)
        poison_block(c);
      if (s->loop_kind == KIR_LOOP_THREAD)
        c->tid = i;
      exec_seq(c, s->then_);
    }
    if (s->loop_kind == KIR_LOOP_THREAD)
      c->tid = 0;
    return;
  }
  case KIR_S_LET:
  case KIR_S_ASSIGN:
    c->vars[s->var->id] = eval(c, s->value);
    return;
  case KIR_S_STORE: {
    int64_t i = eval(c, s->index).i;
    ival v = eval(c, s->value);
    if (!c->failed)
      mem_write(c, s->buf, i, v);
    return;
  }
  case KIR_S_ATOMIC_ADD: {
    int64_t i = eval(c, s->index).i;
    ival v = eval(c, s->value);
    if (c->failed)
      return;
    ival old = mem_read(c, s->buf, i);
    mem_write(c, s->buf, i, f32v(old.f + v.f));
    return;
  }
  case KIR_S_IF: {
    bool cond = eval(c, s->cond).i != 0;
    if (c->failed)
      return;
    if (cond)
      exec_seq(c, s->then_);
    else if (s->else_)
      exec_seq(c, s->else_);
    return;
  }
  case KIR_S_BARRIER:
    return; /* each thread loop already ran to completion */
  case KIR_S_BLOCK_REDUCE:
    exec_block_reduce(c, s);
    return;
  case KIR_S_MMA:
    exec_mma(c, s);
    return;
  }
}

kiln_status kir_interp_run(const kir_kernel *k, void *const *bufs,
                           const kir_scalars *s, kiln_error *err) {
  kiln_status st = kir_verify(k, err);
  if (st != KILN_OK)
    return st;
  ictx c = {.k = k, .err = err};
  c.lanes = k->block_threads > 0 ? k->block_threads : 1;
  c.mem = calloc((size_t)k->n_bufs + 1, sizeof *c.mem);
  c.vars = calloc((size_t)k->n_vars + 1, sizeof *c.vars);
  KILN_ASSERT(c.mem && c.vars);
  int arg = 0;
  for (int i = 0; i < k->n_bufs; i++) {
    const kir_buf *b = k->bufs[i];
    if (b->space == KIR_GLOBAL) {
      c.mem[i] = bufs[arg++];
      continue;
    }
    int64_t n = b->space == KIR_LOCAL ? b->count * c.lanes : b->count;
    c.mem[i] = malloc((size_t)(n * kir_type_size(b->type)));
    KILN_ASSERT(c.mem[i]);
  }
  for (int i = 0; i < k->n_vars; i++) {
    const kir_var *v = k->vars[i];
    if (v->role == KIR_SCALAR_SEED)
      c.vars[i].i = s->seed;
    else if (v->role == KIR_SCALAR_STEP)
      c.vars[i].i = s->step;
    else if (v->role == KIR_SCALAR_LR)
      c.vars[i].f = s->lr;
  }
  poison_block(&c); /* the one block of a kernel without grid loops */
  exec_seq(&c, k->body);
  for (int i = 0; i < k->n_bufs; i++)
    if (k->bufs[i]->space != KIR_GLOBAL)
      free(c.mem[i]);
  free(c.mem);
  free(c.vars);
  return c.failed ? KILN_ERR_INTERNAL : KILN_OK;
}
