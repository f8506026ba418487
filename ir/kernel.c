/* kernel.c — the kernel IR builder (see kernel.h).
 *
 * Every expression gets its type when it is built, from the types of its
 * operands; lowering code that combines mismatched types (f32 + i64, a
 * non-bool condition) has a bug, so the builder aborts with a message that
 * names the op and the types instead of returning an error. kir_verify
 * re-checks the same rules (and the structural ones) on finished kernels,
 * which may also have been built or edited by other means.
 *
 * Statements are appended at a cursor: k->open[k->depth] is the SEQ being
 * filled (open[0] is the body); kir_for/kir_if push, kir_end pops. */
#include "ir/kernel.h"

#include <stdio.h>
#include <string.h>

/* ---- names, sizes, arities ---- */

static const char *const type_names[KIR_TYPE_COUNT] = {
    [KIR_BOOL] = "bool", [KIR_I32] = "i32", [KIR_I64] = "i64",
    [KIR_U32] = "u32",   [KIR_F32] = "f32",
};

static const int type_sizes[KIR_TYPE_COUNT] = {
    [KIR_BOOL] = 1, [KIR_I32] = 4, [KIR_I64] = 8, [KIR_U32] = 4, [KIR_F32] = 4,
};

const char *kir_type_name(kir_type t) {
  KILN_ASSERT(t >= 0 && t < KIR_TYPE_COUNT);
  return type_names[t];
}

int kir_type_size(kir_type t) {
  KILN_ASSERT(t >= 0 && t < KIR_TYPE_COUNT);
  return type_sizes[t];
}

bool kir_type_is_float(kir_type t) {
  return t == KIR_F32;
}

static const struct {
  const char *name;
  int arity;
} op_info[KIR_OP_COUNT] = {
    [KIR_CONST] = {"const", 0},   [KIR_VAR] = {"var", 0},
    [KIR_LOAD] = {"load", 1},     [KIR_NEG] = {"neg", 1},
    [KIR_NOT] = {"not", 1},       [KIR_ABS] = {"abs", 1},
    [KIR_EXP] = {"exp", 1},       [KIR_LOG] = {"log", 1},
    [KIR_TANH] = {"tanh", 1},     [KIR_ERF] = {"erf", 1},
    [KIR_SQRT] = {"sqrt", 1},     [KIR_RSQRT] = {"rsqrt", 1},
    [KIR_FLOOR] = {"floor", 1},   [KIR_ADD] = {"add", 2},
    [KIR_SUB] = {"sub", 2},       [KIR_MUL] = {"mul", 2},
    [KIR_DIV] = {"div", 2},       [KIR_MOD] = {"mod", 2},
    [KIR_MIN] = {"min", 2},       [KIR_MAX] = {"max", 2},
    [KIR_POW] = {"pow", 2},       [KIR_AND] = {"and", 2},
    [KIR_OR] = {"or", 2},         [KIR_XOR] = {"xor", 2},
    [KIR_SHL] = {"shl", 2},       [KIR_SHR] = {"shr", 2},
    [KIR_LT] = {"lt", 2},         [KIR_LE] = {"le", 2},
    [KIR_EQ] = {"eq", 2},         [KIR_NE] = {"ne", 2},
    [KIR_SELECT] = {"select", 3}, [KIR_CAST] = {"cast", 1},
    [KIR_PHILOX] = {"philox", 3},
};

const char *kir_op_name(kir_op op) {
  KILN_ASSERT(op >= 0 && op < KIR_OP_COUNT && op_info[op].name);
  return op_info[op].name;
}

int kir_op_arity(kir_op op) {
  KILN_ASSERT(op >= 0 && op < KIR_OP_COUNT && op_info[op].name);
  return op_info[op].arity;
}

/* ---- the type rules (shared with kernel_verify.c through kir_op_result)
 * ---- */

static bool is_int(kir_type t) {
  return t == KIR_I32 || t == KIR_I64 || t == KIR_U32;
}

/* The result type of `op` on operand types t[0..arity), or -1 when the
 * operands do not fit the op. CONST, VAR, LOAD and CAST carry their type
 * themselves and are not handled here. */
int kir_op_result(kir_op op, const kir_type *t) {
  switch (op) {
  case KIR_NEG:
    return t[0] == KIR_F32 || t[0] == KIR_I32 || t[0] == KIR_I64 ? (int)t[0]
                                                                 : -1;
  case KIR_ABS:
    return t[0] == KIR_F32 || t[0] == KIR_I32 || t[0] == KIR_I64 ? (int)t[0]
                                                                 : -1;
  case KIR_NOT:
    return t[0] == KIR_BOOL ? KIR_BOOL : -1;
  case KIR_EXP:
  case KIR_LOG:
  case KIR_TANH:
  case KIR_ERF:
  case KIR_SQRT:
  case KIR_RSQRT:
  case KIR_FLOOR:
    return t[0] == KIR_F32 ? KIR_F32 : -1;
  case KIR_ADD:
  case KIR_SUB:
  case KIR_MUL:
  case KIR_DIV:
  case KIR_MIN:
  case KIR_MAX:
    return t[0] == t[1] && t[0] != KIR_BOOL ? (int)t[0] : -1;
  case KIR_MOD:
  case KIR_SHL:
  case KIR_SHR:
    return t[0] == t[1] && is_int(t[0]) ? (int)t[0] : -1;
  case KIR_POW:
    return t[0] == KIR_F32 && t[1] == KIR_F32 ? KIR_F32 : -1;
  case KIR_AND:
  case KIR_OR:
  case KIR_XOR:
    return t[0] == t[1] && t[0] != KIR_F32 ? (int)t[0] : -1;
  case KIR_LT:
  case KIR_LE:
    return t[0] == t[1] && t[0] != KIR_BOOL ? KIR_BOOL : -1;
  case KIR_EQ:
  case KIR_NE:
    return t[0] == t[1] ? KIR_BOOL : -1;
  case KIR_SELECT:
    return t[0] == KIR_BOOL && t[1] == t[2] ? (int)t[1] : -1;
  case KIR_PHILOX:
    return t[0] == KIR_I64 && t[1] == KIR_I64 && t[2] == KIR_I64 ? KIR_F32 : -1;
  default:
    return -1;
  }
}

/* Aborts with the op and the operand types: a lowering bug. */
KILN_NORETURN static void type_fail(const char *what, int n,
                                    const kir_type *t) {
  char msg[256];
  int len = snprintf(msg, sizeof msg, "kernel IR: %s on", what);
  for (int i = 0; i < n && len > 0 && (size_t)len < sizeof msg; i++)
    len += snprintf(msg + len, sizeof msg - (size_t)len, "%s %s", i ? "," : "",
                    kir_type_name(t[i]));
  support_assert_fail(__FILE__, __LINE__, msg);
}

/* ---- kernels, buffers, variables ---- */

static kir_stmt *new_seq(kir_kernel *k) {
  kir_stmt *s = ARENA_NEW(k->a, kir_stmt);
  s->kind = KIR_S_SEQ;
  return s;
}

kir_kernel *kir_kernel_new(arena *a, const char *name, int block_threads) {
  KILN_ASSERT(name && block_threads >= 0);
  kir_kernel *k = ARENA_NEW(a, kir_kernel);
  k->a = a;
  k->name = arena_strdup(a, name);
  k->block_threads = block_threads;
  k->body = new_seq(k);
  k->open[0] = k->body;
  k->depth = 0;
  return k;
}

static kir_buf *add_buf(kir_kernel *k, const char *name, kir_type t,
                        kir_space space, int64_t count, bool read_only) {
  KILN_ASSERT(name && t >= 0 && t < KIR_TYPE_COUNT && count > 0);
  kir_buf *b = ARENA_NEW(k->a, kir_buf);
  b->name = arena_strdup(k->a, name);
  b->type = t;
  b->space = space;
  b->count = count;
  b->read_only = read_only;
  ARENA_PUSH(k->a, k->bufs, k->n_bufs, k->cap_bufs, b);
  /* GLOBAL buffers are the kernel's arguments and come first: a global
   * declared after a shared/local one moves in front of those. */
  if (space == KIR_GLOBAL) {
    int i = k->n_bufs - 1;
    while (i > 0 && k->bufs[i - 1]->space != KIR_GLOBAL) {
      k->bufs[i] = k->bufs[i - 1];
      i--;
    }
    k->bufs[i] = b;
  }
  for (int i = 0; i < k->n_bufs; i++)
    k->bufs[i]->id = i;
  return b;
}

kir_buf *kir_global(kir_kernel *k, const char *name, kir_type t, int64_t count,
                    bool read_only) {
  return add_buf(k, name, t, KIR_GLOBAL, count, read_only);
}

kir_buf *kir_shared(kir_kernel *k, const char *name, kir_type t,
                    int64_t count) {
  return add_buf(k, name, t, KIR_SHARED, count, false);
}

kir_buf *kir_local(kir_kernel *k, const char *name, kir_type t, int64_t count) {
  return add_buf(k, name, t, KIR_LOCAL, count, false);
}

/* Variable names are unique in a kernel (a second "i" becomes "i_3"), so
 * the printed form and rendered code never depend on shadowing. */
static kir_var *add_var(kir_kernel *k, const char *name, kir_type t,
                        kir_scalar_role role) {
  KILN_ASSERT(name && name[0]);
  const char *unique = name;
  for (int i = 0; i < k->n_vars; i++)
    if (strcmp(k->vars[i]->name, name) == 0) {
      unique = arena_printf(k->a, "%s_%d", name, k->n_vars);
      break;
    }
  kir_var *v = ARENA_NEW(k->a, kir_var);
  v->id = k->n_vars;
  v->name = arena_strdup(k->a, unique);
  v->type = t;
  v->role = role;
  ARENA_PUSH(k->a, k->vars, k->n_vars, k->cap_vars, v);
  return v;
}

kir_var *kir_scalar_param(kir_kernel *k, kir_scalar_role role) {
  KILN_ASSERT(role > KIR_SCALAR_NONE && role < KIR_SCALAR_ROLE_COUNT);
  for (int i = 0; i < k->n_vars; i++)
    if (k->vars[i]->role == role)
      return k->vars[i];
  static const char *const names[KIR_SCALAR_ROLE_COUNT] = {
      [KIR_SCALAR_SEED] = "seed",
      [KIR_SCALAR_STEP] = "step",
      [KIR_SCALAR_LR] = "lr",
  };
  return add_var(k, names[role], role == KIR_SCALAR_LR ? KIR_F32 : KIR_I64,
                 role);
}

/* ---- expressions ---- */

static kir_expr *new_expr(kir_kernel *k, kir_op op, kir_type t) {
  kir_expr *e = ARENA_NEW(k->a, kir_expr);
  e->op = op;
  e->type = t;
  return e;
}

kir_expr *kir_int(kir_kernel *k, kir_type t, int64_t v) {
  if (t == KIR_F32)
    type_fail("integer constant", 1, &t);
  /* a constant that does not fit its type is a lowering bug, not a value
   * to wrap silently */
  KILN_ASSERT((t != KIR_I32 || (v >= INT32_MIN && v <= INT32_MAX)) &&
              (t != KIR_U32 || (v >= 0 && v <= (int64_t)UINT32_MAX)) &&
              "integer constant out of its type's range");
  kir_expr *e = new_expr(k, KIR_CONST, t);
  e->i = t == KIR_BOOL ? v != 0 : v;
  return e;
}

kir_expr *kir_i64(kir_kernel *k, int64_t v) {
  return kir_int(k, KIR_I64, v);
}

kir_expr *kir_f32(kir_kernel *k, float v) {
  kir_expr *e = new_expr(k, KIR_CONST, KIR_F32);
  e->f = v;
  return e;
}

kir_expr *kir_bool(kir_kernel *k, bool v) {
  return kir_int(k, KIR_BOOL, v);
}

kir_expr *kir_ref(kir_kernel *k, kir_var *v) {
  KILN_ASSERT(v && v->id < k->n_vars && k->vars[v->id] == v);
  kir_expr *e = new_expr(k, KIR_VAR, v->type);
  e->var = v;
  return e;
}

kir_expr *kir_load(kir_kernel *k, kir_buf *b, kir_expr *index) {
  KILN_ASSERT(b && index && b->id < k->n_bufs && k->bufs[b->id] == b);
  if (!is_int(index->type))
    type_fail("load index", 1, &index->type);
  kir_expr *e = new_expr(k, KIR_LOAD, b->type);
  e->buf = b;
  e->a[0] = index;
  return e;
}

static kir_expr *build_op(kir_kernel *k, kir_op op, int n, kir_expr **args) {
  KILN_ASSERT(kir_op_arity(op) == n);
  kir_type t[3];
  for (int i = 0; i < n; i++) {
    KILN_ASSERT(args[i]);
    t[i] = args[i]->type;
  }
  int r = kir_op_result(op, t);
  if (r < 0)
    type_fail(kir_op_name(op), n, t);
  kir_expr *e = new_expr(k, op, (kir_type)r);
  for (int i = 0; i < n; i++)
    e->a[i] = args[i];
  return e;
}

kir_expr *kir_un(kir_kernel *k, kir_op op, kir_expr *a) {
  KILN_ASSERT(op >= KIR_NEG && op <= KIR_FLOOR);
  return build_op(k, op, 1, &a);
}

kir_expr *kir_bin(kir_kernel *k, kir_op op, kir_expr *a, kir_expr *b) {
  KILN_ASSERT(op >= KIR_ADD && op <= KIR_NE);
  kir_expr *args[2] = {a, b};
  return build_op(k, op, 2, args);
}

kir_expr *kir_select(kir_kernel *k, kir_expr *c, kir_expr *a, kir_expr *b) {
  kir_expr *args[3] = {c, a, b};
  return build_op(k, KIR_SELECT, 3, args);
}

kir_expr *kir_cast(kir_kernel *k, kir_type t, kir_expr *a) {
  KILN_ASSERT(a && t >= 0 && t < KIR_TYPE_COUNT);
  kir_expr *e = new_expr(k, KIR_CAST, t);
  e->a[0] = a;
  return e;
}

kir_expr *kir_philox(kir_kernel *k, kir_expr *seed, kir_expr *stream,
                     kir_expr *index) {
  kir_expr *args[3] = {seed, stream, index};
  return build_op(k, KIR_PHILOX, 3, args);
}

/* ---- statements ---- */

static kir_stmt *append(kir_kernel *k, kir_stmt_kind kind) {
  KILN_ASSERT(k->depth >= 0 && k->depth < (int)ARRAY_LEN(k->open));
  kir_stmt *seq = k->open[k->depth];
  kir_stmt *s = ARENA_NEW(k->a, kir_stmt);
  s->kind = kind;
  ARENA_PUSH(k->a, seq->body, seq->n, seq->cap, s);
  return s;
}

static void push(kir_kernel *k, kir_stmt *seq) {
  KILN_ASSERT(k->depth + 1 < (int)ARRAY_LEN(k->open) &&
              "kernel IR nested too deeply");
  k->open[++k->depth] = seq;
}

kir_var *kir_for(kir_kernel *k, kir_loop_kind kind, const char *name,
                 kir_expr *extent) {
  KILN_ASSERT(extent);
  if (extent->type != KIR_I64)
    type_fail("loop extent", 1, &extent->type);
  kir_stmt *s = append(k, KIR_S_LOOP);
  s->loop_kind = kind;
  s->var = add_var(k, name, KIR_I64, KIR_SCALAR_NONE);
  s->extent = extent;
  s->then_ = new_seq(k);
  push(k, s->then_);
  return s->var;
}

void kir_if(kir_kernel *k, kir_expr *cond) {
  KILN_ASSERT(cond);
  if (cond->type != KIR_BOOL)
    type_fail("if condition", 1, &cond->type);
  kir_stmt *s = append(k, KIR_S_IF);
  s->cond = cond;
  s->then_ = new_seq(k);
  push(k, s->then_);
}

void kir_else(kir_kernel *k) {
  /* The cursor must be the `then` of an IF, which is the last statement of
   * the SEQ one level out. */
  KILN_ASSERT(k->depth > 0);
  kir_stmt *outer = k->open[k->depth - 1];
  KILN_ASSERT(outer->n > 0);
  kir_stmt *s = outer->body[outer->n - 1];
  KILN_ASSERT(s->kind == KIR_S_IF && s->then_ == k->open[k->depth] &&
              !s->else_ && "kir_else outside an if");
  s->else_ = new_seq(k);
  k->open[k->depth] = s->else_;
}

void kir_end(kir_kernel *k) {
  KILN_ASSERT(k->depth > 0 && "kir_end without an open loop or if");
  k->open[k->depth--] = NULL;
}

kir_var *kir_let(kir_kernel *k, const char *name, kir_expr *value) {
  KILN_ASSERT(value);
  kir_stmt *s = append(k, KIR_S_LET);
  s->var = add_var(k, name, value->type, KIR_SCALAR_NONE);
  s->value = value;
  return s->var;
}

void kir_assign(kir_kernel *k, kir_var *v, kir_expr *value) {
  KILN_ASSERT(v && value && v->role == KIR_SCALAR_NONE);
  if (value->type != v->type) {
    kir_type t[2] = {v->type, value->type};
    type_fail("assign", 2, t);
  }
  kir_stmt *s = append(k, KIR_S_ASSIGN);
  s->var = v;
  s->value = value;
}

static void check_access(const char *what, kir_buf *b, kir_expr *index,
                         kir_expr *value) {
  KILN_ASSERT(b && index && value);
  if (!is_int(index->type))
    type_fail(what, 1, &index->type);
  if (value->type != b->type) {
    kir_type t[2] = {b->type, value->type};
    type_fail(what, 2, t);
  }
}

void kir_store(kir_kernel *k, kir_buf *b, kir_expr *index, kir_expr *value) {
  check_access("store", b, index, value);
  kir_stmt *s = append(k, KIR_S_STORE);
  s->buf = b;
  s->index = index;
  s->value = value;
}

void kir_atomic_add(kir_kernel *k, kir_buf *b, kir_expr *index,
                    kir_expr *value) {
  check_access("atomic_add", b, index, value);
  if (b->type != KIR_F32)
    type_fail("atomic_add", 1, &b->type);
  kir_stmt *s = append(k, KIR_S_ATOMIC_ADD);
  s->buf = b;
  s->index = index;
  s->value = value;
}

void kir_barrier(kir_kernel *k) {
  append(k, KIR_S_BARRIER);
}

void kir_block_reduce(kir_kernel *k, kir_op op, kir_buf *dst, kir_buf *src) {
  KILN_ASSERT(dst && src);
  KILN_ASSERT((op == KIR_ADD || op == KIR_MAX) &&
              "block_reduce op must be add or max");
  if (dst->type != src->type || dst->type == KIR_BOOL) {
    kir_type t[2] = {dst->type, src->type};
    type_fail("block_reduce", 2, t);
  }
  kir_stmt *s = append(k, KIR_S_BLOCK_REDUCE);
  s->reduce_op = op;
  s->buf = dst;
  s->src = src;
}

void kir_mma(kir_kernel *k, kir_buf *c, kir_buf *a, kir_buf *b, int m, int n,
             int kk) {
  KILN_ASSERT(c && a && b && m > 0 && n > 0 && kk > 0);
  kir_type t[3] = {c->type, a->type, b->type};
  if (t[0] != KIR_F32 || t[1] != KIR_F32 || t[2] != KIR_F32)
    type_fail("mma", 3, t);
  kir_stmt *s = append(k, KIR_S_MMA);
  s->mma[0] = c;
  s->mma[1] = a;
  s->mma[2] = b;
  s->mma_m = m;
  s->mma_n = n;
  s->mma_k = kk;
}
