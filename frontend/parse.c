/* parse.c — recursive-descent parser for .kiln files (the printer that
 * writes a syntax tree back is print.c).
 *
 * Each parse function parses one rule of the grammar in docs/model-format.md,
 * quoted above it. The parser stops at the first error, reported at the
 * offending token as "expected X, found Y"; nothing is recovered, so every
 * function simply returns false (or NULL) once err is set. The token array
 * ends in TOK_EOF and the parser never moves past it, so every loop either
 * consumes a token or fails.
 *
 * Checks that need no name resolution are made here: section names, dtypes,
 * duplicate section keys, block parameters and keyword arguments, where
 * `return`, `input`, `output` and `model` may appear. Everything that needs
 * names or values (ops, attributes, cycles) is elab.c's.
 *
 * Expressions nest at most MAX_DEPTH deep, counting operators in a chain as
 * nesting too (`a+b+c` is a left-deep tree), so that later recursive walks
 * over the tree cannot overflow the stack on hostile input. */
#include "frontend/frontend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_DEPTH = 200, MAX_QUOTED = 40 };

static const char *const section_names[] = {"train", "data", "placement"};
static const char *const dtype_names[] = {"f32",  "f64", "f16",
                                          "bf16", "i32", "i64"};

typedef struct parser {
  arena *a;
  token *tok; /* the current token; never past the final TOK_EOF */
  kiln_error *err;
  int depth; /* expression nesting, see MAX_DEPTH */
} parser;

/* ---- tokens ---- */

static bool is_punct(const token *t, char c) {
  return t->kind == TOK_PUNCT && t->text[0] == c;
}

static bool is_kw(const token *t, const char *kw) {
  return t->kind == TOK_KEYWORD && strcmp(t->text, kw) == 0;
}

static token *advance(parser *p) {
  token *t = p->tok;
  if (t->kind != TOK_EOF)
    p->tok++;
  return t;
}

/* How a message names a token: 'relu', '(', '42', string "abc", end of
 * file. Long lexemes are cut and string bytes escaped, so the message keeps
 * room for the source line and never carries control bytes. */
static const char *describe(parser *p, const token *t) {
  if (t->kind == TOK_EOF)
    return "end of file";
  strbuf b;
  strbuf_init(&b);
  strbuf_puts(&b, t->kind == TOK_STRING ? "string \"" : "'");
  size_t n = strlen(t->text);
  for (size_t i = 0; i < n && i < MAX_QUOTED; i++) {
    unsigned char c = (unsigned char)t->text[i];
    if (c == '"' || c == '\\')
      strbuf_printf(&b, "\\%c", c);
    else if (c < ' ' || c >= 0x7f)
      strbuf_printf(&b, "\\x%02x", c);
    else
      strbuf_putc(&b, (char)c);
  }
  strbuf_puts(&b, n > MAX_QUOTED ? "..." : "");
  strbuf_putc(&b, t->kind == TOK_STRING ? '"' : '\'');
  const char *s = arena_strdup(p->a, b.data);
  strbuf_free(&b);
  return s;
}

/* "expected <what>, found <the current token>" */
static bool expected(parser *p, const char *what) {
  diag_error(p->err, KILN_ERR_SYNTAX, p->tok->loc, "expected %s, found %s",
             what, describe(p, p->tok));
  return false;
}

static bool expect(parser *p, char c) {
  if (!is_punct(p->tok, c)) {
    char what[4] = {'\'', c, '\'', '\0'};
    return expected(p, what);
  }
  advance(p);
  return true;
}

static token *expect_ident(parser *p, const char *what) {
  if (p->tok->kind != TOK_IDENT) {
    expected(p, what);
    return NULL;
  }
  return advance(p);
}

/* Remembers `name` in `seen` (set up on first use); on a repeat reports
 * "duplicate <what> 'name'[ in <ctx> 'ctx_name']" with a note at the first. */
static bool check_unique(parser *p, strmap *seen, const token *name,
                         const char *what, const char *ctx,
                         const char *ctx_name) {
  if (!seen->a)
    strmap_init(seen, p->a);
  kiln_loc *first = strmap_get(seen, name->text);
  if (!first) {
    first = ARENA_NEW(p->a, kiln_loc);
    *first = name->loc;
    strmap_put(seen, name->text, first);
    return true;
  }
  if (ctx)
    diag_error(p->err, KILN_ERR_NAME, name->loc, "duplicate %s '%s' in %s '%s'",
               what, name->text, ctx, ctx_name);
  else
    diag_error(p->err, KILN_ERR_NAME, name->loc, "duplicate %s '%s'", what,
               name->text);
  diag_note(p->err, *first, "first defined here");
  return false;
}

/* ---- expressions ---- */

static ast_expr *parse_expr(parser *p);

static ast_expr *new_expr(parser *p, ast_kind kind, kiln_loc loc) {
  ast_expr *e = ARENA_NEW(p->a, ast_expr);
  e->kind = kind;
  e->loc = loc;
  return e;
}

static ast_expr *new_binary(parser *p, const token *op, ast_expr *lhs,
                            ast_expr *rhs) {
  ast_expr *e = new_expr(p, AST_BINARY, op->loc);
  e->op = op->text[0];
  e->n_args = 2;
  e->args = ARENA_ARRAY(p->a, ast_expr *, 2);
  e->args[0] = lhs;
  e->args[1] = rhs;
  return e;
}

static bool enter(parser *p) {
  if (++p->depth <= MAX_DEPTH)
    return true;
  diag_error(p->err, KILN_ERR_SYNTAX, p->tok->loc,
             "expression nested too deeply (more than %d levels)", MAX_DEPTH);
  return false;
}

/* call := IDENT "(" [ arg { "," arg } [","] ] ")"
 * arg  := expr | IDENT "=" expr       # positional args come first */
static ast_expr *parse_call(parser *p) {
  token *name = expect_ident(p, "call");
  if (!name || !expect(p, '('))
    return NULL;
  ast_expr *e = new_expr(p, AST_CALL, name->loc);
  e->s = name->text;
  int cap = 0, kcap = 0;
  strmap seen = {0};
  while (!is_punct(p->tok, ')')) {
    if (p->tok->kind == TOK_IDENT && is_punct(&p->tok[1], '=')) {
      token *key = advance(p);
      advance(p);
      if (!check_unique(p, &seen, key, "argument", "call to", e->s))
        return NULL;
      ast_kwarg kw = {key->text, key->loc, parse_expr(p)};
      if (!kw.value)
        return NULL;
      ARENA_PUSH(p->a, e->kwargs, e->n_kwargs, kcap, kw);
    } else {
      if (e->n_kwargs > 0) {
        diag_error(p->err, KILN_ERR_SYNTAX, p->tok->loc,
                   "positional argument follows keyword argument");
        return NULL;
      }
      ast_expr *arg = parse_expr(p);
      if (!arg)
        return NULL;
      ARENA_PUSH(p->a, e->args, e->n_args, cap, arg);
    }
    if (!is_punct(p->tok, ','))
      break;
    advance(p);
  }
  return expect(p, ')') ? e : NULL;
}

/* The items of a list or tuple after its first, up to `close`:
 *   { expr "," } [ expr ] close */
static bool parse_items(parser *p, ast_expr *e, int *cap, char close) {
  while (!is_punct(p->tok, close)) {
    ast_expr *item = parse_expr(p);
    if (!item)
      return false;
    ARENA_PUSH(p->a, e->args, e->n_args, *cap, item);
    if (!is_punct(p->tok, ','))
      break;
    advance(p);
  }
  return expect(p, close);
}

/* primary := INT | FLOAT | STRING | "true" | "false" | IDENT | call
 *          | "[" [ expr { "," expr } [","] ] "]"          # list
 *          | "(" expr ")"                                 # grouping
 *          | "(" expr "," [ expr { "," expr } [","] ] ")" # tuple */
static ast_expr *parse_primary(parser *p) {
  token *t = p->tok;
  ast_expr *e;
  int cap = 0;
  switch (t->kind) {
  case TOK_INT:
    e = new_expr(p, AST_INT, advance(p)->loc);
    e->i = t->i;
    return e;
  case TOK_FLOAT:
    e = new_expr(p, AST_FLOAT, advance(p)->loc);
    e->f = t->f;
    return e;
  case TOK_STRING:
    e = new_expr(p, AST_STRING, advance(p)->loc);
    e->s = t->text;
    return e;
  case TOK_IDENT:
    if (is_punct(&t[1], '('))
      return parse_call(p);
    e = new_expr(p, AST_NAME, advance(p)->loc);
    e->s = t->text;
    return e;
  case TOK_KEYWORD:
    if (is_kw(t, "true") || is_kw(t, "false")) {
      e = new_expr(p, AST_BOOL, advance(p)->loc);
      e->i = is_kw(t, "true");
      return e;
    }
    break;
  case TOK_PUNCT:
    if (is_punct(t, '[')) {
      e = new_expr(p, AST_LIST, advance(p)->loc);
      return parse_items(p, e, &cap, ']') ? e : NULL;
    }
    if (is_punct(t, '(')) {
      advance(p);
      ast_expr *first = parse_expr(p);
      if (!first)
        return NULL;
      if (!is_punct(p->tok, ','))
        return expect(p, ')') ? first : NULL;
      advance(p);
      e = new_expr(p, AST_TUPLE, t->loc);
      ARENA_PUSH(p->a, e->args, e->n_args, cap, first);
      return parse_items(p, e, &cap, ')') ? e : NULL;
    }
    break;
  default:
    break;
  }
  expected(p, "expression");
  return NULL;
}

/* unary := "-" unary | primary */
static ast_expr *parse_unary(parser *p) {
  if (!enter(p))
    return NULL;
  ast_expr *e;
  if (is_punct(p->tok, '-')) {
    token *op = advance(p);
    ast_expr *operand = parse_unary(p);
    e = NULL;
    if (operand) {
      e = new_expr(p, AST_NEG, op->loc);
      e->n_args = 1;
      e->args = ARENA_ARRAY(p->a, ast_expr *, 1);
      e->args[0] = operand;
    }
  } else {
    e = parse_primary(p);
  }
  p->depth--;
  return e;
}

/* term := unary { ("*" | "/") unary } */
static ast_expr *parse_term(parser *p) {
  int depth = p->depth;
  ast_expr *e = parse_unary(p);
  while (e && (is_punct(p->tok, '*') || is_punct(p->tok, '/'))) {
    token *op = advance(p);
    ast_expr *rhs = enter(p) ? parse_unary(p) : NULL;
    e = rhs ? new_binary(p, op, e, rhs) : NULL;
  }
  p->depth = depth;
  return e;
}

/* expr := term { ("+" | "-") term } */
static ast_expr *parse_expr(parser *p) {
  int depth = p->depth;
  ast_expr *e = parse_term(p);
  while (e && (is_punct(p->tok, '+') || is_punct(p->tok, '-'))) {
    token *op = advance(p);
    ast_expr *rhs = enter(p) ? parse_term(p) : NULL;
    e = rhs ? new_binary(p, op, e, rhs) : NULL;
  }
  p->depth = depth;
  return e;
}

/* ---- statements ---- */

static bool one_of(const char *word, const char *const *names, int n) {
  for (int i = 0; i < n; i++)
    if (strcmp(word, names[i]) == 0)
      return true;
  return false;
}

/* "unknown <what> 'word' (did you mean 'x'?)" or "(expected a, b or c)" */
static bool unknown(parser *p, const token *t, const char *what,
                    const char *const *names, int n) {
  const char *guess = suggest_closest(t->text, names, n);
  strbuf b;
  strbuf_init(&b);
  for (int i = 0; i < n; i++)
    strbuf_printf(&b, "%s%s",
                  i == 0       ? ""
                  : i == n - 1 ? " or "
                               : ", ",
                  names[i]);
  if (guess)
    diag_error(p->err, KILN_ERR_NAME, t->loc,
               "unknown %s '%s' (did you mean '%s'?)", what, t->text, guess);
  else
    diag_error(p->err, KILN_ERR_NAME, t->loc, "unknown %s '%s' (expected %s)",
               what, t->text, b.data);
  strbuf_free(&b);
  return false;
}

/* input := "input" IDENT ":" DTYPE "[" dim { "," dim } "]"
 * dim   := INT | "batch" */
static bool parse_input(parser *p, ast_stmt *st) {
  st->kind = AST_STMT_INPUT;
  st->loc = advance(p)->loc;
  token *name = expect_ident(p, "input name");
  if (!name || !expect(p, ':'))
    return false;
  st->name = name->text;
  st->name_loc = name->loc;
  token *dt = expect_ident(p, "dtype");
  if (!dt)
    return false;
  if (!one_of(dt->text, dtype_names, ARRAY_LEN(dtype_names)))
    return unknown(p, dt, "dtype", dtype_names, ARRAY_LEN(dtype_names));
  st->dtype = dt->text;
  st->dtype_loc = dt->loc;
  if (!expect(p, '['))
    return false;
  int cap = 0;
  do {
    token *t = p->tok;
    ast_expr *d;
    if (t->kind == TOK_INT) {
      d = new_expr(p, AST_INT, t->loc);
      d->i = t->i;
    } else if (t->kind == TOK_IDENT && strcmp(t->text, "batch") == 0) {
      d = new_expr(p, AST_NAME, t->loc);
      d->s = t->text;
    } else {
      return expected(p, "integer or 'batch'");
    }
    advance(p);
    ARENA_PUSH(p->a, st->dims, st->n_dims, cap, d);
  } while (is_punct(p->tok, ',') && advance(p));
  return expect(p, ']');
}

/* output := "output" IDENT { "," IDENT } */
static bool parse_output(parser *p, ast_stmt *st) {
  st->kind = AST_STMT_OUTPUT;
  st->loc = advance(p)->loc;
  int cap = 0;
  do {
    token *t = expect_ident(p, "output name");
    if (!t)
      return false;
    ast_expr *e = new_expr(p, AST_NAME, t->loc);
    e->s = t->text;
    ARENA_PUSH(p->a, st->outs, st->n_outs, cap, e);
  } while (is_punct(p->tok, ',') && advance(p));
  return true;
}

/* seqitem := call [ "*" INT ] */
static bool parse_seqitem(parser *p, ast_seq_item *it) {
  if (p->tok->kind != TOK_IDENT)
    return expected(p, "call or '}'");
  it->loc = p->tok->loc;
  it->repeat = 1;
  if (!(it->call = parse_call(p)))
    return false;
  if (!is_punct(p->tok, '*'))
    return true;
  advance(p);
  if (p->tok->kind != TOK_INT || p->tok->i < 1)
    return expected(p, "repeat count (an integer >= 1)");
  it->repeat = advance(p)->i;
  return true;
}

/* assign   := IDENT "=" expr
 * sequence := IDENT "=" "sequence" "(" expr ")" "{" { seqitem } "}" */
static bool parse_assign(parser *p, ast_stmt *st) {
  token *name = advance(p);
  st->kind = AST_STMT_ASSIGN;
  st->loc = st->name_loc = name->loc;
  st->name = name->text;
  if (!expect(p, '='))
    return false;
  if (!is_kw(p->tok, "sequence"))
    return (st->value = parse_expr(p)) != NULL;
  st->kind = AST_STMT_SEQUENCE;
  advance(p);
  if (!expect(p, '(') || !(st->value = parse_expr(p)) || !expect(p, ')') ||
      !expect(p, '{'))
    return false;
  int cap = 0;
  while (!is_punct(p->tok, '}')) {
    ast_seq_item it = {0};
    if (!parse_seqitem(p, &it))
      return false;
    ARENA_PUSH(p->a, st->items, st->n_items, cap, it);
  }
  advance(p);
  return true;
}

/* block := "block" IDENT "(" [ param { "," param } ] ")"
 *          "{" { assign | sequence } "return" expr "}"
 * param := IDENT [ "=" expr ] */
static bool parse_block(parser *p, ast_block *b) {
  advance(p);
  token *name = expect_ident(p, "block name");
  if (!name || !expect(p, '('))
    return false;
  b->name = name->text;
  b->loc = name->loc;
  int cap = 0;
  strmap seen = {0};
  while (!is_punct(p->tok, ')')) {
    token *t = expect_ident(p, b->n_params ? "parameter name"
                                           : "parameter name or ')'");
    if (!t || !check_unique(p, &seen, t, "parameter", "block", b->name))
      return false;
    ast_block_param prm = {t->text, t->loc, NULL};
    if (is_punct(p->tok, '=')) {
      advance(p);
      if (!(prm.def = parse_expr(p)))
        return false;
    }
    ARENA_PUSH(p->a, b->params, b->n_params, cap, prm);
    if (!is_punct(p->tok, ','))
      break;
    advance(p);
    if (is_punct(p->tok, ')'))
      return expected(p, "parameter name");
  }
  if (!expect(p, ')') || !expect(p, '{'))
    return false;
  cap = 0;
  for (;;) {
    token *t = p->tok;
    ast_stmt st = {0};
    if (is_kw(t, "return")) {
      st.kind = AST_STMT_RETURN;
      st.loc = advance(p)->loc;
      if (!(st.value = parse_expr(p)))
        return false;
      ARENA_PUSH(p->a, b->stmts, b->n_stmts, cap, st);
      if (!is_punct(p->tok, '}'))
        return expected(p, "'}' after the return statement");
      advance(p);
      return true;
    }
    if (is_punct(t, '}'))
      return expected(p, "'return' (a block ends with a return statement)");
    if (t->kind == TOK_KEYWORD && !is_kw(t, "sequence") && !is_kw(t, "true") &&
        !is_kw(t, "false")) {
      diag_error(p->err, KILN_ERR_SYNTAX, t->loc,
                 "'%s' is not allowed inside a block", t->text);
      return false;
    }
    if (t->kind != TOK_IDENT)
      return expected(p, "statement");
    if (!parse_assign(p, &st))
      return false;
    ARENA_PUSH(p->a, b->stmts, b->n_stmts, cap, st);
  }
}

/* section := IDENT "{" { IDENT "=" expr } "}"   # train, data, placement */
static bool parse_section(parser *p, ast_section *s, strmap *sections) {
  token *name = advance(p);
  if (!one_of(name->text, section_names, ARRAY_LEN(section_names)))
    return unknown(p, name, "section", section_names, ARRAY_LEN(section_names));
  if (!check_unique(p, sections, name, "section", NULL, NULL))
    return false;
  s->name = name->text;
  s->loc = name->loc;
  advance(p);
  int cap = 0;
  strmap seen = {0};
  while (!is_punct(p->tok, '}')) {
    token *key = expect_ident(p, "key or '}'");
    if (!key)
      return false;
    if (!check_unique(p, &seen, key, "key", "section", s->name))
      return false;
    ast_entry en = {key->text, key->loc, NULL};
    if (!expect(p, '=') || !(en.value = parse_expr(p)))
      return false;
    ARENA_PUSH(p->a, s->entries, s->n_entries, cap, en);
  }
  advance(p);
  return true;
}

/* module := [ "model" IDENT ] { item }
 * item   := input | output | assign | sequence | block | section */
kiln_status parse_module(arena *a, const src_file *f, ast_module *out,
                         kiln_error *err) {
  kiln_error scratch; /* the checks below read err->status */
  if (!err)
    err = &scratch;
  memset(out, 0, sizeof *out);
  out->file = f;
  token *toks;
  int n;
  kiln_status st = lex_tokenize(a, f, &toks, &n, err);
  if (st != KILN_OK)
    return st;
  parser p = {a, toks, err, 0};
  int scap = 0, bcap = 0, secap = 0;
  strmap sections = {0};
  bool ok = true;
  while (ok && p.tok->kind != TOK_EOF) {
    token *t = p.tok;
    if (is_kw(t, "model")) {
      if (out->model_name) {
        diag_error(err, KILN_ERR_SYNTAX, t->loc, "duplicate 'model' line");
        diag_note(err, out->model_loc, "first given here");
        return KILN_ERR_SYNTAX;
      }
      if (out->n_stmts || out->n_blocks || out->n_sections)
        return diag_error(err, KILN_ERR_SYNTAX, t->loc,
                          "'model' must come before everything else");
      advance(&p);
      token *name = expect_ident(&p, "model name");
      if (!name)
        return err->status;
      out->model_name = name->text;
      out->model_loc = name->loc;
    } else if (is_kw(t, "block")) {
      ast_block b = {0};
      ok = parse_block(&p, &b);
      if (ok)
        ARENA_PUSH(a, out->blocks, out->n_blocks, bcap, b);
    } else if (t->kind == TOK_IDENT && is_punct(&t[1], '{')) {
      ast_section s = {0};
      ok = parse_section(&p, &s, &sections);
      if (ok)
        ARENA_PUSH(a, out->sections, out->n_sections, secap, s);
    } else {
      ast_stmt s = {0};
      if (is_kw(t, "input"))
        ok = parse_input(&p, &s);
      else if (is_kw(t, "output"))
        ok = parse_output(&p, &s);
      else if (t->kind == TOK_IDENT)
        ok = parse_assign(&p, &s);
      else if (is_kw(t, "return"))
        return diag_error(err, KILN_ERR_SYNTAX, t->loc,
                          "'return' outside a block");
      else
        ok = expected(&p, "statement");
      if (ok)
        ARENA_PUSH(a, out->stmts, out->n_stmts, scap, s);
    }
  }
  return ok ? KILN_OK : err->status;
}
