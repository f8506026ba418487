/* public_api.c — a user's own program: it includes only <kiln.h> (test.h
 * uses nothing but the C library) and links against libkiln.so, which
 * exports only the kiln_* functions. It loads the LeNet-5 model, checks its
 * figures, and checks that an invalid model gives a located error. */
#include <kiln.h>

#include "test.h"

#include <stdlib.h>

/* LeNet-5 with BatchNorm (models/lenet5.kiln), by hand:
 *   conv 1->6 5x5 + bias: 156; batchnorm(6): 12; conv 6->16 5x5 + bias:
 *   2,416; batchnorm(16): 32; linear 400->120: 48,120; 120->84: 10,164;
 *   84->10: 850. In all 61,750 parameters.
 * MACs: 6*28*28*25 + 16*10*10*150 + 400*120 + 120*84 + 84*10 = 416,520. */
enum { LENET5_PARAMS = 61750, LENET5_MACS = 416520 };

TEST(test_load_lenet5) {
  kiln_error err;
  kiln_model *m = kiln_model_load_file("models/lenet5.kiln", &err);
  CHECK(m != NULL);
  if (!m) {
    fputs(err.message, stderr);
    return;
  }
  CHECK(strcmp(kiln_model_name(m), "lenet5") == 0);
  CHECK_EQ_INT(kiln_model_param_count(m), LENET5_PARAMS);
  CHECK_EQ_INT(kiln_model_macs(m), LENET5_MACS);
  CHECK_EQ_INT(kiln_model_buffer_count(m), 2 * (6 + 16));
  CHECK(kiln_model_layer_count(m) >= 15);

  FILE *f = tmpfile();
  CHECK(f != NULL);
  if (f) {
    kiln_model_summary(m, f);
    CHECK(ftell(f) > 0);
    fclose(f);
  }
  kiln_model_free(m);
}

TEST(test_load_string) {
  /* The same network can come from memory; the text need not end in NUL. */
  static const char text[] = "model tiny\n"
                             "input x: f32[batch, 4]\n"
                             "y = linear(x, out=3)\n"
                             "XXXX";
  kiln_error err;
  kiln_model *m =
      kiln_model_load_string("tiny.kiln", text, strlen(text) - 4, &err);
  CHECK(m != NULL);
  if (!m) {
    fputs(err.message, stderr);
    return;
  }
  CHECK(strcmp(kiln_model_name(m), "tiny") == 0);
  CHECK_EQ_INT(kiln_model_param_count(m), 4 * 3 + 3);
  CHECK_EQ_INT(kiln_model_macs(m), 12);
  kiln_model_free(m);
}

TEST(test_error_is_located) {
  static const char text[] = "model bad\n"
                             "input image: f32[batch, 1, 28, 28]\n"
                             "c1 = conv2(image, out=6, kernel=5)\n";
  kiln_error err;
  memset(&err, 0, sizeof err);
  kiln_model *m = kiln_model_load_string("bad.kiln", text, strlen(text), &err);
  CHECK(m == NULL);
  if (m)
    kiln_model_free(m);
  CHECK(err.status != KILN_OK);
  CHECK_STR_CONTAINS(err.message, "bad.kiln:3:6: error:");
  CHECK_STR_CONTAINS(err.message, "conv2");
  CHECK_STR_CONTAINS(err.message, "conv2d"); /* did you mean */
  CHECK_STR_CONTAINS(err.message, "c1 = conv2(image, out=6, kernel=5)\n"
                                  "     ^");
}

TEST(test_missing_file) {
  kiln_error err;
  memset(&err, 0, sizeof err);
  kiln_model *m = kiln_model_load_file("no-such-file.kiln", &err);
  CHECK(m == NULL);
  CHECK(err.status == KILN_ERR_IO);
  CHECK_STR_CONTAINS(err.message, "no-such-file.kiln");
}

TEST(test_version) {
  const char *v = kiln_version();
  CHECK(v != NULL && v[0] >= '0' && v[0] <= '9');
}

int main(void) {
  RUN(test_load_lenet5);
  RUN(test_load_string);
  RUN(test_error_is_located);
  RUN(test_missing_file);
  RUN(test_version);
  return TEST_SUMMARY();
}
