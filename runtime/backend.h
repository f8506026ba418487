/* backend.h — what the training loop needs from a backend, as a struct of
 * function pointers (as ggml-backend and tinygrad's device do): the loop,
 * checkpoints and `kiln eval` are written once against rt_backend_ops, and
 * the reference executor, the compiled CPU plan and the CUDA runtime each
 * fill one table.
 *
 * A backend instance runs one training graph (forward, loss, grad nodes and
 * the update nodes of ir_add_updates) at a fixed batch. It owns every
 * tensor: the parameters, BatchNorm buffers and the optimizer state and EMA
 * weights that update nodes declare as their parameters. The loop reads and
 * writes them as float32 host arrays by ir_param (initialisation,
 * checkpoints, fine-tuning), so device backends copy only there.
 *
 *   const rt_backend_ops *ops = rt_backend_find("reference");
 *   rt_backend *b = ops->create(g, batch, &err);
 *   ops->param_write(b, p, values);                 // every parameter
 *   ops->set_input(b, image_node, pixels, &err);    // float32
 *   ops->set_input(b, label_node, labels, &err);    // int32
 *   rt_run run = {.training = true, .update = true, .seed = s, .step = k,
 *                 .lr = lr};
 *   rt_result res;
 *   ops->run(b, &run, &res, &err);                   // res.loss
 *   ops->destroy(b); */
#ifndef KILN_RUNTIME_BACKEND_H
#define KILN_RUNTIME_BACKEND_H

#include "ir/ir.h"

/* One run of the graph. */
typedef struct rt_run {
  /* Train mode: BatchNorm uses (and updates the running statistics from)
   * batch statistics, dropout is on, and the grad nodes run. Otherwise
   * only the forward nodes and the loss run, in eval mode. */
  bool training;
  /* Training only: also run the update nodes (optimizer step, clipping,
   * EMA). Off, the run leaves the gradients for the caller to read. */
  bool update;
  /* Evaluation only: the forward pass reads each trainable parameter's EMA
   * weights ("<param>.ema") instead of the parameter. */
  bool ema;
  uint64_t seed; /* dropout: Philox key */
  int64_t step;  /* 0-based global step: dropout stream, Adam's bias
                    correction (step + 1), momentum's first step */
  double lr;     /* this step's scheduled learning rate */
} rt_run;

typedef struct rt_result {
  double loss;      /* mean over the batch */
  double grad_norm; /* global gradient L2 norm before clipping; 0 when the
                       graph has no grad_norm node */
  bool skipped;     /* the norm was not finite: no parameter was changed */
} rt_result;

/* A backend instance; each backend embeds this as its first member. */
typedef struct rt_backend {
  const struct rt_backend_ops *ops;
} rt_backend;

typedef struct rt_backend_ops {
  const char *name; /* "reference", "cpu", "cuda" */
  /* Buffers for every tensor of `g` at `batch`; parameters start zeroed.
   * NULL with err set when the graph holds something it cannot run. */
  rt_backend *(*create)(const ir_graph *g, int64_t batch, kiln_error *err);
  void (*destroy)(rt_backend *b);
  /* A whole input (numel at the batch): float32 for a float input, int32
   * for an integer one. */
  kiln_status (*set_input)(rt_backend *b, const ir_node *input,
                           const void *data, kiln_error *err);
  kiln_status (*run)(rt_backend *b, const rt_run *r, rt_result *out,
                     kiln_error *err);
  /* A float node's output of the last run as float32 (numel at the
   * batch), e.g. the logits for accuracy. Backends that plan memory keep
   * only the loss, its inputs (the logits) and the graph's outputs intact
   * after a run; other nodes may read back overwritten storage. */
  kiln_status (*read_output)(rt_backend *b, const ir_node *n, float *out,
                             kiln_error *err);
  /* Any parameter of any node (buffers and optimizer state included), as
   * numel float32 values. */
  void (*param_read)(rt_backend *b, const ir_param *p, float *out);
  void (*param_write)(rt_backend *b, const ir_param *p, const float *in);
  /* dloss/dp of the last training run as float32 (before clipping), for
   * tests; false when p has no gradient. */
  bool (*grad_read)(rt_backend *b, const ir_param *p, float *out);
} rt_backend_ops;

/* The backend called `name`, or NULL; rt_backend_names lists them for
 * messages ("reference, cpu"). */
const rt_backend_ops *rt_backend_find(const char *name);
const char *rt_backend_names(void);

#endif
