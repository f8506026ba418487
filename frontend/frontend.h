/* frontend.h — the .kiln text format: tokens, syntax tree, parser and the
 * elaborator that turns a syntax tree into a graph.
 *
 *   text --lex.c--> tokens --parse.c--> ast_module --elab.c--> ir_graph
 *                                                   (blocks and sequences
 *                                                    expanded, names
 *                                                    resolved, shapes
 *                                                    inferred, sections
 *                                                    validated: config.c)
 *
 * The language is specified in docs/model-format.md. */
#ifndef KILN_FRONTEND_H
#define KILN_FRONTEND_H

#include "ir/ir.h"

/* ---- lex.c ---- */

typedef enum tok_kind {
  TOK_EOF,
  TOK_IDENT, /* also dotted names: layer1.0, downsample.1 */
  TOK_INT,
  TOK_FLOAT,
  TOK_STRING,
  TOK_PUNCT,  /* ( ) [ ] { } , : = + - * / */
  TOK_KEYWORD /* model input output block return sequence true false (section
                 names and `batch` are identifiers) */
} tok_kind;

typedef struct token {
  tok_kind kind;
  kiln_loc loc;
  const char *text; /* identifier, keyword, punctuator, number as written, or
                       string contents (unescaped) */
  int64_t i;
  double f;
} token;

/* Tokenizes the whole file into an arena array ending in TOK_EOF (counted in
 * *n). */
kiln_status lex_tokenize(arena *a, const src_file *f, token **out, int *n,
                         kiln_error *err);

/* ---- parse.c: the syntax tree ---- */

typedef enum ast_kind {
  AST_INT,
  AST_FLOAT,
  AST_BOOL,
  AST_STRING,
  AST_NAME,   /* identifier (tensor, block parameter, or bare word) */
  AST_CALL,   /* name(args, key=value) */
  AST_LIST,   /* [a, b] */
  AST_TUPLE,  /* (a, b) or (a,) */
  AST_BINARY, /* a op b, op in + - * / */
  AST_NEG,    /* -a */
} ast_kind;

typedef struct ast_expr ast_expr;
typedef struct ast_kwarg {
  const char *name;
  kiln_loc loc;
  ast_expr *value;
} ast_kwarg;

struct ast_expr {
  ast_kind kind;
  kiln_loc loc;
  int64_t i;     /* INT; BOOL (0/1) */
  double f;      /* FLOAT */
  const char *s; /* STRING contents, NAME, CALL callee */
  char op;       /* BINARY */
  int n_args; /* CALL positional args, LIST/TUPLE items, BINARY (2), NEG (1) */
  ast_expr **args;
  int n_kwargs; /* CALL only */
  ast_kwarg *kwargs;
};

typedef enum ast_stmt_kind {
  AST_STMT_INPUT,    /* input name: dtype[dims] */
  AST_STMT_ASSIGN,   /* name = expr */
  AST_STMT_SEQUENCE, /* name = sequence(expr) { items } */
  AST_STMT_OUTPUT,   /* output a, b */
  AST_STMT_RETURN,   /* return expr (blocks only) */
} ast_stmt_kind;

typedef struct ast_seq_item {
  ast_expr *call; /* AST_CALL without the leading tensor argument */
  int64_t repeat; /* `call * n`; 1 when absent */
  kiln_loc loc;
} ast_seq_item;

typedef struct ast_stmt {
  ast_stmt_kind kind;
  kiln_loc loc;
  const char *name; /* INPUT, ASSIGN, SEQUENCE */
  kiln_loc name_loc;
  ast_expr *value; /* ASSIGN, RETURN; SEQUENCE: its input */
  /* INPUT */
  const char *dtype;
  kiln_loc dtype_loc;
  int n_dims;
  ast_expr **dims; /* AST_INT or AST_NAME (batch) */
  /* SEQUENCE */
  int n_items;
  ast_seq_item *items;
  /* OUTPUT */
  int n_outs;
  ast_expr **outs; /* AST_NAME */
} ast_stmt;

typedef struct ast_block_param {
  const char *name;
  kiln_loc loc;
  ast_expr *def; /* NULL: required */
} ast_block_param;

typedef struct ast_block {
  const char *name;
  kiln_loc loc;
  int n_params;
  ast_block_param *params;
  int n_stmts;
  ast_stmt *stmts; /* the last one is a RETURN */
} ast_block;

typedef struct ast_entry {
  const char *key;
  kiln_loc loc;
  ast_expr *value;
} ast_entry;

typedef struct ast_section {
  const char *name; /* "train", "data", "placement" */
  kiln_loc loc;
  int n_entries;
  ast_entry *entries;
} ast_section;

typedef struct ast_module {
  const src_file *file;
  const char *model_name; /* `model NAME`, or NULL */
  kiln_loc model_loc;
  int n_stmts;
  ast_stmt *stmts;
  int n_blocks;
  ast_block *blocks;
  int n_sections;
  ast_section *sections;
} ast_module;

kiln_status parse_module(arena *a, const src_file *f, ast_module *out,
                         kiln_error *err);
/* Prints the tree back as .kiln text (used by the parser round-trip test). */
void parse_print(const ast_module *m, strbuf *out);

/* ---- elab.c ---- */

/* Builds the graph from a parsed module. `g` comes from ir_graph_init();
 * elaboration names it (`model NAME`, else the file's base name) and
 * allocates everything in g->a. */
kiln_status elab_module(const ast_module *m, ir_graph *g, kiln_error *err);

/* ---- config.c: train / data / placement sections ---- */

kiln_status config_train(const ast_section *s, ir_train_cfg *c,
                         kiln_error *err);
kiln_status config_data(const ast_section *s, ir_data_cfg *c, kiln_error *err);
/* Needs the graph: stage boundaries name layers. */
kiln_status config_placement(const ast_section *s, ir_graph *g,
                             kiln_error *err);

/* ---- load.c: the public entry points (kiln_model_load_*) ---- */

#endif
