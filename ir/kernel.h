/* kernel.h — the kernel IR: one kernel as loops over typed buffers, and the
 * plan (the kernels of one training step with their tensors).
 *
 * One kernel IR, two renderers: codegen/llvm turns a kernel into LLVM IR
 * for the CPU, codegen/cuda into CUDA C. Everything here is target
 * independent; each GPU-only concept has a CPU meaning stated below, which
 * the LLVM renderer implements and tests/support/kir_interp.c (the kernel IR's
 * interpreter, the definition renderers are tested against) executes.
 *
 * A kernel is a statement tree. Values are expression trees (no sharing
 * needed: renderers may re-evaluate) built in the kernel's arena. Scalars
 * are typed; indices are KIR_I64 element offsets into buffers.
 *
 *   kernel relu_fwd_act1(global f32 x[6272] ro, global f32 y[6272])
 *     grid b < 25:                       blocks (CPU: the thread pool)
 *       thread t < 256:                  threads of a block (CPU: a loop)
 *         let i: i64 = b * 256 + t
 *         if i < 6272:
 *           y[i] = max(x[i], 0.0)
 *
 * Parallel structure (checked by kir_verify):
 *  - KIR_LOOP_GRID loops are the outermost statements: the kernel body is a
 *    chain of directly nested GRID loops (possibly none) around the rest.
 *    Their iterations are independent (a GPU block each; on the CPU the
 *    flattened grid index space is split over the thread pool). Every grid
 *    iteration is one "block".
 *  - Inside the block, KIR_LOOP_THREAD loops (extent == k->block_threads,
 *    never nested in each other) are the block's threads: on the GPU the
 *    loop variable is threadIdx.x and all threads run the code between
 *    thread loops uniformly; on the CPU a thread loop is a plain loop, run
 *    to completion before the next statement. A BARRIER (allowed only
 *    between thread loops, never inside one) therefore needs nothing on the
 *    CPU: each thread loop is a phase.
 *  - block_threads == 0: the kernel has no thread loops, and the CUDA
 *    renderer maps grid iterations to threads itself (elementwise kernels).
 *  - SHARED buffers exist once per block; LOCAL buffers once per thread of
 *    the block (registers on the GPU; on the CPU an array of
 *    block_threads * count, indexed by the thread variable), and are
 *    accessed only inside thread loops. Values (let variables) never live
 *    across a thread loop boundary: what must survive goes through SHARED
 *    or LOCAL buffers.
 *  - BLOCK_REDUCE (between thread loops): shared dst[0] = op over the
 *    block's threads of local src[0]. GPU: warp shuffles then shared
 *    memory; CPU: a serial loop over the threads' copies.
 *  - MMA (between thread loops): C[m*N+n] += sum_k A[m*K+k] * B[k*N+n] on
 *    SHARED tiles of M x K, K x N and M x N f32, by the whole block. GPU:
 *    tensor cores (mma.sync, TF32 inputs, f32 accumulate); CPU: the triple
 *    loop in f32.
 *  - ATOMIC_ADD is buf[i] += v, atomic with respect to other blocks and
 *    threads (CPU: an atomic read-modify-write; order of additions is not
 *    defined, so lowering prefers deterministic reductions).
 *
 * Rendered signature (both targets): the kernel's GLOBAL buffers in
 * declaration order, then its scalar parameters; the runtime binds scalar
 * parameters by role (seed, step, learning rate), the plan binds buffers to
 * tensors. */
#ifndef KILN_IR_KERNEL_H
#define KILN_IR_KERNEL_H

#include "ir/ir.h"

/* ---- types, buffers, variables ---- */

typedef enum kir_type {
  KIR_BOOL,
  KIR_I32,
  KIR_I64,
  KIR_U32,
  KIR_F32,
  KIR_TYPE_COUNT
} kir_type;

const char *kir_type_name(kir_type t); /* "f32" */
int kir_type_size(kir_type t);         /* bytes; bool is 1 */
bool kir_type_is_float(kir_type t);

typedef enum kir_space {
  KIR_GLOBAL, /* a kernel argument: a plan tensor */
  KIR_SHARED, /* per block */
  KIR_LOCAL,  /* per thread of the block */
} kir_space;

typedef struct kir_buf {
  int id; /* index in kernel->bufs */
  const char *name;
  kir_type type;
  kir_space space;
  int64_t count;  /* elements (per block for SHARED, per thread for LOCAL) */
  bool read_only; /* GLOBAL: the kernel never stores to it */
} kir_buf;

/* Run-time scalars the runtime passes to every kernel that declares them. */
typedef enum kir_scalar_role {
  KIR_SCALAR_NONE, /* a local variable, not a parameter */
  KIR_SCALAR_SEED, /* i64: the run's seed (bits of the u64) */
  KIR_SCALAR_STEP, /* i64: 0-based global step */
  KIR_SCALAR_LR,   /* f32: this step's learning rate */
  KIR_SCALAR_ROLE_COUNT
} kir_scalar_role;

/* The values of the scalar parameters for one run (interpreter, CPU
 * runtime): seed and step as i64 bits, lr as f32. */
typedef struct kir_scalars {
  int64_t seed, step;
  float lr;
} kir_scalars;

typedef struct kir_var {
  int id; /* index in kernel->vars */
  const char *name;
  kir_type type;
  kir_scalar_role role; /* NONE for loop variables and lets */
} kir_var;

/* ---- expressions ---- */

typedef enum kir_op {
  /* leaves */
  KIR_CONST, /* .type; .i (integers, bool) or .f (f32) */
  KIR_VAR,   /* .var */
  KIR_LOAD,  /* .buf[a[0]] */
  /* unary, a[0]; math on f32 only */
  KIR_NEG,
  KIR_NOT, /* bool */
  KIR_ABS,
  KIR_EXP,
  KIR_LOG,
  KIR_TANH,
  KIR_ERF,
  KIR_SQRT,
  KIR_RSQRT,
  KIR_FLOOR,
  /* binary, a[0] op a[1], both of the result's type (comparisons: bool) */
  KIR_ADD,
  KIR_SUB,
  KIR_MUL,
  KIR_DIV, /* integers: C truncation */
  KIR_MOD, /* integers only: C remainder */
  KIR_MIN,
  KIR_MAX,
  KIR_POW, /* f32 */
  KIR_AND, /* bool or integers (bitwise) */
  KIR_OR,
  KIR_XOR,
  KIR_SHL, /* integers */
  KIR_SHR, /* integers: logical for u32, arithmetic for signed */
  KIR_LT,
  KIR_LE,
  KIR_EQ,
  KIR_NE,
  /* others */
  KIR_SELECT, /* a[0] (bool) ? a[1] : a[2] */
  KIR_CAST,   /* a[0] converted to .type (f32 -> int truncates) */
  /* f32 uniform in [0, 1): philox_uniform(seed = a[0], stream = a[1],
   * index = a[2]) of support/philox.c, all three i64 (read as u64) */
  KIR_PHILOX,
  KIR_OP_COUNT
} kir_op;

typedef struct kir_expr kir_expr;
struct kir_expr {
  kir_op op;
  kir_type type; /* of the result */
  int64_t i;     /* KIR_CONST integers and bool */
  float f;       /* KIR_CONST f32 */
  kir_var *var;  /* KIR_VAR */
  kir_buf *buf;  /* KIR_LOAD */
  kir_expr *a[3];
};

const char *kir_op_name(kir_op op); /* "add", "exp", "philox", ... */
int kir_op_arity(kir_op op);
/* The result type of unary/binary/SELECT/PHILOX `op` on operand types
 * t[0..arity), or -1 when they do not fit the op (the builder's and the
 * verifier's type rule). */
int kir_op_result(kir_op op, const kir_type *t);

/* ---- statements ---- */

typedef enum kir_loop_kind {
  KIR_LOOP_SERIAL,
  KIR_LOOP_GRID,   /* see the parallel structure above */
  KIR_LOOP_THREAD, /* extent must be block_threads */
  KIR_LOOP_UNROLL, /* serial, constant extent: unroll it */
  KIR_LOOP_VECTOR, /* serial, independent iterations: vectorise it */
} kir_loop_kind;

typedef enum kir_stmt_kind {
  KIR_S_SEQ,          /* body[0..n) in order */
  KIR_S_LOOP,         /* for var in [0, extent): body */
  KIR_S_LET,          /* declares var = value; visible to the rest of the
                         enclosing SEQ; assignable */
  KIR_S_ASSIGN,       /* var = value */
  KIR_S_STORE,        /* buf[index] = value */
  KIR_S_ATOMIC_ADD,   /* buf[index] += value (f32), atomically */
  KIR_S_IF,           /* if cond: then_ else else_ (else_ may be NULL) */
  KIR_S_BARRIER,      /* block-wide barrier between thread loops */
  KIR_S_BLOCK_REDUCE, /* dst[0] = reduce_op over threads of src[0] */
  KIR_S_MMA,          /* C += A * B on shared tiles (m, n, k) */
} kir_stmt_kind;

typedef struct kir_stmt kir_stmt;
struct kir_stmt {
  kir_stmt_kind kind;
  /* SEQ */
  int n, cap;
  kir_stmt **body;
  /* LOOP: var, extent, loop_kind, then body in `then_` (a SEQ) */
  kir_loop_kind loop_kind;
  kir_var *var;     /* LOOP, LET, ASSIGN */
  kir_expr *extent; /* LOOP (i64) */
  kir_expr *value;  /* LET, ASSIGN, STORE, ATOMIC_ADD */
  kir_buf *buf;     /* STORE, ATOMIC_ADD; BLOCK_REDUCE: dst (shared) */
  kir_expr *index;  /* STORE, ATOMIC_ADD */
  kir_expr *cond;   /* IF */
  kir_stmt *then_;  /* LOOP body, IF then (SEQs) */
  kir_stmt *else_;  /* IF else (a SEQ) or NULL */
  kir_op reduce_op; /* BLOCK_REDUCE: KIR_ADD or KIR_MAX */
  kir_buf *src;     /* BLOCK_REDUCE: src (local) */
  kir_buf *mma[3];  /* MMA: C, A, B (shared) */
  int mma_m, mma_n, mma_k;
};

/* ---- kernels ---- */

typedef struct kir_kernel {
  arena *a;
  const char *name; /* a C identifier saying which ops it holds:
                       "conv2d_fwd_layer1_0_conv1" */
  int n_bufs, cap_bufs;
  kir_buf **bufs; /* GLOBAL ones first: the argument order */
  int n_vars, cap_vars;
  kir_var **vars; /* scalar parameters are the vars with a role */
  int block_threads;
  kir_stmt *body; /* a SEQ */
  /* builder state: the SEQ new statements are appended to */
  int depth;
  kir_stmt *open[32];
} kir_kernel;

/* ---- building (kernel.c): statements are appended at the cursor ---- */

kir_kernel *kir_kernel_new(arena *a, const char *name, int block_threads);
kir_buf *kir_global(kir_kernel *k, const char *name, kir_type t, int64_t count,
                    bool read_only);
kir_buf *kir_shared(kir_kernel *k, const char *name, kir_type t, int64_t count);
kir_buf *kir_local(kir_kernel *k, const char *name, kir_type t, int64_t count);
kir_var *kir_scalar_param(kir_kernel *k, kir_scalar_role role);

kir_expr *kir_int(kir_kernel *k, kir_type t, int64_t v);
kir_expr *kir_i64(kir_kernel *k, int64_t v);
kir_expr *kir_f32(kir_kernel *k, float v);
kir_expr *kir_bool(kir_kernel *k, bool v);
kir_expr *kir_ref(kir_kernel *k, kir_var *v);
kir_expr *kir_load(kir_kernel *k, kir_buf *b, kir_expr *index);
kir_expr *kir_un(kir_kernel *k, kir_op op, kir_expr *a);
kir_expr *kir_bin(kir_kernel *k, kir_op op, kir_expr *a, kir_expr *b);
kir_expr *kir_select(kir_kernel *k, kir_expr *c, kir_expr *a, kir_expr *b);
kir_expr *kir_cast(kir_kernel *k, kir_type t, kir_expr *a);
kir_expr *kir_philox(kir_kernel *k, kir_expr *seed, kir_expr *stream,
                     kir_expr *index);

/* Opens a loop at the cursor and moves the cursor into its body; returns
 * the loop variable (i64). kir_end closes the innermost open loop/if. */
kir_var *kir_for(kir_kernel *k, kir_loop_kind kind, const char *name,
                 kir_expr *extent);
void kir_if(kir_kernel *k, kir_expr *cond);
void kir_else(kir_kernel *k);
void kir_end(kir_kernel *k);
kir_var *kir_let(kir_kernel *k, const char *name, kir_expr *value);
void kir_assign(kir_kernel *k, kir_var *v, kir_expr *value);
void kir_store(kir_kernel *k, kir_buf *b, kir_expr *index, kir_expr *value);
void kir_atomic_add(kir_kernel *k, kir_buf *b, kir_expr *index,
                    kir_expr *value);
void kir_barrier(kir_kernel *k);
void kir_block_reduce(kir_kernel *k, kir_op op, kir_buf *dst, kir_buf *src);
void kir_mma(kir_kernel *k, kir_buf *c, kir_buf *a, kir_buf *b, int m, int n,
             int kk);

/* ---- checking and printing ---- */

/* KILN_ERR_INTERNAL with "kernel 'name': <what is wrong> at <statement>"
 * for a malformed kernel: type mismatches, a variable used out of scope,
 * stores to read-only buffers, the parallel-structure rules above. */
kiln_status kir_verify(const kir_kernel *k, kiln_error *err);
/* The text form shown above (print.c's counterpart for kernels). */
void kir_print(strbuf *sb, const kir_kernel *k);
/* One expression; one statement's own line without its body or newline
 * ("grid b < 25:", "y[i] = x[i]"), as error messages quote them. */
void kir_print_expr(strbuf *sb, const kir_expr *e);
void kir_print_stmt_line(strbuf *sb, const kir_stmt *s);

/* ---- plans: one training step (or inference) as kernels ---- */

typedef enum kir_tensor_role {
  KIR_T_INPUT,   /* a graph input (node) */
  KIR_T_PARAM,   /* a parameter, buffer, optimizer state or EMA (param) */
  KIR_T_VALUE,   /* a node's output (node), gradients included */
  KIR_T_SCRATCH, /* lowering's own (BatchNorm's saved statistics, ...) */
} kir_tensor_role;

typedef struct kir_tensor {
  const char *name;
  kir_type type;
  int64_t count; /* elements, at the plan's batch */
  kir_tensor_role role;
  const ir_node *node;   /* INPUT, VALUE */
  const ir_param *param; /* PARAM */
  int alias;             /* >= 0: shares the storage of that tensor
                            (flatten, reshape); -1 otherwise */
} kir_tensor;

typedef struct kir_launch {
  kir_kernel *k;
  int *args;           /* per GLOBAL buffer of k: its tensor */
  const ir_node *node; /* the graph node it computes */
} kir_launch;

typedef enum kir_plan_mode {
  KIR_PLAN_TRAIN, /* forward (train mode), loss, grads, grad_norm, updates */
  KIR_PLAN_EVAL,  /* forward (eval mode) and loss */
} kir_plan_mode;

typedef struct kir_plan {
  arena *a;
  const ir_graph *g;
  int64_t batch;
  kir_plan_mode mode;
  int n_tensors, cap_tensors;
  kir_tensor *tensors;
  int n_launches, cap_launches;
  kir_launch *launches;
  /* launches [0, fwd_end) are the forward and the loss, [fwd_end,
   * bwd_end) the backward (grads, grad_norm), [bwd_end, n_launches) the
   * updates */
  int fwd_end, bwd_end;
  int *node_tensor;  /* per graph node id: its tensor, or -1 */
  int *param_tensor; /* per parameter, numbered over all nodes' params in
                        graph order: its tensor (see lower_param_tensor) */
} kir_plan;

/* Lowering (passes/lower.c) builds plans; see passes/lower.h. */

/* The text form of every kernel of a plan with its arguments, and the
 * number of kernels and bytes moved (`kiln dump --kernels`). */
void kir_plan_print(strbuf *sb, const kir_plan *p);

#endif
