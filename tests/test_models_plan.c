/* test_models_plan.c — a training step of every model in models/, compiled
 * for the CPU (lowering + LLVM, every tensor kept), against the reference
 * executor node by node: every forward value, every gradient, and every
 * parameter and optimizer-state tensor after the update (plan_check.h),
 * then the evaluation plan. Batch 2, the smallest batch at which every
 * BatchNorm of these models has more than one value per channel.
 *
 * The ImageNet models (ResNet-18/50, over 1 G MACs per example) are left
 * out: the double-precision reference takes minutes on them, and at their
 * depth float32 rounding alone moves a ReLU input across zero now and then
 * (ResNet-18 at batch 2: one gradient element, 7e-5 where the reference
 * has the unit active), which node-by-node tolerances cannot absorb. They
 * are lowered, planned and compiled (test_memplan, test_cuda_nvrtc).
 * Labelled `models`: scripts/test.sh runs it in the release pass only. */
#include "frontend/load.h"
#include "test.h"
#include "tests/support/plan_check.h"

#include <glob.h>
#include <stdio.h>

enum { MAX_MACS = 100 * 1000 * 1000 };

static void check_model(const char *path) {
  kiln_error err = {0};
  kiln_model *m = kiln_model_load_file(path, &err);
  CHECK(m != NULL);
  int64_t macs = m ? kiln_model_macs(m) : 0;
  kiln_model_free(m);
  if (macs > MAX_MACS) {
    printf("%s: %lld MACs per example, left out\n", path, (long long)macs);
    return;
  }
  static const kir_plan_mode modes[] = {KIR_PLAN_TRAIN, KIR_PLAN_EVAL};
  for (int i = 0; i < 2; i++) {
    pc_opts o = {.mode = modes[i],
                 .update = modes[i] == KIR_PLAN_TRAIN,
                 .batch = 2,
                 .exec = &pc_cpu_executor};
    pc_report rep = {0};
    kiln_status st = pc_check_file(path, &o, &rep, &err);
    if (st != KILN_OK)
      fprintf(stderr, "%s (%s): %s\n", path, i ? "eval" : "train", err.message);
    CHECK_EQ_INT(st, KILN_OK);
    CHECK(rep.compared > 0 && rep.launches > 0);
    printf("%s %s: %d tensors, %d launches, worst error %.2f of the "
           "tolerance (forward), %.2f (gradients), %.2f (update)\n",
           path, i ? "eval" : "train", rep.compared, rep.launches, rep.used_fwd,
           rep.used_grad, rep.used_update);
  }
}

static void test_every_model(void) {
  glob_t gl;
  CHECK_EQ_INT(glob("models/*.kiln", 0, NULL, &gl), 0);
  CHECK(gl.gl_pathc >= 7);
  for (size_t i = 0; i < gl.gl_pathc; i++)
    check_model(gl.gl_pathv[i]);
  globfree(&gl);
}

int main(void) {
  RUN(test_every_model);
  return TEST_SUMMARY();
}
