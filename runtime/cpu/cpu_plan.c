/* cpu_plan.c — the executor of a compiled plan on the CPU: one LLVM module
 * for all the plan's kernels, host tensors, and launches run in order,
 * each one's grid split over the thread pool.
 *
 * Activations, gradients and scratch share one block laid out by the
 * memory planner (passes/memplan.c, liveness over the launch order; in
 * place off, since the kernels' arguments are noalias); parameters and
 * inputs get their own allocations, as they outlive a run.
 *
 * Buffers are looked up per launch (storage of the argument's root
 * tensor), not baked into the code, so a backend may point a tensor at
 * other storage between runs (EMA weights for evaluation) for free. */
#include "passes/memplan.h"
#include "runtime/cpu/rt_cpu.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Tensors are 64-byte aligned (a cache line, an AVX-512 vector) and
 * padded to it, so vector loops never straddle an allocation. */
static void *alloc_tensor(const kir_tensor *t) {
  size_t bytes = (size_t)t->count * (size_t)kir_type_size(t->type);
  bytes = (bytes + 63) & ~(size_t)63;
  if (bytes == 0)
    bytes = 64;
  void *p = aligned_alloc(64, bytes);
  KILN_ASSERT(p);
  memset(p, 0, bytes);
  return p;
}

/* Bytes of a launch's global buffers: each read or written once, the
 * lower bound of its memory traffic (kir_plan_print's count). */
static int64_t launch_bytes(const kir_launch *ln) {
  int64_t bytes = 0;
  for (int i = 0; i < ln->k->n_bufs; i++) {
    const kir_buf *b = ln->k->bufs[i];
    if (b->space == KIR_GLOBAL)
      bytes += b->count * kir_type_size(b->type);
  }
  return bytes;
}

/* Launches that move less than this run on the calling thread: they take
 * a few microseconds, and a pool launch costs a wake-up of every worker,
 * which on a loaded machine (more runnable threads than cores) can wait
 * for a scheduler time slice (measured: a 100 KB split-K sum took 1-3 ms
 * through the pool on two shared cores). Parameter updates, bias sums,
 * small transposes and the layers of a classifier head fall below it. */
enum { SERIAL_BYTES = 256 << 10 };

static int root_of(const kir_plan *p, int t) {
  for (int hops = 0; p->tensors[t].alias >= 0; hops++) {
    KILN_ASSERT(hops < p->n_tensors && "alias cycle");
    t = p->tensors[t].alias;
  }
  return t;
}

/* The noalias promise the renderer relies on: a written buffer's storage
 * is no other argument's. */
static kiln_status check_aliasing(const rt_cpu_plan *x, kiln_error *err) {
  const kir_plan *p = x->plan;
  for (int l = 0; l < p->n_launches; l++) {
    const kir_launch *ln = &p->launches[l];
    for (int i = 0; i < ln->k->n_bufs; i++) {
      const kir_buf *bi = ln->k->bufs[i];
      if (bi->space != KIR_GLOBAL || bi->read_only)
        continue;
      for (int j = 0; j < ln->k->n_bufs; j++) {
        const kir_buf *bj = ln->k->bufs[j];
        if (j == i || bj->space != KIR_GLOBAL)
          continue;
        if (x->storage[x->root[ln->args[i]]] ==
            x->storage[x->root[ln->args[j]]])
          return diag_error(err, KILN_ERR_INTERNAL, (kiln_loc){0},
                            "kernel '%s': written buffer '%s' shares storage "
                            "with argument '%s'",
                            ln->k->name, bi->name, bj->name);
      }
    }
  }
  return KILN_OK;
}

static kiln_status plan_init(rt_cpu_plan *x, const kir_plan *plan,
                             rt_cpu_pool *pool, void *const *bind, bool planned,
                             kiln_error *err) {
  memset(x, 0, sizeof *x);
  x->plan = plan;
  x->pool = pool;
  size_t n = (size_t)plan->n_tensors + 1;
  x->storage = calloc(n, sizeof *x->storage);
  x->root = calloc(n, sizeof *x->root);
  x->owned = calloc(n, sizeof *x->owned);
  x->serial = calloc((size_t)plan->n_launches + 1, sizeof *x->serial);
  KILN_ASSERT(x->storage && x->root && x->owned && x->serial);
  for (int l = 0; l < plan->n_launches; l++)
    x->serial[l] = launch_bytes(&plan->launches[l]) < SERIAL_BYTES;
  arena a;
  arena_init(&a);
  memplan m;
  kiln_status st = memplan_build(plan, &(memplan_opts){0}, &a, &m, err);
  if (!st && !planned) /* every tensor its own allocation */
    for (int t = 0; t < plan->n_tensors; t++)
      m.arena[t] = MEMPLAN_PARAM;
  if (st != KILN_OK) {
    arena_free(&a);
    rt_cpu_plan_free(x);
    return st;
  }
  size_t act_bytes = (size_t)m.arena_bytes[MEMPLAN_ACT];
  x->act = aligned_alloc(MEMPLAN_ALIGN, act_bytes ? act_bytes : MEMPLAN_ALIGN);
  KILN_ASSERT(x->act);
  memset(x->act, 0, act_bytes);
  for (int t = 0; t < plan->n_tensors; t++) {
    x->root[t] = root_of(plan, t);
    if (plan->tensors[t].alias >= 0)
      continue;
    if (bind && bind[t]) {
      x->storage[t] = bind[t];
    } else if (m.arena[t] == MEMPLAN_ACT) {
      x->storage[t] = (char *)x->act + m.offset[t];
    } else {
      x->storage[t] = alloc_tensor(&plan->tensors[t]);
      x->owned[t] = true;
    }
  }
  arena_free(&a);
  st = check_aliasing(x, err);
  if (st != KILN_OK) {
    rt_cpu_plan_free(x);
    return st;
  }
  kir_kernel **ks = calloc((size_t)plan->n_launches + 1, sizeof *ks);
  KILN_ASSERT(ks);
  for (int l = 0; l < plan->n_launches; l++)
    ks[l] = plan->launches[l].k;
  st = cg_llvm_compile(ks, plan->n_launches, NULL, &x->code, err);
  free(ks);
  if (st != KILN_OK)
    rt_cpu_plan_free(x);
  return st;
}

kiln_status rt_cpu_plan_init(rt_cpu_plan *x, const kir_plan *plan,
                             rt_cpu_pool *pool, void *const *bind,
                             kiln_error *err) {
  return plan_init(x, plan, pool, bind, false, err);
}

kiln_status rt_cpu_plan_init_planned(rt_cpu_plan *x, const kir_plan *plan,
                                     rt_cpu_pool *pool, void *const *bind,
                                     kiln_error *err) {
  return plan_init(x, plan, pool, bind, true, err);
}

void rt_cpu_plan_free(rt_cpu_plan *x) {
  if (x->storage)
    for (int t = 0; t < x->plan->n_tensors; t++)
      if (x->owned[t])
        free(x->storage[t]);
  free(x->storage);
  free(x->root);
  free(x->owned);
  free(x->serial);
  free(x->act);
  free(x->prof_s);
  free(x->prof_calls);
  cg_llvm_free(x->code);
  memset(x, 0, sizeof *x);
}

void *rt_cpu_plan_tensor(const rt_cpu_plan *x, int t) {
  KILN_ASSERT(t >= 0 && t < x->plan->n_tensors);
  return x->storage[x->root[t]];
}

typedef struct launch_ctx {
  cg_llvm_kernel_fn fn;
  void **bufs;
  const kir_scalars *s;
} launch_ctx;

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void run_range(void *arg, int64_t begin, int64_t end) {
  launch_ctx *c = arg;
  c->fn(c->bufs, c->s, begin, end);
}

void rt_cpu_plan_run(rt_cpu_plan *x, const kir_scalars *s, int from, int to) {
  const kir_plan *p = x->plan;
  KILN_ASSERT(from >= 0 && from <= to && to <= p->n_launches);
  for (int l = from; l < to; l++) {
    const kir_launch *ln = &p->launches[l];
    void *bufs[64];
    void **b =
        ln->k->n_bufs <= 64 ? bufs : malloc(sizeof *b * (size_t)ln->k->n_bufs);
    KILN_ASSERT(b);
    for (int i = 0; i < ln->k->n_bufs && ln->k->bufs[i]->space == KIR_GLOBAL;
         i++)
      b[i] = rt_cpu_plan_tensor(x, ln->args[i]);
    launch_ctx c = {cg_llvm_fn(x->code, l), b, s};
    double t0 = x->profiling ? now_s() : 0;
    int64_t grid = cg_llvm_grid(x->code, l, s);
    if (x->serial[l])
      c.fn(b, s, 0, grid);
    else
      rt_cpu_pool_for(x->pool, grid, run_range, &c);
    if (x->profiling) {
      x->prof_s[l] += now_s() - t0;
      x->prof_calls[l]++;
    }
    if (b != bufs)
      free(b);
  }
}

/* ---- the per-launch profiler ---- */

void rt_cpu_plan_profile(rt_cpu_plan *x, bool on) {
  size_t n = (size_t)x->plan->n_launches + 1;
  if (on && !x->prof_s) {
    x->prof_s = calloc(n, sizeof *x->prof_s);
    x->prof_calls = calloc(n, sizeof *x->prof_calls);
    KILN_ASSERT(x->prof_s && x->prof_calls);
  } else if (on) {
    memset(x->prof_s, 0, n * sizeof *x->prof_s);
    memset(x->prof_calls, 0, n * sizeof *x->prof_calls);
  }
  x->profiling = on;
}

void rt_cpu_plan_profile_report(const rt_cpu_plan *x, FILE *out) {
  const kir_plan *p = x->plan;
  if (!x->prof_s) {
    fprintf(out, "(profiling was not switched on)\n");
    return;
  }
  int *order = calloc((size_t)p->n_launches + 1, sizeof *order);
  KILN_ASSERT(order);
  double total = 0;
  int n = 0;
  for (int l = 0; l < p->n_launches; l++) {
    total += x->prof_s[l];
    if (x->prof_calls[l])
      order[n++] = l;
  }
  /* Slowest first; an insertion sort, as qsort has no context argument
   * and plans have a few hundred launches. */
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && x->prof_s[order[j]] > x->prof_s[order[j - 1]];
         j--) {
      int t = order[j];
      order[j] = order[j - 1];
      order[j - 1] = t;
    }
  /* columns as wide as the longest kernel and node names */
  int wk = 6, wn = 4;
  for (int i = 0; i < n; i++) {
    const kir_launch *ln = &p->launches[order[i]];
    int a = (int)strlen(ln->k->name);
    int b = ln->node && ln->node->name ? (int)strlen(ln->node->name) : 1;
    wk = a > wk ? a : wk;
    wn = b > wn ? b : wn;
  }
  fprintf(out, "%-*s %-*s %6s %10s %6s %12s %8s\n", wk, "kernel", wn, "node",
          "calls", "total_ms", "%", "bytes/call", "GB/s");
  for (int i = 0; i < n; i++) {
    const kir_launch *ln = &p->launches[order[i]];
    double s = x->prof_s[order[i]];
    int64_t calls = x->prof_calls[order[i]], bytes = launch_bytes(ln);
    fprintf(out, "%-*s %-*s %6lld %10.3f %6.2f %12lld %8.2f\n", wk, ln->k->name,
            wn, ln->node && ln->node->name ? ln->node->name : "-",
            (long long)calls, 1e3 * s, total > 0 ? 100.0 * s / total : 0.0,
            (long long)bytes,
            s > 0 ? 1e-9 * (double)bytes * (double)calls / s : 0.0);
  }
  fprintf(out, "%-*s %-*s %6s %10.3f %6.2f\n", wk, "total", wn, "", "",
          1e3 * total, 100.0);
  free(order);
}
