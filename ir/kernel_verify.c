/* kernel_verify.c — kir_verify: is a kernel well formed?
 *
 * Needs: a kernel from the builder or edited by hand. Guarantees, when it
 * returns KILN_OK, what renderers and the interpreter rely on:
 *  - every expression and statement is typed as the builder types it
 *    (kir_op_result), buffers and variables belong to the kernel;
 *  - a variable is used only in scope after its one definition (scalar
 *    parameters are always in scope); only lets are assigned;
 *  - stores and atomics go to writable buffers; GLOBAL indexes are i64;
 *    constant indexes are within bounds;
 *  - the parallel structure of kernel.h: GRID loops only as the outermost
 *    chain; THREAD loops (extent the constant block_threads) only inside
 *    it, never nested; BARRIER, BLOCK_REDUCE and MMA never inside a thread
 *    loop; LOCAL buffers (when block_threads > 0) only inside thread loops;
 *    no variable declared outside a thread loop assigned inside one (each
 *    GPU thread would keep its own copy, the CPU loop one shared copy);
 *    ATOMIC_ADD (when block_threads > 0) only inside thread loops (on the
 *    GPU block-level code runs once per thread, on the CPU once);
 *    SHARED buffers, BARRIER, BLOCK_REDUCE, MMA need block_threads > 0;
 *  - MMA on SHARED f32 tiles of m*k, k*n, m*n elements; BLOCK_REDUCE from
 *    a LOCAL to a SHARED buffer of one type with add or max;
 *  - no SHARED buffer written by one thread loop and used by another (or
 *    by block-level code) without a synchronisation point between them
 *    (see "shared memory between phases" below).
 * The first problem found is reported as KILN_ERR_INTERNAL,
 * "kernel 'NAME': <what> at: <statement>". */
#include "ir/kernel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct vctx {
  const kir_kernel *k;
  kiln_error *err;
  const kir_stmt *stmt; /* the statement being checked, for messages */
  bool *visible;        /* per var: in scope here */
  int *scope, n_scope;  /* the vars made visible, innermost last */
  bool *defined;        /* per var: its definition was met */
  int *thread_of;       /* per var: the thread loop it was declared in */
  bool *is_loop;        /* per var: a loop variable (never assigned) */
  int thread;           /* the enclosing thread loop (numbered from 1), 0 */
  int n_threads;        /* thread loops met so far */
  bool in_grid_chain;   /* still in the outermost chain of GRID loops */
} vctx;

KILN_PRINTF(2, 3)
static bool fail(vctx *c, const char *fmt, ...) {
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
  return false;
}

static bool own_buf(vctx *c, const kir_buf *b) {
  if (!b)
    return fail(c, "missing buffer");
  if (b->id < 0 || b->id >= c->k->n_bufs || c->k->bufs[b->id] != b)
    return fail(c, "buffer '%s' is not declared in this kernel", b->name);
  return true;
}

/* A load, store or atomic of b at index. */
static bool check_access(vctx *c, const kir_buf *b, const kir_expr *index) {
  if (!own_buf(c, b))
    return false;
  if (b->space == KIR_GLOBAL && index->type != KIR_I64)
    return fail(c, "index of global buffer '%s' is %s, not i64", b->name,
                kir_type_name(index->type));
  if (index->type != KIR_I64 && index->type != KIR_I32 &&
      index->type != KIR_U32)
    return fail(c, "index of '%s' is %s, not an integer", b->name,
                kir_type_name(index->type));
  if (index->op == KIR_CONST && (index->i < 0 || index->i >= b->count))
    return fail(c, "constant index %lld out of bounds of '%s[%lld]'",
                (long long)index->i, b->name, (long long)b->count);
  if (b->space == KIR_LOCAL && c->k->block_threads > 0 && !c->thread)
    return fail(c, "local buffer '%s' used outside a thread loop", b->name);
  return true;
}

static bool check_expr(vctx *c, const kir_expr *e) {
  if (!e)
    return fail(c, "missing expression");
  if (e->op < 0 || e->op >= KIR_OP_COUNT || e->type < 0 ||
      e->type >= KIR_TYPE_COUNT)
    return fail(c, "malformed expression (op %d, type %d)", (int)e->op,
                (int)e->type);
  int n = kir_op_arity(e->op);
  for (int i = 0; i < n; i++)
    if (!check_expr(c, e->a[i]))
      return false;
  switch (e->op) {
  case KIR_CONST:
    return true;
  case KIR_VAR: {
    const kir_var *v = e->var;
    if (!v || v->id < 0 || v->id >= c->k->n_vars || c->k->vars[v->id] != v)
      return fail(c, "variable not declared in this kernel");
    if (!c->visible[v->id])
      return fail(c, "variable '%s' used out of scope", v->name);
    if (e->type != v->type)
      return fail(c, "reference to %s variable '%s' typed %s",
                  kir_type_name(v->type), v->name, kir_type_name(e->type));
    return true;
  }
  case KIR_LOAD:
    if (!check_access(c, e->buf, e->a[0]))
      return false;
    if (e->type != e->buf->type)
      return fail(c, "load of %s buffer '%s' typed %s",
                  kir_type_name(e->buf->type), e->buf->name,
                  kir_type_name(e->type));
    return true;
  case KIR_CAST:
    return true;
  default: {
    kir_type t[3];
    for (int i = 0; i < n; i++)
      t[i] = e->a[i]->type;
    int r = kir_op_result(e->op, t);
    if (r < 0 || r != (int)e->type) {
      strbuf ts;
      strbuf_init(&ts);
      for (int i = 0; i < n; i++)
        strbuf_printf(&ts, "%s%s", i ? ", " : "", kir_type_name(t[i]));
      bool ok = fail(c, "%s on (%s) typed %s", kir_op_name(e->op), ts.data,
                     kir_type_name(e->type));
      strbuf_free(&ts);
      return ok;
    }
    return true;
  }
  }
}

static bool check_seq(vctx *c, const kir_stmt *seq);

/* Ends a scope: the variables defined since `mark` go out of sight. */
static void end_scope(vctx *c, int mark) {
  while (c->n_scope > mark)
    c->visible[c->scope[--c->n_scope]] = false;
}

/* Checks a child SEQ in its own scope: lets declared in it end with it. */
static bool check_scoped(vctx *c, const kir_stmt *seq) {
  int mark = c->n_scope;
  bool ok = check_seq(c, seq);
  end_scope(c, mark);
  return ok;
}

static bool define_var(vctx *c, kir_var *v) {
  if (!v || v->id < 0 || v->id >= c->k->n_vars || c->k->vars[v->id] != v)
    return fail(c, "variable not declared in this kernel");
  if (v->role != KIR_SCALAR_NONE)
    return fail(c, "scalar parameter '%s' redefined", v->name);
  if (c->defined[v->id])
    return fail(c, "variable '%s' defined twice", v->name);
  c->defined[v->id] = c->visible[v->id] = true;
  c->scope[c->n_scope++] = v->id;
  c->thread_of[v->id] = c->thread;
  return true;
}

static bool block_level(vctx *c, const char *what) {
  if (c->k->block_threads <= 0)
    return fail(c, "%s in a kernel without threads (block_threads 0)", what);
  if (c->thread)
    return fail(c, "%s inside a thread loop", what);
  return true;
}

static bool check_loop(vctx *c, const kir_stmt *s, bool chain) {
  if (!check_expr(c, s->extent))
    return false;
  if (s->extent->type != KIR_I64)
    return fail(c, "loop extent is %s, not i64",
                kir_type_name(s->extent->type));
  if (s->var && s->var->type != KIR_I64)
    return fail(c, "loop variable '%s' is %s, not i64", s->var->name,
                kir_type_name(s->var->type));
  if (s->loop_kind == KIR_LOOP_GRID && !chain)
    return fail(c, "grid loop outside the outermost chain of grid loops");
  int outer_thread = c->thread;
  if (s->loop_kind == KIR_LOOP_THREAD) {
    if (c->thread)
      return fail(c, "thread loop nested in a thread loop");
    if (c->k->block_threads <= 0)
      return fail(c, "thread loop in a kernel without threads");
    if (s->extent->op != KIR_CONST || s->extent->i != c->k->block_threads)
      return fail(c,
                  "thread loop extent is not the constant block_threads "
                  "%d",
                  c->k->block_threads);
    c->thread = ++c->n_threads;
  } else if (s->loop_kind == KIR_LOOP_UNROLL && s->extent->op != KIR_CONST) {
    return fail(c, "unrolled loop with a non-constant extent");
  }
  /* A GRID loop's body may continue the chain (check_seq: when it holds a
   * single statement). */
  c->in_grid_chain = s->loop_kind == KIR_LOOP_GRID;
  int mark = c->n_scope;
  bool ok = define_var(c, s->var);
  if (ok)
    c->is_loop[s->var->id] = true;
  ok = ok && check_seq(c, s->then_);
  end_scope(c, mark);
  c->thread = outer_thread;
  c->in_grid_chain = false;
  return ok;
}

static bool check_stmt(vctx *c, const kir_stmt *s) {
  c->stmt = s;
  bool chain = c->in_grid_chain;
  c->in_grid_chain = false;
  switch (s->kind) {
  case KIR_S_SEQ:
    return check_scoped(c, s);
  case KIR_S_LOOP:
    return check_loop(c, s, chain);
  case KIR_S_LET:
    if (!check_expr(c, s->value))
      return false;
    if (s->var && s->value->type != s->var->type)
      return fail(c, "let of %s variable with a %s value",
                  kir_type_name(s->var->type), kir_type_name(s->value->type));
    return define_var(c, s->var);
  case KIR_S_ASSIGN:
    if (!check_expr(c, s->value))
      return false;
    if (!s->var || s->var->id < 0 || s->var->id >= c->k->n_vars ||
        c->k->vars[s->var->id] != s->var)
      return fail(c, "assignment to a variable not in this kernel");
    if (!c->visible[s->var->id])
      return fail(c, "variable '%s' assigned out of scope", s->var->name);
    if (s->var->role != KIR_SCALAR_NONE)
      return fail(c, "assignment to scalar parameter '%s'", s->var->name);
    if (c->is_loop[s->var->id])
      return fail(c, "assignment to loop variable '%s'", s->var->name);
    if (s->value->type != s->var->type)
      return fail(c, "assignment of %s to %s variable '%s'",
                  kir_type_name(s->value->type), kir_type_name(s->var->type),
                  s->var->name);
    if (c->thread && c->thread_of[s->var->id] != c->thread)
      return fail(c,
                  "variable '%s' declared outside the thread loop is "
                  "assigned inside it",
                  s->var->name);
    return true;
  case KIR_S_STORE:
  case KIR_S_ATOMIC_ADD: {
    bool atomic = s->kind == KIR_S_ATOMIC_ADD;
    const char *what = atomic ? "atomic_add" : "store";
    if (!check_expr(c, s->index) || !check_expr(c, s->value) ||
        !check_access(c, s->buf, s->index))
      return false;
    if (s->buf->read_only)
      return fail(c, "%s to read-only buffer '%s'", what, s->buf->name);
    if (s->value->type != s->buf->type)
      return fail(c, "%s of %s to %s buffer '%s'", what,
                  kir_type_name(s->value->type), kir_type_name(s->buf->type),
                  s->buf->name);
    if (atomic && s->buf->type != KIR_F32)
      return fail(c, "atomic_add to %s buffer '%s' (f32 only)",
                  kir_type_name(s->buf->type), s->buf->name);
    if (atomic && c->k->block_threads > 0 && !c->thread)
      return fail(c, "atomic_add outside a thread loop");
    return true;
  }
  case KIR_S_IF:
    if (!check_expr(c, s->cond))
      return false;
    if (s->cond->type != KIR_BOOL)
      return fail(c, "if condition is %s, not bool",
                  kir_type_name(s->cond->type));
    if (!check_scoped(c, s->then_))
      return false;
    return !s->else_ || check_scoped(c, s->else_);
  case KIR_S_BARRIER:
    return block_level(c, "barrier");
  case KIR_S_BLOCK_REDUCE:
    if (!block_level(c, "block_reduce") || !own_buf(c, s->buf) ||
        !own_buf(c, s->src))
      return false;
    if (s->reduce_op != KIR_ADD && s->reduce_op != KIR_MAX)
      return fail(c, "block_reduce with op %s (add or max only)",
                  kir_op_name(s->reduce_op));
    if (s->buf->space != KIR_SHARED || s->src->space != KIR_LOCAL)
      return fail(c, "block_reduce from '%s' to '%s' needs local -> shared",
                  s->src->name, s->buf->name);
    if (s->buf->type != s->src->type || s->buf->type == KIR_BOOL)
      return fail(c, "block_reduce from %s to %s", kir_type_name(s->src->type),
                  kir_type_name(s->buf->type));
    return true;
  case KIR_S_MMA: {
    if (!block_level(c, "mma"))
      return false;
    int64_t m = s->mma_m, n = s->mma_n, kk = s->mma_k;
    const int64_t counts[3] = {m * n, m * kk, kk * n};
    for (int i = 0; i < 3; i++) {
      const kir_buf *b = s->mma[i];
      if (!own_buf(c, b))
        return false;
      if (b->space != KIR_SHARED || b->type != KIR_F32)
        return fail(c, "mma operand '%s' is not a shared f32 buffer", b->name);
      if (b->count != counts[i])
        return fail(c, "mma operand '%s' has %lld elements, not %lld", b->name,
                    (long long)b->count, (long long)counts[i]);
    }
    if (m <= 0 || n <= 0 || kk <= 0)
      return fail(c, "mma with an empty tile");
    return true;
  }
  }
  return fail(c, "unknown statement kind %d", (int)s->kind);
}

static bool check_seq(vctx *c, const kir_stmt *seq) {
  if (!seq || seq->kind != KIR_S_SEQ)
    return fail(c, "a loop or if body is not a statement sequence");
  /* The grid chain continues only through a sequence of one statement:
   * the body, or a grid loop's body, that is nothing but a loop. */
  bool chain = c->in_grid_chain && seq->n == 1;
  for (int i = 0; i < seq->n; i++) {
    c->in_grid_chain = chain;
    if (!check_stmt(c, seq->body[i]))
      return false;
  }
  c->in_grid_chain = false;
  return true;
}

static bool check_decls(vctx *c) {
  const kir_kernel *k = c->k;
  for (int i = 0; i < k->n_bufs; i++) {
    const kir_buf *b = k->bufs[i];
    if (b->id != i)
      return fail(c, "buffer '%s' has id %d at position %d", b->name, b->id, i);
    if (i > 0 && b->space == KIR_GLOBAL && k->bufs[i - 1]->space != KIR_GLOBAL)
      return fail(c, "global buffer '%s' declared after a shared or local one",
                  b->name);
    if (b->count <= 0)
      return fail(c, "buffer '%s' has %lld elements", b->name,
                  (long long)b->count);
    if (b->space == KIR_SHARED && k->block_threads <= 0)
      return fail(c, "shared buffer '%s' in a kernel without threads", b->name);
  }
  for (int i = 0; i < k->n_vars; i++) {
    const kir_var *v = k->vars[i];
    if (v->id != i)
      return fail(c, "variable '%s' has id %d at position %d", v->name, v->id,
                  i);
    if (v->role != KIR_SCALAR_NONE) {
      kir_type want = v->role == KIR_SCALAR_LR ? KIR_F32 : KIR_I64;
      if (v->type != want)
        return fail(c, "scalar parameter '%s' is %s, not %s", v->name,
                    kir_type_name(v->type), kir_type_name(want));
      c->visible[i] = c->defined[i] = true;
    }
  }
  return true;
}

/* ---- shared memory between phases ----
 *
 * On the GPU all threads run the code between two synchronisation points
 * (BARRIER, and BLOCK_REDUCE and MMA, which renderers synchronise around)
 * at once; on the CPU each thread loop runs to completion first. So two
 * different thread loops (or a thread loop and block-level code) in one
 * such interval must not touch one SHARED buffer when either writes it:
 * the CPU would give the intended result and the GPU a race. The one
 * harmless pattern is block-level code writing a buffer that a later
 * thread loop reads: every thread wrote the same values itself. A thread
 * loop's own accesses are not compared with each other (that would need
 * index analysis); serial loops at block level are walked twice, so that
 * the end of one iteration meets the start of the next. */

typedef struct racc {
  const kir_stmt *reader, *writer; /* a thread loop that read / wrote it */
  bool readers, writers;           /* more than one thread loop did */
  bool bl_read, bl_write;          /* block-level code did */
} racc;

typedef struct rctx {
  vctx *v;
  racc *acc;            /* per buffer, in the current interval */
  const kir_stmt *unit; /* the thread loop being walked; NULL: block level */
} rctx;

static bool by_other(const kir_stmt *first, bool many, const kir_stmt *u) {
  return first && (many || first != u);
}

static void note(const kir_stmt **first, bool *many, const kir_stmt *u) {
  if (!*first)
    *first = u;
  else if (*first != u)
    *many = true;
}

static bool race_access(rctx *r, const kir_buf *b, bool write) {
  if (b->space != KIR_SHARED)
    return true;
  racc *a = &r->acc[b->id];
  const kir_stmt *u = r->unit;
  bool clash;
  if (u)
    clash = by_other(a->writer, a->writers, u) ||
            (write &&
             (by_other(a->reader, a->readers, u) || a->bl_read || a->bl_write));
  else
    clash = a->writer || (write && a->reader);
  if (clash)
    return fail(r->v,
                "shared buffer '%s' is %s here and used by another thread "
                "loop since the last barrier (a race on the GPU)",
                b->name, write ? "written" : "read");
  if (u && write)
    note(&a->writer, &a->writers, u);
  else if (u)
    note(&a->reader, &a->readers, u);
  else if (write)
    a->bl_write = true;
  else
    a->bl_read = true;
  return true;
}

static bool race_expr(rctx *r, const kir_expr *e) {
  if (e->op == KIR_LOAD && !race_access(r, e->buf, false))
    return false;
  for (int i = 0; i < 3; i++)
    if (e->a[i] && !race_expr(r, e->a[i]))
      return false;
  return true;
}

static void race_clear(rctx *r) {
  memset(r->acc, 0, sizeof(racc) * (size_t)r->v->k->n_bufs);
}

static bool race_seq(rctx *r, const kir_stmt *seq);

/* Both branches of an IF from the same state; afterwards, what either
 * did. */
static bool race_if(rctx *r, const kir_stmt *s) {
  if (!s->else_)
    return race_seq(r, s->then_);
  size_t bytes = sizeof(racc) * (size_t)(r->v->k->n_bufs + 1);
  racc *before = malloc(bytes), *then_acc = malloc(bytes);
  KILN_ASSERT(before && then_acc);
  memcpy(before, r->acc, bytes);
  bool ok = race_seq(r, s->then_);
  memcpy(then_acc, r->acc, bytes);
  memcpy(r->acc, before, bytes);
  ok = ok && race_seq(r, s->else_);
  for (int i = 0; ok && i < r->v->k->n_bufs; i++) {
    racc *a = &r->acc[i], *t = &then_acc[i];
    if (t->reader)
      note(&a->reader, &a->readers, t->reader);
    if (t->writer)
      note(&a->writer, &a->writers, t->writer);
    a->readers |= t->readers;
    a->writers |= t->writers;
    a->bl_read |= t->bl_read;
    a->bl_write |= t->bl_write;
  }
  free(before);
  free(then_acc);
  return ok;
}

static bool race_stmt(rctx *r, const kir_stmt *s) {
  r->v->stmt = s;
  switch (s->kind) {
  case KIR_S_SEQ:
    return race_seq(r, s);
  case KIR_S_LOOP: {
    if (!race_expr(r, s->extent))
      return false;
    if (s->loop_kind == KIR_LOOP_GRID) { /* every iteration a new block */
      race_clear(r);
      return race_seq(r, s->then_);
    }
    if (s->loop_kind == KIR_LOOP_THREAD) {
      r->unit = s;
      bool ok = race_seq(r, s->then_);
      r->unit = NULL;
      return ok;
    }
    if (r->unit)
      return race_seq(r, s->then_);
    return race_seq(r, s->then_) && race_seq(r, s->then_);
  }
  case KIR_S_LET:
  case KIR_S_ASSIGN:
    return race_expr(r, s->value);
  case KIR_S_STORE:
  case KIR_S_ATOMIC_ADD:
    if (!race_expr(r, s->index) || !race_expr(r, s->value))
      return false;
    r->v->stmt = s;
    return race_access(r, s->buf, true);
  case KIR_S_IF:
    return race_expr(r, s->cond) && race_if(r, s);
  case KIR_S_BARRIER:
  case KIR_S_BLOCK_REDUCE:
  case KIR_S_MMA:
    race_clear(r);
    return true;
  }
  return true;
}

static bool race_seq(rctx *r, const kir_stmt *seq) {
  for (int i = 0; i < seq->n; i++)
    if (!race_stmt(r, seq->body[i]))
      return false;
  return true;
}

kiln_status kir_verify(const kir_kernel *k, kiln_error *err) {
  KILN_ASSERT(k && err);
  /* Heap scratch, not the kernel's arena: a kernel is verified again at
   * every interpreter run and may be shared by threads. */
  vctx c = {.k = k, .err = err};
  size_t nv = (size_t)k->n_vars + 1;
  c.visible = calloc(nv, sizeof *c.visible);
  c.defined = calloc(nv, sizeof *c.defined);
  c.thread_of = calloc(nv, sizeof *c.thread_of);
  c.is_loop = calloc(nv, sizeof *c.is_loop);
  c.scope = calloc(nv, sizeof *c.scope);
  rctx r = {.v = &c, .acc = calloc((size_t)k->n_bufs + 1, sizeof(racc))};
  KILN_ASSERT(c.visible && c.defined && c.thread_of && c.is_loop && c.scope &&
              r.acc);
  c.in_grid_chain = true;
  bool ok = check_decls(&c) && check_seq(&c, k->body) &&
            (k->block_threads <= 0 || race_seq(&r, k->body));
  free(c.visible);
  free(c.defined);
  free(c.thread_of);
  free(c.is_loop);
  free(c.scope);
  free(r.acc);
  return ok ? KILN_OK : KILN_ERR_INTERNAL;
}
