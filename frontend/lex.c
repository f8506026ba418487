/* lex.c — the .kiln tokenizer (docs/model-format.md, "Lexical structure").
 *
 * Turns a whole source file into one arena array of tokens ending in
 * TOK_EOF. Every byte is looked at through bounds checks against the file's
 * length rather than its NUL terminator, because a hostile file may contain
 * NUL bytes; those, like any other byte the language has no use for, are
 * reported as "unexpected character" at their line and column. Columns count
 * bytes from 1, so they match what the caret line in diag.c shows.
 *
 * Character classes are spelled out instead of using <ctype.h>: its answers
 * depend on the locale, the language's do not. */
#include "frontend/frontend.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct lexer {
  arena *a;
  const src_file *f;
  const char *p, *end;    /* current position, end of the text */
  const char *line_start; /* first byte of the current line */
  int line;
  kiln_error *err;
} lexer;

static const char *const keywords[] = {
    "model", "input", "output", "block", "return", "sequence", "true", "false",
};

/* Longest lexeme quoted in a message, so a 1 MB identifier cannot push the
 * source line and caret out of the 4 KB message. */
enum { MAX_QUOTED = 40 };

static bool is_digit(int c) {
  return c >= '0' && c <= '9';
}

static bool is_alpha(int c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_alnum(int c) {
  return is_alpha(c) || is_digit(c);
}

/* The byte k places ahead, or 0 past the end of the text. */
static int peek(const lexer *l, const char *at, size_t k) {
  return (size_t)(l->end - at) > k ? (unsigned char)at[k] : 0;
}

static kiln_loc loc_at(const lexer *l, const char *at) {
  return (kiln_loc){l->f, l->line, (int)(at - l->line_start) + 1};
}

/* A byte as a message shows it: itself when printable ASCII, else \xNN, so
 * control bytes never reach a terminal raw. */
static const char *byte_str(char buf[8], unsigned char c) {
  if (c > ' ' && c < 0x7f) {
    buf[0] = (char)c;
    buf[1] = '\0';
  } else {
    static const char hex[] = "0123456789abcdef";
    memcpy(buf, "\\x", 2);
    buf[2] = hex[c >> 4];
    buf[3] = hex[c & 15];
    buf[4] = '\0';
  }
  return buf;
}

static kiln_status unexpected(lexer *l, const char *at) {
  char buf[8];
  return diag_error(l->err, KILN_ERR_SYNTAX, loc_at(l, at),
                    "unexpected character '%s'",
                    byte_str(buf, (unsigned char)*at));
}

/* Reports a malformed lexeme [s, q), quoted and cut to MAX_QUOTED bytes. */
static kiln_status bad_lexeme(lexer *l, const char *s, const char *q,
                              const char *what) {
  int n = (int)(q - s);
  return diag_error(l->err, KILN_ERR_SYNTAX, loc_at(l, s), "%s '%.*s%s'", what,
                    n > MAX_QUOTED ? MAX_QUOTED : n, s,
                    n > MAX_QUOTED ? "..." : "");
}

/* Skips blanks, newlines and `#` comments. A NUL inside a comment is still
 * an error: the file is not text. */
static kiln_status skip_space(lexer *l) {
  while (l->p < l->end) {
    char c = *l->p;
    if (c == '\n') {
      l->p++;
      l->line++;
      l->line_start = l->p;
    } else if (c == ' ' || c == '\t' || c == '\r') {
      l->p++;
    } else if (c == '#') {
      while (l->p < l->end && *l->p != '\n') {
        if (*l->p == '\0')
          return unexpected(l, l->p);
        l->p++;
      }
    } else {
      break;
    }
  }
  return KILN_OK;
}

/* IDENT := [A-Za-z_][A-Za-z0-9_]* { "." [A-Za-z0-9_]+ }; keywords are the
 * identifiers in `keywords` (a dotted name is never a keyword). */
static void lex_ident(lexer *l, token *t) {
  const char *s = l->p, *q = s + 1;
  while (q < l->end && is_alnum((unsigned char)*q))
    q++;
  while (q < l->end && *q == '.' && is_alnum(peek(l, q, 1))) {
    q += 2;
    while (q < l->end && is_alnum((unsigned char)*q))
      q++;
  }
  t->kind = TOK_IDENT;
  t->text = arena_strndup(l->a, s, (size_t)(q - s));
  for (size_t i = 0; i < ARRAY_LEN(keywords); i++)
    if (strcmp(t->text, keywords[i]) == 0)
      t->kind = TOK_KEYWORD;
  l->p = q;
}

/* INT   := [0-9]+
 * FLOAT := [0-9]+ ( "." [0-9]+ [ EXP ] | EXP ),  EXP := [eE] [+-]? [0-9]+
 * A number that runs straight into letters or a dot (`3x3`, `1.`, `1e`) is
 * one malformed lexeme, reported whole rather than as two odd tokens. */
static kiln_status lex_number(lexer *l, token *t) {
  const char *s = l->p, *q = s;
  bool is_float = false;
  while (q < l->end && is_digit((unsigned char)*q))
    q++;
  if (q < l->end && *q == '.' && is_digit(peek(l, q, 1))) {
    is_float = true;
    q++;
    while (q < l->end && is_digit((unsigned char)*q))
      q++;
  }
  if (q < l->end && (*q == 'e' || *q == 'E')) {
    size_t k = (peek(l, q, 1) == '+' || peek(l, q, 1) == '-') ? 2 : 1;
    if (is_digit(peek(l, q, k))) {
      is_float = true;
      q += k;
      while (q < l->end && is_digit((unsigned char)*q))
        q++;
    }
  }
  if (q < l->end && (is_alnum((unsigned char)*q) || *q == '.')) {
    while (q < l->end && (is_alnum((unsigned char)*q) || *q == '.'))
      q++;
    return bad_lexeme(l, s, q, "invalid number");
  }
  t->text = arena_strndup(l->a, s, (size_t)(q - s));
  if (is_float) {
    /* strtod rounds correctly; it only fails to reach the end under a
     * locale whose decimal point is not '.', which is then an error rather
     * than a silently different number. */
    char *endp;
    t->kind = TOK_FLOAT;
    t->f = strtod(t->text, &endp);
    if (*endp != '\0' || isinf(t->f))
      return bad_lexeme(l, s, q, "float literal out of range:");
  } else {
    t->kind = TOK_INT;
    int64_t v = 0;
    for (const char *d = s; d < q; d++) {
      int digit = *d - '0';
      if (v > (INT64_MAX - digit) / 10)
        return bad_lexeme(l, s, q, "integer literal too large:");
      v = v * 10 + digit;
    }
    t->i = v;
  }
  l->p = q;
  return KILN_OK;
}

/* STRING := '"' { char | '\"' | '\\' | '\n' | '\t' } '"', on one line. */
static kiln_status lex_string(lexer *l, token *t) {
  const char *s = l->p, *q = s + 1;
  size_t n = 0; /* length of the contents once unescaped */
  for (;; q++, n++) {
    if (q >= l->end || *q == '\n')
      return diag_error(l->err, KILN_ERR_SYNTAX, loc_at(l, s),
                        "unterminated string");
    if (*q == '"')
      break;
    if (*q == '\0')
      return unexpected(l, q);
    if (*q == '\\') {
      int e = peek(l, q, 1);
      if (e == '\n' || e == 0) {
        if (q + 1 < l->end && e == 0)
          return unexpected(l, q + 1);
        return diag_error(l->err, KILN_ERR_SYNTAX, loc_at(l, s),
                          "unterminated string");
      }
      if (e != '"' && e != '\\' && e != 'n' && e != 't') {
        char buf[8];
        return diag_error(l->err, KILN_ERR_SYNTAX, loc_at(l, q),
                          "unknown escape '\\%s' in string (use \\\" \\\\ "
                          "\\n or \\t)",
                          byte_str(buf, (unsigned char)e));
      }
      q++;
    }
  }
  char *out = arena_alloc(l->a, n + 1), *o = out;
  for (const char *c = s + 1; c < q; c++) {
    if (*c != '\\') {
      *o++ = *c;
      continue;
    }
    c++;
    *o++ = *c == 'n' ? '\n' : *c == 't' ? '\t' : *c;
  }
  t->kind = TOK_STRING;
  t->text = out;
  l->p = q + 1;
  return KILN_OK;
}

static bool is_punct_char(char c) {
  return c != '\0' && strchr("()[]{},:=+-*/", c) != NULL;
}

kiln_status lex_tokenize(arena *a, const src_file *f, token **out, int *n,
                         kiln_error *err) {
  lexer l = {a, f, f->text, f->text + f->len, f->text, 1, err};
  token *toks = NULL;
  int len = 0, cap = 0;
  *out = NULL;
  *n = 0;
  /* Lines, columns and token counts are ints; a file this large is not a
   * model description anyway. */
  if (f->len > (size_t)INT_MAX / 4)
    return diag_error(err, KILN_ERR_SYNTAX, (kiln_loc){f, 1, 1},
                      "file too large (%zu bytes)", f->len);
  for (;;) {
    kiln_status st = skip_space(&l);
    if (st != KILN_OK)
      return st;
    token t = {.loc = loc_at(&l, l.p)};
    if (l.p >= l.end) {
      t.kind = TOK_EOF;
      t.text = "";
      ARENA_PUSH(a, toks, len, cap, t);
      break;
    }
    unsigned char c = (unsigned char)*l.p;
    if (is_alpha(c)) {
      lex_ident(&l, &t);
    } else if (is_digit(c)) {
      if ((st = lex_number(&l, &t)) != KILN_OK)
        return st;
    } else if (c == '"') {
      if ((st = lex_string(&l, &t)) != KILN_OK)
        return st;
    } else if (is_punct_char((char)c)) {
      t.kind = TOK_PUNCT;
      t.text = arena_strndup(a, l.p, 1);
      l.p++;
    } else {
      return unexpected(&l, l.p);
    }
    ARENA_PUSH(a, toks, len, cap, t);
  }
  *out = toks;
  *n = len;
  return KILN_OK;
}
