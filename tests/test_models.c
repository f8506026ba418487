/* test_models.c — every model in models/, through the public API only: each
 * loads, is named after its file (`model NAME` in NAME.kiln: a rule for
 * every file added there), has positive figures, and its summary,
 * IR dump and Graphviz output say what they should. Then each model's
 * figures against the published ones, with the arithmetic written out.
 *
 * Run from the source root (ctest does), so that models/ is found. */
#include <kiln.h>

#include "test.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

enum { MAX_MODELS = 128 };

static char *model_paths[MAX_MODELS];
static int n_models;

static int compare_strings(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Fills model_paths with "models/NAME.kiln", sorted. */
static void list_models(void) {
  DIR *d = opendir("models");
  if (!d) {
    fprintf(stderr, "cannot open models/ (run from the source root)\n");
    return;
  }
  struct dirent *e;
  while ((e = readdir(d)) && n_models < MAX_MODELS) {
    if (e->d_name[0] == '.' || !ends_with(e->d_name, ".kiln"))
      continue;
    size_t n = strlen("models/") + strlen(e->d_name) + 1;
    char *p = malloc(n);
    snprintf(p, n, "models/%s", e->d_name);
    model_paths[n_models++] = p;
  }
  closedir(d);
  qsort(model_paths, (size_t)n_models, sizeof model_paths[0], compare_strings);
}

static kiln_model *load(const char *path) {
  kiln_error err;
  kiln_model *m = kiln_model_load_file(path, &err);
  if (!m)
    fprintf(stderr, "%s", err.message);
  return m;
}

/* What `write` prints, as a malloc'ed string (through a temporary file, as
 * a user's FILE * would be). */
static char *capture(void (*write)(const kiln_model *, FILE *),
                     const kiln_model *m) {
  FILE *f = tmpfile();
  if (!f)
    return NULL;
  write(m, f);
  long n = ftell(f);
  rewind(f);
  char *s = malloc((size_t)(n > 0 ? n : 0) + 1);
  size_t got = fread(s, 1, (size_t)(n > 0 ? n : 0), f);
  s[got] = '\0';
  fclose(f);
  return s;
}

/* Like CHECK_STR_CONTAINS, without printing a whole ResNet dump. */
static void check_has(const char *text, const char *what, const char *path,
                      const char *needle) {
  if (text && strstr(text, needle))
    return;
  fprintf(stderr, "%s: '%s' not found in the %s\n", path, needle, what);
  test_failures_++;
}

/* 61750 -> "61,750", as the summary prints counts. */
static void format_count(char *buf, size_t size, int64_t v) {
  char digits[32];
  snprintf(digits, sizeof digits, "%lld", (long long)v);
  size_t n = strlen(digits), o = 0;
  for (size_t i = 0; i < n && o + 2 < size; i++) {
    if (i > 0 && (n - i) % 3 == 0)
      buf[o++] = ',';
    buf[o++] = digits[i];
  }
  buf[o] = '\0';
}

/* "models/lenet5.kiln" -> "lenet5" */
static void model_stem(const char *path, char *out, size_t size) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  snprintf(out, size, "%s", base);
  char *dot = strstr(out, ".kiln");
  if (dot)
    *dot = '\0';
}

TEST(test_model_count) {
  /* mlp, lenet5, resnet_small, vgg_small, resnet18, resnet50, mlp_pipeline */
  CHECK(n_models >= 7);
}

TEST(test_every_model_loads) {
  for (int i = 0; i < n_models; i++) {
    const char *path = model_paths[i];
    kiln_model *m = load(path);
    CHECK(m != NULL);
    if (!m) {
      fprintf(stderr, "  while loading %s\n", path);
      continue;
    }
    char stem[256];
    model_stem(path, stem, sizeof stem);
    if (strcmp(kiln_model_name(m), stem) != 0) {
      fprintf(stderr, "%s: model name '%s', expected '%s'\n", path,
              kiln_model_name(m), stem);
      test_failures_++;
    }
    CHECK(kiln_model_param_count(m) > 0);
    CHECK(kiln_model_macs(m) > 0);
    CHECK(kiln_model_flops(m) >= 2 * kiln_model_macs(m));
    CHECK(kiln_model_buffer_count(m) >= 0);
    CHECK(kiln_model_layer_count(m) > 2);

    /* Key lines: the summary's header and total, the dump's `model` line,
     * the dot graph's name. */
    char line[320], count[32];
    char *summary = capture(kiln_model_summary, m);
    snprintf(line, sizeof line, "Model: %s\n", stem);
    check_has(summary, "summary", path, line);
    format_count(count, sizeof count, kiln_model_param_count(m));
    snprintf(line, sizeof line, "Total params: %s\n", count);
    check_has(summary, "summary", path, line);
    char *dump = capture(kiln_model_dump, m);
    snprintf(line, sizeof line, "model %s\n", stem);
    CHECK(dump && strncmp(dump, line, strlen(line)) == 0);
    check_has(dump, "dump", path, "\ninput ");
    char *dot = capture(kiln_model_write_dot, m);
    snprintf(line, sizeof line, "digraph \"%s\" {\n", stem);
    CHECK(dot && strncmp(dot, line, strlen(line)) == 0);
    check_has(dot, "dot output", path, " -> ");
    CHECK(dot && ends_with(dot, "}\n"));
    free(summary);
    free(dump);
    free(dot);
    kiln_model_free(m);
  }
}

/* The figures one model file should give, and lines its dump must show
 * (layer name and op: the layer's parameters are NAME.weight, NAME.bias,
 * ... as in PyTorch's state_dict). */
typedef struct expect {
  const char *path;
  int64_t params, macs, buffers;
  double macs_lo, macs_hi; /* the published figure's range; 0: none */
  const char *lines[6];
} expect;

/* clang-format off */
static const expect expected[] = {
    /* LeNet-5 with BatchNorm, 1x28x28:
     *   c1 conv 1->6 5x5 (+bias)   6*1*25 + 6     =    156
     *   b1 batchnorm(6)            2*6            =     12
     *   c3 conv 6->16 5x5 (+bias)  16*6*25 + 16   =  2,416
     *   b3 batchnorm(16)           2*16           =     32
     *   f5 linear 400->120         400*120 + 120  = 48,120
     *   f6 linear 120->84          120*84 + 84    = 10,164
     *   logits linear 84->10       84*10 + 10     =    850
     *                                               61,750 (61,706 + 44)
     * MACs: c1 6*28*28*25 = 117,600; c3 16*10*10*150 = 240,000;
     *   400*120 + 120*84 + 84*10 = 58,920; in all 416,520.
     * Buffers: running mean and variance of 6 + 16 channels = 44. */
    {"models/lenet5.kiln", 61750, 416520, 44, 0, 0,
     {"\nc1 = conv2d(image, out=6, kernel=(5, 5), padding=(2, 2))",
      "\nb3 = batchnorm(c3)", "\nlogits = linear(a6, out=10)"}},
    /* MLP 784-256-128-10:
     *   fc1 784*256 + 256 = 200,960
     *   fc2 256*128 + 128 =  32,896
     *   fc3 128*10 + 10   =   1,290
     *                       235,146
     * MACs: 200,704 + 32,768 + 1,280 = 234,752. */
    {"models/mlp.kiln", 235146, 234752, 0, 0, 0, {"\nfc1 = linear(flat, out=256)", "\ndrop2 = dropout(act2, p=0.2)",
      "\nfc3 = linear(drop2, out=10)"}},
    /* ResNet-20 for 1x28x28 with projection shortcuts: stem 144 + 32; stage
     * 1: 3 x (2*2,304 + 2*32) = 14,016; stage 2: 4,608 + 9,216 + 128 + 512
     * + 64 + 2 x (2*9,216 + 128) = 51,648; stage 3: 18,432 + 36,864 + 256 +
     * 2,048 + 128 + 2 x (2*36,864 + 256) = 205,696; fc 650. In all 272,186.
     * Buffers: 2 x (16 + 6*16 + 6*32 + 32 + 6*64 + 64) = 1,568. */
    {"models/resnet_small.kiln", 272186, 31021952, 1568, 0, 0,
     {"\nlayer1.2.conv2 = conv2d(", "\nlayer2.0.downsample.0 = conv2d(",
      "\nlayer3.2.bn2 = batchnorm(", "\nfc = linear(pool, out=10)"}},
    /* VGG-small: convolutions 320 + 9,248 + 18,496 + 36,928 + 73,856 +
     * 147,584 = 286,432; classifier 1152*512+512 + 512*512+512 + 512*10+10
     * = 858,122. In all 1,144,554. */
    {"models/vgg_small.kiln", 1144554, 29984256, 0, 0, 0,
     {"\nfeatures.0 = conv2d(image, out=32", "\nfeatures.12 = conv2d(",
      "\nfeatures.14 = maxpool(", "\nclassifier.0 = linear(flat, out=512)",
      "\nclassifier.6 = linear(classifier.5, out=10)"}},
    /* torchvision resnet18: 11,689,512 parameters, 1.82 G MACs. Buffers:
     * BatchNorm channels 64 + 4*64 + (4*128 + 128) + (4*256 + 256) +
     * (4*512 + 512) = 4,800, two statistics each. */
    {"models/resnet18.kiln", 11689512, 1814073344, 9600, 1.80e9, 1.83e9,
     {"\nconv1 = conv2d(image, out=64, kernel=(7, 7), stride=(2, 2), "
      "padding=(3, 3), bias=false)",
      "\nlayer1.0.conv1 = conv2d(", "\nlayer2.0.downsample.0 = conv2d(",
      "\nlayer2.0.downsample.1 = batchnorm(", "\nlayer4.1.bn2 = batchnorm(",
      "\nfc = linear(avgpool, out=1000)"}},
    /* torchvision resnet50: 25,557,032 parameters, 4.09 G MACs. Buffers:
     * BatchNorm channels 64 + (3*6*64 + 256) + (4*6*128 + 512) +
     * (6*6*256 + 1024) + (3*6*512 + 2048) = 26,560, two statistics each. */
    {"models/resnet50.kiln", 25557032, 4089184256, 53120, 4.05e9, 4.15e9,
     {"\nlayer1.0.downsample.0 = conv2d(", "\nlayer1.2.conv3 = conv2d(",
      "\nlayer3.5.bn3 = batchnorm(", "\nlayer4.0.downsample.1 = batchnorm(",
      "\nlayer4.2.out = relu(", "\nfc = linear(avgpool, out=1000)"}},
    /* 784*512+512 + 512*512+512 + 512*256+256 + 256*10+10 = 798,474. */
    {"models/mlp_pipeline.kiln", 798474, 797184, 0, 0, 0,
     {"\ntrunk.1 = linear(trunk.0, out=512)  # f32[batch, 512], stage 0",
      "\ntrunk.3 = linear(", "\nhead.0 = linear(trunk.4, out=256)  # f32[batch, 256], stage 1",
      "\nloss = cross_entropy(head.3, label)  # f32[], stage 1"}},
};
/* clang-format on */

TEST(test_published_figures) {
  for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
    const expect *e = &expected[i];
    kiln_model *m = load(e->path);
    CHECK(m != NULL);
    if (!m) {
      fprintf(stderr, "  while loading %s\n", e->path);
      continue;
    }
    int before = test_failures_;
    CHECK_EQ_INT(kiln_model_param_count(m), e->params);
    CHECK_EQ_INT(kiln_model_macs(m), e->macs);
    CHECK_EQ_INT(kiln_model_buffer_count(m), e->buffers);
    if (e->macs_hi > 0) {
      CHECK((double)kiln_model_macs(m) >= e->macs_lo);
      CHECK((double)kiln_model_macs(m) <= e->macs_hi);
    }
    if (test_failures_ != before)
      fprintf(stderr, "  in %s\n", e->path);
    char *dump = capture(kiln_model_dump, m);
    for (int k = 0; k < 6 && e->lines[k]; k++)
      check_has(dump, "dump", e->path, e->lines[k]);
    free(dump);
    kiln_model_free(m);
  }
}

int main(void) {
  list_models();
  RUN(test_model_count);
  RUN(test_every_model_loads);
  RUN(test_published_figures);
  for (int i = 0; i < n_models; i++)
    free(model_paths[i]);
  return TEST_SUMMARY();
}
