/* train_ckpt.c — training checkpoints over rt_backend_ops (train_ckpt.h).
 *
 * Needs: a graph whose parameters (all nodes, internal update nodes
 * included) have unique full names, and a backend that reads and writes
 * each of them as float32. Guarantees: save writes every one of them, so
 * resume restores the whole training state; resume checks the whole file
 * before writing anything, so a rejected checkpoint leaves the backend as
 * it was; every message names the file. */
#include "runtime/train/train_ckpt.h"

#include "runtime/checkpoint/ckpt.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const kiln_loc no_loc = {NULL, 0, 0};

/* Differences listed one note each, up to this many, then a count: a
 * checkpoint of another optimizer differs in every state tensor. */
enum { TRAIN_CKPT_MAX_NOTES = 12 };

/* Names read from a file are shown with control bytes replaced and cut, so
 * a hostile file cannot drive the terminal through an error message. */
typedef struct shown {
  char s[120];
} shown;

static shown show(const char *name) {
  shown r;
  size_t i = 0, cap = sizeof r.s;
  for (; name[i] && i < cap - 4; i++) {
    unsigned char c = (unsigned char)name[i];
    r.s[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
  }
  if (name[i]) {
    memcpy(r.s + i, "...", 3);
    i += 3;
  }
  r.s[i] = '\0';
  return r;
}

/* "[10, 84]" into the arena. */
static const char *dims_str(arena *a, int rank, const int64_t *dim) {
  strbuf b;
  strbuf_init(&b);
  strbuf_putc(&b, '[');
  for (int i = 0; i < rank; i++)
    strbuf_printf(&b, "%s%lld", i ? ", " : "", (long long)dim[i]);
  strbuf_putc(&b, ']');
  const char *s = arena_strdup(a, b.data);
  strbuf_free(&b);
  return s;
}

static bool same_shape(const ckpt_tensor *t, const ir_param *p) {
  if (t->rank != p->shape.rank)
    return false;
  for (int i = 0; i < t->rank; i++)
    if (t->shape[i] != p->shape.dim[i])
      return false;
  return true;
}

static int64_t numel(const ir_param *p) {
  return ir_shape_numel(&p->shape, 1);
}

/* The largest parameter's element count: one scratch buffer serves all. */
static int64_t most_numel(const ir_graph *g) {
  int64_t most = 0;
  for (int i = 0; i < g->n_nodes; i++)
    for (int k = 0; k < g->nodes[i]->n_params; k++) {
      int64_t n = numel(&g->nodes[i]->params[k]);
      most = n > most ? n : most;
    }
  return most;
}

static kiln_status oom(kiln_error *err, const char *path, int64_t floats) {
  return diag_error(err, KILN_ERR_INTERNAL, no_loc,
                    "'%s': out of memory for %lld parameter values", path,
                    (long long)floats);
}

/* Every parameter of g by name; with internal_only, only those of internal
 * (pass-made) nodes: optimizer state and EMA weights. */
static void index_params(strmap *m, arena *a, const ir_graph *g,
                         bool internal_only) {
  strmap_init(m, a);
  for (int i = 0; i < g->n_nodes; i++) {
    const ir_node *n = g->nodes[i];
    if (internal_only && !ir_op_table[n->op].internal)
      continue;
    for (int k = 0; k < n->n_params; k++)
      KILN_ASSERT(strmap_put(m, n->params[k].name, &n->params[k]));
  }
}

/* ---- save ---- */

kiln_status train_ckpt_save(const char *path, const ir_graph *g, rt_backend *b,
                            const train_ckpt_meta *meta, kiln_error *err) {
  int n = 0;
  int64_t total = 0;
  for (int i = 0; i < g->n_nodes; i++)
    for (int k = 0; k < g->nodes[i]->n_params; k++, n++)
      total += numel(&g->nodes[i]->params[k]);
  ckpt_tensor *t = calloc((size_t)n + 1, sizeof *t);
  float *mem = malloc(sizeof(float) * (size_t)(total + 1));
  if (!t || !mem) {
    free(t);
    free(mem);
    return oom(err, path, total);
  }
  int64_t off = 0;
  for (int i = 0, j = 0; i < g->n_nodes; i++)
    for (int k = 0; k < g->nodes[i]->n_params; k++, j++) {
      const ir_param *p = &g->nodes[i]->params[k];
      b->ops->param_read(b, p, mem + off);
      t[j] = (ckpt_tensor){.name = p->name,
                           .dtype = IR_F32,
                           .rank = p->shape.rank,
                           .shape = p->shape.dim,
                           .data = mem + off};
      off += numel(p);
    }
  /* Integers in decimal; the loss with 17 digits, which reads back to the
   * same double ("inf" before any validation). */
  char v[7][32];
  snprintf(v[0], sizeof v[0], "%lld", (long long)meta->step);
  snprintf(v[1], sizeof v[1], "%lld", (long long)meta->epoch);
  snprintf(v[2], sizeof v[2], "%lld", (long long)meta->epoch_step);
  snprintf(v[3], sizeof v[3], "%lld", (long long)meta->batch);
  snprintf(v[4], sizeof v[4], "%llu", (unsigned long long)meta->seed);
  snprintf(v[5], sizeof v[5], "%.17g", meta->best_val_loss);
  snprintf(v[6], sizeof v[6], "%lld", (long long)meta->best_epoch);
  char bad[32];
  snprintf(bad, sizeof bad, "%lld", (long long)meta->bad_epochs);
  const ckpt_meta kv[] = {
      {"format", "pt"},
      {"kiln.version", kiln_version()},
      {"kiln.model", g->name ? g->name : ""},
      {"kiln.step", v[0]},
      {"kiln.epoch", v[1]},
      {"kiln.epoch_step", v[2]},
      {"kiln.batch", v[3]},
      {"kiln.seed", v[4]},
      {"kiln.best_val_loss", v[5]},
      {"kiln.best_epoch", v[6]},
      {"kiln.bad_epochs", bad},
  };
  kiln_status st = ckpt_write(path, t, n, kv, (int)ARRAY_LEN(kv), err);
  free(t);
  free(mem);
  return st;
}

/* ---- resume ---- */

static kiln_status meta_missing(const ckpt_file *f, const char *key,
                                kiln_error *err) {
  return diag_error(err, KILN_ERR_INVALID, no_loc,
                    "'%s' has no metadata '%s': not a kiln training "
                    "checkpoint (a weights-only file can be loaded with "
                    "finetune)",
                    f->path, key);
}

static kiln_status meta_bad(const ckpt_file *f, const char *key,
                            const char *value, const char *what,
                            kiln_error *err) {
  return diag_error(err, KILN_ERR_INVALID, no_loc,
                    "'%s': metadata '%s' is '%s', not %s", f->path, key,
                    show(value).s, what);
}

/* A decimal integer >= min, the whole value. */
static kiln_status meta_int(const ckpt_file *f, const char *key, int64_t min,
                            int64_t *out, kiln_error *err) {
  const char *v = ckpt_meta_get(f, key);
  if (!v)
    return meta_missing(f, key, err);
  char *end;
  errno = 0;
  long long x = strtoll(v, &end, 10);
  if (errno || end == v || *end || x < min)
    return meta_bad(f, key, v,
                    min == 0 ? "an integer >= 0" : "an integer >= -1", err);
  *out = x;
  return KILN_OK;
}

static kiln_status meta_read(const ckpt_file *f, train_ckpt_meta *m,
                             kiln_error *err) {
  *m = (train_ckpt_meta){0};
  kiln_status st;
  if ((st = meta_int(f, "kiln.step", 0, &m->step, err)) ||
      (st = meta_int(f, "kiln.epoch", 0, &m->epoch, err)) ||
      (st = meta_int(f, "kiln.epoch_step", 0, &m->epoch_step, err)) ||
      (st = meta_int(f, "kiln.batch", 0, &m->batch, err)) ||
      (st = meta_int(f, "kiln.best_epoch", -1, &m->best_epoch, err)) ||
      (st = meta_int(f, "kiln.bad_epochs", 0, &m->bad_epochs, err)))
    return st;
  /* strtoull takes "-1" as 2^64 - 1: only digits are a seed. */
  const char *v = ckpt_meta_get(f, "kiln.seed");
  if (!v)
    return meta_missing(f, "kiln.seed", err);
  char *end;
  errno = 0;
  unsigned long long seed = strtoull(v, &end, 10);
  if (errno || *v < '0' || *v > '9' || *end)
    return meta_bad(f, "kiln.seed", v, "an unsigned 64-bit integer", err);
  m->seed = seed;
  if (!(v = ckpt_meta_get(f, "kiln.best_val_loss")))
    return meta_missing(f, "kiln.best_val_loss", err);
  m->best_val_loss = strtod(v, &end);
  if (end == v || *end)
    return meta_bad(f, "kiln.best_val_loss", v, "a number", err);
  if (!(v = ckpt_meta_get(f, "kiln.model")))
    return meta_missing(f, "kiln.model", err);
  snprintf(m->model, sizeof m->model, "%s", v);
  if (!(v = ckpt_meta_get(f, "kiln.version")))
    return meta_missing(f, "kiln.version", err);
  snprintf(m->version, sizeof m->version, "%s", v);
  return KILN_OK;
}

/* How the file differs from the graph: counts by kind, and the first
 * TRAIN_CKPT_MAX_NOTES differences as note lines. */
typedef struct ckpt_diff {
  int missing, unknown, other;
  const char *notes[TRAIN_CKPT_MAX_NOTES];
} ckpt_diff;

/* Returns how many differences there are. */
static int diff_tensors(const ckpt_file *f, const ir_graph *g,
                        const strmap *by_name, arena *a, ckpt_diff *d) {
  const char **notes = d->notes;
  int n = 0;
  for (int i = 0; i < g->n_nodes; i++)
    for (int k = 0; k < g->nodes[i]->n_params; k++) {
      const ir_param *p = &g->nodes[i]->params[k];
      const ckpt_tensor *t = ckpt_find(f, p->name);
      const char *line = NULL;
      if (!t) {
        line = arena_printf(a, "missing tensor '%s'", p->name);
        d->missing++;
      } else if (t->dtype != IR_F32) {
        line = arena_printf(a,
                            "tensor '%s' is %s in the checkpoint; kiln "
                            "checkpoints hold F32",
                            p->name, ckpt_dtype_name(t->dtype));
        d->other++;
      } else if (!same_shape(t, p)) {
        line = arena_printf(a,
                            "tensor '%s' has shape %s in the checkpoint, %s "
                            "in the model",
                            p->name, dims_str(a, t->rank, t->shape),
                            dims_str(a, p->shape.rank, p->shape.dim));
        d->other++;
      }
      if (line && n < TRAIN_CKPT_MAX_NOTES)
        notes[n] = line;
      n += line != NULL;
    }
  for (int i = 0; i < f->n_tensors; i++)
    if (!strmap_get(by_name, f->tensors[i].name)) {
      d->unknown++;
      if (n < TRAIN_CKPT_MAX_NOTES)
        notes[n] = arena_printf(a,
                                "unknown tensor '%s' (the model has no "
                                "such parameter)",
                                show(f->tensors[i].name).s);
      n++;
    }
  return n;
}

/* The error for n differences d, the first TRAIN_CKPT_MAX_NOTES as notes;
 * `what` is what the file is not ("a checkpoint"). */
static kiln_status diff_error(kiln_error *err, const char *path,
                              const char *what, const ir_graph *g,
                              const ckpt_diff *d, int n) {
  kiln_status st =
      diag_error(err, KILN_ERR_INVALID, no_loc,
                 "'%s' is not %s of model '%s' as configured: %d "
                 "difference%s (%d missing, %d unknown, %d of another shape "
                 "or dtype)",
                 path, what, g->name ? g->name : "", n, n == 1 ? "" : "s",
                 d->missing, d->unknown, d->other);
  for (int i = 0; i < n && i < TRAIN_CKPT_MAX_NOTES; i++)
    diag_note(err, no_loc, "%s", d->notes[i]);
  if (n > TRAIN_CKPT_MAX_NOTES)
    diag_note(err, no_loc, "... and %d more", n - TRAIN_CKPT_MAX_NOTES);
  return st;
}

kiln_status train_ckpt_resume(const char *path, const ir_graph *g,
                              rt_backend *b, train_ckpt_meta *meta,
                              kiln_error *err) {
  ckpt_file f;
  kiln_status st = ckpt_load(&f, path, err);
  if (st)
    return st;
  arena a;
  arena_init(&a);
  strmap by_name;
  index_params(&by_name, &a, g, false);
  ckpt_diff d = {0};
  int n_diff = diff_tensors(&f, g, &by_name, &a, &d);
  if (n_diff)
    st = diff_error(err, path, "a checkpoint", g, &d, n_diff);
  if (!st)
    st = meta_read(&f, meta, err);
  /* Only now is anything written: the file is known to fit whole. The
   * copy keeps param_write's floats aligned whatever the file's layout. */
  int64_t most = most_numel(g);
  float *buf = st ? NULL : malloc(sizeof(float) * (size_t)(most + 1));
  if (!st && !buf)
    st = oom(err, path, most);
  for (int i = 0; i < g->n_nodes && !st; i++)
    for (int k = 0; k < g->nodes[i]->n_params; k++) {
      const ir_param *p = &g->nodes[i]->params[k];
      const ckpt_tensor *t = ckpt_find(&f, p->name);
      memcpy(buf, t->data, sizeof(float) * (size_t)numel(p));
      b->ops->param_write(b, p, buf);
    }
  free(buf);
  arena_free(&a);
  ckpt_file_free(&f);
  return st;
}

/* ---- finetune ---- */

static float half_to_float(uint16_t h) {
  int e = (h >> 10) & 0x1f, m = h & 0x3ff;
  double s = (h & 0x8000) ? -1.0 : 1.0;
  if (e == 0)
    return (float)(s * ldexp(m, -24));
  if (e == 31)
    return m ? NAN : (float)(s * INFINITY);
  return (float)(s * ldexp(m + 1024, e - 25));
}

/* t's n values as float32 (memcpy per element: a foreign file's data need
 * not be aligned); false for a dtype that is not a float. */
static bool to_float(const ckpt_tensor *t, int64_t n, float *out) {
  const unsigned char *p = t->data;
  for (int64_t i = 0; i < n; i++) {
    switch (t->dtype) {
    case IR_F32:
      memcpy(&out[i], p + 4 * i, 4);
      break;
    case IR_F64: {
      double d;
      memcpy(&d, p + 8 * i, 8);
      out[i] = (float)d;
      break;
    }
    case IR_F16:
    case IR_BF16: {
      uint16_t h;
      memcpy(&h, p + 2 * i, 2);
      if (t->dtype == IR_F16) {
        out[i] = half_to_float(h);
      } else {
        uint32_t bits = (uint32_t)h << 16;
        memcpy(&out[i], &bits, 4);
      }
      break;
    }
    default:
      return false;
    }
  }
  return true;
}

kiln_status train_ckpt_finetune(const char *path, const ir_graph *g,
                                rt_backend *b, FILE *report, kiln_error *err) {
  ckpt_file f;
  kiln_status st = ckpt_load(&f, path, err);
  if (st)
    return st;
  arena a;
  arena_init(&a);
  strmap state;
  index_params(&state, &a, g, true);
  int64_t most = most_numel(g);
  float *buf = malloc(sizeof(float) * (size_t)(most + 1));
  if (!buf)
    st = oom(err, path, most);
  int total = 0, loaded = 0;
  for (int i = 0; i < g->n_nodes && !st; i++) {
    const ir_node *n = g->nodes[i];
    if (ir_op_table[n->op].internal)
      continue; /* optimizer state and EMA: the new run starts its own */
    for (int k = 0; k < n->n_params; k++, total++) {
      const ir_param *p = &n->params[k];
      const ckpt_tensor *t = ckpt_find(&f, p->name);
      const char *why = NULL;
      if (!t)
        why = "not in the checkpoint";
      else if (!same_shape(t, p))
        why = arena_printf(&a, "shape %s in the checkpoint, %s in the model",
                           dims_str(&a, t->rank, t->shape),
                           dims_str(&a, p->shape.rank, p->shape.dim));
      else if (!to_float(t, numel(p), buf))
        why = arena_printf(&a, "dtype %s in the checkpoint, not a float type",
                           ckpt_dtype_name(t->dtype));
      if (why) {
        if (report)
          fprintf(report, "%s: %s\n", p->name, why);
        continue;
      }
      b->ops->param_write(b, p, buf);
      const char *ema_name = arena_printf(&a, "%s.ema", p->name);
      const ir_param *ema = strmap_get(&state, ema_name);
      if (ema && numel(ema) == numel(p))
        b->ops->param_write(b, ema, buf);
      loaded++;
    }
  }
  if (!st && report)
    fprintf(report, "loaded %d of %d tensors; %d skipped\n", loaded, total,
            total - loaded);
  if (!st && loaded == 0)
    st = diag_error(err, KILN_ERR_INVALID, no_loc,
                    "'%s': no tensor matches a parameter of model '%s' by "
                    "name and shape; nothing was loaded",
                    path, g->name ? g->name : "");
  free(buf);
  arena_free(&a);
  ckpt_file_free(&f);
  return st;
}

/* ---- weights for evaluation ---- */

kiln_status train_ckpt_load_weights(const char *path, const ir_graph *g,
                                    rt_backend *b, bool use_ema, bool *used_ema,
                                    kiln_error *err) {
  if (used_ema)
    *used_ema = false;
  ckpt_file f;
  kiln_status st = ckpt_load(&f, path, err);
  if (st)
    return st;
  arena a;
  arena_init(&a);
  int64_t most = most_numel(g);
  float *buf = malloc(sizeof(float) * (size_t)(most + 1));
  if (!buf)
    st = oom(err, path, most);
  /* Two passes: the first only checks, so that a file that does not fit
   * leaves the backend untouched; the second converts and writes. */
  ckpt_diff d = {0};
  int n_diff = 0, ema = 0;
  for (int pass = 0; pass < 2 && !st; pass++) {
    for (int i = 0; i < g->n_nodes; i++) {
      const ir_node *n = g->nodes[i];
      if (ir_op_table[n->op].internal)
        continue; /* optimizer state: not part of the model */
      for (int k = 0; k < n->n_params; k++) {
        const ir_param *p = &n->params[k];
        const char *name = p->name;
        if (use_ema && p->trainable) {
          const char *e = arena_printf(&a, "%s.ema", p->name);
          name = ckpt_find(&f, e) ? e : name;
        }
        const ckpt_tensor *t = ckpt_find(&f, name);
        const char *line = NULL;
        if (!t) {
          line = arena_printf(&a, "missing tensor '%s'", name);
          d.missing++;
        } else if (!same_shape(t, p)) {
          line = arena_printf(&a,
                              "tensor '%s' has shape %s in the checkpoint, "
                              "%s in the model",
                              name, dims_str(&a, t->rank, t->shape),
                              dims_str(&a, p->shape.rank, p->shape.dim));
          d.other++;
        } else if (!to_float(t, numel(p), buf)) {
          line = arena_printf(&a,
                              "tensor '%s' is %s in the checkpoint, not a "
                              "float type",
                              name, ckpt_dtype_name(t->dtype));
          d.other++;
        } else if (pass == 1) {
          b->ops->param_write(b, p, buf);
          ema += name != p->name;
        }
        if (pass == 0 && line && n_diff < TRAIN_CKPT_MAX_NOTES)
          d.notes[n_diff] = line;
        n_diff += pass == 0 && line;
      }
    }
    if (pass == 0 && n_diff)
      st = diff_error(err, path, "a weights file", g, &d, n_diff);
  }
  if (!st && used_ema)
    *used_ema = ema > 0;
  free(buf);
  arena_free(&a);
  ckpt_file_free(&f);
  return st;
}
