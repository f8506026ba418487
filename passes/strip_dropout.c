/* strip_dropout.c — inference graphs only: dropout is the identity in eval
 * mode (inverted dropout scales at training time), so every dropout node
 * is replaced by its input. Training graphs keep theirs: there the mask is
 * drawn from Philox and fused by lowering, never stored.
 *
 * Needs: an inference graph (the pass manager runs it on no other).
 * Guarantees: no dropout node remains; values unchanged. */
#include "passes/passes.h"

kiln_status pass_strip_dropout(pass_ctx *c) {
  ir_graph *g = c->g;
  for (int i = 0; i < g->n_nodes; i++) {
    ir_node *n = g->nodes[i];
    if (n->op != IR_OP_DROPOUT)
      continue;
    ir_graph_replace_uses(g, n, n->inputs[0]);
    ir_graph_remove(g, n);
    c->changes++;
  }
  return KILN_OK;
}
