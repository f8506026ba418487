/* train_eval.c — what training and evaluation share (train_run.h), and
 * kiln_eval: a checkpoint's weights measured on the test or validation set.
 *
 * kiln_eval builds the same training graph as kiln_train (autodiff and
 * update nodes), so a checkpoint of a run loads into it by the same names,
 * and evaluates exactly as the run's own evaluation does: the same
 * backend, batch, full batches only, and the EMA weights when the file has
 * them. The validation split is drawn from the file's kiln.seed (the run's
 * seed), so `--split val` measures the examples the run held out. */
#include "frontend/load.h"
#include "runtime/checkpoint/ckpt.h"
#include "runtime/train/train_ckpt.h"
#include "runtime/train/train_run.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

kiln_status train_run_oom(kiln_error *err) {
  return diag_error(err, KILN_ERR_INTERNAL, (kiln_loc){0}, "out of memory");
}

kiln_status train_run_backend(train_run *r, const char *name, kiln_error *err) {
  /* The compiled CPU backend is the default; a GPU backend, once built,
   * will be preferred when a device is present. */
  if (!name)
    name = "cpu";
  if (!(r->ops = rt_backend_find(name))) {
    bool planned = strcmp(name, "cuda") == 0;
    return diag_error(err, KILN_ERR_INVALID, (kiln_loc){0},
                      "%sbackend '%s'%s; available: %s",
                      planned ? "" : "unknown ", name,
                      planned ? " is not built yet" : "", rt_backend_names());
  }
  return KILN_OK;
}

/* The graph's inputs, found by dtype: the float one takes the images, the
 * integer one the labels; and the logits, the loss's first input. */
kiln_status train_run_find_io(train_run *r, kiln_error *err) {
  ir_graph *g = r->g;
  for (int i = 0; i < g->n_nodes; i++) {
    const ir_node *n = g->nodes[i];
    if (n->op != IR_OP_INPUT)
      continue;
    if (ir_dtype_is_float(n->dtype) && !r->x_in)
      r->x_in = n;
    else if (!ir_dtype_is_float(n->dtype) && !r->y_in)
      r->y_in = n;
  }
  if (!r->x_in || !r->y_in)
    return diag_error(err, KILN_ERR_INVALID, (kiln_loc){0},
                      "model '%s': training needs a float input (the "
                      "images) and an integer input (the labels)",
                      g->name ? g->name : "");
  r->logits = g->loss->inputs[0];
  const ir_shape *s = &r->logits->shape;
  r->n_classes = s->rank > 0 ? (int)s->dim[s->rank - 1] : 1;
  return KILN_OK;
}

kiln_status train_run_load(train_run *r, kiln_error *err) {
  kiln_status st = data_sets_load(&r->d, &r->g->data, r->seed, err);
  if (st)
    return st;
  r->data_loaded = true;
  const ir_shape *s = &r->x_in->shape;
  st = data_sets_fit(&r->d, s->rank - 1, s->dim + 1, r->n_classes, err);
  if (st)
    return st;
  r->x = malloc(sizeof(float) * (size_t)ir_shape_numel(s, r->batch));
  r->y = malloc(sizeof(int32_t) * (size_t)r->batch);
  /* accuracy needs one row of float logits per example */
  bool rows =
      ir_dtype_is_float(r->logits->dtype) &&
      ir_shape_numel(&r->logits->shape, r->batch) == r->batch * r->n_classes;
  if (rows)
    r->z = malloc(sizeof(float) * (size_t)(r->batch * r->n_classes));
  return r->x && r->y && (r->z || !rows) ? KILN_OK : train_run_oom(err);
}

kiln_status train_run_batch(train_run *r, const rt_run *run, rt_result *res,
                            double *loss, int64_t *correct, kiln_error *err) {
  kiln_status st = r->ops->set_input(r->b, r->x_in, r->x, err);
  if (!st)
    st = r->ops->set_input(r->b, r->y_in, r->y, err);
  if (!st)
    st = r->ops->run(r->b, run, res, err);
  if (!st && r->z)
    st = r->ops->read_output(r->b, r->logits, r->z, err);
  if (st)
    return st;
  *loss += res->loss;
  int64_t c = r->n_classes;
  for (int64_t i = 0; r->z && i < r->batch; i++) {
    const float *z = r->z + i * c;
    int64_t best = 0;
    for (int64_t j = 1; j < c; j++)
      if (z[j] > z[best])
        best = j;
    *correct += best == r->y[i];
  }
  return KILN_OK;
}

kiln_status train_run_evaluate(train_run *r, const data_set *set, bool ema,
                               int64_t step, double *loss, double *acc,
                               bool *done, kiln_error *err) {
  *done = false;
  int64_t steps = set->n / r->batch;
  if (steps == 0)
    return KILN_OK;
  data_iter it;
  kiln_status st = data_iter_init(&it, set, r->batch, NULL, r->seed, err);
  if (st)
    return st;
  rt_run run = {.ema = ema, .seed = r->seed, .step = step};
  rt_result res;
  double sum = 0;
  int64_t correct = 0;
  for (int64_t s = 0; s < steps && !st; s++) {
    data_iter_fill(&it, s, r->x, r->y);
    st = train_run_batch(r, &run, &res, &sum, &correct, err);
  }
  data_iter_free(&it);
  *loss = sum / (double)steps;
  *acc = r->z ? 100.0 * (double)correct / (double)(steps * r->batch) : NAN;
  *done = !st;
  return st;
}

void train_run_close(train_run *r) {
  free(r->x);
  free(r->y);
  free(r->z);
  free(r->pts);
  free(r->vpts);
  if (r->iter_ready)
    data_iter_free(&r->it);
  if (r->data_loaded)
    data_sets_free(&r->d);
  if (r->b)
    r->ops->destroy(r->b);
}

/* The seed the checkpoint's run split its data with; `fallback` when the
 * file does not say (a weights file from elsewhere). */
static kiln_status weights_seed(const char *path, uint64_t fallback,
                                uint64_t *seed, kiln_error *err) {
  ckpt_file f;
  kiln_status st = ckpt_load(&f, path, err);
  if (st)
    return st;
  *seed = fallback;
  const char *v = ckpt_meta_get(&f, "kiln.seed");
  if (v) {
    char *end;
    errno = 0;
    unsigned long long s = strtoull(v, &end, 10);
    if (errno || end == v || *end)
      st =
          diag_error(err, KILN_ERR_INVALID, (kiln_loc){0},
                     "'%s': metadata kiln.seed is '%s', not a number", path, v);
    else
      *seed = (uint64_t)s;
  }
  ckpt_file_free(&f);
  return st;
}

static kiln_status eval_open(train_run *r, kiln_model *m, const char *weights,
                             const kiln_eval_opts *o, kiln_eval_result *res,
                             kiln_error *err) {
  ir_graph *g = r->g;
  if (!g->loss)
    return diag_error(err, KILN_ERR_INVALID, (kiln_loc){0},
                      "model '%s' has no loss layer: evaluation needs one",
                      g->name ? g->name : "");
  kiln_status st;
  if ((st = train_run_backend(r, o->backend, err)))
    return st;
  if (o->batch < 0)
    return diag_error(err, KILN_ERR_INVALID, (kiln_loc){0},
                      "batch must be positive");
  r->batch = o->batch ? o->batch : r->cfg.batch;
  if ((st = weights_seed(weights, r->cfg.seed, &r->seed, err)))
    return st;
  if (!m->differentiated) {
    if ((st = ir_autodiff(g, err)) || (st = ir_add_updates(g, err)))
      return st;
    m->differentiated = true;
  }
  if ((st = train_run_find_io(r, err)))
    return st;
  if (!(r->b = r->ops->create(g, r->batch, err)))
    return err->status ? err->status : KILN_ERR_INTERNAL;
  /* The EMA weights, when used, replace the parameters here, so the runs
   * below are plain evaluation runs. */
  if ((st = train_ckpt_load_weights(weights, g, r->b, !o->no_ema, &res->ema,
                                    err)))
    return st;
  return train_run_load(r, err);
}

KILN_API kiln_status kiln_eval(kiln_model *m, const char *weights,
                               const kiln_eval_opts *o, kiln_eval_result *res,
                               kiln_error *err) {
  kiln_error local;
  if (!err)
    err = &local;
  err->status = KILN_OK;
  err->message[0] = '\0';
  kiln_eval_opts none = {0};
  kiln_eval_result ignored;
  if (!o)
    o = &none;
  if (!res)
    res = &ignored;
  *res = (kiln_eval_result){0};
  const char *split = o->split ? o->split : "test";
  bool val = strcmp(split, "val") == 0 || strcmp(split, "validation") == 0;
  if (!weights)
    return diag_error(err, KILN_ERR_INVALID, (kiln_loc){0},
                      "evaluation needs a weights file");
  if (!val && strcmp(split, "test") != 0)
    return diag_error(err, KILN_ERR_INVALID, (kiln_loc){0},
                      "unknown split '%s': test or val", split);
  train_run r = {.g = &m->g, .cfg = m->g.train, .log = o->log};
  kiln_status st = eval_open(&r, m, weights, o, res, err);
  const data_set *set = val ? &r.d.validation : &r.d.test;
  bool done = false;
  if (!st)
    st = train_run_evaluate(&r, set, false, 0, &res->loss, &res->acc, &done,
                            err);
  if (!st && !done)
    st = diag_error(err, KILN_ERR_INVALID, (kiln_loc){0},
                    "the %s set has %lld examples, fewer than one batch of "
                    "%lld",
                    val ? "validation" : "test", (long long)set->n,
                    (long long)r.batch);
  if (!st)
    res->examples = set->n / r.batch * r.batch;
  if (!st && o->log && set->n % r.batch)
    fprintf(o->log,
            "note: the last %lld examples of the %s set are skipped: the %s "
            "backend runs whole batches of %lld\n",
            (long long)(set->n % r.batch), val ? "validation" : "test",
            r.ops->name, (long long)r.batch);
  train_run_close(&r);
  return st;
}
