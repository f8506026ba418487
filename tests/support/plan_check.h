/* plan_check.h — the harness that tests lowering: a model's plan, run by a
 * plan executor (the kernel IR interpreter by default, the compiled CPU or
 * CUDA runtime when plugged in), against the reference executor on the same
 * parameters and inputs, node by node.
 *
 *   pc_opts o = {0};                                  // defaults below
 *   kiln_error err;
 *   kiln_status st = pc_check_string("t", "...model text...", &o, NULL,
 *                                    &err);
 *   if (st) fprintf(stderr, "%s\n", err.message);     // first mismatch
 *
 * What it does (pc_check_graph): ir_autodiff and ir_add_updates when the
 * graph has a loss and o->mode is TRAIN; lower_plan at an odd batch;
 * parameters from train_init_param (then jittered, so zero biases and unit
 * BatchNorm scales cannot hide a missing term), BatchNorm running
 * statistics and optimizer state uniform random (variances and state
 * positive), float inputs uniform in [-1, 1), labels uniform over the
 * classes of the cross_entropy reading them; the same values go to both
 * executors. Then:
 *  - TRAIN: the reference runs forward + backward (no update), the plan
 *    launches [0, bwd_end); EVAL: forward only, launches [0, fwd_end);
 *  - every graph node whose output both sides have is compared (inputs,
 *    forward values, loss, gradients, grad_norm), then every parameter of
 *    non-update nodes (BatchNorm running statistics updated in training);
 *  - with o->update (TRAIN only, after the above): the reference runs a
 *    second, updating step from the same start; the plan its update
 *    launches [bwd_end, n_launches); every parameter (weights, optimizer
 *    state, EMA) is compared as its change from the start value, so a small
 *    error in the update is not hidden by the parameter's magnitude.
 * A value matches when |plan - ref| <= rtol * max|ref over the tensor| +
 * atol; the first mismatch is returned as KILN_ERR_INVALID naming the
 * node or parameter, the element index and both values. Tensors with no
 * reference counterpart (lowering's scratch) are not compared. */
#ifndef KILN_TESTS_PLAN_CHECK_H
#define KILN_TESTS_PLAN_CHECK_H

#include "ir/kernel.h"

/* A plan executor: its own copy of every tensor of the plan. */
typedef struct pc_executor {
  const char *name;
  void *(*create)(const kir_plan *p, kiln_error *err);
  void (*destroy)(void *x);
  /* The whole tensor t (p->tensors[t].count elements of its type). */
  void (*write)(void *x, int t, const void *data);
  void (*read)(void *x, int t, void *data);
  /* Launches [from, to). */
  kiln_status (*run)(void *x, int from, int to, const kir_scalars *s,
                     kiln_error *err);
} pc_executor;

/* The kernel IR interpreter (tests/support/kir_interp.h). */
extern const pc_executor pc_interp_executor;
/* The compiled CPU plan, every tensor in its own storage
 * (plan_check_cpu.c). */
extern const pc_executor pc_cpu_executor;

typedef struct pc_opts {
  kir_plan_mode mode;      /* KIR_PLAN_TRAIN (0) or KIR_PLAN_EVAL */
  bool update;             /* TRAIN: also check the update launches */
  int64_t batch;           /* 0: 3 */
  double rtol_fwd;         /* 0: 1e-4 (f32 plan vs double reference) */
  double rtol_grad;        /* 0: 1e-3, gradients and updates */
  double atol;             /* 0: 1e-6 */
  uint64_t seed;           /* parameters, inputs, dropout; 0: 1 */
  int64_t step;            /* dropout stream, bias correction; used as given */
  float lr;                /* 0: 0.05 */
  const pc_executor *exec; /* NULL: pc_interp_executor */
  bool verbose;            /* print each compared tensor's error */
} pc_opts;

typedef struct pc_report {
  int compared; /* tensors compared */
  int skipped;  /* nodes with no tensor on one side */
  /* the largest |plan - ref| / tolerance met (at most 1 when it passed):
   * how close to failing each kind of tensor came */
  double used_fwd;
  double used_grad;
  double used_update;
  int launches; /* launches in the plan */
} pc_report;

/* Loads model text (frontend/load.h) or a file and checks it. `rep` may be
 * NULL. Errors loading, lowering or running come back as they are. */
kiln_status pc_check_string(const char *name, const char *text,
                            const pc_opts *o, pc_report *rep, kiln_error *err);
kiln_status pc_check_file(const char *path, const pc_opts *o, pc_report *rep,
                          kiln_error *err);
/* The same on a graph the caller built (ir_autodiff and ir_add_updates are
 * run when needed and not yet done). */
kiln_status pc_check_graph(ir_graph *g, const pc_opts *o, pc_report *rep,
                           kiln_error *err);
/* The update check: pc_check_string in TRAIN mode with o->update set (the
 * forward and backward are checked first, as above). */
kiln_status pc_check_update_string(const char *name, const char *text,
                                   const pc_opts *o, pc_report *rep,
                                   kiln_error *err);

#endif
