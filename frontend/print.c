/* print.c — writes a syntax tree back as canonical .kiln text (the parser
 * round-trip test and the fuzzer check parse(print(t)) == t).
 *
 * Canonical text: one statement per line, two-space indents, `k=v` in calls,
 * spaces around binary operators, parentheses only where precedence needs
 * them, and floats in the shortest form that reads back as the same double.
 * Blocks come first, then statements, then sections: the tree keeps the three
 * lists apart, so their relative order in the source is not kept. */
#include "frontend/frontend.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void print_expr(strbuf *b, const ast_expr *e, int min_prec);

/* Binding strength: + - 1, * / 2, unary minus 3, everything else 4. */
static int prec_of(const ast_expr *e) {
  if (e->kind == AST_BINARY)
    return e->op == '+' || e->op == '-' ? 1 : 2;
  return e->kind == AST_NEG ? 3 : 4;
}

static void print_float(strbuf *b, double f) {
  char buf[40];
  snprintf(buf, sizeof buf, "%g", f);
  for (int prec = 1; prec <= 17 && isfinite(f); prec++) {
    snprintf(buf, sizeof buf, "%.*g", prec, f);
    if (strtod(buf, NULL) == f)
      break;
  }
  strbuf_puts(b, buf);
  if (isfinite(f) && !strpbrk(buf, ".e")) /* keep it a FLOAT token */
    strbuf_puts(b, ".0");
}

static void print_string(strbuf *b, const char *s) {
  strbuf_putc(b, '"');
  for (; *s; s++) {
    if (*s == '"' || *s == '\\')
      strbuf_putc(b, '\\');
    if (*s == '\n' || *s == '\t')
      strbuf_puts(b, *s == '\n' ? "\\n" : "\\t");
    else
      strbuf_putc(b, *s);
  }
  strbuf_putc(b, '"');
}

static void print_list(strbuf *b, ast_expr **items, int n) {
  for (int i = 0; i < n; i++) {
    strbuf_puts(b, i ? ", " : "");
    print_expr(b, items[i], 0);
  }
}

static void print_call(strbuf *b, const ast_expr *e) {
  strbuf_printf(b, "%s(", e->s);
  print_list(b, e->args, e->n_args);
  for (int i = 0; i < e->n_kwargs; i++) {
    strbuf_printf(b, "%s%s=", i || e->n_args ? ", " : "", e->kwargs[i].name);
    print_expr(b, e->kwargs[i].value, 0);
  }
  strbuf_putc(b, ')');
}

static void print_expr(strbuf *b, const ast_expr *e, int min_prec) {
  bool paren = prec_of(e) < min_prec;
  strbuf_puts(b, paren ? "(" : "");
  switch (e->kind) {
  case AST_INT:
    strbuf_printf(b, "%lld", (long long)e->i);
    break;
  case AST_FLOAT:
    print_float(b, e->f);
    break;
  case AST_BOOL:
    strbuf_puts(b, e->i ? "true" : "false");
    break;
  case AST_STRING:
    print_string(b, e->s);
    break;
  case AST_NAME:
    strbuf_puts(b, e->s);
    break;
  case AST_CALL:
    print_call(b, e);
    break;
  case AST_LIST:
    strbuf_putc(b, '[');
    print_list(b, e->args, e->n_args);
    strbuf_putc(b, ']');
    break;
  case AST_TUPLE:
    strbuf_putc(b, '(');
    print_list(b, e->args, e->n_args);
    strbuf_puts(b, e->n_args == 1 ? ",)" : ")");
    break;
  case AST_BINARY: /* left-associative: only the right side needs p + 1 */
    print_expr(b, e->args[0], prec_of(e));
    strbuf_printf(b, " %c ", e->op);
    print_expr(b, e->args[1], prec_of(e) + 1);
    break;
  case AST_NEG:
    strbuf_putc(b, '-');
    print_expr(b, e->args[0], prec_of(e));
    break;
  }
  strbuf_puts(b, paren ? ")" : "");
}

static void print_stmt(strbuf *b, const ast_stmt *s, const char *indent) {
  strbuf_puts(b, indent);
  switch (s->kind) {
  case AST_STMT_INPUT:
    strbuf_printf(b, "input %s: %s[", s->name, s->dtype);
    print_list(b, s->dims, s->n_dims);
    strbuf_putc(b, ']');
    break;
  case AST_STMT_ASSIGN:
    strbuf_printf(b, "%s = ", s->name);
    print_expr(b, s->value, 0);
    break;
  case AST_STMT_SEQUENCE:
    strbuf_printf(b, "%s = sequence(", s->name);
    print_expr(b, s->value, 0);
    strbuf_puts(b, ") {\n");
    for (int i = 0; i < s->n_items; i++) {
      strbuf_printf(b, "%s  ", indent);
      print_call(b, s->items[i].call);
      if (s->items[i].repeat != 1)
        strbuf_printf(b, " * %lld", (long long)s->items[i].repeat);
      strbuf_putc(b, '\n');
    }
    strbuf_printf(b, "%s}", indent);
    break;
  case AST_STMT_OUTPUT:
    strbuf_puts(b, "output ");
    print_list(b, s->outs, s->n_outs);
    break;
  case AST_STMT_RETURN:
    strbuf_puts(b, "return ");
    print_expr(b, s->value, 0);
    break;
  }
  strbuf_putc(b, '\n');
}

void parse_print(const ast_module *m, strbuf *out) {
  if (m->model_name)
    strbuf_printf(out, "model %s\n\n", m->model_name);
  for (int i = 0; i < m->n_blocks; i++) {
    const ast_block *bl = &m->blocks[i];
    strbuf_printf(out, "block %s(", bl->name);
    for (int k = 0; k < bl->n_params; k++) {
      strbuf_printf(out, "%s%s", k ? ", " : "", bl->params[k].name);
      if (bl->params[k].def) {
        strbuf_putc(out, '=');
        print_expr(out, bl->params[k].def, 0);
      }
    }
    strbuf_puts(out, ") {\n");
    for (int k = 0; k < bl->n_stmts; k++)
      print_stmt(out, &bl->stmts[k], "  ");
    strbuf_puts(out, "}\n\n");
  }
  for (int i = 0; i < m->n_stmts; i++)
    print_stmt(out, &m->stmts[i], "");
  for (int i = 0; i < m->n_sections; i++) {
    const ast_section *s = &m->sections[i];
    strbuf_printf(out, "\n%s {\n", s->name);
    for (int k = 0; k < s->n_entries; k++) {
      strbuf_printf(out, "  %s = ", s->entries[k].key);
      print_expr(out, s->entries[k].value, 0);
      strbuf_putc(out, '\n');
    }
    strbuf_puts(out, "}\n");
  }
}
