/* train_tool.c — the C side of the Python checks of training outputs
 * (not a test by itself):
 *
 *   train_tool curve OUT.svg       reads points from stdin, one per line,
 *                                    title NAME
 *                                    train|val|test STEP LOSS ACC
 *                                  and writes the learning-curve SVG
 *                                  (tests/py/test_curve_svg.py);
 *   train_tool ckpt OUT MODEL      writes a training checkpoint of MODEL
 *                                  with Adam state and EMA weights (held by
 *                                  a fake backend), values by value() below
 *   train_tool resume CKPT MODEL   resumes CKPT into a fresh fake backend,
 *                                  checks every value against value() and
 *                                  prints the position
 *                                  (tests/py/test_train_ckpt_safetensors.py).
 *
 * value() depends on the tensor's name and the element's index only, so
 * the Python side recomputes it without knowing the graph's order. Exit
 * status 0 ok, 1 an error (message on stderr), 2 bad usage. */
#include "frontend/load.h"
#include "runtime/train/train_ckpt.h"
#include "runtime/train/train_report.h"
#include "train_fake_backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_POINTS = 4096 };

static uint32_t fnv1a32(const char *s) {
  uint32_t h = 2166136261u;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

/* An integer in [-1000, 1000] over 256: exact in float32. */
static float value(const char *name, int64_t i) {
  uint32_t x = fnv1a32(name) + (uint32_t)i * 2654435761u;
  return (float)((int)(x % 2001u) - 1000) / 256.0f;
}

static int cmd_curve(const char *out) {
  static train_point pts[3][MAX_POINTS];
  int n[3] = {0, 0, 0};
  char title[128] = "", line[256], kind[16];
  while (fgets(line, sizeof line, stdin)) {
    if (sscanf(line, "title %127s", title) == 1)
      continue;
    long long step;
    double loss, acc;
    if (sscanf(line, "%15s %lld %lf %lf", kind, &step, &loss, &acc) != 4) {
      fprintf(stderr, "train_tool: bad line: %s", line);
      return 2;
    }
    int k = strcmp(kind, "train") == 0 ? 0 : strcmp(kind, "val") == 0 ? 1 : 2;
    if (n[k] == MAX_POINTS || (k == 2 && strcmp(kind, "test"))) {
      fprintf(stderr, "train_tool: bad line: %s", line);
      return 2;
    }
    pts[k][n[k]++] = (train_point){step, loss, acc};
  }
  train_curve c = {.title = title,
                   .train = pts[0],
                   .n_train = n[0],
                   .val = pts[1],
                   .n_val = n[1],
                   .test = n[2] ? &pts[2][0] : NULL};
  kiln_error err;
  if (train_curve_write(out, &c, &err)) {
    fputs(err.message, stderr);
    return 1;
  }
  return 0;
}

static const char *const roles[] = {"exp_avg", "exp_avg_sq", "ema"};

static int cmd_ckpt(bool save, const char *path, const char *model) {
  kiln_error err;
  kiln_model *m = kiln_model_load_file(model, &err);
  if (!m) {
    fputs(err.message, stderr);
    return 1;
  }
  fake_add_state(&m->g, roles, 3);
  rt_backend *b = fake_ops.create(&m->g, 1, &err);
  fake_backend *f = (fake_backend *)b;
  int rc = 0;
  train_ckpt_meta meta = {.step = 1234,
                          .epoch = 2,
                          .epoch_step = 17,
                          .batch = 128,
                          .seed = 42,
                          .best_val_loss = 0.1,
                          .best_epoch = 1,
                          .bad_epochs = 1};
  if (save) {
    for (int j = 0; j < f->n; j++) {
      int64_t n = ir_shape_numel(&f->params[j]->shape, 1);
      for (int64_t i = 0; i < n; i++)
        f->vals[j][i] = value(f->params[j]->name, i);
    }
    if (train_ckpt_save(path, &m->g, b, &meta, &err)) {
      fputs(err.message, stderr);
      rc = 1;
    }
  } else if (train_ckpt_resume(path, &m->g, b, &meta, &err)) {
    fputs(err.message, stderr);
    rc = 1;
  } else {
    for (int j = 0; j < f->n; j++) {
      int64_t n = ir_shape_numel(&f->params[j]->shape, 1);
      for (int64_t i = 0; i < n; i++)
        if (f->vals[j][i] != value(f->params[j]->name, i)) {
          fprintf(stderr, "train_tool: %s[%lld] is %.9g, expected %.9g\n",
                  f->params[j]->name, (long long)i, f->vals[j][i],
                  value(f->params[j]->name, i));
          rc = 1;
          break;
        }
    }
    printf("resumed %d tensors: step %lld epoch %lld epoch_step %lld batch "
           "%lld seed %llu best_val_loss %.17g best_epoch %lld bad_epochs "
           "%lld model %s\n",
           f->n, (long long)meta.step, (long long)meta.epoch,
           (long long)meta.epoch_step, (long long)meta.batch,
           (unsigned long long)meta.seed, meta.best_val_loss,
           (long long)meta.best_epoch, (long long)meta.bad_epochs, meta.model);
  }
  fake_destroy(b);
  kiln_model_free(m);
  return rc;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "curve") == 0)
    return cmd_curve(argv[2]);
  if (argc == 4 && strcmp(argv[1], "ckpt") == 0)
    return cmd_ckpt(true, argv[2], argv[3]);
  if (argc == 4 && strcmp(argv[1], "resume") == 0)
    return cmd_ckpt(false, argv[2], argv[3]);
  fprintf(stderr, "usage: train_tool curve OUT.svg < points\n"
                  "       train_tool ckpt OUT.safetensors MODEL.kiln\n"
                  "       train_tool resume CKPT MODEL.kiln\n");
  return 2;
}
