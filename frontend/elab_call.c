/* elab_call.c — calls: an op call builds one node (positional arguments are
 * its tensor inputs, keyword arguments its attributes, checked against the
 * op table's ir_attr_spec); a block call binds the block's parameters and
 * evaluates its body in a fresh scope whose layers are prefixed with the
 * call's name; a sequence chains calls and numbers them from 0, as
 * PyTorch's nn.Sequential does. */
#include "frontend/elab.h"

#include <string.h>

const char *elab_anon_name(elab_ctx *c, const char *target,
                           const char *callee) {
  const char *base = arena_printf(c->a, "%s.%s", target, callee);
  /* The next suffix to try is kept per base name, so that many calls of
   * one op in one statement cost linear time, not quadratic. */
  int *next = strmap_get(&c->next_suffix, base);
  if (!next) {
    next = ARENA_NEW(c->a, int);
    strmap_put(&c->next_suffix, base, next);
  }
  for (;; (*next)++) {
    const char *name =
        *next == 0 ? base : arena_printf(c->a, "%s_%d", base, *next);
    if (!strmap_get(&c->claimed, name) && !ir_graph_find(c->g, name)) {
      strmap_put(&c->claimed, name, (void *)name);
      (*next)++;
      return name;
    }
  }
}

/* ---- op calls ---- */

static kiln_status arity_error(elab_ctx *c, const ir_op_info *info, int n,
                               kiln_loc loc) {
  int lo = info->min_inputs, hi = info->max_inputs;
  const char *what =
      hi < 0 ? arena_printf(c->a, "at least %d input%s", lo, lo == 1 ? "" : "s")
      : lo == hi ? arena_printf(c->a, "%d input%s", lo, lo == 1 ? "" : "s")
                 : arena_printf(c->a, "%d to %d inputs", lo, hi);
  if (info->input_names && *info->input_names)
    what = arena_printf(c->a, "%s (%s)", what, info->input_names);
  return diag_error(c->err, KILN_ERR_TYPE, loc, "'%s' takes %s, found %d",
                    info->name, what, n);
}

/* Splits "a|b|c" for suggest_closest. */
static int split_symbols(arena *a, const char *symbols, const char ***out) {
  int n = 1;
  for (const char *p = symbols; *p; p++)
    n += *p == '|';
  const char **v = ARENA_ARRAY(a, const char *, n);
  int k = 0;
  for (const char *p = symbols;; k++) {
    const char *bar = strchr(p, '|');
    v[k] = bar ? arena_strndup(a, p, (size_t)(bar - p)) : p;
    if (!bar)
      break;
    p = bar + 1;
  }
  *out = v;
  return k + 1;
}

static kiln_status bad_attr(elab_ctx *c, elab_scope *sc, const char *op,
                            const ir_attr_spec *spec, const value *v,
                            kiln_loc loc) {
  const char *found = elab_value_str(c->a, v);
  if (spec->type == IR_ATTR_SYMBOL) {
    const char **syms;
    int n = split_symbols(c->a, spec->symbols ? spec->symbols : "", &syms);
    const char *hint =
        v->kind == VAL_WORD ? suggest_closest(v->s, syms, n) : NULL;
    if (hint)
      return diag_error(c->err, KILN_ERR_TYPE, loc,
                        "invalid value %s for attribute '%s' of %s (did you "
                        "mean '%s'?)",
                        found, spec->name, op, hint);
    return diag_error(c->err, KILN_ERR_TYPE, loc,
                      "invalid value %s for attribute '%s' of %s (expected "
                      "one of: %s)",
                      found, spec->name, op,
                      elab_symbol_list(c->a, spec->symbols));
  }
  static const char *const expected[] = {
      [IR_ATTR_INT] = "an integer",
      [IR_ATTR_FLOAT] = "a number",
      [IR_ATTR_BOOL] = "true or false",
      [IR_ATTR_PAIR] = "an integer or a pair (h, w) of integers",
      [IR_ATTR_INTS] = "a list of integers",
  };
  /* A bare word where a number was expected is most likely a misspelt
   * parameter or constant. */
  const char *hint = NULL;
  if (v->kind == VAL_WORD) {
    const char **names = ARENA_ARRAY(c->a, const char *, sc->n_all + 1);
    for (int k = 0; k < sc->n_all; k++)
      names[k] = sc->all[k]->name;
    hint = suggest_closest(v->s, names, sc->n_all);
  }
  return diag_error(c->err, KILN_ERR_TYPE, loc,
                    "attribute '%s' of %s must be %s, found %s%s%s%s",
                    spec->name, op, expected[spec->type], found,
                    hint ? " (did you mean '" : "", hint ? hint : "",
                    hint ? "'?)" : "");
}

static bool is_seq(const value *v) {
  return v->kind == VAL_LIST || v->kind == VAL_TUPLE;
}

/* Checks `v` against the attribute's type and stores it. */
static kiln_status set_attr(elab_ctx *c, elab_scope *sc, const char *op,
                            const ir_attr_spec *spec, ir_attr *at,
                            const value *v, kiln_loc loc) {
  bool ok = false;
  switch (spec->type) {
  case IR_ATTR_INT:
    if ((ok = v->kind == VAL_INT))
      at->i = v->i;
    break;
  case IR_ATTR_FLOAT:
    if ((ok = v->kind == VAL_INT || v->kind == VAL_FLOAT))
      at->f = v->kind == VAL_INT ? (double)v->i : v->f;
    break;
  case IR_ATTR_BOOL:
    if ((ok = v->kind == VAL_BOOL))
      at->i = v->i;
    break;
  case IR_ATTR_PAIR:
    if (v->kind == VAL_INT) {
      at->pair[0] = at->pair[1] = v->i;
      ok = true;
    } else if (is_seq(v) && v->n == 2 && v->items[0].kind == VAL_INT &&
               v->items[1].kind == VAL_INT) {
      at->pair[0] = v->items[0].i;
      at->pair[1] = v->items[1].i;
      ok = true;
    }
    break;
  case IR_ATTR_INTS:
    if (!is_seq(v))
      break;
    at->n_ints = v->n;
    at->ints = ARENA_ARRAY(c->g->a, int64_t, v->n > 0 ? v->n : 1);
    ok = true;
    for (int k = 0; k < v->n && ok; k++) {
      const value *item = &v->items[k];
      if (item->kind == VAL_INT && item->i != IR_RESHAPE_BATCH)
        at->ints[k] = item->i;
      else if (item->kind == VAL_WORD && strcmp(item->s, "batch") == 0)
        at->ints[k] = IR_RESHAPE_BATCH;
      else
        ok = false;
    }
    break;
  case IR_ATTR_SYMBOL:
    if ((ok = v->kind == VAL_WORD &&
              elab_symbol_in(spec->symbols ? spec->symbols : "", v->s)))
      at->sym = arena_strdup(c->g->a, v->s);
    break;
  }
  if (!ok)
    return bad_attr(c, sc, op, spec, v, loc);
  at->type = spec->type;
  at->set = true;
  return KILN_OK;
}

static kiln_status call_op(elab_ctx *c, elab_scope *sc, ir_op op,
                           const ast_expr *call, const value *first,
                           const char *name, const char *target, value *out) {
  const ir_op_info *info = &ir_op_table[op];
  int n = call->n_args + (first != NULL);
  if (n < info->min_inputs)
    return arity_error(c, info, n, call->loc);
  if (info->max_inputs >= 0 && n > info->max_inputs) {
    int extra = info->max_inputs - (first != NULL);
    return arity_error(c, info, n,
                       extra >= 0 ? call->args[extra]->loc : call->loc);
  }
  ir_node **inputs = ARENA_ARRAY(c->g->a, ir_node *, n > 0 ? n : 1);
  for (int k = 0; k < n; k++) {
    value v = first ? *first : (value){0};
    kiln_loc loc = call->loc;
    if (k > 0 || !first) {
      const ast_expr *arg = call->args[k - (first != NULL)];
      loc = arg->loc;
      kiln_status st = elab_eval(c, sc, arg, target, true, &v);
      if (st)
        return st;
    }
    if (v.kind != VAL_TENSOR)
      return diag_error(c->err, KILN_ERR_TYPE, loc,
                        "argument %d of '%s' must be a tensor, found %s", k + 1,
                        info->name, elab_value_str(c->a, &v));
    inputs[k] = v.node;
  }
  kiln_status st = elab_count_work(c, call->loc);
  if (st)
    return st;
  ir_node *node = ir_node_new(c->g, op, name, call->loc, inputs, n);
  unsigned given = 0;
  for (int k = 0; k < call->n_kwargs; k++) {
    const ast_kwarg *kw = &call->kwargs[k];
    int idx = ir_op_attr_index(op, kw->name);
    if (idx < 0) {
      const char *names[IR_MAX_ATTRS];
      int n_names = ir_op_attr_count(op);
      for (int j = 0; j < n_names; j++)
        names[j] = info->attrs[j].name;
      const char *hint = suggest_closest(kw->name, names, n_names);
      if (hint)
        return diag_error(c->err, KILN_ERR_NAME, kw->loc,
                          "unknown attribute '%s' for %s (did you mean "
                          "'%s'?)",
                          kw->name, info->name, hint);
      return diag_error(c->err, KILN_ERR_NAME, kw->loc,
                        "unknown attribute '%s' for %s%s", kw->name, info->name,
                        n_names ? "" : " (it has none)");
    }
    if (given & (1u << idx))
      return diag_error(c->err, KILN_ERR_NAME, kw->loc,
                        "attribute '%s' of %s is given twice", kw->name,
                        info->name);
    given |= 1u << idx;
    const ir_attr_spec *spec = &info->attrs[idx];
    value v;
    /* One of the attribute's own words (reduction=sum) is that word even
     * when a layer of the same name is in scope. */
    if (spec->type == IR_ATTR_SYMBOL && kw->value->kind == AST_NAME &&
        spec->symbols && elab_symbol_in(spec->symbols, kw->value->s)) {
      v = (value){.kind = VAL_WORD, .s = kw->value->s, .loc = kw->value->loc};
    } else if ((st = elab_eval(c, sc, kw->value, target, false, &v))) {
      return st;
    }
    if ((st = set_attr(c, sc, info->name, spec, &node->attrs[idx], &v,
                       kw->value->loc)))
      return st;
  }
  if ((st = ir_node_finish(c->g, node, c->err)))
    return st;
  memset(out, 0, sizeof *out);
  out->kind = VAL_TENSOR;
  out->node = node;
  out->loc = call->loc;
  return KILN_OK;
}

/* ---- block calls ---- */

static kiln_status recursion_error(elab_ctx *c, const ast_block *b,
                                   kiln_loc loc) {
  strbuf path;
  strbuf_init(&path);
  int from = 0;
  while (c->calls[from] != b)
    from++;
  for (int k = from; k < c->n_calls; k++)
    strbuf_printf(&path, "%s -> ", c->calls[k]->name);
  strbuf_puts(&path, b->name);
  kiln_status st =
      diag_error(c->err, KILN_ERR_NAME, loc, "block '%s' calls itself: %s",
                 b->name, path.data);
  strbuf_free(&path);
  return st;
}

static int find_param(const ast_block *b, const char *name) {
  for (int k = 0; k < b->n_params; k++)
    if (strcmp(b->params[k].name, name) == 0)
      return k;
  return -1;
}

/* Binds the arguments (evaluated in the caller's scope `sc`): positional,
 * then keyword, then defaults in parameter order, evaluated in the new
 * scope where only the earlier parameters are bound yet. */
static kiln_status bind_params(elab_ctx *c, elab_scope *sc, elab_scope *inner,
                               const ast_block *b, const ast_expr *call,
                               const value *first, const char *name,
                               const char *target) {
  kiln_status st;
  int np = b->n_params, n_pos = call->n_args + (first != NULL);
  value *args = ARENA_ARRAY(c->a, value, np > 0 ? np : 1);
  bool *given = ARENA_ARRAY(c->a, bool, np > 0 ? np : 1);
  if (n_pos > np) {
    int extra = np - (first != NULL);
    return diag_error(c->err, KILN_ERR_TYPE,
                      extra >= 0 ? call->args[extra]->loc : call->loc,
                      "block '%s' takes %d argument%s, found %d", b->name, np,
                      np == 1 ? "" : "s", n_pos);
  }
  for (int k = 0; k < n_pos; k++) {
    given[k] = true;
    if (k == 0 && first)
      args[k] = *first;
    else if ((st = elab_eval(c, sc, call->args[k - (first != NULL)], target,
                             true, &args[k])))
      return st;
  }
  for (int k = 0; k < call->n_kwargs; k++) {
    const ast_kwarg *kw = &call->kwargs[k];
    int p = find_param(b, kw->name);
    if (p < 0) {
      const char **names = ARENA_ARRAY(c->a, const char *, np + 1);
      for (int j = 0; j < np; j++)
        names[j] = b->params[j].name;
      const char *hint = suggest_closest(kw->name, names, np);
      return diag_error(c->err, KILN_ERR_NAME, kw->loc,
                        "block '%s' has no parameter '%s'%s%s%s", b->name,
                        kw->name, hint ? " (did you mean '" : "",
                        hint ? hint : "", hint ? "'?)" : "");
    }
    if (given[p])
      return diag_error(c->err, KILN_ERR_NAME, kw->loc,
                        "parameter '%s' of block '%s' is given twice", kw->name,
                        b->name);
    given[p] = true;
    if ((st = elab_eval(c, sc, kw->value, target, false, &args[p])))
      return st;
  }
  for (int k = 0; k < np; k++) {
    const ast_block_param *p = &b->params[k];
    elab_binding *bind = strmap_get(&inner->map, p->name);
    if (!given[k] && !p->def)
      return diag_error(c->err, KILN_ERR_TYPE, call->loc,
                        "missing argument '%s' for block '%s'", p->name,
                        b->name);
    if (!given[k] && (st = elab_eval(c, inner, p->def, name, false, &args[k])))
      return st;
    bind->val = args[k];
    bind->state = ELAB_DONE;
  }
  return KILN_OK;
}

static kiln_status call_block(elab_ctx *c, elab_scope *sc, const ast_block *b,
                              const ast_expr *call, const value *first,
                              const char *name, const char *target,
                              value *out) {
  kiln_status st;
  for (int k = 0; k < c->n_calls; k++)
    if (c->calls[k] == b)
      return recursion_error(c, b, call->loc);
  if ((st = elab_count_work(c, call->loc)))
    return st;
  if (++c->depth > ELAB_MAX_DEPTH)
    return diag_error(c->err, KILN_ERR_INVALID, call->loc,
                      "blocks and names nest more than %d deep",
                      ELAB_MAX_DEPTH);
  elab_scope *inner =
      elab_scope_new(c, arena_printf(c->a, "%s.", name), b->name);
  for (int k = 0; k < b->n_params; k++)
    if (!elab_scope_add(c, inner, b->params[k].name, b->params[k].loc, NULL))
      return KILN_ERR_NAME;
  if ((st = bind_params(c, sc, inner, b, call, first, name, target)))
    return st;
  const ast_stmt *ret = NULL;
  for (int k = 0; k < b->n_stmts; k++) {
    const ast_stmt *s = &b->stmts[k];
    if (s->kind == AST_STMT_RETURN) {
      ret = s;
    } else if (s->kind == AST_STMT_ASSIGN || s->kind == AST_STMT_SEQUENCE) {
      if (!elab_scope_add(c, inner, s->name, s->name_loc, s))
        return KILN_ERR_NAME;
    } else {
      return diag_error(c->err, KILN_ERR_SYNTAX, s->loc,
                        "'%s' is not allowed in a block",
                        s->kind == AST_STMT_INPUT ? "input" : "output");
    }
  }
  if (!ret)
    return diag_error(c->err, KILN_ERR_SYNTAX, b->loc,
                      "block '%s' has no 'return'", b->name);
  ARENA_PUSH(c->a, c->calls, c->n_calls, c->cap_calls, b);
  /* The return expression's own calls are named after the call itself:
   * `stage1.relu`, `stage1.add`. */
  if ((st = elab_scope_run(c, inner)) ||
      (st = elab_eval(c, inner, ret->value, name, true, out)))
    return st;
  c->n_calls--;
  c->depth--;
  return KILN_OK;
}

kiln_status elab_call(elab_ctx *c, elab_scope *sc, const ast_expr *call,
                      const value *first, const char *name, const char *target,
                      value *out) {
  ir_op op = ir_op_find(call->s);
  if (op != IR_OP_COUNT && op != IR_OP_INPUT && !ir_op_table[op].internal)
    return call_op(c, sc, op, call, first, name, target, out);
  const ast_block *b = strmap_get(&c->blocks, call->s);
  if (b)
    return call_block(c, sc, b, call, first, name, target, out);
  const char *hint = suggest_closest(call->s, c->callees, c->n_callees);
  return diag_error(c->err, KILN_ERR_NAME, call->loc,
                    "unknown op or block '%s'%s%s%s", call->s,
                    hint ? " (did you mean '" : "", hint ? hint : "",
                    hint ? "'?)" : "");
}

/* ---- sequences ---- */

/* name = sequence(x) { items }: item k gets the previous value as its first
 * argument and is named `name.k` (a block call's layers `name.k.inner`). */
kiln_status elab_sequence(elab_ctx *c, elab_scope *sc, const ast_stmt *st,
                          const char *full, value *out) {
  value cur;
  kiln_status s = elab_eval(c, sc, st->value, full, true, &cur);
  if (s)
    return s;
  if (cur.kind != VAL_TENSOR)
    return diag_error(c->err, KILN_ERR_TYPE, st->value->loc,
                      "the input of sequence '%s' must be a tensor, found %s",
                      st->name, elab_value_str(c->a, &cur));
  int index = 0;
  for (int k = 0; k < st->n_items; k++) {
    const ast_seq_item *item = &st->items[k];
    if (item->repeat < 1 || item->repeat > ELAB_MAX_WORK)
      return diag_error(c->err, KILN_ERR_TYPE, item->loc,
                        "a repeat count must be from 1 to %d, found %lld",
                        ELAB_MAX_WORK, (long long)item->repeat);
    for (int64_t r = 0; r < item->repeat; r++) {
      const char *name = arena_printf(c->a, "%s.%d", full, index++);
      value next;
      if ((s = elab_call(c, sc, item->call, &cur, name, name, &next)))
        return s;
      cur = next;
    }
  }
  *out = cur;
  return KILN_OK;
}
