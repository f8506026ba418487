/* lower_act.c — activations as elementwise kernels, forward and backward:
 * relu, leaky_relu, elu, gelu (erf or tanh form), sigmoid, tanh and prelu
 * (learned slopes).
 *
 * One table row per op gives the forward formula, the derivative, and
 * whether the derivative reads the forward's output y or its input x —
 * the same choice as the reference (ref_pointwise.h) and autodiff's saved
 * values, so a grad node's kernel reads exactly what the graph keeps
 * alive. Formulas are the reference's (ref_act.c), including the branch
 * taken at a kink (x = 0 counts as negative), evaluated in f32. */
#include "passes/lower_pointwise.h"

#include <math.h>

/* ---- formulas: expressions over a variable x (or y) and dy ---- */

typedef struct act_args {
  pw_kernel *pk;
  const ir_node *f;
  kir_var *x;  /* forward: the input; backward: x or y (row.reads_y) */
  kir_var *dy; /* backward only */
} act_args;

static kir_expr *X(const act_args *a) {
  return pw_v(a->pk, a->x);
}

static kir_expr *DY(const act_args *a) {
  return pw_v(a->pk, a->dy);
}

static kir_expr *mul(const act_args *a, kir_expr *l, kir_expr *r) {
  return pw_bin(a->pk, KIR_MUL, l, r);
}

static kir_expr *add(const act_args *a, kir_expr *l, kir_expr *r) {
  return pw_bin(a->pk, KIR_ADD, l, r);
}

static kir_expr *sub(const act_args *a, kir_expr *l, kir_expr *r) {
  return pw_bin(a->pk, KIR_SUB, l, r);
}

static kir_expr *cst(const act_args *a, double v) {
  return pw_f(a->pk, v);
}

/* x > 0 ? pos : neg */
static kir_expr *if_pos(const act_args *a, kir_expr *pos, kir_expr *neg) {
  return kir_select(a->pk->k, pw_gt(a->pk, X(a), cst(a, 0)), pos, neg);
}

static double attr_f(const act_args *a, const char *name) {
  return pw_attr(a->f, name)->f;
}

static kir_expr *relu_fwd(const act_args *a) {
  return if_pos(a, X(a), cst(a, 0));
}

/* reads y: y > 0 exactly when x > 0 */
static kir_expr *relu_bwd(const act_args *a) {
  return if_pos(a, DY(a), cst(a, 0));
}

static kir_expr *leaky_fwd(const act_args *a) {
  return if_pos(a, X(a), mul(a, cst(a, attr_f(a, "slope")), X(a)));
}

static kir_expr *leaky_bwd(const act_args *a) {
  return if_pos(a, DY(a), mul(a, cst(a, attr_f(a, "slope")), DY(a)));
}

/* exp(x) - 1 for x <= 0 without the cancellation near 0 that would cost
 * all relative precision in f32 (the reference uses expm1): Kahan's
 * (u - 1) * x / log(u), exact when u rounds to 1, and plain u - 1 below
 * -1 where nothing cancels. */
static kir_expr *expm1_neg(const act_args *a) {
  pw_kernel *pk = a->pk;
  kir_var *u = kir_let(pk->k, "u", kir_un(pk->k, KIR_EXP, X(a)));
  kir_expr *um1 = sub(a, pw_v(pk, u), cst(a, 1));
  kir_expr *kahan =
      pw_bin(pk, KIR_DIV, mul(a, sub(a, pw_v(pk, u), cst(a, 1)), X(a)),
             kir_un(pk->k, KIR_LOG, pw_v(pk, u)));
  kir_expr *small = pw_bin(pk, KIR_EQ, pw_v(pk, u), cst(a, 1));
  kir_expr *far = pw_bin(pk, KIR_LT, X(a), cst(a, -1));
  return kir_select(pk->k, small, X(a), kir_select(pk->k, far, um1, kahan));
}

static kir_expr *elu_fwd(const act_args *a) {
  return if_pos(a, X(a), mul(a, cst(a, attr_f(a, "alpha")), expm1_neg(a)));
}

static kir_expr *elu_bwd(const act_args *a) {
  kir_expr *e = kir_un(a->pk->k, KIR_EXP, X(a));
  return if_pos(a, DY(a), mul(a, DY(a), mul(a, cst(a, attr_f(a, "alpha")), e)));
}

static const double gelu_k = 0.7978845608028654; /* sqrt(2 / pi) */
static const double gelu_c = 0.044715;
static const double inv_sqrt2 = 0.7071067811865476;
static const double inv_sqrt_2pi = 0.3989422804014327;

static bool gelu_tanh(const act_args *a) {
  return pw_sym_is(a->f, "approximate", "tanh");
}

/* tanh(k (x + c x^3)) as a variable */
static kir_var *gelu_t(const act_args *a) {
  kir_expr *x3 = mul(a, X(a), mul(a, X(a), X(a)));
  kir_expr *u =
      mul(a, cst(a, gelu_k), add(a, X(a), mul(a, cst(a, gelu_c), x3)));
  return kir_let(a->pk->k, "t", kir_un(a->pk->k, KIR_TANH, u));
}

static kir_expr *gelu_fwd(const act_args *a) {
  pw_kernel *pk = a->pk;
  kir_expr *inner =
      gelu_tanh(a) ? pw_v(pk, gelu_t(a))
                   : kir_un(pk->k, KIR_ERF, mul(a, X(a), cst(a, inv_sqrt2)));
  return mul(a, mul(a, cst(a, 0.5), X(a)), add(a, cst(a, 1), inner));
}

/* erf form: Phi(x) + x phi(x); tanh form: 0.5 (1 + t) + 0.5 x (1 - t^2) k
 * (1 + 3 c x^2) (see ref_act.c). */
static kir_expr *gelu_bwd(const act_args *a) {
  pw_kernel *pk = a->pk;
  kir_expr *d;
  if (gelu_tanh(a)) {
    kir_var *t = gelu_t(a);
    kir_expr *half1t = mul(a, cst(a, 0.5), add(a, cst(a, 1), pw_v(pk, t)));
    kir_expr *sech2 = sub(a, cst(a, 1), mul(a, pw_v(pk, t), pw_v(pk, t)));
    kir_expr *du =
        mul(a, cst(a, gelu_k),
            add(a, cst(a, 1), mul(a, cst(a, 3 * gelu_c), mul(a, X(a), X(a)))));
    d = add(a, half1t, mul(a, mul(a, cst(a, 0.5), X(a)), mul(a, sech2, du)));
  } else {
    kir_expr *cdf =
        mul(a, cst(a, 0.5),
            add(a, cst(a, 1),
                kir_un(pk->k, KIR_ERF, mul(a, X(a), cst(a, inv_sqrt2)))));
    kir_expr *pdf =
        mul(a, cst(a, inv_sqrt_2pi),
            kir_un(pk->k, KIR_EXP, mul(a, cst(a, -0.5), mul(a, X(a), X(a)))));
    d = add(a, cdf, mul(a, X(a), pdf));
  }
  return mul(a, DY(a), d);
}

/* e = exp(-|x|) never overflows; 1 / (1 + e) is sigmoid(|x|), and
 * e / (1 + e) = sigmoid(-|x|): the reference's two branches in one exp. */
static kir_expr *sigmoid_fwd(const act_args *a) {
  pw_kernel *pk = a->pk;
  kir_var *e =
      kir_let(pk->k, "e",
              kir_un(pk->k, KIR_EXP,
                     kir_un(pk->k, KIR_NEG, kir_un(pk->k, KIR_ABS, X(a)))));
  kir_var *s =
      kir_let(pk->k, "s",
              pw_bin(pk, KIR_DIV, cst(a, 1), add(a, cst(a, 1), pw_v(pk, e))));
  return kir_select(pk->k, pw_bin(pk, KIR_LE, cst(a, 0), X(a)), pw_v(pk, s),
                    mul(a, pw_v(pk, e), pw_v(pk, s)));
}

/* reads y */
static kir_expr *sigmoid_bwd(const act_args *a) {
  return mul(a, DY(a), mul(a, X(a), sub(a, cst(a, 1), X(a))));
}

static kir_expr *tanh_fwd(const act_args *a) {
  return kir_un(a->pk->k, KIR_TANH, X(a));
}

/* reads y */
static kir_expr *tanh_bwd(const act_args *a) {
  return mul(a, DY(a), sub(a, cst(a, 1), mul(a, X(a), X(a))));
}

typedef struct act_row {
  ir_op op;
  const char *name;
  bool reads_y; /* the backward reads the output instead of the input */
  kir_expr *(*fwd)(const act_args *a);
  kir_expr *(*bwd)(const act_args *a);
} act_row;

static const act_row act_rows[] = {
    {IR_OP_RELU, "relu", true, relu_fwd, relu_bwd},
    {IR_OP_LEAKY_RELU, "leaky_relu", false, leaky_fwd, leaky_bwd},
    {IR_OP_ELU, "elu", false, elu_fwd, elu_bwd},
    {IR_OP_GELU, "gelu", false, gelu_fwd, gelu_bwd},
    {IR_OP_SIGMOID, "sigmoid", true, sigmoid_fwd, sigmoid_bwd},
    {IR_OP_TANH, "tanh", true, tanh_fwd, tanh_bwd},
};

static const act_row *act_find(ir_op op) {
  for (size_t i = 0; i < ARRAY_LEN(act_rows); i++)
    if (act_rows[i].op == op)
      return &act_rows[i];
  KILN_ASSERT(!"not an activation");
  return NULL;
}

typedef struct act_ctx {
  const act_row *row;
  const ir_node *f;
} act_ctx;

static kir_expr *map_fwd(pw_kernel *pk, kir_var *i, kir_var *const *x,
                         const void *vctx) {
  const act_ctx *ac = vctx;
  act_args a = {.pk = pk, .f = ac->f, .x = x[0]};
  return ac->row->fwd(&a);
}

/* x[0] is dy, x[1] the saved value */
static kir_expr *map_bwd(pw_kernel *pk, kir_var *i, kir_var *const *x,
                         const void *vctx) {
  const act_ctx *ac = vctx;
  act_args a = {.pk = pk, .f = ac->f, .x = x[1], .dy = x[0]};
  return ac->row->bwd(&a);
}

kiln_status pw_act_fwd(lower_ctx *c, const ir_node *n) {
  act_ctx ac = {.row = act_find(n->op), .f = n};
  int in = lower_node_tensor(c, n->inputs[0]);
  return pw_map(c, arena_printf(c->a, "%s_fwd", ac.row->name), n, n, &in, 1,
                lower_node_tensor(c, n), map_fwd, &ac);
}

kiln_status pw_act_bwd(lower_ctx *c, const ir_node *gn) {
  const ir_node *f = gn->fwd;
  act_ctx ac = {.row = act_find(f->op), .f = f};
  const ir_node *saved = ac.row->reads_y ? f : f->inputs[0];
  KILN_ASSERT(gn->wrt == 0 && gn->n_inputs == 2 && gn->inputs[1] == saved &&
              "autodiff saves what the derivative reads");
  int in[2] = {lower_node_tensor(c, gn->inputs[0]),
               lower_node_tensor(c, saved)};
  return pw_map(c, arena_printf(c->a, "%s_bwd", ac.row->name), f, gn, in, 2,
                lower_node_tensor(c, gn), map_bwd, &ac);
}

/* ---- prelu: y = x > 0 ? x : w[ch] * x, x viewed as [N, C, inner] ---- */

typedef struct prelu_view {
  int64_t n, ch, inner;
  bool shared;
} prelu_view;

static prelu_view prelu_of(lower_ctx *c, const ir_node *f) {
  prelu_view v;
  pw_nc_inner(c, f->inputs[0], &v.n, &v.ch, &v.inner);
  v.shared = pw_attr(f, "shared")->i != 0;
  return v;
}

/* The slope of row (b, ch) of [N * C, inner]: w[row % C], or w[0] when
 * shared; for element i of the flat view, row = i / inner. */
static kir_expr *prelu_slope(pw_kernel *pk, kir_buf *w, kir_var *i,
                             int64_t stride, const prelu_view *v) {
  kir_expr *ch = v->shared ? pw_i(pk, 0) : pw_digit(pk, i, stride, v->ch);
  return kir_load(pk->k, w, ch);
}

/* prelu reads its input x: the slope may turn negative while training.
 * Long rows (inner >= PW_ROW_MIN) load the slope once per block. */
static kiln_status prelu_data(lower_ctx *c, const ir_node *f, const ir_node *n,
                              const ir_node *dy) {
  prelu_view v = prelu_of(c, f);
  pw_kernel pk;
  pw_begin(&pk, c, dy ? "prelu_bwd" : "prelu_fwd", f, n);
  kir_buf *x = pw_in(&pk, "x", lower_node_tensor(c, f->inputs[0]));
  kir_buf *w = pw_in(&pk, "w", lower_param_tensor(c, &f->params[0]));
  kir_buf *g = dy ? pw_in(&pk, "dy", lower_node_tensor(c, dy)) : NULL;
  kir_buf *out = pw_out(&pk, dy ? "dx" : "y", lower_node_tensor(c, n));
  kir_var *i, *slope;
  if (v.inner >= PW_ROW_MIN) {
    kir_var *row = pw_rows_begin(&pk, v.n * v.ch, v.inner);
    slope = kir_let(pk.k, "slope", prelu_slope(&pk, w, row, 1, &v));
    kir_var *q = pw_rows_threads(&pk, v.inner);
    i = kir_let(pk.k, "i",
                pw_bin(&pk, KIR_ADD,
                       pw_bin(&pk, KIR_MUL, pw_v(&pk, row), pw_i(&pk, v.inner)),
                       pw_v(&pk, q)));
  } else {
    i = pw_loop(&pk, lower_numel(c, n));
    slope = kir_let(pk.k, "slope", prelu_slope(&pk, w, i, v.inner, &v));
  }
  kir_var *xv = kir_let(pk.k, "xv", kir_load(pk.k, x, pw_v(&pk, i)));
  kir_expr *pos = g ? kir_load(pk.k, g, pw_v(&pk, i)) : pw_v(&pk, xv);
  kir_expr *neg = pw_bin(&pk, KIR_MUL, pw_v(&pk, slope),
                         g ? kir_load(pk.k, g, pw_v(&pk, i)) : pw_v(&pk, xv));
  kir_store(
      pk.k, out, pw_v(&pk, i),
      kir_select(pk.k, pw_gt(&pk, pw_v(&pk, xv), pw_f(&pk, 0)), pos, neg));
  pw_loop_end(&pk);
  return pw_launch(&pk);
}

kiln_status pw_prelu_fwd(lower_ctx *c, const ir_node *n) {
  KILN_ASSERT(n->n_params == 1);
  return prelu_data(c, n, n, NULL);
}

/* dw[ch] = sum over the elements of channel ch (all elements when shared)
 * of (x > 0 ? 0 : dy * x), one serial sum per slope in the reference's
 * order (batch, then position). */
static kiln_status prelu_weight(lower_ctx *c, const ir_node *gn) {
  const ir_node *f = gn->fwd;
  prelu_view v = prelu_of(c, f);
  pw_kernel pk;
  pw_begin(&pk, c, "prelu_bwd_weight", f, gn);
  kir_buf *x = pw_in(&pk, "x", lower_node_tensor(c, f->inputs[0]));
  kir_buf *g = pw_in(&pk, "dy", lower_node_tensor(c, gn->inputs[0]));
  int64_t per = v.shared ? v.ch * v.inner : v.inner;
  pw_reduce rd;
  pw_reduce_begin(&pk, &rd, lower_node_tensor(c, gn), v.shared ? 1 : v.ch, v.n,
                  v.n * per);
  /* element (b, ch, j) is at (b * C + ch) * inner + j; shared slopes sum
   * every element, i.e. b * C * inner + e for e < C * inner */
  kir_var *b = pw_reduce_for(&pk, &rd, v.n);
  kir_var *r = pw_reduce_for(&pk, &rd, per);
  kir_expr *row =
      v.shared ? pw_v(&pk, b)
               : pw_bin(&pk, KIR_ADD,
                        pw_bin(&pk, KIR_MUL, pw_v(&pk, b), pw_i(&pk, v.ch)),
                        pw_v(&pk, rd.j));
  kir_expr *idx = pw_bin(
      &pk, KIR_ADD, pw_bin(&pk, KIR_MUL, row, pw_i(&pk, per)), pw_v(&pk, r));
  kir_var *e = kir_let(pk.k, "e", idx);
  kir_var *xv = kir_let(pk.k, "xv", kir_load(pk.k, x, pw_v(&pk, e)));
  kir_expr *term =
      pw_bin(&pk, KIR_MUL, kir_load(pk.k, g, pw_v(&pk, e)), pw_v(&pk, xv));
  pw_reduce_add(&pk, &rd,
                kir_select(pk.k, pw_gt(&pk, pw_v(&pk, xv), pw_f(&pk, 0)),
                           pw_f(&pk, 0), term));
  return pw_reduce_launch(&pk, &rd);
}

kiln_status pw_prelu_bwd(lower_ctx *c, const ir_node *gn) {
  if (gn->wrt == 0)
    return prelu_data(c, gn->fwd, gn, gn->inputs[0]);
  KILN_ASSERT(gn->wrt == -1 && "prelu's one parameter is its slopes");
  return prelu_weight(c, gn);
}
