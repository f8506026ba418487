/* update.c — the optimizer step as graph ops, appended after autodiff's
 * backward nodes, so that later passes see (and may fuse) the update as
 * they see forward and backward work:
 *
 *   IR_OP_GRAD_NORM  "grad_norm": sqrt(sum over every parameter gradient
 *                    of g^2), a scalar; only when clip_grad_norm > 0
 *   IR_OP_UPDATE     "update/<param>": clip (with grad_norm), optimizer
 *                    step and EMA of parameter -1-wrt of fwd, in place
 *
 * Requires ir_autodiff (g->grad_params, g->grad_nodes); guarantees
 * g->updates[k] updates g->grad_params[k] with inputs [grad_nodes[k]] or
 * [grad_nodes[k], grad_norm]. An update node's output is a rank-0 token;
 * its effect is on the parameter and on the state it owns as its own
 * parameters (non-trainable, zeros): "<param>.<role>" for each role of
 * ir_update_roles, then "<param>.ema" when g->train.ema > 0 (a backend
 * initialises that one as a copy of the parameter). These are the names
 * checkpoints use for optimizer state.
 *
 * Nothing numeric is an attribute: the optimizer, its hyperparameters,
 * clipping and the EMA decay are g->train, read by whoever executes or
 * lowers the nodes; the learning rate and step are per run (rt_run), so a
 * schedule needs no graph change. */
#include "ir/ir_impl.h"

#include <string.h>

int ir_update_roles(const ir_train_cfg *c,
                    const char *roles[IR_UPDATE_MAX_BUFS]) {
  int n = 0;
  switch (c->optim.kind) {
  case IR_OPTIM_SGD:
    if (c->optim.momentum > 0)
      roles[n++] = "momentum";
    break;
  case IR_OPTIM_ADAGRAD:
    roles[n++] = "sum";
    break;
  case IR_OPTIM_RMSPROP:
    roles[n++] = "square_avg";
    if (c->optim.momentum > 0)
      roles[n++] = "momentum";
    break;
  case IR_OPTIM_ADAM:
  case IR_OPTIM_ADAMW:
    roles[n++] = "exp_avg";
    roles[n++] = "exp_avg_sq";
    break;
  }
  KILN_ASSERT(n <= IR_UPDATE_MAX_BUFS);
  return n;
}

ir_param *ir_update_param(const ir_node *u) {
  KILN_ASSERT(u->op == IR_OP_UPDATE && u->fwd && u->wrt < 0 &&
              -1 - u->wrt < u->fwd->n_params);
  return &u->fwd->params[-1 - u->wrt];
}

kiln_status ir_infer_grad_norm(ir_infer_ctx *c) {
  for (int k = 0; k < c->node->n_inputs; k++)
    if (!ir_dtype_is_float(c->node->inputs[k]->dtype))
      return ir_rule_float(c, k);
  c->node->shape = (ir_shape){.rank = 0};
  c->node->dtype = IR_F32;
  return KILN_OK;
}

/* The state is declared by ir_add_updates, not here: which buffers exist
 * depends on the graph's train section, which a shape rule cannot see. */
kiln_status ir_infer_update(ir_infer_ctx *c) {
  ir_node *n = c->node;
  KILN_ASSERT(n->fwd && n->wrt < 0 && -1 - n->wrt < n->fwd->n_params &&
              "an update node needs its parameter");
  n->shape = (ir_shape){.rank = 0};
  n->dtype = IR_F32;
  return KILN_OK;
}

/* A state parameter of update node u for parameter p: "<param>.<role>",
 * p's shape and dtype, zeros. */
static void add_state(ir_graph *g, ir_node *u, const ir_param *p,
                      const char *role, kiln_error *err) {
  ir_infer_ctx c = {.a = g->a, .err = err, .node = u};
  ir_param *s = ir_add_param(&c, role, &p->shape, false, IR_INIT_ZEROS);
  s->name = arena_printf(g->a, "%s.%s", p->name, role);
  s->dtype = p->dtype;
}

static ir_node *add_grad_norm(ir_graph *g, kiln_error *err) {
  /* "grad_norm" is also a valid layer name; a name with '/' and no '.'
   * cannot clash with a layer or with an update node. */
  const char *name =
      ir_graph_find(g, "grad_norm") ? "update/grad_norm" : "grad_norm";
  ir_node *n = ir_node_new(g, IR_OP_GRAD_NORM, name, g->loss->loc,
                           g->grad_nodes, g->n_param_grads);
  n->stage = g->loss->stage;
  return ir_node_finish(g, n, err) == KILN_OK ? n : NULL;
}

static ir_node *add_update(ir_graph *g, int k, kiln_error *err) {
  ir_node *gn = g->grad_nodes[k];
  const ir_param *p = g->grad_params[k];
  ir_node *in[2] = {gn, g->grad_norm};
  const char *name = arena_printf(g->a, "update/%s", p->name);
  ir_node *u = ir_node_new(g, IR_OP_UPDATE, name, gn->fwd->loc, in,
                           g->grad_norm ? 2 : 1);
  u->fwd = gn->fwd;
  u->wrt = gn->wrt;
  u->stage = gn->stage;
  if (ir_node_finish(g, u, err))
    return NULL;
  const char *roles[IR_UPDATE_MAX_BUFS];
  int n_roles = ir_update_roles(&g->train, roles);
  for (int r = 0; r < n_roles; r++)
    add_state(g, u, p, roles[r], err);
  if (g->train.ema > 0)
    add_state(g, u, p, "ema", err);
  return u;
}

/* Whether ir_autodiff has run: it leaves grad nodes whenever some
 * trainable, unfrozen parameter exists for the loss to depend on. */
static bool differentiated(const ir_graph *g) {
  if (g->n_param_grads > 0)
    return true;
  bool trains = false;
  for (int i = 0; i < g->n_nodes; i++) {
    const ir_node *n = g->nodes[i];
    if (n->op == IR_OP_GRAD)
      return true;
    for (int k = 0; k < n->n_params; k++)
      trains |= n->params[k].trainable && !ir_train_frozen(g, n->name);
  }
  return !trains;
}

kiln_status ir_add_updates(ir_graph *g, kiln_error *err) {
  if (!g->loss || !differentiated(g))
    return diag_error(err, KILN_ERR_INVALID, (kiln_loc){0},
                      "model '%s': optimizer updates need a loss and run "
                      "after ir_autodiff",
                      g->name ? g->name : "?");
  KILN_ASSERT(g->n_updates == 0 && !g->grad_norm && "ir_add_updates runs once");
  if (g->n_param_grads == 0)
    return ir_verify(g, err); /* everything is frozen: nothing to update */
  if (g->train.clip_grad_norm > 0 && !(g->grad_norm = add_grad_norm(g, err)))
    return err->status;
  g->updates = ARENA_ARRAY(g->a, ir_node *, g->n_param_grads);
  for (int k = 0; k < g->n_param_grads; k++) {
    if (!(g->updates[k] = add_update(g, k, err)))
      return err->status;
    g->n_updates = k + 1;
  }
  return ir_verify(g, err);
}
