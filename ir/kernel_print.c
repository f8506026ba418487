/* kernel_print.c — the text form of kernels and plans (`kiln dump
 * --kernels`, test expectations, verifier messages).
 *
 *   kernel scale_fwd(global f32 x[7] ro, global f32 y[7], f32 lr)
 *     grid b < 7:
 *       y[b] = x[b] * lr
 *
 * Expressions print in C-like infix with the fewest parentheses that keep
 * the tree unambiguous; non-i64 integer constants carry their type
 * (`3i32`, `7u32`) and f32 constants always show a point or an exponent, so
 * a printed expression says its types. Variable names are unique in a
 * kernel (kir_let/kir_for make them so), so the text needs no ids. */
#include "ir/kernel.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- expressions ---- */

/* C-like precedence levels; higher binds tighter. */
enum { P_OR = 1, P_XOR, P_AND, P_EQ, P_REL, P_SHIFT, P_ADD, P_MUL, P_UNARY };

static const struct {
  const char *sym;
  int prec;
} infix[KIR_OP_COUNT] = {
    [KIR_ADD] = {"+", P_ADD},    [KIR_SUB] = {"-", P_ADD},
    [KIR_MUL] = {"*", P_MUL},    [KIR_DIV] = {"/", P_MUL},
    [KIR_MOD] = {"%", P_MUL},    [KIR_AND] = {"&", P_AND},
    [KIR_OR] = {"|", P_OR},      [KIR_XOR] = {"^", P_XOR},
    [KIR_SHL] = {"<<", P_SHIFT}, [KIR_SHR] = {">>", P_SHIFT},
    [KIR_LT] = {"<", P_REL},     [KIR_LE] = {"<=", P_REL},
    [KIR_EQ] = {"==", P_EQ},     [KIR_NE] = {"!=", P_EQ},
};

static int prec_of(const kir_expr *e) {
  if (infix[e->op].sym)
    return infix[e->op].prec;
  if (e->op == KIR_NEG || e->op == KIR_NOT)
    return P_UNARY;
  if (e->op == KIR_CONST && ((e->type == KIR_F32 && signbit(e->f)) ||
                             (e->type != KIR_F32 && e->i < 0)))
    return P_UNARY; /* "-3" reads like a negation */
  return P_UNARY + 1;
}

static void put_const(strbuf *sb, const kir_expr *e) {
  switch (e->type) {
  case KIR_BOOL:
    strbuf_puts(sb, e->i ? "true" : "false");
    return;
  case KIR_F32: {
    char tmp[48];
    snprintf(tmp, sizeof tmp, "%.9g", (double)e->f);
    strbuf_puts(sb, tmp);
    if (isfinite(e->f) && !strpbrk(tmp, ".e"))
      strbuf_puts(sb, ".0");
    return;
  }
  case KIR_I64:
    strbuf_printf(sb, "%lld", (long long)e->i);
    return;
  default:
    strbuf_printf(sb, "%lld%s", (long long)e->i, kir_type_name(e->type));
    return;
  }
}

static void put_expr(strbuf *sb, const kir_expr *e, int min_prec) {
  bool paren = prec_of(e) < min_prec;
  if (paren)
    strbuf_putc(sb, '(');
  if (e->op == KIR_CONST) {
    put_const(sb, e);
  } else if (e->op == KIR_VAR) {
    strbuf_puts(sb, e->var->name);
  } else if (e->op == KIR_LOAD) {
    strbuf_printf(sb, "%s[", e->buf->name);
    put_expr(sb, e->a[0], 0);
    strbuf_putc(sb, ']');
  } else if (infix[e->op].sym) {
    int p = infix[e->op].prec;
    put_expr(sb, e->a[0], p); /* left associative */
    strbuf_printf(sb, " %s ", infix[e->op].sym);
    put_expr(sb, e->a[1], p + 1);
  } else if (e->op == KIR_NEG || e->op == KIR_NOT) {
    strbuf_putc(sb, e->op == KIR_NEG ? '-' : '!');
    put_expr(sb, e->a[0], P_UNARY);
  } else {
    /* function form: exp(x), max(a, b), select(c, a, b), f32(i) */
    strbuf_puts(sb, e->op == KIR_CAST ? kir_type_name(e->type)
                                      : kir_op_name(e->op));
    strbuf_putc(sb, '(');
    for (int i = 0; i < kir_op_arity(e->op); i++) {
      if (i)
        strbuf_puts(sb, ", ");
      put_expr(sb, e->a[i], 0);
    }
    strbuf_putc(sb, ')');
  }
  if (paren)
    strbuf_putc(sb, ')');
}

void kir_print_expr(strbuf *sb, const kir_expr *e) {
  if (!e) {
    strbuf_puts(sb, "<null>");
    return;
  }
  put_expr(sb, e, 0);
}

/* ---- statements ---- */

static const char *const loop_names[] = {
    [KIR_LOOP_SERIAL] = "for",    [KIR_LOOP_GRID] = "grid",
    [KIR_LOOP_THREAD] = "thread", [KIR_LOOP_UNROLL] = "unroll",
    [KIR_LOOP_VECTOR] = "vector",
};

static void put_access(strbuf *sb, const kir_stmt *s, const char *op) {
  strbuf_printf(sb, "%s[", s->buf ? s->buf->name : "<null>");
  kir_print_expr(sb, s->index);
  strbuf_printf(sb, "] %s ", op);
  kir_print_expr(sb, s->value);
}

void kir_print_stmt_line(strbuf *sb, const kir_stmt *s) {
  switch (s->kind) {
  case KIR_S_SEQ:
    strbuf_printf(sb, "{%d statements}", s->n);
    break;
  case KIR_S_LOOP:
    strbuf_printf(sb, "%s %s < ", loop_names[s->loop_kind],
                  s->var ? s->var->name : "<null>");
    kir_print_expr(sb, s->extent);
    strbuf_putc(sb, ':');
    break;
  case KIR_S_LET:
    strbuf_printf(sb, "let %s: %s = ", s->var->name,
                  kir_type_name(s->var->type));
    kir_print_expr(sb, s->value);
    break;
  case KIR_S_ASSIGN:
    strbuf_printf(sb, "%s = ", s->var->name);
    kir_print_expr(sb, s->value);
    break;
  case KIR_S_STORE:
    put_access(sb, s, "=");
    break;
  case KIR_S_ATOMIC_ADD:
    strbuf_puts(sb, "atomic ");
    put_access(sb, s, "+=");
    break;
  case KIR_S_IF:
    strbuf_puts(sb, "if ");
    kir_print_expr(sb, s->cond);
    strbuf_putc(sb, ':');
    break;
  case KIR_S_BARRIER:
    strbuf_puts(sb, "barrier");
    break;
  case KIR_S_BLOCK_REDUCE:
    strbuf_printf(sb, "%s[0] = block_%s(%s[0])", s->buf->name,
                  kir_op_name(s->reduce_op), s->src->name);
    break;
  case KIR_S_MMA:
    strbuf_printf(sb, "mma %s += %s * %s (m %d, n %d, k %d)", s->mma[0]->name,
                  s->mma[1]->name, s->mma[2]->name, s->mma_m, s->mma_n,
                  s->mma_k);
    break;
  }
}

static void put_stmt(strbuf *sb, const kir_stmt *s, int indent);

static void put_seq(strbuf *sb, const kir_stmt *seq, int indent) {
  if (!seq)
    return;
  KILN_ASSERT(seq->kind == KIR_S_SEQ);
  for (int i = 0; i < seq->n; i++)
    put_stmt(sb, seq->body[i], indent);
}

static void put_stmt(strbuf *sb, const kir_stmt *s, int indent) {
  if (s->kind == KIR_S_SEQ) { /* a nested SEQ prints as its statements */
    put_seq(sb, s, indent);
    return;
  }
  strbuf_printf(sb, "%*s", 2 * indent, "");
  kir_print_stmt_line(sb, s);
  strbuf_putc(sb, '\n');
  if (s->kind == KIR_S_LOOP || s->kind == KIR_S_IF)
    put_seq(sb, s->then_, indent + 1);
  if (s->kind == KIR_S_IF && s->else_) {
    strbuf_printf(sb, "%*selse:\n", 2 * indent, "");
    put_seq(sb, s->else_, indent + 1);
  }
}

static const char *const space_names[] = {
    [KIR_GLOBAL] = "global", [KIR_SHARED] = "shared", [KIR_LOCAL] = "local"};

static void put_buf(strbuf *sb, const kir_buf *b) {
  strbuf_printf(sb, "%s %s %s[%lld]%s", space_names[b->space],
                kir_type_name(b->type), b->name, (long long)b->count,
                b->read_only ? " ro" : "");
}

/* The signature lists the arguments (GLOBAL buffers, then the scalar
 * parameters); SHARED and LOCAL buffers are declared on the lines after
 * it, since they are not arguments. */
void kir_print(strbuf *sb, const kir_kernel *k) {
  strbuf_printf(sb, "kernel %s(", k->name);
  const char *sep = "";
  for (int i = 0; i < k->n_bufs; i++)
    if (k->bufs[i]->space == KIR_GLOBAL) {
      strbuf_puts(sb, sep);
      put_buf(sb, k->bufs[i]);
      sep = ", ";
    }
  for (int i = 0; i < k->n_vars; i++)
    if (k->vars[i]->role != KIR_SCALAR_NONE) {
      strbuf_printf(sb, "%s%s %s", sep, kir_type_name(k->vars[i]->type),
                    k->vars[i]->name);
      sep = ", ";
    }
  strbuf_putc(sb, ')');
  if (k->block_threads > 0)
    strbuf_printf(sb, " threads %d", k->block_threads);
  strbuf_putc(sb, '\n');
  for (int i = 0; i < k->n_bufs; i++)
    if (k->bufs[i]->space != KIR_GLOBAL) {
      strbuf_puts(sb, "  ");
      put_buf(sb, k->bufs[i]);
      strbuf_putc(sb, '\n');
    }
  put_seq(sb, k->body, 1);
}

/* ---- plans ---- */

static int64_t launch_bytes(const kir_launch *l) {
  int64_t bytes = 0;
  for (int i = 0; i < l->k->n_bufs; i++) {
    const kir_buf *b = l->k->bufs[i];
    if (b->space == KIR_GLOBAL)
      bytes += b->count * kir_type_size(b->type);
  }
  return bytes;
}

void kir_plan_print(strbuf *sb, const kir_plan *p) {
  static const char *const section_names[3] = {"forward", "backward", "update"};
  int64_t kernels[3] = {0}, bytes[3] = {0};
  for (int li = 0; li < p->n_launches; li++) {
    const kir_launch *l = &p->launches[li];
    int sec = li < p->fwd_end ? 0 : li < p->bwd_end ? 1 : 2;
    strbuf_printf(sb, "# launch %d (%s)%s%s\n", li, section_names[sec],
                  l->node ? ": node " : "", l->node ? l->node->name : "");
    kir_print(sb, l->k);
    strbuf_puts(sb, "  args:");
    int arg = 0;
    for (int i = 0; i < l->k->n_bufs; i++) {
      if (l->k->bufs[i]->space != KIR_GLOBAL)
        continue;
      int t = l->args[arg++];
      KILN_ASSERT(t >= 0 && t < p->n_tensors);
      strbuf_printf(sb, " %s=%s", l->k->bufs[i]->name, p->tensors[t].name);
    }
    strbuf_putc(sb, '\n');
    kernels[sec]++;
    bytes[sec] += launch_bytes(l);
  }
  strbuf_printf(sb, "# %d kernels, ", p->n_launches);
  strbuf_put_count(sb, bytes[0] + bytes[1] + bytes[2]);
  strbuf_puts(sb, " bytes moved (");
  for (int s = 0; s < 3; s++) {
    strbuf_printf(sb, "%s%s %lld kernels ", s ? ", " : "", section_names[s],
                  (long long)kernels[s]);
    strbuf_put_count(sb, bytes[s]);
    strbuf_puts(sb, " bytes");
  }
  strbuf_puts(sb, ")\n");
}
