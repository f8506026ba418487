/* config.h — the model file's `train` and `data` sections, validated.
 *
 * The frontend fills these from the sections (unknown keys are errors) and
 * they travel with the graph; autodiff reads the optimizer, the runtime the
 * rest. Every field has the default documented in docs/model-format.md. */
#ifndef KILN_IR_CONFIG_H
#define KILN_IR_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

typedef enum ir_optim_kind {
  IR_OPTIM_SGD, /* momentum = 0 -> plain SGD; nesterov flag */
  IR_OPTIM_ADAGRAD,
  IR_OPTIM_RMSPROP,
  IR_OPTIM_ADAM,
  IR_OPTIM_ADAMW,
} ir_optim_kind;

typedef struct ir_optim {
  ir_optim_kind kind;
  double lr;
  double momentum; /* sgd, rmsprop */
  bool nesterov;   /* sgd */
  double beta1, beta2;
  double eps;
  double alpha; /* rmsprop smoothing */
} ir_optim;

typedef enum ir_sched_kind {
  IR_SCHED_CONSTANT,
  IR_SCHED_STEP,
  IR_SCHED_COSINE,
  IR_SCHED_LINEAR,
  IR_SCHED_INVERSE_SQRT,
} ir_sched_kind;

#define IR_MAX_MILESTONES 16
#define IR_MAX_NAMES 64
#define IR_MAX_AUGMENT 8

typedef struct ir_schedule {
  ir_sched_kind kind;
  int64_t warmup_steps; /* linear warmup from 0 to the base LR */
  double warmup_epochs; /* alternative to warmup_steps */
  int n_milestones;     /* step: epochs at which LR *= gamma */
  int64_t milestones[IR_MAX_MILESTONES];
  double gamma;
  double min_lr; /* cosine and linear end here */
} ir_schedule;

typedef enum ir_wd_mode { IR_WD_L2, IR_WD_DECOUPLED } ir_wd_mode;

typedef struct ir_train_cfg {
  ir_optim optim;
  ir_schedule schedule;
  int64_t batch;      /* per replica */
  int64_t base_batch; /* linear scaling: lr *= global batch / base_batch */
  int64_t epochs;
  double weight_decay;
  ir_wd_mode weight_decay_mode;
  double l1;
  double clip_grad_norm; /* 0: off */
  double ema;            /* Polyak decay; 0: off */
  uint64_t seed;
  int64_t early_stop_patience; /* epochs; 0: off */
  double early_stop_min_delta;
  int n_freeze;
  const char *freeze[IR_MAX_NAMES]; /* layer or block name prefixes */
  const char *finetune_from;        /* checkpoint path, or NULL */
  const char *loss;                 /* name of the loss node, or NULL */
} ir_train_cfg;

typedef enum ir_data_format {
  IR_DATA_IDX,
  IR_DATA_NPY,
  IR_DATA_CSV
} ir_data_format;
typedef enum ir_aug_kind {
  IR_AUG_RANDOM_CROP,
  IR_AUG_HFLIP,
  IR_AUG_CUTOUT
} ir_aug_kind;

typedef struct ir_augment {
  ir_aug_kind kind;
  int64_t size;    /* cutout: square side */
  int64_t padding; /* random_crop */
  double p;        /* probability (hflip, cutout) */
} ir_augment;

typedef struct ir_data_cfg {
  ir_data_format format;
  const char *train_images, *train_labels;
  const char *test_images, *test_labels;
  double validation; /* fraction of train held out */
  bool shuffle;
  double mean, std; /* input normalisation */
  int n_augment;
  ir_augment augment[IR_MAX_AUGMENT];
} ir_data_cfg;

void ir_train_cfg_default(ir_train_cfg *c);
void ir_data_cfg_default(ir_data_cfg *c);

#endif
