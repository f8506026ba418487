/* test_llvm.c — the LLVM renderer and JIT: hand-built kernels are
 * JIT-compiled and run on the CPU thread pool, and compared with the
 * kernel IR interpreter (tests/support/kir_interp.h, the definition) and
 * with values computed here in C (libm, support/philox.c, sums); also the
 * module's IR text, the disk cache and LLVM's verifier.
 * Sizes are odd so that no loop divides evenly by a vector width or a
 * chunk size. */
#include "codegen/llvm/cg_llvm.h"
#include "runtime/cpu/rt_cpu.h"
#include "support/kir_interp.h"
#include "test.h"

#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

static rt_cpu_pool *pool; /* 3 threads: more than one, not a divisor */
/* Tests compile fresh, except the disk cache's own test. */
static const cg_llvm_opts nocache = {.no_cache = true};

typedef struct launch {
  cg_llvm_kernel_fn fn;
  void **bufs;
  const kir_scalars *s;
} launch;

static void run_range(void *ctx, int64_t begin, int64_t end) {
  launch *l = ctx;
  l->fn(l->bufs, l->s, begin, end);
}

/* Verifies, compiles and runs k over its whole grid on pool p. */
static bool jit_run_on(rt_cpu_pool *p, kir_kernel *k, void **bufs,
                       const kir_scalars *s) {
  kiln_error err = {0};
  if (kir_verify(k, &err) != KILN_OK) {
    fprintf(stderr, "%s\n", err.message);
    CHECK(!"kir_verify");
    return false;
  }
  cg_llvm_module *m;
  if (cg_llvm_compile(&k, 1, &nocache, &m, &err) != KILN_OK) {
    fprintf(stderr, "%s\n", err.message);
    CHECK(!"cg_llvm_compile");
    return false;
  }
  launch l = {cg_llvm_fn(m, 0), bufs, s};
  rt_cpu_pool_for(p, cg_llvm_grid(m, 0, s), run_range, &l);
  cg_llvm_free(m);
  return true;
}

static bool jit_run(kir_kernel *k, void **bufs, const kir_scalars *s) {
  return jit_run_on(pool, k, bufs, s);
}

static void interp_run(kir_kernel *k, void **bufs, const kir_scalars *s) {
  kiln_error err = {0};
  kiln_status st = kir_interp_run(k, bufs, s, &err);
  if (st != KILN_OK)
    fprintf(stderr, "interpreter: %s\n", err.message);
  CHECK_EQ_INT(st, KILN_OK);
}

static bool close_f(float a, float b, float rel) {
  if (isnan(a) || isnan(b))
    return isnan(a) && isnan(b);
  return fabsf(a - b) <= rel * fmaxf(1.0f, fabsf(b));
}

/* Counts mismatches of two float arrays (and prints the first). */
static int diff_f32(const char *what, const float *got, const float *want,
                    int64_t n, float rel) {
  int bad = 0;
  for (int64_t i = 0; i < n; i++)
    if (!close_f(got[i], want[i], rel) && bad++ == 0)
      fprintf(stderr, "%s[%lld]: %.9g, expected %.9g\n", what, (long long)i,
              got[i], want[i]);
  return bad;
}

static const kir_scalars no_scalars = {0};

/* ---- elementwise float ops ---- */

enum { EW_N = 1001 };
static const kir_op ew_unary[] = {KIR_NEG,  KIR_ABS,   KIR_EXP,
                                  KIR_LOG,  KIR_TANH,  KIR_ERF,
                                  KIR_SQRT, KIR_RSQRT, KIR_FLOOR};
static const kir_op ew_binary[] = {KIR_ADD, KIR_SUB, KIR_MUL, KIR_DIV,
                                   KIR_MIN, KIR_MAX, KIR_POW};
enum { EW_OUTS = ARRAY_LEN(ew_unary) + ARRAY_LEN(ew_binary) + 3 };

static float ew_oracle(kir_op op, float x, float y) {
  switch (op) {
  case KIR_NEG:
    return -x;
  case KIR_ABS:
    return fabsf(x);
  case KIR_EXP:
    return expf(x);
  case KIR_LOG:
    return logf(x);
  case KIR_TANH:
    return tanhf(x);
  case KIR_ERF:
    return erff(x);
  case KIR_SQRT:
    return sqrtf(x);
  case KIR_RSQRT:
    return 1.0f / sqrtf(x);
  case KIR_FLOOR:
    return floorf(x);
  case KIR_ADD:
    return x + y;
  case KIR_SUB:
    return x - y;
  case KIR_MUL:
    return x * y;
  case KIR_DIV:
    return x / y;
  case KIR_MIN:
    return fminf(x, y);
  case KIR_MAX:
    return fmaxf(x, y);
  case KIR_POW:
    return powf(x, y);
  default:
    return NAN;
  }
}

TEST(test_elementwise_float) {
  arena a;
  arena_init(&a);
  kir_kernel *k = kir_kernel_new(&a, "ew_float", 0);
  kir_buf *x = kir_global(k, "x", KIR_F32, EW_N, true);
  kir_buf *y = kir_global(k, "y", KIR_F32, EW_N, true);
  kir_buf *o = kir_global(k, "o", KIR_F32, (int64_t)EW_OUTS * EW_N, false);
  kir_var *i = kir_for(k, KIR_LOOP_GRID, "i", kir_i64(k, EW_N));
  kir_var *xv = kir_let(k, "xv", kir_load(k, x, kir_ref(k, i)));
  kir_var *yv = kir_let(k, "yv", kir_load(k, y, kir_ref(k, i)));
  int slot = 0;
#define OUT(e)                                                                 \
  kir_store(                                                                   \
      k, o,                                                                    \
      kir_bin(k, KIR_ADD, kir_i64(k, (int64_t)slot++ *EW_N), kir_ref(k, i)),   \
      (e))
  for (size_t u = 0; u < ARRAY_LEN(ew_unary); u++)
    OUT(kir_un(k, ew_unary[u], kir_ref(k, xv)));
  for (size_t u = 0; u < ARRAY_LEN(ew_binary); u++)
    OUT(kir_bin(k, ew_binary[u], kir_ref(k, xv), kir_ref(k, yv)));
  /* select(x < y, x, 2y); f32 -> i32 -> f32 (truncation toward zero);
   * x*y + 1 (a contractible multiply-add) */
  OUT(kir_select(k, kir_bin(k, KIR_LT, kir_ref(k, xv), kir_ref(k, yv)),
                 kir_ref(k, xv),
                 kir_bin(k, KIR_MUL, kir_f32(k, 2), kir_ref(k, yv))));
  OUT(kir_cast(k, KIR_F32,
               kir_cast(k, KIR_I32,
                        kir_bin(k, KIR_MUL, kir_ref(k, yv), kir_f32(k, 7)))));
  OUT(kir_bin(k, KIR_ADD, kir_bin(k, KIR_MUL, kir_ref(k, xv), kir_ref(k, yv)),
              kir_f32(k, 1)));
#undef OUT
  kir_end(k);

  float *xs = malloc(sizeof(float) * EW_N), *ys = malloc(sizeof(float) * EW_N);
  float *oj = calloc((size_t)EW_OUTS * EW_N, sizeof(float));
  float *oi = calloc((size_t)EW_OUTS * EW_N, sizeof(float));
  for (int n = 0; n < EW_N; n++) {
    xs[n] = 0.05f + 0.0031f * (float)n; /* positive: log, sqrt, pow */
    ys[n] = 1.7f - 0.0043f * (float)n;  /* crosses zero: signs, floor */
  }
  void *bj[] = {xs, ys, oj}, *bi[] = {xs, ys, oi};
  if (jit_run(k, bj, &no_scalars)) {
    interp_run(k, bi, &no_scalars);
    int bad =
        diff_f32("llvm vs interp", oj, oi, (int64_t)EW_OUTS * EW_N, 2e-6f);
    size_t nu = ARRAY_LEN(ew_unary), nb = ARRAY_LEN(ew_binary);
    for (int n = 0; n < EW_N; n++) {
      float xv_ = xs[n], yv_ = ys[n];
      float want[EW_OUTS];
      for (size_t u = 0; u < nu; u++)
        want[u] = ew_oracle(ew_unary[u], xv_, 0);
      for (size_t u = 0; u < nb; u++)
        want[nu + u] = ew_oracle(ew_binary[u], xv_, yv_);
      want[nu + nb] = xv_ < yv_ ? xv_ : 2 * yv_;
      want[nu + nb + 1] = (float)(int32_t)(yv_ * 7);
      want[nu + nb + 2] = xv_ * yv_ + 1;
      for (int s = 0; s < EW_OUTS; s++)
        if (!close_f(oj[(int64_t)s * EW_N + n], want[s], 2e-6f) && bad++ < 5)
          fprintf(stderr, "out %d at %d: %.9g, C says %.9g\n", s, n,
                  oj[(int64_t)s * EW_N + n], want[s]);
    }
    CHECK_EQ_INT(bad, 0);
  }
  free(xs);
  free(ys);
  free(oj);
  free(oi);
  arena_free(&a);
}

/* min/max keep C's fminf/fmaxf meaning: a NaN operand gives the other. */
TEST(test_minmax_nan) {
  arena a;
  arena_init(&a);
  kir_kernel *k = kir_kernel_new(&a, "minmax_nan", 0);
  kir_buf *x = kir_global(k, "x", KIR_F32, 3, true);
  kir_buf *o = kir_global(k, "o", KIR_F32, 6, false);
  kir_var *i = kir_for(k, KIR_LOOP_GRID, "i", kir_i64(k, 3));
  kir_expr *xi = kir_load(k, x, kir_ref(k, i));
  kir_store(k, o, kir_ref(k, i), kir_bin(k, KIR_MAX, xi, kir_f32(k, 0)));
  kir_store(k, o, kir_bin(k, KIR_ADD, kir_ref(k, i), kir_i64(k, 3)),
            kir_bin(k, KIR_MIN, kir_f32(k, 1), xi));
  kir_end(k);
  float xs[3] = {NAN, -2.5f, 4.0f}, os[6] = {0};
  void *b[] = {xs, os};
  if (jit_run(k, b, &no_scalars)) {
    CHECK(os[0] == 0.0f && os[1] == 0.0f && os[2] == 4.0f);
    CHECK(os[3] == 1.0f && os[4] == -2.5f && os[5] == 1.0f);
  }
  arena_free(&a);
}

/* ---- integer and bool ops ---- */

enum { INT_N = 77 };

TEST(test_integer_ops) {
  arena a;
  arena_init(&a);
  kir_kernel *k = kir_kernel_new(&a, "int_ops", 0);
  kir_buf *x = kir_global(k, "x", KIR_I32, INT_N, true);
  kir_buf *y = kir_global(k, "y", KIR_I32, INT_N, true);
  kir_buf *u = kir_global(k, "u", KIR_U32, INT_N, true);
  kir_buf *o = kir_global(k, "o", KIR_I64, 24 * INT_N, false);
  kir_buf *ob = kir_global(k, "ob", KIR_BOOL, 6 * INT_N, false);
  kir_var *i = kir_for(k, KIR_LOOP_GRID, "i", kir_i64(k, INT_N));
  kir_expr *xi = kir_load(k, x, kir_ref(k, i));
  kir_expr *yi = kir_load(k, y, kir_ref(k, i));
  kir_expr *ui = kir_load(k, u, kir_ref(k, i));
  kir_expr *sh = kir_bin(k, KIR_AND, yi, kir_int(k, KIR_I32, 7));
  kir_expr *ush = kir_cast(k, KIR_U32, sh);
  kir_expr *ud = kir_bin(k, KIR_OR, kir_cast(k, KIR_U32, yi),
                         kir_int(k, KIR_U32, 1)); /* odd: never zero */
  kir_expr *outs[] = {
      kir_bin(k, KIR_ADD, xi, yi),
      kir_bin(k, KIR_SUB, xi, yi),
      kir_bin(k, KIR_MUL, xi, yi),
      kir_bin(k, KIR_DIV, xi, yi),
      kir_bin(k, KIR_MOD, xi, yi),
      kir_bin(k, KIR_MIN, xi, yi),
      kir_bin(k, KIR_MAX, xi, yi),
      kir_bin(k, KIR_AND, xi, yi),
      kir_bin(k, KIR_OR, xi, yi),
      kir_bin(k, KIR_XOR, xi, yi),
      kir_bin(k, KIR_SHL, xi, sh),
      kir_bin(k, KIR_SHR, xi, sh),
      kir_un(k, KIR_NEG, xi),
      kir_un(k, KIR_ABS, xi),
      kir_bin(k, KIR_DIV, ui, ud),
      kir_bin(k, KIR_MOD, ui, ud),
      kir_bin(k, KIR_SHR, ui, ush),
      kir_bin(k, KIR_MIN, ui, ud),
      kir_cast(k, KIR_I32, kir_cast(k, KIR_F32, xi)),
      kir_cast(k, KIR_I32,
               kir_bin(k, KIR_DIV, kir_cast(k, KIR_F32, xi), kir_f32(k, 3))),
      kir_cast(k, KIR_I32, kir_cast(k, KIR_I64, ui)), /* truncates */
      kir_bin(k, KIR_MUL, kir_cast(k, KIR_I64, xi), kir_i64(k, 3000000007LL)),
      kir_cast(k, KIR_I32, kir_cast(k, KIR_BOOL, xi)),
      kir_cast(k, KIR_U32, kir_bin(k, KIR_SUB, xi, yi)),
  };
  KILN_ASSERT(ARRAY_LEN(outs) == 24);
  for (int s = 0; s < 24; s++) {
    kir_expr *idx =
        kir_bin(k, KIR_ADD, kir_i64(k, (int64_t)s * INT_N), kir_ref(k, i));
    kir_expr *v = outs[s];
    kir_store(k, o, idx, v->type == KIR_I64 ? v : kir_cast(k, KIR_I64, v));
  }
  kir_expr *bools[] = {
      kir_bin(k, KIR_LT, xi, yi),
      kir_bin(k, KIR_LE, xi, yi),
      kir_bin(k, KIR_EQ, xi, yi),
      kir_bin(k, KIR_NE, xi, yi),
      kir_bin(k, KIR_LT, ui, ud), /* unsigned compare */
      kir_bin(
          k, KIR_XOR, kir_un(k, KIR_NOT, kir_bin(k, KIR_LT, xi, yi)),
          kir_bin(k, KIR_AND, kir_bin(k, KIR_EQ, xi, yi), kir_bool(k, true))),
  };
  for (int s = 0; s < 6; s++)
    kir_store(
        k, ob,
        kir_bin(k, KIR_ADD, kir_i64(k, (int64_t)s * INT_N), kir_ref(k, i)),
        bools[s]);
  kir_end(k);

  int32_t xs[INT_N], ys[INT_N];
  uint32_t us[INT_N];
  for (int n = 0; n < INT_N; n++) {
    xs[n] = (n * 7919) % 2001 - 1000;
    ys[n] = n % 5 == 0 ? xs[n] : (n * 104729) % 97 - 48;
    if (ys[n] == 0)
      ys[n] = 13;
    us[n] = 0x80000000u + (uint32_t)n * 2654435761u;
  }
  int64_t *oj = calloc(24 * INT_N, 8), *oi = calloc(24 * INT_N, 8);
  uint8_t bj_[6 * INT_N] = {0}, bi_[6 * INT_N] = {0};
  void *bj[] = {xs, ys, us, oj, bj_}, *bi[] = {xs, ys, us, oi, bi_};
  if (jit_run(k, bj, &no_scalars)) {
    interp_run(k, bi, &no_scalars);
    CHECK(memcmp(oj, oi, 24 * INT_N * 8) == 0);
    CHECK(memcmp(bj_, bi_, sizeof bj_) == 0);
    int bad = 0;
    for (int n = 0; n < INT_N; n++) {
      int32_t xv = xs[n], yv = ys[n], s = yv & 7;
      uint32_t uv = us[n], d = (uint32_t)yv | 1u;
      int64_t want[24] = {xv + yv,
                          xv - yv,
                          xv * yv,
                          xv / yv,
                          xv % yv,
                          xv < yv ? xv : yv,
                          xv > yv ? xv : yv,
                          xv & yv,
                          xv | yv,
                          xv ^ yv,
                          (int32_t)((uint32_t)xv << s),
                          xv >> s,
                          -xv,
                          xv < 0 ? -xv : xv,
                          uv / d,
                          uv % d,
                          uv >> s,
                          uv < d ? uv : d,
                          xv,
                          (int32_t)((float)xv / 3.0f),
                          (int32_t)uv,
                          (int64_t)xv * 3000000007LL,
                          xv != 0,
                          (uint32_t)(xv - yv)};
      for (int q = 0; q < 24; q++)
        if (oj[q * INT_N + n] != want[q] && bad++ < 5)
          fprintf(stderr, "int out %d at %d: %lld, expected %lld\n", q, n,
                  (long long)oj[q * INT_N + n], (long long)want[q]);
      uint8_t wb[6] = {xv < yv,  xv <= yv, xv == yv,
                       xv != yv, uv < d,   !(xv < yv) ^ (xv == yv)};
      for (int q = 0; q < 6; q++)
        if (bj_[q * INT_N + n] != wb[q] && bad++ < 5)
          fprintf(stderr, "bool out %d at %d: %d\n", q, n, bj_[q * INT_N + n]);
    }
    CHECK_EQ_INT(bad, 0);
  }
  free(oj);
  free(oi);
  arena_free(&a);
}

/* ---- reductions ---- */

enum { RED_ROWS = 37, RED_COLS = 53 };

/* A serial reduction per row: the same float additions in the same order
 * as the interpreter, so the results are identical. */
TEST(test_row_reduction) {
  arena a;
  arena_init(&a);
  kir_kernel *k = kir_kernel_new(&a, "rowsum", 0);
  kir_buf *x = kir_global(k, "x", KIR_F32, RED_ROWS * RED_COLS, true);
  kir_buf *o = kir_global(k, "o", KIR_F32, 2 * RED_ROWS, false);
  kir_var *r = kir_for(k, KIR_LOOP_GRID, "r", kir_i64(k, RED_ROWS));
  kir_var *sum = kir_let(k, "sum", kir_f32(k, 0));
  kir_var *mx = kir_let(k, "mx", kir_f32(k, -INFINITY));
  kir_var *c = kir_for(k, KIR_LOOP_SERIAL, "c", kir_i64(k, RED_COLS));
  kir_expr *v =
      kir_load(k, x,
               kir_bin(k, KIR_ADD,
                       kir_bin(k, KIR_MUL, kir_ref(k, r), kir_i64(k, RED_COLS)),
                       kir_ref(k, c)));
  kir_assign(k, sum, kir_bin(k, KIR_ADD, kir_ref(k, sum), v));
  kir_assign(k, mx, kir_bin(k, KIR_MAX, kir_ref(k, mx), v));
  kir_end(k);
  kir_store(k, o, kir_ref(k, r), kir_ref(k, sum));
  kir_store(k, o, kir_bin(k, KIR_ADD, kir_ref(k, r), kir_i64(k, RED_ROWS)),
            kir_ref(k, mx));
  kir_end(k);
  float xs[RED_ROWS * RED_COLS], oj[2 * RED_ROWS], oi[2 * RED_ROWS];
  for (int n = 0; n < RED_ROWS * RED_COLS; n++)
    xs[n] = sinf((float)n * 0.37f) * 3.0f;
  void *bj[] = {xs, oj}, *bi[] = {xs, oi};
  if (jit_run(k, bj, &no_scalars)) {
    interp_run(k, bi, &no_scalars);
    CHECK(memcmp(oj, oi, sizeof oj) == 0);
    for (int rr = 0; rr < RED_ROWS; rr++) {
      double s = 0, m = -INFINITY;
      for (int cc = 0; cc < RED_COLS; cc++) {
        s += xs[rr * RED_COLS + cc];
        m = fmax(m, xs[rr * RED_COLS + cc]);
      }
      CHECK_NEAR(oj[rr], s, 1e-4);
      CHECK(oj[RED_ROWS + rr] == (float)m);
    }
  }
  arena_free(&a);
}

/* ---- blocks: GRID x THREAD, SHARED, LOCAL, BARRIER, BLOCK_REDUCE ---- */

enum { BLK_ROWS = 13, BLK_COLS = 101, BLK_T = 32 };

/* Per row b: each thread t sums x[b, j] for j = t, t+T, ... into its LOCAL
 * copy and also stages its elements in a SHARED row; after a barrier the
 * block reduces the copies (sum and max), and the threads write the row
 * reversed out of SHARED memory. */
TEST(test_block_reduce_shared) {
  arena a;
  arena_init(&a);
  kir_kernel *k = kir_kernel_new(&a, "block_rows", BLK_T);
  kir_buf *x = kir_global(k, "x", KIR_F32, BLK_ROWS * BLK_COLS, true);
  kir_buf *sums = kir_global(k, "sums", KIR_F32, 2 * BLK_ROWS, false);
  kir_buf *rev = kir_global(k, "rev", KIR_F32, BLK_ROWS * BLK_COLS, false);
  kir_buf *row = kir_shared(k, "row", KIR_F32, BLK_COLS);
  kir_buf *tot = kir_shared(k, "tot", KIR_F32, 1);
  kir_buf *big = kir_shared(k, "big", KIR_F32, 1);
  kir_buf *acc = kir_local(k, "acc", KIR_F32, 1);
  kir_buf *hi = kir_local(k, "hi", KIR_F32, 1);
  kir_var *b = kir_for(k, KIR_LOOP_GRID, "b", kir_i64(k, BLK_ROWS));
  kir_expr *base = kir_bin(k, KIR_MUL, kir_ref(k, b), kir_i64(k, BLK_COLS));
  kir_var *t = kir_for(k, KIR_LOOP_THREAD, "t", kir_i64(k, BLK_T));
  kir_store(k, acc, kir_i64(k, 0), kir_f32(k, 0));
  kir_store(k, hi, kir_i64(k, 0), kir_f32(k, -INFINITY));
  kir_var *j = kir_for(k, KIR_LOOP_SERIAL, "j",
                       kir_i64(k, (BLK_COLS + BLK_T - 1) / BLK_T));
  kir_var *col = kir_let(
      k, "col",
      kir_bin(k, KIR_ADD, kir_bin(k, KIR_MUL, kir_ref(k, j), kir_i64(k, BLK_T)),
              kir_ref(k, t)));
  kir_if(k, kir_bin(k, KIR_LT, kir_ref(k, col), kir_i64(k, BLK_COLS)));
  kir_var *v = kir_let(
      k, "v", kir_load(k, x, kir_bin(k, KIR_ADD, base, kir_ref(k, col))));
  kir_store(k, row, kir_ref(k, col), kir_ref(k, v));
  kir_store(
      k, acc, kir_i64(k, 0),
      kir_bin(k, KIR_ADD, kir_load(k, acc, kir_i64(k, 0)), kir_ref(k, v)));
  kir_store(k, hi, kir_i64(k, 0),
            kir_bin(k, KIR_MAX, kir_load(k, hi, kir_i64(k, 0)), kir_ref(k, v)));
  kir_end(k); /* if */
  kir_end(k); /* j */
  kir_end(k); /* t */
  kir_barrier(k);
  kir_block_reduce(k, KIR_ADD, tot, acc);
  kir_block_reduce(k, KIR_MAX, big, hi);
  kir_barrier(k);
  t = kir_for(k, KIR_LOOP_THREAD, "t2", kir_i64(k, BLK_T));
  kir_if(k, kir_bin(k, KIR_EQ, kir_ref(k, t), kir_i64(k, 0)));
  kir_store(k, sums, kir_ref(k, b), kir_load(k, tot, kir_i64(k, 0)));
  kir_store(k, sums, kir_bin(k, KIR_ADD, kir_ref(k, b), kir_i64(k, BLK_ROWS)),
            kir_load(k, big, kir_i64(k, 0)));
  kir_end(k);
  j = kir_for(k, KIR_LOOP_SERIAL, "j2",
              kir_i64(k, (BLK_COLS + BLK_T - 1) / BLK_T));
  col = kir_let(k, "col2",
                kir_bin(k, KIR_ADD,
                        kir_bin(k, KIR_MUL, kir_ref(k, j), kir_i64(k, BLK_T)),
                        kir_ref(k, t)));
  kir_if(k, kir_bin(k, KIR_LT, kir_ref(k, col), kir_i64(k, BLK_COLS)));
  kir_store(
      k, rev, kir_bin(k, KIR_ADD, base, kir_ref(k, col)),
      kir_load(k, row,
               kir_bin(k, KIR_SUB, kir_i64(k, BLK_COLS - 1), kir_ref(k, col))));
  kir_end(k);
  kir_end(k);
  kir_end(k); /* t2 */
  kir_end(k); /* b */
  enum { NX = BLK_ROWS * BLK_COLS };
  float *xs = malloc(sizeof(float) * NX), *rj = malloc(sizeof(float) * NX),
        *ri = malloc(sizeof(float) * NX);
  float sj[2 * BLK_ROWS], si[2 * BLK_ROWS];
  for (int n = 0; n < NX; n++)
    xs[n] = cosf((float)n * 0.11f) + (float)(n % 7) * 0.25f;
  void *bj[] = {xs, sj, rj}, *bi[] = {xs, si, ri};
  if (jit_run(k, bj, &no_scalars)) {
    interp_run(k, bi, &no_scalars);
    CHECK(memcmp(sj, si, sizeof sj) == 0);
    CHECK(memcmp(rj, ri, sizeof(float) * NX) == 0);
    for (int r = 0; r < BLK_ROWS; r++) {
      double s = 0, m = -INFINITY;
      for (int c = 0; c < BLK_COLS; c++) {
        s += xs[r * BLK_COLS + c];
        m = fmax(m, xs[r * BLK_COLS + c]);
        CHECK(rj[r * BLK_COLS + c] == xs[r * BLK_COLS + BLK_COLS - 1 - c]);
      }
      CHECK_NEAR(sj[r], s, 1e-4);
      CHECK(sj[BLK_ROWS + r] == (float)m);
    }
  }
  free(xs);
  free(rj);
  free(ri);
  arena_free(&a);
}

/* LOCAL buffers of several elements keep each thread's values across
 * phases: thread t stores 3 values, a later thread loop reads them. */
TEST(test_local_across_phases) {
  enum { T = 7, G = 5, C = 3 };
  arena a;
  arena_init(&a);
  kir_kernel *k = kir_kernel_new(&a, "local_phases", T);
  kir_buf *x = kir_global(k, "x", KIR_F32, G * T, true);
  kir_buf *o = kir_global(k, "o", KIR_F32, G * T * C, false);
  kir_buf *l = kir_local(k, "l", KIR_F32, C);
  kir_var *g = kir_for(k, KIR_LOOP_GRID, "g", kir_i64(k, G));
  kir_var *t = kir_for(k, KIR_LOOP_THREAD, "t", kir_i64(k, T));
  kir_var *xv = kir_let(
      k, "xv",
      kir_load(k, x,
               kir_bin(k, KIR_ADD,
                       kir_bin(k, KIR_MUL, kir_ref(k, g), kir_i64(k, T)),
                       kir_ref(k, t))));
  kir_var *c = kir_for(k, KIR_LOOP_UNROLL, "c", kir_i64(k, C));
  kir_store(
      k, l, kir_ref(k, c),
      kir_bin(k, KIR_MUL, kir_ref(k, xv),
              kir_cast(k, KIR_F32,
                       kir_bin(k, KIR_ADD, kir_ref(k, c), kir_i64(k, 1)))));
  kir_end(k);
  kir_end(k);
  kir_barrier(k);
  t = kir_for(k, KIR_LOOP_THREAD, "t2", kir_i64(k, T));
  c = kir_for(k, KIR_LOOP_SERIAL, "c2", kir_i64(k, C));
  kir_expr *oi =
      kir_bin(k, KIR_ADD,
              kir_bin(k, KIR_MUL,
                      kir_bin(k, KIR_ADD,
                              kir_bin(k, KIR_MUL, kir_ref(k, g), kir_i64(k, T)),
                              kir_ref(k, t)),
                      kir_i64(k, C)),
              kir_ref(k, c));
  kir_store(
      k, o, oi,
      kir_bin(k, KIR_ADD, kir_load(k, l, kir_ref(k, c)), kir_f32(k, 0.5f)));
  kir_end(k);
  kir_end(k);
  kir_end(k);
  float xs[G * T], oj[G * T * C], ois[G * T * C];
  for (int n = 0; n < G * T; n++)
    xs[n] = (float)n - 11.0f;
  void *bj[] = {xs, oj}, *bi[] = {xs, ois};
  if (jit_run(k, bj, &no_scalars)) {
    interp_run(k, bi, &no_scalars);
    CHECK(memcmp(oj, ois, sizeof oj) == 0);
    int bad = 0;
    for (int n = 0; n < G * T; n++)
      for (int q = 0; q < C; q++)
        bad += oj[n * C + q] != xs[n] * (float)(q + 1) + 0.5f;
    CHECK_EQ_INT(bad, 0);
  }
  arena_free(&a);
}

/* ---- MMA on odd tiles ---- */

enum { MM_M = 5, MM_N = 7, MM_K = 3, MM_G = 3 };

TEST(test_mma_odd_tiles) {
  arena a;
  arena_init(&a);
  kir_kernel *k = kir_kernel_new(&a, "mma_tiles", 3);
  kir_buf *ga = kir_global(k, "A", KIR_F32, MM_G * MM_M * MM_K, true);
  kir_buf *gb = kir_global(k, "B", KIR_F32, MM_K * MM_N, true);
  kir_buf *gc = kir_global(k, "C", KIR_F32, MM_G * MM_M * MM_N, false);
  kir_buf *sa = kir_shared(k, "sa", KIR_F32, MM_M * MM_K);
  kir_buf *sb = kir_shared(k, "sb", KIR_F32, MM_K * MM_N);
  kir_buf *sc = kir_shared(k, "sc", KIR_F32, MM_M * MM_N);
  kir_var *g = kir_for(k, KIR_LOOP_GRID, "g", kir_i64(k, MM_G));
  kir_var *t = kir_for(k, KIR_LOOP_THREAD, "t", kir_i64(k, 3));
  kir_if(k, kir_bin(k, KIR_EQ, kir_ref(k, t), kir_i64(k, 0)));
  kir_var *i = kir_for(k, KIR_LOOP_SERIAL, "i", kir_i64(k, MM_M * MM_K));
  kir_store(k, sa, kir_ref(k, i),
            kir_load(k, ga,
                     kir_bin(k, KIR_ADD,
                             kir_bin(k, KIR_MUL, kir_ref(k, g),
                                     kir_i64(k, MM_M * MM_K)),
                             kir_ref(k, i))));
  kir_end(k);
  i = kir_for(k, KIR_LOOP_SERIAL, "i2", kir_i64(k, MM_K * MM_N));
  kir_store(k, sb, kir_ref(k, i), kir_load(k, gb, kir_ref(k, i)));
  kir_end(k);
  i = kir_for(k, KIR_LOOP_SERIAL, "i3", kir_i64(k, MM_M * MM_N));
  kir_store(k, sc, kir_ref(k, i),
            kir_cast(k, KIR_F32, kir_ref(k, g))); /* C starts at g */
  kir_end(k);
  kir_end(k); /* if */
  kir_end(k); /* t */
  kir_barrier(k);
  kir_mma(k, sc, sa, sb, MM_M, MM_N, MM_K);
  kir_barrier(k);
  t = kir_for(k, KIR_LOOP_THREAD, "t2", kir_i64(k, 3));
  kir_if(k, kir_bin(k, KIR_EQ, kir_ref(k, t), kir_i64(k, 1)));
  i = kir_for(k, KIR_LOOP_SERIAL, "i4", kir_i64(k, MM_M * MM_N));
  kir_store(k, gc,
            kir_bin(k, KIR_ADD,
                    kir_bin(k, KIR_MUL, kir_ref(k, g), kir_i64(k, MM_M * MM_N)),
                    kir_ref(k, i)),
            kir_load(k, sc, kir_ref(k, i)));
  kir_end(k);
  kir_end(k);
  kir_end(k);
  kir_end(k);
  float as[MM_G * MM_M * MM_K], bs[MM_K * MM_N];
  float cj[MM_G * MM_M * MM_N], ci[MM_G * MM_M * MM_N];
  for (int n = 0; n < MM_G * MM_M * MM_K; n++)
    as[n] = 0.3f * (float)(n % 11) - 1.1f;
  for (int n = 0; n < MM_K * MM_N; n++)
    bs[n] = 0.7f - 0.13f * (float)n;
  void *bj[] = {as, bs, cj}, *bi[] = {as, bs, ci};
  if (jit_run(k, bj, &no_scalars)) {
    interp_run(k, bi, &no_scalars);
    CHECK_EQ_INT(diff_f32("mma vs interp", cj, ci, MM_G * MM_M * MM_N, 1e-6f),
                 0);
    for (int gg = 0; gg < MM_G; gg++)
      for (int m = 0; m < MM_M; m++)
        for (int n = 0; n < MM_N; n++) {
          double s = gg;
          for (int q = 0; q < MM_K; q++)
            s += (double)as[gg * MM_M * MM_K + m * MM_K + q] * bs[q * MM_N + n];
          CHECK_NEAR(cj[gg * MM_M * MM_N + m * MM_N + n], s, 1e-5);
        }
  }
  arena_free(&a);
}

/* ---- atomics from many blocks on several threads ---- */

TEST(test_atomic_add) {
  enum { G = 999, T = 5 };
  arena a;
  arena_init(&a);
  /* Without threads: every block adds 1 to o[b % 7] and b to o[7]. */
  kir_kernel *k = kir_kernel_new(&a, "atomics", 0);
  kir_buf *o = kir_global(k, "o", KIR_F32, 8, false);
  kir_var *b = kir_for(k, KIR_LOOP_GRID, "b", kir_i64(k, G));
  kir_atomic_add(k, o, kir_bin(k, KIR_MOD, kir_ref(k, b), kir_i64(k, 7)),
                 kir_f32(k, 1));
  kir_atomic_add(k, o, kir_i64(k, 7), kir_cast(k, KIR_F32, kir_ref(k, b)));
  kir_end(k);
  /* With threads: every thread of every block adds 1 to p[t]. */
  kir_kernel *k2 = kir_kernel_new(&a, "atomics_threads", T);
  kir_buf *p = kir_global(k2, "p", KIR_F32, T, false);
  kir_for(k2, KIR_LOOP_GRID, "b", kir_i64(k2, G));
  kir_var *t = kir_for(k2, KIR_LOOP_THREAD, "t", kir_i64(k2, T));
  kir_atomic_add(k2, p, kir_ref(k2, t), kir_f32(k2, 1));
  kir_end(k2);
  kir_end(k2);
  rt_cpu_pool *wide = rt_cpu_pool_new(4);
  float os[8] = {0}, ps[T] = {0};
  void *b1[] = {os}, *b2[] = {ps};
  /* Sums of small integers are exact in float in any order. */
  if (jit_run_on(wide, k, b1, &no_scalars)) {
    for (int r = 0; r < 7; r++)
      CHECK(os[r] == (float)((G - r + 6) / 7));
    CHECK(os[7] == (float)(G * (G - 1) / 2));
  }
  if (jit_run_on(wide, k2, b2, &no_scalars))
    for (int r = 0; r < T; r++)
      CHECK(ps[r] == (float)G);
  rt_cpu_pool_free(wide);
  arena_free(&a);
}

/* ---- Philox and the scalar parameters ---- */

/* Bit-exact against support/philox.c, with a seed and a stream (the step)
 * that use all 64 bits, and indexes past 2^32. */
TEST(test_philox_bits) {
  enum { N = 1003 };
  arena a;
  arena_init(&a);
  kir_kernel *k = kir_kernel_new(&a, "philox_bits", 0);
  kir_buf *o = kir_global(k, "o", KIR_F32, 2 * N, false);
  kir_var *seed = kir_scalar_param(k, KIR_SCALAR_SEED);
  kir_var *step = kir_scalar_param(k, KIR_SCALAR_STEP);
  kir_var *lr = kir_scalar_param(k, KIR_SCALAR_LR);
  kir_var *i = kir_for(k, KIR_LOOP_GRID, "i", kir_i64(k, N));
  kir_store(k, o, kir_ref(k, i),
            kir_philox(k, kir_ref(k, seed), kir_ref(k, step),
                       kir_bin(k, KIR_ADD, kir_ref(k, i),
                               kir_i64(k, (int64_t)0xFFFFFFF0LL))));
  kir_store(
      k, o, kir_bin(k, KIR_ADD, kir_ref(k, i), kir_i64(k, N)),
      kir_bin(k, KIR_MUL, kir_ref(k, lr), kir_cast(k, KIR_F32, kir_ref(k, i))));
  kir_end(k);
  kir_scalars s = {.seed = (int64_t)0x9E3779B97F4A7C15ULL,
                   .step = 12345678901LL,
                   .lr = 0.125f};
  float oj[2 * N], oi[2 * N];
  void *bj[] = {oj}, *bi[] = {oi};
  if (jit_run(k, bj, &s)) {
    interp_run(k, bi, &s);
    CHECK(memcmp(oj, oi, sizeof oj) == 0);
    int bad = 0;
    for (int n = 0; n < N; n++) {
      float want = philox_uniform((uint64_t)s.seed, (uint64_t)s.step,
                                  (uint64_t)n + 0xFFFFFFF0ULL);
      bad += memcmp(&oj[n], &want, sizeof want) != 0;
      bad += oj[N + n] != 0.125f * (float)n;
    }
    CHECK_EQ_INT(bad, 0);
  }
  arena_free(&a);
}

/* Two nested GRID loops: the flat block index splits back into both. */
TEST(test_grid_chain) {
  enum { A = 3, B = 5, T = 3 };
  arena a;
  arena_init(&a);
  kir_kernel *k = kir_kernel_new(&a, "grid_chain", T);
  kir_buf *o = kir_global(k, "o", KIR_I64, A * B * T, false);
  kir_var *ga = kir_for(k, KIR_LOOP_GRID, "ga", kir_i64(k, A));
  kir_var *gb = kir_for(k, KIR_LOOP_GRID, "gb", kir_i64(k, B));
  kir_var *t = kir_for(k, KIR_LOOP_THREAD, "t", kir_i64(k, T));
  kir_expr *flat = kir_bin(
      k, KIR_ADD,
      kir_bin(k, KIR_MUL,
              kir_bin(k, KIR_ADD,
                      kir_bin(k, KIR_MUL, kir_ref(k, ga), kir_i64(k, B)),
                      kir_ref(k, gb)),
              kir_i64(k, T)),
      kir_ref(k, t));
  kir_store(k, o, flat,
            kir_bin(k, KIR_ADD,
                    kir_bin(k, KIR_MUL, kir_ref(k, ga), kir_i64(k, 100)),
                    kir_bin(k, KIR_ADD,
                            kir_bin(k, KIR_MUL, kir_ref(k, gb), kir_i64(k, 10)),
                            kir_ref(k, t))));
  kir_end(k);
  kir_end(k);
  kir_end(k);
  int64_t os[A * B * T];
  memset(os, 0xff, sizeof os);
  void *b[] = {os};
  if (jit_run(k, b, &no_scalars))
    for (int x = 0; x < A; x++)
      for (int y = 0; y < B; y++)
        for (int z = 0; z < T; z++)
          CHECK_EQ_INT(os[(x * B + y) * T + z], x * 100 + y * 10 + z);
  arena_free(&a);
}

/* ---- the thread pool (its own coverage test: test_cpu_backend.c) ---- */

/* A compiled kernel whose grid is smaller than the pool, and one much
 * larger, on 8 threads. */
TEST(test_pool_kernels) {
  arena a;
  arena_init(&a);
  rt_cpu_pool *p = rt_cpu_pool_new(8);
  static const int64_t grids[] = {3, 30001};
  for (size_t gi = 0; gi < ARRAY_LEN(grids); gi++) {
    int64_t n = grids[gi];
    kir_kernel *k = kir_kernel_new(&a, "iota", 0);
    kir_buf *o = kir_global(k, "o", KIR_I64, n, false);
    kir_var *i = kir_for(k, KIR_LOOP_GRID, "i", kir_i64(k, n));
    kir_store(k, o, kir_ref(k, i),
              kir_bin(k, KIR_MUL, kir_ref(k, i), kir_ref(k, i)));
    kir_end(k);
    int64_t *os = calloc((size_t)n, sizeof *os);
    void *b[] = {os};
    if (jit_run_on(p, k, b, &no_scalars)) {
      int bad = 0;
      for (int64_t q = 0; q < n; q++)
        bad += os[q] != q * q;
      CHECK_EQ_INT(bad, 0);
    }
    free(os);
  }
  rt_cpu_pool_free(p);
  arena_free(&a);
}

/* ---- modules, printing, LLVM's verifier ---- */

static kir_kernel *axpy(arena *a, const char *name, float alpha) {
  kir_kernel *k = kir_kernel_new(a, name, 0);
  kir_buf *x = kir_global(k, "x", KIR_F32, 1001, true);
  kir_buf *y = kir_global(k, "y", KIR_F32, 1001, false);
  kir_var *i = kir_for(k, KIR_LOOP_VECTOR, "i", kir_i64(k, 1001));
  kir_var *s = kir_let(k, "s", kir_f32(k, 0));
  kir_var *j = kir_for(k, KIR_LOOP_UNROLL, "j", kir_i64(k, 3));
  kir_assign(
      k, s,
      kir_bin(k, KIR_ADD, kir_ref(k, s), kir_cast(k, KIR_F32, kir_ref(k, j))));
  kir_end(k);
  kir_store(k, y, kir_ref(k, i),
            kir_bin(k, KIR_ADD,
                    kir_bin(k, KIR_MUL, kir_f32(k, alpha),
                            kir_load(k, x, kir_ref(k, i))),
                    kir_ref(k, s)));
  kir_end(k);
  return k;
}

/* Several kernels (two with the same name) in one module; the loop hints
 * and noalias are in the IR, and O3 vectorises the VECTOR loop. */
TEST(test_module_and_print) {
  arena a;
  arena_init(&a);
  kir_kernel *ks[3] = {axpy(&a, "axpy", 2.0f), axpy(&a, "axpy", -1.0f),
                       axpy(&a, "other", 0.5f)};
  kiln_error err = {0};
  for (int i = 0; i < 3; i++)
    CHECK_EQ_INT(kir_verify(ks[i], &err), KILN_OK);
  strbuf ir;
  strbuf_init(&ir);
  CHECK_EQ_INT(cg_llvm_print(ks, 3, false, &ir, &err), KILN_OK);
  CHECK_STR_CONTAINS(ir.data, "define void @axpy(");
  CHECK_STR_CONTAINS(ir.data, "define void @other(");
  CHECK_STR_CONTAINS(ir.data, "llvm.loop.vectorize.enable");
  CHECK_STR_CONTAINS(ir.data, "llvm.loop.unroll.full");
  CHECK_STR_CONTAINS(ir.data, "noalias");
  strbuf_free(&ir);
  strbuf_init(&ir);
  CHECK_EQ_INT(cg_llvm_print(ks, 3, true, &ir, &err), KILN_OK);
  CHECK_STR_CONTAINS(ir.data, "x float>");
  strbuf_free(&ir);

  cg_llvm_module *m;
  kiln_status st = cg_llvm_compile(ks, 3, &nocache, &m, &err);
  if (st != KILN_OK)
    fprintf(stderr, "%s\n", err.message);
  CHECK_EQ_INT(st, KILN_OK);
  if (st == KILN_OK) {
    static float x[1001], y[1001];
    for (int n = 0; n < 1001; n++)
      x[n] = (float)n * 0.5f;
    static const float alpha[3] = {2.0f, -1.0f, 0.5f};
    for (int q = 0; q < 3; q++) {
      void *b[] = {x, y};
      CHECK_EQ_INT(cg_llvm_grid(m, q, &no_scalars), 1);
      cg_llvm_fn(m, q)(b, &no_scalars, 0, 1);
      int bad = 0;
      for (int n = 0; n < 1001; n++)
        bad += y[n] != alpha[q] * x[n] + 3.0f;
      CHECK_EQ_INT(bad, 0);
    }
    cg_llvm_free(m);
  }
  arena_free(&a);
}

/* Runs an axpy kernel compiled with o; returns whether it came from the
 * disk cache, checking y = alpha * x + 3. */
static bool run_axpy(kir_kernel *k, const cg_llvm_opts *o, float alpha) {
  kiln_error err = {0};
  cg_llvm_module *m;
  kiln_status st = cg_llvm_compile(&k, 1, o, &m, &err);
  CHECK_EQ_INT(st, KILN_OK);
  if (st != KILN_OK)
    return false;
  static float x[1001], y[1001];
  for (int n = 0; n < 1001; n++) {
    x[n] = (float)n * 0.25f;
    y[n] = -1;
  }
  void *b[] = {x, y};
  cg_llvm_fn(m, 0)(b, &no_scalars, 0, cg_llvm_grid(m, 0, &no_scalars));
  int bad = 0;
  for (int n = 0; n < 1001; n++)
    bad += y[n] != alpha * x[n] + 3.0f;
  CHECK_EQ_INT(bad, 0);
  bool hit = cg_llvm_from_cache(m);
  cg_llvm_free(m);
  return hit;
}

/* Applies fn to every file of dir. */
static int each_file(const char *dir, void (*fn)(const char *path)) {
  DIR *d = opendir(dir);
  int n = 0;
  struct dirent *e;
  while (d && (e = readdir(d))) {
    if (e->d_name[0] == '.')
      continue;
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    if (fn)
      fn(path);
    n++;
  }
  if (d)
    closedir(d);
  return n;
}

static void corrupt(const char *path) {
  FILE *f = fopen(path, "r+b");
  if (!f)
    return;
  fseek(f, 100, SEEK_SET);
  int c = fgetc(f);
  fseek(f, 100, SEEK_SET);
  fputc(c ^ 0x5a, f);
  fclose(f);
}

static void remove_file(const char *path) {
  remove(path);
}

/* The object cache: a second compile of the same kernel reads it back and
 * runs the same; a different kernel misses; a corrupted entry is detected
 * and recompiled. */
TEST(test_disk_cache) {
  char dir[] = "/tmp/kiln-test-llvm-XXXXXX";
  if (!mkdtemp(dir)) {
    CHECK(!"mkdtemp");
    return;
  }
  char sub[64];
  snprintf(sub, sizeof sub, "%s/cpu", dir);
  arena a;
  arena_init(&a);
  cg_llvm_opts o = {.cache_dir = dir};
  CHECK(!run_axpy(axpy(&a, "cached", 2.0f), &o, 2.0f)); /* cold */
  CHECK_EQ_INT(each_file(sub, NULL), 1);
  CHECK(run_axpy(axpy(&a, "cached", 2.0f), &o, 2.0f));  /* warm */
  CHECK(!run_axpy(axpy(&a, "cached", 5.0f), &o, 5.0f)); /* other code */
  CHECK(run_axpy(axpy(&a, "cached", 5.0f), &o, 5.0f));
  CHECK_EQ_INT(each_file(sub, corrupt), 2);
  CHECK(!run_axpy(axpy(&a, "cached", 2.0f), &o, 2.0f)); /* rejected */
  CHECK(run_axpy(axpy(&a, "cached", 2.0f), &o, 2.0f));  /* rewritten */
  cg_llvm_opts off = {.no_cache = true, .cache_dir = dir};
  CHECK(!run_axpy(axpy(&a, "cached", 2.0f), &off, 2.0f));
  each_file(sub, remove_file);
  rmdir(sub);
  rmdir(dir);
  arena_free(&a);
}

/* A kernel corrupted after kir_verify (an f32 add given an i64 operand)
 * reaches LLVM's verifier, whose own message comes back. */
TEST(test_verifier_failure) {
  arena a;
  arena_init(&a);
  kir_kernel *k = kir_kernel_new(&a, "corrupted", 0);
  kir_buf *x = kir_global(k, "x", KIR_F32, 5, true);
  kir_buf *y = kir_global(k, "y", KIR_F32, 5, false);
  kir_var *i = kir_for(k, KIR_LOOP_GRID, "i", kir_i64(k, 5));
  kir_expr *sum =
      kir_bin(k, KIR_ADD, kir_load(k, x, kir_ref(k, i)), kir_f32(k, 1));
  kir_store(k, y, kir_ref(k, i), sum);
  kir_end(k);
  kiln_error err = {0};
  CHECK_EQ_INT(kir_verify(k, &err), KILN_OK);
  sum->a[1] = kir_ref(k, i); /* now f32 + i64 */
  cg_llvm_module *m = NULL;
  CHECK_EQ_INT(cg_llvm_compile(&k, 1, &nocache, &m, &err), KILN_ERR_INTERNAL);
  CHECK(m == NULL);
  CHECK_STR_CONTAINS(err.message, "LLVM verifier");
  CHECK_STR_CONTAINS(err.message, "'corrupted'");
  CHECK_STR_CONTAINS(err.message, "Both operands to a binary operator are "
                                  "not of the same type");
  arena_free(&a);
}

int main(void) {
  pool = rt_cpu_pool_new(3);
  RUN(test_elementwise_float);
  RUN(test_minmax_nan);
  RUN(test_integer_ops);
  RUN(test_row_reduction);
  RUN(test_block_reduce_shared);
  RUN(test_local_across_phases);
  RUN(test_mma_odd_tiles);
  RUN(test_atomic_add);
  RUN(test_philox_bits);
  RUN(test_grid_chain);
  RUN(test_pool_kernels);
  RUN(test_module_and_print);
  RUN(test_disk_cache);
  RUN(test_verifier_failure);
  rt_cpu_pool_free(pool);
  return TEST_SUMMARY();
}
