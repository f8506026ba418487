/* kiln.h — the public interface of libkiln, a compiler for neural-network
 * training graphs.
 *
 * A model file (see docs/model-format.md) is loaded into a graph; the graph
 * can be summarised, printed and drawn. Later stages (autodiff, passes,
 * codegen, runtime) add compilation and training behind the same handle.
 *
 * Example:
 *
 *     kiln_error err;
 *     kiln_model *m = kiln_model_load_file("models/lenet5.kiln", &err);
 *     if (!m) { fputs(err.message, stderr); return 1; }
 *     kiln_model_summary(m, stdout);
 *     printf("%lld parameters\n", (long long)kiln_model_param_count(m));
 *     kiln_model_free(m);
 *
 * Errors: every function that can fail on user input fills a kiln_error with
 * a status and a message ("file:line:col: error: ..." with the offending line
 * and a caret) and returns NULL or a non-zero status. The library never
 * exits the process and never prints on its own. */
#ifndef KILN_H
#define KILN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define KILN_API __attribute__((visibility("default")))
#else
#define KILN_API
#endif

typedef enum kiln_status {
  KILN_OK = 0,
  KILN_ERR_SYNTAX,   /* the text is not well formed */
  KILN_ERR_NAME,     /* undefined, duplicate or unknown name, cycle */
  KILN_ERR_TYPE,     /* a value of the wrong kind or out of range */
  KILN_ERR_SHAPE,    /* shapes that do not fit together */
  KILN_ERR_IO,       /* a file could not be read or written */
  KILN_ERR_INVALID,  /* a valid-looking request that cannot be honoured */
  KILN_ERR_INTERNAL, /* a library (CUDA, NVRTC, LLVM, MPI) failed */
} kiln_status;

typedef struct kiln_error {
  kiln_status status;
  char message[4096];
} kiln_error;

typedef struct kiln_model kiln_model;

/* Loading: parse, elaborate blocks and sequences, infer shapes. */
KILN_API kiln_model *kiln_model_load_file(const char *path, kiln_error *err);
/* `name` is used in messages as the file name. `text` need not be
 * NUL-terminated. */
KILN_API kiln_model *kiln_model_load_string(const char *name, const char *text,
                                            size_t len, kiln_error *err);
KILN_API void kiln_model_free(kiln_model *m);

/* Figures for one example (batch = 1). MACs count the multiply-accumulates
 * of conv2d, linear and matmul; FLOPs count 2 per MAC plus one per output
 * element of every other op. Parameters are trainable values only (BatchNorm
 * running statistics are buffers, reported separately). */
KILN_API const char *kiln_model_name(const kiln_model *m);
KILN_API int64_t kiln_model_param_count(const kiln_model *m);
KILN_API int64_t kiln_model_buffer_count(const kiln_model *m);
KILN_API int64_t kiln_model_macs(const kiln_model *m);
KILN_API int64_t kiln_model_flops(const kiln_model *m);
KILN_API int kiln_model_layer_count(const kiln_model *m);

/* Output: a torchinfo-like table; the graph IR as text; Graphviz dot. */
KILN_API void kiln_model_summary(const kiln_model *m, FILE *out);
KILN_API void kiln_model_dump(const kiln_model *m, FILE *out);
KILN_API void kiln_model_write_dot(const kiln_model *m, FILE *out);

/* Training, on the compiled CPU backend by default (or the reference
 * executor, the exact but slow oracle). Every field left 0 or
 * NULL takes the model file's value (its `train` section, or the defaults
 * of docs/model-format.md). */
typedef struct kiln_train_opts {
  int64_t epochs; /* passes over the training set */
  int64_t batch;  /* examples per step; the last partial batch is skipped */
  double lr;      /* the optimizer's base learning rate */
  uint64_t seed;  /* initialisation, split, shuffling, dropout; ... */
  bool has_seed;  /* ... used only when this is true (0 is a valid seed) */
  const char *metrics_csv;  /* write "epoch,step,lr,train_loss,train_acc,
                             * val_loss,val_acc" rows here; NULL: none */
  FILE *log;                /* progress lines and evaluations; NULL: silent */
  int64_t max_steps;        /* stop once the global step count reaches this
                               (a resumed run counts from its checkpoint's
                               step); 0: no limit */
  const char *backend;      /* where to run: "cpu" (compiled, LLVM JIT) or
                               "reference" (the oracle); NULL: cpu */
  const char *out_dir;      /* DIR/last.safetensors (every checkpoint_every
                               epochs and at the end), DIR/best.safetensors
                               (on each validation improvement),
                               DIR/metrics.csv and DIR/curve.svg unless named
                               otherwise; created when missing; NULL: none */
  const char *resume;       /* checkpoint to continue from; NULL: start fresh */
  int64_t checkpoint_every; /* epochs between last.safetensors; 0: 1 */
  const char *curve_svg;    /* learning curve SVG; NULL: DIR/curve.svg with
                               out_dir, else none */
  bool progress_tty;        /* log is a terminal: one redrawn progress line
                               with an ETA instead of log lines */
} kiln_train_opts;

/* Differentiates the model's graph, initialises its parameters, loads the
 * data of its `data` section and trains as its `train` section says,
 * evaluating on the validation set after every epoch and on the test set at
 * the end. The trained weights stay in the model. */
KILN_API kiln_status kiln_train(kiln_model *m, const kiln_train_opts *o,
                                kiln_error *err);

/* Evaluation of a checkpoint or weights file (safetensors) on the model's
 * data, exactly as training evaluates: full batches, the EMA weights when
 * the file has them. Fields left 0 or NULL take the defaults noted. */
typedef struct kiln_eval_opts {
  const char *split;   /* "test" or "val"; NULL: test */
  const char *backend; /* as kiln_train_opts; NULL: cpu */
  int64_t batch;       /* 0: the train section's batch */
  bool no_ema;         /* evaluate the weights, not their EMA */
  FILE *log;           /* notes; NULL: silent */
} kiln_eval_opts;

typedef struct kiln_eval_result {
  double loss;      /* mean over the batches */
  double acc;       /* percent; NAN when the model has no class logits */
  int64_t examples; /* evaluated (full batches only) */
  bool ema;         /* the EMA weights were evaluated */
} kiln_eval_result;

/* Loads every parameter and buffer of the model from `weights` (strictly:
 * all present with their shapes) and evaluates on o->split; the
 * validation split is drawn with the file's kiln.seed, so it is the one
 * the training run held out. */
KILN_API kiln_status kiln_eval(kiln_model *m, const char *weights,
                               const kiln_eval_opts *o, kiln_eval_result *res,
                               kiln_error *err);

KILN_API const char *kiln_version(void);

#ifdef __cplusplus
}
#endif
#endif
