/* cuda.h — the CUDA code generator: kernel IR (ir/kernel.h) rendered as
 * CUDA C, compiled to cubin by NVRTC, cached on disk. Prototypes are
 * grouped by the file that defines them.
 *
 *   strbuf src;
 *   strbuf_init(&src);
 *   cg_cuda_render(&src, k);                 // header-free CUDA C
 *   cg_cuda_opts o = {.arch = 90};
 *   cg_cuda_binary bin;
 *   if (cg_cuda_compile(k->name, src.data, &o, &bin, NULL, &err) != KILN_OK)
 *     ...                                    // err: name, log, source
 *   ... cuModuleLoadData(bin.data) ...
 *   cg_cuda_binary_free(&bin);
 *
 * Nothing here needs a GPU or links against CUDA: NVRTC is loaded with
 * dlopen on first use, so kiln builds and runs where CUDA is absent and
 * reports that clearly when asked to compile. */
#ifndef KILN_CODEGEN_CUDA_H
#define KILN_CODEGEN_CUDA_H

#include "ir/kernel.h"

#include <stddef.h>

/* ---- cuda_render.c: kernel -> CUDA C ---- */

/* Threads per block used when the kernel leaves the choice to the renderer
 * (block_threads == 0: elementwise kernels, one grid iteration a thread). */
#define CG_CUDA_ELEMENTWISE_THREADS 256
/* The largest gridDim.x a launch may use (2^31 - 1). */
#define CG_CUDA_MAX_GRID 2147483647LL

/* How to launch a rendered kernel: gridDim.x, blockDim.x, and the dynamic
 * shared memory it needs (0: all shared buffers are static). */
typedef struct cg_cuda_launch_dims {
  int64_t grid;
  int block;
  int64_t grid_iterations; /* the flattened GRID extent (1 without GRID) */
  bool grid_stride;        /* grid < iterations: the kernel loops */
} cg_cuda_launch_dims;

/* Appends the kernel as a self-contained CUDA C translation unit: a short
 * prelude (only the helpers it uses), then
 *   extern "C" __global__ void NAME(float *__restrict__ x, ...,
 *                                   const kir_scalars s)
 * with the GLOBAL buffers in declaration order and the scalar struct last,
 * always present so every launch passes the same trailing argument. The
 * kernel must have passed kir_verify. Reads the kernel only (scratch in an
 * arena of its own), so kernels may be rendered from several threads. */
void cg_cuda_render(strbuf *sb, const kir_kernel *k);
/* The launch geometry the rendered code assumes. */
cg_cuda_launch_dims cg_cuda_launch_for(const kir_kernel *k);

/* ---- cuda_expr.c: expressions (the op spelling table) ---- */

/* The CUDA spelling of a kernel IR type: "float", "long long", ... */
const char *cg_cuda_type(kir_type t);
/* Appends e as a fully parenthesised C expression; `names` gives the C
 * identifier of every variable (indexed by var id) and buffer (by buf id). */
typedef struct cg_cuda_names {
  const char **var;
  const char **buf;
} cg_cuda_names;
void cg_cuda_expr(strbuf *sb, const cg_cuda_names *nm, const kir_expr *e);
/* Which prelude helpers an expression tree needs (CG_CUDA_NEED_* bits). */
enum {
  CG_CUDA_NEED_PHILOX = 1,
  CG_CUDA_NEED_MMA = 2,
};
unsigned cg_cuda_expr_needs(const kir_expr *e);
/* The Philox4x32-10 device function, exactly support/philox.c's
 * philox_uniform (also compiled as host C by the tests to prove it). */
extern const char cg_cuda_philox_src[];

/* ---- nvrtc.c: loading NVRTC and compiling one kernel ---- */

typedef struct cg_cuda_opts {
  int arch;              /* 80, 86, 89, 90, ...: -arch=sm_<arch> */
  bool lineinfo;         /* -lineinfo (profilers, compute-sanitizer) */
  bool werror;           /* a non-empty NVRTC log (warnings) fails */
  bool no_cache;         /* neither read nor write the disk cache */
  const char *cache_dir; /* NULL: $KILN_CACHE_DIR, then
                            $XDG_CACHE_HOME/kiln, then $HOME/.cache/kiln */
} cg_cuda_opts;

typedef struct cg_cuda_binary {
  void *data; /* the cubin (malloc'd) */
  size_t size;
  bool from_cache;
  double seconds; /* wall time of this compile or cache read */
} cg_cuda_binary;

/* Compile statistics: cold = NVRTC ran, warm = served by the cache. */
typedef struct cg_cuda_stats {
  int cold, warm;
  double cold_s, warm_s;
} cg_cuda_stats;

/* Loads libnvrtc (once; thread-safe) and reports its version. KILN_ERR_
 * INVALID with "NVRTC not found ..." when no library can be loaded. */
kiln_status cg_cuda_nvrtc_version(int *major, int *minor, kiln_error *err);
/* Compiles one kernel's source (name: the kernel name, for messages and
 * the program name "NAME.cu"). On failure: KILN_ERR_INTERNAL with the
 * kernel name, the NVRTC log and the source lines around the first error.
 * `stats` may be NULL; it is not locked (use cg_cuda_compile_all from
 * several threads). */
kiln_status cg_cuda_compile(const char *name, const char *src,
                            const cg_cuda_opts *o, cg_cuda_binary *out,
                            cg_cuda_stats *stats, kiln_error *err);
void cg_cuda_binary_free(cg_cuda_binary *b);
/* The NVRTC options that opts turn into, as the compiler sees them (they
 * are part of the cache key). Returns the count; opt[] holds up to 8. */
int cg_cuda_options(const cg_cuda_opts *o, char buf[8][32], const char *opt[8]);

/* ---- nvrtc_cache.c: the disk cache ---- */

/* 128-bit FNV-1a of NUL-separated parts; the cache key. */
typedef struct cg_cuda_key {
  uint64_t hi, lo;
} cg_cuda_key;
cg_cuda_key cg_cuda_key_of(const char *const *parts, int n);
/* The cache directory opts select (created on demand); NULL when no
 * location is known (no HOME). Returns buf. */
const char *cg_cuda_cache_dir(const cg_cuda_opts *o, char *buf, size_t len);
/* The file holding key's entry: "<dir>/<32 hex digits>.cubin". */
void cg_cuda_cache_path(const char *dir, cg_cuda_key key, char *buf,
                        size_t len);
/* Reads a valid entry (magic, key, length and checksum all match) into
 * *data and *size (malloc'd); false for a missing, short or corrupt file. */
bool cg_cuda_cache_read(const char *dir, cg_cuda_key key, void **data,
                        size_t *size);
/* Writes an entry atomically (temporary file, then rename), creating the
 * directory; false (and nothing visible) on any failure. */
bool cg_cuda_cache_write(const char *dir, cg_cuda_key key, const void *data,
                         size_t size);

/* ---- nvrtc_batch.c: many kernels in parallel ---- */

typedef struct cg_cuda_job {
  const char *name, *src; /* in */
  cg_cuda_binary bin;     /* out */
  kiln_status status;
  kiln_error err;
} cg_cuda_job;

/* Compiles every job on `threads` threads (<= 0: the online cores), each
 * job's result in the job; adds to *stats (may be NULL). Returns the first
 * failure in job order (its message in *err), or KILN_OK. */
kiln_status cg_cuda_compile_all(cg_cuda_job *jobs, int n, const cg_cuda_opts *o,
                                int threads, cg_cuda_stats *stats,
                                kiln_error *err);
int cg_cuda_cpu_count(void);

#endif
