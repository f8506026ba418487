/* elab.c — elaboration: the syntax tree evaluated into the graph.
 *
 * Elaboration is an interpreter over the tree whose values are tensors
 * (graph nodes), numbers, strings, bare words and lists (elab_value.c). A
 * scope (the top level, or one block call) maps names to statements and is
 * resolved by dependency: evaluating a name evaluates its statement first if
 * needed, so statements may come in any order, and a name met again while
 * it is being evaluated is a cycle. Then the statements nobody used are
 * evaluated in textual order. Calls, blocks and sequences are in
 * elab_call.c.
 *
 * Needs: a module from parse_module() and a graph from ir_graph_init().
 * Guarantees on KILN_OK: every layer was built through ir_node_new +
 * ir_node_finish (attributes checked, shapes inferred), outputs and loss are
 * set, the sections are validated, and ir_verify() passed. */
#include "frontend/elab.h"

#include <string.h>

/* ---- scopes ---- */

elab_scope *elab_scope_new(elab_ctx *c, const char *prefix, const char *block) {
  elab_scope *sc = ARENA_NEW(c->a, elab_scope);
  strmap_init(&sc->map, c->a);
  sc->prefix = prefix;
  sc->block = block;
  return sc;
}

elab_binding *elab_scope_add(elab_ctx *c, elab_scope *sc, const char *name,
                             kiln_loc loc, const ast_stmt *stmt) {
  elab_binding *b = ARENA_NEW(c->a, elab_binding);
  b->name = name;
  b->loc = loc;
  b->stmt = stmt;
  b->state = stmt ? ELAB_TODO : ELAB_UNBOUND;
  if (!strmap_put(&sc->map, name, b)) {
    const elab_binding *first = strmap_get(&sc->map, name);
    diag_error(c->err, KILN_ERR_NAME, loc, "duplicate name '%s'", name);
    diag_note(c->err, first->loc, "'%s' is first defined here", name);
    return NULL;
  }
  ARENA_PUSH(c->a, sc->all, sc->n_all, sc->cap_all, b);
  return b;
}

kiln_status elab_count_work(elab_ctx *c, kiln_loc loc) {
  if (++c->work > ELAB_MAX_WORK)
    return diag_error(c->err, KILN_ERR_INVALID, loc,
                      "the model is too large: more than %d layers and "
                      "block calls",
                      ELAB_MAX_WORK);
  return KILN_OK;
}

static kiln_status cycle_error(elab_ctx *c, elab_scope *sc,
                               const elab_binding *b, kiln_loc use) {
  strbuf path;
  strbuf_init(&path);
  int from = sc->n_busy - 1;
  while (from > 0 && sc->busy[from] != b)
    from--;
  for (int k = from; k < sc->n_busy; k++)
    strbuf_printf(&path, "%s -> ", sc->busy[k]->name);
  strbuf_puts(&path, b->name);
  kiln_status st =
      diag_error(c->err, KILN_ERR_NAME, use, "dependency cycle: %s", path.data);
  strbuf_free(&path);
  return st;
}

static kiln_status undefined_error(elab_ctx *c, elab_scope *sc,
                                   const char *name, kiln_loc loc) {
  const char **names = ARENA_ARRAY(c->a, const char *, sc->n_all + 1);
  for (int k = 0; k < sc->n_all; k++)
    names[k] = sc->all[k]->name;
  const char *hint = suggest_closest(name, names, sc->n_all);
  /* The commonest mistake in a block is using a top-level name. */
  if (sc->block && strmap_get(&c->top->map, name))
    return diag_error(c->err, KILN_ERR_NAME, loc,
                      "undefined name '%s' (block '%s' sees only its "
                      "parameters and its own names: pass it as a parameter)",
                      name, sc->block);
  if (hint)
    return diag_error(c->err, KILN_ERR_NAME, loc,
                      "undefined name '%s' (did you mean '%s'?)", name, hint);
  return diag_error(c->err, KILN_ERR_NAME, loc, "undefined name '%s'", name);
}

static kiln_status eval_stmt(elab_ctx *c, elab_scope *sc, elab_binding *b);

/* Makes sure `b` has a value, evaluating its statement now if needed. */
static kiln_status resolve(elab_ctx *c, elab_scope *sc, elab_binding *b,
                           kiln_loc use) {
  switch (b->state) {
  case ELAB_DONE:
    return KILN_OK;
  case ELAB_UNBOUND:
    return diag_error(c->err, KILN_ERR_NAME, use,
                      "parameter '%s' is used before it is bound (a default "
                      "may use only earlier parameters)",
                      b->name);
  case ELAB_BUSY:
    return cycle_error(c, sc, b, use);
  case ELAB_TODO:
    break;
  }
  if (++c->depth > ELAB_MAX_DEPTH)
    return diag_error(c->err, KILN_ERR_INVALID, use,
                      "names depend on each other more than %d deep",
                      ELAB_MAX_DEPTH);
  b->state = ELAB_BUSY;
  ARENA_PUSH(c->a, sc->busy, sc->n_busy, sc->cap_busy, b);
  kiln_status st = eval_stmt(c, sc, b);
  if (st)
    return st;
  sc->n_busy--;
  c->depth--;
  b->state = ELAB_DONE;
  return KILN_OK;
}

kiln_status elab_scope_run(elab_ctx *c, elab_scope *sc) {
  for (int k = 0; k < sc->n_all; k++) {
    kiln_status st = resolve(c, sc, sc->all[k], sc->all[k]->loc);
    if (st)
      return st;
  }
  return KILN_OK;
}

/* ---- expressions ---- */

kiln_status elab_eval(elab_ctx *c, elab_scope *sc, const ast_expr *e,
                      const char *target, bool strict, value *out) {
  kiln_status st;
  value l, r;
  switch (e->kind) {
  case AST_INT:
  case AST_FLOAT:
  case AST_BOOL:
  case AST_STRING:
    elab_literal(e, out);
    return KILN_OK;
  case AST_NAME: {
    elab_binding *b = strmap_get(&sc->map, e->s);
    if (!b && strict)
      return undefined_error(c, sc, e->s, e->loc);
    if (!b) {
      memset(out, 0, sizeof *out);
      out->kind = VAL_WORD;
      out->s = e->s;
      out->loc = e->loc;
      return KILN_OK;
    }
    if ((st = resolve(c, sc, b, e->loc)))
      return st;
    *out = b->val;
    out->loc = e->loc;
    return KILN_OK;
  }
  case AST_CALL:
    return elab_call(c, sc, e, NULL, elab_anon_name(c, target, e->s), target,
                     out);
  case AST_LIST:
  case AST_TUPLE:
    memset(out, 0, sizeof *out);
    out->kind = e->kind == AST_LIST ? VAL_LIST : VAL_TUPLE;
    out->loc = e->loc;
    out->n = e->n_args;
    out->items = ARENA_ARRAY(c->a, value, e->n_args > 0 ? e->n_args : 1);
    for (int k = 0; k < e->n_args; k++)
      if ((st = elab_eval(c, sc, e->args[k], target, strict, &out->items[k])))
        return st;
    return KILN_OK;
  case AST_BINARY:
    /* Operands are numbers, never bare words: a typo there is an
     * undefined name, not a word. */
    if ((st = elab_eval(c, sc, e->args[0], target, true, &l)) ||
        (st = elab_eval(c, sc, e->args[1], target, true, &r)))
      return st;
    return elab_arith(c->a, e->op, &l, &r, e->loc, out, c->err);
  case AST_NEG:
    if ((st = elab_eval(c, sc, e->args[0], target, true, &l)))
      return st;
    return elab_negate(c->a, &l, e->loc, out, c->err);
  }
  KILN_ASSERT(!"unknown expression kind");
  return KILN_ERR_INTERNAL;
}

/* ---- statements ---- */

/* input name: dtype[dims] */
static kiln_status eval_input(elab_ctx *c, const ast_stmt *s, const char *full,
                              value *out) {
  ir_dtype dt;
  if (!ir_dtype_parse(s->dtype, &dt)) {
    const char *names[IR_DTYPE_COUNT];
    for (int k = 0; k < IR_DTYPE_COUNT; k++)
      names[k] = ir_dtype_name((ir_dtype)k);
    const char *hint = suggest_closest(s->dtype, names, IR_DTYPE_COUNT);
    if (hint)
      return diag_error(c->err, KILN_ERR_TYPE, s->dtype_loc,
                        "unknown dtype '%s' (did you mean '%s'?)", s->dtype,
                        hint);
    return diag_error(c->err, KILN_ERR_TYPE, s->dtype_loc,
                      "unknown dtype '%s' (expected one of: f32, f64, f16, "
                      "bf16, i32, i64)",
                      s->dtype);
  }
  if (s->n_dims > IR_MAX_DIMS)
    return diag_error(c->err, KILN_ERR_TYPE, s->dims[IR_MAX_DIMS]->loc,
                      "input '%s' has %d dimensions; at most %d are supported",
                      s->name, s->n_dims, IR_MAX_DIMS);
  /* Each dimension and the example size are bounded so that no later
   * figure (elements, bytes, MACs) can overflow 64 bits. */
  const int64_t max_dim = INT32_MAX, max_numel = (int64_t)1 << 40;
  ir_shape shape = {.rank = s->n_dims};
  int64_t numel = 1;
  for (int k = 0; k < s->n_dims; k++) {
    const ast_expr *d = s->dims[k];
    if (d->kind == AST_NAME && strcmp(d->s, "batch") == 0 && k == 0) {
      shape.dim[k] = IR_DIM_BATCH;
      continue;
    }
    if (d->kind == AST_NAME && strcmp(d->s, "batch") == 0)
      return diag_error(c->err, KILN_ERR_TYPE, d->loc,
                        "only the first dimension of input '%s' may be "
                        "'batch'",
                        s->name);
    if (d->kind != AST_INT || d->i <= 0 || d->i > max_dim) {
      value v;
      if (d->kind == AST_INT)
        elab_literal(d, &v);
      return diag_error(c->err, KILN_ERR_TYPE, d->loc,
                        "dimension %d of input '%s' must be an integer from 1 "
                        "to %lld or 'batch', found %s",
                        k + 1, s->name, (long long)max_dim,
                        d->kind == AST_INT    ? elab_value_str(c->a, &v)
                        : d->kind == AST_NAME ? arena_printf(c->a, "'%s'", d->s)
                                              : "an expression");
    }
    shape.dim[k] = d->i;
    numel *= d->i;
    if (numel > max_numel)
      return diag_error(c->err, KILN_ERR_TYPE, d->loc,
                        "input '%s' is too large: more than 2^40 elements "
                        "per example",
                        s->name);
  }
  kiln_status st = elab_count_work(c, s->name_loc);
  if (st)
    return st;
  ir_node *n = ir_graph_add_input(c->g, full, s->name_loc, dt, &shape, c->err);
  if (!n)
    return c->err->status ? c->err->status : KILN_ERR_INTERNAL;
  memset(out, 0, sizeof *out);
  out->kind = VAL_TENSOR;
  out->node = n;
  out->loc = s->name_loc;
  return KILN_OK;
}

static kiln_status eval_stmt(elab_ctx *c, elab_scope *sc, elab_binding *b) {
  const ast_stmt *s = b->stmt;
  const char *full = arena_printf(c->a, "%s%s", sc->prefix, s->name);
  switch (s->kind) {
  case AST_STMT_INPUT:
    return eval_input(c, s, full, &b->val);
  case AST_STMT_ASSIGN:
    /* The statement's own call is named after the statement; anything
     * else (an alias, a constant, a list) just binds the name. */
    if (s->value->kind == AST_CALL)
      return elab_call(c, sc, s->value, NULL, full, full, &b->val);
    return elab_eval(c, sc, s->value, full, true, &b->val);
  case AST_STMT_SEQUENCE:
    return elab_sequence(c, sc, s, full, &b->val);
  case AST_STMT_OUTPUT:
  case AST_STMT_RETURN:
    break;
  }
  KILN_ASSERT(!"not a binding statement");
  return KILN_ERR_INTERNAL;
}

/* ---- the module ---- */

static kiln_status collect_blocks(elab_ctx *c) {
  const ast_module *m = c->m;
  strmap_init(&c->blocks, c->a);
  c->callees = ARENA_ARRAY(c->a, const char *, IR_OP_COUNT + m->n_blocks);
  for (int k = 1; k < IR_OP_COUNT; k++) /* not IR_OP_INPUT */
    if (!ir_op_table[k].internal)
      c->callees[c->n_callees++] = ir_op_table[k].name;
  for (int k = 0; k < m->n_blocks; k++) {
    const ast_block *b = &m->blocks[k];
    ir_op bop = ir_op_find(b->name);
    if (bop != IR_OP_COUNT && !ir_op_table[bop].internal)
      return diag_error(c->err, KILN_ERR_NAME, b->loc,
                        "block '%s' has the name of an op", b->name);
    if (!strmap_put(&c->blocks, b->name, (void *)b)) {
      const ast_block *first = strmap_get(&c->blocks, b->name);
      diag_error(c->err, KILN_ERR_NAME, b->loc, "duplicate name '%s'", b->name);
      diag_note(c->err, first->loc, "'%s' is first defined here", b->name);
      return KILN_ERR_NAME;
    }
    c->callees[c->n_callees++] = b->name;
  }
  return KILN_OK;
}

/* Top-level names: inputs, layers and sequences; they share one namespace
 * with the blocks (docs/model-format.md). */
static kiln_status collect_top(elab_ctx *c) {
  const ast_module *m = c->m;
  c->top = elab_scope_new(c, "", NULL);
  for (int k = 0; k < m->n_stmts; k++) {
    const ast_stmt *s = &m->stmts[k];
    if (s->kind == AST_STMT_RETURN)
      return diag_error(c->err, KILN_ERR_SYNTAX, s->loc,
                        "'return' outside a block");
    if (s->kind == AST_STMT_OUTPUT)
      continue;
    if (!elab_scope_add(c, c->top, s->name, s->name_loc, s))
      return KILN_ERR_NAME;
    const ast_block *b = strmap_get(&c->blocks, s->name);
    if (b) {
      bool block_first =
          b->loc.line < s->name_loc.line ||
          (b->loc.line == s->name_loc.line && b->loc.col < s->name_loc.col);
      kiln_loc later = block_first ? s->name_loc : b->loc;
      kiln_loc earlier = block_first ? b->loc : s->name_loc;
      diag_error(c->err, KILN_ERR_NAME, later, "duplicate name '%s'", s->name);
      diag_note(c->err, earlier, "'%s' is first defined here", s->name);
      return KILN_ERR_NAME;
    }
  }
  return KILN_OK;
}

/* output a, b: a name in the top scope, or any layer's full name. */
static kiln_status collect_outputs(elab_ctx *c) {
  ir_graph *g = c->g;
  for (int k = 0; k < c->m->n_stmts; k++) {
    const ast_stmt *s = &c->m->stmts[k];
    if (s->kind != AST_STMT_OUTPUT)
      continue;
    for (int j = 0; j < s->n_outs; j++) {
      const ast_expr *e = s->outs[j];
      value v = {0};
      ir_node *found = NULL;
      if (e->kind == AST_NAME && !strmap_get(&c->top->map, e->s))
        found = ir_graph_find(g, e->s);
      if (found) {
        v.kind = VAL_TENSOR;
        v.node = found;
      } else {
        kiln_status st = elab_eval(c, c->top, e, "output", true, &v);
        if (st)
          return st;
      }
      if (v.kind != VAL_TENSOR)
        return diag_error(c->err, KILN_ERR_TYPE, e->loc,
                          "an output must be a tensor, found %s",
                          elab_value_str(c->a, &v));
      for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == v.node)
          return diag_error(c->err, KILN_ERR_NAME, e->loc,
                            "'%s' is already an output", v.node->name);
      ARENA_PUSH(g->a, g->outputs, g->n_outputs, g->cap_outputs, v.node);
    }
  }
  return KILN_OK;
}

static const ast_entry *find_entry(const ast_section *s, const char *key) {
  for (int k = 0; s && k < s->n_entries; k++)
    if (strcmp(s->entries[k].key, key) == 0)
      return &s->entries[k];
  return NULL;
}

/* A layer name in a section covers the layer of that name and everything
 * whose name starts with "name." (the layers of a block call or sequence). */
static bool names_a_layer(const ir_graph *g, const char *name) {
  size_t n = strlen(name);
  for (int k = 0; k < g->n_nodes; k++) {
    const char *s = g->nodes[k]->name;
    if (strncmp(s, name, n) == 0 && (s[n] == '\0' || s[n] == '.'))
      return true;
  }
  return false;
}

static kiln_status no_layer_error(elab_ctx *c, kiln_loc loc, const char *what,
                                  const char *name) {
  const char **names = ARENA_ARRAY(c->a, const char *, c->g->n_nodes + 1);
  for (int k = 0; k < c->g->n_nodes; k++)
    names[k] = c->g->nodes[k]->name;
  const char *hint = suggest_closest(name, names, c->g->n_nodes);
  if (hint)
    return diag_error(c->err, KILN_ERR_NAME, loc,
                      "%s '%s' names no layer (did you mean '%s'?)", what, name,
                      hint);
  return diag_error(c->err, KILN_ERR_NAME, loc, "%s '%s' names no layer", what,
                    name);
}

/* `freeze` names layers or blocks calls; config.c could not check them, as
 * it does not see the graph. */
static kiln_status check_freeze(elab_ctx *c, const ast_section *train) {
  const ast_entry *e = find_entry(train, "freeze");
  if (!e)
    return KILN_OK;
  bool is_list = e->value->kind == AST_LIST || e->value->kind == AST_TUPLE;
  int n = is_list ? e->value->n_args : 1;
  for (int k = 0; k < n; k++) {
    const ast_expr *item = is_list ? e->value->args[k] : e->value;
    if (!names_a_layer(c->g, item->s))
      return no_layer_error(c, item->loc, "freeze", item->s);
  }
  return KILN_OK;
}

static kiln_status pick_loss(elab_ctx *c, const ast_section *train) {
  ir_graph *g = c->g;
  const ast_entry *named = find_entry(train, "loss");
  if (named && g->train.loss) {
    ir_node *n = ir_graph_find(g, g->train.loss);
    if (!n)
      return no_layer_error(c, named->value->loc, "loss", g->train.loss);
    if (!ir_op_table[n->op].is_loss)
      return diag_error(c->err, KILN_ERR_TYPE, named->value->loc,
                        "'%s' is a %s layer, not a loss", n->name,
                        ir_op_table[n->op].name);
    g->loss = n;
    return KILN_OK;
  }
  strbuf list;
  strbuf_init(&list);
  int n_losses = 0;
  ir_node *second = NULL;
  for (int k = 0; k < g->n_nodes; k++) {
    ir_node *n = g->nodes[k];
    if (!ir_op_table[n->op].is_loss)
      continue;
    strbuf_printf(&list, "%s'%s'", n_losses ? ", " : "", n->name);
    if (n_losses++ == 0)
      g->loss = n;
    else if (!second)
      second = n;
  }
  kiln_status st = KILN_OK;
  if (n_losses > 1) {
    g->loss = NULL;
    st = diag_error(c->err, KILN_ERR_NAME, second->loc,
                    "%d loss layers (%s): name the one to train with `loss = "
                    "NAME` in the train section",
                    n_losses, list.data);
  }
  strbuf_free(&list);
  return st;
}

static const ast_section *find_section(const ast_module *m, const char *name) {
  for (int k = 0; k < m->n_sections; k++)
    if (strcmp(m->sections[k].name, name) == 0)
      return &m->sections[k];
  return NULL;
}

/* parse.c already refuses unknown and repeated sections; this keeps
 * elaboration safe for syntax trees built some other way. */
static kiln_status check_sections(elab_ctx *c) {
  static const char *const known[] = {"train", "data", "placement"};
  const ast_module *m = c->m;
  for (int k = 0; k < m->n_sections; k++) {
    const ast_section *s = &m->sections[k];
    bool ok = false;
    for (size_t j = 0; j < ARRAY_LEN(known); j++)
      ok |= strcmp(s->name, known[j]) == 0;
    if (!ok)
      return diag_error(c->err, KILN_ERR_NAME, s->loc,
                        "unknown section '%s' (expected train, data or "
                        "placement)",
                        s->name);
    const ast_section *first = find_section(m, s->name);
    if (first != s) {
      diag_error(c->err, KILN_ERR_NAME, s->loc, "duplicate section '%s'",
                 s->name);
      diag_note(c->err, first->loc, "the first '%s' section is here", s->name);
      return KILN_ERR_NAME;
    }
  }
  return KILN_OK;
}

/* The model's name: `model NAME`, else the file's base name without its
 * extension ("models/lenet5.kiln" -> "lenet5"). */
static const char *model_name(arena *a, const ast_module *m) {
  if (m->model_name)
    return m->model_name;
  const char *path = m->file && m->file->name ? m->file->name : "";
  const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
  const char *dot = strrchr(base, '.');
  size_t n = dot && dot != base ? (size_t)(dot - base) : strlen(base);
  return n ? arena_strndup(a, base, n) : "model";
}

kiln_status elab_module(const ast_module *m, ir_graph *g, kiln_error *err) {
  elab_ctx c = {.m = m, .g = g, .a = g->a, .err = err};
  strmap_init(&c.claimed, c.a);
  strmap_init(&c.next_suffix, c.a);
  g->name = model_name(g->a, m);
  kiln_status st;
  if ((st = collect_blocks(&c)) || (st = collect_top(&c)) ||
      (st = check_sections(&c)) || (st = elab_scope_run(&c, c.top)) ||
      (st = collect_outputs(&c)))
    return st;
  if (g->n_nodes == 0)
    return diag_error(err, KILN_ERR_INVALID,
                      (kiln_loc){.file = m->file, .line = 1, .col = 1},
                      "the model defines no inputs and no layers");

  const ast_section *train = find_section(m, "train");
  const ast_section *data = find_section(m, "data");
  const ast_section *placement = find_section(m, "placement");
  if (train) {
    if ((st = config_train(train, &g->train, err)) ||
        (st = check_freeze(&c, train)))
      return st;
    g->has_train = true;
  }
  if (data) {
    if ((st = config_data(data, &g->data, err)))
      return st;
    g->has_data = true;
  }
  if ((st = pick_loss(&c, train)))
    return st;
  if (g->n_outputs == 0) {
    ir_node *out = g->loss ? g->loss->inputs[0] : g->nodes[g->n_nodes - 1];
    ARENA_PUSH(g->a, g->outputs, g->n_outputs, g->cap_outputs, out);
  }
  if (placement && (st = config_placement(placement, g, err)))
    return st;
  return ir_verify(g, err);
}
