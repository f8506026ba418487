/* train_ckpt.h — training checkpoints: save, exact resume and fine-tuning,
 * written once against rt_backend_ops so every backend gets them.
 *
 * A checkpoint is one safetensors file (runtime/checkpoint/, written
 * atomically) holding every parameter of every node of the training graph
 * as F32 under its full name: weights and biases, BatchNorm buffers, and
 * the optimizer state and EMA weights that the internal update nodes own
 * ("fc1.weight.exp_avg", "fc1.weight.ema"). `__metadata__` holds the
 * position in the run (train_ckpt_meta), so that resuming continues with
 * the very step, batch order, dropout masks and LR it would have taken:
 * all of them are pure functions of (seed, epoch, step).
 *
 *   train_ckpt_save     every parameter + the position -> file
 *   train_ckpt_resume   file -> every parameter (strict: same tensor set,
 *                       shapes and dtype) + the position
 *   train_ckpt_finetune file -> the model's own parameters and buffers that
 *                       match by name and shape; a report of the others
 *   train_ckpt_load_weights  file -> all of the model's own parameters and
 *                       buffers (strict), optionally its EMA weights: for
 *                       evaluation
 *
 * Metadata keys (all values strings, as safetensors requires):
 *   format          "pt" (tensors use PyTorch names and layouts)
 *   kiln.version    kiln_version() of the writer
 *   kiln.model      the graph's model name
 *   kiln.step       global step to run next (0-based)
 *   kiln.epoch      epoch of that step (0-based)
 *   kiln.epoch_step that step's index within its epoch (0-based)
 *   kiln.batch      examples per step (the step count depends on it)
 *   kiln.seed       the run's seed (decimal, 64 bits)
 *   kiln.best_val_loss, kiln.best_epoch, kiln.bad_epochs
 *                   early stopping's state (train_early): "inf" and -1
 *                   before the first validation
 */
#ifndef KILN_RUNTIME_TRAIN_CKPT_H
#define KILN_RUNTIME_TRAIN_CKPT_H

#include "runtime/backend.h"

#include <stdio.h>

/* The position of a run. model and version are filled by resume; save
 * writes the graph's name and kiln_version() instead, so they cannot
 * disagree with what wrote the file. */
typedef struct train_ckpt_meta {
  int64_t step;       /* global step to run next */
  int64_t epoch;      /* 0-based epoch of `step` */
  int64_t epoch_step; /* `step`'s index within that epoch */
  int64_t batch;
  uint64_t seed;
  double best_val_loss; /* INFINITY before any validation */
  int64_t best_epoch;   /* 0-based; -1 before any validation */
  int64_t bad_epochs;   /* validations without improvement since the best */
  char model[128];
  char version[32];
} train_ckpt_meta;

/* Writes every parameter of every node of g, read from b, and `meta` to
 * path (atomically: the old file survives any failure). Errors name the
 * path (KILN_ERR_IO with strerror for the file system). */
kiln_status train_ckpt_save(const char *path, const ir_graph *g, rt_backend *b,
                            const train_ckpt_meta *meta, kiln_error *err);

/* Loads a checkpoint of exactly this graph into b and its position into
 * *meta. Every parameter must be present as F32 with its shape and the file
 * may hold nothing else; otherwise KILN_ERR_INVALID names the file and
 * lists the differences (one note each), and b is left unchanged. A
 * missing or malformed metadata value is KILN_ERR_INVALID too; an
 * unreadable, truncated or corrupt file is KILN_ERR_IO from ckpt_load. */
kiln_status train_ckpt_resume(const char *path, const ir_graph *g,
                              rt_backend *b, train_ckpt_meta *meta,
                              kiln_error *err);

/* Transfer learning: loads each parameter of g's own (non-internal) nodes,
 * trainable or buffer, that path holds under the same name with the same
 * shape and a float dtype (F64, F16 and BF16 are converted to float32);
 * optimizer state is never read, so the new run starts its own. A loaded
 * weight also overwrites its EMA weights ("<name>.ema"), which start at the
 * initial weights. Writes to `report` (when not NULL) one line per skipped
 * parameter, in graph order:
 *   fc3.weight: shape [10, 84] in the checkpoint, [5, 84] in the model
 *   fc4.bias: not in the checkpoint
 *   fc2.bias: dtype I64 in the checkpoint, not a float type
 * then "loaded 8 of 10 tensors; 2 skipped". Nothing loaded is
 * KILN_ERR_INVALID (a checkpoint of another model, most likely). */
kiln_status train_ckpt_finetune(const char *path, const ir_graph *g,
                                rt_backend *b, FILE *report, kiln_error *err);

/* Evaluation (`kiln eval`): loads every parameter and buffer of g's own
 * (non-internal) nodes from path, strictly: each must be present with its
 * shape and a float dtype (converted to float32), else KILN_ERR_INVALID
 * lists the differences and b is left unchanged; optimizer state and
 * other tensors of the file are ignored. With use_ema, a trainable
 * parameter is read from "<name>.ema" when the file has it (the weights
 * training evaluated); *used_ema (when not NULL) says whether any was. */
kiln_status train_ckpt_load_weights(const char *path, const ir_graph *g,
                                    rt_backend *b, bool use_ema, bool *used_ema,
                                    kiln_error *err);

#endif
