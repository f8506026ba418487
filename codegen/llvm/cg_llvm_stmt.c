/* cg_llvm_stmt.c — kernel IR statements as LLVM control flow, and the
 * three functions each kernel becomes:
 *
 *   NAME.impl(T0 *noalias b0, ..., const kir_scalars *s, i64 begin, i64 end)
 *       internal, always inlined: the blocks [begin, end) of the grid;
 *   NAME(void **bufs, const kir_scalars *s, i64 begin, i64 end)
 *       the entry point: unpacks bufs and calls NAME.impl;
 *   NAME.grid(const kir_scalars *s) -> i64
 *       the number of blocks (product of the GRID extents).
 *
 * The buffers are parameters of .impl rather than loads from `bufs` so
 * that they can carry noalias: lowering binds a written buffer's tensor to
 * no other argument of the launch (rt_cpu_plan_init checks it), and
 * without that promise LLVM vectorises a loop that loads x[i] and stores
 * y[i] only behind run-time overlap checks, or not at all. (Two read-only
 * arguments may share a tensor; noalias allows that, as neither is
 * written.) */
#include "codegen/llvm/cg_llvm_impl.h"

#include <llvm-c/DebugInfo.h>

#include <string.h>

LLVMValueRef cg_entry_alloca(cg_ctx *c, LLVMTypeRef ty, int64_t count,
                             const char *name) {
  /* Allocas in the entry block are static: one stack slot for the whole
   * call, not one per loop iteration. */
  LLVMBuilderRef eb = LLVMCreateBuilderInContext(c->ctx);
  LLVMValueRef first = LLVMGetFirstInstruction(c->entry);
  if (first)
    LLVMPositionBuilderBefore(eb, first);
  else
    LLVMPositionBuilderAtEnd(eb, c->entry);
  LLVMValueRef v =
      count == 1
          ? LLVMBuildAlloca(eb, ty, name)
          : LLVMBuildArrayAlloca(
                eb, ty, LLVMConstInt(c->t.i64, (uint64_t)count, 0), name);
  if (count > 1)
    LLVMSetAlignment(v, 64);
  LLVMDisposeBuilder(eb);
  return v;
}

LLVMValueRef cg_loop_open(cg_ctx *c, cg_loop *l, LLVMValueRef begin,
                          LLVMValueRef end, const char *name) {
  l->slot = cg_entry_alloca(c, c->t.i64, 1, name);
  l->end = end;
  LLVMBuildStore(c->b, begin, l->slot);
  l->cond = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "loop");
  l->body = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "body");
  l->after = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "after");
  LLVMBuildBr(c->b, l->cond);
  LLVMPositionBuilderAtEnd(c->b, l->cond);
  LLVMValueRef i = LLVMBuildLoad2(c->b, c->t.i64, l->slot, name);
  LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, i, end, ""), l->body,
                  l->after);
  LLVMPositionBuilderAtEnd(c->b, l->body);
  return LLVMBuildLoad2(c->b, c->t.i64, l->slot, name);
}

/* The self-referential !llvm.loop node with one hint. */
static LLVMMetadataRef loop_hint(cg_ctx *c, const char *hint, bool with_true) {
  LLVMMetadataRef tmp = LLVMTemporaryMDNode(c->ctx, NULL, 0);
  LLVMMetadataRef opt[2] = {
      LLVMMDStringInContext2(c->ctx, hint, strlen(hint)),
      LLVMValueAsMetadata(LLVMConstInt(c->t.i1, 1, false))};
  LLVMMetadataRef opt_node =
      LLVMMDNodeInContext2(c->ctx, opt, with_true ? 2 : 1);
  LLVMMetadataRef ops[2] = {tmp, opt_node};
  LLVMMetadataRef node = LLVMMDNodeInContext2(c->ctx, ops, 2);
  LLVMMetadataReplaceAllUsesWith(tmp, node);
  return node;
}

/* The hints of a VECTOR loop of small constant extent (an image row of a
 * convolution tile: 7, 10, 14 columns): without them LLVM fully unrolls
 * it before the vectoriser runs, into scalar code with a branch per
 * element; with them it stays a loop and becomes one or two masked
 * vector iterations. Not for whole multiples of 8, which vectorise
 * without a tail (masking them measured slower). */
static LLVMMetadataRef short_vector_hints(cg_ctx *c) {
  static const char *const hints[] = {"llvm.loop.vectorize.enable",
                                      "llvm.loop.vectorize.predicate.enable",
                                      "llvm.loop.unroll.disable"};
  LLVMMetadataRef ops[4];
  ops[0] = LLVMTemporaryMDNode(c->ctx, NULL, 0);
  for (int i = 0; i < 3; i++) {
    LLVMMetadataRef opt[2] = {
        LLVMMDStringInContext2(c->ctx, hints[i], strlen(hints[i])),
        LLVMValueAsMetadata(LLVMConstInt(c->t.i1, 1, false))};
    ops[i + 1] = LLVMMDNodeInContext2(c->ctx, opt, i < 2 ? 2 : 1);
  }
  LLVMMetadataRef node = LLVMMDNodeInContext2(c->ctx, ops, 4);
  LLVMMetadataReplaceAllUsesWith(ops[0], node);
  return node;
}

void cg_loop_close(cg_ctx *c, cg_loop *l, kir_loop_kind kind) {
  LLVMValueRef i = LLVMBuildLoad2(c->b, c->t.i64, l->slot, "");
  LLVMBuildStore(c->b, LLVMBuildAdd(c->b, i, LLVMConstInt(c->t.i64, 1, 0), ""),
                 l->slot);
  LLVMValueRef br = LLVMBuildBr(c->b, l->cond);
  LLVMMetadataRef md = NULL;
  if (kind == KIR_LOOP_VECTOR && LLVMIsAConstantInt(l->end) &&
      LLVMConstIntGetSExtValue(l->end) <= 32 &&
      LLVMConstIntGetSExtValue(l->end) % 8 != 0)
    md = short_vector_hints(c);
  else if (kind == KIR_LOOP_VECTOR)
    md = loop_hint(c, "llvm.loop.vectorize.enable", true);
  else if (kind == KIR_LOOP_UNROLL)
    md = loop_hint(c, "llvm.loop.unroll.full", false);
  if (md)
    LLVMSetMetadata(br, c->md_loop, LLVMMetadataAsValue(c->ctx, md));
  LLVMPositionBuilderAtEnd(c->b, l->after);
}

static void stmt(cg_ctx *c, const kir_stmt *s);

static void seq(cg_ctx *c, const kir_stmt *s) {
  KILN_ASSERT(s->kind == KIR_S_SEQ);
  for (int i = 0; i < s->n; i++)
    stmt(c, s->body[i]);
}

static LLVMValueRef index_i64(cg_ctx *c, const kir_expr *e) {
  LLVMValueRef v = cg_expr(c, e);
  if (e->type == KIR_I64)
    return v;
  return e->type == KIR_U32 ? LLVMBuildZExt(c->b, v, c->t.i64, "")
                            : LLVMBuildSExt(c->b, v, c->t.i64, "");
}

static LLVMValueRef const_i64(cg_ctx *c, int64_t v) {
  return LLVMConstInt(c->t.i64, (uint64_t)v, true);
}

/* dst[0] = op over the block's threads of src[t * count + 0], in thread
 * order from thread 0 (the interpreter's order). */
static void block_reduce(cg_ctx *c, const kir_stmt *s) {
  KILN_ASSERT(!c->thread && s->src->space == KIR_LOCAL);
  LLVMTypeRef rt = cg_reg_type(&c->t, s->src->type);
  LLVMValueRef acc = cg_entry_alloca(c, rt, 1, "acc");
  LLVMValueRef stride = const_i64(c, s->src->count);
  LLVMValueRef base = c->buf_base[s->src->id];
  LLVMTypeRef mt = cg_mem_type(&c->t, s->src->type);
  LLVMBuildStore(c->b, cg_load_elem(c, s->src, base), acc);
  cg_loop l;
  LLVMValueRef t = cg_loop_open(c, &l, const_i64(c, 1),
                                const_i64(c, c->k->block_threads), "t");
  LLVMValueRef off = LLVMBuildMul(c->b, t, stride, "");
  LLVMValueRef x =
      cg_load_elem(c, s->src, LLVMBuildGEP2(c->b, mt, base, &off, 1, ""));
  LLVMValueRef a = LLVMBuildLoad2(c->b, rt, acc, "");
  LLVMBuildStore(c->b, cg_binary(c, s->reduce_op, s->src->type, a, x), acc);
  cg_loop_close(c, &l, KIR_LOOP_SERIAL);
  cg_store_elem(c, s->buf, cg_elem_ptr(c, s->buf, const_i64(c, 0)),
                LLVMBuildLoad2(c->b, rt, acc, ""));
}

/* C[m*N+n] += sum_k A[m*K+k] * B[k*N+n], accumulating in k order from C's
 * old value (fmuladd per step). */
static void mma(cg_ctx *c, const kir_stmt *s) {
  const kir_buf *cb = s->mma[0], *ab = s->mma[1], *bb = s->mma[2];
  LLVMValueRef acc = cg_entry_alloca(c, c->t.f32, 1, "acc");
  cg_loop lm, ln, lk;
  LLVMValueRef m =
      cg_loop_open(c, &lm, const_i64(c, 0), const_i64(c, s->mma_m), "m");
  LLVMValueRef n =
      cg_loop_open(c, &ln, const_i64(c, 0), const_i64(c, s->mma_n), "n");
  LLVMValueRef ci = LLVMBuildAdd(
      c->b, LLVMBuildMul(c->b, m, const_i64(c, s->mma_n), ""), n, "");
  LLVMValueRef cp = cg_elem_ptr(c, cb, ci);
  LLVMBuildStore(c->b, cg_load_elem(c, cb, cp), acc);
  LLVMValueRef k =
      cg_loop_open(c, &lk, const_i64(c, 0), const_i64(c, s->mma_k), "k");
  LLVMValueRef ai = LLVMBuildAdd(
      c->b, LLVMBuildMul(c->b, m, const_i64(c, s->mma_k), ""), k, "");
  LLVMValueRef bi = LLVMBuildAdd(
      c->b, LLVMBuildMul(c->b, k, const_i64(c, s->mma_n), ""), n, "");
  LLVMValueRef args[3] = {cg_load_elem(c, ab, cg_elem_ptr(c, ab, ai)),
                          cg_load_elem(c, bb, cg_elem_ptr(c, bb, bi)),
                          LLVMBuildLoad2(c->b, c->t.f32, acc, "")};
  LLVMBuildStore(c->b, cg_intrinsic(c, "llvm.fmuladd", c->t.f32, args, 3), acc);
  cg_loop_close(c, &lk, KIR_LOOP_SERIAL);
  cg_store_elem(c, cb, cg_elem_ptr(c, cb, ci),
                LLVMBuildLoad2(c->b, c->t.f32, acc, ""));
  cg_loop_close(c, &ln, KIR_LOOP_SERIAL);
  cg_loop_close(c, &lm, KIR_LOOP_SERIAL);
}

static void loop(cg_ctx *c, const kir_stmt *s) {
  KILN_ASSERT(s->loop_kind != KIR_LOOP_GRID && "GRID loop inside a block");
  LLVMValueRef end = cg_expr(c, s->extent);
  cg_loop l;
  LLVMValueRef i = cg_loop_open(c, &l, const_i64(c, 0), end, s->var->name);
  LLVMValueRef slot = cg_entry_alloca(c, c->t.i64, 1, s->var->name);
  c->var_slot[s->var->id] = slot;
  LLVMBuildStore(c->b, i, slot);
  LLVMValueRef outer = c->thread;
  if (s->loop_kind == KIR_LOOP_THREAD) {
    KILN_ASSERT(!outer && "thread loops nested");
    c->thread = i;
  }
  seq(c, s->then_);
  c->thread = outer;
  cg_loop_close(c, &l, s->loop_kind);
}

static void stmt(cg_ctx *c, const kir_stmt *s) {
  switch (s->kind) {
  case KIR_S_SEQ:
    seq(c, s);
    break;
  case KIR_S_LOOP:
    loop(c, s);
    break;
  case KIR_S_LET:
  case KIR_S_ASSIGN:
    /* A let is an assignment to a fresh slot. */
    if (s->kind == KIR_S_LET)
      c->var_slot[s->var->id] =
          cg_entry_alloca(c, cg_reg_type(&c->t, s->var->type), 1, s->var->name);
    KILN_ASSERT(c->var_slot[s->var->id] && "assignment out of scope");
    LLVMBuildStore(c->b, cg_expr(c, s->value), c->var_slot[s->var->id]);
    break;
  case KIR_S_STORE: {
    LLVMValueRef v = cg_expr(c, s->value);
    cg_store_elem(c, s->buf, cg_elem_ptr(c, s->buf, index_i64(c, s->index)), v);
    break;
  }
  case KIR_S_ATOMIC_ADD: {
    LLVMValueRef v = cg_expr(c, s->value);
    LLVMValueRef p = cg_elem_ptr(c, s->buf, index_i64(c, s->index));
    LLVMBuildAtomicRMW(c->b, LLVMAtomicRMWBinOpFAdd, p, v,
                       LLVMAtomicOrderingMonotonic, false);
    break;
  }
  case KIR_S_IF: {
    LLVMValueRef cond = cg_expr(c, s->cond);
    LLVMBasicBlockRef then_ =
        LLVMAppendBasicBlockInContext(c->ctx, c->fn, "then");
    LLVMBasicBlockRef else_ =
        LLVMAppendBasicBlockInContext(c->ctx, c->fn, "else");
    LLVMBasicBlockRef join =
        LLVMAppendBasicBlockInContext(c->ctx, c->fn, "endif");
    LLVMBuildCondBr(c->b, cond, then_, else_);
    LLVMPositionBuilderAtEnd(c->b, then_);
    seq(c, s->then_);
    LLVMBuildBr(c->b, join);
    LLVMPositionBuilderAtEnd(c->b, else_);
    if (s->else_)
      seq(c, s->else_);
    LLVMBuildBr(c->b, join);
    LLVMPositionBuilderAtEnd(c->b, join);
    break;
  }
  case KIR_S_BARRIER:
    /* Each thread loop runs to completion before the next statement. */
    break;
  case KIR_S_BLOCK_REDUCE:
    block_reduce(c, s);
    break;
  case KIR_S_MMA:
    mma(c, s);
    break;
  }
}

/* The chain of directly nested GRID loops at the top of the body. */
static int grid_chain(const kir_kernel *k, const kir_stmt **loops,
                      const kir_stmt **rest) {
  int n = 0;
  const kir_stmt *s = k->body;
  while (s->n == 1 && s->body[0]->kind == KIR_S_LOOP &&
         s->body[0]->loop_kind == KIR_LOOP_GRID) {
    KILN_ASSERT(n < 32);
    loops[n++] = s->body[0];
    s = s->body[0]->then_;
  }
  *rest = s;
  return n;
}

static LLVMValueRef add_fn(cg_ctx *c, const char *name, LLVMTypeRef ret,
                           LLVMTypeRef *params, unsigned n) {
  LLVMValueRef f =
      LLVMAddFunction(c->mod, name, LLVMFunctionType(ret, params, n, false));
  c->fn = f;
  c->entry = LLVMAppendBasicBlockInContext(c->ctx, f, "entry");
  LLVMPositionBuilderAtEnd(c->b, c->entry);
  return f;
}

/* Loads the scalar parameters into their variables' slots. */
static void bind_scalars(cg_ctx *c, LLVMValueRef s) {
  for (int i = 0; i < c->k->n_vars; i++) {
    const kir_var *v = c->k->vars[i];
    if (v->role == KIR_SCALAR_NONE)
      continue;
    unsigned field = v->role == KIR_SCALAR_SEED   ? 0
                     : v->role == KIR_SCALAR_STEP ? 1
                                                  : 2;
    LLVMTypeRef ft = field == 2 ? c->t.f32 : c->t.i64;
    LLVMValueRef p = LLVMBuildStructGEP2(c->b, c->t.scalars, s, field, "");
    LLVMValueRef slot = cg_entry_alloca(c, ft, 1, v->name);
    LLVMBuildStore(c->b, LLVMBuildLoad2(c->b, ft, p, v->name), slot);
    c->var_slot[v->id] = slot;
  }
}

void cg_render_kernel(cg_ctx *c, const kir_kernel *k, const char *name) {
  arena *a = c->a;
  c->k = k;
  c->thread = NULL;
  const kir_stmt *loops[32], *rest;
  int n_grid = grid_chain(k, loops, &rest);
  int n_glob = 0;
  while (n_glob < k->n_bufs && k->bufs[n_glob]->space == KIR_GLOBAL)
    n_glob++;
  unsigned attr_noalias = LLVMGetEnumAttributeKindForName("noalias", 7);
  unsigned attr_inline = LLVMGetEnumAttributeKindForName("alwaysinline", 12);

  /* NAME.grid */
  c->var_slot = ARENA_ARRAY(a, LLVMValueRef, k->n_vars + 1);
  c->buf_base = ARENA_ARRAY(a, LLVMValueRef, k->n_bufs + 1);
  add_fn(c, arena_printf(a, "%s.grid", name), c->t.i64, &c->t.scalars_ptr, 1);
  bind_scalars(c, LLVMGetParam(c->fn, 0));
  LLVMValueRef total = const_i64(c, 1);
  for (int i = 0; i < n_grid; i++)
    total = LLVMBuildMul(c->b, total, cg_expr(c, loops[i]->extent), "");
  LLVMBuildRet(c->b, total);

  /* NAME.impl */
  LLVMTypeRef *pt = ARENA_ARRAY(a, LLVMTypeRef, n_glob + 3);
  for (int i = 0; i < n_glob; i++)
    pt[i] = LLVMPointerType(cg_mem_type(&c->t, k->bufs[i]->type), 0);
  pt[n_glob] = c->t.scalars_ptr;
  pt[n_glob + 1] = pt[n_glob + 2] = c->t.i64;
  c->var_slot = ARENA_ARRAY(a, LLVMValueRef, k->n_vars + 1);
  LLVMValueRef impl = add_fn(c, arena_printf(a, "%s.impl", name), c->t.vd, pt,
                             (unsigned)n_glob + 3);
  LLVMSetLinkage(impl, LLVMInternalLinkage);
  LLVMAddAttributeAtIndex(impl, LLVMAttributeFunctionIndex,
                          LLVMCreateEnumAttribute(c->ctx, attr_inline, 0));
  /* LLVM keeps to 256-bit vectors on AVX-512 hosts by default (a guard
   * against the clock drop of older cores); the kernels' vector loops are
   * load- and FMA-bound, and measured faster with whole 512-bit vectors.
   * Harmless where the host has no wider registers. */
  static const char pvw[] = "prefer-vector-width", w512[] = "512";
  LLVMAddAttributeAtIndex(impl, LLVMAttributeFunctionIndex,
                          LLVMCreateStringAttribute(c->ctx, pvw, sizeof pvw - 1,
                                                    w512, sizeof w512 - 1));
  for (int i = 0; i < k->n_bufs; i++) {
    const kir_buf *b = k->bufs[i];
    if (i < n_glob) {
      LLVMAddAttributeAtIndex(impl, (unsigned)i + 1,
                              LLVMCreateEnumAttribute(c->ctx, attr_noalias, 0));
      c->buf_base[i] = LLVMGetParam(impl, (unsigned)i);
    } else {
      int64_t count = b->count * (b->space == KIR_LOCAL && k->block_threads > 0
                                      ? k->block_threads
                                      : 1);
      c->buf_base[i] = cg_entry_alloca(c, cg_mem_type(&c->t, b->type),
                                       count < 2 ? 2 : count, b->name);
    }
  }
  bind_scalars(c, LLVMGetParam(impl, (unsigned)n_glob));
  LLVMValueRef begin = LLVMGetParam(impl, (unsigned)n_glob + 1);
  LLVMValueRef end = LLVMGetParam(impl, (unsigned)n_glob + 2);
  LLVMValueRef *ext = ARENA_ARRAY(a, LLVMValueRef, n_grid + 1);
  for (int i = 0; i < n_grid; i++)
    ext[i] = cg_expr(c, loops[i]->extent);
  cg_loop gl;
  LLVMValueRef flat = cg_loop_open(c, &gl, begin, end, "block");
  /* Innermost grid variable varies fastest. */
  for (int i = n_grid - 1; i >= 0; i--) {
    LLVMValueRef slot = cg_entry_alloca(c, c->t.i64, 1, loops[i]->var->name);
    c->var_slot[loops[i]->var->id] = slot;
    LLVMBuildStore(c->b, LLVMBuildSRem(c->b, flat, ext[i], ""), slot);
    flat = LLVMBuildSDiv(c->b, flat, ext[i], "");
  }
  seq(c, rest);
  cg_loop_close(c, &gl, KIR_LOOP_SERIAL);
  LLVMBuildRetVoid(c->b);

  /* NAME: the entry point */
  LLVMTypeRef bufs_t = LLVMPointerType(LLVMPointerType(c->t.i8, 0), 0);
  LLVMTypeRef et[4] = {bufs_t, c->t.scalars_ptr, c->t.i64, c->t.i64};
  LLVMValueRef fn = add_fn(c, name, c->t.vd, et, 4);
  LLVMValueRef *args = ARENA_ARRAY(a, LLVMValueRef, n_glob + 3);
  for (int i = 0; i < n_glob; i++) {
    LLVMValueRef idx = const_i64(c, i);
    LLVMValueRef p =
        LLVMBuildLoad2(c->b, LLVMPointerType(c->t.i8, 0),
                       LLVMBuildGEP2(c->b, LLVMPointerType(c->t.i8, 0),
                                     LLVMGetParam(fn, 0), &idx, 1, ""),
                       k->bufs[i]->name);
    args[i] = LLVMBuildBitCast(c->b, p, pt[i], "");
  }
  for (int i = 0; i < 3; i++)
    args[n_glob + i] = LLVMGetParam(fn, (unsigned)i + 1);
  LLVMBuildCall2(c->b, LLVMGlobalGetValueType(impl), impl, args,
                 (unsigned)n_glob + 3, "");
  LLVMBuildRetVoid(c->b);
}
