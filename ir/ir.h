/* ir.h — the graph IR: values, ops, parameters and the op table.
 *
 * A graph is a list of nodes in topological order. Every node produces one
 * tensor (its shape and dtype are set by the op's shape rule when the node is
 * added) and may own parameters (weights, biases, BatchNorm statistics) whose
 * names are the node's dotted name plus a role: "layer2.0.conv1.weight".
 *
 * Everything about an op lives in one row of ir_op_table (ops.c): its name,
 * inputs, attributes with defaults, shape/dtype rule (which also declares the
 * parameter shapes), cost rule and fusion class. Adding an op means adding an
 * enum value, a table row and its rule functions.
 *
 * The symbolic batch dimension is stored as IR_DIM_BATCH; figures "per
 * example" substitute 1 for it. */
#ifndef KILN_IR_H
#define KILN_IR_H

#include "ir/config.h"
#include "support/support.h"

/* ---- dtypes and shapes (shape.c) ---- */

typedef enum ir_dtype {
  IR_F32,
  IR_F64,
  IR_F16,
  IR_BF16,
  IR_I32,
  IR_I64,
  IR_DTYPE_COUNT
} ir_dtype;

#define IR_MAX_DIMS 8
#define IR_DIM_BATCH (-1)

typedef struct ir_shape {
  int rank;
  int64_t dim[IR_MAX_DIMS];
} ir_shape;

const char *ir_dtype_name(ir_dtype t);
bool ir_dtype_parse(const char *name, ir_dtype *out);
int ir_dtype_size(ir_dtype t);
bool ir_dtype_is_float(ir_dtype t);
bool ir_shape_eq(const ir_shape *a, const ir_shape *b);
/* Number of elements with the batch dimension taken as `batch`. */
int64_t ir_shape_numel(const ir_shape *s, int64_t batch);
/* "[batch, 64, 56, 56]" */
void ir_shape_print(strbuf *b, const ir_shape *s);
const char *ir_shape_str(arena *a, const ir_shape *s);

/* ---- attributes ---- */

typedef enum ir_attr_type {
  IR_ATTR_INT,
  IR_ATTR_FLOAT, /* an integer literal is accepted too */
  IR_ATTR_BOOL,
  IR_ATTR_PAIR,   /* (h, w); a single int n means (n, n) */
  IR_ATTR_INTS,   /* a list or tuple of ints, e.g. reshape's shape */
  IR_ATTR_SYMBOL, /* one of spec->symbols, written as a bare word */
} ir_attr_type;

/* In reshape's `shape` list the word `batch` is stored as IR_RESHAPE_BATCH,
 * because -1 already means "infer this dimension" there (as in PyTorch). */
#define IR_RESHAPE_BATCH INT64_MIN

typedef struct ir_attr_spec {
  const char *name;
  ir_attr_type type;
  bool required;
  int64_t def_int;     /* INT, BOOL, PAIR (both) */
  double def_float;    /* FLOAT */
  const char *def_sym; /* SYMBOL */
  const char *symbols; /* SYMBOL: allowed words separated by '|' */
  const char *doc;
} ir_attr_spec;

typedef struct ir_attr {
  ir_attr_type type;
  int64_t i;       /* INT, BOOL */
  double f;        /* FLOAT */
  int64_t pair[2]; /* PAIR */
  int n_ints;      /* INTS */
  int64_t *ints;   /* INTS; arena */
  const char *sym; /* SYMBOL; interned in the arena */
  bool set;        /* given in the model file (not the default) */
} ir_attr;

/* ---- parameters ---- */

typedef enum ir_init {
  IR_INIT_AUTO, /* chosen from the activation that follows the layer */
  IR_INIT_ZEROS,
  IR_INIT_ONES,
  IR_INIT_XAVIER_UNIFORM,
  IR_INIT_XAVIER_NORMAL,
  IR_INIT_HE_UNIFORM,
  IR_INIT_HE_NORMAL,
  IR_INIT_CONST, /* every element = ir_param.init_value (PReLU slopes) */
} ir_init;

typedef struct ir_param {
  const char *name; /* full dotted name: "layer1.0.bn1.running_mean" */
  const char *role; /* "weight", "bias", "running_mean", ... */
  ir_shape shape;   /* never has a batch dimension */
  ir_dtype dtype;
  bool trainable; /* false for buffers (BatchNorm running statistics) */
  ir_init init;
  double init_value; /* IR_INIT_CONST */
} ir_param;

/* ---- nodes and graphs (graph.c) ---- */

typedef enum ir_op {
  IR_OP_INPUT,
  IR_OP_CONV2D,
  IR_OP_BATCHNORM,
  IR_OP_LAYERNORM,
  IR_OP_LINEAR,
  IR_OP_MATMUL,
  IR_OP_RELU,
  IR_OP_LEAKY_RELU,
  IR_OP_PRELU,
  IR_OP_ELU,
  IR_OP_GELU,
  IR_OP_SIGMOID,
  IR_OP_TANH,
  IR_OP_MAXOUT,
  IR_OP_SOFTMAX,
  IR_OP_MAXPOOL,
  IR_OP_AVGPOOL,
  IR_OP_GLOBAL_AVGPOOL,
  IR_OP_ADD,
  IR_OP_MUL,
  IR_OP_CONCAT,
  IR_OP_FLATTEN,
  IR_OP_RESHAPE,
  IR_OP_DROPOUT,
  IR_OP_CROSS_ENTROPY,
  IR_OP_MSE,
  IR_OP_GRAD,      /* internal: built by ir_autodiff, never by a model file */
  IR_OP_GRAD_NORM, /* internal: built by ir_add_updates */
  IR_OP_UPDATE,    /* internal: built by ir_add_updates */
  IR_OP_COUNT
} ir_op;

typedef struct ir_node ir_node;
struct ir_node {
  int id; /* index in graph->nodes */
  ir_op op;
  const char *name; /* full dotted name, unique in the graph */
  kiln_loc loc;     /* where the model file creates it */
  int n_inputs;
  ir_node **inputs;
  ir_attr *attrs; /* indexed like ir_op_table[op].attrs */
  ir_dtype dtype;
  ir_shape shape;
  int n_params;
  ir_param *params;
  int stage; /* pipeline stage from the placement section; 0 by default */
  /* IR_OP_GRAD (autodiff.c): the gradient of the loss with respect to
   * input `wrt` of `fwd` (wrt >= 0) or to its parameter -1-wrt (wrt < 0).
   * IR_OP_UPDATE (update.c): the update of fwd's parameter -1-wrt. */
  ir_node *fwd;
  int wrt;
};

/* Fusion classes, after TVM's OpPatternKind. */
typedef enum ir_fuse_kind {
  IR_FUSE_ELEMWISE,
  IR_FUSE_BROADCAST,
  IR_FUSE_INJECTIVE,
  IR_FUSE_REDUCTION,
  IR_FUSE_OUT_ELEMWISE, /* complex op that accepts an elementwise epilogue */
  IR_FUSE_OPAQUE,
} ir_fuse_kind;

#define IR_MAX_ATTRS 8

/* The context a shape rule works in. The rule reads n->inputs and n->attrs,
 * sets n->shape and n->dtype, and declares parameters with ir_add_param().
 * On a mismatch it calls ir_shape_error() (which names the layers and shapes
 * involved) and returns its status. */
typedef struct ir_infer_ctx {
  arena *a;
  kiln_error *err;
  ir_node *node;
} ir_infer_ctx;

typedef struct ir_op_info {
  const char *name;
  int min_inputs, max_inputs; /* max_inputs < 0: any number */
  const char *input_names;    /* for messages, e.g. "input, target" */
  ir_attr_spec attrs[IR_MAX_ATTRS];
  ir_fuse_kind fuse;
  bool is_loss;
  bool internal; /* made by passes only; model files cannot name it */
  kiln_status (*infer)(ir_infer_ctx *c);
  /* Multiply-accumulates per example (batch = 1); NULL means 0. */
  int64_t (*macs)(const ir_node *n);
  const char *doc;
} ir_op_info;

extern const ir_op_info ir_op_table[IR_OP_COUNT];

/* Lookup by name; IR_OP_COUNT when unknown. */
ir_op ir_op_find(const char *name);
int ir_op_attr_count(ir_op op);
/* Index of attribute `name` of `op`, or -1. */
int ir_op_attr_index(ir_op op, const char *name);

/* Placement: which pipeline stage each layer is on, and the replica count. */
typedef struct ir_placement {
  int data_parallel;             /* D; 1 by default */
  int stages;                    /* M; 1 by default */
  int microbatches;              /* per step, for pipelining; 1 by default */
  const char *pipeline_schedule; /* "gpipe" or "1f1b" */
} ir_placement;

typedef struct ir_graph {
  arena *a;
  const char *name; /* model name */
  int n_nodes, cap_nodes;
  ir_node **nodes; /* topological order */
  strmap by_name;
  int n_outputs, cap_outputs;
  ir_node **outputs; /* inference outputs */
  ir_node *loss;     /* NULL for an inference-only model */
  ir_placement placement;
  bool has_train, has_data;
  ir_train_cfg train;
  ir_data_cfg data;
  /* Set by ir_autodiff: for each trainable, unfrozen parameter the node
   * holding dloss/dparam. */
  int n_param_grads;
  ir_param **grad_params;
  ir_node **grad_nodes;
  /* Set by ir_add_updates: updates[k] updates grad_params[k]
   * (n_updates == n_param_grads); grad_norm is the global gradient norm
   * node when clipping is on, else NULL. */
  int n_updates;
  ir_node **updates;
  ir_node *grad_norm;
} ir_graph;

void ir_graph_init(ir_graph *g, arena *a, const char *name);
/* Adds an input node. `shape` may use IR_DIM_BATCH in dimension 0. */
ir_node *ir_graph_add_input(ir_graph *g, const char *name, kiln_loc loc,
                            ir_dtype dtype, const ir_shape *shape,
                            kiln_error *err);
/* Creates a node whose attributes are all defaults (attrs[k].set = false);
 * the caller then sets attributes and calls ir_node_finish(), which checks
 * required attributes, runs the op's shape rule and appends the node to the
 * graph. Names must be unique (KILN_ERR_NAME otherwise). */
ir_node *ir_node_new(ir_graph *g, ir_op op, const char *name, kiln_loc loc,
                     ir_node **inputs, int n_inputs);
kiln_status ir_node_finish(ir_graph *g, ir_node *n, kiln_error *err);
ir_node *ir_graph_find(const ir_graph *g, const char *name);

/* Rewriting for graph passes (rewrite.c): edit in place, then compact.
 * replace_uses redirects node inputs, outputs and the loss from `old` to
 * `new_node`; remove marks a node removed (id -1) until ir_graph_compact
 * drops removed nodes, renumbers ids in a stable topological order and
 * rebuilds by_name; reinfer re-runs n's shape rule after a change to its
 * inputs or attributes (its parameters are declared anew); use_counts
 * fills counts[id] with the uses by live nodes, outputs and the loss. */
void ir_graph_replace_uses(ir_graph *g, ir_node *old, ir_node *new_node);
void ir_graph_remove(ir_graph *g, ir_node *n);
void ir_graph_compact(ir_graph *g);
kiln_status ir_node_reinfer(ir_graph *g, ir_node *n, kiln_error *err);
void ir_graph_use_counts(const ir_graph *g, int *counts);

/* Shape-rule helpers (ops.c). */
ir_param *ir_add_param(ir_infer_ctx *c, const char *role, const ir_shape *s,
                       bool trainable, ir_init init);
kiln_status ir_shape_error(ir_infer_ctx *c, const char *fmt, ...)
    KILN_PRINTF(2, 3);

/* Figures (stats.c), per example. */
int64_t ir_node_macs(const ir_node *n);
int64_t ir_node_flops(const ir_node *n);
/* Elements of n's trainable parameters (or of its buffers); 0 for the
 * internal nodes of passes, whose parameters (optimizer state) are not
 * part of the model. */
int64_t ir_node_param_count(const ir_node *n, bool trainable);

/* Checks the graph's invariants (verify.c): topological order, input arity,
 * names unique, shapes set. Returns KILN_OK or fills err. Runs after
 * elaboration and after every pass. */
kiln_status ir_verify(const ir_graph *g, kiln_error *err);

/* Reverse-mode autodiff (autodiff.c): appends to g the backward graph of
 * g->loss as IR_OP_GRAD and IR_OP_ADD nodes and fills g->grad_params and
 * g->grad_nodes. Fails (KILN_ERR_INVALID) without a loss. */
kiln_status ir_autodiff(ir_graph *g, kiln_error *err);
/* The optimizer as graph ops (update.c), after ir_autodiff: a grad_norm
 * node over every parameter gradient when g->train.clip_grad_norm > 0, and
 * one update node per parameter gradient ("update/<param>") owning the
 * optimizer state "<param>.<role>" (ir_update_roles) and, when
 * g->train.ema > 0, the EMA weights "<param>.ema". Hyperparameters stay in
 * g->train; lr and the step are given per run. Fails (KILN_ERR_INVALID)
 * without a loss or before ir_autodiff; runs once. */
kiln_status ir_add_updates(ir_graph *g, kiln_error *err);
enum { IR_UPDATE_MAX_BUFS = 2 };
/* The state roles `c`'s optimizer keeps per parameter, in order; returns
 * how many (0 for plain SGD):
 *   sgd, momentum > 0:      momentum
 *   adagrad:                sum
 *   rmsprop:                square_avg (+ momentum when momentum > 0)
 *   adam, adamw:            exp_avg, exp_avg_sq */
int ir_update_roles(const ir_train_cfg *c,
                    const char *roles[IR_UPDATE_MAX_BUFS]);
/* The parameter update node u updates (fwd's parameter -1-wrt). */
ir_param *ir_update_param(const ir_node *u);

/* Whether layer `name` is frozen by the train section's `freeze` list: a
 * listed name or a prefix of it followed by '.'. */
bool ir_train_frozen(const ir_graph *g, const char *name);

/* Text and Graphviz output (print.c). */
void ir_print(const ir_graph *g, FILE *out);
void ir_write_dot(const ir_graph *g, FILE *out);
void ir_summary(const ir_graph *g, FILE *out);

#endif
