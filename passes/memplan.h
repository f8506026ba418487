/* memplan.h — memory planning for a kir_plan, and the per-kernel figures of
 * `kiln compile --stats`.
 *
 * memplan.c assigns every tensor of a plan a byte offset in one of three
 * arenas: ACT (values and scratch: activations, gradients, lowering's
 * scratch), PARAM (parameters, BatchNorm buffers, optimizer state, EMA
 * weights: they live across steps, so they are packed, never shared) and
 * INPUT (data and labels, written by the runtime before a run). Aliases
 * (flatten, reshape) sit at their root's offset.
 *
 * Activations are planned from liveness over the launch order: a root
 * tensor is live from the first launch that touches it to the last (the
 * backward's reads of saved activations fall out of the order); tensors
 * the runtime reads after a run (memplan_live_out) are live to the end.
 * Offsets come from greedy-by-size best fit (TFLite's and TVM's storage
 * rewrite; ggml-alloc's best-fit free list): largest tensor first, each
 * put in the smallest gap between tensors already placed whose lifetimes
 * intersect its own, 64-byte aligned. In place (opts.inplace): an
 * elementwise launch writes its output over an input that dies at that
 * launch, when the kernel provably reads input[i] only to compute
 * output[i] (memplan_inplace_ok). The two then share storage in that
 * launch, which the LLVM renderer's `noalias` arguments do not allow, so
 * it is off by default: only executors that do not rely on noalias (the
 * interpreter, for the tests) may use it.
 *
 * stats.c prints `kiln compile --stats`: per launch its kernel, node, bytes
 * read and written and grid; totals per section and per step; the peak of
 * activation memory with and without the planner. */
#ifndef KILN_PASSES_MEMPLAN_H
#define KILN_PASSES_MEMPLAN_H

#include <stdio.h>

#include "ir/kernel.h"

/* Offsets and arena sizes are multiples of this (a cache line; CUDA's and
 * AVX-512's widest aligned accesses). */
#define MEMPLAN_ALIGN 64

typedef enum memplan_arena {
  MEMPLAN_ACT,   /* values and scratch: planned by liveness */
  MEMPLAN_PARAM, /* parameters, buffers, optimizer state, EMA: packed */
  MEMPLAN_INPUT, /* graph inputs: packed */
  MEMPLAN_ARENA_COUNT
} memplan_arena;

typedef struct memplan_opts {
  bool inplace; /* reuse a dying input's storage for an elementwise output */
} memplan_opts;

typedef struct memplan {
  int n_tensors;
  memplan_arena *arena; /* per tensor (aliases: their root's) */
  int64_t *offset;      /* per tensor: bytes from its arena's start */
  int64_t *bytes;       /* per tensor: count * type size */
  /* per tensor, ACT only: launches [first, last] during which its storage
   * is live (aliases: their root's); first = last = -1 otherwise */
  int *first, *last;
  /* per tensor: the tensor whose storage it took over in place at launch
   * first[t], or -1 */
  int *inplace_of;
  int n_inplace;
  int64_t arena_bytes[MEMPLAN_ARENA_COUNT];
  /* ACT: the sum of every root tensor's aligned size, i.e. the memory one
   * allocation per tensor needs; planned_bytes == arena_bytes[ACT] */
  int64_t unplanned_bytes, planned_bytes;
} memplan;

/* ---- memplan.c ---- */

/* Whether tensor t must survive the run: the loss and its inputs (the
 * logits), the graph's outputs,
 * grad_norm, and parameter gradients in a TRAIN plan with no update
 * section (the runtime reads them after the run). */
bool memplan_live_out(const kir_plan *p, int t);
/* Whether launch l may write its GLOBAL buffer `out` over its GLOBAL
 * buffer `in` (indices among the kernel's GLOBAL buffers): same type and
 * count, `out` stored once per element as out[i] = f(.., in[i], ..) where
 * i is the kernel's element index (grid * block + thread), every load of
 * `in` at i before that store, no load of `out`, no other store. */
bool memplan_inplace_ok(const kir_launch *l, int in, int out);
/* Plans p's memory into *out (arrays in arena a). */
kiln_status memplan_build(const kir_plan *p, const memplan_opts *o, arena *a,
                          memplan *out, kiln_error *err);
/* KILN_ERR_INTERNAL naming the two tensors when two ACT tensors live at
 * the same launch overlap in bytes (unless one took the other over in
 * place at that launch), an offset is not aligned, or a tensor does not
 * fit its arena; checks PARAM and INPUT tensors never overlap. */
kiln_status memplan_check(const kir_plan *p, const memplan *m, kiln_error *err);

/* ---- stats.c ---- */

/* The per-kernel table and the totals of `kiln compile --stats` for plan p
 * and its memory plan m. */
void pass_plan_stats(FILE *out, const kir_plan *p, const memplan *m);

/* `kiln compile`: builds the TRAIN (ir_autodiff and ir_add_updates on g
 * first, unless already done) or EVAL plan of g at `batch`, plans its
 * memory and, with `stats`, prints pass_plan_stats to out. */
typedef struct pass_compile_opts {
  int64_t batch; /* 0: the train section's batch */
  bool eval;     /* the EVAL plan instead of the training step */
  bool stats;
  bool kernels; /* print every kernel of the plan (kir_plan_print) first */
  bool inplace; /* memplan_opts.inplace */
  /* Called after the table with the finished plan: where a code
   * generator adds its compile times (NVRTC cold/warm: the CUDA side). */
  void (*stats_hook)(FILE *out, const kir_plan *p, void *user);
  void *stats_user;
} pass_compile_opts;
kiln_status pass_compile(ir_graph *g, const pass_compile_opts *o, FILE *out,
                         kiln_error *err);
/* The same on a loaded model, for the CLI (sets m->differentiated). */
kiln_status pass_compile_model(kiln_model *m, const pass_compile_opts *o,
                               FILE *out, kiln_error *err);

#endif
