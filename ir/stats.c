/* stats.c — per-example figures of a node (batch = 1): multiply-accumulates,
 * floating-point operations and parameter counts, as summed by `kiln check`,
 * the summary table and kiln_model_macs/flops/param_count.
 *
 * MACs are those of conv2d, linear and matmul (the op table's macs rule).
 * FLOPs follow the convention of kiln.h: 2 per MAC for those ops, and one
 * per output element for every other op (a rough count of the pointwise
 * work), except that a loss counts the elements of its first input
 * (logits or prediction), since it reduces them to one number. Inputs cost
 * nothing. Parameter counts leave out what internal nodes own. */
#include "ir/ir_impl.h"

int64_t ir_node_macs(const ir_node *n) {
  int64_t (*macs)(const ir_node *) = ir_op_table[n->op].macs;
  return macs ? macs(n) : 0;
}

int64_t ir_node_flops(const ir_node *n) {
  const ir_op_info *info = &ir_op_table[n->op];
  if (n->op == IR_OP_INPUT)
    return 0;
  if (info->macs)
    return ir_mul_sat(2, info->macs(n));
  if (info->is_loss)
    return ir_shape_numel(&n->inputs[0]->shape, 1);
  return ir_shape_numel(&n->shape, 1);
}

int64_t ir_node_param_count(const ir_node *n, bool trainable) {
  /* The parameters of a pass's nodes (optimizer state, EMA weights) are
   * training state, not the model's: a summary after training must show
   * the same counts as `kiln check`. */
  if (ir_op_table[n->op].internal)
    return 0;
  int64_t total = 0;
  for (int i = 0; i < n->n_params; i++)
    if (n->params[i].trainable == trainable)
      total += ir_shape_numel(&n->params[i].shape, 1);
  return total;
}
