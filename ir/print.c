/* print.c — the graph as text in the model syntax (kiln dump), as a
 * Graphviz digraph (kiln dump --dot) and as a torchinfo/Keras-like summary
 * table (kiln check). All three print the shapes the rules inferred, so a
 * reader can check a model layer by layer. */
#include "ir/ir_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The shortest %g form that reads back as the same double, so that dumps
 * show 0.1 and 1e-05 rather than 0.10000000000000001. */
static void put_float(strbuf *b, double v) {
  char buf[64];
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(buf, sizeof buf, "%.*g", prec, v);
    if (strtod(buf, NULL) == v)
      break;
  }
  strbuf_puts(b, buf);
}

void ir_attr_print(strbuf *b, const ir_attr *a) {
  switch (a->type) {
  case IR_ATTR_INT:
    strbuf_printf(b, "%lld", (long long)a->i);
    break;
  case IR_ATTR_FLOAT:
    put_float(b, a->f);
    break;
  case IR_ATTR_BOOL:
    strbuf_puts(b, a->i ? "true" : "false");
    break;
  case IR_ATTR_PAIR:
    strbuf_printf(b, "(%lld, %lld)", (long long)a->pair[0],
                  (long long)a->pair[1]);
    break;
  case IR_ATTR_INTS:
    strbuf_putc(b, '[');
    for (int i = 0; i < a->n_ints; i++) {
      if (i)
        strbuf_puts(b, ", ");
      if (a->ints[i] == IR_RESHAPE_BATCH)
        strbuf_puts(b, "batch");
      else
        strbuf_printf(b, "%lld", (long long)a->ints[i]);
    }
    strbuf_putc(b, ']');
    break;
  case IR_ATTR_SYMBOL:
    strbuf_puts(b, a->sym);
    break;
  }
}

static bool is_default(const ir_attr *a, const ir_attr_spec *s) {
  switch (a->type) {
  case IR_ATTR_INT:
  case IR_ATTR_BOOL:
    return a->i == s->def_int;
  case IR_ATTR_FLOAT:
    return a->f == s->def_float;
  case IR_ATTR_PAIR:
    return a->pair[0] == s->def_int && a->pair[1] == s->def_int;
  case IR_ATTR_INTS:
    return false; /* no list attribute has a default */
  case IR_ATTR_SYMBOL:
    return strcmp(a->sym, s->def_sym) == 0;
  }
  return false;
}

/* ---- ir_print: one statement per node ---- */

static void print_node(strbuf *b, const ir_graph *g, const ir_node *n) {
  const ir_op_info *info = &ir_op_table[n->op];
  if (n->op == IR_OP_INPUT) {
    strbuf_printf(b, "input %s: %s", n->name, ir_dtype_name(n->dtype));
    ir_shape_print(b, &n->shape);
  } else {
    strbuf_printf(b, "%s = %s(", n->name, info->name);
    const char *sep = "";
    for (int k = 0; k < n->n_inputs; k++, sep = ", ")
      strbuf_printf(b, "%s%s", sep, n->inputs[k]->name);
    /* required attributes and those that differ from the default: the
     * shortest statement that builds the same node */
    for (int k = 0; k < ir_op_attr_count(n->op); k++) {
      if (!info->attrs[k].required && is_default(&n->attrs[k], &info->attrs[k]))
        continue;
      strbuf_printf(b, "%s%s=", sep, info->attrs[k].name);
      ir_attr_print(b, &n->attrs[k]);
      sep = ", ";
    }
    strbuf_printf(b, ")  # %s", ir_dtype_name(n->dtype));
    ir_shape_print(b, &n->shape);
    /* an update's effect is on its state, which no statement shows */
    for (int k = 0; n->op == IR_OP_UPDATE && k < n->n_params; k++)
      strbuf_printf(b, "%s%s", k ? ", " : ", state ", n->params[k].name);
  }
  if (g->placement.stages > 1)
    strbuf_printf(b, "%sstage %d", n->op == IR_OP_INPUT ? "  # " : ", ",
                  n->stage);
  strbuf_putc(b, '\n');
}

void ir_print(const ir_graph *g, FILE *out) {
  strbuf b;
  strbuf_init(&b);
  if (g->name)
    strbuf_printf(&b, "model %s\n\n", g->name);
  for (int i = 0; i < g->n_nodes; i++)
    print_node(&b, g, g->nodes[i]);
  for (int i = 0; i < g->n_outputs; i++)
    strbuf_printf(&b, "%s%s", i ? ", " : "output ", g->outputs[i]->name);
  if (g->n_outputs)
    strbuf_putc(&b, '\n');
  if (g->loss)
    strbuf_printf(&b, "# loss: %s\n", g->loss->name);
  if (b.len)
    fputs(b.data, out);
  strbuf_free(&b);
}

/* ---- ir_write_dot ---- */

/* Inside a DOT double-quoted string, '"' and '\\' need a backslash;
 * newlines become DOT's centred line break. */
static void put_dot_escaped(strbuf *b, const char *s) {
  for (; *s; s++) {
    if (*s == '"' || *s == '\\')
      strbuf_putc(b, '\\');
    if (*s == '\n')
      strbuf_puts(b, "\\n");
    else
      strbuf_putc(b, *s);
  }
}

void ir_write_dot(const ir_graph *g, FILE *out) {
  strbuf b;
  strbuf_init(&b);
  strbuf_puts(&b, "digraph \"");
  put_dot_escaped(&b, g->name ? g->name : "model");
  strbuf_puts(&b, "\" {\n  rankdir=TB;\n"
                  "  node [shape=box, fontname=\"Helvetica\", fontsize=10];\n");
  for (int i = 0; i < g->n_nodes; i++) {
    const ir_node *n = g->nodes[i];
    /* ids, not names, are the DOT node names: names may hold dots */
    strbuf_printf(&b, "  n%d [label=\"", n->id);
    put_dot_escaped(&b, n->name);
    strbuf_printf(&b, "\\n%s\\n%s", ir_op_table[n->op].name,
                  ir_dtype_name(n->dtype));
    ir_shape_print(&b, &n->shape);
    strbuf_putc(&b, '"');
    if (n->op == IR_OP_INPUT)
      strbuf_puts(&b, ", shape=ellipse");
    else if (ir_op_table[n->op].is_loss)
      strbuf_puts(&b, ", style=filled, fillcolor=\"#f4cccc\"");
    else if (n->n_params)
      strbuf_puts(&b, ", style=filled, fillcolor=\"#dde8f7\"");
    strbuf_puts(&b, "];\n");
    for (int k = 0; k < n->n_inputs; k++)
      strbuf_printf(&b, "  n%d -> n%d;\n", n->inputs[k]->id, n->id);
  }
  strbuf_puts(&b, "}\n");
  fputs(b.data, out);
  strbuf_free(&b);
}

/* ---- ir_summary ---- */

static int64_t add_sat(int64_t a, int64_t b) {
  return a > INT64_MAX - b ? INT64_MAX : a + b;
}

/* "1.82 G" */
static void put_scaled(strbuf *b, int64_t v) {
  static const char units[] = " KMGTPE";
  double x = (double)v;
  int u = 0;
  while (x >= 1000 && u < 6)
    x /= 1000, u++;
  if (u == 0)
    strbuf_printf(b, "%lld", (long long)v);
  else
    strbuf_printf(b, "%.2f %c", x, units[u]);
}

enum { COLS = 5 };

static const char *count_cell(arena *a, int64_t v) {
  if (!v)
    return "--";
  strbuf b;
  strbuf_init(&b);
  strbuf_put_count(&b, v);
  const char *s = arena_strdup(a, b.data);
  strbuf_free(&b);
  return s;
}

static void put_row(strbuf *b, const char *const cell[COLS],
                    const int width[COLS]) {
  for (int c = 0; c < COLS; c++) {
    /* names left-aligned, numbers right-aligned */
    bool right = c >= 3;
    int pad = width[c] - (int)strlen(cell[c]);
    if (c)
      strbuf_puts(b, "  ");
    if (right)
      strbuf_printf(b, "%*s", pad, "");
    strbuf_puts(b, cell[c]);
    if (!right && c < COLS - 1)
      strbuf_printf(b, "%*s", pad, "");
  }
  strbuf_putc(b, '\n');
}

static void put_rule(strbuf *b, const int width[COLS], char ch) {
  int total = 2 * (COLS - 1);
  for (int c = 0; c < COLS; c++)
    total += width[c];
  for (int i = 0; i < total; i++)
    strbuf_putc(b, ch);
  strbuf_putc(b, '\n');
}

void ir_summary(const ir_graph *g, FILE *out) {
  arena a;
  arena_init(&a);
  const char *(*cells)[COLS] =
      arena_alloc(&a, sizeof(*cells) * (size_t)(g->n_nodes + 1));
  int width[COLS] = {0};
  static const char *const head[COLS] = {"Layer", "Op", "Output shape",
                                         "Params", "MACs"};
  int64_t params = 0, frozen = 0, buffers = 0, macs = 0, flops = 0;
  int64_t param_bytes = 0, act_bytes = 0, input_bytes = 0;
  for (int i = 0; i <= g->n_nodes; i++) {
    if (i == 0) {
      memcpy(cells[0], head, sizeof head);
    } else {
      const ir_node *n = g->nodes[i - 1];
      int64_t p = ir_node_param_count(n, true), m = ir_node_macs(n);
      cells[i][0] = n->name;
      cells[i][1] = ir_op_table[n->op].name;
      cells[i][2] = ir_shape_str(&a, &n->shape);
      cells[i][3] = count_cell(&a, p);
      cells[i][4] = count_cell(&a, m);
      /* sums saturate: shapes are bounded per tensor, not per graph */
      params = add_sat(params, p);
      if (ir_train_frozen(g, n->name))
        frozen = add_sat(frozen, p);
      buffers = add_sat(buffers, ir_node_param_count(n, false));
      macs = add_sat(macs, m);
      flops = add_sat(flops, ir_node_flops(n));
      for (int k = 0; k < n->n_params && !ir_op_table[n->op].internal; k++)
        param_bytes =
            add_sat(param_bytes, ir_shape_numel(&n->params[k].shape, 1) *
                                     ir_dtype_size(n->params[k].dtype));
      int64_t bytes = ir_shape_numel(&n->shape, 1) * ir_dtype_size(n->dtype);
      if (n->op == IR_OP_INPUT)
        input_bytes = add_sat(input_bytes, bytes);
      else
        act_bytes = add_sat(act_bytes, bytes);
    }
    for (int c = 0; c < COLS; c++) {
      int len = (int)strlen(cells[i][c]);
      width[c] = len > width[c] ? len : width[c];
    }
  }

  strbuf b;
  strbuf_init(&b);
  strbuf_printf(&b, "Model: %s\n", g->name ? g->name : "(unnamed)");
  put_rule(&b, width, '=');
  put_row(&b, cells[0], width);
  put_rule(&b, width, '-');
  for (int i = 1; i <= g->n_nodes; i++)
    put_row(&b, cells[i], width);
  put_rule(&b, width, '=');
  strbuf_puts(&b, "Total params: ");
  strbuf_put_count(&b, params);
  strbuf_puts(&b, "\nTrainable params: ");
  strbuf_put_count(&b, params - frozen);
  if (frozen) {
    strbuf_puts(&b, "\nFrozen params: ");
    strbuf_put_count(&b, frozen);
  }
  strbuf_puts(&b, "\nNon-trainable (buffers): ");
  strbuf_put_count(&b, buffers);
  strbuf_puts(&b, "\nMACs per example: ");
  put_scaled(&b, macs);
  strbuf_puts(&b, " (multiply-accumulates of conv2d/linear/matmul; FLOPs ~= "
                  "2 x MACs + elementwise: ");
  put_scaled(&b, flops);
  strbuf_puts(&b, ")\n");
  put_rule(&b, width, '-');
  strbuf_printf(&b,
                "Parameter memory (with buffers): %.2f MB\n"
                "Input size per example: %.2f MB\n"
                "Forward activations per example: %.2f MB\n",
                (double)param_bytes / 1e6, (double)input_bytes / 1e6,
                (double)act_bytes / 1e6);
  fputs(b.data, out);
  strbuf_free(&b);
  arena_free(&a);
}
