/* kir_interp.h — the kernel IR's interpreter: the executable definition of
 * what a kernel means on the CPU, which the LLVM and CUDA renderers are
 * tested against (test support, not part of the library).
 *
 * Semantics beyond kernel.h, chosen to be what compiled code does:
 *  - f32 arithmetic in float (expf, tanhf, ... of libm); min/max on f32 are
 *    fminf/fmaxf (IEEE minNum/maxNum: a NaN operand yields the other one);
 *    rsqrt is 1.0f / sqrtf(x);
 *  - integers wrap (two's complement); division or remainder by zero, shift
 *    counts outside [0, width) and f32 -> integer casts of values out of
 *    range are errors (undefined in C and LLVM);
 *  - every access is bounds checked, and SELECT evaluates both operands (as
 *    a select instruction does), so a guarded load must still be in bounds;
 *  - SHARED and LOCAL buffers start each block filled with poison (NaN for
 *    f32, 0x5a bytes otherwise): kernels must initialise them;
 *  - GRID loops run in order, THREAD loops as plain loops (their variable
 *    selects the thread's copy of LOCAL buffers), BARRIER does nothing,
 *    BLOCK_REDUCE folds the threads' copies in thread order, MMA is the
 *    triple loop with a float accumulator starting from C, k innermost. */
#ifndef KILN_TESTS_KIR_INTERP_H
#define KILN_TESTS_KIR_INTERP_H

#include "ir/kernel.h"

/* Runs k (after kir_verify) on its GLOBAL buffers bufs[0..) in declaration
 * order: float for f32, int32_t, int64_t, uint32_t, uint8_t for bool; each
 * at least the buffer's count elements. */
kiln_status kir_interp_run(const kir_kernel *k, void *const *bufs,
                           const kir_scalars *s, kiln_error *err);

/* A plan's tensors in host memory, and its launches run by the
 * interpreter. INPUT and PARAM tensors start zeroed; VALUE and SCRATCH
 * tensors start as poison (NaN / 0x5a bytes), so a kernel that reads what
 * no kernel wrote shows up. Aliases share their root tensor's storage. */
typedef struct kir_interp_plan kir_interp_plan;

kir_interp_plan *kir_interp_plan_new(const kir_plan *p);
/* The same with a memory plan's layout: every root tensor t with
 * in_arena[t] lives at byte offset[t] of one shared block of arena_bytes
 * (filled with f32 NaN poison at the start), so tensors placed at the same
 * bytes really share storage; the others get their own storage as above.
 * Aliases follow their root. */
kir_interp_plan *kir_interp_plan_new_placed(const kir_plan *p,
                                            const bool *in_arena,
                                            const int64_t *offset,
                                            int64_t arena_bytes);
void kir_interp_plan_free(kir_interp_plan *ip);
/* Storage of tensor t: p->tensors[t].count elements of its type. */
void *kir_interp_plan_tensor(kir_interp_plan *ip, int t);
/* Runs launches [from, to). A kernel buffer larger than its tensor or of
 * another type is an error. */
kiln_status kir_interp_plan_run(kir_interp_plan *ip, int from, int to,
                                const kir_scalars *s, kiln_error *err);

#endif
