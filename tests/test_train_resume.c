/* test_train_resume.c — kiln_train's checkpoints, resume, early stopping,
 * fine-tuning, learning curve and kiln_eval, end to end on small synthetic
 * NPY data, on both backends ("reference" and "cpu"):
 *
 *   - a run interrupted inside an epoch (max_steps) and resumed ends with
 *     every parameter and every optimizer/EMA tensor bit-identical to the
 *     uninterrupted run, and writes the same last.safetensors bytes;
 *   - kiln_eval on the final checkpoint reproduces the test line the
 *     training run printed;
 *   - a plateau (lr 1e-30: no weight moves in float32) stops after
 *     patience + 1 epochs;
 *   - a 10-class checkpoint fine-tunes a 5-class head, reporting the skip;
 *   - labels outside the classes are refused naming the example (the
 *     backends themselves: the data stage checks files already);
 *   - resume errors: corrupt file, other batch. */
#include "frontend/load.h"
#include "runtime/backend.h"
#include "runtime/checkpoint/ckpt.h"
#include "runtime/train/train.h"
#include "test.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Odd sizes everywhere: no set is a whole number of batches. */
enum { SIDE = 5, PIX = SIDE * SIDE, N_TRAIN = 203, N_TEST = 61, BATCH = 9 };

static char tmp_dir[64];
static const char *tr_x, *tr_y, *te_x, *te_y;

/* dir/name in a static ring of buffers (paths live for the whole test). */
static const char *tmp_path(const char *name) {
  static char ring[32][160];
  static int next;
  char *p = ring[next++ % 32];
  snprintf(p, sizeof ring[0], "%s/%s", tmp_dir, name);
  return p;
}

/* An .npy v1 file: header padded with spaces to a multiple of 64 bytes. */
static const char *write_npy(const char *name, const char *dict,
                             const void *data, size_t len) {
  const char *path = tmp_path(name);
  size_t n = strlen(dict), hlen = ((10 + n + 1 + 63) / 64) * 64 - 10;
  unsigned char head[192];
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

/* n images [1, 5, 5] uniform in [-2, 2); label 1 when the left columns are
 * brighter than the right ones. */
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
      else if (j % SIDE > SIDE / 2)
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

/* A two-layer MLP with dropout, Adam, clipping and EMA: every kind of
 * state a checkpoint carries. `classes` is fc2's width; `train_extra` and
 * `data_extra` go into the sections. */
static kiln_model *load_model(int classes, const char *train_extra,
                              const char *data_extra) {
  char text[4096];
  snprintf(text, sizeof text,
           "model tiny\n"
           "input image: f32[batch, 1, 5, 5]\n"
           "input label: i32[batch]\n"
           "flat = flatten(image)\n"
           "fc1 = linear(flat, out=7)\n"
           "act = relu(fc1)\n"
           "drop = dropout(act, p=0.25)\n"
           "fc2 = linear(drop, out=%d)\n"
           "loss = cross_entropy(fc2, label)\n"
           "train {\n  optimizer = adam(lr=0.01)\n  batch = %d\n"
           "  epochs = 3\n  seed = 5\n  ema = 0.9\n  clip_grad_norm = 1\n"
           "%s}\n"
           "data {\n  format = npy\n  train_images = \"%s\"\n"
           "  train_labels = \"%s\"\n  test_images = \"%s\"\n"
           "  test_labels = \"%s\"\n%s%s}\n",
           classes, BATCH, train_extra, tr_x, tr_y, te_x, te_y,
           strstr(data_extra, "validation") ? "" : "  validation = 0.25\n",
           data_extra);
  kiln_error err;
  kiln_model *m = kiln_model_load_string("tiny.kiln", text, strlen(text), &err);
  if (!m)
    fputs(err.message, stderr);
  KILN_ASSERT(m);
  return m;
}

/* The whole of a (small) file; NULL when it cannot be read. */
static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  char *buf = malloc(1 << 20);
  size_t n = fread(buf, 1, (1 << 20) - 1, f);
  fclose(f);
  buf[n] = '\0';
  if (len)
    *len = n;
  return buf;
}

static char *log_text(FILE *log) {
  static char buf[1 << 16];
  rewind(log);
  size_t n = fread(buf, 1, sizeof buf - 1, log);
  buf[n] = '\0';
  return buf;
}

/* Every parameter of the trained graphs of a and b (the same model)
 * compared bit for bit; returns how many tensors matched. */
static int same_params(const kiln_model *a, const kiln_model *b) {
  int same = 0;
  const ir_graph *g = &a->g;
  for (int i = 0; i < g->n_nodes; i++)
    for (int k = 0; k < g->nodes[i]->n_params; k++) {
      const char *name = g->nodes[i]->params[k].name;
      int64_t na = 0, nb = 0;
      const float *pa = train_trained_param(a, name, &na);
      const float *pb = train_trained_param(b, name, &nb);
      bool eq = pa && pb && na == nb &&
                memcmp(pa, pb, sizeof(float) * (size_t)na) == 0;
      if (!eq)
        fprintf(stderr, "  %s differs\n", name);
      same += eq;
    }
  return same;
}

/* Rows of a metrics CSV after its header; *val_rows of them carry a
 * validation loss. */
static int csv_rows(const char *path, int *val_rows, int *headers) {
  char *text = slurp(path, NULL);
  int rows = 0;
  *val_rows = 0, *headers = 0;
  for (char *line = text ? strtok(text, "\n") : NULL; line;
       line = strtok(NULL, "\n")) {
    if (strncmp(line, "epoch,", 6) == 0) {
      (*headers)++;
      continue;
    }
    rows++;
    *val_rows += line[strlen(line) - 1] != ',';
  }
  free(text);
  return rows;
}

static void resume_run(const char *backend) {
  char full[128], part[128];
  snprintf(full, sizeof full, "%s/full_%s", tmp_dir, backend);
  snprintf(part, sizeof part, "%s/part_%s", tmp_dir, backend);
  kiln_error err;
  /* 203 examples, 152 after the split: 16 steps an epoch, 48 in all. */
  kiln_model *a = load_model(2, "", "");
  FILE *log = tmpfile();
  kiln_train_opts o = {.backend = backend, .out_dir = full, .log = log};
  CHECK_EQ_INT(kiln_train(a, &o, &err), KILN_OK);
  char test_line[128] = "";
  const char *t = strstr(log_text(log), "test loss ");
  CHECK(t != NULL);
  if (t)
    sscanf(t, "%127[^\n]", test_line);
  fclose(log);

  /* Interrupted inside the second epoch, then resumed in a new process
   * (a fresh model). */
  kiln_model *b = load_model(2, "", "");
  log = tmpfile();
  o = (kiln_train_opts){
      .backend = backend, .out_dir = part, .max_steps = 21, .log = log};
  CHECK_EQ_INT(kiln_train(b, &o, &err), KILN_OK);
  /* A --max-steps stop is not an epoch's end: no early-stopping verdict. */
  const char *text = log_text(log);
  CHECK_STR_CONTAINS(text, "epoch 2/3 step 5/16 loss ");
  CHECK(strstr(text, "early stopping") == NULL);
  fclose(log);
  kiln_model_free(b);
  char ckpt[320];
  snprintf(ckpt, sizeof ckpt, "%s/last.safetensors", part);
  ckpt_file f;
  CHECK_EQ_INT(ckpt_load(&f, ckpt, &err), KILN_OK);
  if (!err.status) {
    CHECK(strcmp(ckpt_meta_get(&f, "kiln.step"), "21") == 0);
    CHECK(strcmp(ckpt_meta_get(&f, "kiln.epoch"), "1") == 0);
    CHECK(strcmp(ckpt_meta_get(&f, "kiln.epoch_step"), "5") == 0);
    ckpt_file_free(&f);
  }
  b = load_model(2, "", "");
  o = (kiln_train_opts){.backend = backend, .out_dir = part, .resume = ckpt};
  kiln_status st = kiln_train(b, &o, &err);
  CHECK_EQ_INT(st, KILN_OK);
  if (st)
    fputs(err.message, stderr);
  /* fc1 and fc2 weight and bias, each with exp_avg, exp_avg_sq and ema. */
  CHECK_EQ_INT(same_params(a, b), 16);
  size_t la = 0, lb = 0;
  char fa[320];
  snprintf(fa, sizeof fa, "%s/last.safetensors", full);
  char *da = slurp(fa, &la), *db = slurp(ckpt, &lb);
  CHECK(da && db && la == lb && la > 0 && memcmp(da, db, la) == 0);
  free(da);
  free(db);

  /* The metrics file: one header, the rows of both halves (steps 1, 16,
   * 21 and 22, 32, 48); validation rows at the 3 epoch ends and at the
   * interruption. */
  char csv[320];
  int vals = 0, headers = 0;
  snprintf(csv, sizeof csv, "%s/metrics.csv", part);
  CHECK_EQ_INT(csv_rows(csv, &vals, &headers), 6);
  CHECK_EQ_INT(headers, 1);
  CHECK_EQ_INT(vals, 4);
  snprintf(csv, sizeof csv, "%s/metrics.csv", full);
  CHECK_EQ_INT(csv_rows(csv, &vals, &headers), 4); /* step 1, 3 epoch ends */
  CHECK_EQ_INT(vals, 3);
  /* best.safetensors and the learning curve. */
  char path[320];
  snprintf(path, sizeof path, "%s/best.safetensors", full);
  CHECK(access(path, R_OK) == 0);
  snprintf(path, sizeof path, "%s/curve.svg", full);
  char *svg = slurp(path, NULL);
  CHECK(svg != NULL);
  if (svg) {
    CHECK_STR_CONTAINS(svg, "<svg");
    CHECK_STR_CONTAINS(svg, "tiny");
    CHECK_STR_CONTAINS(svg, "</svg>");
  }
  free(svg);

  /* kiln_eval on the final checkpoint: the training run's test line. */
  kiln_model *e = load_model(2, "", "");
  kiln_eval_opts eo = {.backend = backend};
  kiln_eval_result r;
  CHECK_EQ_INT(kiln_eval(e, fa, &eo, &r, &err), KILN_OK);
  char line[128];
  snprintf(line, sizeof line, "test loss %.4f acc %.1f%%", r.loss, r.acc);
  CHECK(strcmp(line, test_line) == 0);
  if (strcmp(line, test_line) != 0)
    fprintf(stderr, "  eval: '%s', training: '%s'\n", line, test_line);
  CHECK_EQ_INT(r.examples, N_TEST / BATCH * BATCH);
  CHECK(r.ema);
  /* Without EMA the weights themselves give another loss. */
  eo.no_ema = true;
  kiln_eval_result w;
  CHECK_EQ_INT(kiln_eval(e, fa, &eo, &w, &err), KILN_OK);
  CHECK(!w.ema && w.loss != r.loss);
  kiln_model_free(e);
  kiln_model_free(a);
  kiln_model_free(b);
}

TEST(test_resume_reference) {
  resume_run("reference");
}
TEST(test_resume_cpu) {
  resume_run("cpu");
}

/* lr 1e-30 moves no float32 weight (and dropout is off in evaluation), so
 * the validation loss is the same every epoch up to the EMA's rounding
 * (0.9 w + 0.1 w need not be w in float32), which min_delta absorbs:
 * epoch 1 improves, 2 and 3 do not, and patience 2 stops the run there. */
static void early_run(const char *backend) {
  char dir[128];
  snprintf(dir, sizeof dir, "%s/early_%s", tmp_dir, backend);
  kiln_model *m = load_model(
      2, "  early_stopping = early_stopping(patience=2, min_delta=1e-4)\n", "");
  FILE *log = tmpfile();
  kiln_train_opts o = {
      .backend = backend, .epochs = 9, .lr = 1e-30, .out_dir = dir, .log = log};
  kiln_error err;
  CHECK_EQ_INT(kiln_train(m, &o, &err), KILN_OK);
  const char *text = log_text(log);
  CHECK_STR_CONTAINS(text, "early stopping: no improvement for 2 epochs");
  CHECK_STR_CONTAINS(text, "at epoch 1)");
  CHECK_STR_CONTAINS(text, "epoch 3: val loss");
  CHECK(strstr(text, "epoch 4: val loss") == NULL);
  CHECK_STR_CONTAINS(text, "test loss ");
  fclose(log);
  char path[320];
  int vals = 0, headers = 0;
  snprintf(path, sizeof path, "%s/metrics.csv", dir);
  csv_rows(path, &vals, &headers);
  CHECK_EQ_INT(vals, 3);
  snprintf(path, sizeof path, "%s/last.safetensors", dir);
  ckpt_file f;
  CHECK_EQ_INT(ckpt_load(&f, path, &err), KILN_OK);
  if (!err.status) {
    CHECK(strcmp(ckpt_meta_get(&f, "kiln.epoch"), "3") == 0);
    CHECK(strcmp(ckpt_meta_get(&f, "kiln.best_epoch"), "0") == 0);
    CHECK(strcmp(ckpt_meta_get(&f, "kiln.bad_epochs"), "2") == 0);
    ckpt_file_free(&f);
  }
  kiln_model_free(m);
  /* Without validation data there is nothing to watch. */
  m = load_model(2, "  early_stopping = early_stopping(patience=2)\n",
                 "  validation = 0\n");
  CHECK(kiln_train(m, &o, &err) != KILN_OK);
  CHECK_STR_CONTAINS(err.message, "early_stopping needs validation data");
  kiln_model_free(m);
}

TEST(test_early_reference) {
  early_run("reference");
}
TEST(test_early_cpu) {
  early_run("cpu");
}

/* A 10-class run's checkpoint into a 5-class head: fc1 loads, fc2 is
 * reported and initialised. */
TEST(test_finetune_head) {
  char dir[128];
  snprintf(dir, sizeof dir, "%s/ten", tmp_dir);
  kiln_model *ten = load_model(10, "", "");
  kiln_train_opts o = {.out_dir = dir, .max_steps = 3};
  kiln_error err;
  CHECK_EQ_INT(kiln_train(ten, &o, &err), KILN_OK);
  char extra[320];
  snprintf(extra, sizeof extra, "  finetune = \"%s/last.safetensors\"\n", dir);
  kiln_model *five = load_model(5, extra, "");
  FILE *log = tmpfile();
  o = (kiln_train_opts){.max_steps = 1, .log = log};
  CHECK_EQ_INT(kiln_train(five, &o, &err), KILN_OK);
  const char *text = log_text(log);
  CHECK_STR_CONTAINS(
      text, "fc2.weight: shape [10, 7] in the checkpoint, [5, 7] in the model");
  CHECK_STR_CONTAINS(
      text, "fc2.bias: shape [10] in the checkpoint, [5] in the model");
  CHECK_STR_CONTAINS(text, "loaded 2 of 4 tensors; 2 skipped");
  fclose(log);
  kiln_model_free(ten);
  kiln_model_free(five);
}

/* Label 2 for two classes at example 4 of a batch: the data stage catches
 * it in files, so this drives the backends directly. The reference
 * executor's message is the oracle; the cpu backend refuses the input
 * (its compiled loss would read outside the row). */
TEST(test_label_range) {
  const char *backends[] = {"reference", "cpu"};
  for (int i = 0; i < 2; i++) {
    kiln_model *m = load_model(2, "", "");
    kiln_error err;
    ir_graph *g = &m->g;
    CHECK_EQ_INT(ir_autodiff(g, &err), KILN_OK);
    CHECK_EQ_INT(ir_add_updates(g, &err), KILN_OK);
    const rt_backend_ops *ops = rt_backend_find(backends[i]);
    rt_backend *b = ops ? ops->create(g, BATCH, &err) : NULL;
    CHECK(b != NULL);
    if (!b) {
      kiln_model_free(m);
      continue;
    }
    float x[BATCH * PIX] = {0};
    int32_t y[BATCH] = {0, 1, 0, 1, 2, 0, 1, 0, 1};
    kiln_status st = KILN_OK;
    for (int k = 0; k < g->n_nodes && !st; k++)
      if (g->nodes[k]->op == IR_OP_INPUT)
        st = ops->set_input(b, g->nodes[k],
                            ir_dtype_is_float(g->nodes[k]->dtype)
                                ? (const void *)x
                                : (const void *)y,
                            &err);
    rt_run run = {.training = true, .update = true, .lr = 0.1};
    if (!st)
      st = ops->run(b, &run, NULL, &err);
    CHECK_EQ_INT(st, KILN_ERR_INVALID);
    CHECK_STR_CONTAINS(err.message, "layer 'loss' (cross_entropy): label 2 "
                                    "of example 4 is outside 0..1");
    ops->destroy(b);
    kiln_model_free(m);
  }
}

TEST(test_resume_errors) {
  kiln_error err;
  const char *junk = tmp_path("junk.safetensors");
  FILE *f = fopen(junk, "wb");
  KILN_ASSERT(f);
  fputs("this is not a checkpoint at all", f);
  fclose(f);
  kiln_model *m = load_model(2, "", "");
  kiln_train_opts o = {.backend = "reference", .resume = junk};
  CHECK(kiln_train(m, &o, &err) != KILN_OK);
  CHECK_STR_CONTAINS(err.message, "junk.safetensors");
  kiln_model_free(m);
  /* A checkpoint of batch 9 resumed at batch 11. */
  char ckpt[320];
  snprintf(ckpt, sizeof ckpt, "%s/full_reference/last.safetensors", tmp_dir);
  m = load_model(2, "", "");
  o = (kiln_train_opts){.backend = "reference", .resume = ckpt, .batch = 11};
  CHECK_EQ_INT(kiln_train(m, &o, &err), KILN_ERR_INVALID);
  CHECK_STR_CONTAINS(err.message, "was written with batch 9; this run has 11");
  /* kiln_eval: a missing file is named. */
  kiln_eval_result r;
  CHECK(kiln_eval(m, tmp_path("nothing.safetensors"), NULL, &r, &err) !=
        KILN_OK);
  CHECK_STR_CONTAINS(err.message, "nothing.safetensors");
  kiln_model_free(m);
}

int main(void) {
  snprintf(tmp_dir, sizeof tmp_dir, "/tmp/kiln_train_resume_XXXXXX");
  KILN_ASSERT(mkdtemp(tmp_dir));
  write_set("train", N_TRAIN, 1, &tr_x, &tr_y);
  write_set("test", N_TEST, 2, &te_x, &te_y);
  RUN(test_resume_reference);
  RUN(test_resume_cpu);
  RUN(test_early_reference);
  RUN(test_early_cpu);
  RUN(test_finetune_head);
  RUN(test_label_range);
  RUN(test_resume_errors);
  int rc = TEST_SUMMARY();
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
  if (system(cmd) != 0)
    fprintf(stderr, "note: could not remove %s\n", tmp_dir);
  return rc;
}
