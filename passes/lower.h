/* lower.h — lowering: a training graph (after ir_autodiff and
 * ir_add_updates) becomes a kir_plan, one or more kernels per node.
 *
 * lower.c is the driver: it makes a tensor for every input, parameter and
 * node output, then walks the graph in order and calls the node's rule from
 * the table below (forward nodes by op; grad nodes by their forward node's
 * op, the rule reading n->fwd and n->wrt; grad_norm and update by their
 * own op). A rule builds kernels with the kir_* builder (ir/kernel.h) and
 * adds launches binding each kernel's GLOBAL buffers to plan tensors.
 *
 * Prototypes are grouped by the file that defines them. Every kernel a
 * rule builds must pass kir_verify (the driver checks). */
#ifndef KILN_PASSES_LOWER_H
#define KILN_PASSES_LOWER_H

#include "ir/kernel.h"

typedef struct lower_ctx {
  kir_plan *plan;
  arena *a;
  const ir_graph *g;
  int64_t batch;
  bool training; /* plan mode: BN batch statistics, dropout on */
  kiln_error *err;
} lower_ctx;

/* ---- lower.c: the driver and what rules share ---- */

/* Builds the plan of `g` at `batch` in `mode` into *out (arena a). */
kiln_status lower_plan(const ir_graph *g, int64_t batch, kir_plan_mode mode,
                       arena *a, kir_plan *out, kiln_error *err);

/* The tensor holding node n's output (inputs, values, gradients). */
int lower_node_tensor(lower_ctx *c, const ir_node *n);
/* The tensor holding parameter p. */
int lower_param_tensor(lower_ctx *c, const ir_param *p);
/* The same on a finished plan (for backends); -1 when absent. */
int kir_plan_param_tensor(const kir_plan *p, const ir_param *param);
/* A scratch tensor called `name`, created on first use (same name: same
 * tensor), e.g. "bn1.save_mean" written by the forward and read by the
 * backward. */
int lower_scratch(lower_ctx *c, const char *name, kir_type t, int64_t count);
/* Appends a launch of k (verified here) with args[i] the tensor of k's
 * i-th GLOBAL buffer. */
kiln_status lower_launch(lower_ctx *c, kir_kernel *k, const int *args,
                         const ir_node *n);
/* A kernel name from a prefix and a node name: "conv2d_fwd_layer1_0_conv1"
 * (non-identifier characters become '_'). */
const char *lower_kernel_name(lower_ctx *c, const char *prefix,
                              const ir_node *n);
/* Dimensions of n's shape at the plan's batch. */
void lower_dims(lower_ctx *c, const ir_node *n, int64_t dims[IR_MAX_DIMS]);
int64_t lower_numel(lower_ctx *c, const ir_node *n);

typedef kiln_status (*lower_rule)(lower_ctx *c, const ir_node *n);

/* ---- lower_gemm.c: tiled matrix products (linear, matmul, conv) ---- */
kiln_status lower_linear_fwd(lower_ctx *c, const ir_node *n);
kiln_status lower_linear_bwd(lower_ctx *c, const ir_node *gn);
kiln_status lower_matmul_fwd(lower_ctx *c, const ir_node *n);
kiln_status lower_matmul_bwd(lower_ctx *c, const ir_node *gn);

/* ---- lower_conv.c ---- */
kiln_status lower_conv2d_fwd(lower_ctx *c, const ir_node *n);
kiln_status lower_conv2d_bwd(lower_ctx *c, const ir_node *gn);

/* ---- lower_pool.c: maxpool, avgpool, global_avgpool ---- */
kiln_status lower_pool_fwd(lower_ctx *c, const ir_node *n);
kiln_status lower_pool_bwd(lower_ctx *c, const ir_node *gn);

/* ---- lower_norm.c: batchnorm (train: batch statistics and running
 * statistics update; eval: running statistics), layernorm ---- */
kiln_status lower_norm_fwd(lower_ctx *c, const ir_node *n);
kiln_status lower_norm_bwd(lower_ctx *c, const ir_node *gn);

/* ---- lower_pointwise.c: activations, add, mul (with broadcasting),
 * dropout (Philox), maxout, softmax, concat, flatten/reshape (aliases) ---- */
kiln_status lower_pointwise_fwd(lower_ctx *c, const ir_node *n);
kiln_status lower_pointwise_bwd(lower_ctx *c, const ir_node *gn);

/* ---- lower_loss.c: cross_entropy (label smoothing), mse ---- */
kiln_status lower_loss_fwd(lower_ctx *c, const ir_node *n);
kiln_status lower_loss_bwd(lower_ctx *c, const ir_node *gn);

/* ---- lower_update.c: grad_norm and the multi-tensor optimizer update
 * (every optimizer of ir_train_cfg, clipping, EMA) ---- */
kiln_status lower_grad_norm(lower_ctx *c, const ir_node *n);
kiln_status lower_update(lower_ctx *c, const ir_node *n);

#endif
