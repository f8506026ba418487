/* test_train.c — the training-loop numerics of runtime/train/: each
 * optimizer's first three steps against values worked out by hand (in the
 * comments), the schedules at their boundaries, clipping, EMA, and the
 * statistics and determinism of weight initialisation. The long random
 * trajectories are checked against numpy in tests/py/test_optim_numpy.py. */
#include "frontend/load.h"
#include "runtime/train/train.h"
#include "test.h"

#include <stdlib.h>

/* float32 storage of values near 1: a few ulps. */
#define TOL 2e-6

static ir_train_cfg cfg_of(ir_optim_kind kind, double lr) {
  ir_train_cfg c;
  ir_train_cfg_default(&c);
  c.optim.kind = kind;
  c.optim.lr = lr;
  if (kind == IR_OPTIM_ADAGRAD)
    c.optim.eps = 1e-10; /* torch.optim.Adagrad's default */
  if (kind == IR_OPTIM_ADAMW)
    c.weight_decay_mode = IR_WD_DECOUPLED;
  return c;
}

/* Runs three steps with the same gradient g on p0 and checks the param
 * after each against want[step][i]. */
static void run3(const ir_train_cfg *c, const float p0[3], const float g[3],
                 const double want[3][3]) {
  float p[3] = {p0[0], p0[1], p0[2]};
  float mem[3 * TRAIN_OPT_MAX_BUFS];
  train_opt_state s;
  train_opt_state_init(&s, c, 3, mem);
  for (int t = 0; t < 3; t++) {
    train_opt_step(c, &s, p, g, c->optim.lr);
    for (int i = 0; i < 3; i++)
      CHECK_NEAR(p[i], want[t][i], TOL);
  }
  CHECK_EQ_INT(s.step, 3);
}

static const float P0[3] = {1.0f, -2.0f, 0.5f};
static const float G[3] = {0.1f, 0.2f, -0.3f};

TEST(sgd_plain) {
  /* p_t = p0 - lr * t * g with lr 0.1. */
  ir_train_cfg c = cfg_of(IR_OPTIM_SGD, 0.1);
  const double want[3][3] = {
      {0.99, -2.02, 0.53}, {0.98, -2.04, 0.56}, {0.97, -2.06, 0.59}};
  run3(&c, P0, G, want);
  const char *roles[TRAIN_OPT_MAX_BUFS];
  CHECK_EQ_INT(train_opt_buf_roles(&c, roles), 0);
}

TEST(sgd_momentum) {
  /* buf = g, 1.9 g, 2.71 g (first buf is the gradient itself, dampening
   * 0); p = p0 - 0.1 g, - 0.29 g, - 0.561 g. */
  ir_train_cfg c = cfg_of(IR_OPTIM_SGD, 0.1);
  c.optim.momentum = 0.9;
  double k[3] = {0.1, 0.29, 0.561}, want[3][3];
  for (int t = 0; t < 3; t++)
    for (int i = 0; i < 3; i++)
      want[t][i] = P0[i] - k[t] * G[i];
  run3(&c, P0, G, want);
  const char *roles[TRAIN_OPT_MAX_BUFS];
  CHECK_EQ_INT(train_opt_buf_roles(&c, roles), 1);
  CHECK(strcmp(roles[0], "momentum") == 0);
}

TEST(sgd_nesterov) {
  /* buf as above; d = g + 0.9 buf = 1.9 g, 2.71 g, 3.439 g; the param
   * moves by 0.1 d: p = p0 - 0.19 g, - 0.461 g, - 0.8049 g. */
  ir_train_cfg c = cfg_of(IR_OPTIM_SGD, 0.1);
  c.optim.momentum = 0.9;
  c.optim.nesterov = true;
  double k[3] = {0.19, 0.461, 0.8049}, want[3][3];
  for (int t = 0; t < 3; t++)
    for (int i = 0; i < 3; i++)
      want[t][i] = P0[i] - k[t] * G[i];
  run3(&c, P0, G, want);
}

TEST(weight_decay_modes) {
  const float p0[3] = {1, -1, 0}, zero[3] = {0, 0, 0};
  /* Coupled L2 with momentum 0.9, lr 0.1, wd 0.1, zero gradient:
   * g1 = 0.1, buf 0.1, p1 = 0.99; g2 = 0.099, buf 0.189, p2 = 0.9711;
   * g3 = 0.09711, buf 0.26721, p3 = 0.944379. */
  ir_train_cfg c = cfg_of(IR_OPTIM_SGD, 0.1);
  c.optim.momentum = 0.9;
  c.weight_decay = 0.1;
  const double l2[3][3] = {
      {0.99, -0.99, 0}, {0.9711, -0.9711, 0}, {0.944379, -0.944379, 0}};
  run3(&c, p0, zero, l2);
  /* Decoupled: p *= 1 - lr * wd = 0.99 per step, the momentum sees 0. */
  c.weight_decay_mode = IR_WD_DECOUPLED;
  const double dec[3][3] = {
      {0.99, -0.99, 0}, {0.9801, -0.9801, 0}, {0.970299, -0.970299, 0}};
  run3(&c, p0, zero, dec);
  /* L1 0.5, lr 0.1: each step moves 0.05 towards 0; sign(0) = 0. */
  ir_train_cfg l1 = cfg_of(IR_OPTIM_SGD, 0.1);
  l1.l1 = 0.5;
  const float q0[3] = {1, -2, 0};
  const double want[3][3] = {
      {0.95, -1.95, 0}, {0.90, -1.90, 0}, {0.85, -1.85, 0}};
  run3(&l1, q0, zero, want);
  /* The caller's gradient is not modified by the decay terms. */
  float p[1] = {1}, g[1] = {0.5f}, mem[1];
  train_opt_state s;
  c.weight_decay_mode = IR_WD_L2;
  train_opt_state_init(&s, &c, 1, mem);
  train_opt_step(&c, &s, p, g, 0.1);
  CHECK(g[0] == 0.5f);
}

TEST(adagrad) {
  /* sum_t = t g^2, so step t moves lr * sign(g) / sqrt(t): cumulative
   * 0.1, 0.1 (1 + 1/sqrt 2) = 0.17071068, 0.1 (... + 1/sqrt 3) =
   * 0.22844571, with lr 0.1. */
  ir_train_cfg c = cfg_of(IR_OPTIM_ADAGRAD, 0.1);
  double k[3] = {0.1, 0.17071068, 0.22844571}, want[3][3];
  for (int t = 0; t < 3; t++)
    for (int i = 0; i < 3; i++)
      want[t][i] = P0[i] - k[t] * (G[i] > 0 ? 1 : -1);
  run3(&c, P0, G, want);
}

TEST(rmsprop) {
  /* alpha 0.99: square_avg_t = (1 - 0.99^t) g^2, so step t moves
   * lr sign(g) / sqrt(1 - 0.99^t) = 0.01 * {10, 7.0888121, 5.8024908}:
   * cumulative 0.1, 0.17088812, 0.22891303 (lr 0.01, eps 1e-8 is below
   * the tolerance). */
  ir_train_cfg c = cfg_of(IR_OPTIM_RMSPROP, 0.01);
  double k[3] = {0.1, 0.17088812, 0.22891303}, want[3][3];
  for (int t = 0; t < 3; t++)
    for (int i = 0; i < 3; i++)
      want[t][i] = P0[i] - k[t] * (G[i] > 0 ? 1 : -1);
  run3(&c, P0, G, want);
  /* Momentum 0.9 (buffer from 0): buf = 10, 16.088812, 20.282422 (times
   * sign g); cumulative lr * buf = 0.1, 0.26088812, 0.46371234. */
  c.optim.momentum = 0.9;
  double km[3] = {0.1, 0.26088812, 0.46371234};
  for (int t = 0; t < 3; t++)
    for (int i = 0; i < 3; i++)
      want[t][i] = P0[i] - km[t] * (G[i] > 0 ? 1 : -1);
  run3(&c, P0, G, want);
  const char *roles[TRAIN_OPT_MAX_BUFS];
  CHECK_EQ_INT(train_opt_buf_roles(&c, roles), 2);
  CHECK(strcmp(roles[0], "square_avg") == 0);
}

TEST(adam) {
  /* A constant gradient: the bias-corrected moments are exactly g and
   * g^2, so every step moves lr * g / (|g| + eps) = lr * sign(g). */
  ir_train_cfg c = cfg_of(IR_OPTIM_ADAM, 0.1);
  double want[3][3];
  for (int t = 0; t < 3; t++)
    for (int i = 0; i < 3; i++)
      want[t][i] = P0[i] - 0.1 * (t + 1) * (G[i] > 0 ? 1 : -1);
  run3(&c, P0, G, want);
  /* eps outside the square root and after the bias correction: g = eps
   * = 1e-8 gives sqrt(v_hat) = 1e-8, so each step moves lr * 1e-8 /
   * (1e-8 + 1e-8) = lr / 2. (eps added before the correction would give
   * 0.0307 at step 1; inside the root, 1e-4 * lr.) */
  const float tiny[3] = {1e-8f, -1e-8f, 1e-8f};
  c.optim.eps = 1e-8f; /* the float value of g, so that the halves match */
  for (int t = 0; t < 3; t++)
    for (int i = 0; i < 3; i++)
      want[t][i] = P0[i] - 0.05 * (t + 1) * (tiny[i] > 0 ? 1 : -1);
  run3(&c, P0, tiny, want);
  const char *roles[TRAIN_OPT_MAX_BUFS];
  CHECK_EQ_INT(train_opt_buf_roles(&c, roles), 2);
  CHECK(strcmp(roles[0], "exp_avg") == 0 &&
        strcmp(roles[1], "exp_avg_sq") == 0);
  char name[64];
  CHECK_EQ_INT(train_opt_buf_name(name, sizeof name, "fc1.weight", roles[1]),
               strlen("fc1.weight.exp_avg_sq"));
  CHECK(strcmp(name, "fc1.weight.exp_avg_sq") == 0);
}

TEST(adamw_vs_adam_l2) {
  /* AdamW, lr 0.1, wd 0.1, g = 0.1: p = 0.99 p - 0.1:
   * 0.89, 0.7811, 0.673289. */
  ir_train_cfg c = cfg_of(IR_OPTIM_ADAMW, 0.1);
  c.weight_decay = 0.1;
  const float p0[3] = {1, 1, 1}, g[3] = {0.1f, 0.1f, 0.1f};
  const double want[3][3] = {{0.89, 0.89, 0.89},
                             {0.7811, 0.7811, 0.7811},
                             {0.673289, 0.673289, 0.673289}};
  run3(&c, p0, g, want);
  /* Adam with coupled L2: the decay goes through the moments. Step 1:
   * g' = 0.1 + 0.1 = 0.2 > 0, moves lr: 0.9. Step 2: g' = 0.19;
   * m = 0.9*0.02 + 0.019 = 0.037, v = 0.999*4e-5 + 0.001*0.0361 =
   * 7.606e-5; p = 0.9 - 0.1 * (0.037 / 0.19) / sqrt(7.606e-5 / 0.001999)
   * = 0.9 - 0.1 * 0.19473684 / 0.19506159 = 0.80016649. */
  ir_train_cfg a = cfg_of(IR_OPTIM_ADAM, 0.1);
  a.weight_decay = 0.1;
  float p[1] = {1}, gg[1] = {0.1f}, mem[2];
  train_opt_state s;
  train_opt_state_init(&s, &a, 1, mem);
  train_opt_step(&a, &s, p, gg, 0.1);
  CHECK_NEAR(p[0], 0.9, TOL);
  train_opt_step(&a, &s, p, gg, 0.1);
  CHECK_NEAR(p[0], 0.80016649, 1e-6);
}

TEST(schedule_constant_warmup) {
  ir_schedule s = {.kind = IR_SCHED_CONSTANT, .warmup_steps = 4};
  /* 0.1 * (step + 1) / 4 during warmup. */
  CHECK_NEAR(train_lr_at(&s, 0.1, 0, 10, 100), 0.025, 1e-12);
  CHECK_NEAR(train_lr_at(&s, 0.1, 1, 10, 100), 0.05, 1e-12);
  CHECK_NEAR(train_lr_at(&s, 0.1, 3, 10, 100), 0.1, 1e-12);
  CHECK_NEAR(train_lr_at(&s, 0.1, 4, 10, 100), 0.1, 1e-12);
  CHECK_NEAR(train_lr_at(&s, 0.1, 99, 10, 100), 0.1, 1e-12);
  /* warmup_epochs 0.5 of 10 steps: 5 steps. */
  ir_schedule e = {.kind = IR_SCHED_CONSTANT, .warmup_epochs = 0.5};
  CHECK_EQ_INT(train_warmup_steps(&e, 10), 5);
  CHECK_NEAR(train_lr_at(&e, 0.1, 0, 10, 100), 0.02, 1e-12);
  CHECK_NEAR(train_lr_at(&e, 0.1, 4, 10, 100), 0.1, 1e-12);
  ir_schedule none = {.kind = IR_SCHED_CONSTANT};
  CHECK_NEAR(train_lr_at(&none, 0.1, 0, 10, 100), 0.1, 1e-12);
}

TEST(schedule_step) {
  /* Milestones at epochs 2 and 4, 10 steps an epoch, gamma 0.1. */
  ir_schedule s = {.kind = IR_SCHED_STEP,
                   .n_milestones = 2,
                   .milestones = {2, 4},
                   .gamma = 0.1};
  CHECK_NEAR(train_lr_at(&s, 0.1, 19, 10, 100), 0.1, 1e-12);
  CHECK_NEAR(train_lr_at(&s, 0.1, 20, 10, 100), 0.01, 1e-12);
  CHECK_NEAR(train_lr_at(&s, 0.1, 39, 10, 100), 0.01, 1e-12);
  CHECK_NEAR(train_lr_at(&s, 0.1, 40, 10, 100), 0.001, 1e-12);
  /* Warmup multiplies the step schedule's value. */
  s.warmup_steps = 5;
  CHECK_NEAR(train_lr_at(&s, 0.1, 0, 10, 100), 0.02, 1e-12);
}

TEST(schedule_cosine_linear) {
  /* 100 steps, 10 of warmup, min_lr 0.001: p = (s - 10) / 90. */
  ir_schedule s = {
      .kind = IR_SCHED_COSINE, .warmup_steps = 10, .min_lr = 0.001};
  CHECK_NEAR(train_lr_at(&s, 0.1, 9, 10, 100), 0.1, 1e-12);
  CHECK_NEAR(train_lr_at(&s, 0.1, 10, 10, 100), 0.1, 1e-12);
  CHECK_NEAR(train_lr_at(&s, 0.1, 55, 10, 100), 0.0505, 1e-12); /* p 1/2 */
  /* s = 99, p = 89/90: 0.001 + 0.099 (1 + cos(89 pi / 90)) / 2
   * = 0.001 + 0.099 * 0.00030459 = 0.00103015406. */
  CHECK_NEAR(train_lr_at(&s, 0.1, 99, 10, 100), 0.00103015406, 1e-11);
  CHECK_NEAR(train_lr_at(&s, 0.1, 100, 10, 100), 0.001, 1e-12);
  CHECK_NEAR(train_lr_at(&s, 0.1, 500, 10, 100), 0.001, 1e-12);
  ir_schedule l = {.kind = IR_SCHED_LINEAR};
  CHECK_NEAR(train_lr_at(&l, 0.1, 0, 10, 100), 0.1, 1e-12);
  CHECK_NEAR(train_lr_at(&l, 0.1, 50, 10, 100), 0.05, 1e-12);
  CHECK_NEAR(train_lr_at(&l, 0.1, 75, 10, 100), 0.025, 1e-12);
  CHECK_NEAR(train_lr_at(&l, 0.1, 100, 10, 100), 0.0, 1e-12);
  l.min_lr = 0.01; /* 0.1 + (0.01 - 0.1) * 0.5 */
  CHECK_NEAR(train_lr_at(&l, 0.1, 50, 10, 100), 0.055, 1e-12);
}

TEST(schedule_inverse_sqrt) {
  ir_schedule s = {.kind = IR_SCHED_INVERSE_SQRT, .warmup_steps = 4};
  CHECK_NEAR(train_lr_at(&s, 0.1, 0, 10, 100), 0.025, 1e-12);
  CHECK_NEAR(train_lr_at(&s, 0.1, 3, 10, 100), 0.1, 1e-12);
  CHECK_NEAR(train_lr_at(&s, 0.1, 4, 10, 100), 0.1, 1e-12);
  CHECK_NEAR(train_lr_at(&s, 0.1, 16, 10, 100), 0.05, 1e-12);
  ir_schedule z = {.kind = IR_SCHED_INVERSE_SQRT};
  CHECK_NEAR(train_lr_at(&z, 0.1, 0, 10, 100), 0.1, 1e-12);
  CHECK_NEAR(train_lr_at(&z, 0.1, 3, 10, 100), 0.05, 1e-12);
}

TEST(linear_scaling_rule) {
  ir_train_cfg c;
  ir_train_cfg_default(&c);
  c.optim.lr = 0.1;
  CHECK_NEAR(train_lr_base(&c, 1024), 0.1, 1e-12); /* off */
  c.base_batch = 256;
  CHECK_NEAR(train_lr_base(&c, 1024), 0.4, 1e-12);
  CHECK_NEAR(train_lr_base(&c, 128), 0.05, 1e-12);
}

TEST(clip) {
  float a[2] = {3, 0}, b[1] = {4};
  float *g[2] = {a, b};
  int64_t n[2] = {2, 1};
  /* Norm 5 over both tensors; max 10 leaves them alone. */
  CHECK_NEAR(train_clip_grad_norm(g, n, 2, 10.0), 5.0, 1e-12);
  CHECK(a[0] == 3 && b[0] == 4);
  /* max 1: scale by 1 / (5 + 1e-6); the new norm is just under 1. */
  CHECK_NEAR(train_clip_grad_norm(g, n, 2, 1.0), 5.0, 1e-12);
  CHECK_NEAR(a[0], 0.6, 1e-6);
  CHECK_NEAR(b[0], 0.8, 1e-6);
  CHECK(a[1] == 0);
  CHECK(train_clip_grad_norm(g, n, 2, 1.0) <= 1.0);
  /* A NaN gradient: norm NaN, nothing scaled. */
  float c[2] = {NAN, 100};
  float *gc[1] = {c};
  int64_t nc[1] = {2};
  CHECK(isnan(train_clip_grad_norm(gc, nc, 1, 1.0)));
  CHECK(c[1] == 100);
}

TEST(ema) {
  float p[2] = {1, 2}, mem[2];
  train_ema e;
  train_ema_init(&e, mem, p, 2);
  CHECK(mem[0] == 1 && mem[1] == 2);
  p[0] = 3;
  train_ema_update(&e, p, 0.5); /* 0.5 * 1 + 0.5 * 3 = 2 */
  CHECK_NEAR(e.w[0], 2.0, 1e-7);
  CHECK_NEAR(e.w[1], 2.0, 1e-7);
  train_ema_update(&e, p, 0.5); /* 0.5 * 2 + 0.5 * 3 = 2.5 */
  CHECK_NEAR(e.w[0], 2.5, 1e-7);
  train_ema_update(&e, p, 0.9); /* 0.9 * 2.5 + 0.1 * 3 = 2.55 */
  CHECK_NEAR(e.w[0], 2.55, 1e-6);
  train_ema_swap(&e, p); /* evaluate with the EMA weights */
  CHECK_NEAR(p[0], 2.55, 1e-6);
  CHECK(e.w[0] == 3);
  train_ema_swap(&e, p); /* and back */
  CHECK(p[0] == 3 && p[1] == 2);
}

/* Mean and standard deviation of n floats, in double. */
static void moments(const float *x, int64_t n, double *mean, double *std) {
  double s = 0, q = 0;
  for (int64_t i = 0; i < n; i++)
    s += x[i];
  *mean = s / (double)n;
  for (int64_t i = 0; i < n; i++)
    q += (x[i] - *mean) * (x[i] - *mean);
  *std = sqrt(q / (double)n);
}

static ir_param param_of(int rank, const int64_t *dims) {
  ir_param p = {.name = "w", .role = "weight", .dtype = IR_F32};
  p.shape.rank = rank;
  for (int d = 0; d < rank; d++)
    p.shape.dim[d] = dims[d];
  return p;
}

/* One init over ~1e5 elements: mean ~0 (5 standard errors), std within 2%
 * of `std`, and for uniform inits every value within +-bound with the
 * extremes close to it. */
static void check_init(const ir_param *p, ir_init init, double std,
                       double bound) {
  int64_t n = ir_shape_numel(&p->shape, 1);
  float *x = malloc((size_t)n * sizeof *x);
  train_init_param(p, init, 42, 7, x);
  double mean, sd;
  moments(x, n, &mean, &sd);
  CHECK(fabs(mean) < 5 * std / sqrt((double)n));
  CHECK(fabs(sd / std - 1) < 0.02);
  if (bound > 0) {
    float lo = x[0], hi = x[0];
    for (int64_t i = 0; i < n; i++) {
      lo = x[i] < lo ? x[i] : lo;
      hi = x[i] > hi ? x[i] : hi;
    }
    CHECK(lo >= -bound && hi <= bound);
    CHECK(lo < -0.999 * bound && hi > 0.999 * bound);
  }
  free(x);
}

TEST(init_statistics) {
  /* linear [1000, 100]: fan_in 100, fan_out 1000. */
  ir_param lin = param_of(2, (int64_t[]){1000, 100});
  int64_t fi, fo;
  train_init_fans(&lin.shape, &fi, &fo);
  CHECK(fi == 100 && fo == 1000);
  double xa = sqrt(6.0 / 1100), he = sqrt(6.0 / 100);
  check_init(&lin, IR_INIT_XAVIER_UNIFORM, xa / sqrt(3), xa);
  check_init(&lin, IR_INIT_XAVIER_NORMAL, sqrt(2.0 / 1100), 0);
  check_init(&lin, IR_INIT_HE_UNIFORM, he / sqrt(3), he);
  check_init(&lin, IR_INIT_HE_NORMAL, sqrt(2.0 / 100), 0);
  /* conv [128, 87, 3, 3] (100,224 elements): fan_in 87*9, fan_out 128*9. */
  ir_param conv = param_of(4, (int64_t[]){128, 87, 3, 3});
  train_init_fans(&conv.shape, &fi, &fo);
  CHECK(fi == 783 && fo == 1152);
  check_init(&conv, IR_INIT_HE_NORMAL, sqrt(2.0 / 783), 0);
  double cb = sqrt(6.0 / (783 + 1152));
  check_init(&conv, IR_INIT_XAVIER_UNIFORM, cb / sqrt(3), cb);
  /* An odd count: the last Box-Muller pair is half used. */
  ir_param odd = param_of(2, (int64_t[]){3, 3});
  float x[9];
  train_init_param(&odd, IR_INIT_HE_NORMAL, 1, 0, x);
  for (int i = 0; i < 9; i++)
    CHECK(isfinite(x[i]) && x[i] != 0);
}

TEST(init_constants_and_determinism) {
  ir_param p = param_of(2, (int64_t[]){16, 8});
  float a[128], b[128];
  train_init_param(&p, IR_INIT_ZEROS, 1, 0, a);
  CHECK(a[0] == 0 && a[127] == 0);
  train_init_param(&p, IR_INIT_ONES, 1, 0, a);
  CHECK(a[0] == 1 && a[127] == 1);
  p.init_value = 0.25;
  train_init_param(&p, IR_INIT_CONST, 1, 0, a);
  CHECK(a[0] == 0.25f && a[127] == 0.25f);
  train_init_param(&p, IR_INIT_XAVIER_NORMAL, 5, 3, a);
  train_init_param(&p, IR_INIT_XAVIER_NORMAL, 5, 3, b);
  CHECK(memcmp(a, b, sizeof a) == 0);
  train_init_param(&p, IR_INIT_XAVIER_NORMAL, 5, 4, b); /* other param */
  CHECK(memcmp(a, b, sizeof a) != 0);
  train_init_param(&p, IR_INIT_XAVIER_NORMAL, 6, 3, b); /* other seed */
  CHECK(memcmp(a, b, sizeof a) != 0);
  /* Init draws from its own key, not from Philox(seed, stream = index),
   * which dropout's (step 0, layer 3) would share. */
  train_init_param(&p, IR_INIT_HE_UNIFORM, 5, 3, a);
  double bound = sqrt(6.0 / 8);
  CHECK(a[0] != (float)(bound * (2.0 * philox_uniform(5, 3, 0) - 1)));
}

TEST(init_auto) {
  CHECK_EQ_INT(train_init_auto(IR_OP_RELU), IR_INIT_HE_NORMAL);
  CHECK_EQ_INT(train_init_auto(IR_OP_GELU), IR_INIT_HE_NORMAL);
  CHECK_EQ_INT(train_init_auto(IR_OP_MAXOUT), IR_INIT_HE_NORMAL);
  CHECK_EQ_INT(train_init_auto(IR_OP_SIGMOID), IR_INIT_XAVIER_UNIFORM);
  CHECK_EQ_INT(train_init_auto(IR_OP_TANH), IR_INIT_XAVIER_UNIFORM);
  CHECK_EQ_INT(train_init_auto(IR_OP_COUNT), IR_INIT_XAVIER_UNIFORM);
  const char *text = "input x: f32[batch, 3, 8, 8]\n"
                     "c1 = conv2d(x, out=4, kernel=3, padding=1)\n"
                     "b1 = batchnorm(c1)\n"
                     "a1 = relu(b1)\n"
                     "c2 = conv2d(a1, out=4, kernel=3, padding=1)\n"
                     "s = add(c2, a1)\n"
                     "a2 = elu(s)\n"
                     "f = flatten(a2)\n"
                     "h = linear(f, out=8)\n"
                     "t = tanh(h)\n"
                     "o = linear(t, out=2)\n";
  kiln_error err;
  kiln_model *m = kiln_model_load_string("auto.kiln", text, strlen(text), &err);
  CHECK(m != NULL);
  if (!m) {
    fputs(err.message, stderr);
    return;
  }
  const ir_graph *g = &m->g;
  CHECK_EQ_INT(train_init_next_activation(g, ir_graph_find(g, "c1")),
               IR_OP_RELU); /* through batchnorm */
  CHECK_EQ_INT(train_init_next_activation(g, ir_graph_find(g, "c2")),
               IR_OP_ELU); /* through the residual add */
  CHECK_EQ_INT(train_init_next_activation(g, ir_graph_find(g, "h")),
               IR_OP_TANH);
  CHECK_EQ_INT(train_init_next_activation(g, ir_graph_find(g, "o")),
               IR_OP_COUNT); /* nothing follows */
  /* a1 feeds c2 and the add: several consumers, no single activation. */
  CHECK_EQ_INT(train_init_next_activation(g, ir_graph_find(g, "a1")),
               IR_OP_COUNT);
  kiln_model_free(m);
}

int main(void) {
  RUN(sgd_plain);
  RUN(sgd_momentum);
  RUN(sgd_nesterov);
  RUN(weight_decay_modes);
  RUN(adagrad);
  RUN(rmsprop);
  RUN(adam);
  RUN(adamw_vs_adam_l2);
  RUN(schedule_constant_warmup);
  RUN(schedule_step);
  RUN(schedule_cosine_linear);
  RUN(schedule_inverse_sqrt);
  RUN(linear_scaling_rule);
  RUN(clip);
  RUN(ema);
  RUN(init_statistics);
  RUN(init_constants_and_determinism);
  RUN(init_auto);
  return TEST_SUMMARY();
}
