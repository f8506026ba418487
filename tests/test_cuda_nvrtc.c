/* test_cuda_nvrtc.c — NVRTC, the kernel cache and the models' kernels,
 * without a GPU (the renderer itself: test_cuda_codegen.c):
 *
 *   1. the disk cache: a hit, a miss on a changed option, arch or source,
 *      a corrupt or truncated entry ignored and rewritten, no_cache, the
 *      location's environment variables, the key's FNV-1a 128 known
 *      answers;
 *   2. the error path (kernel name, architecture, NVRTC log, numbered
 *      source) and warnings as errors;
 *   3. parallel compiles, one broken job among good ones;
 *   4. every kernel of the TRAIN and EVAL plans of every model in models/
 *      (batch 3), compiled in parallel for sm_80 and sm_90 with warnings as
 *      errors and the cache bypassed — the CI check that every generated
 *      kernel compiles. */
#include "codegen/cuda/cuda.h"
#include "frontend/load.h"
#include "passes/lower.h"
#include "test.h"

#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* LeakSanitizer (clang 14) crashes while scanning the dynamic TLS of the
 * libraries NVRTC loads with dlopen ("Tracer caught signal 11" at exit,
 * after every test passed). Under sanitizers only, these hooks skip TLS as
 * a root, which can only add reports, and suppress the one that adds:
 * glibc's own pthread_setspecific block, reachable only from TLS. */
const char *__lsan_default_options(void);
const char *__lsan_default_options(void) {
  return "use_tls=0";
}
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) {
  return "leak:pthread_setspecific\n";
}

static arena A;
static char tmp_dir[] = "/tmp/kiln_nvrtc_test_XXXXXX";

static char *render(const kir_kernel *k) {
  strbuf sb;
  strbuf_init(&sb);
  cg_cuda_render(&sb, k);
  return sb.data;
}

/* A small hand-written kernel; `c` makes each source distinct. */
static char *probe_src(const char *name, int c) {
  strbuf sb;
  strbuf_init(&sb);
  strbuf_printf(&sb,
                "extern \"C\" __global__ void %s(float *__restrict__ y,\n"
                "                                 const float *__restrict__ x) "
                "{\n"
                "  const int i = blockIdx.x * blockDim.x + threadIdx.x;\n"
                "  if (i < %d)\n"
                "    y[i] = tanhf(x[i]) * %d.0f + expf(-x[i]);\n"
                "}\n",
                name, 1000 + c, c);
  return sb.data;
}

/* ---- 1. the cache ---- */

/* Files in dir whose name ends with `suffix` (or, with anywhere, holds
 * it). */
static int count_files(const char *dir, const char *suffix, bool anywhere) {
  DIR *d = opendir(dir);
  if (!d)
    return 0;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    size_t len = strlen(e->d_name), sl = strlen(suffix);
    if (anywhere ? strstr(e->d_name, suffix) != NULL
                 : len > sl && strcmp(e->d_name + len - sl, suffix) == 0)
      n++;
  }
  closedir(d);
  return n;
}

/* Applies f to every "*.cubin" entry of dir. */
static void each_entry(const char *dir, void (*f)(const char *path)) {
  DIR *d = opendir(dir);
  struct dirent *e;
  while (d && (e = readdir(d))) {
    size_t len = strlen(e->d_name);
    if (len > 6 && strcmp(e->d_name + len - 6, ".cubin") == 0) {
      char path[600];
      snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
      f(path);
    }
  }
  if (d)
    closedir(d);
}

static void flip_a_payload_byte(const char *path) {
  FILE *f = fopen(path, "r+b");
  KILN_ASSERT(f);
  fseek(f, 100, SEEK_SET);
  int c = fgetc(f);
  fseek(f, 100, SEEK_SET);
  fputc(c ^ 0x40, f);
  fclose(f);
}

static void truncate_entry(const char *path) {
  KILN_ASSERT(truncate(path, 60) == 0);
}

static bool compile_cached(const char *src, cg_cuda_opts *o, cg_cuda_stats *st,
                           cg_cuda_binary *bin) {
  kiln_error err = {0};
  if (cg_cuda_compile("cache_probe", src, o, bin, st, &err) != KILN_OK) {
    fprintf(stderr, "%s\n", err.message);
    return false;
  }
  return true;
}

TEST(test_cache) {
  char *src = probe_src("cache_probe", 97);
  char dir[300];
  snprintf(dir, sizeof dir, "%s/cache/nested", tmp_dir);
  cg_cuda_opts o = {.arch = 80, .werror = true, .cache_dir = dir};
  cg_cuda_stats st = {0};
  cg_cuda_binary b1, b2;
  CHECK(compile_cached(src, &o, &st, &b1) && !b1.from_cache);
  CHECK(compile_cached(src, &o, &st, &b2) && b2.from_cache);
  CHECK(b1.size == b2.size && memcmp(b1.data, b2.data, b1.size) == 0);
  CHECK_EQ_INT(st.cold, 1);
  CHECK_EQ_INT(st.warm, 1);
  CHECK(st.cold_s > 0.0 && st.warm_s > 0.0);
  cg_cuda_binary_free(&b2);
  /* Every option and the arch are part of the key. */
  o.lineinfo = true;
  CHECK(compile_cached(src, &o, &st, &b2) && !b2.from_cache);
  cg_cuda_binary_free(&b2);
  o.lineinfo = false;
  o.arch = 90;
  CHECK(compile_cached(src, &o, &st, &b2) && !b2.from_cache);
  cg_cuda_binary_free(&b2);
  o.arch = 80;
  CHECK(compile_cached(src, &o, &st, &b2) && b2.from_cache);
  cg_cuda_binary_free(&b2);
  char *src2 = probe_src("cache_probe", 99);
  CHECK(compile_cached(src2, &o, &st, &b2) && !b2.from_cache);
  cg_cuda_binary_free(&b2);
  CHECK_EQ_INT(count_files(dir, ".cubin", false), 4);
  CHECK_EQ_INT(count_files(dir, ".tmp.", true), 0); /* all renamed */
  CHECK_EQ_INT(st.cold, 4);
  CHECK_EQ_INT(st.warm, 2);
  /* A corrupt entry is a miss, recompiled to the same cubin and rewritten;
   * so is a truncated one. */
  each_entry(dir, flip_a_payload_byte);
  CHECK(compile_cached(src, &o, &st, &b2) && !b2.from_cache);
  CHECK(b1.size == b2.size && memcmp(b1.data, b2.data, b1.size) == 0);
  cg_cuda_binary_free(&b2);
  CHECK(compile_cached(src, &o, &st, &b2) && b2.from_cache);
  cg_cuda_binary_free(&b2);
  each_entry(dir, truncate_entry);
  CHECK(compile_cached(src, &o, &st, &b2) && !b2.from_cache);
  CHECK(b1.size == b2.size && memcmp(b1.data, b2.data, b1.size) == 0);
  cg_cuda_binary_free(&b2);
  /* no_cache neither reads nor writes. */
  char dir2[300];
  snprintf(dir2, sizeof dir2, "%s/cache_off", tmp_dir);
  cg_cuda_opts off = {.arch = 80, .no_cache = true, .cache_dir = dir2};
  CHECK(compile_cached(src, &off, NULL, &b2) && !b2.from_cache);
  cg_cuda_binary_free(&b2);
  CHECK(compile_cached(src, &off, NULL, &b2) && !b2.from_cache);
  cg_cuda_binary_free(&b2);
  struct stat sbuf;
  CHECK(stat(dir2, &sbuf) != 0);
  cg_cuda_binary_free(&b1);
  free(src);
  free(src2);
}

TEST(test_cache_location_and_key) {
  char buf[600], home[600];
  snprintf(home, sizeof home, "%s", getenv("HOME") ? getenv("HOME") : "");
  cg_cuda_opts o = {.arch = 80};
  setenv("KILN_CACHE_DIR", "/x/kc", 1);
  setenv("XDG_CACHE_HOME", "/x/xdg", 1);
  setenv("HOME", "/x/home", 1);
  CHECK_STR_CONTAINS(cg_cuda_cache_dir(&o, buf, sizeof buf), "/x/kc");
  unsetenv("KILN_CACHE_DIR");
  CHECK(strcmp(cg_cuda_cache_dir(&o, buf, sizeof buf), "/x/xdg/kiln") == 0);
  unsetenv("XDG_CACHE_HOME");
  CHECK(strcmp(cg_cuda_cache_dir(&o, buf, sizeof buf), "/x/home/.cache/kiln") ==
        0);
  o.cache_dir = "/explicit";
  CHECK(strcmp(cg_cuda_cache_dir(&o, buf, sizeof buf), "/explicit") == 0);
  /* FNV-1a 128 of the parts, each with its NUL (values from an
   * independent Python implementation checked against the published
   * vector FNV-1a-128("a") = d228cb696f1a8caf78912b704e4a8964). */
  cg_cuda_key k0 = cg_cuda_key_of(NULL, 0);
  CHECK(k0.hi == 0x6c62272e07bb0142u && k0.lo == 0x62b821756295c58du);
  const char *a[] = {"a"};
  cg_cuda_key k1 = cg_cuda_key_of(a, 1);
  CHECK(k1.hi == 0x0880954519ab1be9u && k1.lo == 0x5aa0733055b70e0cu);
  const char *p2[] = {"kiln", "sm_90"};
  cg_cuda_key k2 = cg_cuda_key_of(p2, 2);
  CHECK(k2.hi == 0x6361eeb134fe53feu && k2.lo == 0xd73da104f91714b1u);
  const char *x[] = {"ab", "c"}, *y[] = {"a", "bc"};
  cg_cuda_key kx = cg_cuda_key_of(x, 2), ky = cg_cuda_key_of(y, 2);
  CHECK(kx.hi != ky.hi || kx.lo != ky.lo);
  cg_cuda_cache_path("/d", k1, buf, sizeof buf);
  CHECK(strcmp(buf, "/d/0880954519ab1be95aa0733055b70e0c.cubin") == 0);
  setenv("HOME", home, 1);
}

/* ---- 2. errors and warnings; 3. parallel compiles ---- */

static const char broken_src[] =
    "struct kir_scalars { long long seed, step; float lr; };\n"
    "extern \"C\" __global__ void broken_kernel(float *y,\n"
    "                                          const kir_scalars s) {\n"
    "  y[0] = undefined_name * 2.0f;\n"
    "}\n";

static const char warning_src[] =
    "extern \"C\" __global__ void warns(float *y) {\n"
    "  int unused_var;\n"
    "  y[0] = 1.0f;\n"
    "}\n";

TEST(test_compile_error_reports) {
  cg_cuda_opts o = {.arch = 80, .no_cache = true};
  cg_cuda_binary bin;
  kiln_error err = {0};
  CHECK_EQ_INT(
      cg_cuda_compile("broken_kernel", broken_src, &o, &bin, NULL, &err),
      KILN_ERR_INTERNAL);
  CHECK(bin.data == NULL && bin.size == 0);
  CHECK_STR_CONTAINS(err.message, "kernel 'broken_kernel': NVRTC failed to "
                                  "compile (NVRTC_ERROR_COMPILATION) for "
                                  "sm_80");
  CHECK_STR_CONTAINS(err.message, "broken_kernel.cu(4): error");
  CHECK_STR_CONTAINS(err.message, "undefined_name");
  CHECK_STR_CONTAINS(err.message, "around line 4:");
  CHECK_STR_CONTAINS(err.message, ">    4 |   y[0] = undefined_name * 2.0f;");
  CHECK_STR_CONTAINS(err.message, "     2 | extern \"C\" __global__");

  /* Warnings: fine by default, a failure with werror. */
  CHECK_EQ_INT(cg_cuda_compile("warns", warning_src, &o, &bin, NULL, &err),
               KILN_OK);
  cg_cuda_binary_free(&bin);
  o.werror = true;
  CHECK_EQ_INT(cg_cuda_compile("warns", warning_src, &o, &bin, NULL, &err),
               KILN_ERR_INTERNAL);
  CHECK_STR_CONTAINS(err.message, "kernel 'warns': NVRTC reported warnings");
  CHECK_STR_CONTAINS(err.message, "unused_var");
  CHECK_STR_CONTAINS(err.message, ">    2 |   int unused_var;");
}

TEST(test_parallel_compile) {
  enum { JOBS = 9 };
  cg_cuda_job jobs[JOBS + 1];
  for (int i = 0; i < JOBS; i++) {
    const char *name = arena_printf(&A, "parallel_%d", i);
    jobs[i] = (cg_cuda_job){.name = name, .src = probe_src(name, i)};
  }
  cg_cuda_opts o = {.arch = 90, .werror = true, .no_cache = true};
  cg_cuda_stats st = {0};
  kiln_error err = {0};
  CHECK_EQ_INT(cg_cuda_compile_all(jobs, JOBS, &o, 2, &st, &err), KILN_OK);
  CHECK_EQ_INT(st.cold, JOBS);
  CHECK_EQ_INT(st.warm, 0);
  for (int i = 0; i < JOBS; i++) {
    CHECK(jobs[i].status == KILN_OK && jobs[i].bin.size > 0);
    cg_cuda_binary_free(&jobs[i].bin);
  }
  /* One broken job among good ones: the others still compile and the
   * error names the broken one. */
  jobs[JOBS] = jobs[1];
  jobs[1] = (cg_cuda_job){.name = "broken_kernel", .src = broken_src};
  CHECK_EQ_INT(cg_cuda_compile_all(jobs, JOBS + 1, &o, 3, NULL, &err),
               KILN_ERR_INTERNAL);
  CHECK_STR_CONTAINS(err.message, "kernel 'broken_kernel'");
  CHECK(jobs[1].status == KILN_ERR_INTERNAL);
  for (int i = 0; i <= JOBS; i++) {
    CHECK(i == 1 ? jobs[i].bin.data == NULL : jobs[i].bin.size > 0);
    cg_cuda_binary_free(&jobs[i].bin);
  }
  jobs[1] = jobs[JOBS];
  for (int i = 0; i < JOBS; i++)
    free((char *)jobs[i].src);
}

/* ---- 4. every kernel of every model's plans ---- */

enum { PLAN_BATCH = 3 };

typedef struct job_list {
  cg_cuda_job *jobs;
  cg_cuda_key *keys; /* per job: its source with the name made neutral */
  int n, cap;
  int kernels; /* kernels seen, duplicates included */
} job_list;

/* The source with every occurrence of the kernel's name replaced, so two
 * kernels that differ only in their name get the same key. */
static cg_cuda_key neutral_key(const char *src, const char *name) {
  strbuf sb;
  strbuf_init(&sb);
  size_t len = strlen(name);
  for (const char *p = src; *p;) {
    const char *hit = strstr(p, name);
    if (!hit) {
      strbuf_puts(&sb, p);
      break;
    }
    for (; p < hit; p++)
      strbuf_putc(&sb, *p);
    strbuf_puts(&sb, "KERNEL");
    p += len;
  }
  const char *parts[1] = {sb.data};
  cg_cuda_key key = cg_cuda_key_of(parts, 1);
  strbuf_free(&sb);
  return key;
}

/* Adds a job per distinct kernel text: kernels that differ only in their
 * name (the same layer shape in every block of a ResNet, the update of
 * every parameter of one size) compile to the same code, so one of them
 * stands for all — which keeps this test within its time on 2 cores. */
static void add_plan_jobs(job_list *jl, const kir_plan *p) {
  for (int l = 0; l < p->n_launches; l++) {
    const kir_kernel *k = p->launches[l].k;
    bool seen = false; /* a kernel may be launched more than once */
    for (int l2 = 0; l2 < l && !seen; l2++)
      seen = p->launches[l2].k == k;
    if (seen)
      continue;
    jl->kernels++;
    char *src = render(k);
    cg_cuda_key key = neutral_key(src, k->name);
    for (int j = 0; j < jl->n && !seen; j++)
      seen = jl->keys[j].hi == key.hi && jl->keys[j].lo == key.lo;
    if (seen) {
      free(src);
      continue;
    }
    if (jl->n == jl->cap) {
      jl->cap = jl->cap ? 2 * jl->cap : 256;
      jl->jobs = realloc(jl->jobs, sizeof *jl->jobs * (size_t)jl->cap);
      jl->keys = realloc(jl->keys, sizeof *jl->keys * (size_t)jl->cap);
      KILN_ASSERT(jl->jobs && jl->keys);
    }
    jl->keys[jl->n] = key;
    jl->jobs[jl->n++] = (cg_cuda_job){.name = k->name, .src = src};
  }
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

TEST(test_model_plans_compile) {
  DIR *d = opendir("models");
  CHECK(d != NULL);
  if (!d)
    return;
  char *names[64];
  int n_models = 0;
  struct dirent *e;
  while ((e = readdir(d)) && n_models < 64) {
    size_t len = strlen(e->d_name);
    if (len > 5 && strcmp(e->d_name + len - 5, ".kiln") == 0)
      names[n_models++] = arena_printf(&A, "models/%s", e->d_name);
  }
  closedir(d);
  qsort(names, (size_t)n_models, sizeof *names, cmp_str);
  CHECK(n_models >= 7);

  job_list jl = {0};
  kiln_model *models[64];
  arena plan_arena;
  arena_init(&plan_arena);
  for (int i = 0; i < n_models; i++) {
    kiln_error err = {0};
    kiln_model *m = models[i] = kiln_model_load_file(names[i], &err);
    CHECK(m != NULL);
    if (!m) {
      fprintf(stderr, "%s\n", err.message);
      continue;
    }
    CHECK_EQ_INT(ir_autodiff(&m->g, &err), KILN_OK);
    CHECK_EQ_INT(ir_add_updates(&m->g, &err), KILN_OK);
    for (int mode = 0; mode < 2; mode++) {
      kir_plan p;
      kiln_status st = lower_plan(&m->g, PLAN_BATCH,
                                  mode == 0 ? KIR_PLAN_TRAIN : KIR_PLAN_EVAL,
                                  &plan_arena, &p, &err);
      if (st != KILN_OK) {
        fprintf(stderr, "%s (%s): %s\n", names[i], mode ? "eval" : "train",
                err.message);
        CHECK(!"lowering failed");
        continue;
      }
      CHECK(p.n_launches > 0);
      add_plan_jobs(&jl, &p);
    }
  }
  static const int archs[] = {80, 90};
  for (size_t a = 0; a < ARRAY_LEN(archs); a++) {
    cg_cuda_opts o = {.arch = archs[a], .werror = true, .no_cache = true};
    cg_cuda_stats st = {0};
    kiln_error err = {0};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    kiln_status rc = cg_cuda_compile_all(jl.jobs, jl.n, &o, 0, &st, &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    int failed = 0, slowest = 0;
    for (int j = 0; j < jl.n; j++)
      if (jl.jobs[j].bin.seconds > jl.jobs[slowest].bin.seconds)
        slowest = j;
    if (jl.n > 0)
      printf("slowest: %s, %.2f s\n", jl.jobs[slowest].name,
             jl.jobs[slowest].bin.seconds);
    for (int j = 0; j < jl.n; j++) {
      if (jl.jobs[j].status != KILN_OK && failed++ < 5)
        fprintf(stderr, "%s\n", jl.jobs[j].err.message);
      cg_cuda_binary_free(&jl.jobs[j].bin);
    }
    CHECK_EQ_INT(rc, KILN_OK);
    CHECK_EQ_INT(failed, 0);
    CHECK_EQ_INT(st.cold, jl.n); /* the cache was bypassed */
    printf("models: %d distinct kernels (of %d) compiled for sm_%d in %.1f "
           "s wall (%d threads, %.1f s of NVRTC)\n",
           jl.n, jl.kernels, archs[a],
           (double)(t1.tv_sec - t0.tv_sec) +
               1e-9 * (double)(t1.tv_nsec - t0.tv_nsec),
           cg_cuda_cpu_count(), st.cold_s);
  }
  for (int j = 0; j < jl.n; j++)
    free((char *)jl.jobs[j].src);
  free(jl.jobs);
  free(jl.keys);
  arena_free(&plan_arena);
  for (int i = 0; i < n_models; i++)
    if (models[i])
      kiln_model_free(models[i]);
}

/* `test_cuda_nvrtc NAME...` runs only the tests named. */
static int n_only;
static char **only;
static bool selected(const char *name) {
  for (int i = 0; i < n_only; i++)
    if (strcmp(only[i], name) == 0)
      return true;
  return n_only == 0;
}
#define RUN_IF(name)                                                           \
  do {                                                                         \
    if (selected(#name))                                                       \
      RUN(name);                                                               \
  } while (0)

int main(int argc, char **argv) {
  arena_init(&A);
  int major = 0, minor = 0;
  kiln_error err = {0};
  if (cg_cuda_nvrtc_version(&major, &minor, &err) != KILN_OK) {
    fprintf(stderr, "%s\n", err.message);
    return 1; /* the toolkit is a build requirement: a failure, not a skip */
  }
  printf("NVRTC %d.%d\n", major, minor);
  n_only = argc - 1;
  only = argv + 1;
  if (!mkdtemp(tmp_dir)) {
    perror("mkdtemp");
    return 1;
  }
  RUN_IF(test_cache);
  RUN_IF(test_cache_location_and_key);
  RUN_IF(test_compile_error_reports);
  RUN_IF(test_parallel_compile);
  RUN_IF(test_model_plans_compile);
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", tmp_dir);
  arena_free(&A);
  return TEST_SUMMARY();
}
