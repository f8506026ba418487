/* rewrite.c — editing a finished graph, for the graph passes (passes/).
 *
 * A pass edits the graph in place: it redirects uses of a node to another
 * (ir_graph_replace_uses), changes a node's inputs or attributes and re-runs
 * its shape rule (ir_node_reinfer), and marks nodes removed
 * (ir_graph_remove). Removed nodes stay in g->nodes, with id -1 (the id of a
 * node not yet in the graph), until ir_graph_compact drops them, renumbers
 * the rest and restores the invariants ir_verify checks: ids equal to
 * positions, topological order, by_name holding exactly the live nodes.
 * The pass manager compacts after every pass, so passes see a clean graph.
 *
 * Pointers into the graph stay valid (everything lives in the graph's
 * arena): a removed node's parameters can still be read by name for value
 * transformations (passes/fold_bn.c). */
#include "ir/ir_impl.h"

#include <string.h>

static bool removed(const ir_node *n) {
  return n->id < 0;
}

void ir_graph_replace_uses(ir_graph *g, ir_node *old, ir_node *new_node) {
  KILN_ASSERT(old && new_node && old != new_node);
  for (int i = 0; i < g->n_nodes; i++) {
    ir_node *n = g->nodes[i];
    if (n == new_node)
      continue; /* new_node may read old (e.g. a bypassed view) */
    for (int k = 0; k < n->n_inputs; k++)
      if (n->inputs[k] == old)
        n->inputs[k] = new_node;
  }
  /* Outputs stay unique: `output a, b` with a replaced by b is one
   * output. */
  int w = 0;
  for (int i = 0; i < g->n_outputs; i++) {
    ir_node *o = g->outputs[i] == old ? new_node : g->outputs[i];
    bool dup = false;
    for (int j = 0; j < w; j++)
      dup |= g->outputs[j] == o;
    if (!dup)
      g->outputs[w++] = o;
  }
  g->n_outputs = w;
  if (g->loss == old)
    g->loss = new_node;
}

void ir_graph_remove(ir_graph *g, ir_node *n) {
  KILN_ASSERT(n->id >= 0 && n->id < g->n_nodes && g->nodes[n->id] == n);
  n->id = -1;
}

void ir_graph_use_counts(const ir_graph *g, int *counts) {
  memset(counts, 0, sizeof(int) * (size_t)g->n_nodes);
  for (int i = 0; i < g->n_nodes; i++) {
    const ir_node *n = g->nodes[i];
    if (removed(n))
      continue;
    for (int k = 0; k < n->n_inputs; k++)
      if (!removed(n->inputs[k]))
        counts[n->inputs[k]->id]++;
  }
  for (int i = 0; i < g->n_outputs; i++)
    if (!removed(g->outputs[i]))
      counts[g->outputs[i]->id]++;
  if (g->loss && !removed(g->loss))
    counts[g->loss->id]++;
}

kiln_status ir_node_reinfer(ir_graph *g, ir_node *n, kiln_error *err) {
  KILN_ASSERT(ir_op_table[n->op].infer);
  n->n_params = 0;
  n->params = NULL;
  ir_infer_ctx c = {.a = g->a, .err = err, .node = n};
  return ir_op_table[n->op].infer(&c);
}

/* The node `n` must follow: its inputs and, for grad and update nodes, the
 * forward node they refer to. */
static int n_deps(const ir_node *n) {
  return n->n_inputs + (n->fwd != NULL);
}

static ir_node *dep(const ir_node *n, int k) {
  return k < n->n_inputs ? n->inputs[k] : n->fwd;
}

void ir_graph_compact(ir_graph *g) {
  int n = g->n_nodes;
  /* Stable topological order: nodes in their current order, each preceded
   * by whatever it depends on that is not placed yet (depth first, with an
   * explicit stack: training graphs have long chains). A pass that only
   * redirects uses to earlier nodes keeps the order it had. */
  ir_node **order = ARENA_ARRAY(g->a, ir_node *, n);
  int n_order = 0;
  /* 0: not placed, 1: on the stack, 2: placed; indexed by position, which
   * every live node's id still is */
  unsigned char *state = ARENA_ARRAY(g->a, unsigned char, n);
  ir_node **stack = ARENA_ARRAY(g->a, ir_node *, n);
  int *next = ARENA_ARRAY(g->a, int, n);
  for (int i = 0; i < n; i++) {
    ir_node *root = g->nodes[i];
    if (removed(root) || state[i] == 2)
      continue;
    int sp = 0;
    stack[sp] = root;
    next[sp++] = 0;
    state[i] = 1;
    while (sp) {
      ir_node *top = stack[sp - 1];
      if (next[sp - 1] < n_deps(top)) {
        ir_node *d = dep(top, next[sp - 1]++);
        KILN_ASSERT(!removed(d) && "a live node uses a removed node");
        KILN_ASSERT(d->id < n && g->nodes[d->id] == d);
        KILN_ASSERT(state[d->id] != 1 && "cycle in the graph");
        if (state[d->id] == 0) {
          state[d->id] = 1;
          stack[sp] = d;
          next[sp++] = 0;
        }
        continue;
      }
      state[top->id] = 2;
      order[n_order++] = top;
      sp--;
    }
  }
  for (int i = 0; i < g->n_outputs; i++)
    KILN_ASSERT(!removed(g->outputs[i]) && "an output was removed");
  KILN_ASSERT((!g->loss || !removed(g->loss)) && "the loss was removed");
  strmap_init(&g->by_name, g->a);
  for (int i = 0; i < n_order; i++) {
    order[i]->id = i;
    KILN_ASSERT(strmap_put(&g->by_name, order[i]->name, order[i]) &&
                "two live nodes share a name");
  }
  g->nodes = order;
  g->n_nodes = g->cap_nodes = n_order;
}
