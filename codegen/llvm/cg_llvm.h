/* cg_llvm.h — the LLVM code generator: kernel IR (ir/kernel.h) rendered as
 * LLVM IR through the LLVM-C API, verified, optimised at O3 for the host
 * CPU, compiled to an object (cached on disk) and loaded by ORC LLJIT.
 * Prototypes are grouped by the file that defines them.
 *
 *   kir_kernel *ks[] = {k0, k1};
 *   cg_llvm_module *m;
 *   if (cg_llvm_compile(ks, 2, NULL, &m, &err) != KILN_OK)
 *     ...                                  // err: LLVM's own message
 *   cg_llvm_kernel_fn f = cg_llvm_fn(m, 0);
 *   kir_scalars s = {.seed = 1, .step = 0, .lr = 0.1f};
 *   int64_t grid = cg_llvm_grid(m, 0, &s);
 *   void *bufs[] = {x, y};                 // k0's GLOBAL buffers in order
 *   f(bufs, &s, 0, grid);                  // or split over threads
 *   cg_llvm_free(m);
 *
 * Every kernel becomes one function
 *   void NAME(void **bufs, const kir_scalars *s, int64_t grid_begin,
 *             int64_t grid_end)
 * that runs the blocks [grid_begin, grid_end) of the flattened GRID index
 * space (the product of the grid chain's extents, outermost first; 1 when
 * the kernel has no GRID loop), so the runtime splits a launch over its
 * thread pool by ranges. Everything inside a block follows kernel.h's CPU
 * meaning: THREAD loops are plain loops (each one a phase, so BARRIER emits
 * nothing), SHARED buffers are per-block stack arrays, LOCAL buffers
 * arrays of block_threads * count indexed [thread * count + i],
 * BLOCK_REDUCE and MMA serial loops, ATOMIC_ADD an `atomicrmw fadd`.
 *
 * Numerics (what may differ from the kernel IR interpreter, and why):
 *  - min/max on f32 are llvm.minnum/maxnum, which are C's fminf/fmaxf:
 *    a NaN operand yields the other operand (the reference's fmax does the
 *    same; a NaN in both yields NaN).
 *  - a*b + c on f32 (an add whose operand is a mul, and MMA's
 *    accumulation) is llvm.fmuladd: the backend may fuse it into one FMA
 *    (C's -ffp-contract=on). No other fast-math freedom is given, so every
 *    other operation rounds exactly as the interpreter's C does.
 *  - exp, log, sqrt, floor, fabs, pow are LLVM intrinsics (libm calls or
 *    instructions); tanh and erf call libm's tanhf/erff; rsqrt is
 *    1 / sqrt(x), rounded twice as the interpreter's C.
 *  - philox is inlined integer code, bit-identical to philox_uniform. */
#ifndef KILN_CODEGEN_LLVM_H
#define KILN_CODEGEN_LLVM_H

#include "ir/kernel.h"

/* ---- cg_llvm_jit.c: modules, verification, optimisation, the JIT ---- */

typedef void (*cg_llvm_kernel_fn)(void **bufs, const kir_scalars *s,
                                  int64_t grid_begin, int64_t grid_end);

/* The compiled code of some kernels: one LLVM module, one JIT instance. */
typedef struct cg_llvm_module cg_llvm_module;

typedef struct cg_llvm_opts {
  bool no_cache;         /* neither read nor write the disk cache */
  const char *cache_dir; /* NULL: $KILN_CACHE_DIR, then
                            $XDG_CACHE_HOME/kiln, then $HOME/.cache/kiln
                            (objects go to its "cpu" subdirectory) */
} cg_llvm_opts;

/* Renders kernels ks[0..n) into one module, verifies it (LLVM's verifier;
 * a failure returns KILN_ERR_INTERNAL with the verifier's message and the
 * kernel's name), optimises it at O3 for the host CPU, emits an object
 * and loads it into a JIT; the object comes from the disk cache when an
 * identical module was compiled before. o may be NULL (defaults).
 * Kernels must have passed kir_verify. */
kiln_status cg_llvm_compile(kir_kernel *const *ks, int n, const cg_llvm_opts *o,
                            cg_llvm_module **out, kiln_error *err);
void cg_llvm_free(cg_llvm_module *m);
/* Kernel i's entry point and its number of grid blocks for scalars s. */
cg_llvm_kernel_fn cg_llvm_fn(const cg_llvm_module *m, int i);
int64_t cg_llvm_grid(const cg_llvm_module *m, int i, const kir_scalars *s);
/* Whether the object was read from the disk cache. */
bool cg_llvm_from_cache(const cg_llvm_module *m);

/* The module's LLVM IR as text, before (optimised false) or after O3, for
 * `kiln dump` and for tests; also fails with the verifier's message. */
kiln_status cg_llvm_print(kir_kernel *const *ks, int n, bool optimised,
                          strbuf *out, kiln_error *err);

#endif
