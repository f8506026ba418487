/* config_placement.c — the placement section: replicas, micro-batches,
 * the pipeline schedule, and the pipeline stages, which name layers and so
 * need the graph: every layer in exactly one stage, and no stage using a
 * later stage's values. */
#include "frontend/config_table.h"

#include <string.h>

static kiln_status parse_pipe_schedule(cfg_ctx *c, void *obj, const ast_expr *e,
                                       const char *what) {
  static const char *const names[] = {"gpipe", "1f1b"};
  int k = 0;
  kiln_status st = config_parse_symbol(c, e, what, names, 2, &k);
  if (!st)
    ((ir_placement *)obj)->pipeline_schedule = names[k];
  return st;
}

/* One name listed in `stages`. */
typedef struct stage_entry {
  const ast_expr *item;
  int stage;
  bool used;
} stage_entry;

/* Lists every name of every stage in `names` (name -> stage_entry). */
static kiln_status list_names(cfg_ctx *c, const ast_expr *e, const char *what,
                              strmap *names, stage_entry ***entries, int *n) {
  int cap = 0;
  for (int s = 0; s < e->n_args; s++) {
    const ast_expr *list = e->args[s];
    if ((list->kind != AST_LIST && list->kind != AST_TUPLE) ||
        list->n_args == 0)
      return config_expected_error(
          c, list, what, "a non-empty list of layer names for each stage");
    for (int k = 0; k < list->n_args; k++) {
      const ast_expr *item = list->args[k];
      if (item->kind != AST_NAME && item->kind != AST_STRING)
        return config_expected_error(c, item, what, "a layer name");
      stage_entry *en = ARENA_NEW(c->a, stage_entry);
      *en = (stage_entry){.item = item, .stage = s};
      if (!strmap_put(names, item->s, en)) {
        const stage_entry *first = strmap_get(names, item->s);
        return diag_error(c->err, KILN_ERR_NAME, item->loc,
                          first->stage == s
                              ? "layer '%s' is in stage %d twice"
                              : "layer '%s' is in stages %d and %d",
                          item->s, first->stage, s);
      }
      ARENA_PUSH(c->a, *entries, *n, cap, en);
    }
  }
  return KILN_OK;
}

/* A name covers the layer of that name and everything whose name starts
 * with "name." ("trunk" covers trunk.0, trunk.1, ...): each layer looks up
 * its own name and every dotted prefix of it, so the cost is linear in the
 * graph, not graph x names. */
static kiln_status assign_layer(cfg_ctx *c, ir_node *n, const strmap *names,
                                int *stage_of) {
  char *buf = arena_strdup(c->a, n->name);
  for (char *p = buf;; p++) {
    if (*p != '.' && *p != '\0')
      continue;
    char saved = *p;
    *p = '\0';
    stage_entry *en = strmap_get(names, buf);
    *p = saved;
    if (en) {
      en->used = true;
      if (stage_of[n->id] >= 0)
        return diag_error(c->err, KILN_ERR_NAME, en->item->loc,
                          "layer '%s' is in stages %d and %d", n->name,
                          stage_of[n->id], en->stage);
      stage_of[n->id] = en->stage;
    }
    if (!saved)
      return KILN_OK;
  }
}

static kiln_status unused_name_error(cfg_ctx *c, const stage_entry *en) {
  ir_graph *g = c->g;
  const char *name = en->item->s;
  ir_node *n = ir_graph_find(g, name);
  if (n && n->op == IR_OP_INPUT)
    return diag_error(c->err, KILN_ERR_NAME, en->item->loc,
                      "'%s' is an input: inputs belong to no stage", name);
  const char **names = ARENA_ARRAY(c->a, const char *, g->n_nodes + 1);
  for (int j = 0; j < g->n_nodes; j++)
    names[j] = g->nodes[j]->name;
  const char *hint = suggest_closest(name, names, g->n_nodes);
  return diag_error(c->err, KILN_ERR_NAME, en->item->loc,
                    "stage %d names '%s', which is no layer%s%s%s", en->stage,
                    name, hint ? " (did you mean '" : "", hint ? hint : "",
                    hint ? "'?)" : "");
}

/* stages = [[a, b], [c]]: every layer in exactly one stage, and a stage
 * uses only values of its own or earlier stages (the pipeline runs
 * forward). */
static kiln_status parse_stages(cfg_ctx *c, void *obj, const ast_expr *e,
                                const char *what) {
  ir_placement *p = obj;
  ir_graph *g = c->g;
  if ((e->kind != AST_LIST && e->kind != AST_TUPLE) || e->n_args == 0)
    return config_expected_error(
        c, e, what, "a list of lists of layer names, one per stage");
  strmap names;
  strmap_init(&names, c->a);
  stage_entry **entries = NULL;
  int n_entries = 0;
  kiln_status st = list_names(c, e, what, &names, &entries, &n_entries);
  if (st)
    return st;
  int *stage_of = ARENA_ARRAY(c->a, int, g->n_nodes + 1);
  for (int k = 0; k < g->n_nodes; k++)
    stage_of[k] = -1;
  for (int k = 0; k < g->n_nodes; k++)
    if (g->nodes[k]->op != IR_OP_INPUT &&
        (st = assign_layer(c, g->nodes[k], &names, stage_of)))
      return st;
  for (int k = 0; k < n_entries; k++)
    if (!entries[k]->used)
      return unused_name_error(c, entries[k]);
  for (int k = 0; k < g->n_nodes; k++) {
    const ir_node *n = g->nodes[k];
    if (n->op != IR_OP_INPUT && stage_of[k] < 0)
      return diag_error(c->err, KILN_ERR_NAME, e->loc,
                        "layer '%s' is in no stage", n->name);
  }
  for (int k = 0; k < g->n_nodes; k++) {
    const ir_node *n = g->nodes[k];
    for (int i = 0; n->op != IR_OP_INPUT && i < n->n_inputs; i++) {
      const ir_node *in = n->inputs[i];
      if (in->op != IR_OP_INPUT && stage_of[in->id] > stage_of[k])
        return diag_error(c->err, KILN_ERR_NAME, e->loc,
                          "layer '%s' in stage %d uses '%s' from stage %d",
                          n->name, stage_of[k], in->name, stage_of[in->id]);
    }
  }
  for (int k = 0; k < g->n_nodes; k++)
    g->nodes[k]->stage = stage_of[k] < 0 ? 0 : stage_of[k];
  p->stages = e->n_args;
  return KILN_OK;
}

static const cfg_field placement_keys[] = {
    FIELD("data_parallel", CHK_INT_POS, ST_INT, ir_placement, data_parallel),
    FIELD("microbatches", CHK_INT_POS, ST_INT, ir_placement, microbatches),
    CUSTOM("schedule", parse_pipe_schedule),
    CUSTOM("stages", parse_stages),
};

kiln_status config_placement(const ast_section *s, ir_graph *g,
                             kiln_error *err) {
  arena scratch;
  arena_init(&scratch);
  cfg_ctx ctx = {.a = &scratch, .err = err, .section = "placement", .g = g};
  ir_placement *p = &g->placement;
  *p = (ir_placement){.data_parallel = 1,
                      .stages = 1,
                      .microbatches = 1,
                      .pipeline_schedule = "1f1b"};
  for (int k = 0; k < g->n_nodes; k++)
    g->nodes[k]->stage = 0;
  kiln_status st = config_apply_section(&ctx, s, placement_keys,
                                        (int)ARRAY_LEN(placement_keys), p);
  /* Micro-batches split each replica's batch evenly. */
  if (!st && g->has_train && g->train.batch % p->microbatches != 0) {
    const ast_expr *at = NULL;
    for (int k = 0; k < s->n_entries; k++)
      if (strcmp(s->entries[k].key, "microbatches") == 0)
        at = s->entries[k].value;
    st = diag_error(err, KILN_ERR_TYPE, at ? at->loc : s->loc,
                    "the batch (%lld) is not a multiple of microbatches (%d)",
                    (long long)g->train.batch, p->microbatches);
  }
  arena_free(&scratch);
  return st;
}
