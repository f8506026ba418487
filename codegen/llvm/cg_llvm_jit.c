/* cg_llvm_jit.c — one LLVM module per set of kernels (a plan's), checked
 * by LLVM's verifier before optimisation, optimised with the new pass
 * manager at O3 for the host CPU, emitted as an object file and loaded by
 * ORC LLJIT.
 *
 * Objects are cached on disk (the CUDA side's cache, codegen/cuda/
 * nvrtc_cache.c: checksummed entries, atomic writes), in the "cpu"
 * subdirectory of $KILN_CACHE_DIR (else $XDG_CACHE_HOME/kiln, else
 * ~/.cache/kiln). The key is everything the object depends on: the
 * unoptimised module's text (the rendered kernels, their names and
 * metadata), the pass pipeline, the target triple, CPU and features, the
 * LLVM version and this renderer's version; a warm start skips O3 and code
 * generation, which are nearly all of the compile time.
 *
 * Every LLVM failure keeps LLVM's own message (the verifier's report, an
 * LLVMErrorRef's text): the second error channel of style.md. */
#include "codegen/cuda/cuda.h" /* the disk cache */
#include "codegen/llvm/cg_llvm_impl.h"

#include <llvm-c/Analysis.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <llvm/Config/llvm-config.h>

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef int64_t (*cg_grid_fn)(const kir_scalars *s);

/* Bump when the renderer changes what the same IR text means. */
#define CG_LLVM_VERSION "kiln-cg-llvm-1"
#define CG_LLVM_PIPELINE "default<O3>"

struct cg_llvm_module {
  LLVMOrcLLJITRef jit;
  bool from_cache;
  int n;
  cg_llvm_kernel_fn *fns;
  cg_grid_fn *grids;
};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void init_llvm(void) {
  LLVMInitializeNativeTarget();
  LLVMInitializeNativeAsmPrinter();
}

/* err <- "LLVM: <what>: <LLVM's message>"; consumes e. */
static kiln_status llvm_fail(kiln_error *err, LLVMErrorRef e,
                             const char *what) {
  char *msg = LLVMGetErrorMessage(e);
  diag_error(err, KILN_ERR_INTERNAL, (kiln_loc){0}, "LLVM: %s: %s", what, msg);
  LLVMDisposeErrorMessage(msg);
  return KILN_ERR_INTERNAL;
}

static LLVMTargetMachineRef host_machine(kiln_error *err) {
  char *triple = LLVMGetDefaultTargetTriple();
  LLVMTargetRef target;
  char *msg = NULL;
  LLVMTargetMachineRef tm = NULL;
  if (LLVMGetTargetFromTriple(triple, &target, &msg)) {
    diag_error(err, KILN_ERR_INTERNAL, (kiln_loc){0},
               "LLVM: no target for '%s': %s", triple, msg);
    LLVMDisposeMessage(msg);
  } else {
    char *cpu = LLVMGetHostCPUName(), *features = LLVMGetHostCPUFeatures();
    tm = LLVMCreateTargetMachine(target, triple, cpu, features,
                                 LLVMCodeGenLevelAggressive, LLVMRelocDefault,
                                 LLVMCodeModelJITDefault);
    LLVMDisposeMessage(cpu);
    LLVMDisposeMessage(features);
  }
  LLVMDisposeMessage(triple);
  return tm;
}

/* The entry point's name: the kernel's, made unique in the module. */
static const char *entry_name(arena *a, LLVMModuleRef mod, const char *name,
                              int i) {
  char *probe = arena_printf(a, "%s.impl", name);
  if (!LLVMGetNamedFunction(mod, name) && !LLVMGetNamedFunction(mod, probe))
    return name;
  return arena_printf(a, "%s.%d", name, i);
}

/* LLVM reports remarks and warnings (e.g. "loop not vectorized" for a
 * VECTOR loop it could not vectorise) on stderr by default: a library must
 * not print, and the code is correct either way. Errors come back through
 * LLVMErrorRef and the verifier's message instead. */
static void quiet_diagnostics(LLVMDiagnosticInfoRef info, void *ctx) {
  (void)info;
  (void)ctx;
}

/* Renders and verifies ks[0..n) into a new module of ctx for tm's target;
 * names[i] receives kernel i's entry point name. */
static kiln_status build_module(kir_kernel *const *ks, int n,
                                LLVMContextRef ctx, LLVMTargetMachineRef tm,
                                arena *a, const char **names,
                                LLVMModuleRef *out, kiln_error *err) {
  LLVMContextSetDiagnosticHandler(ctx, quiet_diagnostics, NULL);
  LLVMModuleRef mod = LLVMModuleCreateWithNameInContext("kiln", ctx);
  char *triple = LLVMGetTargetMachineTriple(tm);
  LLVMSetTarget(mod, triple);
  LLVMDisposeMessage(triple);
  LLVMTargetDataRef layout = LLVMCreateTargetDataLayout(tm);
  LLVMSetModuleDataLayout(mod, layout);
  LLVMDisposeTargetData(layout);

  cg_ctx c = {.ctx = ctx, .mod = mod, .a = a};
  c.b = LLVMCreateBuilderInContext(ctx);
  c.md_loop = LLVMGetMDKindIDInContext(ctx, "llvm.loop", 9);
  cg_types_init(&c.t, ctx);
  for (int i = 0; i < n; i++) {
    names[i] = entry_name(a, mod, ks[i]->name, i);
    cg_render_kernel(&c, ks[i], names[i]);
  }
  LLVMDisposeBuilder(c.b);

  char *msg = NULL;
  if (LLVMVerifyModule(mod, LLVMReturnStatusAction, &msg)) {
    /* Name the kernel whose function is broken, then LLVM's report. */
    const char *culprit = "?";
    for (int i = 0; i < n && culprit[0] == '?'; i++) {
      LLVMValueRef f =
          LLVMGetNamedFunction(mod, arena_printf(a, "%s.impl", names[i]));
      if (f && LLVMVerifyFunction(f, LLVMReturnStatusAction))
        culprit = ks[i]->name;
    }
    diag_error(err, KILN_ERR_INTERNAL, (kiln_loc){0},
               "LLVM verifier rejected the code of kernel '%s': %s", culprit,
               msg);
    LLVMDisposeMessage(msg);
    LLVMDisposeModule(mod);
    return KILN_ERR_INTERNAL;
  }
  LLVMDisposeMessage(msg);
  *out = mod;
  return KILN_OK;
}

static kiln_status optimise(LLVMModuleRef mod, LLVMTargetMachineRef tm,
                            kiln_error *err) {
  LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
  LLVMPassBuilderOptionsSetLoopVectorization(po, 1);
  LLVMPassBuilderOptionsSetSLPVectorization(po, 1);
  LLVMPassBuilderOptionsSetLoopUnrolling(po, 1);
  LLVMErrorRef e = LLVMRunPasses(mod, CG_LLVM_PIPELINE, tm, po);
  LLVMDisposePassBuilderOptions(po);
  return e ? llvm_fail(err, e, "optimising") : KILN_OK;
}

/* libm functions the rendered code calls (directly, or through the
 * intrinsics LLVM lowers to calls), defined by address so that the JIT
 * finds them whether or not the executable exports them. */
static LLVMErrorRef define_libm(LLVMOrcLLJITRef jit, LLVMOrcJITDylibRef jd) {
  static const struct {
    const char *name;
    float (*f1)(float);
    float (*f2)(float, float);
  } fns[] = {
      {"tanhf", tanhf, NULL}, {"erff", erff, NULL},   {"expf", expf, NULL},
      {"logf", logf, NULL},   {"sqrtf", sqrtf, NULL}, {"floorf", floorf, NULL},
      {"fabsf", fabsf, NULL}, {"powf", NULL, powf},   {"fminf", NULL, fminf},
      {"fmaxf", NULL, fmaxf},
  };
  LLVMJITCSymbolMapPair syms[ARRAY_LEN(fns)];
  for (size_t i = 0; i < ARRAY_LEN(fns); i++) {
    uintptr_t addr = fns[i].f1 ? (uintptr_t)fns[i].f1 : (uintptr_t)fns[i].f2;
    syms[i].Name = LLVMOrcLLJITMangleAndIntern(jit, fns[i].name);
    syms[i].Sym.Address = (LLVMOrcExecutorAddress)addr;
    syms[i].Sym.Flags.GenericFlags =
        LLVMJITSymbolGenericFlagsExported | LLVMJITSymbolGenericFlagsCallable;
    syms[i].Sym.Flags.TargetFlags = 0;
  }
  return LLVMOrcJITDylibDefine(jd,
                               LLVMOrcAbsoluteSymbols(syms, ARRAY_LEN(fns)));
}

static kiln_status make_jit(LLVMOrcLLJITRef *out, kiln_error *err) {
  LLVMOrcJITTargetMachineBuilderRef jtmb;
  LLVMErrorRef e = LLVMOrcJITTargetMachineBuilderDetectHost(&jtmb);
  if (e)
    return llvm_fail(err, e, "detecting the host");
  LLVMOrcLLJITBuilderRef lb = LLVMOrcCreateLLJITBuilder();
  LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(lb, jtmb);
  LLVMOrcLLJITRef jit;
  if ((e = LLVMOrcCreateLLJIT(&jit, lb)))
    return llvm_fail(err, e, "creating the JIT");
  LLVMOrcJITDylibRef jd = LLVMOrcLLJITGetMainJITDylib(jit);
  /* Everything else (memset, memcpy, ...) from the process itself. */
  LLVMOrcDefinitionGeneratorRef gen;
  e = LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(
      &gen, LLVMOrcLLJITGetGlobalPrefix(jit), NULL, NULL);
  if (!e) {
    LLVMOrcJITDylibAddGenerator(jd, gen);
    e = define_libm(jit, jd);
  }
  if (e) {
    LLVMOrcDisposeLLJIT(jit);
    return llvm_fail(err, e, "setting up the JIT's symbols");
  }
  *out = jit;
  return KILN_OK;
}

void cg_llvm_free(cg_llvm_module *m) {
  if (!m)
    return;
  if (m->jit) {
    LLVMErrorRef e = LLVMOrcDisposeLLJIT(m->jit);
    if (e)
      LLVMConsumeError(e);
  }
  free(m->fns);
  free(m->grids);
  free(m);
}

/* The cache key of mod compiled for tm (see the top of the file). */
static cg_cuda_key cache_key(LLVMModuleRef mod, LLVMTargetMachineRef tm) {
  char *ir = LLVMPrintModuleToString(mod);
  char *triple = LLVMGetTargetMachineTriple(tm);
  char *cpu = LLVMGetTargetMachineCPU(tm);
  char *features = LLVMGetTargetMachineFeatureString(tm);
  const char *parts[] = {CG_LLVM_VERSION,
                         LLVM_VERSION_STRING,
                         CG_LLVM_PIPELINE,
                         triple,
                         cpu,
                         features,
                         ir};
  cg_cuda_key key = cg_cuda_key_of(parts, (int)ARRAY_LEN(parts));
  LLVMDisposeMessage(ir);
  LLVMDisposeMessage(triple);
  LLVMDisposeMessage(cpu);
  LLVMDisposeMessage(features);
  return key;
}

static const char *cache_dir(const cg_llvm_opts *o, char *buf, size_t len) {
  if (o && o->no_cache)
    return NULL;
  char base[900];
  cg_cuda_opts co = {.cache_dir = o ? o->cache_dir : NULL};
  if (!cg_cuda_cache_dir(&co, base, sizeof base))
    return NULL;
  int w = snprintf(buf, len, "%s/cpu", base);
  return w > 0 && (size_t)w < len ? buf : NULL;
}

/* The object file of kernels ks: from the cache, or rendered, optimised
 * and emitted (then cached). */
static kiln_status object_of(kir_kernel *const *ks, int n,
                             const cg_llvm_opts *o, arena *a,
                             const char **names, LLVMMemoryBufferRef *obj,
                             bool *from_cache, kiln_error *err) {
  pthread_once(&init_once, init_llvm);
  LLVMTargetMachineRef tm = host_machine(err);
  if (!tm)
    return KILN_ERR_INTERNAL;
  LLVMContextRef ctx = LLVMContextCreate();
  LLVMModuleRef mod;
  kiln_status st = build_module(ks, n, ctx, tm, a, names, &mod, err);
  if (st == KILN_OK) {
    char dirbuf[1024];
    const char *dir = cache_dir(o, dirbuf, sizeof dirbuf);
    cg_cuda_key key = cache_key(mod, tm);
    void *data;
    size_t size;
    if (dir && cg_cuda_cache_read(dir, key, &data, &size)) {
      *obj = LLVMCreateMemoryBufferWithMemoryRangeCopy(data, size, "kiln");
      *from_cache = true;
      free(data);
    } else if ((st = optimise(mod, tm, err)) == KILN_OK) {
      char *msg = NULL;
      if (LLVMTargetMachineEmitToMemoryBuffer(tm, mod, LLVMObjectFile, &msg,
                                              obj)) {
        st = diag_error(err, KILN_ERR_INTERNAL, (kiln_loc){0},
                        "LLVM: emitting the object: %s", msg);
      } else if (dir) {
        /* A failed write only costs the next start its warm compile. */
        cg_cuda_cache_write(dir, key, LLVMGetBufferStart(*obj),
                            LLVMGetBufferSize(*obj));
      }
      LLVMDisposeMessage(msg);
    }
    LLVMDisposeModule(mod);
  }
  LLVMContextDispose(ctx);
  LLVMDisposeTargetMachine(tm);
  return st;
}

kiln_status cg_llvm_compile(kir_kernel *const *ks, int n, const cg_llvm_opts *o,
                            cg_llvm_module **out, kiln_error *err) {
  *out = NULL;
  arena a;
  arena_init(&a);
  const char **names = ARENA_ARRAY(&a, const char *, n + 1);
  LLVMMemoryBufferRef obj = NULL;
  bool from_cache = false;
  kiln_status st = object_of(ks, n, o, &a, names, &obj, &from_cache, err);
  if (st != KILN_OK) {
    arena_free(&a);
    return st;
  }
  cg_llvm_module *m = calloc(1, sizeof *m);
  KILN_ASSERT(m);
  m->n = n;
  m->from_cache = from_cache;
  m->fns = calloc((size_t)n + 1, sizeof *m->fns);
  m->grids = calloc((size_t)n + 1, sizeof *m->grids);
  KILN_ASSERT(m->fns && m->grids);
  st = make_jit(&m->jit, err);
  if (st != KILN_OK) {
    LLVMDisposeMemoryBuffer(obj);
    goto fail;
  }
  /* The JIT owns the buffer from here, whatever the outcome. */
  LLVMErrorRef e = LLVMOrcLLJITAddObjectFile(
      m->jit, LLVMOrcLLJITGetMainJITDylib(m->jit), obj);
  if (e) {
    st = llvm_fail(err, e, "adding the object to the JIT");
    goto fail;
  }
  /* Looking every kernel up now links the whole object once, here, and
   * never later on a worker thread. */
  for (int i = 0; i < n; i++) {
    LLVMOrcExecutorAddress f, g;
    e = LLVMOrcLLJITLookup(m->jit, &f, names[i]);
    if (!e)
      e = LLVMOrcLLJITLookup(m->jit, &g, arena_printf(&a, "%s.grid", names[i]));
    if (e) {
      st = llvm_fail(err, e,
                     arena_printf(&a, "linking kernel '%s'", ks[i]->name));
      goto fail;
    }
    m->fns[i] = (cg_llvm_kernel_fn)(uintptr_t)f;
    m->grids[i] = (cg_grid_fn)(uintptr_t)g;
  }
  arena_free(&a);
  *out = m;
  return KILN_OK;
fail:
  cg_llvm_free(m);
  arena_free(&a);
  return st;
}

bool cg_llvm_from_cache(const cg_llvm_module *m) {
  return m->from_cache;
}

cg_llvm_kernel_fn cg_llvm_fn(const cg_llvm_module *m, int i) {
  KILN_ASSERT(i >= 0 && i < m->n);
  return m->fns[i];
}

int64_t cg_llvm_grid(const cg_llvm_module *m, int i, const kir_scalars *s) {
  KILN_ASSERT(i >= 0 && i < m->n);
  return m->grids[i](s);
}

kiln_status cg_llvm_print(kir_kernel *const *ks, int n, bool optimised,
                          strbuf *out, kiln_error *err) {
  pthread_once(&init_once, init_llvm);
  LLVMTargetMachineRef tm = host_machine(err);
  if (!tm)
    return KILN_ERR_INTERNAL;
  arena a;
  arena_init(&a);
  const char **names = ARENA_ARRAY(&a, const char *, n + 1);
  LLVMContextRef ctx = LLVMContextCreate();
  LLVMModuleRef mod;
  kiln_status st = build_module(ks, n, ctx, tm, &a, names, &mod, err);
  if (st == KILN_OK) {
    if (optimised)
      st = optimise(mod, tm, err);
    if (st == KILN_OK) {
      char *text = LLVMPrintModuleToString(mod);
      strbuf_puts(out, text);
      LLVMDisposeMessage(text);
    }
    LLVMDisposeModule(mod);
  }
  LLVMContextDispose(ctx);
  LLVMDisposeTargetMachine(tm);
  arena_free(&a);
  return st;
}
