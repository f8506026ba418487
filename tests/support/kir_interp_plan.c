/* kir_interp_plan.c — a plan's tensors in host memory and its launches run
 * by the interpreter: the default executor of the plan-check harness. */
#include "tests/support/kir_interp.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct kir_interp_plan {
  const kir_plan *p;
  void **mem;     /* per tensor: its storage (aliases: the root's) */
  int64_t *elems; /* per tensor: elements its storage holds */
  bool *owned;    /* per tensor: mem[t] was allocated for t */
  void **scratch; /* argument array reused by every launch */
  void *arena;    /* kir_interp_plan_new_placed: the shared block */
};

static int root_of(const kir_plan *p, int t) {
  for (int hops = 0; p->tensors[t].alias >= 0; hops++) {
    KILN_ASSERT(hops < p->n_tensors && "alias cycle in plan");
    t = p->tensors[t].alias;
  }
  return t;
}

kir_interp_plan *kir_interp_plan_new(const kir_plan *p) {
  return kir_interp_plan_new_placed(p, NULL, NULL, 0);
}

kir_interp_plan *kir_interp_plan_new_placed(const kir_plan *p,
                                            const bool *in_arena,
                                            const int64_t *offset,
                                            int64_t arena_bytes) {
  kir_interp_plan *ip = calloc(1, sizeof *ip);
  size_t n = (size_t)p->n_tensors + 1;
  KILN_ASSERT(ip);
  ip->p = p;
  ip->mem = calloc(n, sizeof *ip->mem);
  ip->elems = calloc(n, sizeof *ip->elems);
  ip->owned = calloc(n, sizeof *ip->owned);
  int max_args = 1;
  for (int l = 0; l < p->n_launches; l++)
    if (p->launches[l].k->n_bufs > max_args)
      max_args = p->launches[l].k->n_bufs;
  ip->scratch = calloc((size_t)max_args, sizeof *ip->scratch);
  KILN_ASSERT(ip->mem && ip->elems && ip->owned && ip->scratch);
  /* A root holds the largest of its aliases, in bytes. */
  int64_t *bytes = calloc(n, sizeof *bytes);
  KILN_ASSERT(bytes);
  for (int t = 0; t < p->n_tensors; t++) {
    const kir_tensor *x = &p->tensors[t];
    int r = root_of(p, t);
    int64_t b = x->count * kir_type_size(x->type);
    if (b > bytes[r])
      bytes[r] = b;
  }
  if (in_arena) {
    ip->arena = malloc((size_t)arena_bytes + 8);
    KILN_ASSERT(ip->arena);
    for (int64_t i = 0; i < (arena_bytes + 8) / 4; i++)
      ((float *)ip->arena)[i] = NAN;
  }
  for (int t = 0; t < p->n_tensors; t++) {
    if (p->tensors[t].alias >= 0)
      continue;
    if (in_arena && in_arena[t]) {
      KILN_ASSERT(offset[t] >= 0 && offset[t] + bytes[t] <= arena_bytes);
      ip->mem[t] = (char *)ip->arena + offset[t];
      continue;
    }
    ip->mem[t] = calloc((size_t)bytes[t] + 8, 1);
    KILN_ASSERT(ip->mem[t]);
    ip->owned[t] = true;
    kir_tensor_role role = p->tensors[t].role;
    if (role == KIR_T_VALUE || role == KIR_T_SCRATCH) {
      if (p->tensors[t].type == KIR_F32)
        for (int64_t i = 0; i < bytes[t] / 4; i++)
          ((float *)ip->mem[t])[i] = NAN;
      else
        memset(ip->mem[t], 0x5a, (size_t)bytes[t]);
    }
  }
  for (int t = 0; t < p->n_tensors; t++) {
    int r = root_of(p, t);
    ip->mem[t] = ip->mem[r];
    ip->elems[t] = bytes[r] / kir_type_size(p->tensors[t].type);
  }
  free(bytes);
  return ip;
}

void kir_interp_plan_free(kir_interp_plan *ip) {
  if (!ip)
    return;
  for (int t = 0; t < ip->p->n_tensors; t++)
    if (ip->owned[t])
      free(ip->mem[t]);
  free(ip->mem);
  free(ip->elems);
  free(ip->owned);
  free(ip->scratch);
  free(ip->arena);
  free(ip);
}

void *kir_interp_plan_tensor(kir_interp_plan *ip, int t) {
  KILN_ASSERT(t >= 0 && t < ip->p->n_tensors);
  return ip->mem[t];
}

kiln_status kir_interp_plan_run(kir_interp_plan *ip, int from, int to,
                                const kir_scalars *s, kiln_error *err) {
  const kir_plan *p = ip->p;
  KILN_ASSERT(from >= 0 && from <= to && to <= p->n_launches);
  for (int l = from; l < to; l++) {
    const kir_launch *L = &p->launches[l];
    int arg = 0;
    for (int i = 0; i < L->k->n_bufs; i++) {
      const kir_buf *b = L->k->bufs[i];
      if (b->space != KIR_GLOBAL)
        continue;
      int t = L->args[arg];
      KILN_ASSERT(t >= 0 && t < p->n_tensors);
      const kir_tensor *x = &p->tensors[t];
      if (b->type != x->type || b->count > ip->elems[t]) {
        err->status = KILN_ERR_INTERNAL;
        snprintf(err->message, sizeof err->message,
                 "launch %d: kernel '%s' binds %s %s[%lld] to tensor '%s' "
                 "(%s, %lld elements)",
                 l, L->k->name, kir_type_name(b->type), b->name,
                 (long long)b->count, x->name, kir_type_name(x->type),
                 (long long)ip->elems[t]);
        return err->status;
      }
      ip->scratch[arg++] = ip->mem[t];
    }
    kiln_status st = kir_interp_run(L->k, ip->scratch, s, err);
    if (st != KILN_OK) {
      strbuf msg;
      strbuf_init(&msg);
      strbuf_printf(&msg, "launch %d: %s", l, err->message);
      snprintf(err->message, sizeof err->message, "%s", msg.data);
      strbuf_free(&msg);
      return st;
    }
  }
  return KILN_OK;
}
