/* test_train_loop.c — kiln_train end to end on small synthetic NPY data
 * written to a temporary directory: a problem it must learn (loss falls,
 * validation accuracy above 80%), one SGD step checked against a hand
 * update from the reference executor's gradients, and the error paths. */
#include "frontend/load.h"
#include "runtime/reference/ref_exec.h"
#include "runtime/train/train.h"
#include "test.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { SIDE = 4, PIX = SIDE * SIDE, N_TRAIN = 256, N_TEST = 64 };

static char tmp_dir[64];
static char paths[8][128];
static int n_paths;

/* One training run (forward and backward, no update). */
static kiln_status run_training(ref_exec *ex, uint64_t seed, int64_t step,
                                kiln_error *err) {
  rt_run r = {.training = true, .seed = seed, .step = step};
  return ref_exec_run(ex, &r, NULL, err);
}

/* An .npy v1 file: header padded with spaces to a multiple of 64 bytes. */
static const char *write_npy(const char *name, const char *dict,
                             const void *data, size_t len) {
  KILN_ASSERT(n_paths < (int)ARRAY_LEN(paths));
  char *path = paths[n_paths++];
  snprintf(path, sizeof paths[0], "%s/%s", tmp_dir, name);
  size_t n = strlen(dict), hlen = ((10 + n + 1 + 63) / 64) * 64 - 10;
  unsigned char head[128];
  KILN_ASSERT(10 + hlen <= sizeof head);
  memcpy(head, "\x93NUMPY\x01\x00", 8);
  head[8] = (unsigned char)(hlen & 0xff);
  head[9] = (unsigned char)(hlen >> 8);
  memcpy(head + 10, dict, n);
  memset(head + 10 + n, ' ', hlen - n - 1);
  head[10 + hlen - 1] = '\n';
  FILE *f = fopen(path, "wb");
  KILN_ASSERT(f);
  KILN_ASSERT(fwrite(head, 1, 10 + hlen, f) == 10 + hlen);
  KILN_ASSERT(fwrite(data, 1, len, f) == len);
  fclose(f);
  return path;
}

/* n images [1, 4, 4] of pixels uniform in [-2, 2) (centred, wide: the
 * signal is strong enough to learn in 36 steps); label 1 when the left half is
 * brighter than the right half on average. */
static void write_set(const char *prefix, int n, uint64_t state,
                      const char **images, const char **labels) {
  float *x = malloc(sizeof(float) * (size_t)n * PIX);
  int32_t *y = malloc(sizeof(int32_t) * (size_t)n);
  for (int i = 0; i < n; i++) {
    double left = 0, right = 0;
    for (int j = 0; j < PIX; j++) {
      state = state * 6364136223846793005u + 1442695040888963407u;
      float v = 4.0f * (float)((state >> 40) & 0xffffff) / (float)(1 << 24) - 2;
      x[i * PIX + j] = v;
      if (j % SIDE < SIDE / 2)
        left += v;
      else
        right += v;
    }
    y[i] = left > right;
  }
  char name[64], dict[128];
  snprintf(name, sizeof name, "%s_x.npy", prefix);
  snprintf(dict, sizeof dict,
           "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, 1, %d, "
           "%d), }",
           n, SIDE, SIDE);
  *images = write_npy(name, dict, x, sizeof(float) * (size_t)n * PIX);
  snprintf(name, sizeof name, "%s_y.npy", prefix);
  snprintf(dict, sizeof dict,
           "{'descr': '<i4', 'fortran_order': False, 'shape': (%d,), }", n);
  *labels = write_npy(name, dict, y, sizeof(int32_t) * (size_t)n);
  free(x);
  free(y);
}

/* The first len bytes of an .npy v1 file's data. */
static void read_npy_head(const char *path, void *out, size_t len) {
  FILE *f = fopen(path, "rb");
  unsigned char head[10];
  KILN_ASSERT(f && fread(head, 1, 10, f) == 10);
  long off = 10 + head[8] + 256L * head[9];
  KILN_ASSERT(fseek(f, off, SEEK_SET) == 0 && fread(out, 1, len, f) == len);
  fclose(f);
}

static const char *tr_x, *tr_y, *te_x, *te_y;

/* The model text: `layers` between the inputs and the sections, and the
 * data section's extra keys. */
static kiln_model *load_model(const char *layers, const char *data_extra,
                              const char *train_x, kiln_error *err) {
  char text[4096];
  snprintf(text, sizeof text,
           "model tiny\n"
           "input image: f32[batch, 1, 4, 4]\n"
           "input label: i32[batch]\n"
           "%s\n"
           "train {\n  optimizer = sgd(lr=0.1)\n  batch = 16\n"
           "  epochs = 3\n  seed = 1\n}\n"
           "data {\n  format = npy\n  train_images = \"%s\"\n"
           "  train_labels = \"%s\"\n  test_images = \"%s\"\n"
           "  test_labels = \"%s\"\n%s}\n",
           layers, train_x, tr_y, te_x, te_y, data_extra);
  return kiln_model_load_string("tiny.kiln", text, strlen(text), err);
}

static const char *const mlp = "flat = flatten(image)\n"
                               "fc1 = linear(flat, out=8)\n"
                               "act = relu(fc1)\n"
                               "fc2 = linear(act, out=2)\n"
                               "loss = cross_entropy(fc2, label)\n";

/* The CSV rows: train loss of the first, val accuracy of the last. */
static int read_metrics(const char *path, double *first_loss, double *last_loss,
                        double *last_val_acc) {
  FILE *f = fopen(path, "r");
  if (!f)
    return 0;
  char line[256];
  int rows = 0;
  if (!fgets(line, sizeof line, f) ||
      strcmp(line, "epoch,step,lr,train_loss,train_acc,val_loss,val_acc\n")) {
    fclose(f);
    return 0;
  }
  while (fgets(line, sizeof line, f)) {
    double v[7] = {0};
    char *p = line;
    for (int k = 0; k < 7; k++) {
      v[k] = strtod(p, &p);
      if (*p == ',')
        p++;
    }
    if (rows++ == 0)
      *first_loss = v[3];
    *last_loss = v[3];
    *last_val_acc = v[6];
  }
  fclose(f);
  return rows;
}

TEST(test_learns) {
  kiln_error err;
  kiln_model *m = load_model(mlp, "  validation = 0.25\n", tr_x, &err);
  CHECK(m);
  if (!m) {
    fputs(err.message, stderr);
    return;
  }
  char csv[128];
  snprintf(csv, sizeof csv, "%s/metrics.csv", tmp_dir);
  FILE *log = tmpfile();
  /* 10 epochs over the file's 3: the option wins over the model. */
  kiln_train_opts o = {.epochs = 10, .metrics_csv = csv, .log = log};
  kiln_status st = kiln_train(m, &o, &err);
  CHECK_EQ_INT(st, KILN_OK);
  if (st)
    fputs(err.message, stderr);
  double first = 0, last = 0, val_acc = 0;
  int rows = read_metrics(csv, &first, &last, &val_acc);
  CHECK_EQ_INT(rows, 13); /* steps 1, 50, 100 and the 10 epoch ends */
  CHECK(last < 0.6 * first);
  CHECK(val_acc > 80.0);
  /* The log has the progress, validation and test lines. */
  char buf[8192] = {0};
  rewind(log);
  size_t got = fread(buf, 1, sizeof buf - 1, log);
  buf[got] = '\0';
  if (!(last < 0.6 * first) || !(val_acc > 80.0))
    fputs(buf, stderr); /* the whole log, to see how training went */
  CHECK_STR_CONTAINS(buf, "epoch 1/10 step 1/12 loss ");
  CHECK_STR_CONTAINS(buf, "epoch 10: val loss ");
  CHECK_STR_CONTAINS(buf, "test loss ");
  fclose(log);
  kiln_model_free(m);
}

/* One SGD step (no momentum) by kiln_train against w - lr * g computed
 * here from a fresh executor with the same initialisation and first batch
 * (validation 0 and no shuffling: the batch is the file's first rows). */
TEST(test_one_sgd_step) {
  kiln_error err;
  const char *extra = "  validation = 0\n  shuffle = false\n";
  kiln_model *m = load_model(mlp, extra, tr_x, &err);
  kiln_model *ref = load_model(mlp, extra, tr_x, &err);
  CHECK(m && ref);
  if (!m || !ref)
    return;
  kiln_train_opts o = {.max_steps = 1};
  CHECK_EQ_INT(kiln_train(m, &o, &err), KILN_OK);

  ir_graph *g = &ref->g;
  CHECK_EQ_INT(ir_autodiff(g, &err), KILN_OK);
  ref_exec *ex = ref_exec_new(g, 16, &err);
  KILN_ASSERT(ex);
  uint64_t index = 0;
  for (int i = 0; i < g->n_nodes; i++)
    for (int k = 0; k < g->nodes[i]->n_params; k++, index++) {
      const ir_param *p = &g->nodes[i]->params[k];
      ir_init init = p->init;
      if (init == IR_INIT_AUTO)
        init = train_init_auto(train_init_next_activation(g, g->nodes[i]));
      train_init_param(p, init, 1, index, ref_exec_param(ex, p, NULL));
    }
  /* The first 16 examples, as written by write_set. */
  float x[16 * PIX];
  int32_t y[16];
  read_npy_head(tr_x, x, sizeof x);
  read_npy_head(tr_y, y, sizeof y);
  CHECK_EQ_INT(ref_exec_set_input_f32(ex, "image", x, &err), KILN_OK);
  CHECK_EQ_INT(ref_exec_set_input_i32(ex, "label", y, &err), KILN_OK);
  CHECK_EQ_INT(run_training(ex, 1, 0, &err), KILN_OK);
  int checked = 0;
  for (int k = 0; k < g->n_param_grads; k++) {
    const ir_param *p = g->grad_params[k];
    int64_t n = 0, tn = 0;
    const float *w = ref_exec_param(ex, p, &n);
    const double *gr = ref_exec_param_grad(ex, p);
    const float *got = train_trained_param(m, p->name, &tn);
    CHECK(got && gr && tn == n);
    if (!got || !gr || tn != n)
      continue;
    double moved = 0;
    for (int64_t i = 0; i < n; i++) {
      double want = (double)w[i] - 0.1 * (double)(float)gr[i];
      CHECK_NEAR(got[i], want, 1e-6);
      moved += fabs(got[i] - w[i]);
    }
    CHECK(moved > 0); /* the step changed the weights */
    checked++;
  }
  CHECK_EQ_INT(checked, 4);
  ref_exec_free(ex);
  kiln_model_free(ref);
  kiln_model_free(m);
}

TEST(test_errors) {
  kiln_error err;
  kiln_model *m = load_model("flat = flatten(image)\nfc = linear(flat, out=2)",
                             "", tr_x, &err);
  CHECK(m);
  if (m) {
    CHECK(kiln_train(m, NULL, &err) != KILN_OK);
    CHECK_STR_CONTAINS(err.message, "has no loss layer");
    kiln_model_free(m);
  }
  char missing[128];
  snprintf(missing, sizeof missing, "%s/no_such_x.npy", tmp_dir);
  m = load_model(mlp, "", missing, &err);
  CHECK(m);
  if (m) {
    CHECK_EQ_INT(kiln_train(m, NULL, &err), KILN_ERR_IO);
    CHECK_STR_CONTAINS(err.message, "no_such_x.npy");
    kiln_model_free(m);
  }
  m = load_model(mlp, "", tr_x, &err);
  if (m) {
    kiln_train_opts o = {.epochs = -1};
    CHECK_EQ_INT(kiln_train(m, &o, &err), KILN_ERR_INVALID);
    /* The backends on offer. */
    o = (kiln_train_opts){.backend = "gpu"};
    CHECK_EQ_INT(kiln_train(m, &o, &err), KILN_ERR_INVALID);
    CHECK_STR_CONTAINS(err.message,
                       "unknown backend 'gpu'; available: reference, cpu");
    o = (kiln_train_opts){.backend = "cuda"};
    CHECK_EQ_INT(kiln_train(m, &o, &err), KILN_ERR_INVALID);
    CHECK_STR_CONTAINS(err.message, "backend 'cuda' is not built yet");
    kiln_model_free(m);
  }
}

int main(void) {
  snprintf(tmp_dir, sizeof tmp_dir, "/tmp/kiln_train_loop_XXXXXX");
  KILN_ASSERT(mkdtemp(tmp_dir));
  write_set("train", N_TRAIN, 1, &tr_x, &tr_y);
  write_set("test", N_TEST, 2, &te_x, &te_y);
  RUN(test_learns);
  RUN(test_one_sgd_step);
  RUN(test_errors);
  for (int i = 0; i < n_paths; i++)
    remove(paths[i]);
  char csv[128];
  snprintf(csv, sizeof csv, "%s/metrics.csv", tmp_dir);
  remove(csv);
  rmdir(tmp_dir);
  return TEST_SUMMARY();
}
