/* stats.c — `kiln compile --stats`: what a plan's kernels hold and move,
 * and what the memory planner saves.
 *
 * Bytes are counted per GLOBAL argument of a launch as count × element
 * size, read-only arguments as read and the others as written (a written
 * argument that is also read, e.g. an accumulator, counts once, as
 * written): the traffic the kernel would cause if every element went
 * through memory once, the figure fusion is meant to lower. */
#include "passes/memplan.h"

#include "frontend/load.h"
#include "passes/lower.h"

#include <string.h>

static const char *const section_names[3] = {"forward", "backward", "update"};

/* 1234567 -> "1,234,567" */
static const char *commas(char *buf, size_t size, int64_t v) {
  char digits[32];
  snprintf(digits, sizeof digits, "%lld", (long long)v);
  size_t n = strlen(digits), o = 0;
  for (size_t i = 0; i < n && o + 2 < size; i++) {
    if (i > 0 && digits[i - 1] != '-' && (n - i) % 3 == 0)
      buf[o++] = ',';
    buf[o++] = digits[i];
  }
  buf[o] = '\0';
  return buf;
}

/* The flattened grid: the product of the outer chain of GRID loops (their
 * extents are constants in lowered kernels; -1 when one is not). */
static int64_t grid_size(const kir_kernel *k) {
  int64_t g = 1;
  const kir_stmt *s = k->body;
  while (s && s->kind == KIR_S_SEQ && s->n == 1 &&
         s->body[0]->kind == KIR_S_LOOP &&
         s->body[0]->loop_kind == KIR_LOOP_GRID) {
    const kir_expr *e = s->body[0]->extent;
    if (e->op != KIR_CONST)
      return -1;
    g *= e->i;
    s = s->body[0]->then_;
  }
  return g;
}

typedef struct sec_total {
  int kernels;
  int64_t read, written;
} sec_total;

static int section_of(const kir_plan *p, int l) {
  return l < p->fwd_end ? 0 : l < p->bwd_end ? 1 : 2;
}

static void launch_bytes(const kir_launch *L, int64_t *read, int64_t *written) {
  *read = *written = 0;
  for (int i = 0; i < L->k->n_bufs && L->k->bufs[i]->space == KIR_GLOBAL; i++) {
    const kir_buf *b = L->k->bufs[i];
    int64_t bytes = b->count * kir_type_size(b->type);
    *(b->read_only ? read : written) += bytes;
  }
}

static void print_mb(FILE *out, const char *what, int64_t bytes) {
  char c[32];
  fprintf(out, "  %-34s %14s bytes (%.2f MiB)\n", what,
          commas(c, sizeof c, bytes), (double)bytes / (1024.0 * 1024.0));
}

void pass_plan_stats(FILE *out, const kir_plan *p, const memplan *m) {
  char r[32], w[32], g[32];
  sec_total sec[3] = {{0}};
  fprintf(out, "%s: %s plan at batch %lld, %d kernels\n\n",
          p->g->name ? p->g->name : "model",
          p->mode == KIR_PLAN_TRAIN ? "training" : "evaluation",
          (long long)p->batch, p->n_launches);
  fprintf(out, "%5s  %-8s  %-40s %-24s %14s %14s %10s %7s\n", "#", "section",
          "kernel", "node", "bytes read", "bytes written", "grid", "threads");
  for (int l = 0; l < p->n_launches; l++) {
    const kir_launch *L = &p->launches[l];
    int64_t rd, wr, grid = grid_size(L->k);
    launch_bytes(L, &rd, &wr);
    int s = section_of(p, l);
    sec[s].kernels++;
    sec[s].read += rd;
    sec[s].written += wr;
    fprintf(out, "%5d  %-8s  %-40s %-24s %14s %14s %10s %7d\n", l,
            section_names[s], L->k->name, L->node ? L->node->name : "-",
            commas(r, sizeof r, rd), commas(w, sizeof w, wr),
            grid < 0 ? "?" : commas(g, sizeof g, grid), L->k->block_threads);
  }
  fprintf(out, "\n%-10s %8s %16s %16s %16s\n", "section", "kernels",
          "bytes read", "bytes written", "bytes moved");
  sec_total step = {0};
  for (int s = 0; s < 3; s++) {
    if (s > 0 && p->mode == KIR_PLAN_EVAL)
      break;
    char mv[32];
    fprintf(out, "%-10s %8d %16s %16s %16s\n", section_names[s], sec[s].kernels,
            commas(r, sizeof r, sec[s].read),
            commas(w, sizeof w, sec[s].written),
            commas(mv, sizeof mv, sec[s].read + sec[s].written));
    step.kernels += sec[s].kernels;
    step.read += sec[s].read;
    step.written += sec[s].written;
  }
  char mv[32];
  fprintf(out, "%-10s %8d %16s %16s %16s\n", "step", step.kernels,
          commas(r, sizeof r, step.read), commas(w, sizeof w, step.written),
          commas(mv, sizeof mv, step.read + step.written));
  if (!m)
    return;
  fputs("\nmemory (64-byte aligned):\n", out);
  print_mb(out, "activations, one buffer per tensor", m->unplanned_bytes);
  print_mb(out, "activations, planned (peak)", m->planned_bytes);
  if (m->unplanned_bytes > 0)
    fprintf(out, "  %-34s %13.1f%%\n", "saved by the planner",
            100.0 * (double)(m->unplanned_bytes - m->planned_bytes) /
                (double)m->unplanned_bytes);
  fprintf(out, "  %-34s %14d\n", "outputs written in place", m->n_inplace);
  print_mb(out, "parameters, buffers, optimizer",
           m->arena_bytes[MEMPLAN_PARAM]);
  print_mb(out, "inputs", m->arena_bytes[MEMPLAN_INPUT]);
}

static bool has_grads(const ir_graph *g) {
  for (int i = 0; i < g->n_nodes; i++)
    if (g->nodes[i]->op == IR_OP_GRAD)
      return true;
  return false;
}

kiln_status pass_compile(ir_graph *g, const pass_compile_opts *o, FILE *out,
                         kiln_error *err) {
  kiln_status st;
  if (!o->eval && !g->loss)
    return diag_error(err, KILN_ERR_INVALID, (kiln_loc){0},
                      "model '%s' has no loss layer: a training plan needs "
                      "one (or use --eval)",
                      g->name ? g->name : "");
  if (!o->eval && !has_grads(g) &&
      ((st = ir_autodiff(g, err)) || (st = ir_add_updates(g, err))))
    return st;
  int64_t batch = o->batch > 0 ? o->batch : g->train.batch;
  if (batch <= 0)
    batch = 1;
  arena a;
  arena_init(&a);
  kir_plan plan;
  memplan m;
  memplan_opts mo = {.inplace = o->inplace};
  if ((st = lower_plan(g, batch, o->eval ? KIR_PLAN_EVAL : KIR_PLAN_TRAIN, &a,
                       &plan, err)) ||
      (st = memplan_build(&plan, &mo, &a, &m, err)) ||
      (st = memplan_check(&plan, &m, err))) {
    arena_free(&a);
    return st;
  }
  if (o->kernels) {
    strbuf sb;
    strbuf_init(&sb);
    kir_plan_print(&sb, &plan);
    fwrite(sb.data, 1, sb.len, out);
    strbuf_free(&sb);
  }
  if (o->stats) {
    pass_plan_stats(out, &plan, &m);
    /* Compile-time figures of a code generator (NVRTC cold/warm, LLVM)
     * go here: the caller's hook sees the finished plan. */
    if (o->stats_hook)
      o->stats_hook(out, &plan, o->stats_user);
  }
  arena_free(&a);
  return KILN_OK;
}

kiln_status pass_compile_model(kiln_model *m, const pass_compile_opts *o,
                               FILE *out, kiln_error *err) {
  /* pass_compile differentiates the graph as kiln_train would. */
  bool had = m->g.loss && has_grads(&m->g);
  kiln_status st = pass_compile(&m->g, o, out, err);
  if (!st && !o->eval && !had)
    m->differentiated = true;
  return st;
}
