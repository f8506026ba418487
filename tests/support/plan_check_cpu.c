/* plan_check_cpu.c — the compiled CPU plan (LLVM JIT, runtime/cpu) as a
 * plan executor for the harness, so lowering's kernels are also checked as
 * the CPU backend runs them: vectorised loops, the grid split over a pool
 * of 3 threads (more than this machine's cores, so chunks interleave).
 * Every tensor keeps its own storage (no memory planning): the harness
 * reads every node back after the run. */
#include "runtime/cpu/rt_cpu.h"
#include "tests/support/plan_check.h"

#include <stdlib.h>
#include <string.h>

typedef struct pc_cpu {
  rt_cpu_pool *pool;
  rt_cpu_plan x;
} pc_cpu;

static void *pc_cpu_create(const kir_plan *p, kiln_error *err) {
  pc_cpu *c = calloc(1, sizeof *c);
  KILN_ASSERT(c);
  c->pool = rt_cpu_pool_new(3);
  if (rt_cpu_plan_init(&c->x, p, c->pool, NULL, err) != KILN_OK) {
    rt_cpu_pool_free(c->pool);
    free(c);
    return NULL;
  }
  return c;
}

static void pc_cpu_destroy(void *arg) {
  pc_cpu *c = arg;
  rt_cpu_plan_free(&c->x);
  rt_cpu_pool_free(c->pool);
  free(c);
}

static size_t pc_cpu_bytes(const pc_cpu *c, int t) {
  const kir_tensor *kt = &c->x.plan->tensors[t];
  return (size_t)kt->count * (size_t)kir_type_size(kt->type);
}

static void pc_cpu_write(void *arg, int t, const void *data) {
  pc_cpu *c = arg;
  memcpy(rt_cpu_plan_tensor(&c->x, t), data, pc_cpu_bytes(c, t));
}

static void pc_cpu_read(void *arg, int t, void *data) {
  pc_cpu *c = arg;
  memcpy(data, rt_cpu_plan_tensor(&c->x, t), pc_cpu_bytes(c, t));
}

static kiln_status pc_cpu_run(void *arg, int from, int to, const kir_scalars *s,
                              kiln_error *err) {
  pc_cpu *c = arg;
  rt_cpu_plan_run(&c->x, s, from, to);
  return KILN_OK;
}

const pc_executor pc_cpu_executor = {
    "cpu", pc_cpu_create, pc_cpu_destroy, pc_cpu_write, pc_cpu_read, pc_cpu_run,
};
