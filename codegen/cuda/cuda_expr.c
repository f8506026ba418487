/* cuda_expr.c — kernel IR expressions as CUDA C.
 *
 * The walk is generic; what is CUDA about it is the spelling table below
 * (operators and math functions per type), so a C-like renderer for
 * another target changes the table, not the walk. Output is fully
 * parenthesised: the kernel IR's tree shape is the evaluation order, and
 * C's precedence rules never get a say.
 *
 * Exactness: float constants are printed with 9 significant digits (enough
 * to round-trip any float) or as bit patterns for inf/NaN; integer
 * constants carry their C type (LL, u) so that arithmetic happens in the
 * kernel IR's type, never in a promoted one. */
#include "codegen/cuda/cuda.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const type_spell[KIR_TYPE_COUNT] = {
    [KIR_BOOL] = "bool",    [KIR_I32] = "int",   [KIR_I64] = "long long",
    [KIR_U32] = "unsigned", [KIR_F32] = "float",
};

const char *cg_cuda_type(kir_type t) {
  KILN_ASSERT(t >= 0 && t < KIR_TYPE_COUNT);
  return type_spell[t];
}

/* How each op is written: an infix/prefix operator (with a separate one for
 * bool operands where C differs), or a function per operand type. The
 * integer min/max/abs overloads are CUDA device built-ins, like the f32
 * math functions, so no header is needed. */
typedef struct op_spell {
  const char *op;      /* operator for integer/float operands */
  const char *bool_op; /* operator for bool operands, when different */
  const char *fn[KIR_TYPE_COUNT];
} op_spell;

#define F32_FN(name)                                                           \
  {                                                                            \
    .fn = { [KIR_F32] = name }                                                 \
  }

static const op_spell spell[KIR_OP_COUNT] = {
    [KIR_NEG] = {.op = "-"},
    [KIR_NOT] = {.op = "!", .bool_op = "!"},
    [KIR_ABS] =
        {.fn = {[KIR_F32] = "fabsf", [KIR_I32] = "abs", [KIR_I64] = "llabs"}},
    [KIR_EXP] = F32_FN("expf"),
    [KIR_LOG] = F32_FN("logf"),
    [KIR_TANH] = F32_FN("tanhf"),
    [KIR_ERF] = F32_FN("erff"),
    [KIR_SQRT] = F32_FN("sqrtf"),
    [KIR_RSQRT] = F32_FN("rsqrtf"),
    [KIR_FLOOR] = F32_FN("floorf"),
    [KIR_ADD] = {.op = "+"},
    [KIR_SUB] = {.op = "-"},
    [KIR_MUL] = {.op = "*"},
    [KIR_DIV] = {.op = "/"},
    [KIR_MOD] = {.op = "%"},
    [KIR_MIN] = {.fn = {[KIR_F32] = "fminf",
                        [KIR_I32] = "min",
                        [KIR_I64] = "min",
                        [KIR_U32] = "min"}},
    [KIR_MAX] = {.fn = {[KIR_F32] = "fmaxf",
                        [KIR_I32] = "max",
                        [KIR_I64] = "max",
                        [KIR_U32] = "max"}},
    [KIR_POW] = F32_FN("powf"),
    [KIR_AND] = {.op = "&", .bool_op = "&&"},
    [KIR_OR] = {.op = "|", .bool_op = "||"},
    [KIR_XOR] = {.op = "^", .bool_op = "!="},
    [KIR_SHL] = {.op = "<<"},
    [KIR_SHR] = {.op = ">>"}, /* logical on unsigned, arithmetic on signed */
    [KIR_LT] = {.op = "<"},
    [KIR_LE] = {.op = "<="},
    [KIR_EQ] = {.op = "=="},
    [KIR_NE] = {.op = "!="},
};

/* Philox4x32-10 keyed by (seed, stream, index), word for word the mapping
 * of support/philox.c: key = seed halves, counter = (index / 4, stream),
 * word index % 4, top 24 bits times 2^-24. __umulhi is the high half of
 * the 32x32 product; the low half is an ordinary (wrapping) multiply. */
const char cg_cuda_philox_src[] =
    "static __device__ __forceinline__ float kiln_philox_uniform(\n"
    "    unsigned long long seed, unsigned long long stream,\n"
    "    unsigned long long index) {\n"
    "  const unsigned long long block = index >> 2;\n"
    "  unsigned c0 = (unsigned)block, c1 = (unsigned)(block >> 32);\n"
    "  unsigned c2 = (unsigned)stream, c3 = (unsigned)(stream >> 32);\n"
    "  unsigned k0 = (unsigned)seed, k1 = (unsigned)(seed >> 32);\n"
    "#pragma unroll\n"
    "  for (int r = 0; r < 10; r++) {\n"
    "    if (r > 0) {\n"
    "      k0 += 0x9E3779B9u;\n"
    "      k1 += 0xBB67AE85u;\n"
    "    }\n"
    "    const unsigned hi0 = __umulhi(0xD2511F53u, c0);\n"
    "    const unsigned lo0 = 0xD2511F53u * c0;\n"
    "    const unsigned hi1 = __umulhi(0xCD9E8D57u, c2);\n"
    "    const unsigned lo1 = 0xCD9E8D57u * c2;\n"
    "    c0 = hi1 ^ c1 ^ k0;\n"
    "    c1 = lo1;\n"
    "    c2 = hi0 ^ c3 ^ k1;\n"
    "    c3 = lo0;\n"
    "  }\n"
    "  const unsigned lane = (unsigned)(index & 3);\n"
    "  const unsigned w = lane == 0 ? c0 : lane == 1 ? c1 : lane == 2 ? c2 "
    ": c3;\n"
    "  return (float)(w >> 8) * 5.9604644775390625e-8f; /* 2^-24 */\n"
    "}\n";

static void put_float(strbuf *sb, float f) {
  uint32_t bits;
  memcpy(&bits, &f, sizeof bits);
  if (!isfinite(f)) {
    /* No literal spells inf or NaN; the bit pattern keeps NaN payloads. */
    strbuf_printf(sb, "__uint_as_float(0x%08" PRIx32 "u)", bits);
    return;
  }
  char buf[48];
  snprintf(buf, sizeof buf, "%.9g", (double)f);
  bool has_point = strpbrk(buf, ".e") != NULL;
  strbuf_printf(sb, buf[0] == '-' ? "(%s%sf)" : "%s%sf", buf,
                has_point ? "" : ".0");
}

static void put_int(strbuf *sb, kir_type t, int64_t v) {
  switch (t) {
  case KIR_BOOL:
    strbuf_puts(sb, v ? "true" : "false");
    return;
  case KIR_I32:
    if (v == INT32_MIN)
      strbuf_puts(sb, "(-2147483647 - 1)");
    else
      strbuf_printf(sb, v < 0 ? "(%" PRId64 ")" : "%" PRId64, v);
    return;
  case KIR_I64:
    if (v == INT64_MIN)
      strbuf_puts(sb, "(-9223372036854775807LL - 1LL)");
    else
      strbuf_printf(sb, v < 0 ? "(%" PRId64 "LL)" : "%" PRId64 "LL", v);
    return;
  case KIR_U32:
    strbuf_printf(sb, "%" PRIu32 "u", (uint32_t)v);
    return;
  default:
    KILN_ASSERT(!"integer constant of a float type");
  }
}

void cg_cuda_expr(strbuf *sb, const cg_cuda_names *nm, const kir_expr *e) {
  KILN_ASSERT(e);
  switch (e->op) {
  case KIR_CONST:
    if (e->type == KIR_F32)
      put_float(sb, e->f);
    else
      put_int(sb, e->type, e->i);
    return;
  case KIR_VAR:
    strbuf_puts(sb, nm->var[e->var->id]);
    return;
  case KIR_LOAD:
    strbuf_printf(sb, "%s[", nm->buf[e->buf->id]);
    cg_cuda_expr(sb, nm, e->a[0]);
    strbuf_putc(sb, ']');
    return;
  case KIR_SELECT:
    strbuf_putc(sb, '(');
    for (int i = 0; i < 3; i++) {
      cg_cuda_expr(sb, nm, e->a[i]);
      strbuf_puts(sb, i == 0 ? " ? " : i == 1 ? " : " : ")");
    }
    return;
  case KIR_CAST:
    strbuf_printf(sb, "((%s)", cg_cuda_type(e->type));
    cg_cuda_expr(sb, nm, e->a[0]);
    strbuf_putc(sb, ')');
    return;
  case KIR_PHILOX:
    /* i64 operands read as u64: the conversion keeps the bits. */
    strbuf_puts(sb, "kiln_philox_uniform(");
    for (int i = 0; i < 3; i++) {
      strbuf_puts(sb, "(unsigned long long)");
      cg_cuda_expr(sb, nm, e->a[i]);
      strbuf_puts(sb, i < 2 ? ", " : ")");
    }
    return;
  default:
    break;
  }
  KILN_ASSERT(e->op > KIR_LOAD && e->op < KIR_OP_COUNT);
  const op_spell *sp = &spell[e->op];
  int arity = kir_op_arity(e->op);
  kir_type operand = e->a[0]->type;
  const char *op = operand == KIR_BOOL && sp->bool_op ? sp->bool_op : sp->op;
  if (op && arity == 1) {
    strbuf_printf(sb, "(%s", op);
    cg_cuda_expr(sb, nm, e->a[0]);
    strbuf_putc(sb, ')');
  } else if (op) {
    strbuf_putc(sb, '(');
    cg_cuda_expr(sb, nm, e->a[0]);
    strbuf_printf(sb, " %s ", op);
    cg_cuda_expr(sb, nm, e->a[1]);
    strbuf_putc(sb, ')');
  } else {
    const char *fn = sp->fn[operand];
    KILN_ASSERT(fn && "no CUDA spelling for this op and type");
    strbuf_printf(sb, "%s(", fn);
    for (int i = 0; i < arity; i++) {
      if (i)
        strbuf_puts(sb, ", ");
      cg_cuda_expr(sb, nm, e->a[i]);
    }
    strbuf_putc(sb, ')');
  }
}

unsigned cg_cuda_expr_needs(const kir_expr *e) {
  if (!e)
    return 0;
  unsigned need = e->op == KIR_PHILOX ? CG_CUDA_NEED_PHILOX : 0;
  for (int i = 0; i < 3; i++)
    need |= cg_cuda_expr_needs(e->a[i]);
  return need;
}
