/* memplan.c — liveness-based memory planning of a kir_plan (see memplan.h).
 *
 * Needs: a finished plan (lower_plan); launches in execution order.
 * Guarantees (memplan_check verifies them independently of the planner):
 * two ACT tensors whose live ranges share a launch never share a byte,
 * except an in-place pair at the one launch where the output takes over
 * its dying input; every offset is MEMPLAN_ALIGN-aligned and inside its
 * arena; PARAM and INPUT tensors never share a byte.
 *
 * Liveness is per root tensor (aliases are views of their root): from the
 * first launch naming it to the last, or to the end of the run when the
 * runtime reads it afterwards. A tensor no launch names stays live for the
 * whole run: the plan's owner may still read or write it. */
#include "passes/memplan.h"

#include <stdlib.h>
#include <string.h>

static int64_t align_up(int64_t v) {
  return (v + MEMPLAN_ALIGN - 1) / MEMPLAN_ALIGN * MEMPLAN_ALIGN;
}

static int root_of(const kir_plan *p, int t) {
  for (int hops = 0; p->tensors[t].alias >= 0; hops++) {
    KILN_ASSERT(hops < p->n_tensors && "alias cycle in plan");
    t = p->tensors[t].alias;
  }
  return t;
}

static int n_globals(const kir_kernel *k) {
  int n = 0;
  while (n < k->n_bufs && k->bufs[n]->space == KIR_GLOBAL)
    n++;
  return n;
}

static memplan_arena arena_of(const kir_tensor *t) {
  switch (t->role) {
  case KIR_T_PARAM:
    return MEMPLAN_PARAM;
  case KIR_T_INPUT:
    return MEMPLAN_INPUT;
  case KIR_T_VALUE:
  case KIR_T_SCRATCH:
    break;
  }
  return MEMPLAN_ACT;
}

static bool is_node_tensor(const kir_plan *p, const ir_node *n, int t) {
  return n && p->node_tensor[n->id] >= 0 &&
         root_of(p, p->node_tensor[n->id]) == root_of(p, t);
}

bool memplan_live_out(const kir_plan *p, int t) {
  const ir_graph *g = p->g;
  if (is_node_tensor(p, g->loss, t) || is_node_tensor(p, g->grad_norm, t))
    return true;
  /* The loss's inputs (the logits): the training loop reads them after
   * every run for the accuracy. */
  for (int i = 0; g->loss && i < g->loss->n_inputs; i++)
    if (is_node_tensor(p, g->loss->inputs[i], t))
      return true;
  for (int i = 0; i < g->n_outputs; i++)
    if (is_node_tensor(p, g->outputs[i], t))
      return true;
  bool no_update = p->mode == KIR_PLAN_TRAIN && p->bwd_end == p->n_launches;
  if (no_update)
    for (int i = 0; i < g->n_param_grads; i++)
      if (is_node_tensor(p, g->grad_nodes[i], t))
        return true;
  return false;
}

/* ---- in place: is out[i] = f(.., in[i], ..) provable? ---- */

typedef struct ip_scan {
  const kir_buf *in, *out;
  const kir_var *elem; /* the element index, from the one store to out */
  int stores, grid_loops;
  bool stored; /* the store to out has been passed (program order) */
  bool bad;
  int serial_depth; /* serial loops around the current statement */
} ip_scan;

static void ip_expr(ip_scan *s, const kir_expr *e) {
  if (!e)
    return;
  if (e->op == KIR_LOAD) {
    if (e->buf == s->out)
      s->bad = true; /* reads what it writes */
    if (e->buf == s->in) {
      /* Each read of in[i] must precede the write of out[i] and happen
       * once per element, at the element index itself. */
      if (s->stored || s->serial_depth > 0 || e->a[0]->op != KIR_VAR ||
          (s->elem && e->a[0]->var != s->elem))
        s->bad = true;
      else if (!s->elem)
        s->elem = e->a[0]->var;
    }
  }
  for (int i = 0; i < 3; i++)
    ip_expr(s, e->a[i]);
}

static void ip_stmt(ip_scan *s, const kir_stmt *st) {
  if (!st || s->bad)
    return;
  switch (st->kind) {
  case KIR_S_SEQ:
    for (int i = 0; i < st->n; i++)
      ip_stmt(s, st->body[i]);
    return;
  case KIR_S_LOOP: {
    ip_expr(s, st->extent);
    bool serial =
        st->loop_kind != KIR_LOOP_GRID && st->loop_kind != KIR_LOOP_THREAD;
    s->grid_loops += st->loop_kind == KIR_LOOP_GRID;
    s->serial_depth += serial;
    ip_stmt(s, st->then_);
    s->serial_depth -= serial;
    return;
  }
  case KIR_S_IF:
    ip_expr(s, st->cond);
    ip_stmt(s, st->then_);
    ip_stmt(s, st->else_);
    return;
  case KIR_S_LET:
  case KIR_S_ASSIGN:
    ip_expr(s, st->value);
    return;
  case KIR_S_STORE:
  case KIR_S_ATOMIC_ADD:
    ip_expr(s, st->index);
    ip_expr(s, st->value);
    if (st->buf == s->out) {
      if (st->kind != KIR_S_STORE || s->serial_depth > 0 ||
          st->index->op != KIR_VAR || (s->elem && st->index->var != s->elem))
        s->bad = true;
      s->elem = st->index->op == KIR_VAR ? st->index->var : s->elem;
      s->stores++;
      s->stored = true;
    }
    return;
  case KIR_S_BARRIER:
  case KIR_S_BLOCK_REDUCE:
  case KIR_S_MMA:
    return;
  }
}

/* The LET defining v and whether anything reassigns v. */
static const kir_stmt *find_let(const kir_stmt *st, const kir_var *v,
                                bool *assigned) {
  if (!st)
    return NULL;
  if (st->kind == KIR_S_ASSIGN && st->var == v)
    *assigned = true;
  if (st->kind == KIR_S_LET && st->var == v)
    return st;
  const kir_stmt *found = NULL, *f;
  for (int i = 0; st->kind == KIR_S_SEQ && i < st->n; i++)
    if ((f = find_let(st->body[i], v, assigned)))
      found = f;
  if ((f = find_let(st->then_, v, assigned)))
    found = f;
  if ((f = find_let(st->else_, v, assigned)))
    found = f;
  return found;
}

static const kir_stmt *find_loop(const kir_stmt *st, const kir_var *v) {
  if (!st)
    return NULL;
  if (st->kind == KIR_S_LOOP && st->var == v)
    return st;
  const kir_stmt *f;
  for (int i = 0; st->kind == KIR_S_SEQ && i < st->n; i++)
    if ((f = find_loop(st->body[i], v)))
      return f;
  if ((f = find_loop(st->then_, v)))
    return f;
  return find_loop(st->else_, v);
}

/* i = g * T + t with g the kernel's only GRID loop and t its THREAD loop
 * of extent T: distinct for every (block, thread), so each element is
 * read and written by exactly one iteration. */
static bool is_element_index(const kir_kernel *k, const kir_var *i) {
  bool assigned = false;
  const kir_stmt *let = find_let(k->body, i, &assigned);
  if (!let || assigned)
    return false;
  const kir_expr *e = let->value;
  if (e->op != KIR_ADD || e->a[0]->op != KIR_MUL || e->a[1]->op != KIR_VAR)
    return false;
  const kir_expr *m = e->a[0];
  if (m->a[0]->op != KIR_VAR || m->a[1]->op != KIR_CONST)
    return false;
  const kir_stmt *g = find_loop(k->body, m->a[0]->var);
  const kir_stmt *t = find_loop(k->body, e->a[1]->var);
  return g && t && g->loop_kind == KIR_LOOP_GRID &&
         t->loop_kind == KIR_LOOP_THREAD && k->block_threads > 0 &&
         m->a[1]->i == k->block_threads;
}

bool memplan_inplace_ok(const kir_launch *l, int in, int out) {
  const kir_kernel *k = l->k;
  int ng = n_globals(k);
  KILN_ASSERT(in >= 0 && in < ng && out >= 0 && out < ng);
  const kir_buf *bi = k->bufs[in], *bo = k->bufs[out];
  if (in == out || !bi->read_only || bo->read_only || bi->type != bo->type ||
      bi->count != bo->count)
    return false;
  ip_scan s = {.in = bi, .out = bo};
  ip_stmt(&s, k->body);
  return !s.bad && s.stores == 1 && s.grid_loops == 1 && s.elem &&
         is_element_index(k, s.elem);
}

/* ---- planning ---- */

typedef struct unit {
  int t; /* the group's representative root */
  int64_t size;
  int first, last;
  int64_t offset;
} unit;

static int unit_cmp(const void *a, const void *b) {
  const unit *x = a, *y = b;
  if (x->size != y->size)
    return x->size > y->size ? -1 : 1;
  if (x->first != y->first)
    return x->first < y->first ? -1 : 1;
  return x->t - y->t;
}

static int offset_cmp(const void *a, const void *b) {
  const unit *x = *(const unit *const *)a, *y = *(const unit *const *)b;
  return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Greedy by size, best fit: each unit goes into the smallest gap between
 * the already placed units it is live with, or after the last of them. */
static int64_t place(unit *u, int n, arena *a) {
  qsort(u, (size_t)n, sizeof *u, unit_cmp);
  const unit **live = ARENA_ARRAY(a, const unit *, n > 0 ? n : 1);
  int64_t top = 0;
  for (int i = 0; i < n; i++) {
    int nl = 0;
    for (int j = 0; j < i; j++)
      if (u[j].first <= u[i].last && u[i].first <= u[j].last)
        live[nl++] = &u[j];
    qsort(live, (size_t)nl, sizeof *live, offset_cmp);
    int64_t end = 0, best = -1, best_gap = INT64_MAX;
    for (int j = 0; j < nl; j++) {
      int64_t gap = live[j]->offset - end;
      if (gap >= u[i].size && gap < best_gap) {
        best = end;
        best_gap = gap;
      }
      if (live[j]->offset + live[j]->size > end)
        end = live[j]->offset + live[j]->size;
    }
    u[i].offset = best >= 0 ? best : end;
    if (u[i].offset + u[i].size > top)
      top = u[i].offset + u[i].size;
  }
  return top;
}

static int group_of(int *group, int t) {
  while (group[t] != t)
    t = group[t];
  return t;
}

/* Lets launch l write an output over a dying input: both ACT roots of
 * the same size, the input's group (glast: the group's last launch) ending
 * here and the input read by no other argument, the output first touched
 * here. */
static void try_inplace(const kir_plan *p, int l, memplan *m, int *group,
                        int *glast, const bool *pinned) {
  const kir_launch *L = &p->launches[l];
  int ng = n_globals(L->k);
  for (int o = 0; o < ng; o++) {
    int ro = root_of(p, L->args[o]);
    if (L->k->bufs[o]->read_only || m->arena[ro] != MEMPLAN_ACT ||
        m->first[ro] != l || group_of(group, ro) != ro || pinned[ro])
      continue;
    for (int i = 0; i < ng; i++) {
      int ri = root_of(p, L->args[i]), gi = group_of(group, ri);
      if (i == o || ri == ro || m->arena[ri] != MEMPLAN_ACT || pinned[ri] ||
          m->last[ri] != l || glast[gi] != l || m->bytes[ri] != m->bytes[ro] ||
          m->bytes[gi] != m->bytes[ro])
        continue;
      bool shared = false;
      for (int j = 0; j < ng; j++)
        shared |= j != i && root_of(p, L->args[j]) == ri;
      if (shared || !memplan_inplace_ok(L, i, o))
        continue;
      group[ro] = gi;
      glast[gi] = m->last[ro];
      m->inplace_of[ro] = ri;
      m->n_inplace++;
      break;
    }
  }
}

kiln_status memplan_build(const kir_plan *p, const memplan_opts *o, arena *a,
                          memplan *out, kiln_error *err) {
  (void)err;
  int n = p->n_tensors, end = p->n_launches > 0 ? p->n_launches - 1 : 0;
  *out = (memplan){.n_tensors = n};
  memplan *m = out;
  int cap = n > 0 ? n : 1;
  m->arena = ARENA_ARRAY(a, memplan_arena, cap);
  m->offset = ARENA_ARRAY(a, int64_t, cap);
  m->bytes = ARENA_ARRAY(a, int64_t, cap);
  m->first = ARENA_ARRAY(a, int, cap);
  m->last = ARENA_ARRAY(a, int, cap);
  m->inplace_of = ARENA_ARRAY(a, int, cap);
  int *group = ARENA_ARRAY(a, int, cap);
  bool *pinned = ARENA_ARRAY(a, bool, cap);
  for (int t = 0; t < n; t++) {
    const kir_tensor *x = &p->tensors[t];
    m->arena[t] = arena_of(&p->tensors[root_of(p, t)]);
    m->bytes[t] = x->count * kir_type_size(x->type);
    m->first[t] = m->last[t] = -1;
    m->inplace_of[t] = -1;
    group[t] = t;
  }
  for (int t = 0; t < n; t++) {
    int r = root_of(p, t);
    if (m->bytes[t] > m->bytes[r])
      m->bytes[r] = m->bytes[t];
    pinned[r] |= memplan_live_out(p, t);
  }
  for (int l = 0; l < p->n_launches; l++) {
    const kir_launch *L = &p->launches[l];
    for (int i = 0, ng = n_globals(L->k); i < ng; i++) {
      int r = root_of(p, L->args[i]);
      if (m->first[r] < 0)
        m->first[r] = l;
      m->last[r] = l;
    }
  }
  for (int t = 0; t < n; t++) {
    if (p->tensors[t].alias >= 0)
      continue;
    if (m->arena[t] != MEMPLAN_ACT) {
      m->first[t] = m->last[t] = -1;
      continue;
    }
    if (m->first[t] < 0)
      m->first[t] = 0, m->last[t] = end;
    if (pinned[t])
      m->last[t] = end;
  }
  int *glast = ARENA_ARRAY(a, int, cap);
  memcpy(glast, m->last, sizeof *glast * (size_t)n);
  if (o && o->inplace)
    for (int l = 0; l < p->n_launches; l++)
      try_inplace(p, l, m, group, glast, pinned);

  /* Activations: one unit per group of roots sharing storage, live from
   * its first member's first launch to its last member's last. */
  unit *u = ARENA_ARRAY(a, unit, cap);
  int nu = 0;
  for (int t = 0; t < n; t++) {
    if (p->tensors[t].alias >= 0 || m->arena[t] != MEMPLAN_ACT)
      continue;
    int64_t size = align_up(m->bytes[t]);
    m->unplanned_bytes += size;
    if (group_of(group, t) == t)
      u[nu++] =
          (unit){.t = t, .size = size, .first = m->first[t], .last = glast[t]};
  }
  m->arena_bytes[MEMPLAN_ACT] = place(u, nu, a);
  m->planned_bytes = m->arena_bytes[MEMPLAN_ACT];
  for (int i = 0; i < nu; i++)
    m->offset[u[i].t] = u[i].offset;
  for (int t = 0; t < n; t++)
    if (p->tensors[t].alias < 0 && m->arena[t] == MEMPLAN_ACT)
      m->offset[t] = m->offset[group_of(group, t)];
  /* Parameters and inputs: packed in graph order, never shared. */
  for (int t = 0; t < n; t++)
    if (p->tensors[t].alias < 0 && m->arena[t] != MEMPLAN_ACT) {
      m->offset[t] = m->arena_bytes[m->arena[t]];
      m->arena_bytes[m->arena[t]] += align_up(m->bytes[t]);
    }
  for (int t = 0; t < n; t++) {
    int r = root_of(p, t);
    if (r != t) {
      m->offset[t] = m->offset[r];
      m->first[t] = m->first[r];
      m->last[t] = m->last[r];
    }
  }
  return KILN_OK;
}

/* ---- the checker ---- */

static kiln_status check_fail(kiln_error *err, const kir_plan *p, int a, int b,
                              const char *what) {
  return diag_error(err, KILN_ERR_INTERNAL, (kiln_loc){0},
                    "memory plan: tensor '%s'%s%s%s: %s", p->tensors[a].name,
                    b >= 0 ? " and '" : "", b >= 0 ? p->tensors[b].name : "",
                    b >= 0 ? "'" : "", what);
}

/* b took a's storage over at launch first[b], legally. */
static bool inplace_pair(const kir_plan *p, const memplan *m, int a, int b) {
  if (m->inplace_of[b] != a || m->first[b] != m->last[a] || m->first[b] < 0)
    return false;
  const kir_launch *L = &p->launches[m->first[b]];
  int ng = n_globals(L->k), in = -1, out = -1;
  for (int i = 0; i < ng; i++) {
    int r = root_of(p, L->args[i]);
    if (r == a)
      in = in < 0 ? i : ng; /* read through two arguments: refuse */
    if (r == b && !L->k->bufs[i]->read_only)
      out = i;
  }
  return in >= 0 && in < ng && out >= 0 && memplan_inplace_ok(L, in, out);
}

kiln_status memplan_check(const kir_plan *p, const memplan *m,
                          kiln_error *err) {
  int n = p->n_tensors, end = p->n_launches > 0 ? p->n_launches - 1 : 0;
  KILN_ASSERT(m->n_tensors == n);
  for (int t = 0; t < n; t++) {
    int r = root_of(p, t);
    if (m->arena[t] != arena_of(&p->tensors[r]))
      return check_fail(err, p, t, -1, "in the wrong arena");
    if (m->offset[t] != m->offset[r])
      return check_fail(err, p, t, r, "an alias away from its root");
    if (m->offset[t] < 0 || m->offset[t] % MEMPLAN_ALIGN != 0)
      return check_fail(err, p, t, -1, "offset not aligned");
    int64_t bytes = p->tensors[t].count * kir_type_size(p->tensors[t].type);
    if (m->offset[t] + bytes > m->arena_bytes[m->arena[t]])
      return check_fail(err, p, t, -1, "past the end of its arena");
    if (r == t && m->arena[t] == MEMPLAN_ACT && memplan_live_out(p, t) &&
        m->last[t] != end)
      return check_fail(err, p, t, -1, "read after the run but not kept");
  }
  /* Liveness recomputed from the launches: every use inside the range. */
  for (int l = 0; l < p->n_launches; l++) {
    const kir_launch *L = &p->launches[l];
    for (int i = 0, ng = n_globals(L->k); i < ng; i++) {
      int r = root_of(p, L->args[i]);
      if (m->arena[r] == MEMPLAN_ACT && (l < m->first[r] || l > m->last[r]))
        return check_fail(err, p, r, -1, "used outside its live range");
    }
  }
  for (int a = 0; a < n; a++) {
    if (p->tensors[a].alias >= 0)
      continue;
    for (int b = a + 1; b < n; b++) {
      if (p->tensors[b].alias >= 0 || m->arena[a] != m->arena[b])
        continue;
      int64_t ea = m->offset[a] + m->bytes[a], eb = m->offset[b] + m->bytes[b];
      if (m->bytes[a] == 0 || m->bytes[b] == 0 || ea <= m->offset[b] ||
          eb <= m->offset[a])
        continue;
      if (m->arena[a] != MEMPLAN_ACT)
        return check_fail(err, p, a, b, "overlap (never shared)");
      if (m->first[a] > m->last[b] || m->first[b] > m->last[a])
        continue;
      if (inplace_pair(p, m, a, b) || inplace_pair(p, m, b, a))
        continue;
      return check_fail(err, p, a, b, "live at the same time and overlap");
    }
  }
  return KILN_OK;
}
