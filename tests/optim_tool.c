/* optim_tool.c — prints optimizer trajectories for
 * tests/py/test_optim_numpy.py, which replays them with an independent
 * numpy implementation. Not a test by itself; reads nothing.
 *
 * For each case of the table below: N_ELEM parameters drawn uniformly from
 * [-1, 1), then N_STEPS steps with Philox gradients (roughly N(0, 1)
 * scaled per case, so Adam's and RMSProp's normalisations matter) and a
 * cosine-with-warmup learning rate that changes every step. Output, one
 * record per line, floats with 9 significant digits (exact for float32):
 *
 *   case NAME kind=K lr=.. momentum=.. nesterov=0|1 beta1=.. beta2=..
 *        eps=.. alpha=.. wd=.. mode=l2|decoupled l1=..     (one line)
 *   roles ROLE...
 *   p0 V...
 *   step T lr=LR g V... p V...
 *   end */
#include "runtime/train/train.h"

#include <math.h>
#include <stdio.h>

enum { N_ELEM = 6, N_STEPS = 20 };

typedef struct tool_case {
  const char *name;
  ir_optim_kind kind;
  double lr, momentum;
  bool nesterov;
  double beta1, beta2, eps, alpha;
  double wd;
  ir_wd_mode mode;
  double l1;
  double gscale; /* gradient scale */
} tool_case;

static const tool_case cases[] = {
    {"sgd", IR_OPTIM_SGD, 0.1, 0, false, 0, 0, 0, 0, 0, IR_WD_L2, 0, 1},
    {"sgd_momentum", IR_OPTIM_SGD, 0.05, 0.9, false, 0, 0, 0, 0, 0, IR_WD_L2, 0,
     1},
    {"sgd_nesterov", IR_OPTIM_SGD, 0.05, 0.9, true, 0, 0, 0, 0, 0, IR_WD_L2, 0,
     1},
    {"sgd_l2", IR_OPTIM_SGD, 0.05, 0.8, false, 0, 0, 0, 0, 0.05, IR_WD_L2, 0,
     1},
    {"sgd_decoupled", IR_OPTIM_SGD, 0.05, 0.8, true, 0, 0, 0, 0, 0.05,
     IR_WD_DECOUPLED, 0, 1},
    {"sgd_l1", IR_OPTIM_SGD, 0.05, 0, false, 0, 0, 0, 0, 0.01, IR_WD_L2, 0.002,
     1},
    {"adagrad", IR_OPTIM_ADAGRAD, 0.1, 0, false, 0, 0, 1e-10, 0, 0, IR_WD_L2, 0,
     1},
    {"adagrad_wd", IR_OPTIM_ADAGRAD, 0.1, 0, false, 0, 0, 1e-10, 0, 0.1,
     IR_WD_L2, 0, 0.01},
    {"rmsprop", IR_OPTIM_RMSPROP, 0.01, 0, false, 0, 0, 1e-8, 0.99, 0, IR_WD_L2,
     0, 1},
    {"rmsprop_momentum", IR_OPTIM_RMSPROP, 0.01, 0.5, false, 0, 0, 1e-8, 0.9,
     0.01, IR_WD_L2, 0, 0.1},
    {"adam", IR_OPTIM_ADAM, 0.01, 0, false, 0.9, 0.999, 1e-8, 0, 0, IR_WD_L2, 0,
     1},
    {"adam_l2", IR_OPTIM_ADAM, 0.01, 0, false, 0.9, 0.999, 1e-8, 0, 0.1,
     IR_WD_L2, 0, 0.1},
    {"adam_small_grads", IR_OPTIM_ADAM, 0.01, 0, false, 0.8, 0.99, 1e-6, 0, 0,
     IR_WD_L2, 0, 1e-6},
    {"adamw", IR_OPTIM_ADAMW, 0.01, 0, false, 0.9, 0.999, 1e-8, 0, 0.1,
     IR_WD_DECOUPLED, 0, 1},
    {"adamw_l2_mode", IR_OPTIM_ADAMW, 0.01, 0, false, 0.9, 0.999, 1e-8, 0, 0.1,
     IR_WD_L2, 0, 1},
};

static const char *kind_name(ir_optim_kind k) {
  switch (k) {
  case IR_OPTIM_SGD:
    return "sgd";
  case IR_OPTIM_ADAGRAD:
    return "adagrad";
  case IR_OPTIM_RMSPROP:
    return "rmsprop";
  case IR_OPTIM_ADAM:
    return "adam";
  case IR_OPTIM_ADAMW:
    return "adamw";
  }
  return "?";
}

static void print_vec(const char *tag, const float *v) {
  printf(" %s", tag);
  for (int i = 0; i < N_ELEM; i++)
    printf(" %.9g", (double)v[i]);
}

/* A roughly normal gradient element: the sum of four uniforms, centred and
 * scaled to unit variance (Irwin-Hall), from a stream per case. */
static float grad_elem(uint64_t stream, uint64_t i, double scale) {
  double s = 0;
  for (int k = 0; k < 4; k++)
    s += philox_uniform(2024, stream, 4 * i + (uint64_t)k);
  return (float)(scale * (s - 2.0) * sqrt(3.0));
}

static void run_case(int ci, const tool_case *tc) {
  ir_train_cfg c;
  ir_train_cfg_default(&c);
  c.optim = (ir_optim){.kind = tc->kind,
                       .lr = tc->lr,
                       .momentum = tc->momentum,
                       .nesterov = tc->nesterov,
                       .beta1 = tc->beta1,
                       .beta2 = tc->beta2,
                       .eps = tc->eps,
                       .alpha = tc->alpha};
  c.weight_decay = tc->wd;
  c.weight_decay_mode = tc->mode;
  c.l1 = tc->l1;
  ir_schedule sched = {
      .kind = IR_SCHED_COSINE, .warmup_steps = 3, .min_lr = tc->lr / 10};

  printf("case %s kind=%s lr=%.17g momentum=%.17g nesterov=%d beta1=%.17g "
         "beta2=%.17g eps=%.17g alpha=%.17g wd=%.17g mode=%s l1=%.17g\n",
         tc->name, kind_name(tc->kind), tc->lr, tc->momentum,
         tc->nesterov ? 1 : 0, tc->beta1, tc->beta2, tc->eps, tc->alpha, tc->wd,
         tc->mode == IR_WD_L2 ? "l2" : "decoupled", tc->l1);

  train_opt_state s;
  float mem[N_ELEM * TRAIN_OPT_MAX_BUFS];
  train_opt_state_init(&s, &c, N_ELEM, mem);
  printf("roles");
  for (int k = 0; k < s.n_bufs; k++)
    printf(" %s", s.role[k]);
  printf("\n");

  float p[N_ELEM], g[N_ELEM];
  uint64_t stream = 1000 + (uint64_t)ci;
  for (int i = 0; i < N_ELEM; i++)
    p[i] = 2 * philox_uniform(7, stream, (uint64_t)i) - 1;
  printf("p0");
  print_vec("", p);
  printf("\n");
  for (int t = 0; t < N_STEPS; t++) {
    for (int i = 0; i < N_ELEM; i++)
      g[i] = grad_elem(stream, (uint64_t)(t * N_ELEM + i), tc->gscale);
    double lr = train_lr_at(&sched, tc->lr, t, 5, N_STEPS);
    train_opt_step(&c, &s, p, g, lr);
    printf("step %d lr=%.17g", t, lr);
    print_vec("g", g);
    print_vec("p", p);
    printf("\n");
  }
  printf("end\n");
}

int main(void) {
  for (int k = 0; k < (int)(sizeof cases / sizeof cases[0]); k++)
    run_case(k, &cases[k]);
  return 0;
}
