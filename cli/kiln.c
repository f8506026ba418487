/* kiln.c — the `kiln` command: parses flags and calls the library through
 * <kiln.h>, nothing else. Every command is one row of `commands` (name, the
 * function that runs it, its flags, its operands and its help line); the
 * usage text is generated from that table, so a new command (train, eval,
 * compile, bench) is a function and a row. Internal commands (dump's graph
 * pass flags) reach the graph through frontend/load.h and passes/passes.h.
 *
 * Exit status: 0 success, 1 a model or file failed (the library's located
 * message goes to stderr), 2 a usage error (unknown command or flag, missing
 * operand; the message and the usage go to stderr). */
#include <kiln.h>

#include "frontend/load.h"
#include "passes/memplan.h"
#include "passes/passes.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__GNUC__)
#define CLI_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define CLI_PRINTF(f, a)
#endif

enum { EXIT_USAGE = 2 };
enum { MAX_FLAGS = 12 };

/* A flag of one command. `value` names the flag's argument ("FILE"), or is
 * NULL for a switch. */
typedef struct flag_spec {
  const char *long_name;  /* "--quiet" */
  const char *short_name; /* "-q", or NULL */
  const char *value;
  const char *help;
} flag_spec;

typedef struct command command;

/* What the parser found: which flags were given (with their values) and the
 * operands, in order. */
typedef struct cli_args {
  const command *cmd; /* whose flags these are (for usage errors) */
  bool given[MAX_FLAGS];
  const char *value[MAX_FLAGS];
  int n_files;
  char **files;
  /* Every value of every flag, in order (argc entries), for flags that
   * may be repeated (--disable-pass). */
  int n_all;
  int *all_flag;
  const char **all_value;
} cli_args;

struct command {
  const char *name;
  int (*run)(const cli_args *a);
  const char *operands; /* for the usage line: "FILE..." */
  int min_files, max_files;
  flag_spec flags[MAX_FLAGS]; /* ends at the first entry without a name */
  const char *help;
};

static int cmd_check(const cli_args *a);
static int cmd_dump(const cli_args *a);
static int cmd_help(const cli_args *a);
static int cmd_train(const cli_args *a);
static int cmd_eval(const cli_args *a);
static int cmd_compile(const cli_args *a);

/* Flag indices, per command, into cli_args.given/value. */
enum { CHECK_QUIET };
enum {
  DUMP_DOT,
  DUMP_OUTPUT,
  DUMP_AFTER,
  DUMP_PASSES,
  DUMP_OPT,
  DUMP_DISABLE,
  DUMP_FUSE_LIMIT,
  DUMP_INFERENCE,
  DUMP_KERNELS
};
enum {
  COMPILE_STATS,
  COMPILE_BATCH,
  COMPILE_EVAL,
  COMPILE_INPLACE,
  COMPILE_KERNELS
};
enum {
  TRAIN_EPOCHS,
  TRAIN_BATCH,
  TRAIN_LR,
  TRAIN_SEED,
  TRAIN_METRICS,
  TRAIN_MAX_STEPS,
  TRAIN_BACKEND,
  TRAIN_OUT,
  TRAIN_RESUME,
  TRAIN_SVG,
  TRAIN_CKPT_EVERY
};

static const command commands[] = {
    {.name = "check",
     .run = cmd_check,
     .operands = "FILE...",
     .min_files = 1,
     .max_files = -1,
     .flags = {{"--quiet", "-q", NULL,
                "one line per file: name, parameters, MACs"}},
     .help = "load each model, check it and print its layer table"},
    {.name = "dump",
     .run = cmd_dump,
     .operands = "FILE",
     .min_files = 0, /* --passes needs none; cmd_dump checks */
     .max_files = 1,
     .flags = {{"--dot", NULL, NULL, "write Graphviz dot, not the IR text"},
               {"--output", "-o", "FILE",
                "write to FILE instead of standard output"},
               {"--after", NULL, "PASS", "the graph after graph pass PASS"},
               {"--passes", NULL, NULL, "list the graph passes in order"},
               {"--opt-level", "-O", "N", "graph passes to run: -O0, -O1, -O2"},
               {"--disable-pass", NULL, "NAME",
                "skip a pass or fusion pattern (repeatable)"},
               {"--fuse-limit", NULL, "N", "apply only the first N fusions"},
               {"--inference", NULL, NULL,
                "the inference graph (folds batchnorm, drops dropout)"},
               {"--kernels", NULL, NULL,
                "the kernel IR of a training step (kiln compile --kernels)"}},
     .help = "print a model's graph IR"},
    {.name = "train",
     .run = cmd_train,
     .operands = "FILE",
     .min_files = 1,
     .max_files = 1,
     .flags = {{"--epochs", NULL, "N", "passes over the training set"},
               {"--batch", NULL, "N", "examples per step"},
               {"--lr", NULL, "X", "base learning rate"},
               {"--seed", NULL, "N", "initialisation, split and shuffling"},
               {"--metrics", NULL, "FILE", "write per-epoch metrics as CSV"},
               {"--max-steps", NULL, "N", "stop at global step N"},
               {"--backend", NULL, "NAME",
                "where to run: cpu (default) or reference"},
               {"--out", NULL, "DIR",
                "checkpoints, metrics.csv and curve.svg in DIR"},
               {"--resume", NULL, "CKPT", "continue the run CKPT was saved by"},
               {"--svg", NULL, "FILE", "write the learning curve as SVG"},
               {"--checkpoint-every", NULL, "N",
                "epochs between DIR/last.safetensors (default 1)"}},
     .help = "train a model on its data section's data"},
    {.name = "eval",
     .run = cmd_eval,
     .operands = "FILE",
     .min_files = 1,
     .max_files = 1,
     .flags = {{"--weights", NULL, "CKPT", "the checkpoint to evaluate"},
               {"--split", NULL, "SET", "test (default) or val"},
               {"--backend", NULL, "NAME",
                "where to run: cpu (default) or reference"},
               {"--batch", NULL, "N", "examples per run (default: train's)"},
               {"--no-ema", NULL, NULL,
                "the weights themselves, not their EMA"}},
     .help = "evaluate a checkpoint on the model's test or validation set"},
    {.name = "compile",
     .run = cmd_compile,
     .operands = "FILE",
     .min_files = 1,
     .max_files = 1,
     .flags = {{"--stats", NULL, NULL,
                "per kernel: node, bytes read/written, grid; totals, memory"},
               {"--batch", NULL, "N", "examples per step (default: train's)"},
               {"--eval", NULL, NULL, "the evaluation plan, not a train step"},
               {"--inplace", NULL, NULL,
                "plan elementwise outputs over dying inputs"},
               {"--kernels", NULL, NULL, "print every kernel (kernel IR)"}},
     .help = "lower a model to kernels and plan its memory"},
    {.name = "help",
     .run = cmd_help,
     .operands = "[COMMAND]",
     .min_files = 0,
     .max_files = 1,
     .help = "show this text, or one command's flags"},
};
enum { N_COMMANDS = sizeof commands / sizeof commands[0] };

/* ---- usage ---- */

static int flag_count(const command *c) {
  int n = 0;
  while (n < MAX_FLAGS && c->flags[n].long_name)
    n++;
  return n;
}

static void print_flag(FILE *out, const flag_spec *f) {
  char left[64];
  snprintf(left, sizeof left, "%s%s%s%s%s", f->short_name ? f->short_name : "",
           f->short_name ? ", " : "", f->long_name, f->value ? " " : "",
           f->value ? f->value : "");
  fprintf(out, "    %-22s %s\n", left, f->help);
}

static void print_command_usage(FILE *out, const command *c) {
  fprintf(out, "usage: kiln %s%s %s\n", c->name,
          flag_count(c) ? " [flags]" : "", c->operands);
  fprintf(out, "\n%s.\n", c->help);
  if (flag_count(c)) {
    fputs("\nflags:\n", out);
    for (int i = 0; i < flag_count(c); i++)
      print_flag(out, &c->flags[i]);
  }
}

static void print_usage(FILE *out) {
  fputs("usage: kiln COMMAND [flags] [FILE...]\n"
        "       kiln --version | --help\n"
        "\n"
        "kiln compiles neural-network training graphs written in .kiln "
        "files\n(see docs/model-format.md).\n"
        "\ncommands:\n",
        out);
  for (int i = 0; i < N_COMMANDS; i++) {
    const command *c = &commands[i];
    char left[64];
    snprintf(left, sizeof left, "%s %s", c->name, c->operands);
    fprintf(out, "  %-24s %s\n", left, c->help);
    for (int k = 0; k < flag_count(c); k++)
      print_flag(out, &c->flags[k]);
  }
  fputs("\nflags of every command:\n"
        "    -h, --help             show the command's usage\n"
        "    --                     end of flags: what follows are files\n"
        "\nexit status: 0 success, 1 a model or file failed, 2 usage error\n",
        out);
}

static const command *command_find(const char *name) {
  for (int i = 0; i < N_COMMANDS; i++)
    if (strcmp(commands[i].name, name) == 0)
      return &commands[i];
  return NULL;
}

/* ---- flag parsing ---- */

/* Levenshtein distance, for "did you mean" on mistyped commands and flags
 * (short words only: longer ones are never close enough). */
static int cli_edit_distance(const char *a, const char *b) {
  enum { MAX = 32 };
  size_t la = strlen(a), lb = strlen(b);
  if (la >= MAX || lb >= MAX)
    return MAX;
  int row[MAX];
  for (size_t j = 0; j <= lb; j++)
    row[j] = (int)j;
  for (size_t i = 1; i <= la; i++) {
    int diag = row[0];
    row[0] = (int)i;
    for (size_t j = 1; j <= lb; j++) {
      int up = row[j];
      int best = diag + (a[i - 1] != b[j - 1]);
      if (up + 1 < best)
        best = up + 1;
      if (row[j - 1] + 1 < best)
        best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  return row[lb];
}

/* The closest of the command's flags (or of the command names when `c` is
 * NULL) to `word`, or NULL when none is within two edits. */
static const char *closest(const command *c, const char *word) {
  const char *best = NULL;
  int best_d = 3;
  int n = c ? flag_count(c) : N_COMMANDS;
  for (int i = 0; i < n; i++) {
    const char *cand = c ? c->flags[i].long_name : commands[i].name;
    int d = cli_edit_distance(word, cand);
    if (d < best_d) {
      best_d = d;
      best = cand;
    }
  }
  return best;
}

static int usage_error(const command *c, const char *fmt, ...) CLI_PRINTF(2, 3);

/* "kiln check: <message>", a blank line and the usage, on stderr. */
static int usage_error(const command *c, const char *fmt, ...) {
  fprintf(stderr, "kiln%s%s: ", c ? " " : "", c ? c->name : "");
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputs("\n\n", stderr);
  if (c)
    print_command_usage(stderr, c);
  else
    print_usage(stderr);
  return EXIT_USAGE;
}

/* "unknown flag '--quite' (did you mean '--quiet'?)" */
static int unknown_word(const command *c, const char *kind, const char *word) {
  const char *guess = closest(c, word);
  if (guess)
    return usage_error(c, "unknown %s '%s' (did you mean '%s'?)", kind, word,
                       guess);
  return usage_error(c, "unknown %s '%s'", kind, word);
}

/* Matches `arg` against the command's flags. "--output=FILE" carries its
 * value; otherwise a flag that takes one consumes the next argument. */
static int parse_flag(const command *c, cli_args *a, int argc, char **argv,
                      int *i) {
  const char *arg = argv[*i];
  const char *eq = strncmp(arg, "--", 2) == 0 ? strchr(arg, '=') : NULL;
  size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
  for (int k = 0; k < flag_count(c); k++) {
    const flag_spec *f = &c->flags[k];
    bool is_long =
        strlen(f->long_name) == len && strncmp(f->long_name, arg, len) == 0;
    bool is_short = !eq && f->short_name && strcmp(f->short_name, arg) == 0;
    /* "-O2": a short flag with its value attached */
    size_t sl = f->short_name ? strlen(f->short_name) : 0;
    bool attached = !eq && f->value && sl && strlen(arg) > sl &&
                    strncmp(f->short_name, arg, sl) == 0;
    if (!is_long && !is_short && !attached)
      continue;
    a->given[k] = true;
    if (attached)
      eq = arg + sl - 1; /* the value starts after the short name */
    if (!f->value) {
      if (eq)
        return usage_error(c, "flag '%s' takes no value", f->long_name);
      return 0;
    }
    if (eq) {
      a->value[k] = eq + 1;
    } else if (*i + 1 < argc) {
      a->value[k] = argv[++*i];
    } else {
      return usage_error(c, "flag '%s' needs a value", arg);
    }
    a->all_flag[a->n_all] = k;
    a->all_value[a->n_all++] = a->value[k];
    return 0;
  }
  return unknown_word(c, "flag", arg);
}

/* Parses argv[first..] for command `c` into `a` (whose files array has room
 * for argc entries). Returns 0, or the exit status of a usage error; -1 when
 * --help was asked for and printed. */
static int parse_args(const command *c, cli_args *a, int argc, char **argv,
                      int first) {
  bool flags_done = false;
  for (int i = first; i < argc; i++) {
    const char *arg = argv[i];
    if (!flags_done && strcmp(arg, "--") == 0) {
      flags_done = true;
    } else if (!flags_done && arg[0] == '-' && arg[1] != '\0') {
      if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
        print_command_usage(stdout, c);
        return -1;
      }
      int rc = parse_flag(c, a, argc, argv, &i);
      if (rc)
        return rc;
    } else {
      a->files[a->n_files++] = argv[i];
    }
  }
  if (a->n_files < c->min_files)
    return usage_error(c, "no model file given");
  if (c->max_files >= 0 && a->n_files > c->max_files)
    return usage_error(c, "too many operands");
  return 0;
}

/* ---- commands ---- */

/* 61750 -> "61,750" */
static void format_count(char *buf, size_t size, int64_t v) {
  char digits[32];
  snprintf(digits, sizeof digits, "%lld", (long long)(v < 0 ? -v : v));
  size_t n = strlen(digits), o = 0;
  if (v < 0 && o + 1 < size)
    buf[o++] = '-';
  for (size_t i = 0; i < n && o + 1 < size; i++) {
    if (i > 0 && (n - i) % 3 == 0 && o + 1 < size)
      buf[o++] = ',';
    if (o + 1 < size)
      buf[o++] = digits[i];
  }
  buf[o] = '\0';
}

/* 416520 -> "0.42 M", 4089184256 -> "4.09 G" */
static void format_macs(char *buf, size_t size, int64_t macs) {
  if (macs >= 1000000000)
    snprintf(buf, size, "%.2f G", (double)macs / 1e9);
  else
    snprintf(buf, size, "%.2f M", (double)macs / 1e6);
}

static int cmd_check(const cli_args *a) {
  bool quiet = a->given[CHECK_QUIET];
  int failed = 0;
  for (int i = 0; i < a->n_files; i++) {
    const char *path = a->files[i];
    kiln_error err;
    kiln_model *m = kiln_model_load_file(path, &err);
    if (!m) {
      if (quiet)
        printf("%s: FAILED\n", path);
      fflush(stdout);
      fputs(err.message, stderr);
      failed++;
      continue;
    }
    if (quiet) {
      char params[32], macs[32];
      format_count(params, sizeof params, kiln_model_param_count(m));
      format_macs(macs, sizeof macs, kiln_model_macs(m));
      printf("%s: ok (%s, %s params, %s MACs)\n", path, kiln_model_name(m),
             params, macs);
    } else {
      if (a->n_files > 1)
        printf("%s%s:\n", i > 0 ? "\n" : "", path);
      kiln_model_summary(m, stdout);
    }
    kiln_model_free(m);
  }
  fflush(stdout);
  return failed ? 1 : 0;
}

/* dump's graph pass flags as pass_opts; 0, or a usage error's status.
 * `names` (n_all entries) receives the --disable-pass values. */
static int dump_pass_opts(const cli_args *a, pass_opts *po,
                          const char **names) {
  const command *self = command_find("dump");
  pass_opts_default(po);
  const char *lv = a->value[DUMP_OPT];
  if (a->given[DUMP_OPT]) {
    if (strlen(lv) != 1 || lv[0] < '0' || lv[0] > '2')
      return usage_error(self, "-O needs 0, 1 or 2, not '%s'", lv);
    po->opt_level = lv[0] - '0';
  }
  if (a->given[DUMP_FUSE_LIMIT]) {
    const char *v = a->value[DUMP_FUSE_LIMIT];
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || end == v || *end || n < 0)
      return usage_error(
          self, "--fuse-limit needs a non-negative integer, not '%s'", v);
    po->fuse_limit = n;
  }
  int n = 0;
  for (int i = 0; i < a->n_all; i++) {
    if (a->all_flag[i] == DUMP_DISABLE)
      names[n++] = a->all_value[i];
  }
  po->n_disabled = n;
  po->disabled = names;
  po->inference = a->given[DUMP_INFERENCE];
  po->dump_after = a->value[DUMP_AFTER];
  po->dump_dot = a->given[DUMP_DOT];
  return 0;
}

static int cmd_dump(const cli_args *a) {
  if (a->given[DUMP_PASSES]) {
    pass_print_pipeline(stdout);
    return 0;
  }
  if (a->n_files == 0)
    return usage_error(command_find("dump"), "no model file given");
  bool passes = a->given[DUMP_AFTER] || a->given[DUMP_OPT] ||
                a->given[DUMP_DISABLE] || a->given[DUMP_FUSE_LIMIT] ||
                a->given[DUMP_INFERENCE];
  pass_opts po;
  const char **names = calloc((size_t)a->n_all + 1, sizeof *names);
  if (!names) {
    fputs("kiln: out of memory\n", stderr);
    return 1;
  }
  int rc = dump_pass_opts(a, &po, names);
  if (rc) {
    free((void *)names);
    return rc;
  }
  const char *path = a->files[0];
  kiln_error err;
  kiln_model *m = kiln_model_load_file(path, &err);
  if (!m) {
    fputs(err.message, stderr);
    free((void *)names);
    return 1;
  }
  const char *out_path = a->value[DUMP_OUTPUT];
  FILE *out = stdout;
  if (out_path && strcmp(out_path, "-") != 0) {
    out = fopen(out_path, "w");
    if (!out) {
      fprintf(stderr, "kiln dump: cannot open '%s' for writing: %s\n", out_path,
              strerror(errno));
      kiln_model_free(m);
      free((void *)names);
      return 1;
    }
  }
  po.dump_out = out;
  if (a->given[DUMP_KERNELS]) {
    /* the training step's kernels, at the train section's batch */
    pass_compile_opts co = {.kernels = true};
    kiln_status st = pass_compile_model(m, &co, out, &err);
    if (st)
      fputs(err.message, stderr);
    kiln_model_free(m);
    free((void *)names);
    if (out != stdout)
      fclose(out);
    return st ? 1 : 0;
  }
  if (passes) {
    /* the graph after --after PASS, or after the whole pipeline */
    kiln_status st = pass_run_pipeline(&m->g, &po, &err);
    if (st) {
      fputs(err.message, stderr);
      kiln_model_free(m);
      free((void *)names);
      if (out != stdout)
        fclose(out);
      return st == KILN_ERR_NAME ? EXIT_USAGE : 1;
    }
  }
  if (passes && po.dump_after) {
    /* printed by the pass manager */
  } else if (a->given[DUMP_DOT]) {
    kiln_model_write_dot(m, out);
  } else {
    kiln_model_dump(m, out);
  }
  kiln_model_free(m);
  free((void *)names);
  bool bad = fflush(out) != 0 || ferror(out);
  if (out != stdout && fclose(out) != 0)
    bad = true;
  if (bad) {
    fprintf(stderr, "kiln dump: cannot write '%s'\n",
            out == stdout ? "standard output" : out_path);
    return 1;
  }
  return 0;
}

/* A flag's whole value as a number; a usage error otherwise. */
static bool parse_int_flag(const cli_args *a, int k, const char *name,
                           int64_t *out) {
  if (!a->given[k])
    return true;
  char *end;
  errno = 0;
  long long v = strtoll(a->value[k], &end, 10);
  if (errno || end == a->value[k] || *end || v < 0) {
    usage_error(a->cmd ? a->cmd : command_find("train"),
                "%s needs a non-negative integer, "
                "not '%s'",
                name, a->value[k]);
    return false;
  }
  *out = v;
  return true;
}

static int cmd_train(const cli_args *a) {
  /* The library checks the name and lists the backends it has. */
  kiln_train_opts o = {.log = stderr,
                       .metrics_csv = a->value[TRAIN_METRICS],
                       .backend = a->value[TRAIN_BACKEND],
                       .out_dir = a->value[TRAIN_OUT],
                       .resume = a->value[TRAIN_RESUME],
                       .curve_svg = a->value[TRAIN_SVG],
                       .progress_tty = isatty(fileno(stderr)) == 1};
  int64_t seed = 0;
  if (!parse_int_flag(a, TRAIN_EPOCHS, "--epochs", &o.epochs) ||
      !parse_int_flag(a, TRAIN_BATCH, "--batch", &o.batch) ||
      !parse_int_flag(a, TRAIN_SEED, "--seed", &seed) ||
      !parse_int_flag(a, TRAIN_MAX_STEPS, "--max-steps", &o.max_steps) ||
      !parse_int_flag(a, TRAIN_CKPT_EVERY, "--checkpoint-every",
                      &o.checkpoint_every))
    return EXIT_USAGE;
  o.seed = (uint64_t)seed;
  o.has_seed = a->given[TRAIN_SEED];
  if (a->given[TRAIN_LR]) {
    char *end;
    o.lr = strtod(a->value[TRAIN_LR], &end);
    if (end == a->value[TRAIN_LR] || *end || !(o.lr > 0))
      return usage_error(command_find("train"),
                         "--lr needs a positive number, not '%s'",
                         a->value[TRAIN_LR]);
  }
  kiln_error err;
  kiln_model *m = kiln_model_load_file(a->files[0], &err);
  if (!m) {
    fputs(err.message, stderr);
    return 1;
  }
  kiln_status st = kiln_train(m, &o, &err);
  if (st)
    fputs(err.message, stderr);
  kiln_model_free(m);
  return st ? 1 : 0;
}

enum { EVAL_WEIGHTS, EVAL_SPLIT, EVAL_BACKEND, EVAL_BATCH, EVAL_NO_EMA };

/* "test loss 0.3412 acc 87.9% (9984 examples, EMA weights)" on stdout. */
static int cmd_eval(const cli_args *a) {
  const command *c = command_find("eval");
  if (!a->given[EVAL_WEIGHTS])
    return usage_error(c, "--weights CKPT is required");
  const char *split = a->given[EVAL_SPLIT] ? a->value[EVAL_SPLIT] : "test";
  if (strcmp(split, "test") != 0 && strcmp(split, "val") != 0)
    return usage_error(c, "--split is test or val, not '%s'", split);
  kiln_eval_opts o = {.split = split,
                      .backend = a->value[EVAL_BACKEND],
                      .no_ema = a->given[EVAL_NO_EMA],
                      .log = stderr};
  if (!parse_int_flag(a, EVAL_BATCH, "--batch", &o.batch))
    return EXIT_USAGE;
  kiln_error err;
  kiln_model *m = kiln_model_load_file(a->files[0], &err);
  if (!m) {
    fputs(err.message, stderr);
    return 1;
  }
  kiln_eval_result r;
  kiln_status st = kiln_eval(m, a->value[EVAL_WEIGHTS], &o, &r, &err);
  if (st)
    fputs(err.message, stderr);
  else
    printf("%s loss %.4f acc %.1f%% (%lld examples%s)\n", split, r.loss,
           r.acc == r.acc ? r.acc : 0.0, (long long)r.examples,
           r.ema ? ", EMA weights" : "");
  kiln_model_free(m);
  return st ? 1 : 0;
}

static int cmd_compile(const cli_args *a) {
  int64_t batch = 0;
  if (!parse_int_flag(a, COMPILE_BATCH, "--batch", &batch))
    return EXIT_USAGE;
  kiln_error err;
  kiln_model *m = kiln_model_load_file(a->files[0], &err);
  if (!m) {
    fputs(err.message, stderr);
    return 1;
  }
  pass_compile_opts o = {.batch = batch,
                         .eval = a->given[COMPILE_EVAL],
                         .stats = a->given[COMPILE_STATS],
                         .inplace = a->given[COMPILE_INPLACE],
                         .kernels = a->given[COMPILE_KERNELS]};
  kiln_status st = pass_compile_model(m, &o, stdout, &err);
  if (st)
    fputs(err.message, stderr);
  kiln_model_free(m);
  return st ? 1 : 0;
}

static int cmd_help(const cli_args *a) {
  if (a->n_files == 0) {
    print_usage(stdout);
    return 0;
  }
  const command *c = command_find(a->files[0]);
  if (!c)
    return usage_error(NULL, "unknown command '%s'", a->files[0]);
  print_command_usage(stdout, c);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    print_usage(stderr);
    return EXIT_USAGE;
  }
  const char *name = argv[1];
  if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0) {
    printf("kiln %s\n", kiln_version());
    return 0;
  }
  if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)
    name = "help";
  const command *c = command_find(name);
  if (!c) {
    return unknown_word(NULL, name[0] == '-' ? "flag" : "command", name);
  }
  cli_args a = {0};
  a.files = calloc((size_t)argc, sizeof *a.files);
  a.all_flag = calloc((size_t)argc, sizeof *a.all_flag);
  a.all_value = calloc((size_t)argc, sizeof *a.all_value);
  if (!a.files || !a.all_flag || !a.all_value) {
    fputs("kiln: out of memory\n", stderr);
    return 1;
  }
  a.cmd = c;
  int rc = parse_args(c, &a, argc, argv, 2);
  if (rc == 0)
    rc = c->run(&a);
  else if (rc < 0)
    rc = 0;
  free(a.files);
  free(a.all_flag);
  free(a.all_value);
  return rc;
}
