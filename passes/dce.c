/* dce.c — dead-code elimination: removes every node whose value reaches
 * none of the roots. Roots are the graph's outputs, its loss, and (on a
 * differentiated graph) every grad, grad_norm and update node, since
 * their effect is on parameters, not on a value anything reads. A node is
 * live when a live node reads it as an input or, for grad and update
 * nodes, names it as the forward node it refers to.
 *
 * Inputs are never removed, even when nothing reads them: they are the
 * graph's interface (the data loader binds every one). A removed layer's
 * parameters leave the graph with it.
 *
 * Needs: a verified graph. Guarantees: every remaining non-input node
 * reaches a root; nothing live changes. */
#include "passes/passes.h"

static bool is_root(const ir_node *n) {
  return n->op == IR_OP_GRAD || n->op == IR_OP_GRAD_NORM ||
         n->op == IR_OP_UPDATE;
}

static void mark(bool *live, const ir_node *n) {
  live[n->id] = true;
}

kiln_status pass_dce(pass_ctx *c) {
  ir_graph *g = c->g;
  bool *live = ARENA_ARRAY(g->a, bool, g->n_nodes);
  for (int i = 0; i < g->n_outputs; i++)
    mark(live, g->outputs[i]);
  if (g->loss)
    mark(live, g->loss);
  /* Topological order: a node's users come after it, so one backward
   * sweep sees every user before the node. */
  for (int i = g->n_nodes - 1; i >= 0; i--) {
    const ir_node *n = g->nodes[i];
    if (is_root(n) || n->op == IR_OP_INPUT)
      live[i] = true;
    if (!live[i])
      continue;
    for (int k = 0; k < n->n_inputs; k++)
      mark(live, n->inputs[k]);
    if (n->fwd)
      mark(live, n->fwd);
  }
  for (int i = 0; i < g->n_nodes; i++) {
    if (live[i])
      continue;
    ir_graph_remove(g, g->nodes[i]);
    c->changes++;
  }
  return KILN_OK;
}
