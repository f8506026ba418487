/* ir_build.h — building graphs directly through the IR API (no parser) for
 * the IR tests: one global graph that each test resets with tb_reset(),
 * nodes created with tb_node() and attributes set by name. */
#ifndef KILN_TESTS_IR_BUILD_H
#define KILN_TESTS_IR_BUILD_H

#include "ir/ir.h"
#include "test.h"

#include <stdlib.h>

static arena tb_arena;
static ir_graph tb_g;
static kiln_error tb_err;
static const kiln_loc tb_loc = {0};

static inline void tb_reset(void) {
  arena_free(&tb_arena);
  arena_init(&tb_arena);
  ir_graph_init(&tb_g, &tb_arena, "t");
  memset(&tb_err, 0, sizeof tb_err);
}

/* "batch, 3, 224, 224" -> dims; `batch_value` stands for the word batch.
 * Returns the count. */
static inline int tb_parse_dims(const char *text, int64_t *dim, int max,
                                int64_t batch_value) {
  int n = 0;
  for (const char *p = text; *p && n < max;) {
    while (*p == ' ' || *p == ',')
      p++;
    if (!*p)
      break;
    if (strncmp(p, "batch", 5) == 0) {
      dim[n++] = batch_value;
      p += 5;
    } else {
      char *end;
      dim[n++] = strtoll(p, &end, 10);
      KILN_ASSERT(end != p);
      p = end;
    }
  }
  return n;
}

/* An input: tb_input("x", IR_F32, "batch, 3, 224, 224"). */
static inline ir_node *tb_input(const char *name, ir_dtype t,
                                const char *dims) {
  ir_shape s = {0};
  s.rank = tb_parse_dims(dims, s.dim, IR_MAX_DIMS, IR_DIM_BATCH);
  return ir_graph_add_input(&tb_g, name, tb_loc, t, &s, &tb_err);
}

/* A node with up to three inputs (NULL-terminated), attributes unset. */
static inline ir_node *tb_node(ir_op op, const char *name, ir_node *a,
                               ir_node *b, ir_node *c) {
  ir_node *in[3] = {a, b, c};
  int n = 0;
  while (n < 3 && in[n])
    n++;
  return ir_node_new(&tb_g, op, name, tb_loc, in, n);
}

static inline ir_attr *tb_attr(ir_node *n, const char *name) {
  int k = ir_op_attr_index(n->op, name);
  KILN_ASSERT(k >= 0);
  n->attrs[k].set = true;
  return &n->attrs[k];
}
static inline void tb_int(ir_node *n, const char *name, int64_t v) {
  tb_attr(n, name)->i = v;
}
static inline void tb_float(ir_node *n, const char *name, double v) {
  tb_attr(n, name)->f = v;
}
static inline void tb_pair(ir_node *n, const char *name, int64_t h, int64_t w) {
  ir_attr *a = tb_attr(n, name);
  a->pair[0] = h;
  a->pair[1] = w;
}
static inline void tb_sym(ir_node *n, const char *name, const char *v) {
  tb_attr(n, name)->sym = v;
}
/* reshape's shape: tb_ints(n, "shape", "batch, -1, 7"). */
static inline void tb_ints(ir_node *n, const char *name, const char *ints) {
  ir_attr *a = tb_attr(n, name);
  a->ints = ARENA_ARRAY(&tb_arena, int64_t, 16);
  a->n_ints = tb_parse_dims(ints, a->ints, 16, IR_RESHAPE_BATCH);
}

/* ir_node_finish: the node, or NULL with tb_err filled. */
static inline ir_node *tb_finish(ir_node *n) {
  return ir_node_finish(&tb_g, n, &tb_err) == KILN_OK ? n : NULL;
}

/* conv2d with square kernel, stride and padding. */
static inline ir_node *tb_conv(const char *name, ir_node *x, int64_t out,
                               int64_t k, int64_t s, int64_t p, bool bias) {
  ir_node *n = tb_node(IR_OP_CONV2D, name, x, NULL, NULL);
  tb_int(n, "out", out);
  tb_pair(n, "kernel", k, k);
  tb_pair(n, "stride", s, s);
  tb_pair(n, "padding", p, p);
  tb_int(n, "bias", bias);
  return tb_finish(n);
}

static inline ir_node *tb_unary(ir_op op, const char *name, ir_node *x) {
  return tb_finish(tb_node(op, name, x, NULL, NULL));
}

static inline ir_node *tb_binary(ir_op op, const char *name, ir_node *a,
                                 ir_node *b) {
  return tb_finish(tb_node(op, name, a, b, NULL));
}

/* The shape as text, for comparisons: "[batch, 64, 56, 56]". */
static inline const char *tb_shape(const ir_node *n) {
  return n ? ir_shape_str(&tb_arena, &n->shape) : "(no node)";
}

#define CHECK_SHAPE(node, text)                                                \
  do {                                                                         \
    const char *s_ = tb_shape(node);                                           \
    if (strcmp(s_, (text)) != 0) {                                             \
      fprintf(stderr, "%s:%d: shape %s, expected %s (%s)\n", __FILE__,         \
              __LINE__, s_, (text), tb_err.message);                           \
      test_failures_++;                                                        \
    }                                                                          \
  } while (0)

/* The last call failed with `want_status` and a message containing `text`. */
#define CHECK_ERROR(node, want_status, text)                                   \
  do {                                                                         \
    CHECK((node) == NULL);                                                     \
    CHECK_EQ_INT(tb_err.status, (want_status));                                \
    CHECK_STR_CONTAINS(tb_err.message, (text));                                \
  } while (0)

#endif
