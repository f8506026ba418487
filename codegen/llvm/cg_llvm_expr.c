/* cg_llvm_expr.c — kernel IR expressions as LLVM instructions: the op
 * table of the LLVM renderer, buffer addressing, and Philox4x32-10 as an
 * inlined integer function.
 *
 * Integer signedness lives in the kernel IR type (u32 divides, shifts and
 * compares unsigned, i32/i64 signed), because LLVM integers have none. */
#include "codegen/llvm/cg_llvm_impl.h"

#include <string.h>

void cg_types_init(cg_types *t, LLVMContextRef ctx) {
  t->i1 = LLVMInt1TypeInContext(ctx);
  t->i8 = LLVMInt8TypeInContext(ctx);
  t->i32 = LLVMInt32TypeInContext(ctx);
  t->i64 = LLVMInt64TypeInContext(ctx);
  t->f32 = LLVMFloatTypeInContext(ctx);
  t->vd = LLVMVoidTypeInContext(ctx);
  LLVMTypeRef fields[3] = {t->i64, t->i64, t->f32};
  t->scalars = LLVMStructTypeInContext(ctx, fields, 3, false);
  t->scalars_ptr = LLVMPointerType(t->scalars, 0);
}

LLVMTypeRef cg_reg_type(const cg_types *t, kir_type ty) {
  switch (ty) {
  case KIR_BOOL:
    return t->i1;
  case KIR_I32:
  case KIR_U32:
    return t->i32;
  case KIR_I64:
    return t->i64;
  case KIR_F32:
    return t->f32;
  default:
    KILN_ASSERT(!"bad kernel IR type");
  }
  return NULL;
}

LLVMTypeRef cg_mem_type(const cg_types *t, kir_type ty) {
  return ty == KIR_BOOL ? t->i8 : cg_reg_type(t, ty);
}

static bool is_signed(kir_type t) {
  return t == KIR_I32 || t == KIR_I64;
}

LLVMValueRef cg_intrinsic(cg_ctx *c, const char *name, LLVMTypeRef ty,
                          LLVMValueRef *args, unsigned n) {
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  KILN_ASSERT(id != 0);
  LLVMValueRef f = LLVMGetIntrinsicDeclaration(c->mod, id, &ty, 1);
  LLVMTypeRef fty = LLVMIntrinsicGetType(c->ctx, id, &ty, 1);
  return LLVMBuildCall2(c->b, fty, f, args, n, "");
}

/* A float function of libm (tanhf, erff), resolved by the JIT. */
static LLVMValueRef call_libm(cg_ctx *c, const char *name, LLVMValueRef x) {
  LLVMTypeRef fty = LLVMFunctionType(c->t.f32, &c->t.f32, 1, false);
  LLVMValueRef f = LLVMGetNamedFunction(c->mod, name);
  if (!f) {
    f = LLVMAddFunction(c->mod, name, fty);
    /* readnone lets LLVM hoist and CSE the call like an intrinsic. */
    unsigned kind = LLVMGetEnumAttributeKindForName("readnone", 8);
    LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex,
                            LLVMCreateEnumAttribute(c->ctx, kind, 0));
  }
  return LLVMBuildCall2(c->b, fty, f, &x, 1, "");
}

/* ---- buffers ---- */

static LLVMValueRef to_i64(cg_ctx *c, LLVMValueRef v, kir_type ty) {
  if (ty == KIR_I64)
    return v;
  return ty == KIR_U32 ? LLVMBuildZExt(c->b, v, c->t.i64, "")
                       : LLVMBuildSExt(c->b, v, c->t.i64, "");
}

LLVMValueRef cg_elem_ptr(cg_ctx *c, const kir_buf *b, LLVMValueRef index) {
  LLVMValueRef base = c->buf_base[b->id];
  KILN_ASSERT(base);
  if (b->space == KIR_LOCAL && c->k->block_threads > 0) {
    /* Per-thread copies are laid out thread-major: [t * count + i]
     * (without threads, a LOCAL buffer has the one copy). */
    KILN_ASSERT(c->thread && "LOCAL buffer used outside a thread loop");
    LLVMValueRef off = LLVMBuildMul(
        c->b, c->thread, LLVMConstInt(c->t.i64, (uint64_t)b->count, false), "");
    index = LLVMBuildAdd(c->b, off, index, "");
  }
  return LLVMBuildGEP2(c->b, cg_mem_type(&c->t, b->type), base, &index, 1, "");
}

LLVMValueRef cg_load_elem(cg_ctx *c, const kir_buf *b, LLVMValueRef ptr) {
  LLVMValueRef v = LLVMBuildLoad2(c->b, cg_mem_type(&c->t, b->type), ptr, "");
  if (b->type == KIR_BOOL)
    v = LLVMBuildICmp(c->b, LLVMIntNE, v, LLVMConstInt(c->t.i8, 0, false), "");
  return v;
}

void cg_store_elem(cg_ctx *c, const kir_buf *b, LLVMValueRef ptr,
                   LLVMValueRef v) {
  if (b->type == KIR_BOOL)
    v = LLVMBuildZExt(c->b, v, c->t.i8, "");
  LLVMBuildStore(c->b, v, ptr);
}

/* ---- Philox4x32-10 ---- */

/* Builds `float kiln.philox(i64 seed, i64 stream, i64 index)`, the same
 * mapping as support/philox.c's philox_uniform word for word (see there):
 * key = seed's halves, counter = {index / 4, stream} as 32-bit words, ten
 * rounds, word index % 4, its top 24 bits times 2^-24. Internal and
 * always inlined, so O3 sees plain integer code. */
static LLVMValueRef philox_fn(cg_ctx *c) {
  if (c->philox)
    return c->philox;
  const cg_types *t = &c->t;
  LLVMTypeRef params[3] = {t->i64, t->i64, t->i64};
  LLVMTypeRef fty = LLVMFunctionType(t->f32, params, 3, false);
  LLVMValueRef f = LLVMAddFunction(c->mod, "kiln.philox", fty);
  LLVMSetLinkage(f, LLVMInternalLinkage);
  unsigned kind = LLVMGetEnumAttributeKindForName("alwaysinline", 12);
  LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex,
                          LLVMCreateEnumAttribute(c->ctx, kind, 0));
  LLVMBuilderRef saved = c->b;
  LLVMBuilderRef b = LLVMCreateBuilderInContext(c->ctx);
  LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(c->ctx, f, ""));
  LLVMValueRef seed = LLVMGetParam(f, 0), stream = LLVMGetParam(f, 1),
               index = LLVMGetParam(f, 2);
  LLVMValueRef c32 = LLVMConstInt(t->i64, 32, false);
#define LO(v) LLVMBuildTrunc(b, (v), t->i32, "")
#define HI(v) LLVMBuildTrunc(b, LLVMBuildLShr(b, (v), c32, ""), t->i32, "")
  LLVMValueRef block = LLVMBuildLShr(b, index, LLVMConstInt(t->i64, 2, 0), "");
  LLVMValueRef k0 = LO(seed), k1 = HI(seed);
  LLVMValueRef w[4] = {LO(block), HI(block), LO(stream), HI(stream)};
  LLVMValueRef m0 = LLVMConstInt(t->i64, 0xD2511F53u, false);
  LLVMValueRef m1 = LLVMConstInt(t->i64, 0xCD9E8D57u, false);
  for (int r = 0; r < 10; r++) {
    if (r > 0) {
      k0 = LLVMBuildAdd(b, k0, LLVMConstInt(t->i32, 0x9E3779B9u, false), "");
      k1 = LLVMBuildAdd(b, k1, LLVMConstInt(t->i32, 0xBB67AE85u, false), "");
    }
    LLVMValueRef p0 =
        LLVMBuildMul(b, LLVMBuildZExt(b, w[0], t->i64, ""), m0, "");
    LLVMValueRef p1 =
        LLVMBuildMul(b, LLVMBuildZExt(b, w[2], t->i64, ""), m1, "");
    LLVMValueRef n0 =
        LLVMBuildXor(b, LLVMBuildXor(b, HI(p1), w[1], ""), k0, "");
    LLVMValueRef n2 =
        LLVMBuildXor(b, LLVMBuildXor(b, HI(p0), w[3], ""), k1, "");
    w[0] = n0;
    w[1] = LO(p1);
    w[2] = n2;
    w[3] = LO(p0);
  }
#undef LO
#undef HI
  LLVMValueRef lane = LLVMBuildAnd(b, index, LLVMConstInt(t->i64, 3, 0), "");
  LLVMValueRef word = w[3];
  for (int i = 2; i >= 0; i--) {
    LLVMValueRef is = LLVMBuildICmp(b, LLVMIntEQ, lane,
                                    LLVMConstInt(t->i64, (unsigned)i, 0), "");
    word = LLVMBuildSelect(b, is, w[i], word, "");
  }
  /* (float)(x >> 8) * 2^-24: both steps exact. */
  LLVMValueRef top = LLVMBuildLShr(b, word, LLVMConstInt(t->i32, 8, 0), "");
  LLVMValueRef u = LLVMBuildFMul(b, LLVMBuildUIToFP(b, top, t->f32, ""),
                                 LLVMConstReal(t->f32, 0x1p-24), "");
  LLVMBuildRet(b, u);
  LLVMDisposeBuilder(b);
  c->b = saved;
  c->philox = f;
  return f;
}

/* ---- expressions ---- */

static LLVMValueRef cast(cg_ctx *c, LLVMValueRef v, kir_type from,
                         kir_type to) {
  LLVMBuilderRef b = c->b;
  LLVMTypeRef rt = cg_reg_type(&c->t, to);
  if (from == to)
    return v;
  if (to == KIR_BOOL)
    return from == KIR_F32 ? LLVMBuildFCmp(b, LLVMRealUNE, v,
                                           LLVMConstReal(c->t.f32, 0), "")
                           : LLVMBuildICmp(b, LLVMIntNE, v,
                                           LLVMConstNull(LLVMTypeOf(v)), "");
  if (to == KIR_F32)
    return from == KIR_BOOL || from == KIR_U32 ? LLVMBuildUIToFP(b, v, rt, "")
                                               : LLVMBuildSIToFP(b, v, rt, "");
  if (from == KIR_F32) /* C truncation toward zero */
    return to == KIR_U32 ? LLVMBuildFPToUI(b, v, rt, "")
                         : LLVMBuildFPToSI(b, v, rt, "");
  /* integer to integer: widen by the source's signedness, else truncate */
  unsigned fw = LLVMGetIntTypeWidth(LLVMTypeOf(v)),
           tw = LLVMGetIntTypeWidth(rt);
  if (fw == tw)
    return v;
  if (fw > tw)
    return LLVMBuildTrunc(b, v, rt, "");
  return is_signed(from) ? LLVMBuildSExt(b, v, rt, "")
                         : LLVMBuildZExt(b, v, rt, "");
}

LLVMValueRef cg_binary(cg_ctx *c, kir_op op, kir_type ty, LLVMValueRef x,
                       LLVMValueRef y) {
  LLVMBuilderRef b = c->b;
  bool f = ty == KIR_F32, s = is_signed(ty);
  LLVMValueRef args[2] = {x, y};
  switch (op) {
  case KIR_ADD:
    return f ? LLVMBuildFAdd(b, x, y, "") : LLVMBuildAdd(b, x, y, "");
  case KIR_SUB:
    return f ? LLVMBuildFSub(b, x, y, "") : LLVMBuildSub(b, x, y, "");
  case KIR_MUL:
    return f ? LLVMBuildFMul(b, x, y, "") : LLVMBuildMul(b, x, y, "");
  case KIR_DIV:
    return f   ? LLVMBuildFDiv(b, x, y, "")
           : s ? LLVMBuildSDiv(b, x, y, "")
               : LLVMBuildUDiv(b, x, y, "");
  case KIR_MOD:
    return f   ? LLVMBuildFRem(b, x, y, "")
           : s ? LLVMBuildSRem(b, x, y, "")
               : LLVMBuildURem(b, x, y, "");
  case KIR_MIN:
  case KIR_MAX: {
    if (f)
      return cg_intrinsic(c, op == KIR_MIN ? "llvm.minnum" : "llvm.maxnum",
                          c->t.f32, args, 2);
    LLVMIntPredicate p = s ? LLVMIntSLT : LLVMIntULT;
    LLVMValueRef lt = LLVMBuildICmp(b, p, x, y, "");
    return op == KIR_MIN ? LLVMBuildSelect(b, lt, x, y, "")
                         : LLVMBuildSelect(b, lt, y, x, "");
  }
  case KIR_POW:
    return cg_intrinsic(c, "llvm.pow", c->t.f32, args, 2);
  case KIR_AND:
    return LLVMBuildAnd(b, x, y, "");
  case KIR_OR:
    return LLVMBuildOr(b, x, y, "");
  case KIR_XOR:
    return LLVMBuildXor(b, x, y, "");
  case KIR_SHL:
    return LLVMBuildShl(b, x, y, "");
  case KIR_SHR:
    return s ? LLVMBuildAShr(b, x, y, "") : LLVMBuildLShr(b, x, y, "");
  case KIR_LT:
  case KIR_LE:
  case KIR_EQ:
  case KIR_NE: {
    if (f) {
      /* Ordered except !=, which is true for NaN as in C. */
      static const LLVMRealPredicate fp[] = {LLVMRealOLT, LLVMRealOLE,
                                             LLVMRealOEQ, LLVMRealUNE};
      return LLVMBuildFCmp(b, fp[op - KIR_LT], x, y, "");
    }
    static const LLVMIntPredicate sp[] = {LLVMIntSLT, LLVMIntSLE, LLVMIntEQ,
                                          LLVMIntNE};
    static const LLVMIntPredicate up[] = {LLVMIntULT, LLVMIntULE, LLVMIntEQ,
                                          LLVMIntNE};
    return LLVMBuildICmp(b, s ? sp[op - KIR_LT] : up[op - KIR_LT], x, y, "");
  }
  default:
    KILN_ASSERT(!"not a binary kernel IR op");
  }
  return NULL;
}

static LLVMValueRef unary(cg_ctx *c, const kir_expr *e, LLVMValueRef x) {
  LLVMBuilderRef b = c->b;
  kir_type ty = e->a[0]->type;
  LLVMTypeRef rt = cg_reg_type(&c->t, ty);
  switch (e->op) {
  case KIR_NEG:
    return ty == KIR_F32 ? LLVMBuildFNeg(b, x, "") : LLVMBuildNeg(b, x, "");
  case KIR_NOT:
    return LLVMBuildNot(b, x, "");
  case KIR_ABS:
    if (ty == KIR_F32)
      return cg_intrinsic(c, "llvm.fabs", rt, &x, 1);
    return LLVMBuildSelect(
        b, LLVMBuildICmp(b, LLVMIntSLT, x, LLVMConstNull(rt), ""),
        LLVMBuildNeg(b, x, ""), x, "");
  case KIR_EXP:
    return cg_intrinsic(c, "llvm.exp", rt, &x, 1);
  case KIR_LOG:
    return cg_intrinsic(c, "llvm.log", rt, &x, 1);
  case KIR_SQRT:
    return cg_intrinsic(c, "llvm.sqrt", rt, &x, 1);
  case KIR_FLOOR:
    return cg_intrinsic(c, "llvm.floor", rt, &x, 1);
  case KIR_RSQRT:
    return LLVMBuildFDiv(b, LLVMConstReal(rt, 1.0),
                         cg_intrinsic(c, "llvm.sqrt", rt, &x, 1), "");
  case KIR_TANH:
    return call_libm(c, "tanhf", x);
  case KIR_ERF:
    return call_libm(c, "erff", x);
  default:
    KILN_ASSERT(!"not a unary kernel IR op");
  }
  return NULL;
}

LLVMValueRef cg_expr(cg_ctx *c, const kir_expr *e) {
  switch (e->op) {
  case KIR_CONST:
    if (e->type == KIR_F32)
      return LLVMConstReal(c->t.f32, (double)e->f);
    return LLVMConstInt(cg_reg_type(&c->t, e->type), (uint64_t)e->i,
                        is_signed(e->type));
  case KIR_VAR:
    KILN_ASSERT(c->var_slot[e->var->id] && "variable used out of scope");
    return LLVMBuildLoad2(c->b, cg_reg_type(&c->t, e->var->type),
                          c->var_slot[e->var->id], e->var->name);
  case KIR_LOAD: {
    LLVMValueRef i = to_i64(c, cg_expr(c, e->a[0]), e->a[0]->type);
    return cg_load_elem(c, e->buf, cg_elem_ptr(c, e->buf, i));
  }
  case KIR_SELECT: {
    LLVMValueRef cond = cg_expr(c, e->a[0]);
    LLVMValueRef x = cg_expr(c, e->a[1]), y = cg_expr(c, e->a[2]);
    return LLVMBuildSelect(c->b, cond, x, y, "");
  }
  case KIR_CAST:
    return cast(c, cg_expr(c, e->a[0]), e->a[0]->type, e->type);
  case KIR_PHILOX: {
    LLVMValueRef f = philox_fn(c);
    LLVMValueRef args[3];
    for (int i = 0; i < 3; i++)
      args[i] = cg_expr(c, e->a[i]);
    return LLVMBuildCall2(c->b, LLVMGlobalGetValueType(f), f, args, 3, "");
  }
  case KIR_ADD:
    /* a*b + c may round once (fmuladd): the only contraction allowed. */
    if (e->type == KIR_F32) {
      for (int m = 0; m < 2; m++) {
        const kir_expr *mul = e->a[m];
        if (mul->op != KIR_MUL || mul->type != KIR_F32)
          continue;
        LLVMValueRef args[3] = {cg_expr(c, mul->a[0]), cg_expr(c, mul->a[1]),
                                cg_expr(c, e->a[1 - m])};
        return cg_intrinsic(c, "llvm.fmuladd", c->t.f32, args, 3);
      }
    }
    break;
  default:
    break;
  }
  int arity = kir_op_arity(e->op);
  if (arity == 1)
    return unary(c, e, cg_expr(c, e->a[0]));
  KILN_ASSERT(arity == 2);
  LLVMValueRef x = cg_expr(c, e->a[0]), y = cg_expr(c, e->a[1]);
  return cg_binary(c, e->op, e->a[0]->type, x, y);
}
