/* test_ref_nn.c — the reference nn kernels (runtime/reference/ref_nn.h).
 *
 * Forwards are checked against small cases computed by hand (the numbers
 * are derived in the comments) and, for conv2d, against an independent
 * im2col + matrix product formulation on odd sizes with stride, padding,
 * dilation and groups. Every backward is checked against central finite
 * differences of L = sum(dy * f(x)) with fixed-seed random inputs
 * (tests/ref_fd.h: h = 1e-6, relative tolerance 1e-6, absolute floor
 * 1e-7). Hand-computed forwards use an absolute tolerance of 1e-12: they
 * are a handful of exact or near-exact double operations. */
#include "ref_fd.h"
#include "runtime/reference/ref_nn.h"
#include "support/support.h"
#include "test.h"

#include <stdlib.h>

#define EXACT 1e-12

static double *dalloc(size_t n) {
  double *p = calloc(n ? n : 1, sizeof *p);
  if (!p)
    abort(); /* a test without memory cannot report anything useful */
  return p;
}

/* Counts elements of got and want further apart than tol, printing the
 * first few; CHECK_ARRAY turns a nonzero count into a failure. */
static int array_diff(const char *what, const double *got, const double *want,
                      size_t n, double tol) {
  int bad = 0;
  for (size_t i = 0; i < n; i++)
    if (!(fabs(got[i] - want[i]) <= tol) && bad++ < 5)
      fprintf(stderr, "  %s[%zu]: got %.12g, want %.12g\n", what, i, got[i],
              want[i]);
  return bad;
}
#define CHECK_ARRAY(got, want, n, tol)                                         \
  CHECK_EQ_INT(array_diff(#got, (got), (want), (n), (tol)), 0)

/* ---- conv2d ---- */

static size_t conv_x_n(const ref_conv_dims *d) {
  return (size_t)d->n * d->c * d->h * d->w;
}
static size_t conv_w_n(const ref_conv_dims *d) {
  return (size_t)d->k * (d->c / d->groups) * d->kh * d->kw;
}
static size_t conv_y_n(const ref_conv_dims *d) {
  return (size_t)d->n * d->k * d->oh * d->ow;
}

TEST(test_conv_dims) {
  /* floor((7 + 2*1 - 2*(3-1) - 1) / 2) + 1 = 3; floor((6+2-5)/2)+1 = 2 */
  ref_conv_dims d = {.n = 1,
                     .c = 4,
                     .h = 7,
                     .w = 6,
                     .k = 2,
                     .kh = 3,
                     .kw = 3,
                     .sh = 2,
                     .sw = 2,
                     .ph = 1,
                     .pw = 1,
                     .dh = 2,
                     .dw = 2,
                     .groups = 2};
  CHECK(ref_conv_dims_finish(&d));
  CHECK_EQ_INT(d.oh, 3);
  CHECK_EQ_INT(d.ow, 2);
  ref_conv_dims bad = d;
  bad.groups = 3; /* divides neither c nor k */
  CHECK(!ref_conv_dims_finish(&bad));
  bad = d;
  bad.dw = 4; /* span 9 > 6 + 2 */
  CHECK(!ref_conv_dims_finish(&bad));
  bad = d;
  bad.sh = 0;
  CHECK(!ref_conv_dims_finish(&bad));
}

TEST(test_conv_hand) {
  /* x = [1 2 3; 4 5 6; 7 8 9], w = [1 2; 3 4].
   * Stride 1, no padding: y00 = 1+4+12+20 = 37, y01 = 2+6+15+24 = 47,
   * y10 = 4+10+21+32 = 67, y11 = 5+12+24+36 = 77; plus bias 0.5. */
  double x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, w[4] = {1, 2, 3, 4};
  double bias = 0.5, y[4];
  ref_conv_dims d = {.n = 1,
                     .c = 1,
                     .h = 3,
                     .w = 3,
                     .k = 1,
                     .kh = 2,
                     .kw = 2,
                     .sh = 1,
                     .sw = 1,
                     .dh = 1,
                     .dw = 1,
                     .groups = 1};
  CHECK(ref_conv_dims_finish(&d) && d.oh == 2 && d.ow == 2);
  ref_conv2d_forward(&d, x, w, &bias, y);
  CHECK_ARRAY(y, ((double[]){37.5, 47.5, 67.5, 77.5}), 4, EXACT);
  /* Stride 2, padding 1: windows start at -1 and 1 in each direction.
   * y00 sees only x00 under w11: 4. y01 = x01*w10 + x02*w11 = 6+12 = 18.
   * y10 = x10*w01 + x20*w11 = 8+28 = 36. y11 = 5+12+24+36 = 77. */
  d.sh = d.sw = 2;
  d.ph = d.pw = 1;
  CHECK(ref_conv_dims_finish(&d) && d.oh == 2 && d.ow == 2);
  ref_conv2d_forward(&d, x, w, NULL, y);
  CHECK_ARRAY(y, ((double[]){4, 18, 36, 77}), 4, EXACT);
}

/* conv2d written differently: per group, unfold the input into a column
 * matrix [cg*kh*kw, oh*ow] (zeros for padding), then multiply by the
 * group's weights viewed as [k/groups, cg*kh*kw]. */
static void conv_im2col(const ref_conv_dims *d, const double *x,
                        const double *w, const double *bias, double *y) {
  int cg = d->c / d->groups, kg = d->k / d->groups;
  int rows = cg * d->kh * d->kw, cols = d->oh * d->ow;
  double *col = dalloc((size_t)rows * cols);
  for (int b = 0; b < d->n; b++)
    for (int g = 0; g < d->groups; g++) {
      for (int r = 0; r < rows; r++) {
        int ci = r / (d->kh * d->kw), ky = r / d->kw % d->kh, kx = r % d->kw;
        const double *xc = x + ((size_t)b * d->c + g * cg + ci) * d->h * d->w;
        for (int j = 0; j < cols; j++) {
          int iy = j / d->ow * d->sh + ky * d->dh - d->ph;
          int ix = j % d->ow * d->sw + kx * d->dw - d->pw;
          bool in = iy >= 0 && iy < d->h && ix >= 0 && ix < d->w;
          col[(size_t)r * cols + j] = in ? xc[iy * d->w + ix] : 0.0;
        }
      }
      for (int o = g * kg; o < (g + 1) * kg; o++)
        for (int j = 0; j < cols; j++) {
          double s = bias ? bias[o] : 0;
          for (int r = 0; r < rows; r++)
            s += w[(size_t)o * rows + r] * col[(size_t)r * cols + j];
          y[((size_t)b * d->k + o) * cols + j] = s;
        }
    }
  free(col);
}

TEST(test_conv_vs_im2col) {
  /* Odd sizes, asymmetric stride/padding/dilation, 2 and 3 groups. */
  /* {n, c, h, w, k, kh, kw, sh, sw, ph, pw, dh, dw, groups, oh, ow} */
  ref_conv_dims cases[] = {
      {2, 4, 7, 6, 6, 3, 2, 2, 1, 1, 2, 2, 1, 2, 0, 0},
      {1, 6, 9, 5, 3, 2, 3, 1, 3, 0, 1, 3, 2, 3, 0, 0},
      {3, 5, 7, 6, 4, 3, 3, 2, 2, 1, 1, 2, 2, 1, 0, 0},
  };
  fd_rng rng = {11};
  for (size_t t = 0; t < ARRAY_LEN(cases); t++) {
    ref_conv_dims *d = &cases[t];
    CHECK(ref_conv_dims_finish(d));
    double *x = dalloc(conv_x_n(d)), *w = dalloc(conv_w_n(d));
    double *b = dalloc((size_t)d->k), *y = dalloc(conv_y_n(d));
    double *want = dalloc(conv_y_n(d));
    fd_fill(&rng, x, conv_x_n(d), -1, 1);
    fd_fill(&rng, w, conv_w_n(d), -1, 1);
    fd_fill(&rng, b, (size_t)d->k, -1, 1);
    ref_conv2d_forward(d, x, w, t == 1 ? NULL : b, y);
    conv_im2col(d, x, w, t == 1 ? NULL : b, want);
    CHECK_ARRAY(y, want, conv_y_n(d), EXACT);
    free(x), free(w), free(b), free(y), free(want);
  }
}

typedef struct conv_ctx {
  ref_conv_dims d;
  double *x, *w, *b, *y, *dy;
} conv_ctx;

static double conv_loss(void *p) {
  conv_ctx *c = p;
  ref_conv2d_forward(&c->d, c->x, c->w, c->b, c->y);
  return fd_dot(c->dy, c->y, conv_y_n(&c->d));
}

TEST(test_conv_grad) {
  /* {n, c, h, w, k, kh, kw, sh, sw, ph, pw, dh, dw, groups, oh, ow} */
  ref_conv_dims cases[] = {
      /* depthwise: groups = C = K */
      {3, 5, 7, 6, 5, 3, 3, 2, 2, 1, 1, 2, 2, 5, 0, 0},
      {3, 5, 7, 6, 4, 3, 3, 2, 2, 1, 1, 2, 2, 1, 0, 0},
      /* overlapping windows, asymmetric everything */
      {2, 4, 5, 7, 6, 2, 3, 1, 2, 1, 0, 1, 2, 2, 0, 0},
  };
  fd_rng rng = {12};
  for (size_t t = 0; t < ARRAY_LEN(cases); t++) {
    conv_ctx c = {.d = cases[t]};
    ref_conv_dims *d = &c.d;
    CHECK(ref_conv_dims_finish(d));
    size_t nx = conv_x_n(d), nw = conv_w_n(d), ny = conv_y_n(d);
    c.x = dalloc(nx), c.w = dalloc(nw), c.b = dalloc((size_t)d->k);
    c.y = dalloc(ny), c.dy = dalloc(ny);
    double *dx = dalloc(nx), *dw = dalloc(nw), *db = dalloc((size_t)d->k);
    fd_fill(&rng, c.x, nx, -1, 1);
    fd_fill(&rng, c.w, nw, -1, 1);
    fd_fill(&rng, c.b, (size_t)d->k, -1, 1);
    fd_fill(&rng, c.dy, ny, -1, 1);
    dx[0] = dw[0] = 1e9; /* must be overwritten, not accumulated into */
    ref_conv2d_backward_data(d, c.dy, c.w, dx);
    ref_conv2d_backward_filter(d, c.x, c.dy, dw);
    ref_conv2d_backward_bias(d, c.dy, db);
    CHECK_EQ_INT(fd_check_grad("conv dx", conv_loss, &c, c.x, nx, dx), 0);
    CHECK_EQ_INT(fd_check_grad("conv dw", conv_loss, &c, c.w, nw, dw), 0);
    CHECK_EQ_INT(fd_check_grad("conv db", conv_loss, &c, c.b, d->k, db), 0);
    free(c.x), free(c.w), free(c.b), free(c.y), free(c.dy);
    free(dx), free(dw), free(db);
  }
}

/* ---- linear and matmul ---- */

TEST(test_linear_hand) {
  /* x = [1 2 3; 4 5 6], W = [1 0 -1; 2 1 0], b = [0.5, -1]:
   * row 0: 1-3+0.5 = -1.5, 2+2-1 = 3; row 1: 4-6+0.5 = -1.5, 8+5-1 = 12. */
  double x[6] = {1, 2, 3, 4, 5, 6}, w[6] = {1, 0, -1, 2, 1, 0};
  double b[2] = {0.5, -1}, y[4];
  ref_linear_forward(2, 3, 2, x, w, b, y);
  CHECK_ARRAY(y, ((double[]){-1.5, 3, -1.5, 12}), 4, EXACT);
  ref_linear_forward(2, 3, 2, x, w, NULL, y);
  CHECK_ARRAY(y, ((double[]){-2, 4, -2, 13}), 4, EXACT);
}

typedef struct linear_ctx {
  int64_t rows;
  int in, out;
  double *x, *w, *b, *y, *dy;
} linear_ctx;

static double linear_loss(void *p) {
  linear_ctx *c = p;
  ref_linear_forward(c->rows, c->in, c->out, c->x, c->w, c->b, c->y);
  return fd_dot(c->dy, c->y, (size_t)(c->rows * c->out));
}

TEST(test_linear_grad) {
  linear_ctx c = {.rows = 5, .in = 7, .out = 3};
  size_t nx = 35, nw = 21, ny = 15;
  fd_rng rng = {21};
  c.x = dalloc(nx), c.w = dalloc(nw), c.b = dalloc(3), c.y = dalloc(ny);
  c.dy = dalloc(ny);
  double *dx = dalloc(nx), *dw = dalloc(nw), *db = dalloc(3);
  fd_fill(&rng, c.x, nx, -1, 1);
  fd_fill(&rng, c.w, nw, -1, 1);
  fd_fill(&rng, c.b, 3, -1, 1);
  fd_fill(&rng, c.dy, ny, -1, 1);
  ref_linear_backward_data(c.rows, c.in, c.out, c.dy, c.w, dx);
  ref_linear_backward_weight(c.rows, c.in, c.out, c.x, c.dy, dw);
  ref_linear_backward_bias(c.rows, c.out, c.dy, db);
  CHECK_EQ_INT(fd_check_grad("linear dx", linear_loss, &c, c.x, nx, dx), 0);
  CHECK_EQ_INT(fd_check_grad("linear dw", linear_loss, &c, c.w, nw, dw), 0);
  CHECK_EQ_INT(fd_check_grad("linear db", linear_loss, &c, c.b, 3, db), 0);
  free(c.x), free(c.w), free(c.b), free(c.y), free(c.dy);
  free(dx), free(dw), free(db);
}

TEST(test_matmul_hand) {
  /* Entry 0: [1 2; 3 4] [5 6; 7 8] = [19 22; 43 50].
   * Entry 1: [0 1; 1 0] [5 6; 7 8] = [7 8; 5 6] (b shared). */
  double a[8] = {1, 2, 3, 4, 0, 1, 1, 0}, b[4] = {5, 6, 7, 8}, c[8];
  ref_matmul_dims d = {.batch = 2, .m = 2, .k = 2, .n = 2, .b_shared = true};
  ref_matmul_forward(&d, a, b, c);
  CHECK_ARRAY(c, ((double[]){19, 22, 43, 50, 7, 8, 5, 6}), 8, EXACT);
}

typedef struct matmul_ctx {
  ref_matmul_dims d;
  double *a, *b, *c, *dc;
} matmul_ctx;

static double matmul_loss(void *p) {
  matmul_ctx *c = p;
  ref_matmul_forward(&c->d, c->a, c->b, c->c);
  return fd_dot(c->dc, c->c, (size_t)(c->d.batch * c->d.m * c->d.n));
}

TEST(test_matmul_grad) {
  fd_rng rng = {22};
  for (int shared = 0; shared < 3; shared++) { /* none, a, b */
    matmul_ctx c = {.d = {.batch = 3,
                          .m = 4,
                          .k = 5,
                          .n = 2,
                          .a_shared = shared == 1,
                          .b_shared = shared == 2}};
    size_t na = (size_t)(c.d.a_shared ? 1 : 3) * 4 * 5;
    size_t nb = (size_t)(c.d.b_shared ? 1 : 3) * 5 * 2, nc = 3 * 4 * 2;
    c.a = dalloc(na), c.b = dalloc(nb), c.c = dalloc(nc), c.dc = dalloc(nc);
    double *da = dalloc(na), *db = dalloc(nb);
    fd_fill(&rng, c.a, na, -1, 1);
    fd_fill(&rng, c.b, nb, -1, 1);
    fd_fill(&rng, c.dc, nc, -1, 1);
    ref_matmul_backward(&c.d, c.a, c.b, c.dc, da, db);
    CHECK_EQ_INT(fd_check_grad("matmul da", matmul_loss, &c, c.a, na, da), 0);
    CHECK_EQ_INT(fd_check_grad("matmul db", matmul_loss, &c, c.b, nb, db), 0);
    free(c.a), free(c.b), free(c.c), free(c.dc), free(da), free(db);
  }
}

/* ---- pooling ---- */

TEST(test_pool_dims) {
  ref_pool_dims d = {.n = 1, .c = 1, .h = 7, .w = 6, .kh = 3, .kw = 2};
  CHECK(ref_pool_dims_finish(&d)); /* stride 0 -> kernel */
  CHECK_EQ_INT(d.sh, 3);
  CHECK_EQ_INT(d.sw, 2);
  CHECK_EQ_INT(d.oh, 2); /* floor((7-3)/3)+1 */
  CHECK_EQ_INT(d.ow, 3);
  ref_pool_dims bad = {
      .n = 1, .c = 1, .h = 7, .w = 6, .kh = 3, .kw = 3, .ph = 2};
  CHECK(!ref_pool_dims_finish(&bad)); /* padding over half the kernel */
}

TEST(test_maxpool_hand) {
  /* 4x4 input, kernel 2 (stride 2): maxima of the four quadrants. */
  double x[16] = {1, 5, 2, 0, 3, 4, 8, 7, -1, -2, 6, 6, -3, -4, 6, 6};
  double y[4], dy[4] = {10, 20, 30, 40}, dx[16];
  ref_pool_dims d = {.n = 1, .c = 1, .h = 4, .w = 4, .kh = 2, .kw = 2};
  CHECK(ref_pool_dims_finish(&d));
  ref_maxpool_forward(&d, x, y);
  CHECK_ARRAY(y, ((double[]){5, 8, -1, 6}), 4, EXACT);
  /* The last window is all 6: the tie goes to its first (top-left)
   * element, index 10. */
  ref_maxpool_backward(&d, x, dy, dx);
  double want[16] = {0, 10, 0, 0, 0, 0, 20, 0, 30, 0, 40, 0, 0, 0, 0, 0};
  CHECK_ARRAY(dx, want, 16, EXACT);
  /* Kernel 3, stride 2, padding 1 on a 3x3 all-negative input: padding is
   * -inf, not 0, so the maxima are real elements. Windows: rows/cols
   * -1..1 and 1..3. */
  double x3[9] = {-9, -8, -7, -6, -5, -4, -3, -2, -1}, y3[4];
  ref_pool_dims d3 = {.n = 1,
                      .c = 1,
                      .h = 3,
                      .w = 3,
                      .kh = 3,
                      .kw = 3,
                      .sh = 2,
                      .sw = 2,
                      .ph = 1,
                      .pw = 1};
  CHECK(ref_pool_dims_finish(&d3) && d3.oh == 2 && d3.ow == 2);
  ref_maxpool_forward(&d3, x3, y3);
  CHECK_ARRAY(y3, ((double[]){-5, -4, -2, -1}), 4, EXACT);
}

TEST(test_avgpool_hand) {
  /* x = 1..9 in 3x3, kernel 2, stride 1, padding 1: 4x4 windows, each
   * divided by 4 whatever its padding (count_include_pad).
   * Corner (0,0) sees only x00 = 1: 0.25. (1,1) sees 1+2+4+5 = 12: 3.
   * (0,1) sees 1+2: 0.75. (3,3) sees 9: 2.25. */
  double x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, y[16];
  ref_pool_dims d = {.n = 1,
                     .c = 1,
                     .h = 3,
                     .w = 3,
                     .kh = 2,
                     .kw = 2,
                     .sh = 1,
                     .sw = 1,
                     .ph = 1,
                     .pw = 1};
  CHECK(ref_pool_dims_finish(&d) && d.oh == 4 && d.ow == 4);
  ref_avgpool_forward(&d, x, y);
  CHECK_NEAR(y[0], 0.25, EXACT);
  CHECK_NEAR(y[1], 0.75, EXACT);
  CHECK_NEAR(y[5], 3.0, EXACT);
  CHECK_NEAR(y[15], 2.25, EXACT);
  /* global: [1, 2, 2, 2] -> means of 1..4 and 5..8 */
  double g[8] = {1, 2, 3, 4, 5, 6, 7, 8}, gy[2], gdx[8];
  ref_global_avgpool_forward(1, 2, 4, g, gy);
  CHECK_ARRAY(gy, ((double[]){2.5, 6.5}), 2, EXACT);
  ref_global_avgpool_backward(1, 2, 4, (double[]){4, 8}, gdx);
  CHECK_ARRAY(gdx, ((double[]){1, 1, 1, 1, 2, 2, 2, 2}), 8, EXACT);
}

typedef struct pool_ctx {
  ref_pool_dims d;
  int kind; /* 0 max, 1 avg, 2 global */
  double *x, *y, *dy;
} pool_ctx;

static size_t pool_y_n(const pool_ctx *c) {
  return (size_t)c->d.n * c->d.c * (c->kind == 2 ? 1 : c->d.oh * c->d.ow);
}

static double pool_loss(void *p) {
  pool_ctx *c = p;
  if (c->kind == 0)
    ref_maxpool_forward(&c->d, c->x, c->y);
  else if (c->kind == 1)
    ref_avgpool_forward(&c->d, c->x, c->y);
  else
    ref_global_avgpool_forward(c->d.n, c->d.c, (int64_t)c->d.h * c->d.w, c->x,
                               c->y);
  return fd_dot(c->dy, c->y, pool_y_n(c));
}

TEST(test_pool_grad) {
  /* {n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow} */
  ref_pool_dims cases[] = {
      {3, 5, 7, 6, 3, 3, 2, 2, 1, 1, 0, 0},
      /* overlapping windows: one element may win several of them */
      {2, 3, 5, 7, 2, 3, 1, 2, 1, 0, 0, 0},
  };
  fd_rng rng = {31};
  for (size_t t = 0; t < ARRAY_LEN(cases); t++)
    for (int kind = 0; kind < 3; kind++) {
      pool_ctx c = {.d = cases[t], .kind = kind};
      CHECK(ref_pool_dims_finish(&c.d));
      size_t nx = (size_t)c.d.n * c.d.c * c.d.h * c.d.w, ny = pool_y_n(&c);
      c.x = dalloc(nx), c.y = dalloc(ny), c.dy = dalloc(ny);
      double *dx = dalloc(nx);
      fd_fill_distinct(&rng, c.x, nx); /* no ties: maxpool differentiable */
      fd_fill(&rng, c.dy, ny, -1, 1);
      dx[0] = 1e9; /* must be overwritten */
      if (kind == 0)
        ref_maxpool_backward(&c.d, c.x, c.dy, dx);
      else if (kind == 1)
        ref_avgpool_backward(&c.d, c.dy, dx);
      else
        ref_global_avgpool_backward(c.d.n, c.d.c, (int64_t)c.d.h * c.d.w, c.dy,
                                    dx);
      const char *name[] = {"maxpool dx", "avgpool dx", "global_avgpool dx"};
      CHECK_EQ_INT(fd_check_grad(name[kind], pool_loss, &c, c.x, nx, dx), 0);
      free(c.x), free(c.y), free(c.dy), free(dx);
    }
}

/* ---- batchnorm and layernorm ---- */

TEST(test_batchnorm_hand) {
  /* [N=2, C=1, spatial 2], x = {1, 3 | 5, 7}: mean 4, biased variance
   * (9+1+1+9)/4 = 5, unbiased 20/3. gamma 2, beta 1, eps 1e-5.
   * Running stats from (0, 1) with momentum 0.1: mean 0.9*0 + 0.1*4 = 0.4,
   * var 0.9*1 + 0.1*20/3 = 1.5666... */
  double x[4] = {1, 3, 5, 7}, y[4], mean, inv, rm = 0, rv = 1;
  double gamma = 2, beta = 1, eps = 1e-5;
  ref_bn_dims d = {.n = 2, .c = 1, .spatial = 2};
  ref_batchnorm_forward_train(&d, eps, 0.1, x, &gamma, &beta, y, &mean, &inv,
                              &rm, &rv);
  double s = 1 / sqrt(5 + eps);
  CHECK_NEAR(mean, 4, EXACT);
  CHECK_NEAR(inv, s, EXACT);
  CHECK_ARRAY(y, ((double[]){1 - 6 * s, 1 - 2 * s, 1 + 2 * s, 1 + 6 * s}), 4,
              EXACT);
  CHECK_NEAR(rm, 0.4, EXACT);
  CHECK_NEAR(rv, 0.9 + 2.0 / 3.0, EXACT);
  /* A second step (momentum 0.5) on x + 2: mean 6, same variance.
   * rm = 0.5*0.4 + 0.5*6 = 3.2; rv = 0.5*(0.9 + 2/3) + 0.5*20/3. */
  double x2[4] = {3, 5, 7, 9};
  ref_batchnorm_forward_train(&d, eps, 0.5, x2, NULL, NULL, y, &mean, &inv, &rm,
                              &rv);
  CHECK_NEAR(rm, 3.2, EXACT);
  CHECK_NEAR(rv, 0.5 * (0.9 + 2.0 / 3.0) + 0.5 * 20.0 / 3.0, EXACT);
  CHECK_ARRAY(y, ((double[]){-3 * s, -s, s, 3 * s}), 4, EXACT); /* affine off */
  /* [N=3, C=2] (spatial 1): channel 0 = {0, 3, 6}, mean 3, biased var 6;
   * channel 1 = {2, 2, 2}, var 0: y = 0 (times gamma) + beta. */
  double xc[6] = {0, 2, 3, 2, 6, 2}, yc[6], mc[2], ic[2];
  double rmc[2] = {1, 1}, rvc[2] = {1, 1}, g2[2] = {1, 3}, b2[2] = {0, -1};
  ref_bn_dims dc = {.n = 3, .c = 2, .spatial = 1};
  ref_batchnorm_forward_train(&dc, eps, 0.1, xc, g2, b2, yc, mc, ic, rmc, rvc);
  double t = 1 / sqrt(6 + eps);
  CHECK_ARRAY(yc, ((double[]){-3 * t, -1, 0, -1, 3 * t, -1}), 6, EXACT);
  CHECK_ARRAY(mc, ((double[]){3, 2}), 2, EXACT);
  CHECK_ARRAY(rmc, ((double[]){0.9 + 0.3, 0.9 + 0.2}), 2, EXACT);
  CHECK_ARRAY(rvc, ((double[]){0.9 + 0.1 * 9, 0.9}), 2, EXACT); /* 18/2 = 9 */
  /* Eval uses the running statistics and leaves them alone:
   * y = 2*(x - 0.4)/sqrt(rv + eps) + 1 with the rm, rv of the first step. */
  double erm = 0.4, erv = 0.9 + 2.0 / 3.0, ye[4];
  ref_batchnorm_forward_eval(&d, eps, x, &gamma, &beta, &erm, &erv, ye);
  double e = 1 / sqrt(erv + eps);
  CHECK_ARRAY(ye,
              ((double[]){1 + 1.2 * e, 1 + 5.2 * e, 1 + 9.2 * e, 1 + 13.2 * e}),
              4, EXACT);
  CHECK_NEAR(erm, 0.4, 0);
}

typedef struct bn_ctx {
  ref_bn_dims d;
  bool train, affine;
  double *x, *g, *b, *rm, *rv, *y, *dy, *mean, *inv;
} bn_ctx;

static double bn_loss(void *p) {
  bn_ctx *c = p;
  double *g = c->affine ? c->g : NULL, *b = c->affine ? c->b : NULL;
  if (c->train) /* running statistics NULL: they do not affect y */
    ref_batchnorm_forward_train(&c->d, 1e-5, 0.1, c->x, g, b, c->y, c->mean,
                                c->inv, NULL, NULL);
  else
    ref_batchnorm_forward_eval(&c->d, 1e-5, c->x, g, b, c->rm, c->rv, c->y);
  return fd_dot(c->dy, c->y, (size_t)(c->d.n * c->d.c * c->d.spatial));
}

TEST(test_batchnorm_grad) {
  ref_bn_dims cases[] = {{.n = 3, .c = 5, .spatial = 7 * 6},
                         {.n = 7, .c = 5, .spatial = 1}};
  fd_rng rng = {41};
  for (size_t t = 0; t < ARRAY_LEN(cases); t++)
    for (int mode = 0; mode < 3; mode++) { /* train, train w/o affine, eval */
      bn_ctx c = {.d = cases[t], .train = mode < 2, .affine = mode != 1};
      size_t nx = (size_t)(c.d.n * c.d.c * c.d.spatial), nc = (size_t)c.d.c;
      c.x = dalloc(nx), c.y = dalloc(nx), c.dy = dalloc(nx);
      c.g = dalloc(nc), c.b = dalloc(nc), c.rm = dalloc(nc), c.rv = dalloc(nc);
      c.mean = dalloc(nc), c.inv = dalloc(nc);
      double *dx = dalloc(nx), *dg = dalloc(nc), *db = dalloc(nc);
      fd_fill(&rng, c.x, nx, -2, 3);
      fd_fill(&rng, c.dy, nx, -1, 1);
      fd_fill(&rng, c.g, nc, 0.5, 1.5);
      fd_fill(&rng, c.b, nc, -1, 1);
      fd_fill(&rng, c.rm, nc, -0.5, 0.5);
      fd_fill(&rng, c.rv, nc, 0.5, 2);
      double *g = c.affine ? c.g : NULL;
      if (c.train) {
        bn_loss(&c); /* fills mean and inv */
        ref_batchnorm_backward_train(&c.d, c.x, c.dy, g, c.mean, c.inv, dx, dg,
                                     db);
      } else {
        ref_batchnorm_backward_eval(&c.d, 1e-5, c.x, c.dy, g, c.rm, c.rv, dx,
                                    dg, db);
      }
      CHECK_EQ_INT(fd_check_grad("bn dx", bn_loss, &c, c.x, nx, dx), 0);
      if (c.affine) {
        CHECK_EQ_INT(fd_check_grad("bn dgamma", bn_loss, &c, c.g, nc, dg), 0);
        CHECK_EQ_INT(fd_check_grad("bn dbeta", bn_loss, &c, c.b, nc, db), 0);
      }
      free(c.x), free(c.y), free(c.dy), free(c.g), free(c.b), free(c.rm);
      free(c.rv), free(c.mean), free(c.inv), free(dx), free(dg), free(db);
    }
}

TEST(test_layernorm_hand) {
  /* Row {1, 2, 3, 4}: mean 2.5, biased variance 1.25. Row {5, 5, 5, 5}:
   * variance 0, so y = beta. gamma = {1, 2, 1, 2}, beta = {0, 0, 1, 1}. */
  double x[8] = {1, 2, 3, 4, 5, 5, 5, 5}, y[8], mean[2], inv[2];
  double g[4] = {1, 2, 1, 2}, b[4] = {0, 0, 1, 1}, eps = 1e-5;
  ref_layernorm_forward(2, 4, eps, x, g, b, y, mean, inv);
  double s = 1 / sqrt(1.25 + eps);
  CHECK_ARRAY(mean, ((double[]){2.5, 5}), 2, EXACT);
  CHECK_ARRAY(inv, ((double[]){s, 1 / sqrt(eps)}), 2, EXACT);
  CHECK_ARRAY(y, ((double[]){-1.5 * s, -s, 1 + 0.5 * s, 1 + 3 * s, 0, 0, 1, 1}),
              8, EXACT);
}

typedef struct ln_ctx {
  int64_t rows;
  int dim;
  bool affine;
  double *x, *g, *b, *y, *dy, *mean, *inv;
} ln_ctx;

static double ln_loss(void *p) {
  ln_ctx *c = p;
  ref_layernorm_forward(c->rows, c->dim, 1e-5, c->x, c->affine ? c->g : NULL,
                        c->affine ? c->b : NULL, c->y, c->mean, c->inv);
  return fd_dot(c->dy, c->y, (size_t)(c->rows * c->dim));
}

TEST(test_layernorm_grad) {
  fd_rng rng = {51};
  for (int affine = 0; affine < 2; affine++) {
    ln_ctx c = {.rows = 6, .dim = 7, .affine = affine};
    size_t nx = 42, nd = 7;
    c.x = dalloc(nx), c.y = dalloc(nx), c.dy = dalloc(nx), c.g = dalloc(nd);
    c.b = dalloc(nd), c.mean = dalloc(6), c.inv = dalloc(6);
    double *dx = dalloc(nx), *dg = dalloc(nd), *db = dalloc(nd);
    fd_fill(&rng, c.x, nx, -2, 3);
    fd_fill(&rng, c.dy, nx, -1, 1);
    fd_fill(&rng, c.g, nd, 0.5, 1.5);
    fd_fill(&rng, c.b, nd, -1, 1);
    ln_loss(&c); /* fills mean and inv */
    ref_layernorm_backward(c.rows, c.dim, c.x, c.dy, affine ? c.g : NULL,
                           c.mean, c.inv, dx, dg, db);
    CHECK_EQ_INT(fd_check_grad("ln dx", ln_loss, &c, c.x, nx, dx), 0);
    if (affine) {
      CHECK_EQ_INT(fd_check_grad("ln dgamma", ln_loss, &c, c.g, nd, dg), 0);
      CHECK_EQ_INT(fd_check_grad("ln dbeta", ln_loss, &c, c.b, nd, db), 0);
    }
    free(c.x), free(c.y), free(c.dy), free(c.g), free(c.b), free(c.mean);
    free(c.inv), free(dx), free(dg), free(db);
  }
}

int main(void) {
  RUN(test_conv_dims);
  RUN(test_conv_hand);
  RUN(test_conv_vs_im2col);
  RUN(test_conv_grad);
  RUN(test_linear_hand);
  RUN(test_linear_grad);
  RUN(test_matmul_hand);
  RUN(test_matmul_grad);
  RUN(test_pool_dims);
  RUN(test_maxpool_hand);
  RUN(test_avgpool_hand);
  RUN(test_pool_grad);
  RUN(test_batchnorm_hand);
  RUN(test_batchnorm_grad);
  RUN(test_layernorm_hand);
  RUN(test_layernorm_grad);
  return TEST_SUMMARY();
}
