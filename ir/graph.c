/* graph.c — building graphs: a node is created with default attributes,
 * the caller sets the ones the model gives, and ir_node_finish checks
 * them, runs the op's shape rule and appends the node. Because a node's
 * inputs must already be in the graph, the node array is topologically
 * ordered by construction. */
#include "ir/ir_impl.h"

#include <string.h>

void ir_graph_init(ir_graph *g, arena *a, const char *name) {
  memset(g, 0, sizeof *g);
  g->a = a;
  g->name = name ? arena_strdup(a, name) : NULL;
  strmap_init(&g->by_name, a);
  g->placement = (ir_placement){.data_parallel = 1,
                                .stages = 1,
                                .microbatches = 1,
                                .pipeline_schedule = "1f1b"};
  ir_train_cfg_default(&g->train);
  ir_data_cfg_default(&g->data);
}

ir_node *ir_graph_add_input(ir_graph *g, const char *name, kiln_loc loc,
                            ir_dtype dtype, const ir_shape *shape,
                            kiln_error *err) {
  KILN_ASSERT((unsigned)dtype < IR_DTYPE_COUNT);
  ir_node *n = ir_node_new(g, IR_OP_INPUT, name, loc, NULL, 0);
  n->dtype = dtype;
  n->shape = *shape;
  return ir_node_finish(g, n, err) == KILN_OK ? n : NULL;
}

ir_node *ir_node_new(ir_graph *g, ir_op op, const char *name, kiln_loc loc,
                     ir_node **inputs, int n_inputs) {
  KILN_ASSERT((unsigned)op < IR_OP_COUNT && n_inputs >= 0);
  KILN_ASSERT(name && *name);
  ir_node *n = ARENA_NEW(g->a, ir_node);
  n->id = -1; /* not in the graph until ir_node_finish */
  n->op = op;
  n->name = arena_strdup(g->a, name);
  n->loc = loc;
  n->n_inputs = n_inputs;
  n->inputs = ARENA_ARRAY(g->a, ir_node *, n_inputs);
  if (n_inputs)
    memcpy(n->inputs, inputs, sizeof(ir_node *) * (size_t)n_inputs);
  int na = ir_op_attr_count(op);
  n->attrs = ARENA_ARRAY(g->a, ir_attr, na);
  for (int k = 0; k < na; k++) {
    const ir_attr_spec *s = &ir_op_table[op].attrs[k];
    ir_attr *a = &n->attrs[k];
    a->type = s->type;
    a->i = s->def_int;
    a->f = s->def_float;
    a->pair[0] = a->pair[1] = s->def_int;
    a->sym = s->def_sym;
  }
  return n;
}

/* Whether `word` is one of the '|'-separated `symbols`. */
static bool symbol_allowed(const char *symbols, const char *word) {
  size_t len = strlen(word);
  for (const char *p = symbols; *p;) {
    const char *end = strchr(p, '|');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    if (n == len && strncmp(p, word, n) == 0)
      return true;
    p += end ? n + 1 : n;
  }
  return false;
}

static kiln_status check_attrs(const ir_node *n, kiln_error *err) {
  const ir_op_info *info = &ir_op_table[n->op];
  for (int k = 0; k < ir_op_attr_count(n->op); k++) {
    const ir_attr_spec *s = &info->attrs[k];
    const ir_attr *a = &n->attrs[k];
    KILN_ASSERT(a->type == s->type);
    if (s->required && !a->set)
      return ir_node_error(err, KILN_ERR_TYPE, n,
                           "missing required attribute '%s'", s->name);
    if (s->type == IR_ATTR_SYMBOL && !symbol_allowed(s->symbols, a->sym)) {
      strbuf list; /* "auto|xavier_uniform" -> "auto, xavier_uniform" */
      strbuf_init(&list);
      for (const char *p = s->symbols; *p; p++) {
        if (*p == '|')
          strbuf_puts(&list, ", ");
        else
          strbuf_putc(&list, *p);
      }
      kiln_status st = ir_node_error(
          err, KILN_ERR_TYPE, n, "attribute '%s' must be one of %s; got '%s'",
          s->name, list.data, a->sym);
      strbuf_free(&list);
      return st;
    }
  }
  return KILN_OK;
}

static kiln_status check_arity(const ir_node *n, kiln_error *err) {
  const ir_op_info *info = &ir_op_table[n->op];
  int lo = info->min_inputs, hi = info->max_inputs, got = n->n_inputs;
  if (got >= lo && (hi < 0 || got <= hi))
    return KILN_OK;
  const char *how = "";
  int want = lo;
  if (hi < 0 || (lo != hi && got < lo)) {
    how = "at least ";
  } else if (lo != hi) {
    how = "at most ";
    want = hi;
  }
  return ir_node_error(err, KILN_ERR_TYPE, n,
                       "takes %s%d input%s (%s), but %d %s given", how, want,
                       want == 1 ? "" : "s", info->input_names, got,
                       got == 1 ? "was" : "were");
}

/* Keeps every later figure (element counts, MACs, bytes) inside int64_t. */
static kiln_status check_size(const ir_node *n, const ir_shape *s,
                              const char *what, kiln_error *err) {
  int64_t total = 1;
  for (int i = 0; i < s->rank; i++) {
    int64_t d = s->dim[i] == IR_DIM_BATCH ? 1 : s->dim[i];
    KILN_ASSERT(d >= 1 && "shape rules give positive dimensions");
    if (d > IR_MAX_NUMEL / total) {
      arena scratch;
      arena_init(&scratch);
      kiln_status st = ir_node_error(
          err, KILN_ERR_SHAPE, n, "%s %s has more than %lld elements%s", what,
          ir_shape_str(&scratch, s), (long long)IR_MAX_NUMEL,
          s->rank && s->dim[0] == IR_DIM_BATCH ? " per example" : "");
      arena_free(&scratch);
      return st;
    }
    total *= d;
  }
  return KILN_OK;
}

kiln_status ir_node_finish(ir_graph *g, ir_node *n, kiln_error *err) {
  KILN_ASSERT(n->id < 0 && "node finished twice");
  for (int i = 0; i < n->n_inputs; i++) {
    const ir_node *in = n->inputs[i];
    KILN_ASSERT(in && in->id >= 0 && in->id < g->n_nodes &&
                g->nodes[in->id] == in && "inputs must be in the graph");
  }
  kiln_status st;
  if ((st = check_attrs(n, err)) || (st = check_arity(n, err)))
    return st;
  n->n_params = 0;
  n->params = NULL;
  ir_infer_ctx c = {.a = g->a, .err = err, .node = n};
  KILN_ASSERT(ir_op_table[n->op].infer);
  if ((st = ir_op_table[n->op].infer(&c)))
    return st;
  if ((st = check_size(n, &n->shape, "output", err)))
    return st;
  for (int i = 0; i < n->n_params; i++)
    if ((st = check_size(n, &n->params[i].shape, n->params[i].name, err)))
      return st;
  ir_node *prev = strmap_get(&g->by_name, n->name);
  if (prev) {
    diag_error(err, KILN_ERR_NAME, n->loc,
               "duplicate name '%s': it already names %s%s", n->name,
               prev->op == IR_OP_INPUT ? "an input" : "a layer of op ",
               prev->op == IR_OP_INPUT ? "" : ir_op_table[prev->op].name);
    if (prev->loc.file)
      diag_note(err, prev->loc, "'%s' is first defined here", prev->name);
    return KILN_ERR_NAME;
  }
  strmap_put(&g->by_name, n->name, n);
  n->id = g->n_nodes;
  ARENA_PUSH(g->a, g->nodes, g->n_nodes, g->cap_nodes, n);
  return KILN_OK;
}

ir_node *ir_graph_find(const ir_graph *g, const char *name) {
  return strmap_get(&g->by_name, name);
}
