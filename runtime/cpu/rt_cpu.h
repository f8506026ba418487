/* rt_cpu.h — the CPU runtime: a thread pool, the executor of a compiled
 * kir_plan (tensors in host memory, kernels JIT-compiled by codegen/llvm),
 * and the "cpu" training backend (rt_backend_cpu, runtime/backend.h).
 * Prototypes are grouped by the file that defines them.
 *
 *   rt_cpu_pool *pool = rt_cpu_pool_new(0);          // all cores
 *   rt_cpu_plan x;
 *   rt_cpu_plan_init(&x, &plan, pool, NULL, &err);   // compiles, allocates
 *   kir_scalars s = {.seed = 1, .step = 0, .lr = 0.1f};
 *   rt_cpu_plan_run(&x, &s, 0, plan.n_launches);
 *   float *y = rt_cpu_plan_tensor(&x, t);
 *   rt_cpu_plan_free(&x);
 *   rt_cpu_pool_free(pool); */
#ifndef KILN_RUNTIME_CPU_H
#define KILN_RUNTIME_CPU_H

#include "codegen/llvm/cg_llvm.h"
#include "runtime/backend.h"

#include <stdio.h>

/* ---- cpu_pool.c: threads and a parallel for ---- */

typedef struct rt_cpu_pool rt_cpu_pool;

/* A pool of `threads` threads in all, the caller of rt_cpu_pool_for
 * included; threads <= 0 means the KILN_THREADS environment variable if
 * set, else the number of online cores. */
rt_cpu_pool *rt_cpu_pool_new(int threads);
void rt_cpu_pool_free(rt_cpu_pool *p);
int rt_cpu_pool_threads(const rt_cpu_pool *p);
/* fn(ctx, begin, end) over chunks covering [0, n) exactly once, on all
 * the pool's threads; returns when every chunk is done. Small ranges run
 * on the caller alone. Not reentrant: one for at a time per pool. */
typedef void (*rt_cpu_range_fn)(void *ctx, int64_t begin, int64_t end);
void rt_cpu_pool_for(rt_cpu_pool *p, int64_t n, rt_cpu_range_fn fn, void *ctx);

/* ---- cpu_plan.c: a compiled plan and its tensors ---- */

typedef struct rt_cpu_plan {
  const kir_plan *plan;
  rt_cpu_pool *pool;
  cg_llvm_module *code;
  /* Per tensor: the storage it reads (aliases resolved at run time
   * through root[]); owned[t] when this executor allocated it. */
  void **storage;
  int *root;
  bool *owned;
  void *act; /* the planned block of activations, gradients, scratch */
  /* Per launch: whether it runs on the calling thread alone (it moves
   * so few bytes that waking the pool would cost more; see cpu_plan.c). */
  bool *serial;
  /* Per launch, while profiling is on (rt_cpu_plan_profile): wall time
   * and number of runs; NULL when never switched on. */
  double *prof_s;
  int64_t *prof_calls;
  bool profiling;
} rt_cpu_plan;

/* Compiles every kernel of `plan` (one LLVM module) and allocates its
 * tensors zeroed and 64-byte aligned; aliases share their root's storage.
 * bind[t], when bind is given and bind[t] is not NULL, is storage the
 * caller owns and keeps alive (e.g. the parameters of another plan of the
 * same graph). Fails with LLVM's message, or when a launch binds a
 * written buffer to storage another of its arguments also uses. */
kiln_status rt_cpu_plan_init(rt_cpu_plan *x, const kir_plan *plan,
                             rt_cpu_pool *pool, void *const *bind,
                             kiln_error *err);
/* The same with activations, gradients and scratch in one block laid out
 * by the memory planner (passes/memplan.h): tensors dead after their last
 * reader are overwritten, so only what memplan_live_out keeps (loss,
 * logits, outputs, grad_norm) may be read after a run. The training
 * backend uses this; tests that inspect every tensor use the above. */
kiln_status rt_cpu_plan_init_planned(rt_cpu_plan *x, const kir_plan *plan,
                                     rt_cpu_pool *pool, void *const *bind,
                                     kiln_error *err);
void rt_cpu_plan_free(rt_cpu_plan *x);
/* Runs launches [from, to) in order, each split over the pool. */
void rt_cpu_plan_run(rt_cpu_plan *x, const kir_scalars *s, int from, int to);
/* Tensor t's storage (its root's for an alias). */
void *rt_cpu_plan_tensor(const rt_cpu_plan *x, int t);
/* Opt-in per-launch timing: while on, every launch's wall time (pool
 * split included) is accumulated; switching on resets the counts. The
 * report prints one row per launch that ran, slowest first: kernel,
 * node, calls, total ms, share of the profiled time, bytes of its global
 * buffers per call and the GB/s that makes. Nothing is printed unless
 * asked. */
void rt_cpu_plan_profile(rt_cpu_plan *x, bool on);
void rt_cpu_plan_profile_report(const rt_cpu_plan *x, FILE *out);

/* ---- cpu_backend.c: the "cpu" training backend ---- */

extern const rt_backend_ops rt_backend_cpu;

/* Bench hooks (not part of rt_backend_ops): profiling of both plans of a
 * "cpu" backend, and their reports (TRAIN plan then EVAL plan). */
void rt_cpu_backend_profile(rt_backend *b, bool on);
void rt_cpu_backend_profile_report(rt_backend *b, FILE *out);

#endif
