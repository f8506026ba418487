/* nvrtc.c — NVRTC loaded at run time, and one kernel compiled to cubin.
 *
 * kiln has no link-time dependency on CUDA: libnvrtc is opened with dlopen
 * on first use (once, under pthread_once), so the same binary builds and
 * runs on machines without the toolkit and says so when asked to compile.
 * The prototypes below are NVRTC's stable C API (nvrtc.h), declared here so
 * no CUDA header is needed at build time either; nvrtcResult is an int and
 * nvrtcProgram an opaque pointer. In CUDA 13 nvrtcGetProgramLog takes two
 * arguments, as it always has in the C API.
 *
 * Every NVRTC call is checked and its own error string kept (error channel
 * 2). A failed compile reports the kernel name, the architecture, NVRTC's
 * log and the generated source around the first line the log names. */
#include "codegen/cuda/cuda.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef void *nvrtc_prog;

static struct nvrtc_api {
  void *lib;
  const char *(*GetErrorString)(int);
  int (*Version)(int *, int *);
  int (*CreateProgram)(nvrtc_prog *, const char *, const char *, int,
                       const char *const *, const char *const *);
  int (*DestroyProgram)(nvrtc_prog *);
  int (*CompileProgram)(nvrtc_prog, int, const char *const *);
  int (*GetProgramLogSize)(nvrtc_prog, size_t *);
  int (*GetProgramLog)(nvrtc_prog, char *);
  int (*GetCUBINSize)(nvrtc_prog, size_t *);
  int (*GetCUBIN)(nvrtc_prog, char *);
  int major, minor;
  char why[512]; /* non-empty: loading failed, and why */
} nv;

static pthread_once_t nv_once = PTHREAD_ONCE_INIT;

/* The soname first (what a driver-only install or a pip wheel provides on
 * the loader path), then the toolkit's default location. */
static const char *const nvrtc_paths[] = {
    "libnvrtc.so.13",
    "libnvrtc.so",
    "/usr/local/cuda/lib64/libnvrtc.so.13",
    "/usr/local/cuda/lib64/libnvrtc.so",
};

static void nv_load(void) {
  const char *last = "";
  for (size_t i = 0; i < ARRAY_LEN(nvrtc_paths) && !nv.lib; i++) {
    nv.lib = dlopen(nvrtc_paths[i], RTLD_NOW | RTLD_LOCAL);
    if (!nv.lib) {
      const char *e = dlerror();
      last = e ? e : nvrtc_paths[i];
    }
  }
  if (!nv.lib) {
    snprintf(nv.why, sizeof nv.why,
             "NVRTC not found (is the CUDA toolkit installed?): %s", last);
    return;
  }
  struct {
    const char *name;
    void **slot;
  } syms[] = {
      {"nvrtcGetErrorString", (void **)&nv.GetErrorString},
      {"nvrtcVersion", (void **)&nv.Version},
      {"nvrtcCreateProgram", (void **)&nv.CreateProgram},
      {"nvrtcDestroyProgram", (void **)&nv.DestroyProgram},
      {"nvrtcCompileProgram", (void **)&nv.CompileProgram},
      {"nvrtcGetProgramLogSize", (void **)&nv.GetProgramLogSize},
      {"nvrtcGetProgramLog", (void **)&nv.GetProgramLog},
      {"nvrtcGetCUBINSize", (void **)&nv.GetCUBINSize},
      {"nvrtcGetCUBIN", (void **)&nv.GetCUBIN},
  };
  for (size_t i = 0; i < ARRAY_LEN(syms); i++) {
    *syms[i].slot = dlsym(nv.lib, syms[i].name);
    if (!*syms[i].slot) {
      snprintf(nv.why, sizeof nv.why, "NVRTC library lacks %s", syms[i].name);
      return;
    }
  }
  if (nv.Version(&nv.major, &nv.minor) != 0)
    snprintf(nv.why, sizeof nv.why, "nvrtcVersion failed");
}

static kiln_status nv_ready(kiln_error *err) {
  pthread_once(&nv_once, nv_load);
  if (nv.why[0])
    return diag_error(err, KILN_ERR_INVALID, (kiln_loc){0}, "%s", nv.why);
  return KILN_OK;
}

kiln_status cg_cuda_nvrtc_version(int *major, int *minor, kiln_error *err) {
  kiln_status st = nv_ready(err);
  if (st == KILN_OK) {
    *major = nv.major;
    *minor = nv.minor;
  }
  return st;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int cg_cuda_options(const cg_cuda_opts *o, char buf[8][32],
                    const char *opt[8]) {
  KILN_ASSERT(o->arch >= 10 && o->arch < 1000);
  int n = 0;
  snprintf(buf[n], sizeof buf[n], "-arch=sm_%d", o->arch);
  opt[n] = buf[n];
  n++;
  opt[n++] = "--std=c++17";
  opt[n++] = "-default-device";
  if (o->lineinfo)
    opt[n++] = "-lineinfo";
  return n;
}

/* The line number of the first "NAME.cu(<line>): error" (or any
 * diagnostic) in the log; 0 when the log names none. */
static int first_error_line(const char *log, const char *prog) {
  size_t plen = strlen(prog);
  int any = 0;
  for (const char *p = strstr(log, prog); p; p = strstr(p + 1, prog)) {
    if (p[plen] != '(')
      continue;
    int line = atoi(p + plen + 1);
    const char *close = strchr(p + plen, ')');
    if (line <= 0 || !close)
      continue;
    if (strncmp(close, "): error", 8) == 0)
      return line;
    if (!any)
      any = line;
  }
  return any;
}

/* "  41 | text" for the lines around `at`, the line itself marked. */
static void put_source_excerpt(strbuf *sb, const char *src, int at) {
  enum { BEFORE = 4, AFTER = 2, MAX_COLS = 160 };
  int lo = at - BEFORE > 1 ? at - BEFORE : 1, hi = at + AFTER;
  int line = 1;
  for (const char *p = src; *p && line <= hi; line++) {
    const char *eol = strchr(p, '\n');
    size_t len = eol ? (size_t)(eol - p) : strlen(p);
    if (line >= lo)
      strbuf_printf(sb, "%s%5d | %.*s\n", line == at ? ">" : " ", line,
                    (int)(len < MAX_COLS ? len : MAX_COLS), p);
    if (!eol)
      break;
    p = eol + 1;
  }
}

static kiln_status compile_failed(kiln_error *err, const char *name,
                                  const cg_cuda_opts *o, const char *what,
                                  const char *log, const char *src) {
  enum { MAX_LOG = 2000 };
  strbuf sb;
  strbuf_init(&sb);
  char prog[300];
  snprintf(prog, sizeof prog, "%s.cu", name);
  strbuf_printf(&sb, "kernel '%s': NVRTC %s for sm_%d", name, what, o->arch);
  if (log && log[0]) {
    size_t len = strlen(log);
    strbuf_printf(&sb, "\nNVRTC log:\n%.*s%s",
                  (int)(len < MAX_LOG ? len : MAX_LOG), log,
                  len > MAX_LOG ? "\n[log truncated]" : "");
    int at = first_error_line(log, prog);
    if (at > 0) {
      strbuf_printf(&sb, "\ngenerated source %s around line %d:\n", prog, at);
      put_source_excerpt(&sb, src, at);
    }
  }
  kiln_status st =
      diag_error(err, KILN_ERR_INTERNAL, (kiln_loc){0}, "%s", sb.data);
  strbuf_free(&sb);
  return st;
}

/* A log of only whitespace carries no diagnostic. */
static bool log_has_text(const char *log) {
  for (; log && *log; log++)
    if (*log != ' ' && *log != '\n' && *log != '\r' && *log != '\t')
      return true;
  return false;
}

/* The cache key: every input that changes the cubin, and werror, which
 * decides whether a compile with warnings succeeds. */
static cg_cuda_key key_for(const char *src, const cg_cuda_opts *o,
                           const char *const *opt, int n_opt) {
  char ver[64];
  snprintf(ver, sizeof ver, "nvrtc %d.%d werror=%d", nv.major, nv.minor,
           o->werror ? 1 : 0);
  const char *parts[16] = {"kiln-cubin-v1", ver, src};
  int n = 3;
  for (int i = 0; i < n_opt; i++)
    parts[n++] = opt[i];
  return cg_cuda_key_of(parts, n);
}

static kiln_status nv_compile(const char *name, const char *src,
                              const cg_cuda_opts *o, const char *const *opt,
                              int n_opt, cg_cuda_binary *out, kiln_error *err) {
  char prog_name[300];
  snprintf(prog_name, sizeof prog_name, "%s.cu", name);
  nvrtc_prog prog = NULL;
  int rc = nv.CreateProgram(&prog, src, prog_name, 0, NULL, NULL);
  if (rc != 0)
    return compile_failed(err, name, o, nv.GetErrorString(rc), NULL, src);
  int crc = nv.CompileProgram(prog, n_opt, opt);
  size_t log_size = 0;
  char *log = NULL;
  if (nv.GetProgramLogSize(prog, &log_size) == 0 && log_size > 0) {
    log = malloc(log_size + 1);
    KILN_ASSERT(log);
    if (nv.GetProgramLog(prog, log) != 0)
      log[0] = '\0';
    log[log_size] = '\0';
  }
  kiln_status st = KILN_OK;
  if (crc != 0) {
    char what[160];
    snprintf(what, sizeof what, "failed to compile (%s)",
             nv.GetErrorString(crc));
    st = compile_failed(err, name, o, what, log, src);
  } else if (o->werror && log_has_text(log)) {
    st = compile_failed(err, name, o, "reported warnings (werror)", log, src);
  } else if ((rc = nv.GetCUBINSize(prog, &out->size)) != 0 ||
             !(out->data = malloc(out->size ? out->size : 1)) ||
             (rc = nv.GetCUBIN(prog, out->data)) != 0) {
    char what[160];
    snprintf(what, sizeof what, "gave no cubin (%s)",
             rc ? nv.GetErrorString(rc) : "out of memory");
    st = compile_failed(err, name, o, what, NULL, src);
  }
  free(log);
  nv.DestroyProgram(&prog);
  if (st != KILN_OK)
    cg_cuda_binary_free(out);
  return st;
}

kiln_status cg_cuda_compile(const char *name, const char *src,
                            const cg_cuda_opts *o, cg_cuda_binary *out,
                            cg_cuda_stats *stats, kiln_error *err) {
  KILN_ASSERT(name && src && o && out);
  memset(out, 0, sizeof *out);
  double t0 = now_s();
  kiln_status st = nv_ready(err);
  if (st != KILN_OK)
    return st;
  char buf[8][32];
  const char *opt[8];
  int n_opt = cg_cuda_options(o, buf, opt);
  cg_cuda_key key = key_for(src, o, opt, n_opt);
  char dir_buf[1024];
  const char *dir =
      o->no_cache ? NULL : cg_cuda_cache_dir(o, dir_buf, sizeof dir_buf);
  if (dir && cg_cuda_cache_read(dir, key, &out->data, &out->size)) {
    out->from_cache = true;
    out->seconds = now_s() - t0;
    if (stats) {
      stats->warm++;
      stats->warm_s += out->seconds;
    }
    return KILN_OK;
  }
  st = nv_compile(name, src, o, opt, n_opt, out, err);
  if (st != KILN_OK)
    return st;
  /* A failed write only costs the next run a compile. */
  if (dir)
    (void)cg_cuda_cache_write(dir, key, out->data, out->size);
  out->seconds = now_s() - t0;
  if (stats) {
    stats->cold++;
    stats->cold_s += out->seconds;
  }
  return KILN_OK;
}

void cg_cuda_binary_free(cg_cuda_binary *b) {
  free(b->data);
  memset(b, 0, sizeof *b);
}
