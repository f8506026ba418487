/* simplify.c — algebraic simplifications of ops the IR has. The IR has no
 * constant tensors (every value depends on an input or a parameter), so
 * there is nothing to constant-fold in the classic sense; what can be
 * folded are identities between ops:
 *
 *   reshape(view(x))            -> reshape(x)    (view: reshape or flatten;
 *   flatten(view(x))            -> flatten(x)     kept only when the shape
 *                                                 is unchanged)
 *   reshape/flatten to the shape it already has -> its input
 *   dropout(x, p=0)             -> x
 *   relu(relu(x))               -> relu(x)
 *
 * Views are row-major reinterpretations, so a chain of them is one view of
 * the first input: a view reading a view is re-pointed at the view's input
 * and its shape rule re-run; if the result differs (flatten of a 4-D map
 * is not flatten of its 2-D view) the change is undone. Bypassed nodes
 * lose their uses and dce removes them.
 *
 * Needs: a verified graph. Guarantees: values bit for bit unchanged (every
 * rewrite is exact). */
#include "passes/passes.h"

static bool is_view(const ir_node *n) {
  return n->op == IR_OP_RESHAPE || n->op == IR_OP_FLATTEN;
}

/* Replaces n by its only input everywhere. */
static void bypass(pass_ctx *c, ir_node *n) {
  ir_graph_replace_uses(c->g, n, n->inputs[0]);
  ir_graph_remove(c->g, n);
  c->changes++;
}

/* Points view n at the input of the view it reads, when that gives the
 * same shape; returns whether it did. */
static bool skip_inner_view(pass_ctx *c, ir_node *n) {
  ir_node *inner = n->inputs[0];
  if (!is_view(inner))
    return false;
  ir_shape before = n->shape;
  kiln_error scratch;
  n->inputs[0] = inner->inputs[0];
  if (ir_node_reinfer(c->g, n, &scratch) == KILN_OK &&
      ir_shape_eq(&n->shape, &before))
    return true;
  n->inputs[0] = inner;
  kiln_status st = ir_node_reinfer(c->g, n, &scratch);
  KILN_ASSERT(st == KILN_OK && ir_shape_eq(&n->shape, &before));
  return false;
}

kiln_status pass_simplify(pass_ctx *c) {
  ir_graph *g = c->g;
  for (int i = 0; i < g->n_nodes; i++) {
    ir_node *n = g->nodes[i];
    if (is_view(n)) {
      while (skip_inner_view(c, n))
        c->changes++;
      const ir_node *x = n->inputs[0];
      if (ir_shape_eq(&n->shape, &x->shape) && n->dtype == x->dtype)
        bypass(c, n);
    } else if (n->op == IR_OP_DROPOUT) {
      int k = ir_op_attr_index(n->op, "p");
      KILN_ASSERT(k >= 0);
      if (n->attrs[k].f == 0)
        bypass(c, n);
    } else if (n->op == IR_OP_RELU && n->inputs[0]->op == IR_OP_RELU) {
      bypass(c, n);
    }
  }
  return KILN_OK;
}
