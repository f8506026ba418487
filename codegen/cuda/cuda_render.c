/* cuda_render.c — one kernel IR kernel as a header-free CUDA C translation
 * unit for NVRTC.
 *
 * Needs: a kernel that passed kir_verify (GRID loops are an outer chain
 * with constant extents, thread loops only inside it, BARRIER,
 * BLOCK_REDUCE and MMA between thread loops).
 * Guarantees: the text compiles with NVRTC without any include path, names
 * are the kernel IR's own (made unique and kept clear of C++ keywords and
 * CUDA built-ins), and the launch geometry the code assumes is what
 * cg_cuda_launch_for returns.
 *
 * Mapping (see ir/kernel.h for the CPU meaning of each construct):
 *  - GRID chain: flattened into one block index (blockIdx.x), split back
 *    into the loop variables by division; a grid-stride loop when the
 *    iteration count exceeds gridDim.x's limit. block_threads == 0: the
 *    iterations are spread over global thread indices instead.
 *  - THREAD loop: the variable is threadIdx.x, guarded by the extent.
 *  - SHARED: __shared__ arrays; LOCAL: per-thread arrays (registers).
 *  - BLOCK_REDUCE: warp shuffles, then one value per warp in shared memory.
 *  - MMA: tensor cores (mma.sync m16n8k8, TF32 in, f32 accumulate) when the
 *    tile is a multiple of the instruction and the block of whole warps.
 *  Barrier-like statements (BLOCK_REDUCE, MMA) synchronise before and after
 *  themselves, as on the CPU every statement between thread loops sees all
 *  earlier phases complete. */
#include "codegen/cuda/cuda.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

typedef struct render {
  strbuf *sb;
  const kir_kernel *k;
  cg_cuda_names nm;
  int indent;
  int n_reduce; /* numbers the reduction scratch arrays */
  bool *read;   /* per var: some expression reads it */
  arena *a;     /* the renderer's own scratch, freed when it returns */
} render;

/* ---- which variables are read ----
 * NVRTC warns about variables that are declared and never read, and the
 * tests treat warnings as failures: loop variables nobody reads are not
 * declared, and lets nobody reads are marked [[maybe_unused]] (their
 * value may still be assigned; the compiler drops them). */

static void mark_expr(bool *read, const kir_expr *e) {
  if (!e)
    return;
  if (e->op == KIR_VAR)
    read[e->var->id] = true;
  for (int i = 0; i < 3; i++)
    mark_expr(read, e->a[i]);
}

static void mark_stmt(bool *read, const kir_stmt *s) {
  if (!s)
    return;
  mark_expr(read, s->extent);
  mark_expr(read, s->value);
  mark_expr(read, s->index);
  mark_expr(read, s->cond);
  for (int i = 0; i < s->n; i++)
    mark_stmt(read, s->body[i]);
  mark_stmt(read, s->then_);
  mark_stmt(read, s->else_);
}

/* ---- names ---- */

/* Identifiers a kernel IR name must not take: C++ keywords likely to be
 * chosen as names, CUDA built-ins, the math functions the expression walk
 * calls, and the scalar struct `s`. The prefix kiln_ is reserved too. */
static const char *const reserved[] = {
    "auto",      "bool",     "break",     "case",        "char",     "class",
    "const",     "continue", "default",   "delete",      "do",       "double",
    "else",      "enum",     "extern",    "false",       "float",    "for",
    "goto",      "if",       "inline",    "int",         "long",     "new",
    "operator",  "register", "return",    "short",       "signed",   "sizeof",
    "static",    "struct",   "switch",    "template",    "this",     "true",
    "typedef",   "union",    "unsigned",  "void",        "volatile", "while",
    "and",       "or",       "not",       "xor",         "asm",      "s",
    "threadIdx", "blockIdx", "blockDim",  "gridDim",     "warpSize", "min",
    "max",       "abs",      "llabs",     "expf",        "logf",     "tanhf",
    "erff",      "sqrtf",    "rsqrtf",    "floorf",      "fabsf",    "powf",
    "fminf",     "fmaxf",    "atomicAdd", "kir_scalars",
};

static bool name_taken(const char *name, const char **given, int n) {
  if (strncmp(name, "kiln_", 5) == 0 || strncmp(name, "__", 2) == 0)
    return true;
  for (size_t i = 0; i < ARRAY_LEN(reserved); i++)
    if (strcmp(name, reserved[i]) == 0)
      return true;
  for (int i = 0; i < n; i++)
    if (given[i] && strcmp(name, given[i]) == 0)
      return true;
  return false;
}

/* A C identifier for `name`: other characters become '_', a leading digit
 * gets a 'v'; a clash appends "_<tag><id>". */
static const char *c_name(arena *a, const char *name, char tag, int id,
                          const char **given, int n) {
  size_t len = strlen(name);
  char *s = arena_alloc(a, len + 2);
  size_t j = 0;
  if (len == 0 || (name[0] >= '0' && name[0] <= '9'))
    s[j++] = 'v';
  for (size_t i = 0; i < len; i++) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_';
    s[j++] = ok ? c : '_';
  }
  const char *out = s;
  for (int attempt = 0; name_taken(out, given, n); attempt++)
    out = arena_printf(a, attempt ? "%s_%c%d_%d" : "%s_%c%d", s, tag, id,
                       attempt);
  return out;
}

static void make_names(render *r) {
  const kir_kernel *k = r->k;
  int n = k->n_bufs + k->n_vars;
  const char **given = ARENA_ARRAY(r->a, const char *, n > 0 ? n : 1);
  r->nm.buf = ARENA_ARRAY(r->a, const char *, k->n_bufs + 1);
  r->nm.var = ARENA_ARRAY(r->a, const char *, k->n_vars + 1);
  int used = 0;
  for (int i = 0; i < k->n_bufs; i++) {
    r->nm.buf[i] = c_name(r->a, k->bufs[i]->name, 'b', i, given, used);
    given[used++] = r->nm.buf[i];
  }
  static const char *const scalar_field[KIR_SCALAR_ROLE_COUNT] = {
      [KIR_SCALAR_SEED] = "s.seed",
      [KIR_SCALAR_STEP] = "s.step",
      [KIR_SCALAR_LR] = "s.lr",
  };
  for (int i = 0; i < k->n_vars; i++) {
    const kir_var *v = k->vars[i];
    if (v->role != KIR_SCALAR_NONE)
      r->nm.var[i] = scalar_field[v->role];
    else {
      r->nm.var[i] = c_name(r->a, v->name, 'v', i, given, used);
      given[used++] = r->nm.var[i];
    }
  }
}

/* ---- output helpers ---- */

static void put_indent(render *r) {
  for (int i = 0; i < r->indent; i++)
    strbuf_puts(r->sb, "  ");
}

static void line(render *r, const char *fmt, ...) KILN_PRINTF(2, 3);
static void line(render *r, const char *fmt, ...) {
  put_indent(r);
  va_list ap;
  va_start(ap, fmt);
  strbuf_vprintf(r->sb, fmt, ap);
  va_end(ap);
  strbuf_putc(r->sb, '\n');
}

static void expr(render *r, const kir_expr *e) {
  cg_cuda_expr(r->sb, &r->nm, e);
}

/* ---- the GRID chain and the launch geometry ---- */

enum { MAX_GRID_DEPTH = 8 };

typedef struct grid_chain {
  int n;
  const kir_stmt *loop[MAX_GRID_DEPTH];
  int64_t extent[MAX_GRID_DEPTH];
  int64_t total;
  const kir_stmt *inner; /* the SEQ inside the innermost GRID loop */
} grid_chain;

static grid_chain find_grid(const kir_kernel *k) {
  grid_chain g = {.total = 1, .inner = k->body};
  while (g.inner->n == 1 && g.inner->body[0]->kind == KIR_S_LOOP &&
         g.inner->body[0]->loop_kind == KIR_LOOP_GRID) {
    const kir_stmt *s = g.inner->body[0];
    KILN_ASSERT(g.n < MAX_GRID_DEPTH && "GRID chain too deep");
    KILN_ASSERT(s->extent->op == KIR_CONST && s->extent->i > 0 &&
                "GRID loop extents must be positive constants");
    g.loop[g.n] = s;
    g.extent[g.n++] = s->extent->i;
    KILN_ASSERT(g.total <= INT64_MAX / s->extent->i);
    g.total *= s->extent->i;
    g.inner = s->then_;
  }
  return g;
}

cg_cuda_launch_dims cg_cuda_launch_for(const kir_kernel *k) {
  grid_chain g = find_grid(k);
  cg_cuda_launch_dims d = {.grid_iterations = g.total};
  if (k->block_threads > 0) {
    d.block = k->block_threads;
    d.grid = g.total;
  } else {
    /* Small grids get one block of just enough whole warps. */
    int64_t warps = (g.total + 31) / 32;
    d.block = warps * 32 < CG_CUDA_ELEMENTWISE_THREADS
                  ? (int)(warps * 32)
                  : CG_CUDA_ELEMENTWISE_THREADS;
    d.grid = (g.total + d.block - 1) / d.block;
  }
  if (d.grid > CG_CUDA_MAX_GRID) {
    d.grid = CG_CUDA_MAX_GRID;
    d.grid_stride = true;
  }
  return d;
}

/* ---- statements ---- */

static void stmt(render *r, const kir_stmt *s);

static void seq_body(render *r, const kir_stmt *seq) {
  KILN_ASSERT(seq->kind == KIR_S_SEQ);
  for (int i = 0; i < seq->n; i++)
    stmt(r, seq->body[i]);
}

static void loop(render *r, const kir_stmt *s) {
  const char *v = r->nm.var[s->var->id];
  KILN_ASSERT(s->loop_kind != KIR_LOOP_GRID &&
              "GRID loops must be the kernel's outer chain");
  if (s->loop_kind == KIR_LOOP_THREAD) {
    KILN_ASSERT(r->k->block_threads > 0);
    put_indent(r);
    strbuf_puts(r->sb, "if ((long long)threadIdx.x < ");
    expr(r, s->extent);
    strbuf_puts(r->sb, ") {\n");
    r->indent++;
    if (r->read[s->var->id])
      line(r, "const long long %s = threadIdx.x;", v);
  } else {
    if (s->loop_kind == KIR_LOOP_UNROLL)
      line(r, "#pragma unroll");
    put_indent(r);
    strbuf_printf(r->sb, "for (long long %s = 0; %s < ", v, v);
    expr(r, s->extent);
    strbuf_printf(r->sb, "; %s++) {\n", v);
    r->indent++;
  }
  seq_body(r, s->then_);
  r->indent--;
  line(r, "}");
}

/* dst[0] = op over the block's threads of src[0]. Shuffles reduce each
 * warp into its lane 0; the last warp may be partial when block_threads is
 * not a multiple of 32, so its mask names only the lanes that exist and
 * values shuffled from lanes past the end are ignored. Thread 0 combines
 * the per-warp values. */
static void block_reduce(render *r, const kir_stmt *s) {
  int bt = r->k->block_threads;
  KILN_ASSERT(bt > 0 && "block_reduce needs block threads");
  int nw = (bt + 31) / 32, last = bt - (nw - 1) * 32;
  const char *t = cg_cuda_type(s->src->type);
  const char *dst = r->nm.buf[s->buf->id], *src = r->nm.buf[s->src->id];
  bool is_add = s->reduce_op == KIR_ADD;
  const char *fmax = s->src->type == KIR_F32 ? "fmaxf" : "max";
  int id = r->n_reduce++;
  line(r, "{ /* %s[0] = %s over the %d threads of %s[0] */", dst,
       is_add ? "sum" : "max", bt, src);
  r->indent++;
  line(r, "__shared__ %s kiln_red%d[%d];", t, id, nw);
  line(r, "%s v = %s[0];", t, src);
  line(r, "const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;");
  if (last == 32) {
    const char *shfl = "__shfl_down_sync(0xffffffffu, v, o)";
    line(r, "for (unsigned o = 16; o > 0; o >>= 1)");
    if (is_add)
      line(r, "  v = v + %s;", shfl);
    else
      line(r, "  v = %s(v, %s);", fmax, shfl);
  } else {
    line(r, "const unsigned width = warp == %du ? %du : 32u;", nw - 1, last);
    line(r, "const unsigned mask = width == 32u ? 0xffffffffu : (1u << width) "
            "- 1u;");
    line(r, "for (unsigned o = 16; o > 0; o >>= 1) {");
    line(r, "  const %s other = __shfl_down_sync(mask, v, o);", t);
    line(r, "  if (lane + o < width)");
    if (is_add)
      line(r, "    v = v + other;");
    else
      line(r, "    v = %s(v, other);", fmax);
    line(r, "}");
  }
  line(r, "if (lane == 0)");
  line(r, "  kiln_red%d[warp] = v;", id);
  line(r, "__syncthreads();");
  line(r, "if (threadIdx.x == 0) {");
  line(r, "  %s acc = kiln_red%d[0];", t, id);
  line(r, "  for (int w = 1; w < %d; w++)", nw);
  if (is_add)
    line(r, "    acc = acc + kiln_red%d[w];", id);
  else
    line(r, "    acc = %s(acc, kiln_red%d[w]);", fmax, id);
  line(r, "  %s[0] = acc;", dst);
  line(r, "}");
  line(r, "__syncthreads();");
  r->indent--;
  line(r, "}");
}

static bool mma_uses_tensor_cores(const kir_kernel *k, const kir_stmt *s) {
  return k->block_threads > 0 && k->block_threads % 32 == 0 &&
         s->mma_m % 16 == 0 && s->mma_n % 8 == 0 && s->mma_k % 8 == 0;
}

static void mma(render *r, const kir_stmt *s) {
  int bt = r->k->block_threads;
  KILN_ASSERT(bt > 0 && "mma needs block threads");
  const char *c = r->nm.buf[s->mma[0]->id], *a = r->nm.buf[s->mma[1]->id],
             *b = r->nm.buf[s->mma[2]->id];
  int m = s->mma_m, n = s->mma_n, kk = s->mma_k;
  line(r, "__syncthreads();");
  if (mma_uses_tensor_cores(r->k, s)) {
    line(r, "kiln_mma_tf32(%s, %s, %s, %d, %d, %d, %d);", c, a, b, m, n, kk,
         bt / 32);
  } else {
    /* Tile or block not a multiple of the m16n8k8 instruction / a warp:
     * the same product as a plain f32 loop, one C element per thread. */
    line(r, "/* %s += %s * %s (%dx%dx%d): no tensor cores for this shape */", c,
         a, b, m, n, kk);
    line(r, "for (int e = threadIdx.x; e < %d; e += %d) {", m * n, bt);
    line(r, "  const int row = e / %d, col = e %% %d;", n, n);
    line(r, "  float acc = %s[e];", c);
    line(r, "  for (int q = 0; q < %d; q++)", kk);
    line(r, "    acc += %s[row * %d + q] * %s[q * %d + col];", a, kk, b, n);
    line(r, "  %s[e] = acc;", c);
    line(r, "}");
  }
  line(r, "__syncthreads();");
}

static void stmt(render *r, const kir_stmt *s) {
  switch (s->kind) {
  case KIR_S_SEQ:
    line(r, "{");
    r->indent++;
    seq_body(r, s);
    r->indent--;
    line(r, "}");
    return;
  case KIR_S_LOOP:
    loop(r, s);
    return;
  case KIR_S_LET:
  case KIR_S_ASSIGN:
    put_indent(r);
    if (s->kind == KIR_S_LET)
      strbuf_printf(r->sb, "%s%s ",
                    r->read[s->var->id] ? "" : "[[maybe_unused]] ",
                    cg_cuda_type(s->var->type));
    strbuf_printf(r->sb, "%s = ", r->nm.var[s->var->id]);
    expr(r, s->value);
    strbuf_puts(r->sb, ";\n");
    return;
  case KIR_S_STORE:
  case KIR_S_ATOMIC_ADD:
    put_indent(r);
    strbuf_printf(r->sb, s->kind == KIR_S_STORE ? "%s[" : "atomicAdd(&%s[",
                  r->nm.buf[s->buf->id]);
    expr(r, s->index);
    strbuf_puts(r->sb, s->kind == KIR_S_STORE ? "] = " : "], ");
    expr(r, s->value);
    strbuf_puts(r->sb, s->kind == KIR_S_STORE ? ";\n" : ");\n");
    return;
  case KIR_S_IF:
    put_indent(r);
    strbuf_puts(r->sb, "if (");
    expr(r, s->cond);
    strbuf_puts(r->sb, ") {\n");
    r->indent++;
    seq_body(r, s->then_);
    r->indent--;
    if (s->else_) {
      line(r, "} else {");
      r->indent++;
      seq_body(r, s->else_);
      r->indent--;
    }
    line(r, "}");
    return;
  case KIR_S_BARRIER:
    line(r, "__syncthreads();");
    return;
  case KIR_S_BLOCK_REDUCE:
    block_reduce(r, s);
    return;
  case KIR_S_MMA:
    mma(r, s);
    return;
  }
  KILN_ASSERT(!"unknown kernel IR statement");
}

/* ---- which prelude helpers a kernel needs ---- */

static unsigned stmt_needs(const kir_kernel *k, const kir_stmt *s) {
  if (!s)
    return 0;
  unsigned need = cg_cuda_expr_needs(s->extent) | cg_cuda_expr_needs(s->value) |
                  cg_cuda_expr_needs(s->index) | cg_cuda_expr_needs(s->cond);
  if (s->kind == KIR_S_MMA && mma_uses_tensor_cores(k, s))
    need |= CG_CUDA_NEED_MMA;
  for (int i = 0; i < s->n; i++)
    need |= stmt_needs(k, s->body[i]);
  return need | stmt_needs(k, s->then_) | stmt_needs(k, s->else_);
}

/* C[M x N] += A[M x K] * B[K x N] (row-major shared tiles) by all warps:
 * warp w takes the 16x8 output tiles w, w + nwarps, ... and runs the K
 * dimension in steps of 8. Fragment layouts are those of the PTX ISA for
 * mma.m16n8k8 with .tf32 (g = lane / 4, t = lane % 4): A rows g and g+8,
 * columns t and t+4; B rows t and t+4, column g; C rows g and g+8,
 * columns 2t and 2t+1. Each output tile has one owner, so C needs no
 * atomics. */
static const char mma_src[] =
    "static __device__ __forceinline__ unsigned kiln_tf32(float x) {\n"
    "  unsigned r;\n"
    "  asm(\"cvt.rna.tf32.f32 %0, %1;\" : \"=r\"(r) : \"f\"(x));\n"
    "  return r;\n"
    "}\n"
    "static __device__ __forceinline__ void kiln_mma_tf32(\n"
    "    float *C, const float *A, const float *B, int M, int N, int K,\n"
    "    int nwarps) {\n"
    "  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;\n"
    "  const int g = lane >> 2, t = lane & 3, tiles_n = N / 8;\n"
    "  for (int tile = warp; tile < (M / 16) * tiles_n; tile += nwarps) {\n"
    "    const int m0 = (tile / tiles_n) * 16, n0 = (tile % tiles_n) * 8;\n"
    "    float *c_lo = C + (m0 + g) * N + n0 + 2 * t, *c_hi = c_lo + 8 * N;\n"
    "    float c0 = c_lo[0], c1 = c_lo[1], c2 = c_hi[0], c3 = c_hi[1];\n"
    "    for (int k0 = 0; k0 < K; k0 += 8) {\n"
    "      const float *a = A + (m0 + g) * K + k0 + t;\n"
    "      const float *b = B + (k0 + t) * N + n0 + g;\n"
    "      const unsigned a0 = kiln_tf32(a[0]), a1 = kiln_tf32(a[8 * K]);\n"
    "      const unsigned a2 = kiln_tf32(a[4]), a3 = kiln_tf32(a[8 * K + "
    "4]);\n"
    "      const unsigned b0 = kiln_tf32(b[0]), b1 = kiln_tf32(b[4 * N]);\n"
    "      asm volatile(\"mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 "
    "\"\n"
    "                   \"{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, \"\n"
    "                   \"{%0, %1, %2, %3};\"\n"
    "                   : \"+f\"(c0), \"+f\"(c1), \"+f\"(c2), \"+f\"(c3)\n"
    "                   : \"r\"(a0), \"r\"(a1), \"r\"(a2), \"r\"(a3), "
    "\"r\"(b0),\n"
    "                     \"r\"(b1));\n"
    "    }\n"
    "    c_lo[0] = c0;\n"
    "    c_lo[1] = c1;\n"
    "    c_hi[0] = c2;\n"
    "    c_hi[1] = c3;\n"
    "  }\n"
    "}\n";

/* ---- the kernel ---- */

static void signature(render *r) {
  const kir_kernel *k = r->k;
  int bt =
      k->block_threads > 0 ? k->block_threads : cg_cuda_launch_for(k).block;
  strbuf_printf(r->sb,
                "extern \"C\" __global__ void __launch_bounds__(%d) %s(\n", bt,
                k->name);
  for (int i = 0; i < k->n_bufs && k->bufs[i]->space == KIR_GLOBAL; i++) {
    const kir_buf *b = k->bufs[i];
    strbuf_printf(r->sb, "    %s%s *__restrict__ %s, /* [%" PRId64 "] */\n",
                  b->read_only ? "const " : "", cg_cuda_type(b->type),
                  r->nm.buf[i], b->count);
  }
  strbuf_puts(r->sb, "    const kir_scalars s) {\n");
}

/* The GRID chain's variables from the flattened index `flat`. */
static void grid_vars(render *r, const grid_chain *g, const char *flat) {
  int64_t stride[MAX_GRID_DEPTH];
  for (int i = g->n - 1; i >= 0; i--)
    stride[i] = i == g->n - 1 ? 1 : stride[i + 1] * g->extent[i + 1];
  for (int i = 0; i < g->n; i++) {
    const kir_var *var = g->loop[i]->var;
    const char *v = r->nm.var[var->id];
    if (!r->read[var->id])
      continue;
    if (g->n == 1)
      line(r, "const long long %s = %s;", v, flat);
    else if (i == 0)
      line(r, "const long long %s = %s / %" PRId64 "LL;", v, flat, stride[i]);
    else if (stride[i] == 1)
      line(r, "const long long %s = %s %% %" PRId64 "LL;", v, flat,
           g->extent[i]);
    else
      line(r, "const long long %s = (%s / %" PRId64 "LL) %% %" PRId64 "LL;", v,
           flat, stride[i], g->extent[i]);
  }
}

void cg_cuda_render(strbuf *sb, const kir_kernel *k) {
  KILN_ASSERT(k && k->body && k->depth == 0);
  /* Scratch of its own, so rendering never writes to the kernel's arena
   * and kernels of one plan may be rendered from several threads. */
  arena scratch;
  arena_init(&scratch);
  render r = {.sb = sb, .k = k, .a = &scratch};
  make_names(&r);
  r.read = ARENA_ARRAY(&scratch, bool, k->n_vars + 1);
  mark_stmt(r.read, k->body);
  grid_chain g = find_grid(k);
  cg_cuda_launch_dims d = cg_cuda_launch_for(k);
  unsigned need = stmt_needs(k, k->body);

  strbuf_printf(sb,
                "/* %s: generated by kiln from the kernel IR (header-free "
                "CUDA C for NVRTC).\n * Launch: grid %" PRId64
                ", block %d. */\n",
                k->name, d.grid, d.block);
  strbuf_puts(sb, "struct kir_scalars { /* ir/kernel.h */\n"
                  "  long long seed, step;\n"
                  "  float lr;\n"
                  "};\n");
  if (need & CG_CUDA_NEED_PHILOX)
    strbuf_puts(sb, cg_cuda_philox_src);
  if (need & CG_CUDA_NEED_MMA)
    strbuf_puts(sb, mma_src);
  signature(&r);
  r.indent = 1;
  for (int i = 0; i < k->n_bufs; i++) {
    const kir_buf *b = k->bufs[i];
    if (b->space == KIR_GLOBAL)
      continue;
    line(&r, "%s%s %s[%" PRId64 "];%s",
         b->space == KIR_SHARED ? "__shared__ " : "", cg_cuda_type(b->type),
         r.nm.buf[i], b->count,
         b->space == KIR_LOCAL ? " /* per thread */" : "");
  }

  /* The flattened grid index: a block index when the kernel has block
   * threads, a global thread index when the renderer picks the block. */
  const char *flat = k->block_threads > 0 ? "kiln_block" : "kiln_gid";
  const char *first = k->block_threads > 0
                          ? "(long long)blockIdx.x"
                          : "(long long)blockIdx.x * blockDim.x + threadIdx.x";
  const char *step = k->block_threads > 0 ? "(long long)gridDim.x"
                                          : "(long long)gridDim.x * blockDim.x";
  bool guard = k->block_threads == 0 && d.grid * d.block != g.total;
  bool grid_read = false;
  for (int i = 0; i < g.n; i++)
    grid_read = grid_read || r.read[g.loop[i]->var->id];
  if (d.grid_stride) {
    line(&r, "for (long long %s = %s; %s < %" PRId64 "LL; %s += %s) {", flat,
         first, flat, g.total, flat, step);
    r.indent++;
  } else if (grid_read || guard) {
    line(&r, "const long long %s = %s;", flat, first);
  }
  if (guard && !d.grid_stride) {
    line(&r, "if (%s < %" PRId64 "LL) {", flat, g.total);
    r.indent++;
  }
  grid_vars(&r, &g, flat);
  seq_body(&r, g.inner);
  while (r.indent > 1) {
    r.indent--;
    line(&r, "}");
  }
  strbuf_puts(sb, "}\n");
  arena_free(&scratch);
}
