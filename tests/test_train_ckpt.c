/* test_train_ckpt.c — training checkpoints (runtime/train/train_ckpt.c)
 * against a fake backend that only stores float32 arrays per parameter
 * (tools/train_fake_backend.h), with optimizer state and EMA weights held
 * by internal nodes as the update nodes will hold them:
 *   - save, then resume into a fresh backend: every tensor bit for bit
 *     (-0, a subnormal and a NaN payload included) and the position;
 *   - the metadata strings in the file, and their round trip at the edges
 *     (seed 2^64 - 1, best loss "inf");
 *   - resume's refusals: a missing, reshaped, retyped or unknown tensor,
 *     many differences, missing or malformed metadata, a truncated file, a
 *     path that does not exist; each message names the file and the
 *     backend is left untouched;
 *   - fine-tuning a head of another class count: the exact report, what
 *     was loaded, what was not (optimizer state), EMA re-seeded; dtype
 *     conversion; nothing matching is an error;
 *   - the weights for evaluation: strict, the EMA weights on request;
 *   - the same on the graph of ir_autodiff + ir_add_updates, whose update
 *     nodes own the state.
 * tests/py/test_train_ckpt_safetensors.py checks the same files with the
 * safetensors library. */
#include "frontend/load.h"
#include "runtime/checkpoint/ckpt.h"
#include "runtime/train/train_ckpt.h"
#include "test.h"
#include "tools/train_fake_backend.h"

#include <dirent.h>
#include <stdlib.h>
#include <unistd.h>

static char tmpdir[64];

static const char *tmp_path(const char *name) {
  static char buf[8][512];
  static int next;
  char *p = buf[next++ % 8];
  snprintf(p, sizeof buf[0], "%s/%s", tmpdir, name);
  return p;
}

static const char *const adam_roles[] = {"exp_avg", "exp_avg_sq", "ema"};

/* mlp.kiln with Adam state and EMA weights on internal nodes. */
static kiln_model *load_mlp(void) {
  kiln_error err;
  kiln_model *m = kiln_model_load_file("models/mlp.kiln", &err);
  if (!m) {
    fputs(err.message, stderr);
    abort();
  }
  fake_add_state(&m->g, adam_roles, 3);
  return m;
}

/* A small classifier with BatchNorm (two buffers) and a head of `classes`
 * outputs: 8 tensors of its own. */
static kiln_model *load_net(int classes, bool with_state) {
  char text[512];
  snprintf(text, sizeof text,
           "model net\n"
           "input image: f32[batch, 1, 4, 4]\n"
           "input label: i32[batch]\n"
           "flat = flatten(image)\n"
           "fc1 = linear(flat, out=8)\n"
           "bn1 = batchnorm(fc1)\n"
           "act = relu(bn1)\n"
           "head = linear(act, out=%d)\n"
           "loss = cross_entropy(head, label)\n",
           classes);
  kiln_error err;
  kiln_model *m = kiln_model_load_string("net.kiln", text, strlen(text), &err);
  if (!m) {
    fputs(err.message, stderr);
    abort();
  }
  if (with_state)
    fake_add_state(&m->g, adam_roles, 3);
  return m;
}

/* Distinct values for every element of every parameter (a function of the
 * tag, the parameter's index and the element's), with -0, the smallest
 * subnormal and a quiet NaN with a payload first, so that only a bit-exact
 * path gets them all back. */
static void fill(rt_backend *b, uint32_t tag) {
  fake_backend *f = (fake_backend *)b;
  for (int j = 0; j < f->n; j++) {
    int64_t n = ir_shape_numel(&f->params[j]->shape, 1);
    for (int64_t i = 0; i < n; i++) {
      uint32_t x = tag * 2654435761u ^ (uint32_t)j * 40503u ^ (uint32_t)i;
      x = (x ^ (x >> 15)) * 2246822519u;
      float v = (float)(x >> 8) / (float)(1 << 20) - 8.0f;
      f->vals[j][i] = v;
    }
    const uint32_t special[] = {0x80000000u, 0x00000001u, 0x7fc12345u};
    for (int64_t i = 0; i < n && i < 3; i++)
      memcpy(&f->vals[j][i], &special[i], 4);
  }
}

/* Whether every parameter of a and b (the same graph) has the same bits. */
static bool same_bits(rt_backend *a, rt_backend *b) {
  fake_backend *x = (fake_backend *)a, *y = (fake_backend *)b;
  for (int j = 0; j < x->n; j++) {
    int64_t n = ir_shape_numel(&x->params[j]->shape, 1);
    if (memcmp(x->vals[j], y->vals[j], sizeof(float) * (size_t)n) != 0) {
      fprintf(stderr, "differs: %s\n", x->params[j]->name);
      return false;
    }
  }
  return true;
}

static const train_ckpt_meta some_meta = {.step = 1234,
                                          .epoch = 2,
                                          .epoch_step = 17,
                                          .batch = 128,
                                          .seed = 42,
                                          .best_val_loss = 0.1,
                                          .best_epoch = 1,
                                          .bad_epochs = 1};

static rt_backend *new_backend(const kiln_model *m) {
  kiln_error err;
  return fake_ops.create(&m->g, 1, &err);
}

static int param_count(const ir_graph *g) {
  int n = 0;
  for (int i = 0; i < g->n_nodes; i++)
    n += g->nodes[i]->n_params;
  return n;
}

/* ---- save and resume ---- */

TEST(test_save_resume_bit_exact) {
  kiln_model *m = load_mlp();
  rt_backend *a = new_backend(m), *b = new_backend(m);
  fill(a, 1);
  kiln_error err;
  const char *path = tmp_path("mlp.safetensors");
  CHECK_EQ_INT(train_ckpt_save(path, &m->g, a, &some_meta, &err), KILN_OK);
  /* 6 weights and biases, each with 3 state tensors */
  CHECK_EQ_INT(param_count(&m->g), 24);
  CHECK_EQ_INT(((fake_backend *)a)->reads, 24);
  train_ckpt_meta meta;
  CHECK_EQ_INT(train_ckpt_resume(path, &m->g, b, &meta, &err), KILN_OK);
  CHECK_EQ_INT(((fake_backend *)b)->writes, 24);
  CHECK(same_bits(a, b));
  CHECK_EQ_INT(meta.step, 1234);
  CHECK_EQ_INT(meta.epoch, 2);
  CHECK_EQ_INT(meta.epoch_step, 17);
  CHECK_EQ_INT(meta.batch, 128);
  CHECK_EQ_INT(meta.seed, 42);
  CHECK(meta.best_val_loss == 0.1);
  CHECK_EQ_INT(meta.best_epoch, 1);
  CHECK_EQ_INT(meta.bad_epochs, 1);
  CHECK(strcmp(meta.model, "mlp") == 0);
  CHECK(strcmp(meta.version, kiln_version()) == 0);
  fake_destroy(a);
  fake_destroy(b);
  kiln_model_free(m);
}

TEST(test_metadata_in_file) {
  kiln_model *m = load_net(10, true);
  rt_backend *a = new_backend(m);
  fill(a, 2);
  train_ckpt_meta edge = {.step = 0,
                          .epoch = 0,
                          .epoch_step = 0,
                          .batch = 1,
                          .seed = UINT64_MAX,
                          .best_val_loss = INFINITY,
                          .best_epoch = -1,
                          .bad_epochs = 0};
  kiln_error err;
  const char *path = tmp_path("edge.safetensors");
  CHECK_EQ_INT(train_ckpt_save(path, &m->g, a, &edge, &err), KILN_OK);
  ckpt_file f;
  CHECK_EQ_INT(ckpt_load(&f, path, &err), KILN_OK);
  const char *want[][2] = {{"format", "pt"},
                           {"kiln.model", "net"},
                           {"kiln.step", "0"},
                           {"kiln.epoch", "0"},
                           {"kiln.epoch_step", "0"},
                           {"kiln.batch", "1"},
                           {"kiln.seed", "18446744073709551615"},
                           {"kiln.best_val_loss", "inf"},
                           {"kiln.best_epoch", "-1"},
                           {"kiln.bad_epochs", "0"}};
  for (size_t i = 0; i < ARRAY_LEN(want); i++) {
    const char *v = ckpt_meta_get(&f, want[i][0]);
    CHECK(v && strcmp(v, want[i][1]) == 0);
  }
  CHECK(strcmp(ckpt_meta_get(&f, "kiln.version"), kiln_version()) == 0);
  CHECK_EQ_INT(f.n_meta, 11);
  /* 8 own tensors, 6 trainable with 3 state tensors each */
  CHECK_EQ_INT(f.n_tensors, 8 + 6 * 3);
  const ckpt_tensor *t = ckpt_find(&f, "head.weight.exp_avg_sq");
  CHECK(t && t->dtype == IR_F32 && t->rank == 2 && t->shape[0] == 10 &&
        t->shape[1] == 8);
  CHECK(t && memcmp(t->data, fake_values(a, "head.weight.exp_avg_sq", NULL),
                    sizeof(float) * 80) == 0);
  ckpt_file_free(&f);

  rt_backend *b = new_backend(m);
  train_ckpt_meta got;
  CHECK_EQ_INT(train_ckpt_resume(path, &m->g, b, &got, &err), KILN_OK);
  CHECK(got.seed == UINT64_MAX);
  CHECK(isinf(got.best_val_loss) && got.best_val_loss > 0);
  CHECK_EQ_INT(got.best_epoch, -1);
  CHECK(same_bits(a, b));
  fake_destroy(a);
  fake_destroy(b);
  kiln_model_free(m);
}

TEST(test_save_unwritable) {
  kiln_model *m = load_net(10, false);
  rt_backend *a = new_backend(m);
  kiln_error err;
  CHECK_EQ_INT(train_ckpt_save("/nonexistent-kiln-dir/c.safetensors", &m->g, a,
                               &some_meta, &err),
               KILN_ERR_IO);
  CHECK_STR_CONTAINS(err.message, "/nonexistent-kiln-dir/c.safetensors");
  CHECK_STR_CONTAINS(err.message, "No such file or directory");
  fake_destroy(a);
  kiln_model_free(m);
}

/* ---- files that resume must refuse ---- */

/* A copy of src with one tensor left out, tensors added or replaced (by
 * name), and one metadata key changed (NULL value: removed). */
typedef struct edit {
  const char *drop;
  const ckpt_tensor *put;
  int n_put;
  const char *meta_key, *meta_value;
} edit;

static void derive(const char *src, const char *dst, const edit *e) {
  ckpt_file f;
  kiln_error err;
  KILN_ASSERT(ckpt_load(&f, src, &err) == KILN_OK);
  ckpt_tensor *t = calloc((size_t)(f.n_tensors + e->n_put + 1), sizeof *t);
  ckpt_meta *kv = calloc((size_t)f.n_meta + 1, sizeof *kv);
  KILN_ASSERT(t && kv);
  int n = 0, n_kv = 0;
  for (int i = 0; i < f.n_tensors; i++) {
    bool replaced = e->drop && strcmp(f.tensors[i].name, e->drop) == 0;
    for (int k = 0; k < e->n_put; k++)
      replaced |= strcmp(f.tensors[i].name, e->put[k].name) == 0;
    if (!replaced)
      t[n++] = f.tensors[i];
  }
  for (int k = 0; k < e->n_put; k++)
    t[n++] = e->put[k];
  for (int i = 0; i < f.n_meta; i++) {
    kv[n_kv] = f.meta[i];
    if (e->meta_key && strcmp(f.meta[i].key, e->meta_key) == 0) {
      if (!e->meta_value)
        continue;
      kv[n_kv].value = e->meta_value;
    }
    n_kv++;
  }
  KILN_ASSERT(ckpt_write(dst, t, n, kv, n_kv, &err) == KILN_OK);
  free(t);
  free(kv);
  ckpt_file_free(&f);
}

/* Resumes `path` into a fresh backend, expecting status st and each of
 * the needles in the message, and no parameter written. */
static void expect_refused(const kiln_model *m, const char *path,
                           kiln_status st, const char *const *needles, int n) {
  rt_backend *b = new_backend(m);
  train_ckpt_meta meta;
  kiln_error err;
  CHECK_EQ_INT(train_ckpt_resume(path, &m->g, b, &meta, &err), st);
  CHECK_STR_CONTAINS(err.message, path);
  for (int i = 0; i < n; i++)
    CHECK_STR_CONTAINS(err.message, needles[i]);
  CHECK_EQ_INT(((fake_backend *)b)->writes, 0);
  fake_destroy(b);
}

static const int64_t s11[] = {11}, s10[] = {10}, s4[] = {4}, s8[] = {8};
static const float zeros64[64];
static const double d10[10] = {0.5, -1, 2, 0, 0, 0, 0, 0, 0, 0};

TEST(test_resume_refusals) {
  kiln_model *m = load_net(10, true);
  rt_backend *a = new_backend(m);
  fill(a, 3);
  kiln_error err;
  const char *good = tmp_path("good.safetensors");
  CHECK_EQ_INT(train_ckpt_save(good, &m->g, a, &some_meta, &err), KILN_OK);
  const char *bad = tmp_path("bad.safetensors");

  derive(good, bad, &(edit){.drop = "head.bias"});
  expect_refused(m, bad, KILN_ERR_INVALID,
                 (const char *[]){"not a checkpoint of model 'net'",
                                  "1 difference (1 missing, 0 unknown, 0 "
                                  "of another shape or dtype)\n",
                                  "note: missing tensor 'head.bias'\n"},
                 3);

  ckpt_tensor wrong = {"head.bias", IR_F32, 1, s11, zeros64};
  derive(good, bad, &(edit){.put = &wrong, .n_put = 1});
  expect_refused(
      m, bad, KILN_ERR_INVALID,
      (const char *[]){"(0 missing, 0 unknown, 1 of another shape or "
                       "dtype)",
                       "tensor 'head.bias' has shape [11] in the checkpoint, "
                       "[10] in the model"},
      2);

  ckpt_tensor f64 = {"head.bias", IR_F64, 1, s10, d10};
  derive(good, bad, &(edit){.put = &f64, .n_put = 1});
  expect_refused(m, bad, KILN_ERR_INVALID,
                 (const char *[]){"tensor 'head.bias' is F64 in the "
                                  "checkpoint; kiln checkpoints hold F32"},
                 1);

  ckpt_tensor extra = {"fc9.weight", IR_F32, 1, s4, zeros64};
  derive(good, bad, &(edit){.put = &extra, .n_put = 1});
  expect_refused(m, bad, KILN_ERR_INVALID,
                 (const char *[]){"unknown tensor 'fc9.weight'"}, 1);

  /* Missing metadata, and values that do not parse. */
  struct {
    const char *key, *value, *needle;
  } metas[] = {
      {"kiln.step", NULL, "has no metadata 'kiln.step': not a kiln training"},
      {"kiln.seed", NULL, "has no metadata 'kiln.seed'"},
      {"kiln.model", NULL, "has no metadata 'kiln.model'"},
      {"kiln.best_val_loss", NULL, "has no metadata 'kiln.best_val_loss'"},
      {"kiln.epoch", "3x", "metadata 'kiln.epoch' is '3x', not an integer"},
      {"kiln.step", "-1", "metadata 'kiln.step' is '-1', not an integer >= 0"},
      {"kiln.best_epoch", "-2", "is '-2', not an integer >= -1"},
      {"kiln.seed", "-1", "'kiln.seed' is '-1', not an unsigned 64-bit"},
      {"kiln.seed", "18446744073709551616", "not an unsigned 64-bit"},
      {"kiln.best_val_loss", "low",
       "'kiln.best_val_loss' is 'low', not a "
       "number"},
  };
  for (size_t i = 0; i < ARRAY_LEN(metas); i++) {
    derive(good, bad,
           &(edit){.meta_key = metas[i].key, .meta_value = metas[i].value});
    expect_refused(m, bad, KILN_ERR_INVALID, &metas[i].needle, 1);
  }
  fake_destroy(a);
  kiln_model_free(m);
}

/* A checkpoint written without optimizer state, resumed into a graph with
 * it: every state tensor is missing, and the list stops at 12. */
TEST(test_resume_many_differences) {
  kiln_model *plain = load_net(10, false), *full = load_net(10, true);
  rt_backend *a = new_backend(plain);
  kiln_error err;
  const char *path = tmp_path("plain.safetensors");
  CHECK_EQ_INT(train_ckpt_save(path, &plain->g, a, &some_meta, &err), KILN_OK);
  expect_refused(full, path, KILN_ERR_INVALID,
                 (const char *[]){"18 differences (18 missing, 0 unknown",
                                  "note: missing tensor 'fc1.weight.exp_avg'",
                                  "note: ... and 6 more\n"},
                 3);
  /* and the other way round: 18 unknown tensors */
  rt_backend *b = new_backend(full);
  const char *path2 = tmp_path("full.safetensors");
  CHECK_EQ_INT(train_ckpt_save(path2, &full->g, b, &some_meta, &err), KILN_OK);
  expect_refused(plain, path2, KILN_ERR_INVALID,
                 (const char *[]){"18 differences (0 missing, 18 unknown",
                                  "note: unknown tensor 'fc1.bias.ema' (the "
                                  "model has no such parameter)"},
                 2);
  fake_destroy(a);
  fake_destroy(b);
  kiln_model_free(plain);
  kiln_model_free(full);
}

TEST(test_resume_bad_files) {
  kiln_model *m = load_net(10, true);
  rt_backend *a = new_backend(m);
  fill(a, 4);
  kiln_error err;
  const char *good = tmp_path("whole.safetensors");
  CHECK_EQ_INT(train_ckpt_save(good, &m->g, a, &some_meta, &err), KILN_OK);
  /* The first half of the file. */
  FILE *in = fopen(good, "rb");
  static unsigned char bytes[1 << 16];
  size_t len = in ? fread(bytes, 1, sizeof bytes, in) : 0;
  if (in)
    fclose(in);
  CHECK(len > 1000 && len < sizeof bytes);
  const char *cut = tmp_path("cut.safetensors");
  FILE *out = fopen(cut, "wb");
  CHECK(out && fwrite(bytes, 1, len / 2, out) == len / 2);
  if (out)
    fclose(out);
  expect_refused(m, cut, KILN_ERR_IO, NULL, 0);
  expect_refused(m, tmp_path("absent.safetensors"), KILN_ERR_IO,
                 (const char *[]){"cannot open", "No such file or directory"},
                 2);
  fake_destroy(a);
  kiln_model_free(m);
}

/* ---- fine-tuning ---- */

/* A report written to a string. */
typedef struct report {
  char *text;
  size_t len;
  FILE *f;
} report;

static void report_open(report *r) {
  r->text = NULL;
  r->f = open_memstream(&r->text, &r->len);
  KILN_ASSERT(r->f);
}

static void report_close(report *r) {
  fclose(r->f);
}

/* An exact text, shown whole when it differs. */
static void check_text(const char *got, const char *want) {
  CHECK(got && strcmp(got, want) == 0);
  if (!got || strcmp(got, want))
    fprintf(stderr, "--- got\n%s--- want\n%s", got ? got : "(null)", want);
}

TEST(test_finetune_new_head) {
  kiln_model *src = load_net(10, true), *dst = load_net(5, true);
  rt_backend *a = new_backend(src), *b = new_backend(dst);
  fill(a, 5);
  fill(b, 6); /* dst's own initialisation, to tell what changed */
  int64_t n = 0;
  float head_before[40], state_before[128];
  memcpy(head_before, fake_values(b, "head.weight", NULL), sizeof head_before);
  memcpy(state_before, fake_values(b, "fc1.weight.exp_avg", NULL),
         sizeof state_before);
  kiln_error err;
  const char *path = tmp_path("src.safetensors");
  CHECK_EQ_INT(train_ckpt_save(path, &src->g, a, &some_meta, &err), KILN_OK);
  report r;
  report_open(&r);
  CHECK_EQ_INT(train_ckpt_finetune(path, &dst->g, b, r.f, &err), KILN_OK);
  report_close(&r);
  check_text(r.text, "head.weight: shape [10, 8] in the checkpoint, [5, 8] "
                     "in the model\n"
                     "head.bias: shape [10] in the checkpoint, [5] in the "
                     "model\n"
                     "loaded 6 of 8 tensors; 2 skipped\n");
  free(r.text);
  /* Loaded: weights, biases and BatchNorm's buffers, bit for bit. */
  const char *loaded[] = {"fc1.weight", "fc1.bias",         "bn1.weight",
                          "bn1.bias",   "bn1.running_mean", "bn1.running_var"};
  for (size_t i = 0; i < ARRAY_LEN(loaded); i++) {
    float *x = fake_values(a, loaded[i], &n), *y = fake_values(b, loaded[i], 0);
    CHECK(x && y && memcmp(x, y, sizeof(float) * (size_t)n) == 0);
  }
  /* EMA weights start at the loaded weights; optimizer state and the new
   * head stay as they were. */
  CHECK(memcmp(fake_values(b, "fc1.weight.ema", NULL),
               fake_values(a, "fc1.weight", NULL), sizeof(float) * 128) == 0);
  CHECK(memcmp(fake_values(b, "fc1.weight.exp_avg", NULL), state_before,
               sizeof state_before) == 0);
  CHECK(memcmp(fake_values(b, "head.weight", NULL), head_before,
               sizeof head_before) == 0);
  CHECK(memcmp(fake_values(b, "head.weight.ema", NULL),
               fake_values(a, "head.weight.ema", NULL),
               sizeof(float) * 40) != 0);
  /* 6 own tensors + 4 EMA copies (fc1 and bn1 weight and bias) */
  CHECK_EQ_INT(((fake_backend *)b)->writes, 10);
  fake_destroy(a);
  fake_destroy(b);
  kiln_model_free(src);
  kiln_model_free(dst);
}

static const uint16_t f16v[8] = {0x3c00, 0xc000, 0x3800, 0x0001,
                                 0x7bff, 0x8000, 0x7c00, 0x0000};
static const uint16_t bf16v[8] = {0x3f80, 0xc040, 0x0001, 0, 0, 0, 0, 0};
static const int64_t i64v[8] = {1, 2, 3, 4, 5, 6, 7, 8};
static const double f64v[8] = {0.1, -2.5, 1e-3, 0, 0, 0, 0, 3};

/* A weights-only file (no metadata, no state) of other dtypes. */
TEST(test_finetune_dtypes) {
  kiln_model *m = load_net(10, false);
  rt_backend *b = new_backend(m);
  const ckpt_tensor t[] = {
      {"fc1.bias", IR_F64, 1, s8, f64v},
      {"bn1.weight", IR_F16, 1, s8, f16v},
      {"bn1.bias", IR_BF16, 1, s8, bf16v},
      {"bn1.running_mean", IR_I64, 1, s8, i64v},
  };
  kiln_error err;
  const char *path = tmp_path("dtypes.safetensors");
  CHECK_EQ_INT(ckpt_write(path, t, 4, NULL, 0, &err), KILN_OK);
  report r;
  report_open(&r);
  CHECK_EQ_INT(train_ckpt_finetune(path, &m->g, b, r.f, &err), KILN_OK);
  report_close(&r);
  check_text(r.text, "fc1.weight: not in the checkpoint\n"
                     "bn1.running_mean: dtype I64 in the checkpoint, not a "
                     "float type\n"
                     "bn1.running_var: not in the checkpoint\n"
                     "head.weight: not in the checkpoint\n"
                     "head.bias: not in the checkpoint\n"
                     "loaded 3 of 8 tensors; 5 skipped\n");
  free(r.text);
  const float *x = fake_values(b, "fc1.bias", NULL);
  CHECK(x[0] == (float)0.1 && x[1] == -2.5f && x[2] == (float)1e-3 &&
        x[7] == 3.0f);
  const float *h = fake_values(b, "bn1.weight", NULL);
  CHECK(h[0] == 1.0f && h[1] == -2.0f && h[2] == 0.5f && h[3] == 0x1p-24f &&
        h[4] == 65504.0f && signbit(h[5]) && h[5] == 0 && isinf(h[6]));
  const float *bf = fake_values(b, "bn1.bias", NULL);
  CHECK(bf[0] == 1.0f && bf[1] == -3.0f && bf[2] == 0x1p-133f);
  const float *rm = fake_values(b, "bn1.running_mean", NULL);
  CHECK(rm[0] == 0 && rm[7] == 0); /* skipped: not written */
  fake_destroy(b);
  kiln_model_free(m);
}

TEST(test_finetune_errors) {
  kiln_model *net = load_net(10, false), *mlp = load_mlp();
  rt_backend *a = new_backend(mlp), *b = new_backend(net);
  kiln_error err;
  const char *path = tmp_path("mlp_ft.safetensors");
  CHECK_EQ_INT(train_ckpt_save(path, &mlp->g, a, &some_meta, &err), KILN_OK);
  /* mlp has fc1 too, but [256, 784]: nothing matches */
  report r;
  report_open(&r);
  CHECK_EQ_INT(train_ckpt_finetune(path, &net->g, b, r.f, &err),
               KILN_ERR_INVALID);
  report_close(&r);
  CHECK_STR_CONTAINS(err.message, path);
  CHECK_STR_CONTAINS(err.message, "no tensor matches a parameter of model "
                                  "'net' by name and shape; nothing was "
                                  "loaded");
  CHECK_STR_CONTAINS(r.text, "fc1.weight: shape [256, 784] in the "
                             "checkpoint, [8, 16] in the model\n");
  CHECK_STR_CONTAINS(r.text, "bn1.weight: not in the checkpoint\n");
  CHECK_STR_CONTAINS(r.text, "loaded 0 of 8 tensors; 8 skipped\n");
  free(r.text);
  CHECK_EQ_INT(((fake_backend *)b)->writes, 0);
  /* No report stream is fine; a missing file is an I/O error naming it. */
  const char *absent = tmp_path("absent_ft.safetensors");
  CHECK_EQ_INT(train_ckpt_finetune(absent, &net->g, b, NULL, &err),
               KILN_ERR_IO);
  CHECK_STR_CONTAINS(err.message, absent);
  fake_destroy(a);
  fake_destroy(b);
  kiln_model_free(net);
  kiln_model_free(mlp);
}

TEST(test_finetune_without_report) {
  kiln_model *m = load_net(10, false);
  rt_backend *a = new_backend(m), *b = new_backend(m);
  fill(a, 7);
  kiln_error err;
  const char *path = tmp_path("same.safetensors");
  CHECK_EQ_INT(train_ckpt_save(path, &m->g, a, &some_meta, &err), KILN_OK);
  CHECK_EQ_INT(train_ckpt_finetune(path, &m->g, b, NULL, &err), KILN_OK);
  CHECK(same_bits(a, b)); /* the same model: everything loads */
  fake_destroy(a);
  fake_destroy(b);
  kiln_model_free(m);
}

/* ---- weights for evaluation ---- */

TEST(test_load_weights) {
  kiln_model *train = load_net(10, true), *eval = load_net(10, false);
  rt_backend *a = new_backend(train);
  fill(a, 9);
  kiln_error err;
  const char *path = tmp_path("eval.safetensors");
  CHECK_EQ_INT(train_ckpt_save(path, &train->g, a, &some_meta, &err), KILN_OK);
  /* The weights themselves, then the EMA weights of the trainable ones
   * (BatchNorm's buffers have none). */
  for (int ema = 0; ema < 2; ema++) {
    rt_backend *b = new_backend(eval);
    bool used = !ema;
    CHECK_EQ_INT(
        train_ckpt_load_weights(path, &eval->g, b, ema == 1, &used, &err),
        KILN_OK);
    CHECK(used == (ema == 1));
    fake_backend *fb = (fake_backend *)b;
    CHECK_EQ_INT(fb->writes, 8);
    for (int j = 0; j < fb->n; j++) {
      const ir_param *p = fb->params[j];
      char name[128];
      snprintf(name, sizeof name, "%s%s", p->name,
               ema && p->trainable ? ".ema" : "");
      int64_t n = 0;
      const float *want = fake_values(a, name, &n);
      CHECK(want && memcmp(fb->vals[j], want, sizeof(float) * (size_t)n) == 0);
    }
    fake_destroy(b);
  }
  /* A weights-only file has no EMA weights: the plain ones are used. */
  rt_backend *b = new_backend(eval);
  const char *plain = tmp_path("plain_eval.safetensors");
  CHECK_EQ_INT(train_ckpt_save(plain, &eval->g, b, &some_meta, &err), KILN_OK);
  bool used = true;
  CHECK_EQ_INT(train_ckpt_load_weights(plain, &eval->g, b, true, &used, &err),
               KILN_OK);
  CHECK(!used);
  fake_destroy(b);
  fake_destroy(a);
  kiln_model_free(train);
  kiln_model_free(eval);
}

/* Evaluates `path` into a fresh backend of m, expecting KILN_ERR_INVALID
 * with each needle and nothing written. */
static void expect_not_weights(const kiln_model *m, const char *path,
                               const char *const *needles, int n) {
  rt_backend *b = new_backend(m);
  kiln_error err;
  CHECK_EQ_INT(train_ckpt_load_weights(path, &m->g, b, true, NULL, &err),
               KILN_ERR_INVALID);
  CHECK_STR_CONTAINS(err.message, path);
  for (int i = 0; i < n; i++)
    CHECK_STR_CONTAINS(err.message, needles[i]);
  CHECK_EQ_INT(((fake_backend *)b)->writes, 0);
  fake_destroy(b);
}

TEST(test_load_weights_refusals) {
  kiln_model *ten = load_net(10, true), *five = load_net(5, false);
  rt_backend *a = new_backend(ten);
  kiln_error err;
  const char *good = tmp_path("ten.safetensors");
  CHECK_EQ_INT(train_ckpt_save(good, &ten->g, a, &some_meta, &err), KILN_OK);
  expect_not_weights(
      five, good,
      (const char *[]){"is not a weights file of model 'net' as configured: "
                       "2 differences (0 missing, 0 unknown, 2 of another "
                       "shape or dtype)",
                       "note: tensor 'head.weight.ema' has shape [10, 8] in "
                       "the checkpoint, [5, 8] in the model\n"},
      2);
  const char *bad = tmp_path("bad_eval.safetensors");
  derive(good, bad, &(edit){.drop = "bn1.running_var"});
  expect_not_weights(five, bad,
                     (const char *[]){"3 differences (1 missing",
                                      "note: missing tensor 'bn1.running_var'"},
                     2);
  static const int64_t i64[8] = {0};
  ckpt_tensor t = {"bn1.running_mean", IR_I64, 1, s8, i64};
  derive(good, bad, &(edit){.put = &t, .n_put = 1});
  expect_not_weights(five, bad,
                     (const char *[]){"note: tensor 'bn1.running_mean' is I64 "
                                      "in the checkpoint, not a float type"},
                     1);
  rt_backend *b = new_backend(five);
  const char *absent = tmp_path("absent_eval.safetensors");
  CHECK_EQ_INT(train_ckpt_load_weights(absent, &five->g, b, false, NULL, &err),
               KILN_ERR_IO);
  CHECK_STR_CONTAINS(err.message, absent);
  fake_destroy(a);
  fake_destroy(b);
  kiln_model_free(ten);
  kiln_model_free(five);
}

/* The same contract on the graph the loop will run: ir_autodiff and
 * ir_add_updates, whose update nodes own the Adam state and EMA weights. */
static kiln_model *load_net_updates(int classes) {
  char text[640];
  snprintf(text, sizeof text,
           "model net\n"
           "input image: f32[batch, 1, 4, 4]\n"
           "input label: i32[batch]\n"
           "flat = flatten(image)\n"
           "fc1 = linear(flat, out=8)\n"
           "bn1 = batchnorm(fc1)\n"
           "act = relu(bn1)\n"
           "head = linear(act, out=%d)\n"
           "loss = cross_entropy(head, label)\n"
           "train {\n  optimizer = adam(lr=1e-3)\n  ema = 0.999\n}\n",
           classes);
  kiln_error err;
  kiln_model *m = kiln_model_load_string("net.kiln", text, strlen(text), &err);
  if (!m || ir_autodiff(&m->g, &err) || ir_add_updates(&m->g, &err)) {
    fputs(err.message, stderr);
    abort();
  }
  return m;
}

TEST(test_update_nodes) {
  kiln_model *src = load_net_updates(10), *dst = load_net_updates(5);
  CHECK_EQ_INT(param_count(&src->g), 8 + 6 * 3);
  const ir_node *u = ir_graph_find(&src->g, "update/fc1.weight");
  CHECK(u && u->op == IR_OP_UPDATE && ir_op_table[u->op].internal);
  rt_backend *a = new_backend(src), *b = new_backend(src);
  fill(a, 8);
  kiln_error err;
  const char *path = tmp_path("updates.safetensors");
  CHECK_EQ_INT(train_ckpt_save(path, &src->g, a, &some_meta, &err), KILN_OK);
  train_ckpt_meta meta;
  CHECK_EQ_INT(train_ckpt_resume(path, &src->g, b, &meta, &err), KILN_OK);
  CHECK(same_bits(a, b));
  ckpt_file f;
  CHECK_EQ_INT(ckpt_load(&f, path, &err), KILN_OK);
  CHECK(ckpt_find(&f, "head.bias.exp_avg_sq") && ckpt_find(&f, "bn1.bias.ema"));
  ckpt_file_free(&f);
  /* Fine-tuning into the 5-class head reads none of the update nodes'
   * state. */
  rt_backend *c = new_backend(dst);
  report r;
  report_open(&r);
  CHECK_EQ_INT(train_ckpt_finetune(path, &dst->g, c, r.f, &err), KILN_OK);
  report_close(&r);
  CHECK_STR_CONTAINS(r.text, "loaded 6 of 8 tensors; 2 skipped\n");
  free(r.text);
  const float *m0 = fake_values(c, "fc1.weight.exp_avg", NULL);
  CHECK(m0 && m0[5] == 0 && m0[100] == 0);
  CHECK(memcmp(fake_values(c, "bn1.weight.ema", NULL),
               fake_values(a, "bn1.weight", NULL), sizeof(float) * 8) == 0);
  fake_destroy(a);
  fake_destroy(b);
  fake_destroy(c);
  kiln_model_free(src);
  kiln_model_free(dst);
}

static void clean_tmpdir(void) {
  DIR *d = opendir(tmpdir);
  for (struct dirent *e; d && (e = readdir(d));)
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
      remove(tmp_path(e->d_name));
  if (d)
    closedir(d);
}

int main(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/kiln-test-train-ckpt-XXXXXX");
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    return 1;
  }
  RUN(test_save_resume_bit_exact);
  RUN(test_metadata_in_file);
  RUN(test_save_unwritable);
  RUN(test_resume_refusals);
  RUN(test_resume_many_differences);
  RUN(test_resume_bad_files);
  RUN(test_finetune_new_head);
  RUN(test_finetune_dtypes);
  RUN(test_finetune_errors);
  RUN(test_finetune_without_report);
  RUN(test_load_weights);
  RUN(test_load_weights_refusals);
  RUN(test_update_nodes);
  clean_tmpdir();
  rmdir(tmpdir);
  return TEST_SUMMARY();
}
