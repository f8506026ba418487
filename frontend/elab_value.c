/* elab_value.c — the values the elaborator computes with: literals,
 * arithmetic on numbers, printing for messages, and the constant evaluator
 * the sections use (config.c), where a name is only ever a bare word. */
#include "frontend/elab.h"

#include <math.h>
#include <string.h>

void elab_literal(const ast_expr *e, value *out) {
  memset(out, 0, sizeof *out);
  out->loc = e->loc;
  switch (e->kind) {
  case AST_INT:
    out->kind = VAL_INT;
    out->i = e->i;
    break;
  case AST_FLOAT:
    out->kind = VAL_FLOAT;
    out->f = e->f;
    break;
  case AST_BOOL:
    out->kind = VAL_BOOL;
    out->i = e->i != 0;
    break;
  case AST_STRING:
    out->kind = VAL_STRING;
    out->s = e->s;
    break;
  default:
    KILN_ASSERT(!"not a literal");
  }
}

/* %g, but a float that prints like an integer keeps a ".0", so that
 * "expected an integer, found 2.0" does not read "found 2". */
static void put_float(strbuf *b, double f) {
  char tmp[64];
  snprintf(tmp, sizeof tmp, "%g", f);
  strbuf_puts(b, tmp);
  if (!strpbrk(tmp, ".eEni"))
    strbuf_puts(b, ".0");
}

static void put_value(strbuf *b, const value *v, int depth) {
  /* Long lists are cut: the message buffer is finite, and the first items
   * are enough to recognise the value. */
  enum { MAX_ITEMS = 8 };
  switch (v->kind) {
  case VAL_TENSOR:
    strbuf_printf(b, "tensor '%s'", v->node->name);
    break;
  case VAL_INT:
    strbuf_printf(b, "%lld", (long long)v->i);
    break;
  case VAL_FLOAT:
    put_float(b, v->f);
    break;
  case VAL_BOOL:
    strbuf_puts(b, v->i ? "true" : "false");
    break;
  case VAL_STRING:
    strbuf_printf(b, "\"%s\"", v->s);
    break;
  case VAL_WORD:
    strbuf_printf(b, depth ? "%s" : "'%s'", v->s);
    break;
  case VAL_LIST:
  case VAL_TUPLE:
    strbuf_putc(b, v->kind == VAL_LIST ? '[' : '(');
    for (int k = 0; k < v->n && k < MAX_ITEMS; k++) {
      if (k)
        strbuf_puts(b, ", ");
      put_value(b, &v->items[k], depth + 1);
    }
    if (v->n > MAX_ITEMS)
      strbuf_puts(b, ", ...");
    if (v->kind == VAL_TUPLE && v->n == 1)
      strbuf_putc(b, ',');
    strbuf_putc(b, v->kind == VAL_LIST ? ']' : ')');
    break;
  }
}

const char *elab_value_str(arena *a, const value *v) {
  strbuf b;
  strbuf_init(&b);
  put_value(&b, v, 0);
  const char *s = arena_strdup(a, b.data ? b.data : "");
  strbuf_free(&b);
  return s;
}

static bool is_number(const value *v) {
  return v->kind == VAL_INT || v->kind == VAL_FLOAT;
}

static double as_double(const value *v) {
  return v->kind == VAL_INT ? (double)v->i : v->f;
}

static kiln_status not_a_number(arena *a, char op, const value *v,
                                kiln_error *err) {
  return diag_error(err, KILN_ERR_TYPE, v->loc, "'%c' needs numbers, found %s",
                    op, elab_value_str(a, v));
}

/* Integers stay integers (out=channels*4 must be an int attribute), and
 * integer `/` must be exact: a channel count of 64/3 is a mistake, not a
 * rounding. Overflow is checked: it is undefined behaviour in C. */
static kiln_status int_arith(char op, int64_t l, int64_t r, kiln_loc loc,
                             int64_t *out, kiln_error *err) {
  bool overflow = false;
  switch (op) {
  case '+':
    overflow = __builtin_add_overflow(l, r, out);
    break;
  case '-':
    overflow = __builtin_sub_overflow(l, r, out);
    break;
  case '*':
    overflow = __builtin_mul_overflow(l, r, out);
    break;
  case '/':
    if (r == 0)
      return diag_error(err, KILN_ERR_TYPE, loc, "division by zero");
    if (l == INT64_MIN && r == -1) {
      overflow = true;
      break;
    }
    if (l % r != 0)
      return diag_error(err, KILN_ERR_TYPE, loc,
                        "%lld / %lld is not an integer (write %lld.0 / %lld "
                        "for a fraction)",
                        (long long)l, (long long)r, (long long)l, (long long)r);
    *out = l / r;
    break;
  default:
    KILN_ASSERT(!"unknown operator");
  }
  if (overflow)
    return diag_error(err, KILN_ERR_TYPE, loc, "integer overflow in '%c'", op);
  return KILN_OK;
}

kiln_status elab_arith(arena *a, char op, const value *l, const value *r,
                       kiln_loc loc, value *out, kiln_error *err) {
  if (!is_number(l))
    return not_a_number(a, op, l, err);
  if (!is_number(r))
    return not_a_number(a, op, r, err);
  memset(out, 0, sizeof *out);
  out->loc = loc;
  if (l->kind == VAL_INT && r->kind == VAL_INT) {
    out->kind = VAL_INT;
    return int_arith(op, l->i, r->i, loc, &out->i, err);
  }
  double x = as_double(l), y = as_double(r), z = 0;
  switch (op) {
  case '+':
    z = x + y;
    break;
  case '-':
    z = x - y;
    break;
  case '*':
    z = x * y;
    break;
  case '/':
    if (y == 0)
      return diag_error(err, KILN_ERR_TYPE, loc, "division by zero");
    z = x / y;
    break;
  default:
    KILN_ASSERT(!"unknown operator");
  }
  if (!isfinite(z))
    return diag_error(err, KILN_ERR_TYPE, loc,
                      "the result of '%c' is not a finite number", op);
  out->kind = VAL_FLOAT;
  out->f = z;
  return KILN_OK;
}

kiln_status elab_negate(arena *a, const value *v, kiln_loc loc, value *out,
                        kiln_error *err) {
  if (!is_number(v))
    return not_a_number(a, '-', v, err);
  *out = *v;
  out->loc = loc;
  if (v->kind == VAL_FLOAT) {
    out->f = -v->f;
    return KILN_OK;
  }
  if (v->i == INT64_MIN)
    return diag_error(err, KILN_ERR_TYPE, loc, "integer overflow in '-'");
  out->i = -v->i;
  return KILN_OK;
}

kiln_status elab_eval_const(arena *a, const ast_expr *e, value *out,
                            kiln_error *err) {
  kiln_status st;
  value l, r;
  switch (e->kind) {
  case AST_INT:
  case AST_FLOAT:
  case AST_BOOL:
  case AST_STRING:
    elab_literal(e, out);
    return KILN_OK;
  case AST_NAME:
    memset(out, 0, sizeof *out);
    out->kind = VAL_WORD;
    out->loc = e->loc;
    out->s = e->s;
    return KILN_OK;
  case AST_CALL:
    return diag_error(err, KILN_ERR_TYPE, e->loc,
                      "expected a constant, found a call to '%s'", e->s);
  case AST_LIST:
  case AST_TUPLE:
    memset(out, 0, sizeof *out);
    out->kind = e->kind == AST_LIST ? VAL_LIST : VAL_TUPLE;
    out->loc = e->loc;
    out->n = e->n_args;
    out->items = ARENA_ARRAY(a, value, e->n_args > 0 ? e->n_args : 1);
    for (int k = 0; k < e->n_args; k++)
      if ((st = elab_eval_const(a, e->args[k], &out->items[k], err)))
        return st;
    return KILN_OK;
  case AST_BINARY:
    if ((st = elab_eval_const(a, e->args[0], &l, err)) ||
        (st = elab_eval_const(a, e->args[1], &r, err)))
      return st;
    return elab_arith(a, e->op, &l, &r, e->loc, out, err);
  case AST_NEG:
    if ((st = elab_eval_const(a, e->args[0], &l, err)))
      return st;
    return elab_negate(a, &l, e->loc, out, err);
  }
  KILN_ASSERT(!"unknown expression kind");
  return KILN_ERR_INTERNAL;
}

bool elab_symbol_in(const char *symbols, const char *word) {
  size_t n = strlen(word);
  for (const char *p = symbols; p && *p;) {
    const char *bar = strchr(p, '|');
    size_t len = bar ? (size_t)(bar - p) : strlen(p);
    if (len == n && strncmp(p, word, n) == 0)
      return true;
    p = bar ? bar + 1 : NULL;
  }
  return false;
}

const char *elab_symbol_list(arena *a, const char *symbols) {
  strbuf b;
  strbuf_init(&b);
  for (const char *p = symbols ? symbols : ""; *p; p++) {
    if (*p == '|')
      strbuf_puts(&b, ", ");
    else
      strbuf_putc(&b, *p);
  }
  const char *s = arena_strdup(a, b.data ? b.data : "");
  strbuf_free(&b);
  return s;
}
