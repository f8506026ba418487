/* test_cuda_codegen.c — the CUDA renderer, NVRTC and the kernel cache,
 * without a GPU:
 *
 *   1. hand-built kernels covering every kernel IR statement and op are
 *      rendered and compiled by NVRTC for sm_80 and sm_90; any error or
 *      warning fails;
 *   2. semantics: the elementwise kernel's rendered CUDA C is also compiled
 *      as host C++ (a small shim stands in for the CUDA built-ins), run over
 *      the launch geometry the renderer states, and compared bit for bit
 *      with the kernel IR interpreter (tests/support/kir_interp.c) — the
 *      expression walk, the grid mapping and the Philox device function are
 *      checked against an independent definition;
 * (NVRTC itself, the cache and the models' plans: test_cuda_nvrtc.c.)
 *
 * With --gpu it is the GPU test instead (ctest cuda_gpu, label gpu): it
 * exits 77 (ctest's skip) with "SKIPPED: ..." when there is no driver or
 * no GPU, else compiles the hand-built kernels for the device's arch. */
#include "codegen/cuda/cuda.h"
#include "runtime/cuda/rt_cuda.h"
#include "test.h"
#include "tests/support/kir_interp.h"

#include <math.h>
#include <stdlib.h>
#include <unistd.h>

/* LeakSanitizer (clang 14) crashes while scanning the dynamic TLS of the
 * libraries NVRTC loads with dlopen ("Tracer caught signal 11" at exit,
 * after every test passed). Under sanitizers only, these hooks skip TLS as
 * a root, which can only add reports, and suppress the one that adds:
 * glibc's own pthread_setspecific block, reachable only from TLS. */
const char *__lsan_default_options(void);
const char *__lsan_default_options(void) {
  return "use_tls=0";
}
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) {
  return "leak:pthread_setspecific\n";
}

static arena A;
static char tmp_dir[] = "/tmp/kiln_cuda_test_XXXXXX";

/* ---- building blocks ---- */

#define I64(v) kir_i64(k, (v))
#define F32(v) kir_f32(k, (v))
#define REF(v) kir_ref(k, (v))
#define LD(b, i) kir_load(k, (b), (i))
#define BIN(op, x, y) kir_bin(k, KIR_##op, (x), (y))
#define UN(op, x) kir_un(k, KIR_##op, (x))
#define INT(t, v) kir_int(k, KIR_##t, (v))
#define CAST(t, x) kir_cast(k, KIR_##t, (x))

static char *render(const kir_kernel *k) {
  strbuf sb;
  strbuf_init(&sb);
  cg_cuda_render(&sb, k);
  return sb.data;
}

/* Compiles for sm_80 and sm_90 with warnings as errors, no cache. */
static bool compiles(const char *name, const char *src) {
  bool ok = true;
  static const int archs[] = {80, 90};
  for (size_t i = 0; i < ARRAY_LEN(archs); i++) {
    cg_cuda_opts o = {.arch = archs[i], .werror = true, .no_cache = true};
    cg_cuda_binary bin;
    kiln_error err = {0};
    if (cg_cuda_compile(name, src, &o, &bin, NULL, &err) != KILN_OK) {
      fprintf(stderr, "%s\n", err.message);
      ok = false;
      continue;
    }
    ok = ok && bin.size > 0 && !bin.from_cache;
    cg_cuda_binary_free(&bin);
  }
  return ok;
}

/* ---- 1. hand-built kernels ---- */

enum {
  G0 = 7,
  G1 = 13,
  N = G0 * G1,
  NF = 25,
  NI = 17,
  NL = 9,
  NU = 8,
  NB = 10
};

/* Every expression op on every type it takes, constants at the edges
 * (inf, NaN, INT_MIN, negatives), every loop kind but THREAD, LET, ASSIGN,
 * STORE, ATOMIC_ADD, IF/else; names that clash with C++ ("int") and with
 * the scalar struct ("s"). Elementwise: block_threads 0. */
static kir_kernel *kernel_elementwise(void) {
  kir_kernel *k = kir_kernel_new(&A, "ew_all_ops", 0);
  kir_buf *x = kir_global(k, "x", KIR_F32, N, true);
  kir_buf *n = kir_global(k, "int", KIR_I32, N, true);
  kir_buf *u = kir_global(k, "u", KIR_U32, N, true);
  kir_buf *y = kir_global(k, "y", KIR_F32, N * NF, false);
  kir_buf *yi = kir_global(k, "yi", KIR_I32, N * NI, false);
  kir_buf *yl = kir_global(k, "yl", KIR_I64, N * NL, false);
  kir_buf *yu = kir_global(k, "yu", KIR_U32, N * NU, false);
  kir_buf *yb = kir_global(k, "yb", KIR_BOOL, N * NB, false);
  kir_var *seed = kir_scalar_param(k, KIR_SCALAR_SEED);
  kir_var *step = kir_scalar_param(k, KIR_SCALAR_STEP);
  kir_var *lr = kir_scalar_param(k, KIR_SCALAR_LR);
  kir_var *b0 = kir_for(k, KIR_LOOP_GRID, "b0", I64(G0));
  kir_var *b1 = kir_for(k, KIR_LOOP_GRID, "b1", I64(G1));
  kir_var *i = kir_let(k, "s", BIN(ADD, BIN(MUL, REF(b0), I64(G1)), REF(b1)));
  kir_var *xv = kir_let(k, "xv", LD(x, REF(i)));
  kir_var *ax = kir_let(k, "ax", BIN(ADD, UN(ABS, REF(xv)), F32(0.5f)));
  kir_var *nv = kir_let(k, "nv", LD(n, REF(i)));
  kir_var *uv = kir_let(k, "uv", LD(u, REF(i)));
  kir_var *neg = kir_let(k, "neg", BIN(LT, REF(xv), F32(0.0f)));
#define AT(stride, j) BIN(ADD, BIN(MUL, REF(i), I64(stride)), I64(j))
  kir_expr *fv[] = {
      UN(EXP, UN(NEG, REF(ax))),
      UN(LOG, REF(ax)),
      UN(TANH, REF(xv)),
      UN(ERF, REF(xv)),
      UN(SQRT, REF(ax)),
      UN(RSQRT, REF(ax)),
      UN(FLOOR, BIN(MUL, REF(xv), F32(3.7f))),
      BIN(POW, REF(ax), F32(1.5f)),
      BIN(MIN, REF(xv), F32(0.25f)),
      BIN(MAX, REF(xv), F32(-0.25f)),
      BIN(DIV, REF(xv), REF(ax)),
      BIN(MUL, BIN(SUB, REF(xv), F32(1e-3f)), F32(-2.5f)),
      kir_select(k, REF(neg), BIN(MUL, REF(xv), REF(lr)), REF(ax)),
      CAST(F32, REF(nv)),
      CAST(F32, REF(uv)),
      kir_philox(k, REF(seed), REF(step), REF(i)),
      kir_philox(k, REF(seed), CAST(I64, REF(nv)),
                 BIN(ADD, BIN(MUL, REF(i), I64(3)), I64(1))),
      BIN(ADD, BIN(MAX, REF(xv), F32(-INFINITY)),
          BIN(MIN, REF(ax), F32(INFINITY))),
      kir_select(k, kir_bool(k, false), F32(NAN), REF(xv)),
      BIN(ADD, F32(-0.0f), F32(1e30f)),
  };
  for (int j = 0; j < (int)ARRAY_LEN(fv); j++)
    kir_store(k, y, AT(NF, j), fv[j]);
  int j = (int)ARRAY_LEN(fv);
  kir_if(k, REF(neg)); /* 20: if/else */
  kir_store(k, y, AT(NF, j), F32(1.0f));
  kir_else(k);
  kir_store(k, y, AT(NF, j), F32(2.0f));
  kir_end(k);
  kir_var *t = kir_let(k, "t", F32(0.0f)); /* 21: serial loop, assign */
  kir_var *q = kir_for(k, KIR_LOOP_SERIAL, "q", I64(3));
  kir_assign(k, t, BIN(ADD, REF(t), BIN(MUL, REF(xv), CAST(F32, REF(q)))));
  kir_end(k);
  kir_store(k, y, AT(NF, j + 1), REF(t));
  kir_var *t2 = kir_let(k, "t2", F32(1.0f)); /* 22: unrolled loop */
  kir_for(k, KIR_LOOP_UNROLL, "q", I64(4));
  kir_assign(k, t2, BIN(ADD, BIN(MUL, REF(t2), F32(0.5f)), REF(xv)));
  kir_end(k);
  kir_store(k, y, AT(NF, j + 2), REF(t2));
  kir_var *vq = kir_for(k, KIR_LOOP_VECTOR, "vq", I64(1)); /* 23 */
  kir_store(k, y, BIN(ADD, AT(NF, j + 3), REF(vq)), REF(xv));
  kir_end(k);
  kir_atomic_add(k, y, AT(NF, j + 3), F32(1.0f));
  kir_store(k, y, AT(NF, j + 4), kir_philox(k, REF(seed), I64(0), I64(0)));

  kir_expr *iv[NI] = {
      BIN(ADD, REF(nv), INT(I32, 3)),
      BIN(MUL, REF(nv), INT(I32, -7)),
      BIN(DIV, REF(nv), INT(I32, 5)),
      BIN(MOD, REF(nv), INT(I32, 5)),
      BIN(MIN, REF(nv), INT(I32, 2)),
      BIN(MAX, REF(nv), INT(I32, -2)),
      UN(ABS, REF(nv)),
      UN(NEG, REF(nv)),
      BIN(AND, REF(nv), INT(I32, 0x5a)),
      BIN(OR, REF(nv), INT(I32, 3)),
      BIN(XOR, REF(nv), INT(I32, 0x33)),
      BIN(SHL, REF(nv), INT(I32, 3)),
      BIN(SHR, REF(nv), INT(I32, 2)),
      CAST(I32, BIN(MUL, REF(xv), F32(100.0f))),
      CAST(I32, REF(i)),
      CAST(I32, REF(neg)),
      BIN(MAX, REF(nv), INT(I32, INT32_MIN)),
  };
  for (int q2 = 0; q2 < NI; q2++)
    kir_store(k, yi, AT(NI, q2), iv[q2]);
  kir_expr *lv[NL] = {
      BIN(SUB, BIN(MUL, REF(i), I64(1000003)), I64(7)),
      BIN(DIV, UN(NEG, REF(i)), I64(3)),
      BIN(MOD, UN(NEG, REF(i)), I64(4)),
      BIN(ADD, BIN(MAX, REF(i), I64(INT64_MIN)), BIN(MIN, REF(i), I64(5))),
      UN(ABS, UN(NEG, REF(i))),
      BIN(SHL, REF(i), I64(40)),
      BIN(SHR, UN(NEG, REF(i)), I64(1)),
      BIN(OR, BIN(XOR, REF(i), I64(0x3c)), BIN(AND, REF(i), I64(6))),
      CAST(I64, REF(nv)),
  };
  for (int q2 = 0; q2 < NL; q2++)
    kir_store(k, yl, AT(NL, q2), lv[q2]);
  kir_expr *uvs[NU] = {
      BIN(ADD, REF(uv), INT(U32, 0xfffffff0u)),
      BIN(SHR, REF(uv), INT(U32, 5)),
      BIN(MUL, REF(uv), INT(U32, 2654435761u)),
      BIN(DIV, REF(uv), INT(U32, 7)),
      BIN(MOD, REF(uv), INT(U32, 11)),
      BIN(MAX, BIN(MIN, REF(uv), INT(U32, 3000000000u)), INT(U32, 9)),
      CAST(U32, REF(i)),
      BIN(XOR, REF(uv), BIN(SHL, REF(uv), INT(U32, 3))),
  };
  for (int q2 = 0; q2 < NU; q2++)
    kir_store(k, yu, AT(NU, q2), uvs[q2]);
  kir_expr *bv[NB] = {
      REF(neg),
      BIN(LE, REF(nv), INT(I32, 0)),
      BIN(EQ, BIN(MOD, REF(nv), INT(I32, 3)), INT(I32, 0)),
      BIN(NE, BIN(AND, REF(uv), INT(U32, 1)), INT(U32, 0)),
      UN(NOT, REF(neg)),
      BIN(AND, REF(neg), BIN(LT, REF(nv), INT(I32, 0))),
      BIN(OR, REF(neg), BIN(LT, REF(nv), INT(I32, 0))),
      BIN(XOR, REF(neg), BIN(LT, REF(nv), INT(I32, 0))),
      BIN(EQ, REF(neg), kir_bool(k, true)),
      CAST(BOOL, REF(nv)),
  };
  for (int q2 = 0; q2 < NB; q2++)
    kir_store(k, yb, AT(NB, q2), bv[q2]);
#undef AT
  kir_end(k);
  kir_end(k);
  return k;
}

/* A block kernel: threads `bt` (odd: a partial last warp, or whole warps),
 * a GRID chain, LOCAL and SHARED buffers, BARRIER and BLOCK_REDUCE of type
 * t with op. y[b] = op over the block's slice of x. */
static kir_kernel *kernel_reduce(const char *name, int bt, kir_type t,
                                 kir_op op) {
  enum { BLOCKS = 5 };
  kir_kernel *k = kir_kernel_new(&A, name, bt);
  kir_buf *x = kir_global(k, "x", t, (int64_t)BLOCKS * bt, true);
  kir_buf *y = kir_global(k, "y", t, BLOCKS, false);
  kir_buf *acc = kir_local(k, "acc", t, 1);
  kir_buf *red = kir_shared(k, "red", t, 1);
  kir_var *b = kir_for(k, KIR_LOOP_GRID, "b", I64(BLOCKS));
  kir_var *th = kir_for(k, KIR_LOOP_THREAD, "t", I64(bt));
  kir_store(k, acc, I64(0),
            LD(x, BIN(ADD, BIN(MUL, REF(b), I64(bt)), REF(th))));
  kir_end(k);
  kir_block_reduce(k, op, red, acc);
  kir_barrier(k);
  th = kir_for(k, KIR_LOOP_THREAD, "t", I64(bt));
  kir_if(k, BIN(EQ, REF(th), I64(0)));
  kir_store(k, y, REF(b), LD(red, I64(0)));
  kir_end(k);
  kir_end(k);
  kir_end(k);
  return k;
}

/* C = C0 + A * B on shared tiles through MMA: (m, n, kk) multiples of
 * m16n8k8 with whole warps use tensor cores; odd ones the plain loop. */
static kir_kernel *kernel_mma(const char *name, int bt, int m, int n, int kk) {
  kir_kernel *k = kir_kernel_new(&A, name, bt);
  kir_buf *ga = kir_global(k, "a", KIR_F32, m * kk, true);
  kir_buf *gb = kir_global(k, "b", KIR_F32, kk * n, true);
  kir_buf *gc = kir_global(k, "c", KIR_F32, m * n, false);
  kir_buf *sa = kir_shared(k, "sa", KIR_F32, m * kk);
  kir_buf *sb = kir_shared(k, "sb", KIR_F32, kk * n);
  kir_buf *sc = kir_shared(k, "sc", KIR_F32, m * n);
  kir_buf *bufs[3][2] = {{ga, sa}, {gb, sb}, {gc, sc}};
  int counts[3] = {m * kk, kk * n, m * n};
  kir_var *th = kir_for(k, KIR_LOOP_THREAD, "t", I64(bt));
  for (int w = 0; w < 3; w++) {
    kir_var *e =
        kir_for(k, KIR_LOOP_SERIAL, "e", I64((counts[w] + bt - 1) / bt));
    kir_var *at =
        kir_let(k, "at", BIN(ADD, BIN(MUL, REF(e), I64(bt)), REF(th)));
    kir_if(k, BIN(LT, REF(at), I64(counts[w])));
    kir_store(k, bufs[w][1], REF(at), LD(bufs[w][0], REF(at)));
    kir_end(k);
    kir_end(k);
  }
  kir_end(k);
  kir_barrier(k);
  kir_mma(k, sc, sa, sb, m, n, kk);
  kir_barrier(k);
  th = kir_for(k, KIR_LOOP_THREAD, "t", I64(bt));
  kir_var *e = kir_for(k, KIR_LOOP_SERIAL, "e", I64((m * n + bt - 1) / bt));
  kir_var *at = kir_let(k, "at", BIN(ADD, BIN(MUL, REF(e), I64(bt)), REF(th)));
  kir_if(k, BIN(LT, REF(at), I64(m * n)));
  kir_store(k, gc, REF(at), LD(sc, REF(at)));
  kir_end(k);
  kir_end(k);
  kir_end(k);
  return k;
}

/* GRID chains too long for gridDim.x: the renderer must loop. */
static kir_kernel *kernel_huge_grid(const char *name, int bt) {
  kir_kernel *k = kir_kernel_new(&A, name, bt);
  kir_buf *y = kir_global(k, "y", KIR_F32, 7, false);
  kir_var *b0 = kir_for(k, KIR_LOOP_GRID, "b0", I64(300001));
  kir_var *b1 = kir_for(k, KIR_LOOP_GRID, "b1", I64(bt ? 7159 : 1999993));
  kir_var *b2 = kir_for(k, KIR_LOOP_GRID, "b2", I64(3));
  kir_expr *v = BIN(ADD, BIN(ADD, REF(b0), REF(b1)), REF(b2));
  if (bt) {
    kir_var *th = kir_for(k, KIR_LOOP_THREAD, "t", I64(bt));
    kir_if(k, BIN(EQ, BIN(ADD, v, REF(th)), I64(0)));
  } else {
    kir_if(k, BIN(EQ, v, I64(0)));
  }
  kir_store(k, y, I64(0), F32(1.0f));
  kir_end(k);
  if (bt)
    kir_end(k);
  kir_end(k);
  kir_end(k);
  kir_end(k);
  return k;
}

static int n_hand_kernels(kir_kernel **out) {
  int n = 0;
  out[n++] = kernel_elementwise();
  out[n++] = kernel_reduce("reduce_add_97", 97, KIR_F32, KIR_ADD);
  out[n++] = kernel_reduce("reduce_max_128", 128, KIR_I32, KIR_MAX);
  out[n++] = kernel_reduce("reduce_max_f32_45", 45, KIR_F32, KIR_MAX);
  out[n++] = kernel_mma("mma_tensor_cores", 128, 32, 24, 16);
  out[n++] = kernel_mma("mma_odd_tile", 97, 5, 7, 3);
  out[n++] = kernel_huge_grid("huge_grid_blocks", 33);
  out[n++] = kernel_huge_grid("huge_grid_threads", 0);
  return n;
}

TEST(test_hand_kernels_compile) {
  kir_kernel *ks[16];
  int n = n_hand_kernels(ks);
  for (int i = 0; i < n; i++) {
    kiln_error err = {0};
    CHECK_EQ_INT(kir_verify(ks[i], &err), KILN_OK);
    char *src = render(ks[i]);
    if (!compiles(ks[i]->name, src)) {
      fprintf(stderr, "---- %s ----\n%s\n", ks[i]->name, src);
      CHECK(!"kernel did not compile cleanly");
    }
    free(src);
  }
}

/* What each construct must turn into (the compile proves it is valid
 * CUDA; this that the intended mapping was chosen). */
TEST(test_rendered_mapping) {
  kir_kernel *ks[16];
  n_hand_kernels(ks);
  char *ew = render(ks[0]), *r97 = render(ks[1]), *r128 = render(ks[2]);
  char *tc = render(ks[4]), *odd = render(ks[5]);
  char *hb = render(ks[6]), *ht = render(ks[7]);
  CHECK_STR_CONTAINS(ew, "extern \"C\" __global__ void __launch_bounds__(96) "
                         "ew_all_ops(\n    const float *__restrict__ x,");
  CHECK_STR_CONTAINS(ew, "const int *__restrict__ int_b1,"); /* renamed */
  CHECK_STR_CONTAINS(ew, "long long s_v5 = ((b0 * 13LL) + b1);");
  CHECK_STR_CONTAINS(ew, "    const kir_scalars s) {");
  CHECK_STR_CONTAINS(ew, "kiln_gid = (long long)blockIdx.x * blockDim.x + "
                         "threadIdx.x;");
  CHECK_STR_CONTAINS(ew, "if (kiln_gid < 91LL) {");
  CHECK_STR_CONTAINS(ew, "const long long b0 = kiln_gid / 13LL;");
  CHECK_STR_CONTAINS(ew, "const long long b1 = kiln_gid % 13LL;");
  CHECK_STR_CONTAINS(ew, "(xv * s.lr)");
  CHECK_STR_CONTAINS(ew, "kiln_philox_uniform((unsigned long long)s.seed, "
                         "(unsigned long long)s.step,");
  CHECK_STR_CONTAINS(ew, "__uint_as_float(0xff800000u)");
  CHECK_STR_CONTAINS(ew, "(-2147483647 - 1)");
  CHECK_STR_CONTAINS(ew, "#pragma unroll\n");
  CHECK_STR_CONTAINS(ew, "atomicAdd(&y[");
  CHECK_STR_CONTAINS(ew, "} else {");
  CHECK(!strstr(ew, "__syncthreads") && !strstr(ew, "mma.sync"));
  CHECK_STR_CONTAINS(r97, "__shared__ float red[1];");
  CHECK_STR_CONTAINS(r97, "float acc[1]; /* per thread */");
  CHECK_STR_CONTAINS(r97, "const long long b = kiln_block;");
  CHECK_STR_CONTAINS(r97, "if ((long long)threadIdx.x < 97LL) {");
  CHECK_STR_CONTAINS(r97, "warp == 3u ? 1u : 32u"); /* 97 = 3 * 32 + 1 */
  CHECK_STR_CONTAINS(r97, "__shfl_down_sync(mask, v, o)");
  CHECK_STR_CONTAINS(r128, "v = max(v, __shfl_down_sync(0xffffffffu, v, o))");
  CHECK_STR_CONTAINS(r128, "__shared__ int kiln_red0[4];");
  CHECK_STR_CONTAINS(tc, "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32");
  CHECK_STR_CONTAINS(tc, "kiln_mma_tf32(sc, sa, sb, 32, 24, 16, 4);");
  CHECK(!strstr(odd, "mma.sync"));
  CHECK_STR_CONTAINS(odd, "no tensor cores for this shape");
  CHECK_STR_CONTAINS(hb, "for (long long kiln_block = (long long)blockIdx.x; "
                         "kiln_block < 6443121477LL; kiln_block += "
                         "(long long)gridDim.x) {");
  CHECK_STR_CONTAINS(ht, "kiln_gid += (long long)gridDim.x * blockDim.x");
  free(ew), free(r97), free(r128), free(tc), free(odd), free(hb), free(ht);
}

TEST(test_launch_dims) {
  kir_kernel *ks[16];
  n_hand_kernels(ks);
  cg_cuda_launch_dims d = cg_cuda_launch_for(ks[0]);
  CHECK_EQ_INT(d.block, 96); /* 91 iterations: three warps */
  CHECK_EQ_INT(d.grid, 1);
  CHECK_EQ_INT(d.grid_iterations, 91);
  CHECK(!d.grid_stride);
  d = cg_cuda_launch_for(ks[1]);
  CHECK_EQ_INT(d.block, 97);
  CHECK_EQ_INT(d.grid, 5);
  d = cg_cuda_launch_for(ks[4]); /* no GRID loop: one block */
  CHECK_EQ_INT(d.block, 128);
  CHECK_EQ_INT(d.grid, 1);
  d = cg_cuda_launch_for(ks[6]);
  CHECK_EQ_INT(d.grid_iterations, 300001LL * 7159 * 3);
  CHECK_EQ_INT(d.grid, CG_CUDA_MAX_GRID);
  CHECK(d.grid_stride);
  d = cg_cuda_launch_for(ks[7]);
  CHECK_EQ_INT(d.block, 256);
  CHECK_EQ_INT(d.grid, CG_CUDA_MAX_GRID);
  CHECK(d.grid_stride);
}

/* ---- 2. semantics: rendered CUDA C run as host C++ vs the interpreter ---- */

/* CUDA built-ins as host C++. The kernel runs once per (block, thread) of
 * the launch the renderer states, so grid mapping and guards are exercised
 * as on the GPU; the maths calls the same libm as the interpreter. */
static const char host_shim[] =
    "#include <algorithm>\n#include <cmath>\n#include <cstdio>\n"
    "#include <cstdlib>\n#include <cstring>\n"
    "using std::max;\nusing std::min;\n"
    "#define __global__\n#define __device__\n#define __forceinline__ inline\n"
    "#define __launch_bounds__(n)\n"
    "struct kiln_dim3 { unsigned x; };\n"
    "static kiln_dim3 threadIdx, blockIdx, blockDim, gridDim;\n"
    "static unsigned __umulhi(unsigned a, unsigned b) {\n"
    "  return (unsigned)(((unsigned long long)a * b) >> 32);\n}\n"
    "static float __uint_as_float(unsigned u) {\n"
    "  float f;\n  std::memcpy(&f, &u, 4);\n  return f;\n}\n"
    "static float rsqrtf(float x) { return 1.0f / sqrtf(x); }\n"
    "static float atomicAdd(float *p, float v) {\n"
    "  const float old = *p;\n  *p = old + v;\n  return old;\n}\n";

static int n_globals(const kir_kernel *k) {
  int n = 0;
  while (n < k->n_bufs && k->bufs[n]->space == KIR_GLOBAL)
    n++;
  return n;
}

/* main(): read every GLOBAL buffer and the scalars, run the launch, write
 * the buffers back. */
static void host_driver(strbuf *sb, const kir_kernel *k) {
  cg_cuda_launch_dims d = cg_cuda_launch_for(k);
  int ng = n_globals(k);
  strbuf_puts(sb, "int main(int argc, char **argv) {\n"
                  "  if (argc != 3) return 2;\n"
                  "  FILE *in = fopen(argv[1], \"rb\");\n"
                  "  if (!in) return 2;\n");
  for (int i = 0; i < ng; i++)
    strbuf_printf(sb,
                  "  static %s a%d[%lld];\n"
                  "  if (fread(a%d, sizeof a%d, 1, in) != 1) return 3;\n",
                  cg_cuda_type(k->bufs[i]->type), i,
                  (long long)k->bufs[i]->count, i, i);
  strbuf_printf(sb,
                "  kir_scalars s;\n"
                "  if (fread(&s.seed, 8, 1, in) != 1 || fread(&s.step, 8, 1, "
                "in) != 1 ||\n      fread(&s.lr, 4, 1, in) != 1) return 3;\n"
                "  fclose(in);\n"
                "  blockDim.x = %d;\n  gridDim.x = %lld;\n"
                "  for (unsigned g = 0; g < gridDim.x; g++)\n"
                "    for (unsigned t = 0; t < blockDim.x; t++) {\n"
                "      blockIdx.x = g;\n      threadIdx.x = t;\n      %s(",
                d.block, (long long)d.grid, k->name);
  for (int i = 0; i < ng; i++)
    strbuf_printf(sb, "a%d, ", i);
  strbuf_puts(sb, "s);\n    }\n  FILE *out = fopen(argv[2], \"wb\");\n");
  for (int i = 0; i < ng; i++)
    strbuf_printf(sb, "  fwrite(a%d, sizeof a%d, 1, out);\n", i, i);
  strbuf_puts(sb, "  return fclose(out) != 0;\n}\n");
}

static bool write_file(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f)
    return false;
  bool ok = fwrite(data, 1, n, f) == n;
  return fclose(f) == 0 && ok;
}

static bool same_bits(kir_type t, const unsigned char *a,
                      const unsigned char *b) {
  if (t == KIR_F32) {
    float x, y;
    memcpy(&x, a, 4);
    memcpy(&y, b, 4);
    if (isnan(x) && isnan(y))
      return true;
  }
  return memcmp(a, b, (size_t)kir_type_size(t)) == 0;
}

TEST(test_elementwise_matches_interpreter) {
  if (system("c++ --version > /dev/null 2>&1") != 0) {
    printf("SKIPPED: test_elementwise_matches_interpreter (no host C++ "
           "compiler 'c++')\n");
    return;
  }
  kir_kernel *k = kernel_elementwise();
  int ng = n_globals(k);
  void *bufs[16], *host[16];
  strbuf in;
  strbuf_init(&in);
  for (int i = 0; i < ng; i++) {
    size_t bytes = (size_t)k->bufs[i]->count * kir_type_size(k->bufs[i]->type);
    bufs[i] = calloc(1, bytes);
    host[i] = malloc(bytes);
  }
  for (int i = 0; i < N; i++) {
    ((float *)bufs[0])[i] = 3.0f * sinf(0.7f * (float)i + 0.3f);
    ((int32_t *)bufs[1])[i] = (i * 37) % 201 - 100;
    ((uint32_t *)bufs[2])[i] = (uint32_t)i * 2654435761u;
  }
  for (int i = 0; i < ng; i++) {
    size_t bytes = (size_t)k->bufs[i]->count * kir_type_size(k->bufs[i]->type);
    for (size_t b = 0; b < bytes; b++)
      strbuf_putc(&in, ((char *)bufs[i])[b]);
  }
  kir_scalars s = {
      .seed = (int64_t)0x9e3779b97f4a7c15u, .step = 41, .lr = 0.125f};
  for (size_t b = 0; b < 8; b++)
    strbuf_putc(&in, ((char *)&s.seed)[b]);
  for (size_t b = 0; b < 8; b++)
    strbuf_putc(&in, ((char *)&s.step)[b]);
  for (size_t b = 0; b < 4; b++)
    strbuf_putc(&in, ((char *)&s.lr)[b]);

  strbuf src;
  strbuf_init(&src);
  strbuf_puts(&src, host_shim);
  cg_cuda_render(&src, k);
  host_driver(&src, k);
  char cpp[300], exe[300], inp[300], outp[300], cmd[1600];
  snprintf(cpp, sizeof cpp, "%s/ew.cpp", tmp_dir);
  snprintf(exe, sizeof exe, "%s/ew", tmp_dir);
  snprintf(inp, sizeof inp, "%s/ew.in", tmp_dir);
  snprintf(outp, sizeof outp, "%s/ew.out", tmp_dir);
  CHECK(write_file(cpp, src.data, src.len));
  CHECK(write_file(inp, in.data, in.len));
  snprintf(cmd, sizeof cmd,
           "c++ -std=c++20 -O1 -ffp-contract=off -w -o %s %s && %s %s %s", exe,
           cpp, exe, inp, outp);
  CHECK_EQ_INT(system(cmd), 0);
  FILE *f = fopen(outp, "rb");
  CHECK(f != NULL);
  for (int i = 0; f && i < ng; i++) {
    size_t bytes = (size_t)k->bufs[i]->count * kir_type_size(k->bufs[i]->type);
    CHECK(fread(host[i], 1, bytes, f) == bytes);
  }
  if (f)
    fclose(f);

  kiln_error err = {0};
  CHECK_EQ_INT(kir_interp_run(k, bufs, &s, &err), KILN_OK);
  int bad = 0;
  for (int i = 3; i < ng; i++) {
    const kir_buf *b = k->bufs[i];
    int sz = kir_type_size(b->type);
    for (int64_t e = 0; e < b->count; e++) {
      const unsigned char *x = (unsigned char *)bufs[i] + e * sz;
      const unsigned char *y = (unsigned char *)host[i] + e * sz;
      if (!same_bits(b->type, x, y) && bad++ < 10)
        fprintf(stderr, "%s[%lld] (element %lld, output %lld) differs\n",
                b->name, (long long)e, (long long)(e / (b->count / N)),
                (long long)(e % (b->count / N)));
    }
  }
  CHECK_EQ_INT(bad, 0);
  /* The Philox column is not a constant: the interpreter computed it from
   * support/philox.c and the rendered device function matched every one. */
  float p0 = ((float *)bufs[3])[15], p1 = ((float *)bufs[3])[NF + 15];
  CHECK(p0 != p1 && p0 >= 0.0f && p0 < 1.0f);
  CHECK(((float *)bufs[3])[24] == philox_uniform((uint64_t)s.seed, 0, 0));
  for (int i = 0; i < ng; i++) {
    free(bufs[i]);
    free(host[i]);
  }
  strbuf_free(&in);
  strbuf_free(&src);
}

/* ---- the GPU test (--gpu) ----
 * Each hand-built kernel (but the huge grids) runs on the device and by
 * the interpreter on the same inputs; integers and Philox must match
 * exactly, f32 within what CUDA's math functions (a few ulp), FMA
 * contraction and summation order allow, and TF32 tensor cores (10-bit
 * mantissas) within their own bound. */

enum { SKIP = 77 };

/* Deterministic contents for every GLOBAL buffer (outputs too: MMA reads
 * C, and a kernel that skips an element must leave it unchanged). */
static void fill(const kir_buf *b, void *mem) {
  for (int64_t i = 0; i < b->count; i++) {
    switch (b->type) {
    case KIR_F32:
      ((float *)mem)[i] = 3.0f * sinf(0.37f * (float)i + 0.1f);
      break;
    case KIR_I32:
      ((int32_t *)mem)[i] = (int32_t)((i * 37) % 201) - 100;
      break;
    case KIR_U32:
      ((uint32_t *)mem)[i] = (uint32_t)i * 2654435761u;
      break;
    case KIR_I64:
      ((int64_t *)mem)[i] = i;
      break;
    default:
      ((uint8_t *)mem)[i] = (uint8_t)(i & 1);
    }
  }
}

static kiln_status gpu_run(rt_cuda_ctx *ctx, const kir_kernel *k, int arch,
                           void **host, const kir_scalars *s, kiln_error *err) {
  char *src = render(k);
  cg_cuda_opts o = {.arch = arch, .werror = true, .no_cache = true};
  cg_cuda_binary bin;
  kiln_status st = cg_cuda_compile(k->name, src, &o, &bin, NULL, err);
  free(src);
  if (st != KILN_OK)
    return st;
  rt_cuda_fn *fn = NULL;
  st = rt_cuda_load(ctx, bin.data, k->name, &fn, err);
  cg_cuda_binary_free(&bin);
  int ng = n_globals(k);
  uint64_t dev[16] = {0};
  void *args[17];
  for (int i = 0; i < ng && st == KILN_OK; i++) {
    size_t bytes = (size_t)k->bufs[i]->count * kir_type_size(k->bufs[i]->type);
    st = rt_cuda_alloc(ctx, bytes, &dev[i], err);
    if (st == KILN_OK)
      st = rt_cuda_upload(ctx, dev[i], host[i], bytes, err);
    args[i] = &dev[i];
  }
  kir_scalars scalars = *s;
  args[ng] = &scalars;
  cg_cuda_launch_dims d = cg_cuda_launch_for(k);
  if (st == KILN_OK)
    st = rt_cuda_launch_sync(ctx, fn, d.grid, d.block, args, err);
  for (int i = 0; i < ng; i++) {
    size_t bytes = (size_t)k->bufs[i]->count * kir_type_size(k->bufs[i]->type);
    if (st == KILN_OK)
      st = rt_cuda_download(ctx, host[i], dev[i], bytes, err);
    rt_cuda_free(ctx, dev[i]);
  }
  rt_cuda_unload(ctx, fn);
  return st;
}

static void gpu_check_kernel(rt_cuda_ctx *ctx, const kir_kernel *k, int arch) {
  int ng = n_globals(k);
  void *want[16], *got[16];
  for (int i = 0; i < ng; i++) {
    size_t bytes = (size_t)k->bufs[i]->count * kir_type_size(k->bufs[i]->type);
    want[i] = malloc(bytes);
    got[i] = malloc(bytes);
    fill(k->bufs[i], want[i]);
    memcpy(got[i], want[i], bytes);
  }
  kir_scalars s = {.seed = 12345, .step = 7, .lr = 0.125f};
  kiln_error err = {0};
  CHECK_EQ_INT(kir_interp_run(k, want, &s, &err), KILN_OK);
  kiln_status st = gpu_run(ctx, k, arch, got, &s, &err);
  if (st != KILN_OK)
    fprintf(stderr, "%s\n", err.message);
  CHECK_EQ_INT(st, KILN_OK);
  bool tensor_cores = strstr(k->name, "tensor_cores") != NULL;
  int bad = 0;
  for (int i = 0; i < ng && st == KILN_OK; i++) {
    const kir_buf *b = k->bufs[i];
    int sz = kir_type_size(b->type);
    for (int64_t e = 0; e < b->count; e++) {
      const unsigned char *w = (unsigned char *)want[i] + e * sz;
      const unsigned char *g = (unsigned char *)got[i] + e * sz;
      bool ok = same_bits(b->type, w, g);
      if (!ok && b->type == KIR_F32) {
        float x, y;
        memcpy(&x, w, 4);
        memcpy(&y, g, 4);
        double tol =
            tensor_cores ? 0.1 + 2e-3 * fabs(x) : 1e-5 + 1e-5 * fabs(x);
        ok = fabs((double)x - (double)y) <= tol;
      }
      if (!ok && bad++ < 10)
        fprintf(stderr, "%s: %s[%lld] differs from the interpreter\n", k->name,
                b->name, (long long)e);
    }
  }
  CHECK_EQ_INT(bad, 0);
  for (int i = 0; i < ng; i++) {
    free(want[i]);
    free(got[i]);
  }
}

static int gpu_main(void) {
  rt_cuda_info info;
  kiln_error err = {0};
  if (rt_cuda_probe(&info, &err) != KILN_OK) {
    const char *why = err.message;
    if (strncmp(why, "error: ", 7) == 0)
      why += 7;
    printf("SKIPPED: %s", why); /* "no CUDA driver (...)" or "no GPU ..." */
    return SKIP;
  }
  int arch = rt_cuda_arch(&info.dev[0]);
  printf("CUDA driver %d, %d device(s); device 0: %s, sm_%d, %.1f GiB\n",
         info.driver_version, info.n_devices, info.dev[0].name, arch,
         (double)info.dev[0].total_mem / (1024.0 * 1024.0 * 1024.0));
  CHECK(info.n_devices > 0 && arch >= 50);
  rt_cuda_ctx *ctx = NULL;
  if (rt_cuda_open(0, &ctx, &err) != KILN_OK) {
    fprintf(stderr, "%s\n", err.message);
    return 1;
  }
  kir_kernel *ks[16];
  int n = n_hand_kernels(ks);
  for (int i = 0; i < n; i++) {
    if (strncmp(ks[i]->name, "huge_grid", 9) == 0)
      continue; /* billions of blocks: compiled by the CPU tests only */
    int before = test_failures_;
    gpu_check_kernel(ctx, ks[i], arch);
    printf("%s %s on the GPU\n", test_failures_ == before ? "ok  " : "FAIL",
           ks[i]->name);
    if (test_failures_ == before)
      test_passed_++;
    else
      test_failed_++;
  }
  rt_cuda_close(ctx);
  return TEST_SUMMARY();
}

/* `test_cuda_codegen NAME...` runs only the tests named. */
static int n_only;
static char **only;
static bool selected(const char *name) {
  for (int i = 0; i < n_only; i++)
    if (strcmp(only[i], name) == 0)
      return true;
  return n_only == 0;
}
#define RUN_IF(name)                                                           \
  do {                                                                         \
    if (selected(#name))                                                       \
      RUN(name);                                                               \
  } while (0)

int main(int argc, char **argv) {
  arena_init(&A);
  if (argc > 1 && strcmp(argv[1], "--gpu") == 0) {
    int rc = gpu_main();
    arena_free(&A);
    return rc;
  }
  int major = 0, minor = 0;
  kiln_error err = {0};
  if (cg_cuda_nvrtc_version(&major, &minor, &err) != KILN_OK) {
    fprintf(stderr, "%s\n", err.message);
    return 1; /* the toolkit is a build requirement: a failure, not a skip */
  }
  printf("NVRTC %d.%d\n", major, minor);
  n_only = argc - 1;
  only = argv + 1;
  if (!mkdtemp(tmp_dir)) {
    perror("mkdtemp");
    return 1;
  }
  RUN_IF(test_hand_kernels_compile);
  RUN_IF(test_rendered_mapping);
  RUN_IF(test_launch_dims);
  RUN_IF(test_elementwise_matches_interpreter);
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", tmp_dir);
  arena_free(&A);
  return TEST_SUMMARY();
}
