/* ref_exec.h — the reference executor: runs an ir_graph, forward and (after
 * ir_autodiff) backward, node by node in graph order by calling the ref_*
 * kernels of ref.h. It is the oracle that compiled backends and the
 * training loop are checked against, so it is written for clarity.
 *
 * Storage follows what checkpoints hold: every parameter is float32 (the
 * canonical copy, written by running-statistics updates); each run converts
 * them to double once, and every node's output is a double buffer sized for
 * the executor's batch. Integer inputs (labels) are kept as int32.
 *
 * For finite differences a test may give a parameter a double-precision
 * override: the run then reads those values instead of the float32 copy,
 * so a perturbation need not be representable in float32.
 *
 * After ir_add_updates the graph's update nodes take the optimizer step in
 * place on the float32 parameters and their state (see ref_exec_update.c);
 * a run does so only when asked (rt_run.update).
 *
 *   ex = ref_exec_new(g, batch, &err);
 *   ref_exec_set_input_f32(ex, "image", pixels, &err);
 *   ref_exec_set_input_i32(ex, "label", labels, &err);
 *   rt_run run = {.training = true, .seed = seed, .step = step};
 *   ref_exec_run(ex, &run, NULL, &err);        // forward + backward
 *   ref_exec_loss(ex); ref_exec_param_grad(ex, p);
 *   ref_exec_free(ex); */
#ifndef KILN_REF_EXEC_H
#define KILN_REF_EXEC_H

#include "ir/ir.h"
#include "runtime/backend.h"

typedef struct ref_exec ref_exec;

/* Allocates buffers for every node at batch size `batch` and the float32
 * parameter store (zeroed; see ref_exec_param). NULL with err set when the
 * graph holds something the executor cannot run. */
ref_exec *ref_exec_new(const ir_graph *g, int64_t batch, kiln_error *err);
void ref_exec_free(ref_exec *ex);

/* Copies a whole input (numel at the executor's batch) into the executor.
 * The dtype must match the input's: f32 for float inputs, i32 for integer
 * ones. KILN_ERR_NAME / KILN_ERR_TYPE otherwise. */
kiln_status ref_exec_set_input_f32(ref_exec *ex, const char *name,
                                   const float *data, kiln_error *err);
kiln_status ref_exec_set_input_i32(ref_exec *ex, const char *name,
                                   const int32_t *data, kiln_error *err);

/* Runs the graph as rt_run says (runtime/backend.h). Training: dropout
 * draws its mask from (seed, ref_dropout_stream(step, layer id), element),
 * BatchNorm in train mode uses and updates batch statistics, the grad
 * nodes and grad_norm run, and with r->update the update nodes too (an
 * error when the graph has gradients but no update nodes). Otherwise only
 * the forward nodes run, dropout is the identity, BatchNorm uses the
 * running statistics, and with r->ema each trainable parameter that has
 * EMA weights is read from them. Bad data (a label out of range, an input
 * never set) comes back as an error. `out` (may be NULL) receives the
 * loss, the gradient norm and whether the update was skipped. */
kiln_status ref_exec_run(ref_exec *ex, const rt_run *r, rt_result *out,
                         kiln_error *err);

/* Re-runs the forward nodes from `from` on (graph order), with the last
 * run's training flag, seed, step and ema flag, reusing the outputs of earlier
 * nodes: after a change to from's parameters (finite differences) the
 * loss is recomputed without the unchanged prefix of the graph. */
kiln_status ref_exec_rerun_from(ref_exec *ex, const ir_node *from,
                                kiln_error *err);

/* A node's output after a run (numel elements at the executor's batch);
 * NULL for integer nodes. */
const double *ref_exec_output(const ref_exec *ex, const ir_node *n,
                              int64_t *numel);
/* The loss value of the last run. */
double ref_exec_loss(const ref_exec *ex);

/* The float32 storage of parameter p (numel in *n), for initialisation and
 * checkpoints; NULL when p is not a parameter of the executor's graph. */
float *ref_exec_param(ref_exec *ex, const ir_param *p, int64_t *n);
/* dloss/dp of the last run, or NULL when p has no gradient (frozen, a
 * buffer, or ir_autodiff was not run). */
const double *ref_exec_param_grad(const ref_exec *ex, const ir_param *p);
/* Makes runs read `values` (numel doubles, owned by the caller, read at
 * every run) instead of p's float32 storage; NULL restores the storage. */
void ref_exec_param_override(ref_exec *ex, const ir_param *p,
                             const double *values);

#endif
