/* verify.c — the graph IR's invariants, checked after elaboration and after
 * every pass (as QBE's ssacheck and tinygrad's SPEC=1 do), so that a pass
 * that breaks the graph is caught where it runs, not kernels later:
 *
 *   - nodes[i]->id == i, and every input is an earlier node of this graph
 *     (topological order);
 *   - input counts within the op's bounds, attribute types as the op table
 *     says, dtypes valid;
 *   - names non-empty and unique, and by_name maps each to its node;
 *   - shapes of rank 0..IR_MAX_DIMS with positive sizes, the batch only
 *     first; parameters without a batch;
 *   - pipeline stages within the placement's stage count;
 *   - outputs and the loss belong to the graph, the loss has a loss op;
 *   - autodiff's grad nodes name an earlier forward node and a valid input
 *     or parameter of it, whose shape and dtype they have; each recorded
 *     parameter gradient is such a node;
 *   - update nodes (ir_add_updates) name a valid parameter of an earlier
 *     node, read that parameter's grad node (and the grad_norm node when
 *     clipping), and are rank-0 f32 tokens; grad_norm reads only parameter
 *     gradients; g->updates[k] updates g->grad_params[k].
 *
 * A failure is a compiler bug, reported as KILN_ERR_INTERNAL. */
#include "ir/ir_impl.h"

static kiln_status fail(kiln_error *err, const ir_node *n, const char *fmt, ...)
    KILN_PRINTF(3, 4);
static kiln_status fail(kiln_error *err, const ir_node *n, const char *fmt,
                        ...) {
  strbuf b;
  strbuf_init(&b);
  strbuf_puts(&b, "IR verifier: ");
  if (n)
    strbuf_printf(&b, "node %d '%s' (%s): ", n->id, n->name ? n->name : "?",
                  (unsigned)n->op < IR_OP_COUNT ? ir_op_table[n->op].name
                                                : "?");
  va_list ap;
  va_start(ap, fmt);
  strbuf_vprintf(&b, fmt, ap);
  va_end(ap);
  diag_error(err, KILN_ERR_INTERNAL, (kiln_loc){0}, "%s", b.data);
  strbuf_free(&b);
  return KILN_ERR_INTERNAL;
}

static bool in_graph(const ir_graph *g, const ir_node *n, int before) {
  return n && n->id >= 0 && n->id < before && g->nodes[n->id] == n;
}

/* A valid shape: batch allowed in dimension 0 only when `batch_ok`. */
static bool shape_ok(const ir_shape *s, bool batch_ok) {
  if (s->rank < 0 || s->rank > IR_MAX_DIMS)
    return false;
  for (int i = 0; i < s->rank; i++) {
    if (s->dim[i] == IR_DIM_BATCH && i == 0 && batch_ok)
      continue;
    if (s->dim[i] < 1)
      return false;
  }
  return true;
}

static kiln_status verify_node(const ir_graph *g, const ir_node *n,
                               kiln_error *err) {
  const ir_op_info *info = &ir_op_table[n->op];
  if (!n->name || !*n->name)
    return fail(err, n, "empty name");
  if (ir_graph_find(g, n->name) != n)
    return fail(err, n, "name is not unique or not registered in by_name");
  if (n->n_inputs < info->min_inputs ||
      (info->max_inputs >= 0 && n->n_inputs > info->max_inputs))
    return fail(err, n, "%d inputs, outside %d..%d", n->n_inputs,
                info->min_inputs, info->max_inputs);
  for (int k = 0; k < n->n_inputs; k++)
    if (!in_graph(g, n->inputs[k], n->id))
      return fail(err, n, "input %d is not an earlier node of the graph", k);
  int na = ir_op_attr_count(n->op);
  if (na && !n->attrs)
    return fail(err, n, "no attributes");
  for (int k = 0; k < na; k++)
    if (n->attrs[k].type != info->attrs[k].type)
      return fail(err, n, "attribute '%s' has the wrong type",
                  info->attrs[k].name);
  int stages = g->placement.stages > 0 ? g->placement.stages : 1;
  if (n->stage < 0 || n->stage >= stages)
    return fail(err, n, "stage %d outside 0..%d", n->stage, stages - 1);
  if ((unsigned)n->dtype >= IR_DTYPE_COUNT)
    return fail(err, n, "invalid dtype %d", (int)n->dtype);
  if (!shape_ok(&n->shape, true))
    return fail(err, n, "invalid shape (rank %d)", n->shape.rank);
  for (int k = 0; k < n->n_params; k++) {
    const ir_param *p = &n->params[k];
    if (!p->name || !p->role)
      return fail(err, n, "parameter %d has no name", k);
    if (!shape_ok(&p->shape, false))
      return fail(err, n, "parameter '%s' has an invalid shape", p->name);
  }
  return KILN_OK;
}

static kiln_status verify_grad(const ir_graph *g, const ir_node *n,
                               kiln_error *err) {
  const ir_node *f = n->fwd;
  if (!in_graph(g, f, n->id))
    return fail(err, n, "forward node is not an earlier node of the graph");
  const ir_shape *s;
  ir_dtype t;
  if (n->wrt >= 0 && n->wrt < f->n_inputs) {
    s = &f->inputs[n->wrt]->shape;
    t = f->inputs[n->wrt]->dtype;
  } else if (n->wrt < 0 && -1 - n->wrt < f->n_params) {
    s = &f->params[-1 - n->wrt].shape;
    t = f->params[-1 - n->wrt].dtype;
  } else {
    return fail(err, n, "wrt %d names no input or parameter of '%s'", n->wrt,
                f->name);
  }
  if (!ir_shape_eq(s, &n->shape) || t != n->dtype)
    return fail(err, n,
                "shape or dtype differs from the value it "
                "differentiates");
  return KILN_OK;
}

static bool is_token(const ir_node *n) {
  return n->shape.rank == 0 && n->dtype == IR_F32;
}

static kiln_status verify_grad_norm(const ir_node *n, kiln_error *err) {
  for (int k = 0; k < n->n_inputs; k++) {
    const ir_node *in = n->inputs[k];
    if (in->op != IR_OP_GRAD || in->wrt >= 0)
      return fail(err, n, "input %d '%s' is not a parameter gradient", k,
                  in->name);
  }
  return is_token(n) ? KILN_OK : fail(err, n, "is not an f32 scalar");
}

static kiln_status verify_update(const ir_graph *g, const ir_node *n,
                                 kiln_error *err) {
  const ir_node *f = n->fwd;
  if (!in_graph(g, f, n->id))
    return fail(err, n, "parameter owner is not an earlier node of the graph");
  if (n->wrt >= 0 || -1 - n->wrt >= f->n_params)
    return fail(err, n, "wrt %d names no parameter of '%s'", n->wrt, f->name);
  const ir_node *gn = n->inputs[0];
  if (gn->op != IR_OP_GRAD || gn->fwd != f || gn->wrt != n->wrt)
    return fail(err, n, "input 0 '%s' is not the gradient of '%s'", gn->name,
                f->params[-1 - n->wrt].name);
  if (n->n_inputs == 2 && n->inputs[1]->op != IR_OP_GRAD_NORM)
    return fail(err, n, "input 1 '%s' is not a grad_norm node",
                n->inputs[1]->name);
  return is_token(n) ? KILN_OK : fail(err, n, "is not an f32 scalar token");
}

/* g->updates and g->grad_norm against the recorded parameter gradients. */
static kiln_status verify_updates(const ir_graph *g, kiln_error *err) {
  if (g->grad_norm && (!in_graph(g, g->grad_norm, g->n_nodes) ||
                       g->grad_norm->op != IR_OP_GRAD_NORM))
    return fail(err, g->grad_norm, "is not the graph's grad_norm node");
  if (g->n_updates && g->n_updates != g->n_param_grads)
    return fail(err, NULL, "%d update nodes for %d parameter gradients",
                g->n_updates, g->n_param_grads);
  for (int k = 0; k < g->n_updates; k++) {
    const ir_node *u = g->updates[k];
    if (!in_graph(g, u, g->n_nodes) || u->op != IR_OP_UPDATE ||
        u->inputs[0] != g->grad_nodes[k] ||
        (u->n_inputs == 2) != (g->grad_norm != NULL) ||
        (g->grad_norm && u->inputs[1] != g->grad_norm))
      return fail(err, u, "is not the update of parameter '%s'",
                  g->grad_params[k]->name);
  }
  return KILN_OK;
}

kiln_status ir_verify(const ir_graph *g, kiln_error *err) {
  kiln_status st;
  if (g->n_nodes && !g->nodes)
    return fail(err, NULL, "%d nodes but no node array", g->n_nodes);
  for (int i = 0; i < g->n_nodes; i++) {
    const ir_node *n = g->nodes[i];
    if (!n)
      return fail(err, NULL, "node %d is NULL", i);
    if ((unsigned)n->op >= IR_OP_COUNT)
      return fail(err, NULL, "node %d has invalid op %d", i, (int)n->op);
    if (n->id != i)
      return fail(err, n, "stored at index %d", i);
    if ((st = verify_node(g, n, err)))
      return st;
    if (n->op == IR_OP_GRAD && (st = verify_grad(g, n, err)))
      return st;
    if (n->op == IR_OP_GRAD_NORM && (st = verify_grad_norm(n, err)))
      return st;
    if (n->op == IR_OP_UPDATE && (st = verify_update(g, n, err)))
      return st;
  }
  if (g->by_name.len != g->n_nodes)
    return fail(err, NULL, "by_name holds %d names for %d nodes",
                g->by_name.len, g->n_nodes);
  for (int i = 0; i < g->n_outputs; i++)
    if (!in_graph(g, g->outputs[i], g->n_nodes))
      return fail(err, NULL, "output %d is not a node of the graph", i);
  if (g->loss && !in_graph(g, g->loss, g->n_nodes))
    return fail(err, NULL, "the loss is not a node of the graph");
  if (g->loss && !ir_op_table[g->loss->op].is_loss)
    return fail(err, g->loss, "marked as the loss, but %s is not a loss op",
                ir_op_table[g->loss->op].name);
  for (int i = 0; i < g->n_param_grads; i++) {
    const ir_node *gn = g->grad_nodes[i];
    if (!in_graph(g, gn, g->n_nodes) || gn->op != IR_OP_GRAD || gn->wrt >= 0 ||
        &gn->fwd->params[-1 - gn->wrt] != g->grad_params[i])
      return fail(err, gn, "is not the gradient of parameter '%s'",
                  g->grad_params[i]->name);
  }
  return verify_updates(g, err);
}
