/* cg_llvm_impl.h — what the LLVM renderer's files share: the rendering
 * state of one kernel and the helpers that build loops and values. Only
 * codegen/llvm/ includes it (it pulls in the LLVM-C headers). */
#ifndef KILN_CODEGEN_LLVM_IMPL_H
#define KILN_CODEGEN_LLVM_IMPL_H

#include "codegen/llvm/cg_llvm.h"

#include <llvm-c/Core.h>

/* LLVM types the renderer uses, made once per module. */
typedef struct cg_types {
  LLVMTypeRef i1, i8, i32, i64, f32, vd;
  LLVMTypeRef scalars;     /* { i64 seed, i64 step, float lr }: kir_scalars */
  LLVMTypeRef scalars_ptr; /* pointer to it */
} cg_types;

/* The state of rendering one kernel. Every kernel variable lives in an
 * alloca of the entry block (mem2reg promotes them), so lets, assignments
 * and loop variables need no SSA bookkeeping here. */
typedef struct cg_ctx {
  LLVMContextRef ctx;
  LLVMModuleRef mod;
  LLVMBuilderRef b;
  cg_types t;
  const kir_kernel *k;
  LLVMValueRef fn;
  LLVMBasicBlockRef entry; /* allocas go here */
  LLVMValueRef *var_slot;  /* per var id: its alloca */
  LLVMValueRef *buf_base;  /* per buf id: element pointer */
  LLVMValueRef thread;     /* inside a THREAD loop: its index (i64) */
  LLVMValueRef philox;     /* the module's philox function, on first use */
  unsigned md_loop;        /* the "llvm.loop" metadata kind */
  arena *a;                /* rendering scratch (names, slot arrays) */
} cg_ctx;

/* A counted loop [begin, end) under construction. */
typedef struct cg_loop {
  LLVMValueRef slot, end;
  LLVMBasicBlockRef cond, body, after;
} cg_loop;

/* cg_llvm_expr.c */
void cg_types_init(cg_types *t, LLVMContextRef ctx);
/* Register type of a kernel IR type (bool: i1) and its memory type (bool:
 * i8, as kir_type_size says). */
LLVMTypeRef cg_reg_type(const cg_types *t, kir_type ty);
LLVMTypeRef cg_mem_type(const cg_types *t, kir_type ty);
LLVMValueRef cg_expr(cg_ctx *c, const kir_expr *e);
/* Pointer to element `index` (any integer type) of buffer b: LOCAL
 * buffers are offset by the current thread. */
LLVMValueRef cg_elem_ptr(cg_ctx *c, const kir_buf *b, LLVMValueRef index);
LLVMValueRef cg_load_elem(cg_ctx *c, const kir_buf *b, LLVMValueRef ptr);
void cg_store_elem(cg_ctx *c, const kir_buf *b, LLVMValueRef ptr,
                   LLVMValueRef v);
/* op(a, b) for KIR_ADD / KIR_MAX on values of type ty (block reduce). */
LLVMValueRef cg_binary(cg_ctx *c, kir_op op, kir_type ty, LLVMValueRef a,
                       LLVMValueRef b);
LLVMValueRef cg_intrinsic(cg_ctx *c, const char *name, LLVMTypeRef ty,
                          LLVMValueRef *args, unsigned n);

/* cg_llvm_stmt.c */
LLVMValueRef cg_entry_alloca(cg_ctx *c, LLVMTypeRef ty, int64_t count,
                             const char *name);
/* Opens a loop and returns its index (i64) inside the body; kind chooses
 * the loop metadata at cg_loop_close (KIR_LOOP_SERIAL: none). */
LLVMValueRef cg_loop_open(cg_ctx *c, cg_loop *l, LLVMValueRef begin,
                          LLVMValueRef end, const char *name);
void cg_loop_close(cg_ctx *c, cg_loop *l, kir_loop_kind kind);
/* Renders kernel k as the internal function NAME.impl and the external
 * entry point NAME (see cg_llvm.h), plus NAME.grid returning the number
 * of blocks. */
void cg_render_kernel(cg_ctx *c, const kir_kernel *k, const char *name);

#endif
