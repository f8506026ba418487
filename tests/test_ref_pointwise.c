/* test_ref_pointwise.c — the reference activations, broadcasting ops,
 * concat, softmax, losses and dropout: forwards against values computed by
 * hand, every backward against central finite differences in double, and
 * dropout's mask against its contract (rate, scaling, reproducibility,
 * independence from slicing). */
#include "runtime/reference/ref_pointwise.h"
#include "support/support.h"
#include "test.h"

#include <stdlib.h>

/* ---- helpers ---- */

/* A fixed LCG, so every run sees the same inputs and a failure repeats. */
static uint64_t rng_state = 12345;
static double rnd(double lo, double hi) {
  rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
  return lo + (hi - lo) * (double)(rng_state >> 11) * 0x1p-53;
}
/* Values in +-[lo, hi]: away from 0, where relu-like ops have their kink. */
static void fill(ref_t *x, int64_t n, double lo, double hi, bool signs) {
  for (int64_t i = 0; i < n; i++) {
    x[i] = rnd(lo, hi);
    if (signs && rnd(0, 1) < 0.5)
      x[i] = -x[i];
  }
}

/* f maps x (nx values) to y (ny values), other inputs fixed in ctx. */
typedef void (*fd_fn)(const void *ctx, const ref_t *x, ref_t *y);

/* Checks dx, an analytic gradient of L(x) = <f(x), dy>, against central
 * differences with h = 1e-6; tolerance 1e-6 relative with a 1e-7 floor. */
static void fd_check(const char *what, fd_fn f, const void *ctx, ref_t *x,
                     int64_t nx, int64_t ny, const ref_t *dy, const ref_t *dx) {
  const double h = 1e-6;
  ref_t *y = malloc(sizeof(ref_t) * (size_t)ny);
  int bad = 0;
  for (int64_t i = 0; i < nx; i++) {
    double keep = x[i], lp = 0, lm = 0;
    x[i] = keep + h;
    f(ctx, x, y);
    for (int64_t j = 0; j < ny; j++)
      lp += y[j] * dy[j];
    x[i] = keep - h;
    f(ctx, x, y);
    for (int64_t j = 0; j < ny; j++)
      lm += y[j] * dy[j];
    x[i] = keep;
    double fd = (lp - lm) / (2 * h);
    if (!(fabs(fd - dx[i]) <= 1e-6 * fabs(fd) + 1e-7)) {
      if (bad++ < 3)
        fprintf(stderr, "%s: d/dx[%lld] analytic %.12g, fd %.12g\n", what,
                (long long)i, dx[i], fd);
    }
  }
  free(y);
  CHECK_EQ_INT(bad, 0);
}

/* ---- forwards against hand-computed values ---- */

TEST(test_activation_values) {
  const ref_t x[4] = {-2, -0.5, 0, 1.5};
  ref_t y[4];
  ref_relu_fwd(x, y, 4);
  CHECK(y[0] == 0 && y[1] == 0 && y[2] == 0 && y[3] == 1.5);
  ref_leaky_relu_fwd(x, y, 4, 0.1);
  CHECK_NEAR(y[0], -0.2, 1e-15);
  CHECK_NEAR(y[1], -0.05, 1e-15);
  CHECK(y[2] == 0 && y[3] == 1.5);
  /* elu(-2) = e^-2 - 1 = -0.8646647167633873; with alpha 2, twice that. */
  ref_elu_fwd(x, y, 4, 2.0);
  CHECK_NEAR(y[0], 2 * -0.8646647167633873, 1e-15);
  CHECK(y[3] == 1.5);

  /* gelu(1) = Phi(1) = 0.8413447460685429; gelu(-1) = -Phi(-1). The tanh
   * form at 1: 0.5 (1 + tanh(sqrt(2/pi) * 1.044715)) = 0.8411919906082768. */
  const ref_t g[3] = {1, -1, 0};
  ref_gelu_fwd(g, y, 3, REF_GELU_NONE);
  CHECK_NEAR(y[0], 0.8413447460685429, 1e-15);
  CHECK_NEAR(y[1], -0.15865525393145707, 1e-15);
  CHECK(y[2] == 0);
  ref_gelu_fwd(g, y, 3, REF_GELU_TANH);
  CHECK_NEAR(y[0], 0.8411919906082768, 1e-15);

  const ref_t s[3] = {0, 800, -800}; /* +-800: exp would overflow */
  ref_sigmoid_fwd(s, y, 3);
  CHECK(y[0] == 0.5 && y[1] == 1 && y[2] == 0);
  ref_tanh_fwd(g, y, 1);
  CHECK_NEAR(y[0], 0.7615941559557649, 1e-15);
}

TEST(test_prelu_maxout_values) {
  /* x [1, 2, 2]; channel slopes 0.5 and -1. */
  const ref_t x[4] = {-2, 3, -4, 5}, w[2] = {0.5, -1};
  ref_t y[4];
  ref_prelu_fwd(x, w, y, 1, 2, 2, false);
  CHECK(y[0] == -1 && y[1] == 3 && y[2] == 4 && y[3] == 5);
  ref_prelu_fwd(x, w, y, 1, 2, 2, true);
  CHECK(y[0] == -1 && y[2] == -2);

  /* x [1, 4, 2], pieces 2: out channel 0 = max(ch0, ch1), 1 = max(ch2, ch3).
   * Position 1 of group 1 is a tie, which routes to the first (ch2). */
  const ref_t m[8] = {1, 9, 4, 2, -1, 7, -3, 7};
  ref_t o[4], dx[8];
  ref_maxout_fwd(m, o, 1, 4, 2, 2);
  CHECK(o[0] == 4 && o[1] == 9 && o[2] == -1 && o[3] == 7);
  const ref_t dy[4] = {10, 20, 30, 40};
  ref_maxout_bwd(m, dy, dx, 1, 4, 2, 2);
  const ref_t want[8] = {0, 20, 10, 0, 30, 40, 0, 0};
  for (int i = 0; i < 8; i++)
    CHECK(dx[i] == want[i]);
}

TEST(test_softmax_values) {
  /* softmax([1, 2, 3]) = e^i / (e + e^2 + e^3); shifting by 1000 must not
   * change it (nor overflow). */
  const ref_t want[3] = {0.09003057317038046, 0.24472847105479767,
                         0.6652409557748219};
  const ref_t x[3] = {1, 2, 3}, big[3] = {1001, 1002, 1003};
  ref_t y[3];
  ref_softmax_fwd(x, y, 1, 3, 1);
  for (int i = 0; i < 3; i++)
    CHECK_NEAR(y[i], want[i], 1e-15);
  ref_softmax_fwd(big, y, 1, 3, 1);
  for (int i = 0; i < 3; i++)
    CHECK_NEAR(y[i], want[i], 1e-15);

  /* Along axis 0 of [3, 2]: the columns are softmaxed independently. */
  const int64_t shape[2] = {3, 2};
  int64_t outer, len, inner;
  CHECK(ref_axis_split(shape, 2, -2, &outer, &len, &inner));
  CHECK(outer == 1 && len == 3 && inner == 2);
  CHECK(!ref_axis_split(shape, 2, 2, &outer, &len, &inner));
  const ref_t cols[6] = {1, 5, 2, 5, 3, 5};
  ref_t yc[6];
  ref_softmax_fwd(cols, yc, outer, len, inner);
  for (int i = 0; i < 3; i++) {
    CHECK_NEAR(yc[2 * i], want[i], 1e-15);
    CHECK_NEAR(yc[2 * i + 1], 1.0 / 3, 1e-15);
  }
}

TEST(test_broadcast_values) {
  /* [2, 1, 3] + [4, 1] -> [2, 4, 3]: y[i][j][k] = a[i][0][k] + b[j][0]. */
  const int64_t as[3] = {2, 1, 3}, bs[2] = {4, 1};
  int64_t ys[REF_MAX_RANK];
  int yr;
  CHECK(ref_broadcast_shape(as, 3, bs, 2, ys, &yr));
  CHECK(yr == 3 && ys[0] == 2 && ys[1] == 4 && ys[2] == 3);
  ref_t a[6], b[4], y[24], p[24];
  for (int i = 0; i < 6; i++)
    a[i] = 10 * (i + 1);
  for (int i = 0; i < 4; i++)
    b[i] = i + 1;
  ref_add_fwd(a, as, 3, b, bs, 2, y);
  ref_mul_fwd(a, as, 3, b, bs, 2, p);
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 4; j++)
      for (int k = 0; k < 3; k++) {
        CHECK(y[(i * 4 + j) * 3 + k] == a[i * 3 + k] + b[j]);
        CHECK(p[(i * 4 + j) * 3 + k] == a[i * 3 + k] * b[j]);
      }
  /* add backward with dy = 1: each element of a was used 4 times, each of
   * b 6 times. */
  ref_t ones[24], da[6], db[4];
  for (int i = 0; i < 24; i++)
    ones[i] = 1;
  ref_add_bwd(ones, as, 3, bs, 2, da, db);
  for (int i = 0; i < 6; i++)
    CHECK(da[i] == 4);
  for (int i = 0; i < 4; i++)
    CHECK(db[i] == 6);

  /* A scalar (rank 0) broadcasts to anything; [3] and [4] do not. */
  const int64_t s3[1] = {3}, s4[1] = {4};
  CHECK(ref_broadcast_shape(as, 3, NULL, 0, ys, &yr) && yr == 3);
  CHECK(!ref_broadcast_shape(s3, 1, s4, 1, ys, &yr));
}

TEST(test_concat_values) {
  /* [2, 1] ++ [2, 2] along axis 1 -> [2, 3]. */
  const ref_t a[2] = {1, 2}, b[4] = {3, 4, 5, 6};
  const ref_t *xs[2] = {a, b};
  const int64_t lens[2] = {1, 2};
  ref_t y[6];
  ref_concat_fwd(xs, lens, 2, 2, 1, y);
  const ref_t want[6] = {1, 3, 4, 2, 5, 6};
  for (int i = 0; i < 6; i++)
    CHECK(y[i] == want[i]);
  ref_t da[2], db[4];
  ref_t *dxs[2] = {da, db};
  ref_concat_bwd(want, lens, 2, 2, 1, dxs);
  CHECK(da[0] == 1 && da[1] == 2);
  CHECK(db[0] == 3 && db[1] == 4 && db[2] == 5 && db[3] == 6);
}

/* logits [[1, 2, 3], [1, 1, 1]], labels [2, 0], K = 3.
 *   row 0: lse = 3 + log(e^-2 + e^-1 + 1) = 3.40760596444438;
 *          logp = [-2.4076, -1.4076, -0.40760596444438], nll = 0.4076...
 *   row 1: logp = -log 3 each, nll = 1.0986122886681098
 *   mean, eps = 0:   (0.40760596444438 + 1.0986122886681098) / 2
 *                  = 0.7531091265562449
 *   eps = 0.1: row loss = 0.9 nll + 0.1 mean_j(-logp_j)
 *     row 0: 0.9 * 0.40760596444438 + 0.1 * 1.40760596444438 = 0.5076059644
 *     row 1: 1.0986122886681098 (all logp equal)
 *     mean = 0.8031091265562452, sum = 1.6062182531124904 */
TEST(test_cross_entropy_values) {
  const ref_t z[6] = {1, 2, 3, 1, 1, 1};
  const int32_t lab[2] = {2, 0};
  ref_t loss = 0;
  CHECK(ref_cross_entropy_fwd(z, lab, 2, 3, 0, REF_REDUCTION_MEAN, &loss) == 0);
  CHECK_NEAR(loss, 0.7531091265562449, 1e-14);
  CHECK(ref_cross_entropy_fwd(z, lab, 2, 3, 0.1, REF_REDUCTION_MEAN, &loss) ==
        0);
  CHECK_NEAR(loss, 0.8031091265562452, 1e-14);
  CHECK(ref_cross_entropy_fwd(z, lab, 2, 3, 0.1, REF_REDUCTION_SUM, &loss) ==
        0);
  CHECK_NEAR(loss, 1.6062182531124904, 1e-14);

  /* Out-of-range labels are reported and nothing is written. */
  const int32_t bad_hi[2] = {2, 3}, bad_lo[2] = {-1, 0};
  ref_t d[6] = {7, 7, 7, 7, 7, 7};
  loss = 42;
  CHECK_EQ_INT(ref_labels_find_invalid(bad_hi, 2, 3), 1);
  CHECK_EQ_INT(ref_labels_find_invalid(lab, 2, 3), -1);
  CHECK(ref_cross_entropy_fwd(z, bad_hi, 2, 3, 0, REF_REDUCTION_MEAN, &loss) ==
        -1);
  CHECK(ref_cross_entropy_bwd(z, bad_lo, 2, 3, 0, REF_REDUCTION_MEAN, 1, d) ==
        -1);
  CHECK(loss == 42 && d[0] == 7 && d[5] == 7);

  /* mse: diffs 1, -2 -> sum 5, mean 2.5. */
  const ref_t p[2] = {1, 0}, t[2] = {0, 2};
  CHECK(ref_mse_fwd(p, t, 2, REF_REDUCTION_SUM) == 5);
  CHECK(ref_mse_fwd(p, t, 2, REF_REDUCTION_MEAN) == 2.5);
}

/* ---- every backward against finite differences ---- */

typedef struct act_ctx {
  int op; /* 0 relu, 1 leaky, 2 elu, 3 gelu, 4 gelu tanh, 5 sigmoid, 6 tanh */
  double attr;
  int64_t n;
} act_ctx;

static void act_fwd(const void *vc, const ref_t *x, ref_t *y) {
  const act_ctx *c = vc;
  switch (c->op) {
  case 0:
    ref_relu_fwd(x, y, c->n);
    break;
  case 1:
    ref_leaky_relu_fwd(x, y, c->n, c->attr);
    break;
  case 2:
    ref_elu_fwd(x, y, c->n, c->attr);
    break;
  case 3:
    ref_gelu_fwd(x, y, c->n, REF_GELU_NONE);
    break;
  case 4:
    ref_gelu_fwd(x, y, c->n, REF_GELU_TANH);
    break;
  case 5:
    ref_sigmoid_fwd(x, y, c->n);
    break;
  default:
    ref_tanh_fwd(x, y, c->n);
    break;
  }
}

TEST(test_activation_grads) {
  enum { N = 40 };
  static const char *names[] = {"relu", "leaky_relu", "elu",
                                "gelu", "gelu_tanh",  "sigmoid",
                                "tanh", "leaky_neg",  "elu_neg"};
  for (int k = 0; k < 9; k++) {
    act_ctx c = {.op = k < 7 ? k : k - 6, .attr = 0, .n = N};
    if (k == 1 || k == 2)
      c.attr = k == 1 ? 0.1 : 1.3;
    if (k >= 7)
      c.attr = -0.4; /* negative slope/alpha: the format allows it */
    ref_t x[N], y[N], dy[N], dx[N];
    fill(x, N, 0.05, 3, true);
    fill(dy, N, -1, 1, false);
    act_fwd(&c, x, y);
    switch (c.op) {
    case 0:
      ref_relu_bwd(y, dy, dx, N);
      break;
    case 1:
      ref_leaky_relu_bwd(x, dy, dx, N, c.attr);
      break;
    case 2:
      ref_elu_bwd(x, dy, dx, N, c.attr);
      break;
    case 3:
      ref_gelu_bwd(x, dy, dx, N, REF_GELU_NONE);
      break;
    case 4:
      ref_gelu_bwd(x, dy, dx, N, REF_GELU_TANH);
      break;
    case 5:
      ref_sigmoid_bwd(y, dy, dx, N);
      break;
    default:
      ref_tanh_bwd(y, dy, dx, N);
      break;
    }
    fd_check(names[k], act_fwd, &c, x, N, N, dy, dx);
  }
}

typedef struct chan_ctx {
  const ref_t *x, *w; /* the one not being varied */
  int64_t n, c, inner, pieces;
  bool shared, vary_w;
} chan_ctx;

static void prelu_f(const void *vc, const ref_t *v, ref_t *y) {
  const chan_ctx *c = vc;
  ref_prelu_fwd(c->vary_w ? c->x : v, c->vary_w ? v : c->w, y, c->n, c->c,
                c->inner, c->shared);
}

static void maxout_f(const void *vc, const ref_t *v, ref_t *y) {
  const chan_ctx *c = vc;
  ref_maxout_fwd(v, y, c->n, c->c, c->inner, c->pieces);
}

TEST(test_prelu_maxout_grads) {
  enum { NB = 2, C = 3, IN = 4, NX = NB * C * IN };
  for (int shared = 0; shared < 2; shared++) {
    ref_t x[NX], w[C], dy[NX], dx[NX], dw[C];
    fill(x, NX, 0.05, 2, true);
    fill(w, C, -0.5, 0.5, false);
    fill(dy, NX, -1, 1, false);
    int64_t nw = shared ? 1 : C;
    chan_ctx c = {
        .x = x, .w = w, .n = NB, .c = C, .inner = IN, .shared = shared};
    ref_prelu_bwd_data(x, w, dy, dx, NB, C, IN, shared);
    fd_check("prelu dx", prelu_f, &c, x, NX, NX, dy, dx);
    ref_prelu_bwd_weight(x, dy, dw, NB, C, IN, shared);
    c.vary_w = true;
    fd_check("prelu dw", prelu_f, &c, w, nw, NX, dy, dw);
  }
  /* maxout, pieces 3 over 6 channels; random values have no ties. */
  enum { MC = 6, MX = NB * MC * IN, MY = NB * 2 * IN };
  ref_t x[MX], dy[MY], dx[MX];
  fill(x, MX, -2, 2, false);
  fill(dy, MY, -1, 1, false);
  chan_ctx c = {.n = NB, .c = MC, .inner = IN, .pieces = 3};
  ref_maxout_bwd(x, dy, dx, NB, MC, IN, 3);
  fd_check("maxout", maxout_f, &c, x, MX, MY, dy, dx);
}

typedef struct bin_ctx {
  const ref_t *a, *b;
  const int64_t *as, *bs;
  int ar, br;
  bool mul, vary_b;
} bin_ctx;

static void bin_f(const void *vc, const ref_t *v, ref_t *y) {
  const bin_ctx *c = vc;
  const ref_t *a = c->vary_b ? c->a : v, *b = c->vary_b ? v : c->b;
  if (c->mul)
    ref_mul_fwd(a, c->as, c->ar, b, c->bs, c->br, y);
  else
    ref_add_fwd(a, c->as, c->ar, b, c->bs, c->br, y);
}

TEST(test_broadcast_grads) {
  /* [2, 1, 3] with [4, 1] (both broadcast), and [3] with [2, 4, 3]. */
  const int64_t s1[3] = {2, 1, 3}, s2[2] = {4, 1}, s3[1] = {3},
                s4[3] = {2, 4, 3};
  const struct {
    const int64_t *as, *bs;
    int ar, br;
  } cases[2] = {{s1, s2, 3, 2}, {s3, s4, 1, 3}};
  for (int k = 0; k < 4; k++) {
    bin_ctx c = {.as = cases[k / 2].as,
                 .bs = cases[k / 2].bs,
                 .ar = cases[k / 2].ar,
                 .br = cases[k / 2].br,
                 .mul = k % 2};
    int64_t na = 1, nb = 1, ny = 24;
    for (int i = 0; i < c.ar; i++)
      na *= c.as[i];
    for (int i = 0; i < c.br; i++)
      nb *= c.bs[i];
    ref_t a[24], b[24], dy[24], da[24], db[24];
    fill(a, na, -2, 2, false);
    fill(b, nb, -2, 2, false);
    fill(dy, ny, -1, 1, false);
    c.a = a;
    c.b = b;
    if (c.mul)
      ref_mul_bwd(a, c.as, c.ar, b, c.bs, c.br, dy, da, db);
    else
      ref_add_bwd(dy, c.as, c.ar, c.bs, c.br, da, db);
    fd_check(c.mul ? "mul da" : "add da", bin_f, &c, a, na, ny, dy, da);
    c.vary_b = true;
    fd_check(c.mul ? "mul db" : "add db", bin_f, &c, b, nb, ny, dy, db);
  }
}

typedef struct axis_ctx {
  int64_t outer, len, inner;
} axis_ctx;

static void softmax_f(const void *vc, const ref_t *x, ref_t *y) {
  const axis_ctx *c = vc;
  ref_softmax_fwd(x, y, c->outer, c->len, c->inner);
}

static void concat_f(const void *vc, const ref_t *x, ref_t *y) {
  /* x holds the two inputs [2, 1, 3] and [2, 2, 3] back to back. */
  const ref_t *xs[2] = {x, x + 6};
  const int64_t lens[2] = {1, 2};
  (void)vc;
  ref_concat_fwd(xs, lens, 2, 2, 3, y);
}

TEST(test_softmax_concat_grads) {
  const int64_t shape[3] = {2, 3, 4};
  for (int axis = -1; axis <= 1; axis++) {
    axis_ctx c;
    CHECK(ref_axis_split(shape, 3, axis, &c.outer, &c.len, &c.inner));
    ref_t x[24], y[24], dy[24], dx[24];
    fill(x, 24, -3, 3, false);
    fill(dy, 24, -1, 1, false);
    ref_softmax_fwd(x, y, c.outer, c.len, c.inner);
    ref_softmax_bwd(y, dy, dx, c.outer, c.len, c.inner);
    fd_check("softmax", softmax_f, &c, x, 24, 24, dy, dx);
  }
  ref_t x[18], dy[18], dx[18];
  fill(x, 18, -1, 1, false);
  fill(dy, 18, -1, 1, false);
  ref_t *dxs[2] = {dx, dx + 6};
  const int64_t lens[2] = {1, 2};
  ref_concat_bwd(dy, lens, 2, 2, 3, dxs);
  fd_check("concat", concat_f, NULL, x, 18, 18, dy, dx);
}

typedef struct loss_ctx {
  const int32_t *labels;
  const ref_t *other;
  int64_t n, k;
  double eps;
  ref_reduction red;
  bool target; /* mse: vary the target instead of the prediction */
} loss_ctx;

static void ce_f(const void *vc, const ref_t *z, ref_t *y) {
  const loss_ctx *c = vc;
  KILN_ASSERT(
      ref_cross_entropy_fwd(z, c->labels, c->n, c->k, c->eps, c->red, y) == 0);
}

static void mse_f(const void *vc, const ref_t *v, ref_t *y) {
  const loss_ctx *c = vc;
  y[0] = c->target ? ref_mse_fwd(c->other, v, c->n, c->red)
                   : ref_mse_fwd(v, c->other, c->n, c->red);
}

TEST(test_loss_grads) {
  enum { N = 4, K = 5 };
  const int32_t labels[N] = {0, 4, 2, 2};
  const ref_t dloss[1] = {0.7};
  for (int k = 0; k < 4; k++) {
    loss_ctx c = {.labels = labels,
                  .n = N,
                  .k = K,
                  .eps = k % 2 ? 0.2 : 0,
                  .red = k < 2 ? REF_REDUCTION_MEAN : REF_REDUCTION_SUM};
    ref_t z[N * K], dz[N * K];
    fill(z, N * K, -3, 3, false);
    CHECK(ref_cross_entropy_bwd(z, labels, N, K, c.eps, c.red, dloss[0], dz) ==
          0);
    fd_check("cross_entropy", ce_f, &c, z, N * K, 1, dloss, dz);

    ref_t p[N], t[N], dp[N], dt[N];
    fill(p, N, -2, 2, false);
    fill(t, N, -2, 2, false);
    ref_mse_bwd(p, t, N, c.red, dloss[0], dp, dt);
    c.other = t;
    fd_check("mse dp", mse_f, &c, p, N, 1, dloss, dp);
    c.other = p;
    c.target = true;
    fd_check("mse dt", mse_f, &c, t, N, 1, dloss, dt);
  }
}

/* ---- dropout ---- */

TEST(test_dropout_mask) {
  enum { N = 100000 };
  const double p = 0.3;
  const uint64_t seed = 0x5eed, stream = ref_dropout_stream(7, 3);
  CHECK(stream == ((UINT64_C(7) << 32) | 3));
  ref_t *x = malloc(sizeof(ref_t) * N), *y = malloc(sizeof(ref_t) * N);
  ref_t *y2 = malloc(sizeof(ref_t) * N), *dx = malloc(sizeof(ref_t) * N);
  for (int i = 0; i < N; i++)
    x[i] = 1 + i % 7; /* never 0, so y == 0 means dropped */
  ref_dropout_fwd(x, y, N, p, seed, stream, 0);
  /* Expected 70,000 kept, standard deviation ~145: +-1,000 is ~7 sigma, and
   * the seed is fixed, so the count never changes between runs. */
  int kept = 0, scaled = 1, same_bwd = 1;
  for (int i = 0; i < N; i++) {
    if (y[i] != 0) {
      kept++;
      scaled &= y[i] == x[i] / (1 - p);
    }
  }
  CHECK(kept > 69000 && kept < 71000);
  CHECK(scaled);
  /* The backward regenerates the same mask: dx = dy / (1 - p) where kept. */
  ref_dropout_bwd(x, dx, N, p, seed, stream, 0);
  for (int i = 0; i < N; i++)
    same_bwd &= dx[i] == y[i];
  CHECK(same_bwd);
  /* A second call gives identical output; another stream (next step) or
   * another seed gives a different mask. */
  ref_dropout_fwd(x, y2, N, p, seed, stream, 0);
  CHECK(memcmp(y, y2, sizeof(ref_t) * N) == 0);
  ref_dropout_fwd(x, y2, N, p, seed, ref_dropout_stream(8, 3), 0);
  int diff = 0;
  for (int i = 0; i < N; i++)
    diff += (y[i] != 0) != (y2[i] != 0);
  CHECK(diff > N / 4); /* independent masks differ at 2 p (1 - p) = 42% */
  ref_dropout_fwd(x, y2, N, p, seed + 1, stream, 0);
  diff = 0;
  for (int i = 0; i < N; i++)
    diff += (y[i] != 0) != (y2[i] != 0);
  CHECK(diff > N / 4);
  /* A slice starting at element 12,345 draws the same mask as the whole,
   * so rank and micro-batch splits do not change it. */
  ref_dropout_fwd(x + 12345, y2, 1000, p, seed, stream, 12345);
  CHECK(memcmp(y + 12345, y2, sizeof(ref_t) * 1000) == 0);
  /* p = 0 is the identity. */
  ref_dropout_fwd(x, y2, N, 0, seed, stream, 0);
  CHECK(memcmp(x, y2, sizeof(ref_t) * N) == 0);
  free(x);
  free(y);
  free(y2);
  free(dx);
}

/* The documented integer form a code generator uses: keep iff
 * (word >> 8) >= ceil(p * 2^24). */
TEST(test_dropout_integer_threshold) {
  const double ps[4] = {0.1, 0.5, 0.3333333333333333, 0.9};
  int mismatches = 0;
  for (int k = 0; k < 4; k++) {
    uint32_t thr = (uint32_t)ceil(ps[k] * 0x1p24);
    for (uint64_t i = 0; i < 20000; i++) {
      bool a = ref_dropout_keep(9, 4, i, ps[k]);
      bool b = (philox_u32(9, 4, i) >> 8) >= thr;
      mismatches += a != b;
    }
  }
  CHECK_EQ_INT(mismatches, 0);
}

int main(void) {
  RUN(test_activation_values);
  RUN(test_prelu_maxout_values);
  RUN(test_softmax_values);
  RUN(test_broadcast_values);
  RUN(test_concat_values);
  RUN(test_cross_entropy_values);
  RUN(test_activation_grads);
  RUN(test_prelu_maxout_grads);
  RUN(test_broadcast_grads);
  RUN(test_softmax_concat_grads);
  RUN(test_loss_grads);
  RUN(test_dropout_mask);
  RUN(test_dropout_integer_threshold);
  return TEST_SUMMARY();
}
