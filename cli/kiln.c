/* kiln.c — the `kiln` command: parses flags and calls the library through
 * <kiln.h>, nothing else. Every command is one row of `commands` (name, the
 * function that runs it, its flags, its operands and its help line); the
 * usage text is generated from that table, so a new command (train, eval,
 * compile, bench) is a function and a row.
 *
 * Exit status: 0 success, 1 a model or file failed (the library's located
 * message goes to stderr), 2 a usage error (unknown command or flag, missing
 * operand; the message and the usage go to stderr). */
#include <kiln.h>

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__)
#define CLI_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define CLI_PRINTF(f, a)
#endif

enum { EXIT_USAGE = 2 };
enum { MAX_FLAGS = 8 };

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
  bool given[MAX_FLAGS];
  const char *value[MAX_FLAGS];
  int n_files;
  char **files;
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

/* Flag indices, per command, into cli_args.given/value. */
enum { CHECK_QUIET };
enum { DUMP_DOT, DUMP_OUTPUT };
enum {
  TRAIN_EPOCHS,
  TRAIN_BATCH,
  TRAIN_LR,
  TRAIN_SEED,
  TRAIN_METRICS,
  TRAIN_MAX_STEPS,
  TRAIN_BACKEND
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
     .min_files = 1,
     .max_files = 1,
     .flags = {{"--dot", NULL, NULL, "write Graphviz dot, not the IR text"},
               {"--output", "-o", "FILE",
                "write to FILE instead of standard output"}},
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
               {"--max-steps", NULL, "N", "stop after N steps"},
               {"--backend", NULL, "NAME", "where to run: reference"}},
     .help = "train a model on its data section's data"},
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
static int edit_distance(const char *a, const char *b) {
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
    int d = edit_distance(word, cand);
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
    if (!is_long && !is_short)
      continue;
    a->given[k] = true;
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

static int cmd_dump(const cli_args *a) {
  const char *path = a->files[0];
  kiln_error err;
  kiln_model *m = kiln_model_load_file(path, &err);
  if (!m) {
    fputs(err.message, stderr);
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
      return 1;
    }
  }
  if (a->given[DUMP_DOT])
    kiln_model_write_dot(m, out);
  else
    kiln_model_dump(m, out);
  kiln_model_free(m);
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
    usage_error(command_find("train"),
                "%s needs a non-negative integer, "
                "not '%s'",
                name, a->value[k]);
    return false;
  }
  *out = v;
  return true;
}

static int cmd_train(const cli_args *a) {
  const char *backend = a->value[TRAIN_BACKEND];
  if (backend && strcmp(backend, "reference") != 0) {
    fprintf(stderr,
            "kiln train: backend '%s' is not built yet; available: "
            "reference\n",
            backend);
    return 1;
  }
  kiln_train_opts o = {.log = stderr, .metrics_csv = a->value[TRAIN_METRICS]};
  int64_t seed = 0;
  if (!parse_int_flag(a, TRAIN_EPOCHS, "--epochs", &o.epochs) ||
      !parse_int_flag(a, TRAIN_BATCH, "--batch", &o.batch) ||
      !parse_int_flag(a, TRAIN_SEED, "--seed", &seed) ||
      !parse_int_flag(a, TRAIN_MAX_STEPS, "--max-steps", &o.max_steps))
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
  if (!a.files) {
    fputs("kiln: out of memory\n", stderr);
    return 1;
  }
  int rc = parse_args(c, &a, argc, argv, 2);
  if (rc == 0)
    rc = c->run(&a);
  else if (rc < 0)
    rc = 0;
  free(a.files);
  return rc;
}
