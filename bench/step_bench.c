/* step_bench.c — times one training step (forward, backward and optimizer
 * update) and one inference step of a model on a backend, through the same
 * interface the training loop uses (runtime/backend.h). A benchmark, not a
 * test: it prints one JSON object per measurement and checks nothing.
 *
 *   step_bench models/lenet5.kiln cpu 128 50
 *   step_bench --profile models/lenet5.kiln cpu 128 50
 *
 * --profile (cpu backend only) prints, on stderr, per-launch tables of the
 * timed steps (rt_cpu_backend_profile_report): train, then inference.
 *
 * Parameters are initialised as kiln train does (He/Xavier from Philox,
 * optimizer state zero); the inputs are uniform noise and random labels,
 * the same every step, so the time is the backend's alone (no data
 * loading). Backend creation (lowering and, for cpu, LLVM compilation) is
 * timed separately. */
#include "frontend/load.h"
#include "runtime/backend.h"
#include "runtime/cpu/rt_cpu.h"
#include "runtime/train/train.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int fail(const kiln_error *err) {
  fprintf(stderr, "step_bench: %s\n", err->message);
  return 1;
}

/* Every parameter as kiln train initialises it; optimizer state zero. */
static void init_params(const ir_graph *g, rt_backend *b) {
  uint64_t index = 0;
  for (int i = 0; i < g->n_nodes; i++) {
    const ir_node *n = g->nodes[i];
    for (int k = 0; k < n->n_params; k++, index++) {
      const ir_param *p = &n->params[k];
      int64_t len = ir_shape_numel(&p->shape, 1);
      float *w = calloc((size_t)len, sizeof *w);
      if (!ir_op_table[n->op].internal) {
        ir_init init = p->init;
        if (init == IR_INIT_AUTO)
          init = train_init_auto(train_init_next_activation(g, n));
        train_init_param(p, init, 1, index, w);
      }
      b->ops->param_write(b, p, w);
      free(w);
    }
  }
}

/* Noise images and labels for every input. */
static void set_inputs(const ir_graph *g, rt_backend *b, int64_t batch,
                       int classes, kiln_error *err) {
  for (int i = 0; i < g->n_nodes; i++) {
    const ir_node *n = g->nodes[i];
    if (n->op != IR_OP_INPUT)
      continue;
    int64_t len = ir_shape_numel(&n->shape, batch);
    if (ir_dtype_is_float(n->dtype)) {
      float *x = malloc(sizeof *x * (size_t)len);
      for (int64_t j = 0; j < len; j++)
        x[j] = 2.0f * philox_uniform(7, 1, (uint64_t)j) - 1.0f;
      b->ops->set_input(b, n, x, err);
      free(x);
    } else {
      int32_t *y = malloc(sizeof *y * (size_t)len);
      for (int64_t j = 0; j < len; j++)
        y[j] = (int32_t)(philox_uniform(7, 2, (uint64_t)j) * (float)classes) %
               classes;
      b->ops->set_input(b, n, y, err);
      free(y);
    }
  }
}

/* Seconds per step of `steps` runs after one warm-up run; with `profile`,
 * the timed runs are also profiled per launch and reported on stderr. */
static double time_runs(rt_backend *b, rt_run run, int steps, bool profile,
                        kiln_error *err) {
  rt_result res;
  if (b->ops->run(b, &run, &res, err))
    return -1;
  if (profile)
    rt_cpu_backend_profile(b, true);
  double t0 = now_s();
  for (int s = 0; s < steps; s++) {
    run.step++;
    if (b->ops->run(b, &run, &res, err))
      return -1;
  }
  double t = (now_s() - t0) / steps;
  if (profile) {
    rt_cpu_backend_profile(b, false);
    fprintf(stderr, "## %s, %d steps\n", run.training ? "train" : "inference",
            steps);
    rt_cpu_backend_profile_report(b, stderr);
  }
  return t;
}

int main(int argc, char **argv) {
  bool profile = argc > 1 && strcmp(argv[1], "--profile") == 0;
  if (profile)
    argc--, argv++;
  if (argc != 5) {
    fprintf(stderr,
            "usage: step_bench [--profile] MODEL.kiln BACKEND BATCH STEPS\n");
    return 2;
  }
  const char *path = argv[1], *backend = argv[2];
  int64_t batch = atoll(argv[3]);
  int steps = atoi(argv[4]);
  kiln_error err = {0};
  kiln_model *m = kiln_model_load_file(path, &err);
  if (!m)
    return fail(&err);
  ir_graph *g = &m->g;
  if (ir_autodiff(g, &err) || ir_add_updates(g, &err))
    return fail(&err);
  const rt_backend_ops *ops = rt_backend_find(backend);
  if (!ops) {
    fprintf(stderr, "step_bench: no backend '%s' (have: %s)\n", backend,
            rt_backend_names());
    return 2;
  }
  if (profile && ops != &rt_backend_cpu) {
    fprintf(stderr, "step_bench: --profile needs the cpu backend\n");
    return 2;
  }
  double t0 = now_s();
  rt_backend *b = ops->create(g, batch, &err);
  if (!b)
    return fail(&err);
  double create_s = now_s() - t0;
  const ir_shape *ls = &g->loss->inputs[0]->shape;
  int classes = ls->rank > 1 ? (int)ls->dim[ls->rank - 1] : 1;
  init_params(g, b);
  set_inputs(g, b, batch, classes, &err);
  if (err.status)
    return fail(&err);
  rt_run train = {.training = true, .update = true, .seed = 1, .lr = 0.01};
  rt_run infer = {.seed = 1};
  double t_train = time_runs(b, train, steps, profile, &err);
  double t_infer = t_train < 0 ? -1 : time_runs(b, infer, steps, profile, &err);
  if (t_infer < 0)
    return fail(&err);
  const char *model = g->name ? g->name : path;
  printf("{\"model\": \"%s\", \"backend\": \"kiln %s\", \"batch\": %lld, "
         "\"mode\": \"train\", \"img_per_s\": %.1f, \"ms_per_step\": %.3f, "
         "\"create_s\": %.3f}\n",
         model, backend, (long long)batch, (double)batch / t_train,
         1e3 * t_train, create_s);
  printf("{\"model\": \"%s\", \"backend\": \"kiln %s\", \"batch\": %lld, "
         "\"mode\": \"inference\", \"img_per_s\": %.1f, \"ms_per_step\": "
         "%.3f}\n",
         model, backend, (long long)batch, (double)batch / t_infer,
         1e3 * t_infer);
  ops->destroy(b);
  kiln_model_free(m);
  return 0;
}
