/* test_parse.c — the tokenizer and parser: tokens of a sample, syntax trees
 * of samples, print -> parse round trips (every .kiln file in models/ and
 * inline samples), and every error with its exact text and location. */
#include "frontend/frontend.h"
#include "test.h"

#include <dirent.h>
#include <stdlib.h>

/* One parse, with everything it needs kept together. */
typedef struct parsed {
  arena a;
  src_file f;
  ast_module m;
  kiln_error err;
  kiln_status st;
} parsed;

static kiln_status parse_n(parsed *p, const char *name, const char *text,
                           size_t len) {
  arena_init(&p->a);
  char *copy = arena_alloc(&p->a, len + 1);
  memcpy(copy, text, len);
  p->f = (src_file){name, copy, len};
  p->err.message[0] = '\0';
  p->err.status = KILN_OK;
  p->st = parse_module(&p->a, &p->f, &p->m, &p->err);
  return p->st;
}

static kiln_status parse_str(parsed *p, const char *text) {
  return parse_n(p, "t.kiln", text, strlen(text));
}

/* ---- structural equality, ignoring locations ---- */

static bool str_eq(const char *a, const char *b) {
  return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool expr_eq(const ast_expr *a, const ast_expr *b) {
  if (!a || !b)
    return a == b;
  if (a->kind != b->kind || a->i != b->i || a->f != b->f || a->op != b->op ||
      !str_eq(a->s, b->s) || a->n_args != b->n_args ||
      a->n_kwargs != b->n_kwargs)
    return false;
  for (int i = 0; i < a->n_args; i++)
    if (!expr_eq(a->args[i], b->args[i]))
      return false;
  for (int i = 0; i < a->n_kwargs; i++)
    if (!str_eq(a->kwargs[i].name, b->kwargs[i].name) ||
        !expr_eq(a->kwargs[i].value, b->kwargs[i].value))
      return false;
  return true;
}

static bool stmt_eq(const ast_stmt *a, const ast_stmt *b) {
  if (a->kind != b->kind || !str_eq(a->name, b->name) ||
      !expr_eq(a->value, b->value) || !str_eq(a->dtype, b->dtype) ||
      a->n_dims != b->n_dims || a->n_items != b->n_items ||
      a->n_outs != b->n_outs)
    return false;
  for (int i = 0; i < a->n_dims; i++)
    if (!expr_eq(a->dims[i], b->dims[i]))
      return false;
  for (int i = 0; i < a->n_items; i++)
    if (a->items[i].repeat != b->items[i].repeat ||
        !expr_eq(a->items[i].call, b->items[i].call))
      return false;
  for (int i = 0; i < a->n_outs; i++)
    if (!expr_eq(a->outs[i], b->outs[i]))
      return false;
  return true;
}

static bool module_eq(const ast_module *a, const ast_module *b) {
  if (!str_eq(a->model_name, b->model_name) || a->n_stmts != b->n_stmts ||
      a->n_blocks != b->n_blocks || a->n_sections != b->n_sections)
    return false;
  for (int i = 0; i < a->n_stmts; i++)
    if (!stmt_eq(&a->stmts[i], &b->stmts[i]))
      return false;
  for (int i = 0; i < a->n_blocks; i++) {
    const ast_block *x = &a->blocks[i], *y = &b->blocks[i];
    if (!str_eq(x->name, y->name) || x->n_params != y->n_params ||
        x->n_stmts != y->n_stmts)
      return false;
    for (int k = 0; k < x->n_params; k++)
      if (!str_eq(x->params[k].name, y->params[k].name) ||
          !expr_eq(x->params[k].def, y->params[k].def))
        return false;
    for (int k = 0; k < x->n_stmts; k++)
      if (!stmt_eq(&x->stmts[k], &y->stmts[k]))
        return false;
  }
  for (int i = 0; i < a->n_sections; i++) {
    const ast_section *x = &a->sections[i], *y = &b->sections[i];
    if (!str_eq(x->name, y->name) || x->n_entries != y->n_entries)
      return false;
    for (int k = 0; k < x->n_entries; k++)
      if (!str_eq(x->entries[k].key, y->entries[k].key) ||
          !expr_eq(x->entries[k].value, y->entries[k].value))
        return false;
  }
  return true;
}

/* parse(print(parse(text))) == parse(text), and printing is a fixed point. */
static void check_round_trip(const char *name, const char *text, size_t len) {
  parsed a, b;
  if (parse_n(&a, name, text, len) != KILN_OK) {
    fprintf(stderr, "round trip: %s does not parse:\n%s", name, a.err.message);
    CHECK(0);
    arena_free(&a.a);
    return;
  }
  strbuf s1, s2;
  strbuf_init(&s1);
  strbuf_init(&s2);
  parse_print(&a.m, &s1);
  CHECK_EQ_INT(parse_n(&b, name, s1.data ? s1.data : "", s1.len), KILN_OK);
  if (b.st == KILN_OK) {
    if (!module_eq(&a.m, &b.m)) {
      fprintf(stderr, "round trip of %s differs; printed:\n%s\n", name,
              s1.data);
      CHECK(0);
    }
    parse_print(&b.m, &s2);
    CHECK(s1.len == s2.len &&
          (!s1.len || memcmp(s1.data, s2.data, s1.len) == 0));
  } else {
    fprintf(stderr, "%s\n%s", b.err.message, s1.data);
  }
  strbuf_free(&s1);
  strbuf_free(&s2);
  arena_free(&a.a);
  arena_free(&b.a);
}

/* ---- tokens ---- */

TEST(test_lex_tokens) {
  const char *text =
      "model m  # a comment\n"
      "x = f(layer1.0.conv1, 12, 0.5, 1e-3, 5.0E+2, \"q\\\"\\\\\\n\\t\", "
      "true)\n"
      "\t[ ] { } : - * / + batch sequence";
  static const struct {
    tok_kind kind;
    const char *text;
    int line, col;
  } want[] = {
      {TOK_KEYWORD, "model", 1, 1},
      {TOK_IDENT, "m", 1, 7},
      {TOK_IDENT, "x", 2, 1},
      {TOK_PUNCT, "=", 2, 3},
      {TOK_IDENT, "f", 2, 5},
      {TOK_PUNCT, "(", 2, 6},
      {TOK_IDENT, "layer1.0.conv1", 2, 7},
      {TOK_PUNCT, ",", 2, 21},
      {TOK_INT, "12", 2, 23},
      {TOK_PUNCT, ",", 2, 25},
      {TOK_FLOAT, "0.5", 2, 27},
      {TOK_PUNCT, ",", 2, 30},
      {TOK_FLOAT, "1e-3", 2, 32},
      {TOK_PUNCT, ",", 2, 36},
      {TOK_FLOAT, "5.0E+2", 2, 38},
      {TOK_PUNCT, ",", 2, 44},
      {TOK_STRING, "q\"\\\n\t", 2, 46},
      {TOK_PUNCT, ",", 2, 57},
      {TOK_KEYWORD, "true", 2, 59},
      {TOK_PUNCT, ")", 2, 63},
      {TOK_PUNCT, "[", 3, 2},
      {TOK_PUNCT, "]", 3, 4},
      {TOK_PUNCT, "{", 3, 6},
      {TOK_PUNCT, "}", 3, 8},
      {TOK_PUNCT, ":", 3, 10},
      {TOK_PUNCT, "-", 3, 12},
      {TOK_PUNCT, "*", 3, 14},
      {TOK_PUNCT, "/", 3, 16},
      {TOK_PUNCT, "+", 3, 18},
      {TOK_IDENT, "batch", 3, 20},
      {TOK_KEYWORD, "sequence", 3, 26},
      {TOK_EOF, "", 3, 34},
  };
  arena a;
  arena_init(&a);
  src_file f = {"t.kiln", text, strlen(text)};
  token *toks;
  int n;
  kiln_error err;
  CHECK_EQ_INT(lex_tokenize(&a, &f, &toks, &n, &err), KILN_OK);
  CHECK_EQ_INT(n, ARRAY_LEN(want));
  for (int i = 0; i < n && i < (int)ARRAY_LEN(want); i++) {
    CHECK_EQ_INT(toks[i].kind, want[i].kind);
    CHECK(strcmp(toks[i].text, want[i].text) == 0);
    CHECK_EQ_INT(toks[i].loc.line, want[i].line);
    CHECK_EQ_INT(toks[i].loc.col, want[i].col);
    CHECK(toks[i].loc.file == &f);
  }
  CHECK_EQ_INT(toks[8].i, 12);
  CHECK_NEAR(toks[10].f, 0.5, 0);
  CHECK_NEAR(toks[12].f, 1e-3, 0);
  CHECK_NEAR(toks[14].f, 500.0, 0);
  arena_free(&a);
}

TEST(test_lex_limits) {
  parsed p;
  CHECK_EQ_INT(parse_str(&p, "x = 9223372036854775807"), KILN_OK);
  CHECK_EQ_INT(p.m.stmts[0].value->i, INT64_MAX);
  arena_free(&p.a);
  CHECK_EQ_INT(parse_str(&p, "x = 007 + 1e-400"), KILN_OK);
  CHECK_EQ_INT(p.m.stmts[0].value->args[0]->i, 7);
  arena_free(&p.a);
  /* Without a kiln_error the status still comes back. */
  arena_init(&p.a);
  src_file f = {"t.kiln", "x = (", 5};
  CHECK_EQ_INT(parse_module(&p.a, &f, &p.m, NULL), KILN_ERR_SYNTAX);
  arena_free(&p.a);
  /* `model.x` is a name, not a keyword. */
  CHECK_EQ_INT(parse_str(&p, "model.x = input.1"), KILN_OK);
  CHECK(strcmp(p.m.stmts[0].name, "model.x") == 0);
  CHECK(strcmp(p.m.stmts[0].value->s, "input.1") == 0);
  arena_free(&p.a);
}

/* Each lexical error: its status and the exact message head. */
TEST(test_lex_errors) {
  static const struct {
    const char *text;
    size_t len; /* 0: strlen */
    const char *msg;
  } cases[] = {
      {"x = @", 0, "t.kiln:1:5: error: unexpected character '@'"},
      {"x = 1\n  $y", 0, "t.kiln:2:3: error: unexpected character '$'"},
      {"x = \x01", 0, "t.kiln:1:5: error: unexpected character '\\x01'"},
      {"x = a\0b", 7, "t.kiln:1:6: error: unexpected character '\\x00'"},
      {"# note \0 here\n", 14,
       "t.kiln:1:8: error: unexpected character "
       "'\\x00'"},
      {"x = \"a\0\"", 8, "t.kiln:1:7: error: unexpected character '\\x00'"},
      {"x = \xc3\xa9", 0, "t.kiln:1:5: error: unexpected character '\\xc3'"},
      {"x = .5", 0, "t.kiln:1:5: error: unexpected character '.'"},
      {"x = a. b", 0, "t.kiln:1:6: error: unexpected character '.'"},
      {"x = f(a;)", 0, "t.kiln:1:8: error: unexpected character ';'"},
      {"x = 1.", 0, "t.kiln:1:5: error: invalid number '1.'"},
      {"x = 3x3", 0, "t.kiln:1:5: error: invalid number '3x3'"},
      {"x = 1e+", 0, "t.kiln:1:5: error: invalid number '1e'"},
      {"x = 1.5.2", 0, "t.kiln:1:5: error: invalid number '1.5.2'"},
      {"x = 9223372036854775808", 0,
       "t.kiln:1:5: error: integer literal too large: "
       "'9223372036854775808'"},
      {"x = 1e999", 0,
       "t.kiln:1:5: error: float literal out of range: "
       "'1e999'"},
      {"x = \"abc", 0, "t.kiln:1:5: error: unterminated string"},
      {"x = \"ab\ncd\"", 0, "t.kiln:1:5: error: unterminated string"},
      {"x = \"ab\\", 0, "t.kiln:1:5: error: unterminated string"},
      {"x = \"a\\qb\"", 0,
       "t.kiln:1:7: error: unknown escape '\\q' in "
       "string"},
  };
  for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
    parsed p;
    size_t len = cases[i].len ? cases[i].len : strlen(cases[i].text);
    CHECK_EQ_INT(parse_n(&p, "t.kiln", cases[i].text, len), KILN_ERR_SYNTAX);
    CHECK_EQ_INT(p.err.status, KILN_ERR_SYNTAX);
    CHECK_STR_CONTAINS(p.err.message, cases[i].msg);
    arena_free(&p.a);
  }
}

/* ---- syntax trees ---- */

TEST(test_parse_statements) {
  parsed p;
  CHECK_EQ_INT(parse_str(&p, "model lenet\n"
                             "input image: f32[batch, 1, 28, 28]\n"
                             "input label: i32[batch]\n"
                             "out = relu(add(a, b), k=1, s=\"x\")\n"
                             "output out, image\n"),
               KILN_OK);
  const ast_module *m = &p.m;
  CHECK(strcmp(m->model_name, "lenet") == 0);
  CHECK_EQ_INT(m->model_loc.col, 7);
  CHECK_EQ_INT(m->n_stmts, 4);
  const ast_stmt *in = &m->stmts[0];
  CHECK_EQ_INT(in->kind, AST_STMT_INPUT);
  CHECK(strcmp(in->name, "image") == 0 && strcmp(in->dtype, "f32") == 0);
  CHECK_EQ_INT(in->dtype_loc.col, 14);
  CHECK_EQ_INT(in->n_dims, 4);
  CHECK_EQ_INT(in->dims[0]->kind, AST_NAME);
  CHECK(strcmp(in->dims[0]->s, "batch") == 0);
  CHECK_EQ_INT(in->dims[3]->kind, AST_INT);
  CHECK_EQ_INT(in->dims[3]->i, 28);
  CHECK_EQ_INT(m->stmts[1].n_dims, 1);
  const ast_stmt *as = &m->stmts[2];
  CHECK_EQ_INT(as->kind, AST_STMT_ASSIGN);
  CHECK_EQ_INT(as->loc.line, 4);
  const ast_expr *call = as->value;
  CHECK_EQ_INT(call->kind, AST_CALL);
  CHECK(strcmp(call->s, "relu") == 0);
  CHECK_EQ_INT(call->n_args, 1);
  CHECK_EQ_INT(call->n_kwargs, 2);
  CHECK(strcmp(call->kwargs[0].name, "k") == 0);
  CHECK_EQ_INT(call->kwargs[0].value->i, 1);
  CHECK_EQ_INT(call->kwargs[1].value->kind, AST_STRING);
  const ast_expr *inner = call->args[0];
  CHECK_EQ_INT(inner->kind, AST_CALL);
  CHECK(strcmp(inner->s, "add") == 0);
  CHECK_EQ_INT(inner->n_args, 2);
  CHECK_EQ_INT(inner->loc.col, 12);
  CHECK(strcmp(inner->args[1]->s, "b") == 0);
  const ast_stmt *o = &m->stmts[3];
  CHECK_EQ_INT(o->kind, AST_STMT_OUTPUT);
  CHECK_EQ_INT(o->n_outs, 2);
  CHECK(strcmp(o->outs[1]->s, "image") == 0);
  arena_free(&p.a);
}

TEST(test_parse_sequence_and_block) {
  parsed p;
  CHECK_EQ_INT(parse_str(&p, "block basic(x, channels, stride=1) {\n"
                             "  c = conv2d(x, out=channels, stride=stride)\n"
                             "  s = sequence(c) { relu() }\n"
                             "  return relu(add(c, x))\n"
                             "}\n"
                             "layer2 = sequence(layer1) {\n"
                             "  basic_down(channels=128, stride=2)\n"
                             "  basic(channels=128) * 3\n"
                             "}\n"),
               KILN_OK);
  CHECK_EQ_INT(p.m.n_blocks, 1);
  const ast_block *b = &p.m.blocks[0];
  CHECK(strcmp(b->name, "basic") == 0);
  CHECK_EQ_INT(b->n_params, 3);
  CHECK(b->params[0].def == NULL && b->params[1].def == NULL);
  CHECK(strcmp(b->params[2].name, "stride") == 0);
  CHECK_EQ_INT(b->params[2].def->i, 1);
  CHECK_EQ_INT(b->n_stmts, 3);
  CHECK_EQ_INT(b->stmts[1].kind, AST_STMT_SEQUENCE);
  CHECK_EQ_INT(b->stmts[2].kind, AST_STMT_RETURN);
  CHECK_EQ_INT(b->stmts[2].value->kind, AST_CALL);
  CHECK_EQ_INT(p.m.n_stmts, 1);
  const ast_stmt *s = &p.m.stmts[0];
  CHECK_EQ_INT(s->kind, AST_STMT_SEQUENCE);
  CHECK(strcmp(s->name, "layer2") == 0);
  CHECK(strcmp(s->value->s, "layer1") == 0);
  CHECK_EQ_INT(s->n_items, 2);
  CHECK(strcmp(s->items[0].call->s, "basic_down") == 0);
  CHECK_EQ_INT(s->items[0].call->n_args, 0);
  CHECK_EQ_INT(s->items[0].call->n_kwargs, 2);
  CHECK_EQ_INT(s->items[0].repeat, 1);
  CHECK_EQ_INT(s->items[1].repeat, 3);
  CHECK_EQ_INT(s->items[1].loc.line, 8);
  CHECK_EQ_INT(s->items[1].loc.col, 3);
  arena_free(&p.a);
}

TEST(test_parse_expressions) {
  parsed p;
  CHECK_EQ_INT(parse_str(&p, "a = (1)\n"
                             "b = (1,)\n"
                             "c = (1, 2.5,)\n"
                             "d = []\n"
                             "e = [x, [1], (2, 3),]\n"
                             "f = -2 * 3 + -(4 - 1) / 2\n"
                             "g = a - -b - c\n"
                             "h = layer1.0.downsample.1\n"
                             "i = true\n"
                             "j = 5.0E+2\n"),
               KILN_OK);
  ast_expr **v = ARENA_ARRAY(&p.a, ast_expr *, p.m.n_stmts);
  for (int i = 0; i < p.m.n_stmts; i++)
    v[i] = p.m.stmts[i].value;
  CHECK_EQ_INT(v[0]->kind, AST_INT); /* grouping makes no node */
  CHECK_EQ_INT(v[1]->kind, AST_TUPLE);
  CHECK_EQ_INT(v[1]->n_args, 1);
  CHECK_EQ_INT(v[2]->kind, AST_TUPLE);
  CHECK_EQ_INT(v[2]->n_args, 2);
  CHECK_EQ_INT(v[2]->args[1]->kind, AST_FLOAT);
  CHECK_EQ_INT(v[3]->kind, AST_LIST);
  CHECK_EQ_INT(v[3]->n_args, 0);
  CHECK_EQ_INT(v[4]->n_args, 3);
  CHECK_EQ_INT(v[4]->args[1]->kind, AST_LIST);
  CHECK_EQ_INT(v[4]->args[2]->kind, AST_TUPLE);
  /* f = ((-2) * 3) + ((-(4 - 1)) / 2) */
  const ast_expr *f = v[5];
  CHECK(f->kind == AST_BINARY && f->op == '+');
  CHECK(f->args[0]->op == '*' && f->args[0]->args[0]->kind == AST_NEG);
  CHECK_EQ_INT(f->args[0]->args[0]->args[0]->i, 2);
  CHECK(f->args[1]->op == '/' && f->args[1]->args[0]->kind == AST_NEG);
  CHECK_EQ_INT(f->args[1]->args[0]->args[0]->op, '-');
  CHECK_EQ_INT(f->loc.col, 12); /* a binary node sits at its operator */
  /* g = (a - (-b)) - c: left-associative */
  const ast_expr *g = v[6];
  CHECK(g->op == '-' && g->args[1]->kind == AST_NAME);
  CHECK(g->args[0]->op == '-' && g->args[0]->args[1]->kind == AST_NEG);
  CHECK(strcmp(v[7]->s, "layer1.0.downsample.1") == 0);
  CHECK(v[8]->kind == AST_BOOL && v[8]->i == 1);
  CHECK_NEAR(v[9]->f, 500.0, 0);
  arena_free(&p.a);
}

TEST(test_parse_sections) {
  parsed p;
  CHECK_EQ_INT(parse_str(&p, "train {\n"
                             "  optimizer = sgd(lr=0.05, momentum=0.9)\n"
                             "  batch = 128\n"
                             "}\n"
                             "data { normalize = (0.5, 0.25) }\n"
                             "placement { stages = [[a], [b, c]] }\n"),
               KILN_OK);
  CHECK_EQ_INT(p.m.n_sections, 3);
  const ast_section *t = &p.m.sections[0];
  CHECK(strcmp(t->name, "train") == 0);
  CHECK_EQ_INT(t->n_entries, 2);
  CHECK(strcmp(t->entries[1].key, "batch") == 0);
  CHECK_EQ_INT(t->entries[1].loc.line, 3);
  CHECK_EQ_INT(t->entries[1].value->i, 128);
  CHECK_EQ_INT(p.m.sections[1].entries[0].value->kind, AST_TUPLE);
  CHECK_EQ_INT(p.m.sections[2].entries[0].value->args[1]->n_args, 2);
  CHECK_EQ_INT(p.m.n_stmts, 0);
  arena_free(&p.a);
}

/* ---- round trips ---- */

TEST(test_round_trip_inline) {
  static const char *const samples[] = {
      "",
      "model m\n",
      "x = f(a, b, k=-1, t=(1, 2), l=[1.5, 2e-10, 1e+300], s=\"a\\\"\\n\\t\")",
      "x = (a + b) * c - d / (e - f) - (g - h)",
      "x = -(-a) - -b * --c + (-2) * 3",
      "x = a * (b * c) + (1, (2,), [])",
      "x = 0.1 + 100.0 + 1e-3 + 123456789.125 + 5e-324 + "
      "1.7976931348623157e308",
      "block b(x, n=2 * 3, m=n) {\n s = sequence(x) { f() g(k=1) * 4 }\n"
      "  return s }\ninput i: bf16[batch, 3]\noutput a, b\n"
      "y = sequence(i) { b(n=1) * 2 }\ntrain { batch = 1 }",
  };
  for (size_t i = 0; i < ARRAY_LEN(samples); i++)
    check_round_trip("inline.kiln", samples[i], strlen(samples[i]));
}

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  char *buf = NULL;
  size_t cap = 0;
  *len = 0;
  for (;;) {
    if (*len + 4096 > cap) {
      cap = (cap + 4096) * 2;
      buf = realloc(buf, cap);
    }
    size_t got = fread(buf + *len, 1, cap - *len - 1, f);
    if (got == 0)
      break;
    *len += got;
  }
  fclose(f);
  buf[*len] = '\0';
  return buf;
}

TEST(test_round_trip_models) {
  DIR *d = opendir("models");
  CHECK(d != NULL);
  if (!d)
    return;
  int n = 0;
  for (struct dirent *e; (e = readdir(d));) {
    size_t len = strlen(e->d_name);
    if (len < 6 || strcmp(e->d_name + len - 5, ".kiln") != 0)
      continue;
    char path[512];
    snprintf(path, sizeof path, "models/%s", e->d_name);
    size_t size;
    char *text = read_file(path, &size);
    CHECK(text != NULL);
    if (text)
      check_round_trip(path, text, size);
    free(text);
    n++;
  }
  closedir(d);
  printf("round trip: %d model files\n", n);
}

/* ---- syntax errors ---- */

TEST(test_parse_errors) {
  static const struct {
    const char *text;
    kiln_status status;
    const char *msg, *note;
  } cases[] = {
      {"model m\ninput a: f32[batch]\ny = f(a relu(a))", KILN_ERR_SYNTAX,
       "t.kiln:3:9: error: expected ')', found 'relu'\n"
       "y = f(a relu(a))\n        ^\n",
       NULL},
      {"x = f(a, b=1, c)", KILN_ERR_SYNTAX,
       "t.kiln:1:15: error: positional argument follows keyword argument",
       NULL},
      {"x = f(a, b=1, b=2)", KILN_ERR_NAME,
       "t.kiln:1:15: error: duplicate argument 'b' in call to 'f'",
       "t.kiln:1:10: note: first defined here"},
      {"trian {\n  batch = 1\n}", KILN_ERR_NAME,
       "t.kiln:1:1: error: unknown section 'trian' (did you mean 'train'?)",
       NULL},
      {"foo { }", KILN_ERR_NAME,
       "t.kiln:1:1: error: unknown section 'foo' "
       "(expected train, data or placement)",
       NULL},
      {"train {\n  batch = 1\n  batch = 2\n}", KILN_ERR_NAME,
       "t.kiln:3:3: error: duplicate key 'batch' in section 'train'\n"
       "  batch = 2\n  ^\n",
       "t.kiln:2:3: note: first defined here\n  batch = 1\n  ^\n"},
      {"train {}\ndata {}\ntrain {}", KILN_ERR_NAME,
       "t.kiln:3:1: error: duplicate section 'train'",
       "t.kiln:1:1: note: first defined here"},
      {"train { batch 1 }", KILN_ERR_SYNTAX,
       "t.kiln:1:15: error: expected '=', found '1'", NULL},
      {"train { 1 }", KILN_ERR_SYNTAX,
       "t.kiln:1:9: error: expected key or '}', found '1'", NULL},
      {"block b(x) {\n  y = relu(x)\n}", KILN_ERR_SYNTAX,
       "t.kiln:3:1: error: expected 'return' (a block ends with a return "
       "statement), found '}'",
       NULL},
      {"block b(x) {\n  return x\n  y = relu(x)\n}", KILN_ERR_SYNTAX,
       "t.kiln:3:3: error: expected '}' after the return statement, found "
       "'y'",
       NULL},
      {"block b(x) {\n  input a: f32[1]\n  return x\n}", KILN_ERR_SYNTAX,
       "t.kiln:2:3: error: 'input' is not allowed inside a block", NULL},
      {"block b(x) {\n  output x\n  return x\n}", KILN_ERR_SYNTAX,
       "t.kiln:2:3: error: 'output' is not allowed inside a block", NULL},
      {"block b(x) {\n  block c() { return x }\n", KILN_ERR_SYNTAX,
       "t.kiln:2:3: error: 'block' is not allowed inside a block", NULL},
      {"block b(x) {\n  train { batch = 1 }\n  return x\n}", KILN_ERR_SYNTAX,
       "t.kiln:2:9: error: expected '=', found '{'", NULL},
      {"block b(x) {\n  1\n}", KILN_ERR_SYNTAX,
       "t.kiln:2:3: error: expected statement, found '1'", NULL},
      {"block b(x) {", KILN_ERR_SYNTAX,
       "t.kiln:1:13: error: expected statement, found end of file", NULL},
      {"block b(x, x) { return x }", KILN_ERR_NAME,
       "t.kiln:1:12: error: duplicate parameter 'x' in block 'b'",
       "t.kiln:1:9: note: first defined here"},
      {"block b(x,) { return x }", KILN_ERR_SYNTAX,
       "t.kiln:1:11: error: expected parameter name, found ')'", NULL},
      {"block b(1) { return 1 }", KILN_ERR_SYNTAX,
       "t.kiln:1:9: error: expected parameter name or ')', found '1'", NULL},
      {"block (x) { return x }", KILN_ERR_SYNTAX,
       "t.kiln:1:7: error: expected block name, found '('", NULL},
      {"return x", KILN_ERR_SYNTAX,
       "t.kiln:1:1: error: 'return' outside a block", NULL},
      {"x = relu(a)\nmodel m", KILN_ERR_SYNTAX,
       "t.kiln:2:1: error: 'model' must come before everything else", NULL},
      {"model a\nmodel b", KILN_ERR_SYNTAX,
       "t.kiln:2:1: error: duplicate 'model' line",
       "t.kiln:1:7: note: first given here"},
      {"model 1", KILN_ERR_SYNTAX,
       "t.kiln:1:7: error: expected model name, found '1'", NULL},
      {"x = sequence(a) {\n  relu() * 0\n}", KILN_ERR_SYNTAX,
       "t.kiln:2:12: error: expected repeat count (an integer >= 1), found "
       "'0'",
       NULL},
      {"x = sequence(a) {\n  relu() * n\n}", KILN_ERR_SYNTAX,
       "t.kiln:2:12: error: expected repeat count (an integer >= 1), found "
       "'n'",
       NULL},
      {"x = sequence(a) {\n  relu\n}", KILN_ERR_SYNTAX,
       "t.kiln:3:1: error: expected '(', found '}'", NULL},
      {"x = sequence(a) {\n  (relu())\n}", KILN_ERR_SYNTAX,
       "t.kiln:2:3: error: expected call or '}', found '('", NULL},
      {"x = sequence(a) {\n  relu()\n", KILN_ERR_SYNTAX,
       "t.kiln:3:1: error: expected call or '}', found end of file", NULL},
      {"x = sequence a", KILN_ERR_SYNTAX,
       "t.kiln:1:14: error: expected '(', found 'a'", NULL},
      {"x = sequence(a) relu()", KILN_ERR_SYNTAX,
       "t.kiln:1:17: error: expected '{', found 'relu'", NULL},
      {"input a: f31[1]", KILN_ERR_NAME,
       "t.kiln:1:10: error: unknown dtype 'f31' (did you mean 'f32'?)", NULL},
      {"input a: float[1]", KILN_ERR_NAME,
       "t.kiln:1:10: error: unknown dtype 'float' (expected f32, f64, f16, "
       "bf16, i32 or i64)",
       NULL},
      {"input a: f32[n]", KILN_ERR_SYNTAX,
       "t.kiln:1:14: error: expected integer or 'batch', found 'n'", NULL},
      {"input a: f32[]", KILN_ERR_SYNTAX,
       "t.kiln:1:14: error: expected integer or 'batch', found ']'", NULL},
      {"input a f32[1]", KILN_ERR_SYNTAX,
       "t.kiln:1:9: error: expected ':', found 'f32'", NULL},
      {"input a: f32[1, 2", KILN_ERR_SYNTAX,
       "t.kiln:1:18: error: expected ']', found end of file", NULL},
      {"output", KILN_ERR_SYNTAX,
       "t.kiln:1:7: error: expected output name, found end of file", NULL},
      {"output a,", KILN_ERR_SYNTAX,
       "t.kiln:1:10: error: expected output name, found end of file", NULL},
      {"x = (1, 2", KILN_ERR_SYNTAX,
       "t.kiln:1:10: error: expected ')', found end of file", NULL},
      {"x = ()", KILN_ERR_SYNTAX,
       "t.kiln:1:6: error: expected expression, found ')'", NULL},
      {"x = [1 2]", KILN_ERR_SYNTAX,
       "t.kiln:1:8: error: expected ']', found '2'", NULL},
      {"x = [,]", KILN_ERR_SYNTAX,
       "t.kiln:1:6: error: expected expression, found ','", NULL},
      {"x =\n", KILN_ERR_SYNTAX,
       "t.kiln:2:1: error: expected expression, found end of file", NULL},
      {"x y", KILN_ERR_SYNTAX, "t.kiln:1:3: error: expected '=', found 'y'",
       NULL},
      {"x = f(sequence(a))", KILN_ERR_SYNTAX,
       "t.kiln:1:7: error: expected expression, found 'sequence'", NULL},
      {"x = f(model=1)", KILN_ERR_SYNTAX,
       "t.kiln:1:7: error: expected expression, found 'model'", NULL},
      {"1 = 2", KILN_ERR_SYNTAX,
       "t.kiln:1:1: error: expected statement, found '1'", NULL},
      {"x = f(a \"s\\n\")", KILN_ERR_SYNTAX,
       "t.kiln:1:9: error: expected ')', found string \"s\\x0a\"", NULL},
      {"x = a b", KILN_ERR_SYNTAX,
       "t.kiln:1:8: error: expected '=', found end of file", NULL},
      {"x = f(a, k=)", KILN_ERR_SYNTAX,
       "t.kiln:1:12: error: expected expression, found ')'", NULL},
      {"x = a +", KILN_ERR_SYNTAX,
       "t.kiln:1:8: error: expected expression, found end of file", NULL},
  };
  for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
    parsed p;
    CHECK_EQ_INT(parse_str(&p, cases[i].text), cases[i].status);
    CHECK_EQ_INT(p.err.status, cases[i].status);
    CHECK_STR_CONTAINS(p.err.message, cases[i].msg);
    if (cases[i].note)
      CHECK_STR_CONTAINS(p.err.message, cases[i].note);
    arena_free(&p.a);
  }
}

/* Every message shows the offending line and a caret under the column. */
TEST(test_error_source_line) {
  parsed p;
  parse_str(&p, "x = 1\n\tyy = f(a,, b)\nz = 2\n");
  CHECK_STR_CONTAINS(p.err.message, "t.kiln:2:11: error: expected "
                                    "expression, found ','\n"
                                    "\tyy = f(a,, b)\n"
                                    "\t         ^\n");
  arena_free(&p.a);
  /* A 100-letter name is cut in the message, which keeps its caret. */
  char text[200] = "x = f(a ";
  memset(text + 8, 'q', 100);
  strcpy(text + 108, ")");
  parse_str(&p, text);
  CHECK_STR_CONTAINS(p.err.message, "found '"
                                    "qqqqqqqqqqqqqqqqqqqqqqqqqqqqqq"
                                    "qqqqqqqqqq...'\n");
  CHECK_STR_CONTAINS(p.err.message, "\n        ^\n");
  arena_free(&p.a);
}

static char *repeat(const char *head, const char *unit, int n, const char *tail,
                    const char *close) {
  size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail),
         cl = strlen(close);
  char *s = malloc(hl + (ul + cl) * (size_t)n + tl + 1), *o = s;
  memcpy(o, head, hl);
  o += hl;
  for (int i = 0; i < n; i++, o += ul)
    memcpy(o, unit, ul);
  memcpy(o, tail, tl);
  o += tl;
  for (int i = 0; i < n; i++, o += cl)
    memcpy(o, close, cl);
  *o = '\0';
  return s;
}

/* Deep nesting is an error, not a stack overflow; moderate nesting is fine. */
TEST(test_parse_depth_limit) {
  static const struct {
    const char *unit, *tail, *close;
  } shapes[] = {
      {"(", "1", ")"},    {"[", "1", "]"},    {"f(", "1", ")"},
      {"-", "1", ""},     {"1 + ", "1", ""},  {"2 * ", "1", ""},
      {"f(k=", "1", ")"}, {"(1, ", "1", ")"},
  };
  for (size_t i = 0; i < ARRAY_LEN(shapes); i++) {
    parsed p;
    char *ok =
        repeat("x = ", shapes[i].unit, 150, shapes[i].tail, shapes[i].close);
    CHECK_EQ_INT(parse_str(&p, ok), KILN_OK);
    arena_free(&p.a);
    char *deep =
        repeat("x = ", shapes[i].unit, 100000, shapes[i].tail, shapes[i].close);
    CHECK_EQ_INT(parse_str(&p, deep), KILN_ERR_SYNTAX);
    CHECK_STR_CONTAINS(p.err.message,
                       "error: expression nested too deeply (more than 200 "
                       "levels)");
    arena_free(&p.a);
    free(ok);
    free(deep);
  }
}

/* Mutated samples: each either parses (and then round-trips) or fails with
 * a located message; none crashes (ASan/UBSan builds check the rest). */
TEST(test_parse_mutations) {
  static const char sample[] =
      "model m\ninput x: f32[batch, 3]\nblock b(x, n=2) {\n"
      "  y = f(x, k=n * 2, t=(1, 2), l=[-1.5e-3, \"s\\n\"])\n  return y\n}\n"
      "z = sequence(x) { b(n=1) * 2 g() }\noutput z\ntrain { batch = 4 }\n";
  static const char alphabet[] = "(){}[],:=+-*/#\"\\\n .0e1aZ_\0@";
  uint32_t rng = 12345;
  char buf[sizeof sample];
  int ok = 0;
  for (int iter = 0; iter < 5000; iter++) {
    memcpy(buf, sample, sizeof sample);
    size_t len = sizeof sample - 1;
    for (int k = 0; k < 1 + iter % 4; k++) {
      rng = rng * 1664525u + 1013904223u;
      size_t at = (rng >> 8) % len;
      rng = rng * 1664525u + 1013904223u;
      buf[at] = alphabet[(rng >> 8) % (sizeof alphabet - 1)];
    }
    if (iter % 7 == 0)
      len = (rng >> 3) % len; /* truncated file */
    parsed p;
    if (parse_n(&p, "t.kiln", buf, len) == KILN_OK) {
      ok++;
      check_round_trip("mut.kiln", buf, len);
    } else {
      CHECK(strncmp(p.err.message, "t.kiln:", 7) == 0);
      CHECK(p.st == KILN_ERR_SYNTAX || p.st == KILN_ERR_NAME);
    }
    arena_free(&p.a);
  }
  CHECK(ok > 100); /* the mutations do not only produce garbage */
}

int main(void) {
  RUN(test_lex_tokens);
  RUN(test_lex_limits);
  RUN(test_lex_errors);
  RUN(test_parse_statements);
  RUN(test_parse_sequence_and_block);
  RUN(test_parse_expressions);
  RUN(test_parse_sections);
  RUN(test_round_trip_inline);
  RUN(test_round_trip_models);
  RUN(test_parse_errors);
  RUN(test_error_source_line);
  RUN(test_parse_depth_limit);
  RUN(test_parse_mutations);
  return TEST_SUMMARY();
}
