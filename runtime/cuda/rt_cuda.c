/* rt_cuda.c — the CUDA driver through dlopen: the probe, and the minimal
 * execution layer the GPU tests use (primary context, device memory,
 * modules from cubin, synchronous launches). The execution layer has not
 * run on a GPU yet: no device was available while it was written.
 *
 * The driver API is declared here, not included: CUresult and CUdevice
 * are ints, and the attribute numbers are those of cuda.h (stable since
 * CUDA 2). Sized functions use their _v2 entry points, which is what
 * cuda.h's macros map the plain names to. Every call's result is kept with
 * the driver's own error name (error channel 2). */
#include "runtime/cuda/rt_cuda.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
  CU_ATTR_CC_MAJOR = 75, /* CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR */
  CU_ATTR_CC_MINOR = 76,
};

static struct cuda_api {
  void *lib;
  int (*Init)(unsigned);
  int (*DriverGetVersion)(int *);
  int (*DeviceGetCount)(int *);
  int (*DeviceGet)(int *, int);
  int (*DeviceGetName)(char *, int, int);
  int (*DeviceGetAttribute)(int *, int, int);
  int (*DeviceTotalMem)(size_t *, int);
  int (*GetErrorName)(int, const char **);
  int (*PrimaryCtxRetain)(void **, int);
  int (*PrimaryCtxRelease)(int);
  int (*CtxSetCurrent)(void *);
  int (*CtxSynchronize)(void);
  int (*MemAlloc)(uint64_t *, size_t);
  int (*MemFree)(uint64_t);
  int (*MemcpyHtoD)(uint64_t, const void *, size_t);
  int (*MemcpyDtoH)(void *, uint64_t, size_t);
  int (*ModuleLoadData)(void **, const void *);
  int (*ModuleUnload)(void *);
  int (*ModuleGetFunction)(void **, void *, const char *);
  int (*LaunchKernel)(void *, unsigned, unsigned, unsigned, unsigned, unsigned,
                      unsigned, unsigned, void *, void **, void **);
  char why[512]; /* non-empty: the driver cannot be loaded */
  int init_result;
} cu;

static pthread_once_t cu_once = PTHREAD_ONCE_INIT;

static void cu_load(void) {
  cu.lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!cu.lib) {
    const char *e = dlerror();
    snprintf(cu.why, sizeof cu.why, "no CUDA driver (%s)",
             e ? e : "libcuda.so.1 not found");
    return;
  }
  struct {
    const char *name;
    void **slot;
  } syms[] = {
      {"cuInit", (void **)&cu.Init},
      {"cuDriverGetVersion", (void **)&cu.DriverGetVersion},
      {"cuDeviceGetCount", (void **)&cu.DeviceGetCount},
      {"cuDeviceGet", (void **)&cu.DeviceGet},
      {"cuDeviceGetName", (void **)&cu.DeviceGetName},
      {"cuDeviceGetAttribute", (void **)&cu.DeviceGetAttribute},
      {"cuDeviceTotalMem_v2", (void **)&cu.DeviceTotalMem},
      {"cuGetErrorName", (void **)&cu.GetErrorName},
      {"cuDevicePrimaryCtxRetain", (void **)&cu.PrimaryCtxRetain},
      {"cuDevicePrimaryCtxRelease_v2", (void **)&cu.PrimaryCtxRelease},
      {"cuCtxSetCurrent", (void **)&cu.CtxSetCurrent},
      {"cuCtxSynchronize", (void **)&cu.CtxSynchronize},
      {"cuMemAlloc_v2", (void **)&cu.MemAlloc},
      {"cuMemFree_v2", (void **)&cu.MemFree},
      {"cuMemcpyHtoD_v2", (void **)&cu.MemcpyHtoD},
      {"cuMemcpyDtoH_v2", (void **)&cu.MemcpyDtoH},
      {"cuModuleLoadData", (void **)&cu.ModuleLoadData},
      {"cuModuleUnload", (void **)&cu.ModuleUnload},
      {"cuModuleGetFunction", (void **)&cu.ModuleGetFunction},
      {"cuLaunchKernel", (void **)&cu.LaunchKernel},
  };
  for (size_t i = 0; i < ARRAY_LEN(syms); i++) {
    *syms[i].slot = dlsym(cu.lib, syms[i].name);
    if (!*syms[i].slot) {
      snprintf(cu.why, sizeof cu.why, "no CUDA driver (libcuda.so.1 lacks %s)",
               syms[i].name);
      return;
    }
  }
  cu.init_result = cu.Init(0);
}

const char *rt_cuda_error_name(int result, char *buf, size_t len) {
  const char *name = NULL;
  if (cu.GetErrorName && cu.GetErrorName(result, &name) == 0 && name)
    return name;
  snprintf(buf, len, "CUresult %d", result);
  return buf;
}

int rt_cuda_arch(const rt_cuda_device *d) {
  return d->cc_major * 10 + d->cc_minor;
}

#define CU_TRY(call, what)                                                     \
  do {                                                                         \
    int rc_ = (call);                                                          \
    if (rc_ != 0) {                                                            \
      char b_[32];                                                             \
      return diag_error(err, KILN_ERR_INTERNAL, (kiln_loc){0},                 \
                        "CUDA driver: %s failed: %s", what,                    \
                        rt_cuda_error_name(rc_, b_, sizeof b_));               \
    }                                                                          \
  } while (0)

kiln_status rt_cuda_probe(rt_cuda_info *info, kiln_error *err) {
  memset(info, 0, sizeof *info);
  pthread_once(&cu_once, cu_load);
  if (cu.why[0])
    return diag_error(err, KILN_ERR_INVALID, (kiln_loc){0}, "%s", cu.why);
  char b[32];
  if (cu.init_result != 0)
    return diag_error(err, KILN_ERR_INVALID, (kiln_loc){0},
                      "no GPU (cuInit: %s)",
                      rt_cuda_error_name(cu.init_result, b, sizeof b));
  CU_TRY(cu.DriverGetVersion(&info->driver_version), "cuDriverGetVersion");
  int n = 0;
  CU_TRY(cu.DeviceGetCount(&n), "cuDeviceGetCount");
  if (n <= 0)
    return diag_error(err, KILN_ERR_INVALID, (kiln_loc){0},
                      "no GPU (the CUDA driver sees 0 devices)");
  info->n_devices = n;
  for (int i = 0; i < n && i < (int)ARRAY_LEN(info->dev); i++) {
    rt_cuda_device *d = &info->dev[i];
    int dev = 0;
    d->ordinal = i;
    CU_TRY(cu.DeviceGet(&dev, i), "cuDeviceGet");
    CU_TRY(cu.DeviceGetName(d->name, (int)sizeof d->name, dev),
           "cuDeviceGetName");
    CU_TRY(cu.DeviceGetAttribute(&d->cc_major, CU_ATTR_CC_MAJOR, dev),
           "cuDeviceGetAttribute");
    CU_TRY(cu.DeviceGetAttribute(&d->cc_minor, CU_ATTR_CC_MINOR, dev),
           "cuDeviceGetAttribute");
    CU_TRY(cu.DeviceTotalMem(&d->total_mem, dev), "cuDeviceTotalMem");
  }
  return KILN_OK;
}

/* ---- execution (untested on a GPU so far) ---- */

struct rt_cuda_ctx {
  int dev;   /* CUdevice */
  void *ctx; /* CUcontext: the device's primary context */
};

struct rt_cuda_fn {
  void *module, *fn; /* CUmodule, CUfunction */
};

kiln_status rt_cuda_open(int ordinal, rt_cuda_ctx **out, kiln_error *err) {
  *out = NULL;
  rt_cuda_info info;
  kiln_status st = rt_cuda_probe(&info, err);
  if (st != KILN_OK)
    return st;
  if (ordinal < 0 || ordinal >= info.n_devices)
    return diag_error(err, KILN_ERR_INVALID, (kiln_loc){0},
                      "no GPU %d (the driver sees %d)", ordinal,
                      info.n_devices);
  int dev = 0;
  void *ctx = NULL;
  CU_TRY(cu.DeviceGet(&dev, ordinal), "cuDeviceGet");
  CU_TRY(cu.PrimaryCtxRetain(&ctx, dev), "cuDevicePrimaryCtxRetain");
  int rc = cu.CtxSetCurrent(ctx);
  if (rc != 0) {
    char b[32];
    cu.PrimaryCtxRelease(dev);
    return diag_error(err, KILN_ERR_INTERNAL, (kiln_loc){0},
                      "CUDA driver: cuCtxSetCurrent failed: %s",
                      rt_cuda_error_name(rc, b, sizeof b));
  }
  rt_cuda_ctx *c = calloc(1, sizeof *c);
  KILN_ASSERT(c);
  c->dev = dev;
  c->ctx = ctx;
  *out = c;
  return KILN_OK;
}

void rt_cuda_close(rt_cuda_ctx *c) {
  if (!c)
    return;
  cu.PrimaryCtxRelease(c->dev);
  free(c);
}

kiln_status rt_cuda_alloc(rt_cuda_ctx *c, size_t bytes, uint64_t *dptr,
                          kiln_error *err) {
  *dptr = 0;
  CU_TRY(cu.CtxSetCurrent(c->ctx), "cuCtxSetCurrent");
  CU_TRY(cu.MemAlloc(dptr, bytes ? bytes : 1), "cuMemAlloc");
  return KILN_OK;
}

void rt_cuda_free(rt_cuda_ctx *c, uint64_t dptr) {
  if (dptr && cu.CtxSetCurrent(c->ctx) == 0)
    cu.MemFree(dptr);
}

kiln_status rt_cuda_upload(rt_cuda_ctx *c, uint64_t dst, const void *src,
                           size_t bytes, kiln_error *err) {
  CU_TRY(cu.CtxSetCurrent(c->ctx), "cuCtxSetCurrent");
  CU_TRY(cu.MemcpyHtoD(dst, src, bytes), "cuMemcpyHtoD");
  return KILN_OK;
}

kiln_status rt_cuda_download(rt_cuda_ctx *c, void *dst, uint64_t src,
                             size_t bytes, kiln_error *err) {
  CU_TRY(cu.CtxSetCurrent(c->ctx), "cuCtxSetCurrent");
  CU_TRY(cu.MemcpyDtoH(dst, src, bytes), "cuMemcpyDtoH");
  return KILN_OK;
}

kiln_status rt_cuda_load(rt_cuda_ctx *c, const void *cubin, const char *name,
                         rt_cuda_fn **out, kiln_error *err) {
  *out = NULL;
  CU_TRY(cu.CtxSetCurrent(c->ctx), "cuCtxSetCurrent");
  void *module = NULL, *fn = NULL;
  CU_TRY(cu.ModuleLoadData(&module, cubin), "cuModuleLoadData");
  int rc = cu.ModuleGetFunction(&fn, module, name);
  if (rc != 0) {
    char b[32];
    cu.ModuleUnload(module);
    return diag_error(err, KILN_ERR_INTERNAL, (kiln_loc){0},
                      "CUDA driver: cuModuleGetFunction('%s') failed: %s", name,
                      rt_cuda_error_name(rc, b, sizeof b));
  }
  rt_cuda_fn *f = calloc(1, sizeof *f);
  KILN_ASSERT(f);
  f->module = module;
  f->fn = fn;
  *out = f;
  return KILN_OK;
}

void rt_cuda_unload(rt_cuda_ctx *c, rt_cuda_fn *f) {
  if (!f)
    return;
  if (cu.CtxSetCurrent(c->ctx) == 0)
    cu.ModuleUnload(f->module);
  free(f);
}

kiln_status rt_cuda_launch_sync(rt_cuda_ctx *c, rt_cuda_fn *f, int64_t grid,
                                int block, void **args, kiln_error *err) {
  KILN_ASSERT(grid > 0 && grid <= 2147483647LL && block > 0 && block <= 1024);
  CU_TRY(cu.CtxSetCurrent(c->ctx), "cuCtxSetCurrent");
  CU_TRY(cu.LaunchKernel(f->fn, (unsigned)grid, 1, 1, (unsigned)block, 1, 1, 0,
                         NULL, args, NULL),
         "cuLaunchKernel");
  CU_TRY(cu.CtxSynchronize(), "cuCtxSynchronize (the kernel)");
  return KILN_OK;
}
