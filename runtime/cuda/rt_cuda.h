/* rt_cuda.h — the CUDA driver, loaded at run time (prefix rt_cuda_).
 *
 * libcuda.so.1 comes with the GPU driver, not the toolkit, so it is opened
 * with dlopen: the same kiln binary runs on machines without a GPU and
 * says so. For now this is the probe (driver present? devices? compute
 * capability?) that GPU tests and `kiln` use to skip or fall back with a
 * clear message; the GPU backend (allocator, launches, rt_backend_ops
 * "cuda") builds on it when a GPU is available to test it. */
#ifndef KILN_RUNTIME_CUDA_H
#define KILN_RUNTIME_CUDA_H

#include "support/support.h"

typedef struct rt_cuda_device {
  int ordinal;
  char name[256];
  int cc_major, cc_minor; /* compute capability: 9.0 -> sm_90 */
  size_t total_mem;       /* bytes */
} rt_cuda_device;

typedef struct rt_cuda_info {
  int driver_version; /* e.g. 13000 for CUDA 13.0 */
  int n_devices;
  rt_cuda_device dev[16]; /* the first 16 */
} rt_cuda_info;

/* Loads the driver (once; thread-safe), runs cuInit and lists the devices.
 * KILN_ERR_INVALID with a message starting "no CUDA driver" (libcuda.so.1
 * cannot be loaded) or "no GPU" (cuInit failed, or no devices), so callers
 * can print it as the reason for skipping. */
kiln_status rt_cuda_probe(rt_cuda_info *info, kiln_error *err);
/* The NVRTC architecture number of a device: 10 * major + minor (90). */
int rt_cuda_arch(const rt_cuda_device *d);
/* ---- execution: what the GPU tests need, synchronous and simple. NOT
 * YET RUN ON A GPU (none was available when it was written). ---- */

typedef struct rt_cuda_ctx rt_cuda_ctx; /* a device's primary context */
typedef struct rt_cuda_fn rt_cuda_fn;   /* a loaded module's kernel */

kiln_status rt_cuda_open(int ordinal, rt_cuda_ctx **out, kiln_error *err);
void rt_cuda_close(rt_cuda_ctx *c);
/* Device memory as CUdeviceptr values. */
kiln_status rt_cuda_alloc(rt_cuda_ctx *c, size_t bytes, uint64_t *dptr,
                          kiln_error *err);
void rt_cuda_free(rt_cuda_ctx *c, uint64_t dptr);
kiln_status rt_cuda_upload(rt_cuda_ctx *c, uint64_t dst, const void *src,
                           size_t bytes, kiln_error *err);
kiln_status rt_cuda_download(rt_cuda_ctx *c, void *dst, uint64_t src,
                             size_t bytes, kiln_error *err);
/* Loads a cubin (cg_cuda_compile's) and finds the kernel `name`. */
kiln_status rt_cuda_load(rt_cuda_ctx *c, const void *cubin, const char *name,
                         rt_cuda_fn **out, kiln_error *err);
void rt_cuda_unload(rt_cuda_ctx *c, rt_cuda_fn *f);
/* cuLaunchKernel with gridDim.x = grid, blockDim.x = block, args as
 * cuLaunchKernel takes them (a pointer to each argument's value), then
 * waits for the kernel; errors the kernel raised come back here. */
kiln_status rt_cuda_launch_sync(rt_cuda_ctx *c, rt_cuda_fn *f, int64_t grid,
                                int block, void **args, kiln_error *err);

/* The driver's name for a CUresult ("CUDA_ERROR_NO_DEVICE"), or a number
 * when the driver is not loaded. */
const char *rt_cuda_error_name(int result, char *buf, size_t len);

#endif
