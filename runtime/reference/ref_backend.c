/* ref_backend.c — the reference executor behind rt_backend_ops
 * (runtime/backend.h), so the training loop runs on it as on any backend.
 * Thin: inputs and outputs convert between the interface's float32 and the
 * executor's double buffers, parameters are the executor's float32 store
 * itself. Its numbers are the executor's: it is the oracle compiled
 * backends are checked against through this same interface. */
#include "runtime/reference/ref_exec.h"

#include <stdlib.h>
#include <string.h>

/* Listed by runtime/backend.c. */
extern const rt_backend_ops rt_backend_reference;

typedef struct ref_backend {
  rt_backend base; /* first: the interface's handle */
  ref_exec *ex;
} ref_backend;

static ref_exec *exec_of(rt_backend *b) {
  return ((ref_backend *)b)->ex;
}

static rt_backend *create(const ir_graph *g, int64_t batch, kiln_error *err) {
  ref_exec *ex = ref_exec_new(g, batch, err);
  if (!ex)
    return NULL;
  ref_backend *rb = calloc(1, sizeof *rb);
  KILN_ASSERT(rb && "out of memory");
  rb->base.ops = &rt_backend_reference;
  rb->ex = ex;
  return &rb->base;
}

static void destroy(rt_backend *b) {
  if (!b)
    return;
  ref_exec_free(exec_of(b));
  free(b);
}

static kiln_status set_input(rt_backend *b, const ir_node *input,
                             const void *data, kiln_error *err) {
  if (ir_dtype_is_float(input->dtype))
    return ref_exec_set_input_f32(exec_of(b), input->name, data, err);
  return ref_exec_set_input_i32(exec_of(b), input->name, data, err);
}

static kiln_status run(rt_backend *b, const rt_run *r, rt_result *out,
                       kiln_error *err) {
  return ref_exec_run(exec_of(b), r, out, err);
}

static kiln_status read_output(rt_backend *b, const ir_node *n, float *out,
                               kiln_error *err) {
  int64_t numel = 0;
  const double *v = ref_exec_output(exec_of(b), n, &numel);
  if (!v)
    return diag_error(err, KILN_ERR_TYPE, n->loc,
                      "'%s' is %s: only float outputs can be read", n->name,
                      ir_dtype_name(n->dtype));
  for (int64_t i = 0; i < numel; i++)
    out[i] = (float)v[i];
  return KILN_OK;
}

static void param_read(rt_backend *b, const ir_param *p, float *out) {
  int64_t n = 0;
  const float *w = ref_exec_param(exec_of(b), p, &n);
  KILN_ASSERT(w && "not a parameter of the backend's graph");
  memcpy(out, w, sizeof(float) * (size_t)n);
}

static void param_write(rt_backend *b, const ir_param *p, const float *in) {
  int64_t n = 0;
  float *w = ref_exec_param(exec_of(b), p, &n);
  KILN_ASSERT(w && "not a parameter of the backend's graph");
  memcpy(w, in, sizeof(float) * (size_t)n);
}

static bool grad_read(rt_backend *b, const ir_param *p, float *out) {
  const double *g = ref_exec_param_grad(exec_of(b), p);
  if (!g)
    return false;
  int64_t n = ir_shape_numel(&p->shape, 1);
  for (int64_t i = 0; i < n; i++)
    out[i] = (float)g[i];
  return true;
}

const rt_backend_ops rt_backend_reference = {
    .name = "reference",
    .create = create,
    .destroy = destroy,
    .set_input = set_input,
    .run = run,
    .read_output = read_output,
    .param_read = param_read,
    .param_write = param_write,
    .grad_read = grad_read,
};
