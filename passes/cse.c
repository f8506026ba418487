/* cse.c — common-subexpression elimination: a node with the same op, the
 * same inputs (after earlier merges), the same attributes, dtype and
 * pipeline stage as an earlier node computes the same value, so its uses
 * move to the earlier node and it is removed.
 *
 * Never merged: nodes that own parameters (two layers with equal
 * attributes have different weights), dropout (each layer draws its own
 * mask: the layer id is part of the Philox stream), inputs, and the
 * internal grad, grad_norm and update nodes (their identity is what they
 * update or differentiate, which attributes do not show).
 *
 * Needs: a verified graph. Guarantees: no two mergeable nodes remain;
 * values are bit for bit those of the unmerged graph. */
#include "passes/passes.h"

#include <string.h>

static bool mergeable(const ir_node *n) {
  return n->op != IR_OP_INPUT && n->op != IR_OP_DROPOUT && n->n_params == 0 &&
         !ir_op_table[n->op].internal;
}

/* A key equal for exactly the nodes that compute the same value. Floats
 * in hexadecimal: exact. */
static const char *node_key(arena *a, const ir_node *n) {
  strbuf b;
  strbuf_init(&b);
  strbuf_printf(&b, "%d|%d|%d|", (int)n->op, (int)n->dtype, n->stage);
  for (int k = 0; k < n->n_inputs; k++)
    strbuf_printf(&b, "%d,", n->inputs[k]->id);
  for (int k = 0; k < ir_op_attr_count(n->op); k++) {
    const ir_attr *at = &n->attrs[k];
    strbuf_putc(&b, '|');
    switch (at->type) {
    case IR_ATTR_INT:
    case IR_ATTR_BOOL:
      strbuf_printf(&b, "%lld", (long long)at->i);
      break;
    case IR_ATTR_FLOAT:
      strbuf_printf(&b, "%a", at->f);
      break;
    case IR_ATTR_PAIR:
      strbuf_printf(&b, "%lld,%lld", (long long)at->pair[0],
                    (long long)at->pair[1]);
      break;
    case IR_ATTR_INTS:
      for (int i = 0; i < at->n_ints; i++)
        strbuf_printf(&b, "%lld,", (long long)at->ints[i]);
      break;
    case IR_ATTR_SYMBOL:
      strbuf_puts(&b, at->sym);
      break;
    }
  }
  const char *key = arena_strdup(a, b.data);
  strbuf_free(&b);
  return key;
}

kiln_status pass_cse(pass_ctx *c) {
  ir_graph *g = c->g;
  strmap seen;
  strmap_init(&seen, g->a);
  /* In order: a node's inputs are already canonical when it is keyed, so
   * chains of duplicates (two relus over two equal adds) merge in one
   * sweep. */
  for (int i = 0; i < g->n_nodes; i++) {
    ir_node *n = g->nodes[i];
    if (!mergeable(n))
      continue;
    const char *key = node_key(g->a, n);
    ir_node *first = strmap_get(&seen, key);
    if (!first) {
      strmap_put(&seen, key, n);
      continue;
    }
    KILN_ASSERT(ir_shape_eq(&first->shape, &n->shape));
    ir_graph_replace_uses(g, n, first);
    ir_graph_remove(g, n);
    c->changes++;
  }
  return KILN_OK;
}
