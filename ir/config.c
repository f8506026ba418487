/* config.c — defaults of the `train` and `data` sections, as documented in
 * docs/model-format.md. The frontend starts from these and overrides what
 * the model file gives. */
#include "ir/ir.h"

#include <string.h>

void ir_train_cfg_default(ir_train_cfg *c) {
  memset(c, 0, sizeof *c);
  /* sgd(lr=0.01); the other optimizers' own defaults (Adam's betas and
   * eps, RMSprop's alpha) are filled in so that choosing an optimizer
   * without those keys gives PyTorch's values. */
  c->optim = (ir_optim){.kind = IR_OPTIM_SGD,
                        .lr = 0.01,
                        .momentum = 0,
                        .nesterov = false,
                        .beta1 = 0.9,
                        .beta2 = 0.999,
                        .eps = 1e-8,
                        .alpha = 0.99};
  c->schedule = (ir_schedule){.kind = IR_SCHED_CONSTANT, .gamma = 0.1};
  c->batch = 64;
  c->base_batch = 0; /* off */
  c->epochs = 10;
  c->weight_decay = 0;
  c->weight_decay_mode = IR_WD_L2;
  c->clip_grad_norm = 0; /* off */
  c->ema = 0;            /* off */
  c->seed = 0;
  c->early_stop_patience = 0; /* off */
  c->n_freeze = 0;
  c->finetune_from = NULL;
  c->loss = NULL; /* the only loss layer */
}

#define FASHION_MNIST "/usr/share/datasets/fashion-mnist/"

void ir_data_cfg_default(ir_data_cfg *c) {
  memset(c, 0, sizeof *c);
  c->format = IR_DATA_IDX;
  c->train_images = FASHION_MNIST "train-images-idx3-ubyte.gz";
  c->train_labels = FASHION_MNIST "train-labels-idx1-ubyte.gz";
  c->test_images = FASHION_MNIST "t10k-images-idx3-ubyte.gz";
  c->test_labels = FASHION_MNIST "t10k-labels-idx1-ubyte.gz";
  c->validation = 0.1;
  c->shuffle = true;
  c->mean = 0;
  c->std = 1;
  c->n_augment = 0;
}
