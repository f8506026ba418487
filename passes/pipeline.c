/* pipeline.c — the pass manager: the pipeline as a table, one named pass
 * per line in the order it runs (as QBE's main.c lists its passes), and
 * the driver that runs it: levels, graph kinds, --disable-pass by pass or
 * fusion pattern, the --fuse-limit bisect counter, `kiln dump --after` and
 * ir_verify after every pass.
 *
 * Order matters: strip_dropout first, so that relu(dropout(relu(x)))
 * meets simplify as relu(relu(x)); simplify and fold_bn before cse, so
 * that the nodes they rewrite can be merged; dce last, to drop whatever
 * the others left without a use. */
#include "passes/passes.h"

#include <string.h>

static const char *const fold_bn_patterns[] = {"conv_bn", "linear_bn", NULL};

const pass_info pass_pipeline[] = {
    {"strip_dropout", pass_strip_dropout, 1, PASS_INFERENCE, NULL,
     "remove dropout (the identity in eval mode)"},
    {"simplify", pass_simplify, 1, PASS_BOTH, NULL,
     "collapse reshape/flatten chains, drop identity views, dropout(p=0) "
     "and relu(relu(x))"},
    {"fold_bn", pass_fold_bn, 2, PASS_INFERENCE, fold_bn_patterns,
     "fold batchnorm into the conv2d/linear before it (weights in float64)"},
    {"cse", pass_cse, 1, PASS_BOTH, NULL,
     "merge nodes with the same op, inputs and attributes"},
    {"dce", pass_dce, 1, PASS_BOTH, NULL,
     "remove nodes that reach no output, loss or update"},
};
const int pass_pipeline_len = (int)ARRAY_LEN(pass_pipeline);

void pass_opts_default(pass_opts *o) {
  memset(o, 0, sizeof *o);
  o->opt_level = 2;
  o->fuse_limit = -1;
}

static bool is_disabled(const pass_opts *o, const char *name) {
  for (int i = 0; i < o->n_disabled; i++)
    if (strcmp(o->disabled[i], name) == 0)
      return true;
  return false;
}

bool pass_fusion_allowed(pass_ctx *c, const char *pattern) {
  bool declared = false;
  for (const char *const *p = c->pass->patterns; p && *p; p++)
    declared |= strcmp(*p, pattern) == 0;
  KILN_ASSERT(declared && "fusion pattern not declared by its pass");
  if (is_disabled(c->opts, pattern) || is_disabled(c->opts, c->pass->name))
    return false;
  if (c->opts->fuse_limit >= 0 && c->fusions >= c->opts->fuse_limit)
    return false;
  c->fusions++;
  return true;
}

/* Every pass and pattern name of the table, for checks and messages. */
static int table_names(const pass_info *t, int n, const char **names, int cap) {
  int k = 0;
  for (int i = 0; i < n; i++) {
    if (k < cap)
      names[k++] = t[i].name;
    for (const char *const *p = t[i].patterns; p && *p; p++)
      if (k < cap)
        names[k++] = *p;
  }
  return k;
}

/* "unknown pass 'dcee' in --disable-pass (did you mean 'dce'?); passes:
 * strip_dropout, ...; fusion patterns: conv_bn, ..." */
static kiln_status unknown_name(const pass_info *t, int n, const char *name,
                                const char *where, kiln_error *err) {
  enum { CAP = 64 };
  const char *names[CAP];
  int k = table_names(t, n, names, CAP);
  strbuf b;
  strbuf_init(&b);
  strbuf_printf(&b, "unknown pass '%s' in %s", name, where);
  const char *guess = suggest_closest(name, names, k);
  if (guess)
    strbuf_printf(&b, " (did you mean '%s'?)", guess);
  strbuf_puts(&b, "; passes:");
  for (int i = 0; i < n; i++)
    strbuf_printf(&b, "%s %s", i ? "," : "", t[i].name);
  const char *sep = "; fusion patterns: ";
  for (int i = 0; i < n; i++)
    for (const char *const *p = t[i].patterns; p && *p; p++, sep = ", ")
      strbuf_printf(&b, "%s%s", sep, *p);
  kiln_status st = diag_error(err, KILN_ERR_NAME, (kiln_loc){0}, "%s", b.data);
  strbuf_free(&b);
  return st;
}

static bool known(const pass_info *t, int n, const char *name, bool patterns) {
  for (int i = 0; i < n; i++) {
    if (strcmp(t[i].name, name) == 0)
      return true;
    for (const char *const *p = t[i].patterns; patterns && p && *p; p++)
      if (strcmp(*p, name) == 0)
        return true;
  }
  return false;
}

/* Why pass `p` does not run, or NULL when it does. */
static const char *skip_reason(const pass_info *p, const pass_opts *o) {
  if (o->opt_level < p->min_opt_level)
    return p->min_opt_level == 1 ? "needs -O1" : "needs -O2";
  if (!(p->applies_to & (o->inference ? PASS_INFERENCE : PASS_TRAINING)))
    return o->inference ? "training graphs only" : "inference graphs only";
  if (is_disabled(o, p->name))
    return "disabled";
  return NULL;
}

static void dump(const ir_graph *g, const pass_info *p, const char *skipped,
                 const pass_opts *o) {
  FILE *out = o->dump_out ? o->dump_out : stdout;
  if (o->dump_dot) {
    ir_write_dot(g, out);
    return;
  }
  fprintf(out, "# after pass %s%s%s%s\n", p->name, skipped ? " (skipped: " : "",
          skipped ? skipped : "", skipped ? ")" : "");
  ir_print(g, out);
}

static bool verify_on(const pass_opts *o) {
#ifndef NDEBUG
  (void)o;
  return true;
#else
  return o->verify;
#endif
}

kiln_status pass_run_table(const pass_info *table, int n, ir_graph *g,
                           const pass_opts *o, kiln_error *err) {
  for (int i = 0; i < o->n_disabled; i++)
    if (!known(table, n, o->disabled[i], true))
      return unknown_name(table, n, o->disabled[i], "--disable-pass", err);
  if (o->dump_after && !known(table, n, o->dump_after, false))
    return unknown_name(table, n, o->dump_after, "--after", err);
  if (o->opt_level < 0 || o->opt_level > 2)
    return diag_error(err, KILN_ERR_INVALID, (kiln_loc){0},
                      "optimisation level %d: must be 0, 1 or 2", o->opt_level);
  pass_ctx c = {.g = g, .opts = o, .err = err};
  for (int i = 0; i < n; i++) {
    const pass_info *p = &table[i];
    const char *skipped = skip_reason(p, o);
    if (!skipped) {
      c.pass = p;
      c.changes = 0;
      kiln_status st = p->run(&c);
      if (st)
        return st;
      ir_graph_compact(g);
      if (verify_on(o) && (st = ir_verify(g, err))) {
        diag_note(err, (kiln_loc){0}, "after graph pass '%s'", p->name);
        return st;
      }
    }
    if (o->dump_after && strcmp(o->dump_after, p->name) == 0)
      dump(g, p, skipped, o);
  }
  return KILN_OK;
}

kiln_status pass_run_pipeline(ir_graph *g, const pass_opts *o,
                              kiln_error *err) {
  return pass_run_table(pass_pipeline, pass_pipeline_len, g, o, err);
}

void pass_print_pipeline(FILE *out) {
  fputs("graph passes in pipeline order (level: the lowest -O that runs "
        "it):\n",
        out);
  for (int i = 0; i < pass_pipeline_len; i++) {
    const pass_info *p = &pass_pipeline[i];
    const char *kind = p->applies_to == PASS_BOTH        ? "both"
                       : p->applies_to == PASS_INFERENCE ? "inference"
                                                         : "training";
    fprintf(out, "  %-14s -O%d  %-9s  %s\n", p->name, p->min_opt_level, kind,
            p->doc);
    for (const char *const *q = p->patterns; q && *q; q++)
      fprintf(out, "  %-14s            fusion pattern of %s\n", *q, p->name);
  }
}
