/* elab.h — what the elaborator's files share, internal to frontend/:
 *
 *   elab_value.c  values: literals, arithmetic, printing, and the evaluator of
 *                 constant expressions that config.c also uses;
 *   elab.c        scopes, name resolution by dependency, statements, the
 *                 module (outputs, loss, sections);
 *   elab_call.c   op calls (attributes), block calls (parameter binding),
 *                 sequences, generated names.
 *
 * Everything lives in the graph's arena: nothing is freed one by one. */
#ifndef KILN_FRONTEND_ELAB_H
#define KILN_FRONTEND_ELAB_H

#include "frontend/frontend.h"

/* ---- elab_value.c: values ---- */

typedef enum val_kind {
  VAL_TENSOR,
  VAL_INT,
  VAL_FLOAT,
  VAL_BOOL,
  VAL_STRING,
  VAL_WORD, /* a bare name that is not defined in scope: relu, npy, batch */
  VAL_LIST,
  VAL_TUPLE,
} val_kind;

typedef struct value value;
struct value {
  val_kind kind;
  kiln_loc loc;  /* the expression that produced it */
  ir_node *node; /* TENSOR */
  int64_t i;     /* INT; BOOL (0/1) */
  double f;      /* FLOAT */
  const char *s; /* STRING, WORD: points into the syntax tree */
  int n;         /* LIST, TUPLE */
  value *items;
};

/* For messages: 3, 2.5, true, "path", 'relu', tensor 'c1', [1, 2]. */
const char *elab_value_str(arena *a, const value *v);
/* INT, FLOAT, BOOL, STRING literals. */
void elab_literal(const ast_expr *e, value *out);
/* `l op r` for op in + - * /, and -v: numbers only; integer overflow and
 * inexact integer division are errors (KILN_ERR_TYPE). */
kiln_status elab_arith(arena *a, char op, const value *l, const value *r,
                       kiln_loc loc, value *out, kiln_error *err);
kiln_status elab_negate(arena *a, const value *v, kiln_loc loc, value *out,
                        kiln_error *err);
/* Evaluates an expression that names nothing (the sections): a name is a
 * bare word, and a call is an error. */
kiln_status elab_eval_const(arena *a, const ast_expr *e, value *out,
                            kiln_error *err);
/* Is `word` one of the '|'-separated `symbols`? */
bool elab_symbol_in(const char *symbols, const char *word);
/* "a, b, c" from "a|b|c". */
const char *elab_symbol_list(arena *a, const char *symbols);

/* ---- elab.c and elab_call.c: scopes and the evaluator ---- */

typedef enum elab_state {
  ELAB_UNBOUND, /* a block parameter not bound yet: defaults run in order */
  ELAB_TODO,    /* a statement not evaluated yet */
  ELAB_BUSY,    /* being evaluated: meeting it again is a cycle */
  ELAB_DONE,
} elab_state;

typedef struct elab_binding {
  const char *name;
  kiln_loc loc;
  const ast_stmt *stmt; /* NULL for a block parameter */
  elab_state state;
  value val;
} elab_binding;

typedef struct elab_scope {
  strmap map; /* name -> elab_binding */
  elab_binding **all;
  int n_all, cap_all; /* in definition order */
  elab_binding **busy;
  int n_busy, cap_busy; /* names being evaluated, for the cycle message */
  const char *prefix;   /* "" at the top level, "layer2.0." in a call */
  const char *block;    /* the block's name; NULL at the top level */
} elab_scope;

/* Bounds that keep a hostile file from exhausting the stack or memory: the
 * nesting of name evaluations plus block calls, and the number of layers
 * plus block calls the whole model may create. */
#define ELAB_MAX_DEPTH 1000
#define ELAB_MAX_WORK 200000

typedef struct elab_ctx {
  const ast_module *m;
  ir_graph *g;
  arena *a;
  kiln_error *err;
  strmap blocks; /* name -> const ast_block */
  const char **callees;
  int n_callees; /* op and block names, for "did you mean" */
  const ast_block **calls;
  int n_calls, cap_calls; /* blocks being expanded, outermost first */
  int depth;              /* see ELAB_MAX_DEPTH */
  int work;               /* see ELAB_MAX_WORK */
  strmap claimed;         /* generated names handed out */
  strmap next_suffix;     /* generated base name -> next _N to try */
  elab_scope *top;
} elab_ctx;

/* elab.c */
elab_scope *elab_scope_new(elab_ctx *c, const char *prefix, const char *block);
/* Adds a name; a duplicate is an error (NULL returned, c->err filled). */
elab_binding *elab_scope_add(elab_ctx *c, elab_scope *sc, const char *name,
                             kiln_loc loc, const ast_stmt *stmt);
/* Evaluates the scope's statements not evaluated yet, in textual order. */
kiln_status elab_scope_run(elab_ctx *c, elab_scope *sc);
/* Evaluates `e` in `sc`. Calls inside it are named `<target>.<callee>`.
 * `strict`: a name not in scope is an error ("undefined name"); otherwise
 * it is a bare word (attribute values: init=he_normal). */
kiln_status elab_eval(elab_ctx *c, elab_scope *sc, const ast_expr *e,
                      const char *target, bool strict, value *out);
/* Counts one unit of work against ELAB_MAX_WORK. */
kiln_status elab_count_work(elab_ctx *c, kiln_loc loc);

/* elab_call.c */
/* Calls an op or a block. `first`, when not NULL, is prepended to the
 * positional arguments (sequences). An op call creates the node `name`; a
 * block call prefixes its layers with `name.`. Nested calls among the
 * arguments are named after `target`. */
kiln_status elab_call(elab_ctx *c, elab_scope *sc, const ast_expr *call,
                      const value *first, const char *name, const char *target,
                      value *out);
/* `<target>.<callee>`, then `<target>.<callee>_1`, ...: the first name no
 * node and no earlier generated name has. */
const char *elab_anon_name(elab_ctx *c, const char *target, const char *callee);
kiln_status elab_sequence(elab_ctx *c, elab_scope *sc, const ast_stmt *st,
                          const char *full, value *out);

#endif
