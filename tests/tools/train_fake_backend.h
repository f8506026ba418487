/* train_fake_backend.h — a stand-in rt_backend for the checkpoint tests
 * (tests/test_train_ckpt.c, tests/tools/train_tool.c): one float32 array
 * per ir_param of a graph and nothing else, so train_ckpt_* is checked
 * against rt_backend_ops alone, whatever the real backends do. It cannot
 * run anything: run, set_input and read_output fail with a message.
 *
 * Parameters are found by address (a param belongs to one node's params
 * array), as a real backend maps ir_param to its storage. */
#ifndef KILN_TESTS_TRAIN_FAKE_BACKEND_H
#define KILN_TESTS_TRAIN_FAKE_BACKEND_H

#include "runtime/backend.h"

#include <stdlib.h>
#include <string.h>

typedef struct fake_backend {
  rt_backend base; /* first: rt_backend * and fake_backend * convert */
  const ir_graph *g;
  int n;
  const ir_param **params; /* graph order */
  float **vals;
  int reads, writes; /* param_read / param_write calls */
} fake_backend;

static inline int fake_index(const fake_backend *f, const ir_param *p) {
  for (int i = 0; i < f->n; i++)
    if (f->params[i] == p)
      return i;
  KILN_ASSERT(!"parameter of another graph");
  return -1;
}

static const struct rt_backend_ops fake_ops;

static inline rt_backend *fake_create(const ir_graph *g, int64_t batch,
                                      kiln_error *err) {
  (void)batch;
  (void)err;
  fake_backend *f = calloc(1, sizeof *f);
  KILN_ASSERT(f);
  f->base.ops = &fake_ops;
  f->g = g;
  for (int i = 0; i < g->n_nodes; i++)
    f->n += g->nodes[i]->n_params;
  f->params = calloc((size_t)f->n + 1, sizeof *f->params);
  f->vals = calloc((size_t)f->n + 1, sizeof *f->vals);
  KILN_ASSERT(f->params && f->vals);
  for (int i = 0, j = 0; i < g->n_nodes; i++)
    for (int k = 0; k < g->nodes[i]->n_params; k++, j++) {
      f->params[j] = &g->nodes[i]->params[k];
      int64_t n = ir_shape_numel(&f->params[j]->shape, 1);
      f->vals[j] = calloc((size_t)n + 1, sizeof(float)); /* zeroed */
      KILN_ASSERT(f->vals[j]);
    }
  return &f->base;
}

static inline void fake_destroy(rt_backend *b) {
  fake_backend *f = (fake_backend *)b;
  for (int i = 0; i < f->n; i++)
    free(f->vals[i]);
  free(f->vals);
  free(f->params);
  free(f);
}

static inline kiln_status fake_cannot(kiln_error *err) {
  err->status = KILN_ERR_INVALID;
  snprintf(err->message, sizeof err->message, "the fake backend cannot run");
  return KILN_ERR_INVALID;
}

static inline kiln_status fake_set_input(rt_backend *b, const ir_node *n,
                                         const void *data, kiln_error *err) {
  (void)b, (void)n, (void)data;
  return fake_cannot(err);
}

static inline kiln_status fake_run(rt_backend *b, const rt_run *r,
                                   rt_result *out, kiln_error *err) {
  (void)b, (void)r, (void)out;
  return fake_cannot(err);
}

static inline kiln_status fake_read_output(rt_backend *b, const ir_node *n,
                                           float *out, kiln_error *err) {
  (void)b, (void)n, (void)out;
  return fake_cannot(err);
}

static inline void fake_param_read(rt_backend *b, const ir_param *p,
                                   float *out) {
  fake_backend *f = (fake_backend *)b;
  int i = fake_index(f, p);
  memcpy(out, f->vals[i], sizeof(float) * (size_t)ir_shape_numel(&p->shape, 1));
  f->reads++;
}

static inline void fake_param_write(rt_backend *b, const ir_param *p,
                                    const float *in) {
  fake_backend *f = (fake_backend *)b;
  int i = fake_index(f, p);
  memcpy(f->vals[i], in, sizeof(float) * (size_t)ir_shape_numel(&p->shape, 1));
  f->writes++;
}

static inline bool fake_grad_read(rt_backend *b, const ir_param *p,
                                  float *out) {
  (void)b, (void)p, (void)out;
  return false;
}

static const struct rt_backend_ops fake_ops = {
    .name = "fake",
    .create = fake_create,
    .destroy = fake_destroy,
    .set_input = fake_set_input,
    .run = fake_run,
    .read_output = fake_read_output,
    .param_read = fake_param_read,
    .param_write = fake_param_write,
    .grad_read = fake_grad_read,
};

/* The values of parameter `name`, or NULL. */
static inline float *fake_values(rt_backend *b, const char *name, int64_t *n) {
  fake_backend *f = (fake_backend *)b;
  for (int i = 0; i < f->n; i++)
    if (strcmp(f->params[i]->name, name) == 0) {
      if (n)
        *n = ir_shape_numel(&f->params[i]->shape, 1);
      return f->vals[i];
    }
  return NULL;
}

/* Appends an internal node owning optimizer-state parameters, named
 * "<param>.<role>" for each role, for every trainable parameter of the
 * graph's nodes so far: what the update nodes of ir_add_updates own. It
 * uses IR_OP_GRAD, the internal op that exists today. */
static inline void fake_add_state(ir_graph *g, const char *const *roles,
                                  int n_roles) {
  int n_nodes = g->n_nodes;
  for (int i = 0; i < n_nodes; i++) {
    const ir_node *src = g->nodes[i];
    for (int k = 0; k < src->n_params; k++) {
      const ir_param *p = &src->params[k];
      if (!p->trainable)
        continue;
      ir_node *n = ARENA_NEW(g->a, ir_node);
      n->id = g->n_nodes;
      n->op = IR_OP_GRAD;
      n->name = arena_printf(g->a, "update/%s", p->name);
      n->dtype = IR_F32;
      n->shape = p->shape;
      n->n_params = n_roles;
      n->params = ARENA_ARRAY(g->a, ir_param, n_roles);
      for (int r = 0; r < n_roles; r++)
        n->params[r] =
            (ir_param){.name = arena_printf(g->a, "%s.%s", p->name, roles[r]),
                       .role = roles[r],
                       .shape = p->shape,
                       .dtype = IR_F32,
                       .init = IR_INIT_ZEROS};
      ARENA_PUSH(g->a, g->nodes, g->n_nodes, g->cap_nodes, n);
    }
  }
}

#endif
