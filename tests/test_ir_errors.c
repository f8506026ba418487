/* test_ir_errors.c — what the IR says when a graph is wrong: every shape
 * rule's messages (both layers, both shapes), attribute checks, arity,
 * duplicate names, the verifier on a good and on corrupted graphs; and the
 * text, Graphviz and summary printers. */
#include "ir_build.h"

#include <stdlib.h>

TEST(test_broadcast_and_conv_errors) {
  tb_reset();
  ir_node *bn2 = tb_input("bn2", IR_F32, "batch, 64, 8, 8");
  ir_node *x = tb_input("x", IR_F32, "batch, 32, 16, 16");
  CHECK_ERROR(tb_binary(IR_OP_ADD, "sum", bn2, x), KILN_ERR_SHAPE,
              "error: layer 'sum' (add): cannot broadcast input 'bn2' "
              "[batch, 64, 8, 8] with input 'x' [batch, 32, 16, 16]\n");
  ir_node *lead = tb_input("lead", IR_F32, "3, 1, 1, 1, 1");
  CHECK_ERROR(tb_binary(IR_OP_MUL, "m", bn2, lead), KILN_ERR_SHAPE,
              "batch away from the first dimension");

  ir_node *flat = tb_input("flat", IR_F32, "batch, 784");
  CHECK_ERROR(tb_conv("c1", flat, 6, 5, 1, 0, true), KILN_ERR_SHAPE,
              "error: layer 'c1' (conv2d) needs a 4-D input [N, C, H, W], "
              "but input 'flat' is [batch, 784]\n");
  ir_node *p2 = tb_input("p2", IR_F32, "batch, 16, 3, 3");
  CHECK_ERROR(tb_conv("c3", p2, 120, 5, 1, 0, true), KILN_ERR_SHAPE,
              "layer 'c3' (conv2d): kernel 5x5 does not fit input 'p2' "
              "[batch, 16, 3, 3] with padding 0");
  ir_node *d = tb_node(IR_OP_CONV2D, "dil", p2, NULL, NULL);
  tb_int(d, "out", 4);
  tb_pair(d, "kernel", 3, 3);
  tb_pair(d, "dilation", 2, 2);
  CHECK_ERROR(tb_finish(d), KILN_ERR_SHAPE,
              "kernel 3x3 with dilation 2 (spanning 5x5) does not fit input "
              "'p2' [batch, 16, 3, 3] with padding 0");
  /* with padding 1 the same dilated kernel fits exactly: (3+2-5)/1+1 */
  d = tb_node(IR_OP_CONV2D, "dil1", p2, NULL, NULL);
  tb_int(d, "out", 4);
  tb_pair(d, "kernel", 3, 3);
  tb_pair(d, "padding", 1, 1);
  tb_pair(d, "dilation", 2, 2);
  CHECK_SHAPE(tb_finish(d), "[batch, 4, 1, 1]");
  ir_node *im = tb_input("im", IR_F32, "batch, 6, 28, 28");
  ir_node *g = tb_node(IR_OP_CONV2D, "grp", im, NULL, NULL);
  tb_int(g, "out", 8);
  tb_pair(g, "kernel", 3, 3);
  tb_int(g, "groups", 4);
  CHECK_ERROR(tb_finish(g), KILN_ERR_SHAPE,
              "layer 'grp' (conv2d): input 'im' [batch, 6, 28, 28] has 6 "
              "channels, which groups=4 does not divide");
  ir_node *g2 = tb_node(IR_OP_CONV2D, "grp2", im, NULL, NULL);
  tb_int(g2, "out", 9);
  tb_pair(g2, "kernel", 3, 3);
  tb_int(g2, "groups", 2);
  CHECK_ERROR(tb_finish(g2), KILN_ERR_TYPE,
              "out=9 is not divisible by groups=2");
  ir_node *s = tb_node(IR_OP_CONV2D, "neg", im, NULL, NULL);
  tb_int(s, "out", 8);
  tb_pair(s, "kernel", 3, 3);
  tb_pair(s, "stride", -1, 1);
  CHECK_ERROR(tb_finish(s), KILN_ERR_TYPE,
              "layer 'neg' (conv2d): stride must be positive, got (-1, 1)");
  ir_node *o = tb_node(IR_OP_CONV2D, "zero", im, NULL, NULL);
  tb_int(o, "out", 0);
  tb_pair(o, "kernel", 3, 3);
  CHECK_ERROR(tb_finish(o), KILN_ERR_TYPE, "out must be positive, got 0");
  /* Absurd sizes are refused before any figure can overflow. */
  ir_node *big = tb_input("big", IR_F32, "batch, 2147483647, 1, 1");
  ir_node *huge = tb_node(IR_OP_CONV2D, "huge", big, NULL, NULL);
  tb_int(huge, "out", 2147483647);
  tb_pair(huge, "kernel", 1, 1);
  CHECK_ERROR(tb_finish(huge), KILN_ERR_SHAPE,
              "huge.weight [2147483647, 2147483647, 1, 1] has more than");
  ir_node *lab = tb_input("lab", IR_I32, "batch, 1, 28, 28");
  CHECK_ERROR(tb_conv("ci", lab, 4, 3, 1, 1, true), KILN_ERR_TYPE,
              "layer 'ci' (conv2d): needs a floating-point input, but input "
              "'lab' i32[batch, 1, 28, 28] is not");
}

TEST(test_other_shape_errors) {
  tb_reset();
  ir_node *logits = tb_input("fc", IR_F32, "batch, 10");
  ir_node *label = tb_input("y", IR_I32, "batch");
  ir_node *flabel = tb_input("fy", IR_F32, "batch");
  ir_node *fixed = tb_input("y32", IR_I32, "32");
  ir_node *l3 = tb_input("l3", IR_F32, "batch, 10, 3");
  CHECK_ERROR(tb_binary(IR_OP_CROSS_ENTROPY, "loss", l3, label), KILN_ERR_SHAPE,
              "layer 'loss' (cross_entropy) needs 2-D logits [N, K], but "
              "input 'l3' is [batch, 10, 3]");
  CHECK_ERROR(tb_binary(IR_OP_CROSS_ENTROPY, "loss", logits, flabel),
              KILN_ERR_TYPE,
              "needs 1-D integer labels [N], but input 'fy' is f32[batch]");
  CHECK_ERROR(tb_binary(IR_OP_CROSS_ENTROPY, "loss", logits, fixed),
              KILN_ERR_SHAPE,
              "logits 'fc' [batch, 10] and labels 'y32' [32] have different "
              "batch sizes");
  CHECK_ERROR(tb_binary(IR_OP_CROSS_ENTROPY, "loss", label, label),
              KILN_ERR_SHAPE, "needs 2-D logits");
  ir_node *p = tb_input("p", IR_F32, "batch, 1");
  CHECK_ERROR(tb_binary(IR_OP_MSE, "mse", p, flabel), KILN_ERR_SHAPE,
              "layer 'mse' (mse): prediction 'p' [batch, 1] and target 'fy' "
              "[batch] have different shapes");
  ir_node *a = tb_input("a", IR_F32, "batch, 3, 4");
  ir_node *b = tb_input("b", IR_F32, "5, 6");
  CHECK_ERROR(tb_binary(IR_OP_MATMUL, "mm", a, b), KILN_ERR_SHAPE,
              "layer 'mm' (matmul): inner dimensions differ: input 'a' "
              "[batch, 3, 4] has 4 columns, but input 'b' [5, 6] has 5 rows");
  ir_node *c1 = tb_input("c1", IR_F32, "batch, 4, 8, 8");
  ir_node *c2 = tb_input("c2", IR_F32, "batch, 3, 16, 16");
  CHECK_ERROR(tb_binary(IR_OP_CONCAT, "cat", c1, c2), KILN_ERR_SHAPE,
              "layer 'cat' (concat): input 'c2' [batch, 3, 16, 16] does not "
              "match input 'c1' [batch, 4, 8, 8] outside axis 1");
  ir_node *cat0 = tb_node(IR_OP_CONCAT, "cat0", c1, c1, NULL);
  tb_int(cat0, "axis", 0);
  CHECK_ERROR(tb_finish(cat0), KILN_ERR_SHAPE,
              "cannot concatenate along the batch dimension");
  ir_node *mo = tb_node(IR_OP_MAXOUT, "mo", c2, NULL, NULL);
  tb_int(mo, "pieces", 2);
  CHECK_ERROR(tb_finish(mo), KILN_ERR_SHAPE,
              "input 'c2' [batch, 3, 16, 16] has 3 channels, which pieces=2 "
              "does not divide");
  ir_node *f = tb_node(IR_OP_FLATTEN, "f", c1, NULL, NULL);
  tb_int(f, "start", 0);
  CHECK_ERROR(tb_finish(f), KILN_ERR_SHAPE,
              "start=0 would merge the batch dimension of input 'c1'");
  ir_node *f9 = tb_node(IR_OP_FLATTEN, "f9", c1, NULL, NULL);
  tb_int(f9, "start", 9);
  CHECK_ERROR(tb_finish(f9), KILN_ERR_SHAPE,
              "start=9 is out of range for input 'c1' [batch, 4, 8, 8]");
  ir_node *pool = tb_node(IR_OP_MAXPOOL, "pool", c1, NULL, NULL);
  tb_pair(pool, "kernel", 3, 3);
  tb_pair(pool, "padding", 2, 2);
  CHECK_ERROR(tb_finish(pool), KILN_ERR_TYPE,
              "padding 2 is more than half of kernel 3x3");
  ir_node *gap = tb_unary(IR_OP_GLOBAL_AVGPOOL, "gap", logits);
  CHECK_ERROR(gap, KILN_ERR_SHAPE,
              "layer 'gap' (global_avgpool) needs a 4-D input [N, C, H, W], "
              "but input 'fc' is [batch, 10]");
  CHECK_ERROR(tb_unary(IR_OP_RELU, "r", label), KILN_ERR_TYPE,
              "layer 'r' (relu): needs a floating-point input, but input 'y' "
              "i32[batch] is not");
  CHECK_ERROR(tb_unary(IR_OP_LINEAR, "lin", logits), KILN_ERR_TYPE,
              "layer 'lin' (linear): missing required attribute 'out'");
}

TEST(test_reshape_errors) {
  tb_reset();
  ir_node *x = tb_input("x", IR_F32, "batch, 784");
  struct {
    const char *shape, *msg;
    kiln_status st;
  } cases[] = {
      {"batch, 28, 27",
       "cannot reshape input 'x' [batch, 784] to [batch, 28, 27]: 784 "
       "elements per example into 756",
       KILN_ERR_SHAPE},
      {"batch, -1, 5", "784 elements per example are not divisible by 5",
       KILN_ERR_SHAPE},
      {"batch, -1, -1", "shape may contain only one -1", KILN_ERR_TYPE},
      {"-1, 28", "the batch must stay the first dimension", KILN_ERR_SHAPE},
      {"28, batch, 28", "'batch' may only be the first dimension",
       KILN_ERR_SHAPE},
      {"batch, 0, 784", "shape entries must be positive", KILN_ERR_TYPE},
      {"batch, -3, 784", "shape entries must be positive", KILN_ERR_TYPE},
  };
  for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
    ir_node *r = tb_node(IR_OP_RESHAPE, "r", x, NULL, NULL);
    tb_ints(r, "shape", cases[i].shape);
    CHECK_ERROR(tb_finish(r), cases[i].st, cases[i].msg);
  }
  ir_node *fx = tb_input("fx", IR_F32, "6, 4");
  ir_node *r = tb_node(IR_OP_RESHAPE, "r", fx, NULL, NULL);
  tb_ints(r, "shape", "batch, 24");
  CHECK_ERROR(tb_finish(r), KILN_ERR_SHAPE, "the input has no batch dimension");
}

TEST(test_attribute_checks) {
  tb_reset();
  ir_node *x = tb_input("x", IR_F32, "batch, 8");
  ir_node *d = tb_node(IR_OP_DROPOUT, "drop", x, NULL, NULL);
  tb_float(d, "p", 1.0);
  CHECK_ERROR(tb_finish(d), KILN_ERR_TYPE,
              "layer 'drop' (dropout): p must be in [0, 1), got 1");
  d = tb_node(IR_OP_DROPOUT, "drop", x, NULL, NULL);
  tb_float(d, "p", NAN);
  CHECK_ERROR(tb_finish(d), KILN_ERR_TYPE, "p must be in [0, 1)");
  ir_node *bn = tb_node(IR_OP_BATCHNORM, "bn", x, NULL, NULL);
  tb_float(bn, "eps", -1e-5);
  CHECK_ERROR(tb_finish(bn), KILN_ERR_TYPE,
              "eps must be greater than 0, got -1e-05");
  bn = tb_node(IR_OP_BATCHNORM, "bn", x, NULL, NULL);
  tb_sym(bn, "mode", "training");
  CHECK_ERROR(tb_finish(bn), KILN_ERR_TYPE,
              "attribute 'mode' must be one of train, eval; got 'training'");
  ir_node *lin = tb_node(IR_OP_LINEAR, "fc", x, NULL, NULL);
  tb_int(lin, "out", -3);
  CHECK_ERROR(tb_finish(lin), KILN_ERR_TYPE,
              "layer 'fc' (linear): out must be positive, got -3");
  ir_node *sm = tb_node(IR_OP_SOFTMAX, "sm", x, NULL, NULL);
  tb_int(sm, "axis", 2);
  CHECK_ERROR(tb_finish(sm), KILN_ERR_SHAPE,
              "axis=2 is out of range for input 'x' [batch, 8]");
  /* arity */
  CHECK_ERROR(tb_unary(IR_OP_ADD, "one", x), KILN_ERR_TYPE,
              "layer 'one' (add): takes 2 inputs (a, b), but 1 was given");
  CHECK_ERROR(tb_finish(tb_node(IR_OP_RELU, "two", x, x, NULL)), KILN_ERR_TYPE,
              "takes 1 input (x), but 2 were given");
  CHECK_ERROR(tb_unary(IR_OP_CONCAT, "cat", x), KILN_ERR_TYPE,
              "takes at least 2 inputs (x1, x2, ...), but 1 was given");
  /* inputs: batch only first, sizes positive */
  CHECK_ERROR(tb_input("bad", IR_F32, "4, batch"), KILN_ERR_SHAPE,
              "'batch' may only be the first dimension");
  CHECK_ERROR(tb_input("bad", IR_F32, "batch, 0"), KILN_ERR_TYPE,
              "dimension 1 is 0");
}

TEST(test_duplicate_name_and_location) {
  tb_reset();
  const char *text = "input x: f32[batch, 8]\n"
                     "x = relu(x)\n";
  src_file f = {"dup.kiln", text, strlen(text)};
  ir_shape s = {.rank = 2, .dim = {IR_DIM_BATCH, 8}};
  ir_node *x =
      ir_graph_add_input(&tb_g, "x", (kiln_loc){&f, 1, 7}, IR_F32, &s, &tb_err);
  CHECK(x != NULL);
  ir_node *r = ir_node_new(&tb_g, IR_OP_RELU, "x", (kiln_loc){&f, 2, 1}, &x, 1);
  CHECK_EQ_INT(ir_node_finish(&tb_g, r, &tb_err), KILN_ERR_NAME);
  CHECK_STR_CONTAINS(tb_err.message,
                     "dup.kiln:2:1: error: duplicate name 'x': it already "
                     "names an input\nx = relu(x)\n^\n");
  CHECK_STR_CONTAINS(tb_err.message, "dup.kiln:1:7: note: 'x' is first "
                                     "defined here");
  CHECK_EQ_INT(tb_g.n_nodes, 1);
  CHECK(ir_graph_find(&tb_g, "x") == x);
  CHECK(ir_graph_find(&tb_g, "y") == NULL);
  /* errors inside shape rules are located at the layer's statement */
  ir_node *l =
      ir_node_new(&tb_g, IR_OP_CONV2D, "c", (kiln_loc){&f, 2, 5}, &x, 1);
  tb_int(l, "out", 4);
  tb_pair(l, "kernel", 3, 3);
  CHECK_EQ_INT(ir_node_finish(&tb_g, l, &tb_err), KILN_ERR_SHAPE);
  CHECK_STR_CONTAINS(tb_err.message, "dup.kiln:2:5: error: layer 'c' (conv2d)"
                                     " needs a 4-D input");
}

/* A small classifier to verify and print. */
static void build_small(void) {
  tb_reset();
  ir_node *img = tb_input("image", IR_F32, "batch, 1, 28, 28");
  ir_node *label = tb_input("label", IR_I32, "batch");
  ir_node *c1 = tb_node(IR_OP_CONV2D, "c1", img, NULL, NULL);
  tb_int(c1, "out", 6);
  tb_pair(c1, "kernel", 5, 5);
  tb_pair(c1, "padding", 2, 2);
  tb_pair(c1, "stride", 1, 1); /* set, but the default: not printed */
  tb_finish(c1);
  ir_node *bn = tb_unary(IR_OP_BATCHNORM, "b1", c1);
  ir_node *a = tb_unary(IR_OP_RELU, "a1", bn);
  ir_node *d = tb_node(IR_OP_DROPOUT, "d1", a, NULL, NULL);
  tb_float(d, "p", 0.1);
  tb_finish(d);
  ir_node *fl = tb_unary(IR_OP_FLATTEN, "flat", d);
  ir_node *fc = tb_node(IR_OP_LINEAR, "fc", fl, NULL, NULL);
  tb_int(fc, "out", 10);
  tb_finish(fc);
  ir_node *loss = tb_binary(IR_OP_CROSS_ENTROPY, "loss", fc, label);
  ARENA_PUSH(&tb_arena, tb_g.outputs, tb_g.n_outputs, tb_g.cap_outputs, fc);
  tb_g.loss = loss;
}

/* Runs a printer into a string (arena-owned). */
static const char *capture(void (*print)(const ir_graph *, FILE *)) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  print(&tb_g, f);
  fclose(f);
  const char *s = arena_strdup(&tb_arena, buf);
  free(buf);
  return s;
}

TEST(test_verify) {
  build_small();
  CHECK_EQ_INT(tb_g.n_nodes, 9);
  CHECK_EQ_INT(ir_verify(&tb_g, &tb_err), KILN_OK);

  /* A pass that reorders nodes without renumbering them. */
  ir_node *tmp = tb_g.nodes[2];
  tb_g.nodes[2] = tb_g.nodes[3];
  tb_g.nodes[3] = tmp;
  CHECK_EQ_INT(ir_verify(&tb_g, &tb_err), KILN_ERR_INTERNAL);
  CHECK_STR_CONTAINS(tb_err.message, "IR verifier: node 3 'b1' (batchnorm): "
                                     "stored at index 2");
  /* ... or renumbers them, so that an input comes later. */
  tb_g.nodes[2]->id = 2;
  tb_g.nodes[3]->id = 3;
  CHECK_EQ_INT(ir_verify(&tb_g, &tb_err), KILN_ERR_INTERNAL);
  CHECK_STR_CONTAINS(tb_err.message,
                     "node 2 'b1' (batchnorm): input 0 is not an earlier node");

  build_small();
  tb_g.loss = tb_g.nodes[7]; /* fc */
  CHECK_EQ_INT(ir_verify(&tb_g, &tb_err), KILN_ERR_INTERNAL);
  CHECK_STR_CONTAINS(tb_err.message, "linear is not a loss op");

  build_small();
  tb_g.nodes[4]->n_inputs = 0; /* relu without input */
  CHECK_EQ_INT(ir_verify(&tb_g, &tb_err), KILN_ERR_INTERNAL);
  CHECK_STR_CONTAINS(tb_err.message, "'a1' (relu): 0 inputs, outside 1..1");

  build_small();
  tb_g.nodes[5]->name = "a1"; /* two nodes named a1 */
  CHECK_EQ_INT(ir_verify(&tb_g, &tb_err), KILN_ERR_INTERNAL);
  CHECK_STR_CONTAINS(tb_err.message, "name is not unique");

  build_small();
  tb_g.nodes[6]->shape.dim[1] = IR_DIM_BATCH;
  CHECK_EQ_INT(ir_verify(&tb_g, &tb_err), KILN_ERR_INTERNAL);
  CHECK_STR_CONTAINS(tb_err.message, "'flat' (flatten): invalid shape");

  build_small();
  tb_g.nodes[3]->stage = 1; /* but there is one stage */
  CHECK_EQ_INT(ir_verify(&tb_g, &tb_err), KILN_ERR_INTERNAL);
  CHECK_STR_CONTAINS(tb_err.message, "'b1' (batchnorm): stage 1 outside 0..0");
  tb_g.placement.stages = 2;
  CHECK_EQ_INT(ir_verify(&tb_g, &tb_err), KILN_OK);
  CHECK_STR_CONTAINS(capture(ir_print), "\nb1 = batchnorm(c1)  "
                                        "# f32[batch, 6, 28, 28], stage 1\n");

  build_small();
  static ir_node stranger;
  tb_g.outputs[0] = &stranger;
  CHECK_EQ_INT(ir_verify(&tb_g, &tb_err), KILN_ERR_INTERNAL);
  CHECK_STR_CONTAINS(tb_err.message, "output 0 is not a node of the graph");
}

TEST(test_print) {
  build_small();
  const char *s = capture(ir_print);
  CHECK_STR_CONTAINS(s, "model t\n\ninput image: f32[batch, 1, 28, 28]\n"
                        "input label: i32[batch]\n");
  CHECK_STR_CONTAINS(s, "\nc1 = conv2d(image, out=6, kernel=(5, 5), "
                        "padding=(2, 2))  # f32[batch, 6, 28, 28]\n");
  CHECK_STR_CONTAINS(s, "\nb1 = batchnorm(c1)  # f32[batch, 6, 28, 28]\n");
  CHECK_STR_CONTAINS(s, "\nd1 = dropout(a1, p=0.1)  # f32[batch, 6, 28, 28]\n");
  CHECK_STR_CONTAINS(s, "\nflat = flatten(d1)  # f32[batch, 4704]\n");
  CHECK_STR_CONTAINS(s, "\nloss = cross_entropy(fc, label)  # f32[]\n");
  CHECK_STR_CONTAINS(s, "\noutput fc\n# loss: loss\n");

  const char *dot = capture(ir_write_dot);
  CHECK_STR_CONTAINS(dot, "digraph \"t\" {\n");
  CHECK_STR_CONTAINS(dot,
                     "  n2 [label=\"c1\\nconv2d\\nf32[batch, 6, 28, 28]\"");
  CHECK_STR_CONTAINS(dot, "  n0 -> n2;\n");
  CHECK_STR_CONTAINS(dot, "  n7 -> n8;\n  n1 -> n8;\n");
  CHECK(s[strlen(s) - 1] == '\n' && strstr(dot, "}\n") != NULL);
  tb_g.name = "a \"quoted\\\" name";
  dot = capture(ir_write_dot);
  CHECK_STR_CONTAINS(dot, "digraph \"a \\\"quoted\\\\\\\" name\" {");
}

TEST(test_summary) {
  build_small();
  const char *s = capture(ir_summary);
  /* c1: 6*1*25 + 6 = 156; b1: 12 (+12 buffers); fc: 4704*10 + 10 */
  CHECK_STR_CONTAINS(s, "Model: t\n");
  CHECK_STR_CONTAINS(s, "Model: t\n"
                        "=========================================="
                        "===============\n"
                        "Layer  Op             Output shape        "
                        "Params     MACs\n"
                        "------------------------------------------"
                        "---------------\n"
                        "image  input          [batch, 1, 28, 28]  "
                        "    --       --\n");
  CHECK_STR_CONTAINS(s, "\nc1     conv2d         [batch, 6, 28, 28]  "
                        "   156  117,600\n"
                        "b1     batchnorm      [batch, 6, 28, 28]  "
                        "    12       --\n");
  CHECK_STR_CONTAINS(s, "\nfc     linear         [batch, 10]         "
                        "47,050   47,040\n"
                        "loss   cross_entropy  []                  "
                        "    --       --\n"
                        "=========================================="
                        "===============\n");
  CHECK_STR_CONTAINS(s, "Total params: 47,218\n");
  CHECK_STR_CONTAINS(s, "Trainable params: 47,218\n");
  CHECK_STR_CONTAINS(s, "Non-trainable (buffers): 12\n");
  /* FLOPs: 2 x 164,640 MACs + bn, relu, dropout 3 x 4,704 + flatten 4,704
   * + loss 10 = 348,106 */
  CHECK_STR_CONTAINS(s, "MACs per example: 164.64 K (multiply-accumulates "
                        "of conv2d/linear/matmul; FLOPs ~= 2 x MACs + "
                        "elementwise: 348.11 K)\n");
  CHECK_STR_CONTAINS(s, "Parameter memory (with buffers): 0.19 MB\n");
  CHECK_STR_CONTAINS(s, "Input size per example: 0.00 MB\n");
  tb_g.train.freeze[tb_g.train.n_freeze++] = "c1";
  s = capture(ir_summary);
  CHECK_STR_CONTAINS(s, "Trainable params: 47,062\nFrozen params: 156\n");
}

int main(void) {
  RUN(test_broadcast_and_conv_errors);
  RUN(test_other_shape_errors);
  RUN(test_reshape_errors);
  RUN(test_attribute_checks);
  RUN(test_duplicate_name_and_location);
  RUN(test_verify);
  RUN(test_print);
  RUN(test_summary);
  arena_free(&tb_arena);
  return TEST_SUMMARY();
}
