/* test_ir.c — the graph IR built directly through its API: dtypes and
 * shapes, every op's shape rule (odd sizes, strides, padding, dilation,
 * groups), parameter counts and MACs against hand-computed figures, a whole
 * ResNet-18 against torchvision's published counts, the section defaults,
 * and the op table against the Ops table of docs/model-format.md.
 * Error messages, the verifier and the printers are in test_ir_errors.c. */
#include "ir_build.h"

TEST(test_dtypes_and_shapes) {
  ir_dtype t;
  CHECK(ir_dtype_parse("bf16", &t) && t == IR_BF16);
  CHECK(!ir_dtype_parse("f8", &t));
  CHECK(strcmp(ir_dtype_name(IR_I64), "i64") == 0);
  CHECK_EQ_INT(ir_dtype_size(IR_F16), 2);
  CHECK_EQ_INT(ir_dtype_size(IR_F64), 8);
  CHECK(ir_dtype_is_float(IR_BF16) && !ir_dtype_is_float(IR_I32));
  ir_shape s = {.rank = 4, .dim = {IR_DIM_BATCH, 64, 56, 56}};
  ir_shape scalar = {.rank = 0};
  arena a;
  arena_init(&a);
  CHECK(strcmp(ir_shape_str(&a, &s), "[batch, 64, 56, 56]") == 0);
  CHECK(strcmp(ir_shape_str(&a, &scalar), "[]") == 0);
  CHECK_EQ_INT(ir_shape_numel(&s, 1), 64 * 56 * 56);
  CHECK_EQ_INT(ir_shape_numel(&s, 32), 32 * 64 * 56 * 56);
  CHECK_EQ_INT(ir_shape_numel(&scalar, 8), 1);
  ir_shape s2 = s;
  CHECK(ir_shape_eq(&s, &s2));
  s2.dim[3] = 55;
  CHECK(!ir_shape_eq(&s, &s2));
  arena_free(&a);
}

TEST(test_conv2d_shapes) {
  tb_reset();
  ir_node *x = tb_input("x", IR_F32, "batch, 3, 224, 224");
  /* ResNet stem: (224 + 6 - 6 - 1) / 2 + 1 = 112 */
  ir_node *c1 = tb_conv("conv1", x, 64, 7, 2, 3, false);
  CHECK_SHAPE(c1, "[batch, 64, 112, 112]");
  CHECK_EQ_INT(ir_node_param_count(c1, true), 9408);
  CHECK_EQ_INT(ir_node_param_count(c1, false), 0);
  CHECK_EQ_INT(ir_node_macs(c1), 118013952);
  CHECK_EQ_INT(ir_node_flops(c1), 2 * 118013952LL);
  CHECK(strcmp(c1->params[0].name, "conv1.weight") == 0);
  CHECK(strcmp(c1->params[0].role, "weight") == 0);
  CHECK_EQ_INT(c1->params[0].init, IR_INIT_AUTO);
  CHECK(c1->dtype == IR_F32);

  /* Odd sizes and every attribute: H = (10 + 2 - 2*2 - 1)/2 + 1 = 4,
   * W = (13 + 4 - 1*4 - 1)/3 + 1 = 5. */
  ir_node *y = tb_input("y", IR_F16, "batch, 32, 10, 13");
  ir_node *n = tb_node(IR_OP_CONV2D, "c2", y, NULL, NULL);
  tb_int(n, "out", 64);
  tb_pair(n, "kernel", 3, 5);
  tb_pair(n, "stride", 2, 3);
  tb_pair(n, "padding", 1, 2);
  tb_pair(n, "dilation", 2, 1);
  tb_int(n, "groups", 4);
  tb_sym(n, "init", "he_normal");
  CHECK(tb_finish(n) != NULL);
  CHECK_SHAPE(n, "[batch, 64, 4, 5]");
  CHECK(n->dtype == IR_F16 && n->params[0].dtype == IR_F16);
  /* weight [64, 32/4, 3, 5] + bias [64] */
  CHECK_EQ_INT(n->n_params, 2);
  CHECK_EQ_INT(ir_node_param_count(n, true), 64 * 8 * 15 + 64);
  CHECK_EQ_INT(n->params[0].init, IR_INIT_HE_NORMAL);
  CHECK_EQ_INT(n->params[1].init, IR_INIT_ZEROS);
  CHECK(strcmp(n->params[1].name, "c2.bias") == 0);
  CHECK_EQ_INT(ir_node_macs(n), 64 * 4 * 5 * (8 * 15));

  /* 7x7, kernel 3, stride 2, no padding: (7 - 3)/2 + 1 = 3; a kernel
   * exactly as large as the padded input gives 1. */
  ir_node *z = tb_input("z", IR_F32, "batch, 8, 7, 7");
  CHECK_SHAPE(tb_conv("c3", z, 8, 3, 2, 0, true), "[batch, 8, 3, 3]");
  CHECK_SHAPE(tb_conv("c4", z, 8, 9, 1, 1, true), "[batch, 8, 1, 1]");
  /* A fixed batch stays fixed. */
  ir_node *f = tb_input("f", IR_F32, "2, 1, 5, 5");
  CHECK_SHAPE(tb_conv("c5", f, 4, 3, 1, 1, true), "[2, 4, 5, 5]");
}

TEST(test_pool_shapes) {
  tb_reset();
  ir_node *x = tb_input("x", IR_F32, "batch, 64, 112, 112");
  ir_node *p = tb_node(IR_OP_MAXPOOL, "pool", x, NULL, NULL);
  tb_pair(p, "kernel", 3, 3);
  tb_pair(p, "stride", 2, 2);
  tb_pair(p, "padding", 1, 1);
  CHECK_SHAPE(tb_finish(p), "[batch, 64, 56, 56]"); /* (112+2-3)/2+1 */
  CHECK_EQ_INT(ir_node_macs(p), 0);
  CHECK_EQ_INT(ir_node_flops(p), 64 * 56 * 56);
  /* stride defaults to the kernel; odd sizes round down */
  ir_node *y = tb_input("y", IR_F32, "batch, 6, 7, 9");
  ir_node *a = tb_node(IR_OP_AVGPOOL, "avg", y, NULL, NULL);
  tb_pair(a, "kernel", 2, 3);
  CHECK_SHAPE(tb_finish(a), "[batch, 6, 3, 3]");
  CHECK_SHAPE(tb_unary(IR_OP_GLOBAL_AVGPOOL, "gap", y), "[batch, 6]");
}

TEST(test_linear_and_matmul) {
  tb_reset();
  ir_node *x = tb_input("x", IR_F32, "batch, 512");
  ir_node *fc = tb_node(IR_OP_LINEAR, "fc", x, NULL, NULL);
  tb_int(fc, "out", 1000);
  CHECK_SHAPE(tb_finish(fc), "[batch, 1000]");
  CHECK_EQ_INT(ir_node_param_count(fc, true), 513000);
  /* PyTorch layout: weight [out, in] */
  CHECK(fc->params[0].shape.rank == 2 && fc->params[0].shape.dim[0] == 1000 &&
        fc->params[0].shape.dim[1] == 512);
  CHECK_EQ_INT(ir_node_macs(fc), 512000);
  /* Over the last dimension of a 3-D input, without bias. */
  ir_node *s = tb_input("s", IR_F32, "batch, 5, 16");
  ir_node *l2 = tb_node(IR_OP_LINEAR, "proj", s, NULL, NULL);
  tb_int(l2, "out", 8);
  tb_int(l2, "bias", 0);
  tb_sym(l2, "init", "xavier_uniform");
  CHECK_SHAPE(tb_finish(l2), "[batch, 5, 8]");
  CHECK_EQ_INT(ir_node_param_count(l2, true), 128);
  CHECK_EQ_INT(l2->params[0].init, IR_INIT_XAVIER_UNIFORM);
  CHECK_EQ_INT(ir_node_macs(l2), 5 * 16 * 8);

  ir_node *a = tb_input("a", IR_F32, "batch, 3, 4");
  ir_node *b = tb_input("b", IR_F32, "4, 5");
  ir_node *mm = tb_binary(IR_OP_MATMUL, "mm", a, b);
  CHECK_SHAPE(mm, "[batch, 3, 5]");
  CHECK_EQ_INT(ir_node_macs(mm), 3 * 5 * 4);
  CHECK_EQ_INT(ir_node_param_count(mm, true), 0);
  ir_node *c = tb_input("c", IR_F32, "batch, 4");
  ir_node *d = tb_input("d", IR_F32, "2, 4, 6");
  CHECK_SHAPE(tb_binary(IR_OP_MATMUL, "mm2", c, b), "[batch, 5]");
  ir_node *e = tb_input("e", IR_F32, "batch, 1, 3, 4");
  CHECK_SHAPE(tb_binary(IR_OP_MATMUL, "mm3", e, d), "[batch, 2, 3, 6]");
}

TEST(test_norms_and_activations) {
  tb_reset();
  ir_node *x = tb_input("x", IR_F32, "batch, 64, 8, 8");
  ir_node *bn = tb_unary(IR_OP_BATCHNORM, "bn", x);
  CHECK_SHAPE(bn, "[batch, 64, 8, 8]");
  CHECK_EQ_INT(ir_node_param_count(bn, true), 128);
  CHECK_EQ_INT(ir_node_param_count(bn, false), 128);
  CHECK_EQ_INT(bn->n_params, 4);
  static const char *const roles[] = {"weight", "bias", "running_mean",
                                      "running_var"};
  static const ir_init inits[] = {IR_INIT_ONES, IR_INIT_ZEROS, IR_INIT_ZEROS,
                                  IR_INIT_ONES};
  for (int i = 0; i < 4 && i < bn->n_params; i++) {
    CHECK(strcmp(bn->params[i].role, roles[i]) == 0);
    CHECK_EQ_INT(bn->params[i].init, inits[i]);
    CHECK(bn->params[i].trainable == (i < 2));
  }
  CHECK(strcmp(bn->params[2].name, "bn.running_mean") == 0);
  ir_node *bn2 = tb_node(IR_OP_BATCHNORM, "bn2", x, NULL, NULL);
  tb_int(bn2, "affine", 0);
  tb_sym(bn2, "mode", "eval");
  CHECK(tb_finish(bn2) != NULL);
  CHECK_EQ_INT(ir_node_param_count(bn2, true), 0);
  CHECK_EQ_INT(ir_node_param_count(bn2, false), 128);
  ir_node *v = tb_input("v", IR_F32, "batch, 10");
  CHECK_SHAPE(tb_unary(IR_OP_BATCHNORM, "bn1d", v), "[batch, 10]");

  ir_node *t = tb_input("t", IR_F32, "batch, 10, 32");
  ir_node *ln = tb_unary(IR_OP_LAYERNORM, "ln", t);
  CHECK_SHAPE(ln, "[batch, 10, 32]");
  CHECK_EQ_INT(ir_node_param_count(ln, true), 64);

  static const ir_op acts[] = {IR_OP_RELU,    IR_OP_LEAKY_RELU, IR_OP_ELU,
                               IR_OP_GELU,    IR_OP_SIGMOID,    IR_OP_TANH,
                               IR_OP_DROPOUT, IR_OP_SOFTMAX};
  for (size_t i = 0; i < ARRAY_LEN(acts); i++) {
    char name[32];
    snprintf(name, sizeof name, "act%zu", i);
    ir_node *a = tb_unary(acts[i], arena_strdup(&tb_arena, name), x);
    CHECK_SHAPE(a, "[batch, 64, 8, 8]");
    CHECK(a && a->n_params == 0 && ir_node_flops(a) == 64 * 8 * 8);
  }
  ir_node *pr = tb_unary(IR_OP_PRELU, "pr", x);
  CHECK_SHAPE(pr, "[batch, 64, 8, 8]");
  CHECK(pr && pr->n_params == 1 && pr->params[0].shape.dim[0] == 64);
  CHECK(pr && pr->params[0].init == IR_INIT_CONST &&
        pr->params[0].init_value == 0.25);
  ir_node *pr1 = tb_node(IR_OP_PRELU, "pr1", x, NULL, NULL);
  tb_int(pr1, "shared", 1);
  CHECK(tb_finish(pr1) && ir_node_param_count(pr1, true) == 1);
  ir_node *mo = tb_node(IR_OP_MAXOUT, "mo", x, NULL, NULL);
  tb_int(mo, "pieces", 4);
  CHECK_SHAPE(tb_finish(mo), "[batch, 16, 8, 8]");
  ir_node *sm = tb_node(IR_OP_SOFTMAX, "sm", v, NULL, NULL);
  tb_int(sm, "axis", 1);
  CHECK_SHAPE(tb_finish(sm), "[batch, 10]");
}

TEST(test_tensor_ops) {
  tb_reset();
  ir_node *x = tb_input("x", IR_F32, "batch, 64, 8, 8");
  ir_node *ch = tb_input("ch", IR_F32, "64, 1, 1");
  ir_node *one = tb_input("one", IR_F32, "1");
  CHECK_SHAPE(tb_binary(IR_OP_ADD, "add", x, ch), "[batch, 64, 8, 8]");
  CHECK_SHAPE(tb_binary(IR_OP_MUL, "mul", one, x), "[batch, 64, 8, 8]");
  CHECK_SHAPE(tb_binary(IR_OP_ADD, "add2", ch, one), "[64, 1, 1]");

  ir_node *y = tb_input("y", IR_F32, "batch, 3, 8, 8");
  ir_node *cat = tb_binary(IR_OP_CONCAT, "cat", x, y);
  CHECK_SHAPE(cat, "[batch, 67, 8, 8]");
  ir_node *in3[] = {x, y, x};
  ir_node *cat3 = ir_node_new(&tb_g, IR_OP_CONCAT, "cat3", tb_loc, in3, 3);
  CHECK_SHAPE(tb_finish(cat3), "[batch, 131, 8, 8]");
  ir_node *w = tb_input("w", IR_F32, "batch, 64, 8, 5");
  ir_node *catw = tb_node(IR_OP_CONCAT, "catw", x, w, NULL);
  tb_int(catw, "axis", -1);
  CHECK_SHAPE(tb_finish(catw), "[batch, 64, 8, 13]");

  CHECK_SHAPE(tb_unary(IR_OP_FLATTEN, "flat", x), "[batch, 4096]");
  ir_node *f2 = tb_node(IR_OP_FLATTEN, "flat2", x, NULL, NULL);
  tb_int(f2, "start", 2);
  CHECK_SHAPE(tb_finish(f2), "[batch, 64, 64]");
  ir_node *v = tb_input("v", IR_F32, "batch");
  ir_node *f3 = tb_node(IR_OP_FLATTEN, "flat3", v, NULL, NULL);
  tb_int(f3, "start", 0);
  CHECK_SHAPE(tb_finish(f3), "[batch]"); /* nothing to merge */

  ir_node *img = tb_input("img", IR_F32, "batch, 784");
  ir_node *r1 = tb_node(IR_OP_RESHAPE, "r1", img, NULL, NULL);
  tb_ints(r1, "shape", "batch, 1, 28, 28");
  CHECK_SHAPE(tb_finish(r1), "[batch, 1, 28, 28]");
  ir_node *r2 = tb_node(IR_OP_RESHAPE, "r2", img, NULL, NULL);
  tb_ints(r2, "shape", "batch, 16, -1");
  CHECK_SHAPE(tb_finish(r2), "[batch, 16, 49]");
  ir_node *fix = tb_input("fix", IR_I32, "6, 4");
  ir_node *r3 = tb_node(IR_OP_RESHAPE, "r3", fix, NULL, NULL);
  tb_ints(r3, "shape", "-1, 8");
  CHECK_SHAPE(tb_finish(r3), "[3, 8]");
  CHECK(r3->dtype == IR_I32); /* reshape moves any dtype */
  ir_node *r4 = tb_node(IR_OP_RESHAPE, "r4", one, NULL, NULL);
  tb_ints(r4, "shape", "");
  CHECK_SHAPE(tb_finish(r4), "[]");
}

TEST(test_losses) {
  tb_reset();
  ir_node *logits = tb_input("logits", IR_F32, "batch, 10");
  ir_node *label = tb_input("label", IR_I32, "batch");
  ir_node *ce = tb_binary(IR_OP_CROSS_ENTROPY, "loss", logits, label);
  CHECK_SHAPE(ce, "[]");
  CHECK(ce && ce->dtype == IR_F32 && ir_op_table[ce->op].is_loss);
  CHECK_EQ_INT(ir_node_flops(ce), 10); /* its logits, per example */
  ir_node *l64 = tb_input("l64", IR_I64, "batch");
  ir_node *ce2 = tb_node(IR_OP_CROSS_ENTROPY, "loss2", logits, l64, NULL);
  tb_float(ce2, "smoothing", 0.1);
  tb_sym(ce2, "reduction", "sum");
  CHECK_SHAPE(tb_finish(ce2), "[]");
  ir_node *t = tb_input("target", IR_F32, "batch, 10");
  CHECK_SHAPE(tb_binary(IR_OP_MSE, "mse", logits, t), "[]");
}

/* torchvision's ResNet-18 block by block: the counts must match the
 * published 11,689,512 parameters, and the MACs those of
 * models/resnet18.kiln (convolutions and the linear layer). */
static ir_node *bn_relu(const char *prefix, const char *bn, ir_node *x,
                        bool relu) {
  ir_node *b = tb_unary(IR_OP_BATCHNORM,
                        arena_printf(&tb_arena, "%s.%s", prefix, bn), x);
  if (!relu)
    return b;
  return tb_unary(IR_OP_RELU, arena_printf(&tb_arena, "%s.%s.relu", prefix, bn),
                  b);
}

static ir_node *basic(const char *p, ir_node *x, int64_t ch, int64_t stride) {
  ir_node *c1 = tb_conv(arena_printf(&tb_arena, "%s.conv1", p), x, ch, 3,
                        stride, 1, false);
  ir_node *a1 = bn_relu(p, "bn1", c1, true);
  ir_node *c2 =
      tb_conv(arena_printf(&tb_arena, "%s.conv2", p), a1, ch, 3, 1, 1, false);
  ir_node *b2 = bn_relu(p, "bn2", c2, false);
  ir_node *sc = x;
  if (stride != 1) {
    ir_node *d = tb_conv(arena_printf(&tb_arena, "%s.downsample.0", p), x, ch,
                         1, stride, 0, false);
    sc = bn_relu(p, "downsample.1", d, false);
  }
  ir_node *sum =
      tb_binary(IR_OP_ADD, arena_printf(&tb_arena, "%s.sum", p), b2, sc);
  return tb_unary(IR_OP_RELU, arena_printf(&tb_arena, "%s.out", p), sum);
}

TEST(test_resnet18_figures) {
  tb_reset();
  ir_node *x = tb_input("image", IR_F32, "batch, 3, 224, 224");
  x = bn_relu("stem", "bn1", tb_conv("conv1", x, 64, 7, 2, 3, false), true);
  ir_node *pool = tb_node(IR_OP_MAXPOOL, "maxpool", x, NULL, NULL);
  tb_pair(pool, "kernel", 3, 3);
  tb_pair(pool, "stride", 2, 2);
  tb_pair(pool, "padding", 1, 1);
  x = tb_finish(pool);
  static const int64_t ch[] = {64, 128, 256, 512};
  for (int l = 0; l < 4; l++) {
    x = basic(arena_printf(&tb_arena, "layer%d.0", l + 1), x, ch[l], l ? 2 : 1);
    x = basic(arena_printf(&tb_arena, "layer%d.1", l + 1), x, ch[l], 1);
  }
  CHECK_SHAPE(x, "[batch, 512, 7, 7]");
  x = tb_unary(IR_OP_GLOBAL_AVGPOOL, "avgpool", x);
  ir_node *fc = tb_node(IR_OP_LINEAR, "fc", x, NULL, NULL);
  tb_int(fc, "out", 1000);
  CHECK_SHAPE(tb_finish(fc), "[batch, 1000]");
  int64_t params = 0, buffers = 0, macs = 0;
  for (int i = 0; i < tb_g.n_nodes; i++) {
    params += ir_node_param_count(tb_g.nodes[i], true);
    buffers += ir_node_param_count(tb_g.nodes[i], false);
    macs += ir_node_macs(tb_g.nodes[i]);
  }
  CHECK_EQ_INT(params, 11689512);
  CHECK_EQ_INT(buffers, 9600); /* 2 x 4,800 BatchNorm channels */
  CHECK_EQ_INT(macs, 1814073344);
  CHECK_EQ_INT(ir_verify(&tb_g, &tb_err), KILN_OK);
}

TEST(test_config_defaults) {
  ir_train_cfg t;
  ir_train_cfg_default(&t);
  CHECK(t.optim.kind == IR_OPTIM_SGD && t.optim.lr == 0.01);
  CHECK(t.optim.momentum == 0 && !t.optim.nesterov);
  CHECK(t.optim.beta1 == 0.9 && t.optim.beta2 == 0.999 && t.optim.eps == 1e-8);
  CHECK(t.schedule.kind == IR_SCHED_CONSTANT && t.schedule.n_milestones == 0);
  CHECK_EQ_INT(t.batch, 64);
  CHECK_EQ_INT(t.epochs, 10);
  CHECK_EQ_INT(t.base_batch, 0);
  CHECK(t.weight_decay == 0 && t.weight_decay_mode == IR_WD_L2);
  CHECK(t.clip_grad_norm == 0 && t.ema == 0 && t.seed == 0);
  CHECK(t.n_freeze == 0 && !t.finetune_from && !t.loss);
  ir_data_cfg d;
  ir_data_cfg_default(&d);
  CHECK(d.format == IR_DATA_IDX && d.shuffle && d.validation == 0.1);
  CHECK(d.mean == 0 && d.std == 1 && d.n_augment == 0);
  CHECK(strcmp(d.train_images, "/usr/share/datasets/fashion-mnist/"
                               "train-images-idx3-ubyte.gz") == 0);
  CHECK(strcmp(d.test_labels, "/usr/share/datasets/fashion-mnist/"
                              "t10k-labels-idx1-ubyte.gz") == 0);
  tb_reset();
  CHECK(tb_g.placement.data_parallel == 1 && tb_g.placement.stages == 1);
  CHECK(tb_g.train.batch == 64 && tb_g.data.std == 1);
}

TEST(test_op_table_lookup) {
  CHECK_EQ_INT(ir_op_find("conv2d"), IR_OP_CONV2D);
  CHECK_EQ_INT(ir_op_find("cross_entropy"), IR_OP_CROSS_ENTROPY);
  CHECK_EQ_INT(ir_op_find("conv2"), IR_OP_COUNT);
  CHECK_EQ_INT(ir_op_attr_count(IR_OP_CONV2D), 8);
  CHECK_EQ_INT(ir_op_attr_count(IR_OP_RELU), 0);
  CHECK_EQ_INT(ir_op_attr_index(IR_OP_CONV2D, "groups"), 5);
  CHECK_EQ_INT(ir_op_attr_index(IR_OP_CONV2D, "group"), -1);
  for (int op = 0; op < IR_OP_COUNT; op++) {
    const ir_op_info *o = &ir_op_table[op];
    CHECK(o->name && o->infer && o->doc && o->input_names);
    CHECK(o->max_inputs < 0 || o->max_inputs >= o->min_inputs);
    CHECK_EQ_INT(ir_op_find(o->name), op);
  }
  CHECK(ir_op_table[IR_OP_CONV2D].fuse == IR_FUSE_OUT_ELEMWISE);
  CHECK(ir_op_table[IR_OP_RELU].fuse == IR_FUSE_ELEMWISE);
  CHECK(ir_op_table[IR_OP_ADD].fuse == IR_FUSE_BROADCAST);
  CHECK(ir_op_table[IR_OP_RESHAPE].fuse == IR_FUSE_INJECTIVE);
}

/* The op table must match the Ops table of docs/model-format.md: the same
 * ops, the same attribute names, the same required flags, and the same
 * numeric and boolean defaults. */
static void check_doc_row(char *ops_cell, char *attrs_cell, int *seen) {
  for (char *p = ops_cell; (p = strchr(p, '`'));) {
    char *end = strchr(p + 1, '`');
    *end = '\0';
    ir_op op = ir_op_find(p + 1);
    if (op == IR_OP_COUNT) {
      fprintf(stderr, "doc op '%s' is not in ir_op_table\n", p + 1);
      test_failures_++;
      return;
    }
    seen[op] = 1;
    int documented = 0;
    for (char *q = attrs_cell; (q = strchr(q, '`'));) {
      char *qe = strchr(q + 1, '`');
      if (strncmp(qe + 1, " (", 2) != 0) { /* a value, not an attribute */
        q = qe + 1;
        continue;
      }
      char name[64];
      snprintf(name, sizeof name, "%.*s", (int)(qe - q - 1), q + 1);
      int k = ir_op_attr_index(op, name);
      if (k < 0) {
        fprintf(stderr, "doc attr %s.%s is not in the table\n", p + 1, name);
        test_failures_++;
      } else {
        const ir_attr_spec *s = &ir_op_table[op].attrs[k];
        const char *def = qe + 3;
        documented++;
        CHECK(s->required == (strncmp(def, "required", 8) == 0));
        char *numend;
        double v = strtod(def, &numend);
        if (numend != def && *numend == ')')
          CHECK(s->type == IR_ATTR_FLOAT ? s->def_float == v
                                         : s->def_int == (int64_t)v);
        if (strncmp(def, "true)", 5) == 0 || strncmp(def, "false", 5) == 0)
          CHECK(s->type == IR_ATTR_BOOL && s->def_int == (def[0] == 't'));
        if (s->type == IR_ATTR_SYMBOL)
          CHECK(strncmp(def, s->def_sym, strlen(s->def_sym)) == 0);
      }
      q = qe + 1;
    }
    if (documented != ir_op_attr_count(op)) {
      fprintf(stderr, "op %s: %d attributes documented, %d in the table\n",
              p + 1, documented, ir_op_attr_count(op));
      test_failures_++;
    }
    *end = '`';
    p = end + 1;
  }
}

TEST(test_op_table_matches_doc) {
  FILE *f = fopen("docs/model-format.md", "r");
  CHECK(f != NULL);
  if (!f)
    return;
  char line[1024];
  int seen[IR_OP_COUNT] = {0}, in_ops = 0;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "## ", 3) == 0)
      in_ops = strncmp(line, "## Ops", 6) == 0;
    if (!in_ops || strncmp(line, "| `", 3) != 0)
      continue;
    /* | ops | inputs | attributes | parameters | */
    char *cell[5] = {0};
    int n = 0;
    for (char *p = line; n < 5 && (p = strchr(p, '|')); p++)
      cell[n++] = p + 1;
    CHECK(n == 5);
    if (n < 5)
      continue;
    cell[1][-1] = cell[2][-1] = cell[3][-1] = cell[4][-1] = '\0';
    check_doc_row(cell[0], cell[2], seen);
  }
  fclose(f);
  for (int op = 1; op < IR_OP_COUNT; op++)
    if (!seen[op] && !ir_op_table[op].internal) {
      fprintf(stderr, "op %s is not documented\n", ir_op_table[op].name);
      test_failures_++;
    }
}

int main(void) {
  RUN(test_dtypes_and_shapes);
  RUN(test_conv2d_shapes);
  RUN(test_pool_shapes);
  RUN(test_linear_and_matmul);
  RUN(test_norms_and_activations);
  RUN(test_tensor_ops);
  RUN(test_losses);
  RUN(test_resnet18_figures);
  RUN(test_config_defaults);
  RUN(test_op_table_lookup);
  RUN(test_op_table_matches_doc);
  arena_free(&tb_arena);
  return TEST_SUMMARY();
}
