/* shape.c — dtypes and shapes: names, sizes, equality, element counts and
 * the "[batch, 64, 56, 56]" notation used in every message and dump. */
#include "ir/ir.h"

#include <string.h>

static const struct {
  const char *name;
  int size;
  bool is_float;
} dtypes[] = {
    [IR_F32] = {"f32", 4, true},  [IR_F64] = {"f64", 8, true},
    [IR_F16] = {"f16", 2, true},  [IR_BF16] = {"bf16", 2, true},
    [IR_I32] = {"i32", 4, false}, [IR_I64] = {"i64", 8, false},
};
_Static_assert(ARRAY_LEN(dtypes) == IR_DTYPE_COUNT,
               "one dtypes[] row per ir_dtype");

const char *ir_dtype_name(ir_dtype t) {
  KILN_ASSERT((unsigned)t < IR_DTYPE_COUNT);
  return dtypes[t].name;
}

bool ir_dtype_parse(const char *name, ir_dtype *out) {
  for (int t = 0; t < IR_DTYPE_COUNT; t++) {
    if (strcmp(dtypes[t].name, name) == 0) {
      *out = (ir_dtype)t;
      return true;
    }
  }
  return false;
}

int ir_dtype_size(ir_dtype t) {
  KILN_ASSERT((unsigned)t < IR_DTYPE_COUNT);
  return dtypes[t].size;
}

bool ir_dtype_is_float(ir_dtype t) {
  KILN_ASSERT((unsigned)t < IR_DTYPE_COUNT);
  return dtypes[t].is_float;
}

bool ir_shape_eq(const ir_shape *a, const ir_shape *b) {
  if (a->rank != b->rank)
    return false;
  for (int i = 0; i < a->rank; i++)
    if (a->dim[i] != b->dim[i])
      return false;
  return true;
}

int64_t ir_shape_numel(const ir_shape *s, int64_t batch) {
  int64_t n = 1;
  for (int i = 0; i < s->rank; i++)
    n *= s->dim[i] == IR_DIM_BATCH ? batch : s->dim[i];
  return n;
}

void ir_shape_print(strbuf *b, const ir_shape *s) {
  strbuf_putc(b, '[');
  for (int i = 0; i < s->rank; i++) {
    if (i)
      strbuf_puts(b, ", ");
    if (s->dim[i] == IR_DIM_BATCH)
      strbuf_puts(b, "batch");
    else
      strbuf_printf(b, "%lld", (long long)s->dim[i]);
  }
  strbuf_putc(b, ']');
}

const char *ir_shape_str(arena *a, const ir_shape *s) {
  strbuf b;
  strbuf_init(&b);
  ir_shape_print(&b, s);
  const char *r = arena_strdup(a, b.data);
  strbuf_free(&b);
  return r;
}
