/* test_elab.c — elaboration end to end: model texts loaded through
 * kiln_model_load_string, then the graph they give (names, parameters,
 * attributes, stages, configs) or the exact error message and location. */
#include "frontend/load.h"
#include "test.h"

#include <stdlib.h>

static kiln_model *load(const char *text, kiln_error *err) {
  return kiln_model_load_string("t.kiln", text, strlen(text), err);
}

/* Loads `text`, which must load; prints the error otherwise. */
static kiln_model *load_ok(const char *text, int line) {
  kiln_error err;
  kiln_model *m = load(text, &err);
  if (!m) {
    fprintf(stderr, "%s:%d: model failed to load:\n%s", __FILE__, line,
            err.message);
    test_failures_++;
  }
  return m;
}
#define LOAD_OK(text) load_ok(text, __LINE__)

/* `text` must fail with `status` and a message containing `needle`. */
static void expect_error(const char *text, kiln_status status,
                         const char *needle, int line) {
  kiln_error err;
  kiln_model *m = load(text, &err);
  if (m) {
    fprintf(stderr, "%s:%d: loaded, expected an error containing \"%s\"\n",
            __FILE__, line, needle);
    test_failures_++;
    kiln_model_free(m);
    return;
  }
  if (err.status != status || !strstr(err.message, needle)) {
    fprintf(stderr,
            "%s:%d: expected status %s and \"%s\", got status %s:\n%s\n",
            __FILE__, line, kiln_status_name(status), needle,
            kiln_status_name(err.status), err.message);
    test_failures_++;
  }
}
#define EXPECT_ERROR(text, status, needle)                                     \
  expect_error(text, status, needle, __LINE__)

static ir_node *node(const kiln_model *m, const char *name) {
  return m ? ir_graph_find(&m->g, name) : NULL;
}

static const ir_param *param(const kiln_model *m, const char *name) {
  for (int k = 0; m && k < m->g.n_nodes; k++)
    for (int j = 0; j < m->g.nodes[k]->n_params; j++)
      if (strcmp(m->g.nodes[k]->params[j].name, name) == 0)
        return &m->g.nodes[k]->params[j];
  return NULL;
}

static const ir_attr *attr(const ir_node *n, const char *name) {
  int k = n ? ir_op_attr_index(n->op, name) : -1;
  return k >= 0 ? &n->attrs[k] : NULL;
}

/* ---- names and order ---- */

TEST(test_dependency_order) {
  /* The same network forwards and backwards: statements may use names
   * defined later, and every node comes after its inputs. */
  static const char forward[] = "input x: f32[batch, 8]\n"
                                "h = linear(x, out=16)\n"
                                "a = relu(h)\n"
                                "y = linear(a, out=4)\n";
  static const char backward[] = "y = linear(a, out=4)\n"
                                 "a = relu(h)\n"
                                 "h = linear(x, out=16)\n"
                                 "input x: f32[batch, 8]\n";
  kiln_model *f = LOAD_OK(forward), *b = LOAD_OK(backward);
  CHECK(f && b);
  if (f && b) {
    CHECK_EQ_INT(kiln_model_param_count(f), 8 * 16 + 16 + 16 * 4 + 4);
    CHECK_EQ_INT(kiln_model_param_count(b), kiln_model_param_count(f));
    CHECK_EQ_INT(b->g.n_nodes, 4);
    CHECK(node(b, "x")->id < node(b, "h")->id);
    CHECK(node(b, "h")->id < node(b, "a")->id);
    CHECK(node(b, "a")->id < node(b, "y")->id);
    /* No loss: the output is the last layer. */
    CHECK_EQ_INT(b->g.n_outputs, 1);
    CHECK(b->g.outputs[0] == node(b, "y"));
    CHECK(strcmp(kiln_model_name(b), "t") == 0);
  }
  kiln_model_free(f);
  kiln_model_free(b);
}

static const char resnet_text[] =
    "model tiny_resnet\n"
    "input image: f32[batch, 3, 8, 8]\n"
    "input label: i32[batch]\n"
    "block basic(x, channels, stride=1) {\n"
    "  conv1 = conv2d(x, out=channels, kernel=3, stride=stride, padding=1,\n"
    "                 bias=false)\n"
    "  bn1 = batchnorm(conv1)\n"
    "  act1 = relu(bn1)\n"
    "  return relu(add(act1, x))\n"
    "}\n"
    "stem = conv2d(image, out=4, kernel=3, padding=1)\n"
    "layer2 = sequence(stem) {\n"
    "  basic(channels=4) * 2\n"
    "}\n"
    "pool = global_avgpool(layer2)\n"
    "fc = linear(pool, out=10)\n"
    "loss = cross_entropy(fc, label)\n";

TEST(test_block_naming) {
  kiln_model *m = LOAD_OK(resnet_text);
  if (!m)
    return;
  CHECK(strcmp(kiln_model_name(m), "tiny_resnet") == 0);
  /* Sequence item k of block calls: layer2.k.inner, as in PyTorch. */
  const ir_param *w = param(m, "layer2.0.conv1.weight");
  CHECK(w != NULL);
  CHECK(w && w->trainable && w->shape.rank == 4 && w->shape.dim[0] == 4);
  CHECK(param(m, "layer2.1.conv1.weight") != NULL);
  CHECK(param(m, "layer2.0.conv1.bias") == NULL); /* bias=false */
  const ir_param *rm = param(m, "layer2.1.bn1.running_mean");
  CHECK(rm && !rm->trainable);
  /* The return expression's calls are named after the call. */
  CHECK(node(m, "layer2.0.relu") != NULL);
  CHECK(node(m, "layer2.0.add") != NULL);
  CHECK(node(m, "layer2.1.add")->inputs[1] == node(m, "layer2.0.relu"));
  /* The sequence's value is its last output; the loss picks the output. */
  CHECK(node(m, "pool")->inputs[0] == node(m, "layer2.1.relu"));
  CHECK(m->g.loss == node(m, "loss"));
  CHECK_EQ_INT(m->g.n_outputs, 1);
  CHECK(m->g.outputs[0] == node(m, "fc"));
  kiln_model_free(m);
}

TEST(test_sequence_numbering) {
  kiln_model *m = LOAD_OK("input x: f32[batch, 1, 8, 8]\n"
                          "features = sequence(x) {\n"
                          "  conv2d(out=4, kernel=3, padding=1)\n"
                          "  relu()\n"
                          "  conv2d(out=4, kernel=3, padding=1) * 2\n"
                          "  maxpool(kernel=2)\n"
                          "}\n"
                          "flat = flatten(features)\n");
  if (!m)
    return;
  CHECK(param(m, "features.0.weight") != NULL);
  CHECK(node(m, "features.1") && node(m, "features.1")->op == IR_OP_RELU);
  CHECK(param(m, "features.2.weight") != NULL);
  CHECK(param(m, "features.3.weight") != NULL);
  CHECK(node(m, "features.4") && node(m, "features.4")->op == IR_OP_MAXPOOL);
  CHECK(node(m, "features.3")->inputs[0] == node(m, "features.2"));
  CHECK(node(m, "flat")->inputs[0] == node(m, "features.4"));
  CHECK_EQ_INT(node(m, "flat")->shape.dim[1], 4 * 4 * 4);
  kiln_model_free(m);
  /* An item's own positional arguments follow the chained input. */
  m = LOAD_OK("input x: f32[batch, 4]\n"
              "skip = relu(x)\n"
              "s = sequence(x) {\n  concat(skip)\n  linear(out=2)\n}\n");
  CHECK(m && node(m, "s.0")->n_inputs == 2);
  CHECK(m && node(m, "s.0")->inputs[0] == node(m, "x"));
  CHECK(m && node(m, "s.0")->inputs[1] == node(m, "skip"));
  CHECK(m && node(m, "s.0")->shape.dim[1] == 8);
  kiln_model_free(m);
}

TEST(test_nested_call_naming) {
  kiln_model *m = LOAD_OK("input a: f32[batch, 4]\n"
                          "input b: f32[batch, 4]\n"
                          "out = relu(add(a, b))\n"
                          "y = add(relu(a), relu(b))\n"
                          "block twice(x) {\n"
                          "  return relu(linear(x, out=4))\n"
                          "}\n"
                          "z = add(twice(a), twice(b))\n"
                          "alias = z\n"
                          "output alias, out\n");
  if (!m)
    return;
  CHECK(node(m, "out") && node(m, "out")->op == IR_OP_RELU);
  CHECK(node(m, "out.add") && node(m, "out")->inputs[0] == node(m, "out.add"));
  CHECK(node(m, "y.relu")->inputs[0] == node(m, "a"));
  CHECK(node(m, "y.relu_1")->inputs[0] == node(m, "b"));
  /* A block call as an argument is named `<target>.<block>`. */
  CHECK(param(m, "z.twice.linear.weight") != NULL);
  CHECK(param(m, "z.twice_1.linear.weight") != NULL);
  CHECK(node(m, "z")->inputs[1] == node(m, "z.twice_1.relu"));
  /* An alias names the same node; outputs keep their order. */
  CHECK(node(m, "alias") == NULL);
  CHECK_EQ_INT(m->g.n_outputs, 2);
  CHECK(m->g.outputs[0] == node(m, "z"));
  CHECK(m->g.outputs[1] == node(m, "out"));
  kiln_model_free(m);
}

TEST(test_arithmetic_and_constants) {
  kiln_model *m = LOAD_OK("width = 4\n"
                          "input x: f32[batch, 8]\n"
                          "h = linear(x, out=width * 2 + 1)\n"
                          "d = dropout(h, p=1.0 / 4)\n"
                          "n = leaky_relu(d, slope=-(0.5 - 0.25) * -1)\n"
                          "q = linear(n, out=(width - 1) * (12 / width))\n");
  if (!m)
    return;
  CHECK_EQ_INT(node(m, "h")->shape.dim[1], 9);
  CHECK_NEAR(attr(node(m, "d"), "p")->f, 0.25, 1e-12);
  CHECK_NEAR(attr(node(m, "n"), "slope")->f, 0.25, 1e-12);
  CHECK_EQ_INT(node(m, "q")->shape.dim[1], 9);
  kiln_model_free(m);
}

TEST(test_block_parameters) {
  kiln_model *m =
      LOAD_OK("input x: f32[batch, 3, 8, 8]\n"
              "block b(x, width, out_width=width * 2, k=(3, 1), mode=eval) {\n"
              "  c = conv2d(x, out=out_width, kernel=k, padding=(1, 0))\n"
              "  return batchnorm(c, mode=mode)\n"
              "}\n"
              "y = b(x, 4)\n"
              "z = b(x, width=2, out_width=5, mode=train)\n");
  if (!m)
    return;
  CHECK_EQ_INT(node(m, "y.c")->shape.dim[1], 8);
  CHECK_EQ_INT(attr(node(m, "y.c"), "kernel")->pair[0], 3);
  CHECK_EQ_INT(attr(node(m, "y.c"), "kernel")->pair[1], 1);
  CHECK(strcmp(attr(node(m, "y.batchnorm"), "mode")->sym, "eval") == 0);
  CHECK_EQ_INT(node(m, "z.c")->shape.dim[1], 5);
  CHECK(strcmp(attr(node(m, "z.batchnorm"), "mode")->sym, "train") == 0);
  kiln_model_free(m);
}

TEST(test_attribute_words) {
  /* An attribute's own word wins over a layer of the same name, and
   * `batch` in a shape list is the batch dimension. */
  kiln_model *m = LOAD_OK("input x: f32[batch, 2, 4]\n"
                          "input t: f32[batch, 8]\n"
                          "sum = reshape(x, shape=[batch, -1])\n"
                          "l = mse(sum, t, reduction=sum)\n"
                          "g = gelu(sum, approximate=tanh)\n");
  if (!m)
    return;
  CHECK(strcmp(attr(node(m, "l"), "reduction")->sym, "sum") == 0);
  CHECK(strcmp(attr(node(m, "g"), "approximate")->sym, "tanh") == 0);
  CHECK_EQ_INT(node(m, "sum")->shape.dim[0], IR_DIM_BATCH);
  CHECK_EQ_INT(node(m, "sum")->shape.dim[1], 8);
  /* With one loss and no output line, the output is the loss's input. */
  CHECK(m->g.loss == node(m, "l"));
  CHECK(m->g.outputs[0] == node(m, "sum"));
  kiln_model_free(m);
}

TEST(test_model_name_from_file) {
  kiln_error err;
  const char text[] = "input x: f32[4]\ny = relu(x)\n";
  kiln_model *m =
      kiln_model_load_string("some/dir/my.net.kiln", text, strlen(text), &err);
  CHECK(m && strcmp(kiln_model_name(m), "my.net") == 0);
  kiln_model_free(m);
}

/* ---- errors in the graph part ---- */

TEST(test_name_errors) {
  EXPECT_ERROR("input x: f32[batch, 4]\n"
               "relu_1 = relu(x)\n"
               "y = relu(relu1)\n",
               KILN_ERR_NAME,
               "t.kiln:3:10: error: undefined name 'relu1' (did you mean "
               "'relu_1'?)");
  EXPECT_ERROR("input x: f32[batch, 4]\n"
               "y = relu(x)\n"
               "y = relu(y)\n",
               KILN_ERR_NAME,
               "t.kiln:3:1: error: duplicate name 'y'\ny = relu(y)\n^\n"
               "t.kiln:2:1: note: 'y' is first defined here");
  EXPECT_ERROR("input x: f32[batch, 4]\n"
               "a = add(x, c)\n"
               "b = relu(a)\n"
               "c = relu(b)\n",
               KILN_ERR_NAME,
               "t.kiln:3:10: error: dependency cycle: a -> c -> b -> a");
  EXPECT_ERROR("input x: f32[batch, 4]\n"
               "a = add(x, a)\n",
               KILN_ERR_NAME, "t.kiln:2:12: error: dependency cycle: a -> a");
  EXPECT_ERROR("input x: f32[batch, 4]\n"
               "y = conv2(x, out=4, kernel=1)\n",
               KILN_ERR_NAME,
               "t.kiln:2:5: error: unknown op or block 'conv2' (did you mean "
               "'conv2d'?)");
  EXPECT_ERROR("input x: f32[batch, 1, 4, 4]\n"
               "y = conv2d(x, out=4, kernal=1)\n",
               KILN_ERR_NAME,
               "t.kiln:2:22: error: unknown attribute 'kernal' for conv2d "
               "(did you mean 'kernel'?)");
  EXPECT_ERROR("input x: f32[batch, 4]\n"
               "block relu(x) {\n  return x\n}\n",
               KILN_ERR_NAME,
               "t.kiln:2:7: error: block 'relu' has the name of "
               "an op");
  EXPECT_ERROR("input x: f32[batch, 4]\n"
               "block b(x) {\n  return x\n}\n"
               "b = relu(x)\n",
               KILN_ERR_NAME, "t.kiln:5:1: error: duplicate name 'b'");
}

TEST(test_type_errors) {
  EXPECT_ERROR("input x: f32[batch, 4]\n"
               "y = add(x, 3)\n",
               KILN_ERR_TYPE,
               "t.kiln:2:12: error: argument 2 of 'add' must be a tensor, "
               "found 3");
  EXPECT_ERROR("input x: f32[batch, 4]\n"
               "y = linear(x, out=2.5)\n",
               KILN_ERR_TYPE,
               "t.kiln:2:19: error: attribute 'out' of linear must be an "
               "integer, found 2.5");
  EXPECT_ERROR("input x: f32[batch, 4]\n"
               "y = linear(x, out=4, bias=1)\n",
               KILN_ERR_TYPE,
               "attribute 'bias' of linear must be true or false, found 1");
  EXPECT_ERROR("input x: f32[batch, 1, 4, 4]\n"
               "y = conv2d(x, out=4, kernel=1, init=foo)\n",
               KILN_ERR_TYPE,
               "t.kiln:2:37: error: invalid value 'foo' for attribute 'init' "
               "of conv2d (expected one of: auto, xavier_uniform,");
  EXPECT_ERROR("input x: f32[batch, 1, 4, 4]\n"
               "y = conv2d(x, out=4, kernel=1, init=he_normol)\n",
               KILN_ERR_TYPE, "(did you mean 'he_normal'?)");
  EXPECT_ERROR("input x: f32[batch, 1, 4, 4]\n"
               "y = conv2d(x, out=4, kernel=(1, 2, 3))\n",
               KILN_ERR_TYPE,
               "attribute 'kernel' of conv2d must be an integer or a pair "
               "(h, w) of integers, found (1, 2, 3)");
  EXPECT_ERROR("input x: f32[batch, 4]\n"
               "y = add(x)\n",
               KILN_ERR_TYPE,
               "t.kiln:2:5: error: 'add' takes 2 inputs (a, b), "
               "found 1");
  EXPECT_ERROR("input x: f32[batch, 4]\n"
               "y = relu(x, x)\n",
               KILN_ERR_TYPE,
               "t.kiln:2:13: error: 'relu' takes 1 input (x), "
               "found 2");
  EXPECT_ERROR("input x: f32[batch, 4]\n"
               "y = linear(x, out=64 / 3)\n",
               KILN_ERR_TYPE, "t.kiln:2:22: error: 64 / 3 is not an integer");
  EXPECT_ERROR("input x: f32[batch, 4]\n"
               "y = linear(x, out=x * 2)\n",
               KILN_ERR_TYPE,
               "t.kiln:2:19: error: '*' needs numbers, found "
               "tensor 'x'");
  EXPECT_ERROR("input x: f32[batch, 4]\n"
               "y = linear(x, out=9223372036854775807 + 1)\n",
               KILN_ERR_TYPE, "integer overflow in '+'");
  EXPECT_ERROR("input x: f32[batch, 4]\n"
               "y = linear(x, out=1 / 0)\n",
               KILN_ERR_TYPE, "division by zero");
  EXPECT_ERROR("input x: f32[4, batch]\ny = relu(x)\n", KILN_ERR_TYPE,
               "t.kiln:1:17: error: only the first dimension of input 'x' "
               "may be 'batch'");
  EXPECT_ERROR("input x: f32[batch, 0]\ny = relu(x)\n", KILN_ERR_TYPE,
               "t.kiln:1:21: error: dimension 2 of input 'x' must be an "
               "integer from 1 to 2147483647 or 'batch', found 0");
  EXPECT_ERROR("c = 3\ninput x: f32[batch, 4]\ny = relu(x)\noutput c\n",
               KILN_ERR_TYPE,
               "t.kiln:4:8: error: an output must be a tensor, found 3");
  EXPECT_ERROR("input x: f32[batch, 4]\n"
               "y = relu(x)\n"
               "z = sequence(3) {\n  relu()\n}\n",
               KILN_ERR_TYPE,
               "t.kiln:3:14: error: the input of sequence 'z' must be a "
               "tensor, found 3");
  EXPECT_ERROR("input x: f32[batch, 4]\n"
               "input y: f32[batch, 5]\n"
               "z = add(x, y)\n",
               KILN_ERR_SHAPE, "t.kiln:3:");
}

TEST(test_block_errors) {
  static const char blk[] = "input x: f32[batch, 4]\n"
                            "block b(x, width, act=tanh) {\n"
                            "  h = linear(x, out=width)\n"
                            "  return gelu(h, approximate=act)\n"
                            "}\n";
  char text[1024];
  snprintf(text, sizeof text, "%sy = b(x, widht=3)\n", blk);
  EXPECT_ERROR(text, KILN_ERR_NAME,
               "t.kiln:6:10: error: block 'b' has no parameter 'widht' (did "
               "you mean 'width'?)");
  snprintf(text, sizeof text, "%sy = b(x)\n", blk);
  EXPECT_ERROR(text, KILN_ERR_TYPE,
               "t.kiln:6:5: error: missing argument 'width' for block 'b'");
  snprintf(text, sizeof text, "%sy = b(x, 3, tanh, 4)\n", blk);
  EXPECT_ERROR(text, KILN_ERR_TYPE,
               "t.kiln:6:19: error: block 'b' takes 3 arguments, found 4");
  snprintf(text, sizeof text, "%sy = b(x, 3, width=4)\n", blk);
  EXPECT_ERROR(text, KILN_ERR_NAME,
               "t.kiln:6:13: error: parameter 'width' of block 'b' is given "
               "twice");
  snprintf(text, sizeof text, "%sy = b(x, 3, act=tahn)\n", blk);
  EXPECT_ERROR(text, KILN_ERR_TYPE,
               "t.kiln:4:30: error: invalid value 'tahn' for attribute "
               "'approximate' of gelu (did you mean 'tanh'?)");
  snprintf(text, sizeof text, "%sy = b(x, widt)\n", blk);
  EXPECT_ERROR(text, KILN_ERR_NAME,
               "t.kiln:6:10: error: undefined name 'widt'");
  EXPECT_ERROR("input x: f32[batch, 4]\n"
               "block a(x) {\n  return b(x)\n}\n"
               "block b(x) {\n  return c(x)\n}\n"
               "block c(x) {\n  return a(x)\n}\n"
               "y = a(x)\n",
               KILN_ERR_NAME,
               "t.kiln:9:10: error: block 'a' calls itself: a -> b -> c -> a");
  EXPECT_ERROR("input x: f32[batch, 4]\n"
               "scale = 2\n"
               "block b(x) {\n  return linear(x, out=scale)\n}\n"
               "y = b(x)\n",
               KILN_ERR_TYPE,
               "t.kiln:4:24: error: attribute 'out' of linear must be an "
               "integer, found 'scale'");
  EXPECT_ERROR("input x: f32[batch, 4]\n"
               "h = relu(x)\n"
               "block b(y) {\n  return add(y, h)\n}\n"
               "z = b(x)\n",
               KILN_ERR_NAME,
               "t.kiln:4:17: error: undefined name 'h' (block 'b' sees only "
               "its parameters and its own names: pass it as a parameter)");
  EXPECT_ERROR("input x: f32[batch, 4]\n"
               "block b(x, a=w * 2, w=3) {\n  return linear(x, out=a)\n}\n"
               "y = b(x)\n",
               KILN_ERR_NAME,
               "t.kiln:2:14: error: parameter 'w' is used before it is bound");
  EXPECT_ERROR("input x: f32[batch, 4]\n"
               "block b(x) {\n  x = relu(x)\n  return x\n}\n"
               "y = b(x)\n",
               KILN_ERR_NAME,
               "t.kiln:3:3: error: duplicate name 'x'\n  x = relu(x)\n  ^\n"
               "t.kiln:2:9: note: 'x' is first defined here");
}

TEST(test_loss_and_outputs) {
  static const char two[] = "input x: f32[batch, 4]\n"
                            "input t: f32[batch, 2]\n"
                            "input label: i32[batch]\n"
                            "y = linear(x, out=2)\n"
                            "l1 = mse(y, t)\n"
                            "l2 = cross_entropy(y, label)\n";
  EXPECT_ERROR(two, KILN_ERR_NAME,
               "t.kiln:6:6: error: 2 loss layers ('l1', 'l2'): name the one "
               "to train with `loss = NAME` in the train section");
  char text[1024];
  snprintf(text, sizeof text, "%strain {\n  loss = l2\n}\n", two);
  kiln_model *m = LOAD_OK(text);
  CHECK(m && m->g.loss == node(m, "l2") && m->g.has_train);
  CHECK(m && m->g.outputs[0] == node(m, "y"));
  kiln_model_free(m);
  snprintf(text, sizeof text, "%strain {\n  loss = y\n}\n", two);
  EXPECT_ERROR(text, KILN_ERR_TYPE,
               "t.kiln:8:10: error: 'y' is a linear layer, not a loss");
  snprintf(text, sizeof text, "%strain {\n  loss = l3\n}\n", two);
  EXPECT_ERROR(text, KILN_ERR_NAME,
               "t.kiln:8:10: error: loss 'l3' names no layer (did you mean");
}

/* ---- sections ---- */

static const char small[] = "input x: f32[batch, 4]\n"
                            "input label: i32[batch]\n"
                            "fc1 = linear(x, out=8)\n"
                            "act = relu(fc1)\n"
                            "fc2 = linear(act, out=3)\n"
                            "loss = cross_entropy(fc2, label)\n";

static kiln_model *load_with(const char *sections, int line) {
  char text[4096];
  snprintf(text, sizeof text, "%s%s", small, sections);
  return load_ok(text, line);
}

static void error_with(const char *sections, kiln_status status,
                       const char *needle, int line) {
  char text[4096];
  snprintf(text, sizeof text, "%s%s", small, sections);
  expect_error(text, status, needle, line);
}
#define SECTION_ERROR(sections, status, needle)                                \
  error_with(sections, status, needle, __LINE__)

TEST(test_train_defaults) {
  kiln_model *m = load_with("", __LINE__);
  if (!m)
    return;
  CHECK(!m->g.has_train && !m->g.has_data);
  kiln_model_free(m);
  m = load_with("train {\n}\n", __LINE__);
  if (!m)
    return;
  const ir_train_cfg *t = &m->g.train;
  CHECK(m->g.has_train);
  CHECK_EQ_INT(t->optim.kind, IR_OPTIM_SGD);
  CHECK_NEAR(t->optim.lr, 0.01, 1e-12);
  CHECK_EQ_INT(t->schedule.kind, IR_SCHED_CONSTANT);
  CHECK_EQ_INT(t->batch, 64);
  CHECK_EQ_INT(t->epochs, 10);
  CHECK_EQ_INT(t->weight_decay_mode, IR_WD_L2);
  CHECK(t->loss == NULL && t->n_freeze == 0 && t->early_stop_patience == 0);
  kiln_model_free(m);
}

TEST(test_train_overrides) {
  kiln_model *m = load_with(
      "train {\n"
      "  optimizer = adamw(lr=1e-3, betas=(0.8, 0.99))\n"
      "  schedule = step(milestones=[5, 10], gamma=0.5, warmup_epochs=1)\n"
      "  batch = 32\n  epochs = 3\n  weight_decay = 0.05\n"
      "  clip_grad_norm = 1\n  ema = 0.999\n  seed = 7\n"
      "  early_stopping = early_stopping(patience=5)\n"
      "  freeze = [fc1, \"act\"]\n  finetune = \"ckpt.safetensors\"\n"
      "}\n"
      "data {\n  format = npy\n  validation = 0\n  shuffle = false\n"
      "  normalize = (0.5, 0.25)\n"
      "  augment = [random_crop(padding=2), hflip(), cutout(4, p=0.5)]\n"
      "}\n",
      __LINE__);
  if (!m)
    return;
  const ir_train_cfg *t = &m->g.train;
  CHECK_EQ_INT(t->optim.kind, IR_OPTIM_ADAMW);
  CHECK_NEAR(t->optim.lr, 1e-3, 1e-15);
  CHECK_NEAR(t->optim.beta1, 0.8, 1e-12);
  CHECK_NEAR(t->optim.beta2, 0.99, 1e-12);
  CHECK_NEAR(t->optim.eps, 1e-8, 1e-20);
  CHECK_EQ_INT(t->weight_decay_mode, IR_WD_DECOUPLED); /* adamw's default */
  CHECK_EQ_INT(t->schedule.kind, IR_SCHED_STEP);
  CHECK_EQ_INT(t->schedule.n_milestones, 2);
  CHECK_EQ_INT(t->schedule.milestones[1], 10);
  CHECK_NEAR(t->schedule.gamma, 0.5, 1e-12);
  CHECK_NEAR(t->schedule.warmup_epochs, 1, 1e-12);
  CHECK_EQ_INT(t->batch, 32);
  CHECK_EQ_INT(t->epochs, 3);
  CHECK_NEAR(t->clip_grad_norm, 1, 0);
  CHECK_NEAR(t->ema, 0.999, 1e-12);
  CHECK_EQ_INT(t->seed, 7);
  CHECK_EQ_INT(t->early_stop_patience, 5);
  CHECK_EQ_INT(t->n_freeze, 2);
  CHECK(t->n_freeze == 2 && strcmp(t->freeze[1], "act") == 0);
  CHECK(t->finetune_from && strcmp(t->finetune_from, "ckpt.safetensors") == 0);
  const ir_data_cfg *d = &m->g.data;
  CHECK(m->g.has_data);
  CHECK_EQ_INT(d->format, IR_DATA_NPY);
  CHECK_NEAR(d->validation, 0, 0);
  CHECK(!d->shuffle);
  CHECK_NEAR(d->std, 0.25, 0);
  CHECK_EQ_INT(d->n_augment, 3);
  CHECK_EQ_INT(d->augment[0].kind, IR_AUG_RANDOM_CROP);
  CHECK_EQ_INT(d->augment[0].padding, 2);
  CHECK_NEAR(d->augment[1].p, 0.5, 0);
  CHECK_EQ_INT(d->augment[2].size, 4);
  CHECK_NEAR(d->augment[2].p, 0.5, 0);
  kiln_model_free(m);
  /* An explicit weight_decay_mode stays; sgd's defaults. */
  m = load_with("train {\n  optimizer = adamw(lr=0.1)\n"
                "  weight_decay_mode = l2\n}\n",
                __LINE__);
  CHECK(m && m->g.train.weight_decay_mode == IR_WD_L2);
  kiln_model_free(m);
  m = load_with("train {\n  optimizer = sgd(0.5, 0.9, true)\n}\n", __LINE__);
  CHECK(m && m->g.train.optim.nesterov && m->g.train.optim.momentum == 0.9);
  kiln_model_free(m);
  /* A call without arguments may drop its parentheses; a word from a fixed
   * set may be a string; sections compute with constants. */
  m = load_with("train {\n  schedule = cosine\n  optimizer = rmsprop(lr=0.1 * "
                "2)\n}\ndata {\n  format = \"csv\"\n}\n",
                __LINE__);
  CHECK(m && m->g.train.schedule.kind == IR_SCHED_COSINE);
  CHECK(m && m->g.train.optim.kind == IR_OPTIM_RMSPROP);
  CHECK(m && fabs(m->g.train.optim.lr - 0.2) < 1e-12);
  CHECK(m && fabs(m->g.train.optim.alpha - 0.99) < 1e-12);
  CHECK(m && m->g.data.format == IR_DATA_CSV);
  kiln_model_free(m);
}

TEST(test_section_errors) {
  SECTION_ERROR("train {\n  epoch = 3\n}\n", KILN_ERR_NAME,
                "t.kiln:8:3: error: unknown key 'epoch' in section 'train' "
                "(did you mean 'epochs'?)");
  SECTION_ERROR("train {\n  batch = -3\n}\n", KILN_ERR_TYPE,
                "t.kiln:8:11: error: invalid value for 'batch': expected a "
                "positive integer, found -3");
  SECTION_ERROR("train {\n  batch = 2.5\n}\n", KILN_ERR_TYPE,
                "expected a positive integer, found 2.5");
  SECTION_ERROR("train {\n  optimizer = sgd(lr=0)\n}\n", KILN_ERR_TYPE,
                "t.kiln:8:22: error: invalid value for 'lr' of sgd: expected "
                "a number > 0, found 0");
  SECTION_ERROR("train {\n  optimizer = sgd(lr=0.1, momentum=1)\n}\n",
                KILN_ERR_TYPE,
                "invalid value for 'momentum' of sgd: expected a number in "
                "[0, 1), found 1");
  SECTION_ERROR("train {\n  optimizer = adan(lr=0.1)\n}\n", KILN_ERR_NAME,
                "t.kiln:8:15: error: unknown optimizer 'adan' (did you mean "
                "'adam'?)");
  SECTION_ERROR("train {\n  optimizer = sgd(lr=0.1, momentun=0.9)\n}\n",
                KILN_ERR_NAME,
                "t.kiln:8:27: error: unknown argument 'momentun' for sgd (did "
                "you mean 'momentum'?)");
  SECTION_ERROR("train {\n  optimizer = adam(eps=1e-6)\n}\n", KILN_ERR_TYPE,
                "t.kiln:8:15: error: missing argument 'lr' for adam");
  SECTION_ERROR("train {\n  optimizer = sgd(lr=0.1, nesterov=true)\n}\n",
                KILN_ERR_TYPE, "nesterov needs a momentum > 0");
  SECTION_ERROR("train {\n  optimizer = adam(lr=0.1, betas=(0.9, 1))\n}\n",
                KILN_ERR_TYPE,
                "invalid value for 'betas' of adam: expected a pair (beta1, "
                "beta2) of numbers in [0, 1), found (0.9, 1)");
  SECTION_ERROR("train {\n  optimizer = adam(lr=0.1, eps=0)\n}\n",
                KILN_ERR_TYPE, "expected a number > 0, found 0");
  SECTION_ERROR("train {\n  schedule = cosine(warmup_steps=10, "
                "warmup_epochs=1)\n}\n",
                KILN_ERR_TYPE, "give warmup_steps or warmup_epochs, not both");
  SECTION_ERROR("train {\n  schedule = step(milestones=[30, 20])\n}\n",
                KILN_ERR_TYPE,
                "expected a list of increasing positive integers");
  SECTION_ERROR("train {\n  ema = 1\n}\n", KILN_ERR_TYPE,
                "invalid value for 'ema': expected a number in [0, 1), found "
                "1");
  SECTION_ERROR("train {\n  batch = batch_size\n}\n", KILN_ERR_TYPE,
                "expected a positive integer, found 'batch_size'");
  SECTION_ERROR("train {\n  batch = f(3)\n}\n", KILN_ERR_TYPE,
                "expected a positive integer, found a call to 'f'");
  SECTION_ERROR("train {\n  freeze = [fc1, fc3]\n}\n", KILN_ERR_NAME,
                "t.kiln:8:18: error: freeze 'fc3' names no layer (did you "
                "mean 'fc1'?)");
  SECTION_ERROR("train {\n  weight_decay_mode = decopled\n}\n", KILN_ERR_TYPE,
                "expected one of l2, decoupled (did you mean 'decoupled'?), "
                "found 'decopled'");
  SECTION_ERROR("data {\n  validation = 1\n}\n", KILN_ERR_TYPE,
                "invalid value for 'validation': expected a number in [0, 1), "
                "found 1");
  SECTION_ERROR("data {\n  format = pny\n}\n", KILN_ERR_TYPE,
                "(did you mean 'npy'?)");
  SECTION_ERROR("data {\n  normalize = (0.5, 0)\n}\n", KILN_ERR_TYPE,
                "expected a pair (mean, std) of numbers with std > 0");
  SECTION_ERROR("data {\n  augment = [hflip(p=2)]\n}\n", KILN_ERR_TYPE,
                "invalid value for 'p' of hflip: expected a number in [0, 1], "
                "found 2");
  SECTION_ERROR("data {\n  augment = [vflip()]\n}\n", KILN_ERR_NAME,
                "unknown augmentation 'vflip' (did you mean 'hflip'?)");
}

/* ---- placement ---- */

TEST(test_placement_stages) {
  kiln_model *m = LOAD_OK("input x: f32[batch, 4]\n"
                          "input label: i32[batch]\n"
                          "trunk = sequence(x) {\n"
                          "  linear(out=8)\n  relu()\n"
                          "}\n"
                          "head = linear(trunk, out=3)\n"
                          "loss = cross_entropy(head, label)\n"
                          "train {\n  batch = 32\n}\n"
                          "placement {\n"
                          "  stages = [[trunk], [head, loss]]\n"
                          "  data_parallel = 2\n  microbatches = 4\n"
                          "  schedule = gpipe\n"
                          "}\n");
  if (!m)
    return;
  CHECK_EQ_INT(node(m, "trunk.0")->stage, 0);
  CHECK_EQ_INT(node(m, "trunk.1")->stage, 0);
  CHECK_EQ_INT(node(m, "head")->stage, 1);
  CHECK_EQ_INT(node(m, "loss")->stage, 1);
  CHECK_EQ_INT(m->g.placement.stages, 2);
  CHECK_EQ_INT(m->g.placement.data_parallel, 2);
  CHECK_EQ_INT(m->g.placement.microbatches, 4);
  CHECK(strcmp(m->g.placement.pipeline_schedule, "gpipe") == 0);
  kiln_model_free(m);
  /* A block call's name covers its layers; a deeper name may not overlap. */
  static const char blocks[] = "input x: f32[batch, 4]\n"
                               "block mlp(x) {\n"
                               "  a = linear(x, out=4)\n"
                               "  return relu(a)\n"
                               "}\n"
                               "b1 = mlp(x)\n"
                               "b2 = mlp(b1)\n";
  char text[1024];
  snprintf(text, sizeof text, "%splacement {\n  stages = [[b1], [b2]]\n}\n",
           blocks);
  m = LOAD_OK(text);
  CHECK(m && node(m, "b1.a")->stage == 0 && node(m, "b1.relu")->stage == 0);
  CHECK(m && node(m, "b2.a")->stage == 1 && node(m, "b2.relu")->stage == 1);
  kiln_model_free(m);
  snprintf(text, sizeof text,
           "%splacement {\n  stages = [[b1, b2], [b2.a]]\n}\n", blocks);
  EXPECT_ERROR(text, KILN_ERR_NAME,
               "t.kiln:9:24: error: layer 'b2.a' is in stages 0 and 1");
  m = LOAD_OK(small);
  CHECK(m && m->g.placement.stages == 1 && m->g.placement.data_parallel == 1);
  kiln_model_free(m);
}

TEST(test_placement_errors) {
  SECTION_ERROR("placement {\n  stages = [[fc1, act], [fc2]]\n}\n",
                KILN_ERR_NAME,
                "t.kiln:8:12: error: layer 'loss' is in no "
                "stage");
  SECTION_ERROR("placement {\n  stages = [[fc1, act], [act, fc2, loss]]\n}\n",
                KILN_ERR_NAME,
                "t.kiln:8:26: error: layer 'act' is in stages 0 and 1");
  SECTION_ERROR("placement {\n  stages = [[fc1, act, fc2], [fc2.x, loss]]\n}\n",
                KILN_ERR_NAME,
                "t.kiln:8:31: error: stage 1 names 'fc2.x', "
                "which is no layer");
  SECTION_ERROR("placement {\n  stages = [[fc2, loss], [fc1, act]]\n}\n",
                KILN_ERR_NAME,
                "t.kiln:8:12: error: layer 'fc2' in stage 0 uses 'act' from "
                "stage 1");
  SECTION_ERROR("placement {\n  stages = [[fc1, act], [fc3, loss]]\n}\n",
                KILN_ERR_NAME,
                "t.kiln:8:26: error: stage 1 names 'fc3', which is no layer "
                "(did you mean 'fc1'?)");
  SECTION_ERROR("placement {\n  stages = [[x, fc1, act], [fc2, loss]]\n}\n",
                KILN_ERR_NAME, "'x' is an input: inputs belong to no stage");
  SECTION_ERROR("placement {\n  data_parallel = 0\n}\n", KILN_ERR_TYPE,
                "invalid value for 'data_parallel': expected a positive "
                "integer, found 0");
  SECTION_ERROR("placement {\n  schedule = zigzag\n}\n", KILN_ERR_TYPE,
                "expected one of gpipe, 1f1b, found 'zigzag'");
  SECTION_ERROR(
      "train {\n  batch = 30\n}\nplacement {\n  microbatches = 4\n}\n",
      KILN_ERR_TYPE,
      "t.kiln:11:18: error: the batch (30) is not a multiple of "
      "microbatches (4)");
}

/* ---- files ---- */

TEST(test_load_file_errors) {
  kiln_error err;
  kiln_model *m = kiln_model_load_file("no/such/model.kiln", &err);
  CHECK(m == NULL);
  CHECK_EQ_INT(err.status, KILN_ERR_IO);
  CHECK_STR_CONTAINS(err.message, "cannot read 'no/such/model.kiln': No such "
                                  "file or directory");
  m = kiln_model_load_file("tests", &err); /* a directory */
  CHECK(m == NULL);
  CHECK_EQ_INT(err.status, KILN_ERR_IO);
  CHECK_STR_CONTAINS(err.message, "cannot read 'tests': Is a directory");
  m = kiln_model_load_file("models/lenet5.kiln", &err);
  CHECK(m != NULL);
  CHECK(m && strcmp(kiln_model_name(m), "lenet5") == 0);
  kiln_model_free(m);
  CHECK(strlen(kiln_version()) > 0);
}

int main(void) {
  RUN(test_dependency_order);
  RUN(test_block_naming);
  RUN(test_sequence_numbering);
  RUN(test_nested_call_naming);
  RUN(test_arithmetic_and_constants);
  RUN(test_block_parameters);
  RUN(test_attribute_words);
  RUN(test_model_name_from_file);
  RUN(test_name_errors);
  RUN(test_type_errors);
  RUN(test_block_errors);
  RUN(test_loss_and_outputs);
  RUN(test_train_defaults);
  RUN(test_train_overrides);
  RUN(test_section_errors);
  RUN(test_placement_stages);
  RUN(test_placement_errors);
  RUN(test_load_file_errors);
  return TEST_SUMMARY();
}
