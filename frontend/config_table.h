/* config_table.h — the table machinery config.c and config_placement.c
 * share: a section is checked against a table of keys, each with its check
 * and the place its value goes. Internal to frontend/. */
#ifndef KILN_FRONTEND_CONFIG_TABLE_H
#define KILN_FRONTEND_CONFIG_TABLE_H

#include "frontend/elab.h"

#include <stddef.h>

typedef struct cfg_ctx {
  arena *a; /* scratch: values and messages */
  kiln_error *err;
  const char *section;
  ir_graph *g; /* placement only */
} cfg_ctx;

typedef enum cfg_check {
  CHK_INT_POS,
  CHK_INT_NONNEG,
  CHK_NUM_POS,
  CHK_NUM_NONNEG,
  CHK_FRACTION, /* [0, 1) */
  CHK_PROB,     /* [0, 1] */
  CHK_BOOL,
  CHK_STRING,
  CHK_NAME, /* a bare word or a string */
  CHK_CUSTOM,
} cfg_check;

typedef enum cfg_store {
  ST_I64,
  ST_U64,
  ST_INT,
  ST_F64,
  ST_BOOL,
  ST_STR
} cfg_store;

/* Parses and stores a structured value; `what` names it in messages
 * ("'betas' of adam"). */
typedef kiln_status (*cfg_parse_fn)(cfg_ctx *c, void *obj, const ast_expr *e,
                                    const char *what);

typedef struct cfg_field {
  const char *name;
  cfg_check check;
  cfg_store store;
  size_t offset;
  cfg_parse_fn parse; /* CHK_CUSTOM */
  bool required;      /* call arguments */
} cfg_field;

#define FIELD(name, check, store, type, member)                                \
  { name, check, store, offsetof(type, member), NULL, false }
#define CUSTOM(name, fn)                                                       \
  { name, CHK_CUSTOM, ST_INT, 0, fn, false }

/* "invalid value for <what>: expected <expected>, found <value of e>". */
kiln_status config_expected_error(cfg_ctx *c, const ast_expr *e,
                                  const char *what, const char *expected);
/* A word (or string) from a fixed list; its index goes to *out. */
kiln_status config_parse_symbol(cfg_ctx *c, const ast_expr *e, const char *what,
                                const char *const *words, int n, int *out);
/* Checks every entry of `s` against `keys` and stores it into *obj; unknown
 * and repeated keys are errors. */
kiln_status config_apply_section(cfg_ctx *c, const ast_section *s,
                                 const cfg_field *keys, int n_keys, void *obj);

#endif
