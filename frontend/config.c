/* config.c — the train and data sections (placement: config_placement.c),
 * checked against tables of keys. A key names its check (which values are
 * allowed, which is also what a message says was expected) and where the value
 * goes; structured values (optimizer = adam(lr=1e-3), augment = [hflip()]) are
 * calls whose arguments are checked by the same kind of table. Values are
 * constant expressions (elab_eval_const): a name is a bare word, and there
 * are no tensors. Unknown keys and arguments are errors, never ignored.
 *
 * Defaults are those of ir_train_cfg_default() / ir_data_cfg_default() and
 * docs/model-format.md. */
#include "frontend/config_table.h"

#include <math.h>
#include <string.h>

static const char *const check_expected[] = {
    [CHK_INT_POS] = "a positive integer",
    [CHK_INT_NONNEG] = "an integer >= 0",
    [CHK_NUM_POS] = "a number > 0",
    [CHK_NUM_NONNEG] = "a number >= 0",
    [CHK_FRACTION] = "a number in [0, 1)",
    [CHK_PROB] = "a number in [0, 1]",
    [CHK_BOOL] = "true or false",
    [CHK_STRING] = "a string",
    [CHK_NAME] = "a name",
};

kiln_status config_expected_error(cfg_ctx *c, const ast_expr *e,
                                  const char *what, const char *expected) {
  value v;
  const char *found;
  if (e->kind == AST_CALL)
    found = arena_printf(c->a, "a call to '%s'", e->s);
  else if (elab_eval_const(c->a, e, &v, c->err))
    return c->err->status;
  else
    found = elab_value_str(c->a, &v);
  return diag_error(c->err, KILN_ERR_TYPE, e->loc,
                    "invalid value for %s: expected %s, found %s", what,
                    expected, found);
}

static bool as_number(const value *v, double *out) {
  if (v->kind == VAL_INT)
    *out = (double)v->i;
  else if (v->kind == VAL_FLOAT)
    *out = v->f;
  else
    return false;
  return isfinite(*out);
}

static kiln_status set_field(cfg_ctx *c, void *obj, const cfg_field *f,
                             const ast_expr *e, const char *what) {
  if (f->check == CHK_CUSTOM)
    return f->parse(c, obj, e, what);
  if (e->kind == AST_CALL)
    return config_expected_error(c, e, what, check_expected[f->check]);
  value v;
  kiln_status st = elab_eval_const(c->a, e, &v, c->err);
  if (st)
    return st;
  double num = 0;
  bool is_num = as_number(&v, &num), ok = false;
  switch (f->check) {
  case CHK_INT_POS:
    ok = v.kind == VAL_INT && v.i >= 1;
    break;
  case CHK_INT_NONNEG:
    ok = v.kind == VAL_INT && v.i >= 0;
    break;
  case CHK_NUM_POS:
    ok = is_num && num > 0;
    break;
  case CHK_NUM_NONNEG:
    ok = is_num && num >= 0;
    break;
  case CHK_FRACTION:
    ok = is_num && num >= 0 && num < 1;
    break;
  case CHK_PROB:
    ok = is_num && num >= 0 && num <= 1;
    break;
  case CHK_BOOL:
    ok = v.kind == VAL_BOOL;
    break;
  case CHK_STRING:
    ok = v.kind == VAL_STRING;
    break;
  case CHK_NAME:
    ok = v.kind == VAL_WORD || v.kind == VAL_STRING;
    break;
  case CHK_CUSTOM:
    break;
  }
  if (!ok)
    return config_expected_error(c, e, what, check_expected[f->check]);
  if (f->store == ST_INT && v.i > INT32_MAX)
    return config_expected_error(c, e, what, "an integer up to 2147483647");
  char *p = (char *)obj + f->offset;
  switch (f->store) {
  case ST_I64:
    *(int64_t *)p = v.i;
    break;
  case ST_U64:
    *(uint64_t *)p = (uint64_t)v.i;
    break;
  case ST_INT:
    *(int *)p = (int)v.i;
    break;
  case ST_F64:
    *(double *)p = num;
    break;
  case ST_BOOL:
    *(bool *)p = v.i != 0;
    break;
  case ST_STR:
    *(const char **)p = v.s;
    break;
  }
  return KILN_OK;
}

/* A word (or string) from a fixed list; returns its index in *out. */
kiln_status config_parse_symbol(cfg_ctx *c, const ast_expr *e, const char *what,
                                const char *const *words, int n, int *out) {
  value v = {0};
  if (e->kind != AST_CALL && elab_eval_const(c->a, e, &v, c->err))
    return c->err->status;
  if (e->kind != AST_CALL && (v.kind == VAL_WORD || v.kind == VAL_STRING)) {
    for (int k = 0; k < n; k++)
      if (strcmp(v.s, words[k]) == 0) {
        *out = k;
        return KILN_OK;
      }
  }
  strbuf list;
  strbuf_init(&list);
  for (int k = 0; k < n; k++)
    strbuf_printf(&list, "%s%s", k ? ", " : "", words[k]);
  const char *expected = arena_printf(c->a, "one of %s", list.data);
  strbuf_free(&list);
  const char *hint = v.kind == VAL_WORD || v.kind == VAL_STRING
                         ? suggest_closest(v.s, words, n)
                         : NULL;
  if (hint)
    expected = arena_printf(c->a, "%s (did you mean '%s'?)", expected, hint);
  return config_expected_error(c, e, what, expected);
}

/* ---- calls: optimizer, schedule, early_stopping, augment ---- */

typedef struct cfg_call {
  const char *name;
  int kind;
  const cfg_field *args;
  int n_args;
} cfg_call;

#define CALL(name, kind, args)                                                 \
  { name, kind, args, (int)ARRAY_LEN(args) }

/* `e` is name(args...) or a bare name (no arguments). Resets *obj to the
 * call's defaults, then binds positional and keyword arguments. */
static kiln_status apply_call(cfg_ctx *c, const ast_expr *e, const char *what,
                              const char *kind_word, const cfg_call *calls,
                              int n_calls, void *obj,
                              void (*reset)(void *obj, int kind),
                              const cfg_call **used) {
  const char *names[16];
  KILN_ASSERT(n_calls <= (int)ARRAY_LEN(names));
  for (int k = 0; k < n_calls; k++)
    names[k] = calls[k].name;
  if (e->kind != AST_CALL && e->kind != AST_NAME)
    return config_expected_error(
        c, e, what, arena_printf(c->a, "a call such as %s(...)", names[0]));
  const cfg_call *call = NULL;
  for (int k = 0; k < n_calls; k++)
    if (strcmp(calls[k].name, e->s) == 0)
      call = &calls[k];
  if (!call) {
    const char *hint = suggest_closest(e->s, names, n_calls);
    strbuf list;
    strbuf_init(&list);
    for (int k = 0; k < n_calls; k++)
      strbuf_printf(&list, "%s%s", k ? ", " : "", names[k]);
    kiln_status st = hint ? diag_error(c->err, KILN_ERR_NAME, e->loc,
                                       "unknown %s '%s' (did you mean '%s'?)",
                                       kind_word, e->s, hint)
                          : diag_error(c->err, KILN_ERR_NAME, e->loc,
                                       "unknown %s '%s' (expected one of: %s)",
                                       kind_word, e->s, list.data);
    strbuf_free(&list);
    return st;
  }
  reset(obj, call->kind);
  bool given[16] = {false};
  KILN_ASSERT(call->n_args <= (int)ARRAY_LEN(given));
  kiln_status st;
  int n_pos = e->kind == AST_CALL ? e->n_args : 0;
  if (n_pos > call->n_args)
    return diag_error(c->err, KILN_ERR_TYPE, e->args[call->n_args]->loc,
                      "%s takes at most %d argument%s, found %d", call->name,
                      call->n_args, call->n_args == 1 ? "" : "s", n_pos);
  for (int k = 0; k < n_pos; k++) {
    const cfg_field *f = &call->args[k];
    given[k] = true;
    if ((st = set_field(c, obj, f, e->args[k],
                        arena_printf(c->a, "'%s' of %s", f->name, call->name))))
      return st;
  }
  for (int k = 0; e->kind == AST_CALL && k < e->n_kwargs; k++) {
    const ast_kwarg *kw = &e->kwargs[k];
    int idx = -1;
    for (int j = 0; j < call->n_args; j++)
      if (strcmp(call->args[j].name, kw->name) == 0)
        idx = j;
    if (idx < 0) {
      const char *arg_names[16];
      for (int j = 0; j < call->n_args; j++)
        arg_names[j] = call->args[j].name;
      const char *hint = suggest_closest(kw->name, arg_names, call->n_args);
      return diag_error(c->err, KILN_ERR_NAME, kw->loc,
                        "unknown argument '%s' for %s%s%s%s", kw->name,
                        call->name, hint ? " (did you mean '" : "",
                        hint ? hint : "", hint ? "'?)" : "");
    }
    if (given[idx])
      return diag_error(c->err, KILN_ERR_NAME, kw->loc,
                        "argument '%s' of %s is given twice", kw->name,
                        call->name);
    given[idx] = true;
    if ((st =
             set_field(c, obj, &call->args[idx], kw->value,
                       arena_printf(c->a, "'%s' of %s", kw->name, call->name))))
      return st;
  }
  for (int k = 0; k < call->n_args; k++)
    if (call->args[k].required && !given[k])
      return diag_error(c->err, KILN_ERR_TYPE, e->loc,
                        "missing argument '%s' for %s", call->args[k].name,
                        call->name);
  if (used)
    *used = call;
  return KILN_OK;
}

/* ---- train ---- */

static kiln_status parse_betas(cfg_ctx *c, void *obj, const ast_expr *e,
                               const char *what) {
  ir_optim *o = obj;
  value v;
  if (e->kind == AST_CALL || elab_eval_const(c->a, e, &v, c->err) ||
      (v.kind != VAL_LIST && v.kind != VAL_TUPLE) || v.n != 2 ||
      !as_number(&v.items[0], &o->beta1) ||
      !as_number(&v.items[1], &o->beta2) || o->beta1 < 0 || o->beta1 >= 1 ||
      o->beta2 < 0 || o->beta2 >= 1)
    return c->err->status && e->kind != AST_CALL
               ? c->err->status
               : config_expected_error(
                     c, e, what, "a pair (beta1, beta2) of numbers in [0, 1)");
  return KILN_OK;
}

static const cfg_field sgd_args[] = {
    {"lr", CHK_NUM_POS, ST_F64, offsetof(ir_optim, lr), NULL, true},
    FIELD("momentum", CHK_FRACTION, ST_F64, ir_optim, momentum),
    FIELD("nesterov", CHK_BOOL, ST_BOOL, ir_optim, nesterov),
};
static const cfg_field adagrad_args[] = {
    {"lr", CHK_NUM_POS, ST_F64, offsetof(ir_optim, lr), NULL, true},
    FIELD("eps", CHK_NUM_POS, ST_F64, ir_optim, eps),
};
static const cfg_field rmsprop_args[] = {
    {"lr", CHK_NUM_POS, ST_F64, offsetof(ir_optim, lr), NULL, true},
    FIELD("alpha", CHK_FRACTION, ST_F64, ir_optim, alpha),
    FIELD("eps", CHK_NUM_POS, ST_F64, ir_optim, eps),
    FIELD("momentum", CHK_FRACTION, ST_F64, ir_optim, momentum),
};
static const cfg_field adam_args[] = {
    {"lr", CHK_NUM_POS, ST_F64, offsetof(ir_optim, lr), NULL, true},
    CUSTOM("betas", parse_betas),
    FIELD("eps", CHK_NUM_POS, ST_F64, ir_optim, eps),
};
static const cfg_call optimizers[] = {
    CALL("sgd", IR_OPTIM_SGD, sgd_args),
    CALL("adagrad", IR_OPTIM_ADAGRAD, adagrad_args),
    CALL("rmsprop", IR_OPTIM_RMSPROP, rmsprop_args),
    CALL("adam", IR_OPTIM_ADAM, adam_args),
    CALL("adamw", IR_OPTIM_ADAMW, adam_args),
};

/* The defaults of PyTorch's optimizers. */
static void optim_reset(void *obj, int kind) {
  ir_optim *o = obj;
  memset(o, 0, sizeof *o);
  o->kind = (ir_optim_kind)kind;
  o->beta1 = 0.9;
  o->beta2 = 0.999;
  o->eps = kind == IR_OPTIM_ADAGRAD ? 1e-10 : 1e-8;
  o->alpha = 0.99;
}

static kiln_status parse_optimizer(cfg_ctx *c, void *obj, const ast_expr *e,
                                   const char *what) {
  ir_train_cfg *t = obj;
  kiln_status st =
      apply_call(c, e, what, "optimizer", optimizers,
                 (int)ARRAY_LEN(optimizers), &t->optim, optim_reset, NULL);
  if (!st && t->optim.nesterov && t->optim.momentum == 0)
    return diag_error(c->err, KILN_ERR_TYPE, e->loc,
                      "nesterov needs a momentum > 0");
  return st;
}

static kiln_status parse_milestones(cfg_ctx *c, void *obj, const ast_expr *e,
                                    const char *what) {
  ir_schedule *s = obj;
  value v;
  const char *expected = "a list of increasing positive integers (at most 16)";
  if (e->kind == AST_CALL)
    return config_expected_error(c, e, what, expected);
  if (elab_eval_const(c->a, e, &v, c->err))
    return c->err->status;
  if ((v.kind != VAL_LIST && v.kind != VAL_TUPLE) || v.n > IR_MAX_MILESTONES)
    return config_expected_error(c, e, what, expected);
  for (int k = 0; k < v.n; k++) {
    const value *m = &v.items[k];
    if (m->kind != VAL_INT || m->i < 1 || (k && m->i <= v.items[k - 1].i))
      return config_expected_error(c, e, what, expected);
    s->milestones[k] = m->i;
  }
  s->n_milestones = v.n;
  return KILN_OK;
}

#define WARMUP                                                                 \
  FIELD("warmup_steps", CHK_INT_NONNEG, ST_I64, ir_schedule, warmup_steps),    \
      FIELD("warmup_epochs", CHK_NUM_NONNEG, ST_F64, ir_schedule,              \
            warmup_epochs)
static const cfg_field constant_args[] = {WARMUP};
static const cfg_field step_args[] = {
    CUSTOM("milestones", parse_milestones),
    FIELD("gamma", CHK_NUM_POS, ST_F64, ir_schedule, gamma),
    WARMUP,
};
static const cfg_field decay_args[] = {
    FIELD("min_lr", CHK_NUM_NONNEG, ST_F64, ir_schedule, min_lr),
    WARMUP,
};
static const cfg_call schedules[] = {
    CALL("constant", IR_SCHED_CONSTANT, constant_args),
    CALL("step", IR_SCHED_STEP, step_args),
    CALL("cosine", IR_SCHED_COSINE, decay_args),
    CALL("linear", IR_SCHED_LINEAR, decay_args),
    CALL("inverse_sqrt", IR_SCHED_INVERSE_SQRT, constant_args),
};

static void sched_reset(void *obj, int kind) {
  ir_schedule *s = obj;
  memset(s, 0, sizeof *s);
  s->kind = (ir_sched_kind)kind;
  s->gamma = 0.1;
  if (kind == IR_SCHED_STEP) {
    s->n_milestones = 2;
    s->milestones[0] = 30;
    s->milestones[1] = 60;
  }
}

static kiln_status parse_schedule(cfg_ctx *c, void *obj, const ast_expr *e,
                                  const char *what) {
  ir_train_cfg *t = obj;
  kiln_status st =
      apply_call(c, e, what, "schedule", schedules, (int)ARRAY_LEN(schedules),
                 &t->schedule, sched_reset, NULL);
  if (!st && t->schedule.warmup_steps > 0 && t->schedule.warmup_epochs > 0)
    return diag_error(c->err, KILN_ERR_TYPE, e->loc,
                      "give warmup_steps or warmup_epochs, not both");
  return st;
}

static const cfg_field early_args[] = {
    FIELD("patience", CHK_INT_POS, ST_I64, ir_train_cfg, early_stop_patience),
    FIELD("min_delta", CHK_NUM_NONNEG, ST_F64, ir_train_cfg,
          early_stop_min_delta),
};
static const cfg_call early_calls[] = {CALL("early_stopping", 0, early_args)};

static void early_reset(void *obj, int kind) {
  ir_train_cfg *t = obj;
  (void)kind;
  t->early_stop_patience = 3;
  t->early_stop_min_delta = 0;
}

static kiln_status parse_early(cfg_ctx *c, void *obj, const ast_expr *e,
                               const char *what) {
  return apply_call(c, e, what, "early-stopping rule", early_calls, 1, obj,
                    early_reset, NULL);
}

static kiln_status parse_wd_mode(cfg_ctx *c, void *obj, const ast_expr *e,
                                 const char *what) {
  static const char *const modes[] = {"l2", "decoupled"};
  int k = 0;
  kiln_status st = config_parse_symbol(c, e, what, modes, 2, &k);
  if (!st)
    ((ir_train_cfg *)obj)->weight_decay_mode = k ? IR_WD_DECOUPLED : IR_WD_L2;
  return st;
}

/* freeze = [conv1, layer1] (or one name): layer or block names; elab.c
 * checks that they name layers. */
static kiln_status parse_freeze(cfg_ctx *c, void *obj, const ast_expr *e,
                                const char *what) {
  ir_train_cfg *t = obj;
  bool is_list = e->kind == AST_LIST || e->kind == AST_TUPLE;
  int n = is_list ? e->n_args : 1;
  const char *expected = "a list of layer names (at most 64)";
  if (n > IR_MAX_NAMES)
    return config_expected_error(c, e, what, expected);
  for (int k = 0; k < n; k++) {
    const ast_expr *item = is_list ? e->args[k] : e;
    if (item->kind != AST_NAME && item->kind != AST_STRING)
      return config_expected_error(c, e, what, expected);
    t->freeze[k] = item->s;
  }
  t->n_freeze = n;
  return KILN_OK;
}

static const cfg_field train_keys[] = {
    CUSTOM("optimizer", parse_optimizer),
    CUSTOM("schedule", parse_schedule),
    FIELD("batch", CHK_INT_POS, ST_I64, ir_train_cfg, batch),
    FIELD("base_batch", CHK_INT_POS, ST_I64, ir_train_cfg, base_batch),
    FIELD("epochs", CHK_INT_POS, ST_I64, ir_train_cfg, epochs),
    FIELD("weight_decay", CHK_NUM_NONNEG, ST_F64, ir_train_cfg, weight_decay),
    CUSTOM("weight_decay_mode", parse_wd_mode),
    FIELD("l1", CHK_NUM_NONNEG, ST_F64, ir_train_cfg, l1),
    FIELD("clip_grad_norm", CHK_NUM_POS, ST_F64, ir_train_cfg, clip_grad_norm),
    FIELD("ema", CHK_FRACTION, ST_F64, ir_train_cfg, ema),
    FIELD("seed", CHK_INT_NONNEG, ST_U64, ir_train_cfg, seed),
    CUSTOM("early_stopping", parse_early),
    CUSTOM("freeze", parse_freeze),
    FIELD("finetune", CHK_STRING, ST_STR, ir_train_cfg, finetune_from),
    FIELD("loss", CHK_NAME, ST_STR, ir_train_cfg, loss),
};

/* ---- data ---- */

static kiln_status parse_format(cfg_ctx *c, void *obj, const ast_expr *e,
                                const char *what) {
  static const char *const formats[] = {"idx", "npy", "csv"};
  static const ir_data_format kinds[] = {IR_DATA_IDX, IR_DATA_NPY, IR_DATA_CSV};
  int k = 0;
  kiln_status st = config_parse_symbol(c, e, what, formats, 3, &k);
  if (!st)
    ((ir_data_cfg *)obj)->format = kinds[k];
  return st;
}

static kiln_status parse_normalize(cfg_ctx *c, void *obj, const ast_expr *e,
                                   const char *what) {
  ir_data_cfg *d = obj;
  value v;
  const char *expected = "a pair (mean, std) of numbers with std > 0";
  if (e->kind == AST_CALL)
    return config_expected_error(c, e, what, expected);
  if (elab_eval_const(c->a, e, &v, c->err))
    return c->err->status;
  if ((v.kind != VAL_LIST && v.kind != VAL_TUPLE) || v.n != 2 ||
      !as_number(&v.items[0], &d->mean) || !as_number(&v.items[1], &d->std) ||
      d->std <= 0)
    return config_expected_error(c, e, what, expected);
  return KILN_OK;
}

static const cfg_field crop_args[] = {
    FIELD("padding", CHK_INT_NONNEG, ST_I64, ir_augment, padding),
};
static const cfg_field flip_args[] = {
    FIELD("p", CHK_PROB, ST_F64, ir_augment, p),
};
static const cfg_field cutout_args[] = {
    FIELD("size", CHK_INT_POS, ST_I64, ir_augment, size),
    FIELD("p", CHK_PROB, ST_F64, ir_augment, p),
};
static const cfg_call augments[] = {
    CALL("random_crop", IR_AUG_RANDOM_CROP, crop_args),
    CALL("hflip", IR_AUG_HFLIP, flip_args),
    CALL("cutout", IR_AUG_CUTOUT, cutout_args),
};

static void aug_reset(void *obj, int kind) {
  ir_augment *a = obj;
  memset(a, 0, sizeof *a);
  a->kind = (ir_aug_kind)kind;
  a->padding = 4;
  a->size = 8;
  a->p = kind == IR_AUG_HFLIP ? 0.5 : 1.0;
}

/* augment = [random_crop(padding=4), hflip()] (or one call). */
static kiln_status parse_augment(cfg_ctx *c, void *obj, const ast_expr *e,
                                 const char *what) {
  ir_data_cfg *d = obj;
  bool is_list = e->kind == AST_LIST || e->kind == AST_TUPLE;
  int n = is_list ? e->n_args : 1;
  if (n > IR_MAX_AUGMENT)
    return config_expected_error(c, e, what, "at most 8 augmentations");
  for (int k = 0; k < n; k++) {
    kiln_status st =
        apply_call(c, is_list ? e->args[k] : e, what, "augmentation", augments,
                   (int)ARRAY_LEN(augments), &d->augment[k], aug_reset, NULL);
    if (st)
      return st;
  }
  d->n_augment = n;
  return KILN_OK;
}

static const cfg_field data_keys[] = {
    CUSTOM("format", parse_format),
    FIELD("train_images", CHK_STRING, ST_STR, ir_data_cfg, train_images),
    FIELD("train_labels", CHK_STRING, ST_STR, ir_data_cfg, train_labels),
    FIELD("test_images", CHK_STRING, ST_STR, ir_data_cfg, test_images),
    FIELD("test_labels", CHK_STRING, ST_STR, ir_data_cfg, test_labels),
    FIELD("validation", CHK_FRACTION, ST_F64, ir_data_cfg, validation),
    FIELD("shuffle", CHK_BOOL, ST_BOOL, ir_data_cfg, shuffle),
    CUSTOM("normalize", parse_normalize),
    CUSTOM("augment", parse_augment),
};

/* ---- sections ---- */

kiln_status config_apply_section(cfg_ctx *c, const ast_section *s,
                                 const cfg_field *keys, int n_keys, void *obj) {
  const char *names[32];
  KILN_ASSERT(n_keys <= (int)ARRAY_LEN(names));
  for (int k = 0; k < n_keys; k++)
    names[k] = keys[k].name;
  for (int k = 0; k < s->n_entries; k++) {
    const ast_entry *ent = &s->entries[k];
    for (int j = 0; j < k; j++)
      if (strcmp(s->entries[j].key, ent->key) == 0) {
        diag_error(c->err, KILN_ERR_NAME, ent->loc,
                   "duplicate key '%s' in section '%s'", ent->key, s->name);
        diag_note(c->err, s->entries[j].loc, "'%s' is first set here",
                  ent->key);
        return KILN_ERR_NAME;
      }
    const cfg_field *f = NULL;
    for (int j = 0; j < n_keys; j++)
      if (strcmp(keys[j].name, ent->key) == 0)
        f = &keys[j];
    if (!f) {
      const char *hint = suggest_closest(ent->key, names, n_keys);
      return diag_error(c->err, KILN_ERR_NAME, ent->loc,
                        "unknown key '%s' in section '%s'%s%s%s", ent->key,
                        s->name, hint ? " (did you mean '" : "",
                        hint ? hint : "", hint ? "'?)" : "");
    }
    kiln_status st =
        set_field(c, obj, f, ent->value, arena_printf(c->a, "'%s'", ent->key));
    if (st)
      return st;
  }
  return KILN_OK;
}

static bool has_key(const ast_section *s, const char *key) {
  for (int k = 0; k < s->n_entries; k++)
    if (strcmp(s->entries[k].key, key) == 0)
      return true;
  return false;
}

kiln_status config_train(const ast_section *s, ir_train_cfg *c,
                         kiln_error *err) {
  arena scratch;
  arena_init(&scratch);
  cfg_ctx ctx = {.a = &scratch, .err = err, .section = "train"};
  ir_train_cfg_default(c);
  kiln_status st =
      config_apply_section(&ctx, s, train_keys, (int)ARRAY_LEN(train_keys), c);
  /* AdamW is Adam with decoupled weight decay: that is its default. */
  if (!st && c->optim.kind == IR_OPTIM_ADAMW &&
      !has_key(s, "weight_decay_mode"))
    c->weight_decay_mode = IR_WD_DECOUPLED;
  arena_free(&scratch);
  return st;
}

kiln_status config_data(const ast_section *s, ir_data_cfg *c, kiln_error *err) {
  arena scratch;
  arena_init(&scratch);
  cfg_ctx ctx = {.a = &scratch, .err = err, .section = "data"};
  ir_data_cfg_default(c);
  kiln_status st =
      config_apply_section(&ctx, s, data_keys, (int)ARRAY_LEN(data_keys), c);
  arena_free(&scratch);
  return st;
}
