/* ir_impl.h — what the files of ir/ share among themselves but is not part
 * of the IR's interface (ir.h): the "layer 'NAME' (OP): ..." error helpers,
 * small helpers for shape rules, and the rule functions the op table
 * (ops.c) points to, grouped by the file that defines them. */
#ifndef KILN_IR_IMPL_H
#define KILN_IR_IMPL_H

#include "ir/ir.h"

#include <stdarg.h>

/* ---- ops.c: errors and rule helpers ---- */

/* Bounds that keep every figure computed from a graph inside int64_t (the
 * fuzzer feeds absurd sizes): integer attributes up to IR_MAX_ATTR_INT, and
 * every tensor and parameter at most IR_MAX_NUMEL elements per example
 * (ir_node_finish checks). Per-node MAC counts saturate at IR_MAX_COUNT, so
 * that sums over a graph cannot overflow either. */
#define IR_MAX_ATTR_INT INT64_C(2147483647)
#define IR_MAX_NUMEL (INT64_C(1) << 40)
#define IR_MAX_COUNT (INT64_C(1) << 53)
/* a * b for non-negative operands, saturating at IR_MAX_COUNT. */
int64_t ir_mul_sat(int64_t a, int64_t b);

/* Every error about a node starts "layer 'NAME' (OP)"; `sep` follows it:
 * ": " for most messages, " " for "layer 'c1' (conv2d) needs a 4-D ...".
 * The error is located at the node's statement. */
kiln_status ir_node_verror(kiln_error *err, kiln_status status,
                           const ir_node *n, const char *sep, const char *fmt,
                           va_list ap);
kiln_status ir_node_error(kiln_error *err, kiln_status status, const ir_node *n,
                          const char *fmt, ...) KILN_PRINTF(4, 5);
/* An attribute out of range, or an input of the wrong dtype:
 * KILN_ERR_TYPE with the usual prefix. */
kiln_status ir_type_error(ir_infer_ctx *c, const char *fmt, ...)
    KILN_PRINTF(2, 3);

/* The attribute `name` of n's op; asserts that the op has it. */
const ir_attr *ir_node_attr(const ir_node *n, const char *name);
/* "'x' [batch, 784]": input k's name and shape, for messages. */
const char *ir_rule_input(ir_infer_ctx *c, int k);
/* "'x' i32[batch]": the same with the dtype. */
const char *ir_rule_input_typed(ir_infer_ctx *c, int k);
/* Input k must have a floating-point dtype (integers are labels). */
kiln_status ir_rule_float(ir_infer_ctx *c, int k);
/* Input k must have rank `rank`; `what` completes "needs ...", e.g.
 * "a 4-D input [N, C, H, W]". */
kiln_status ir_rule_rank(ir_infer_ctx *c, int k, int rank, const char *what);
/* "layer 'x' (op) needs WHAT, but input 'y' is SHAPE" for rank mismatches
 * the simple form above cannot express. */
kiln_status ir_rule_needs(ir_infer_ctx *c, int k, const char *what,
                          bool with_dtype);
/* The attribute (INT or PAIR) must be >= min (0 or 1) and at most
 * IR_MAX_ATTR_INT. */
kiln_status ir_rule_at_least(ir_infer_ctx *c, const char *attr, int64_t min);
/* Output takes input k's shape and dtype. */
void ir_rule_same(ir_infer_ctx *c, int k);
/* NumPy broadcasting with the symbolic batch: batch with 1 or batch gives
 * batch, batch with anything else fails. False when the shapes do not
 * broadcast. */
bool ir_shape_broadcast(const ir_shape *a, const ir_shape *b, ir_shape *out);
/* "3" when both halves are equal, otherwise "(3, 5)". */
const char *ir_pair_str(arena *a, const int64_t p[2]);

/* ---- print.c ---- */

/* An attribute value in the model syntax: 3, 0.1, true, (3, 3),
 * [batch, -1], he_normal. */
void ir_attr_print(strbuf *b, const ir_attr *a);

/* ---- ops_nn.c: layers with parameters, pools, activations ---- */

kiln_status ir_infer_input(ir_infer_ctx *c);
kiln_status ir_infer_conv2d(ir_infer_ctx *c);
kiln_status ir_infer_batchnorm(ir_infer_ctx *c);
kiln_status ir_infer_layernorm(ir_infer_ctx *c);
kiln_status ir_infer_linear(ir_infer_ctx *c);
kiln_status ir_infer_pointwise(ir_infer_ctx *c);
kiln_status ir_infer_prelu(ir_infer_ctx *c);
kiln_status ir_infer_pool(ir_infer_ctx *c);
kiln_status ir_infer_global_avgpool(ir_infer_ctx *c);
int64_t ir_macs_conv2d(const ir_node *n);
int64_t ir_macs_linear(const ir_node *n);

/* ---- ops_tensor.c: tensor algebra, shape changes, losses ---- */

kiln_status ir_infer_matmul(ir_infer_ctx *c);
kiln_status ir_infer_maxout(ir_infer_ctx *c);
kiln_status ir_infer_softmax(ir_infer_ctx *c);
kiln_status ir_infer_binary(ir_infer_ctx *c);
kiln_status ir_infer_concat(ir_infer_ctx *c);
kiln_status ir_infer_flatten(ir_infer_ctx *c);
kiln_status ir_infer_reshape(ir_infer_ctx *c);
kiln_status ir_infer_dropout(ir_infer_ctx *c);
kiln_status ir_infer_cross_entropy(ir_infer_ctx *c);
kiln_status ir_infer_mse(ir_infer_ctx *c);
int64_t ir_macs_matmul(const ir_node *n);

/* ---- autodiff.c ---- */

kiln_status ir_infer_grad(ir_infer_ctx *c);

/* ---- update.c ---- */

kiln_status ir_infer_grad_norm(ir_infer_ctx *c);
kiln_status ir_infer_update(ir_infer_ctx *c);

#endif
