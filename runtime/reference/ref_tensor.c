/* ref_tensor.c — ops that move or combine whole tensors: add and mul with
 * NumPy broadcasting, concat, softmax.
 *
 * Broadcasting is done the plain way: walk every element of the output with
 * a multi-index, and find the matching element of each input through
 * strides that are 0 along the dimensions it is broadcast over. The
 * backward walks the same way and sums dy into each input's gradient, which
 * is exactly "reduce over the broadcast dimensions". Shapes reaching these
 * kernels have passed shape inference, so a mismatch is kiln's bug and
 * asserts. */
#include "runtime/reference/ref_pointwise.h"

#include "support/support.h"

#include <math.h>

bool ref_broadcast_shape(const int64_t *as, int ar, const int64_t *bs, int br,
                         int64_t *out, int *out_rank) {
  int r = ar > br ? ar : br;
  if (ar < 0 || br < 0 || r > REF_MAX_RANK)
    return false;
  for (int i = 0; i < r; i++) {
    /* Dimension i of the output, counted from the left; inputs are aligned
     * at the right, and a missing dimension counts as 1. */
    int ia = i - (r - ar), ib = i - (r - br);
    int64_t da = ia >= 0 ? as[ia] : 1, db = ib >= 0 ? bs[ib] : 1;
    if (da != db && da != 1 && db != 1)
      return false;
    out[i] = da == 1 ? db : da;
  }
  *out_rank = r;
  return true;
}

bool ref_axis_split(const int64_t *shape, int rank, int axis, int64_t *outer,
                    int64_t *len, int64_t *inner) {
  if (axis < 0)
    axis += rank;
  if (axis < 0 || axis >= rank)
    return false;
  *outer = 1;
  *inner = 1;
  for (int i = 0; i < axis; i++)
    *outer *= shape[i];
  *len = shape[axis];
  for (int i = axis + 1; i < rank; i++)
    *inner *= shape[i];
  return true;
}

/* The output shape and, for each output dimension, the stride of each
 * input along it (0 where the input is broadcast). */
typedef struct bcast {
  int rank;
  int64_t shape[REF_MAX_RANK];
  int64_t sa[REF_MAX_RANK], sb[REF_MAX_RANK];
  int64_t count; /* output elements */
} bcast;

static void input_strides(const int64_t *s, int r, const bcast *bc,
                          int64_t *st) {
  int64_t stride = 1;
  for (int i = bc->rank - 1; i >= 0; i--) {
    int k = i - (bc->rank - r);
    if (k < 0 || s[k] == 1) {
      st[i] = 0;
    } else {
      st[i] = stride;
    }
    if (k >= 0)
      stride *= s[k];
  }
}

static void bcast_init(bcast *bc, const int64_t *as, int ar, const int64_t *bs,
                       int br) {
  KILN_ASSERT(ref_broadcast_shape(as, ar, bs, br, bc->shape, &bc->rank));
  bc->count = 1;
  for (int i = 0; i < bc->rank; i++)
    bc->count *= bc->shape[i];
  input_strides(as, ar, bc, bc->sa);
  input_strides(bs, br, bc, bc->sb);
}

static int64_t shape_count(const int64_t *s, int r) {
  int64_t n = 1;
  for (int i = 0; i < r; i++)
    n *= s[i];
  return n;
}

/* Calls visit(o, ia, ib) for every output element o in row-major order,
 * with the offsets of the matching elements of a and b. The multi-index
 * idx is advanced like an odometer; the offsets follow incrementally. */
typedef void (*bcast_visit)(void *ctx, int64_t o, int64_t ia, int64_t ib);

static void bcast_walk(const bcast *bc, bcast_visit visit, void *ctx) {
  int64_t idx[REF_MAX_RANK] = {0};
  int64_t ia = 0, ib = 0;
  for (int64_t o = 0; o < bc->count; o++) {
    visit(ctx, o, ia, ib);
    for (int d = bc->rank - 1; d >= 0; d--) {
      idx[d]++;
      ia += bc->sa[d];
      ib += bc->sb[d];
      if (idx[d] < bc->shape[d])
        break;
      /* Dimension d wraps: rewind its contribution and carry left. */
      ia -= bc->sa[d] * idx[d];
      ib -= bc->sb[d] * idx[d];
      idx[d] = 0;
    }
  }
}

typedef struct binop {
  const ref_t *a, *b, *dy;
  ref_t *y, *da, *db;
} binop;

static void visit_add(void *ctx, int64_t o, int64_t ia, int64_t ib) {
  binop *p = ctx;
  p->y[o] = p->a[ia] + p->b[ib];
}

static void visit_mul(void *ctx, int64_t o, int64_t ia, int64_t ib) {
  binop *p = ctx;
  p->y[o] = p->a[ia] * p->b[ib];
}

static void visit_add_bwd(void *ctx, int64_t o, int64_t ia, int64_t ib) {
  binop *p = ctx;
  if (p->da)
    p->da[ia] += p->dy[o];
  if (p->db)
    p->db[ib] += p->dy[o];
}

static void visit_mul_bwd(void *ctx, int64_t o, int64_t ia, int64_t ib) {
  binop *p = ctx;
  if (p->da)
    p->da[ia] += p->dy[o] * p->b[ib];
  if (p->db)
    p->db[ib] += p->dy[o] * p->a[ia];
}

static void zero(ref_t *p, int64_t n) {
  for (int64_t i = 0; p && i < n; i++)
    p[i] = 0;
}

void ref_add_fwd(const ref_t *a, const int64_t *as, int ar, const ref_t *b,
                 const int64_t *bs, int br, ref_t *y) {
  bcast bc;
  bcast_init(&bc, as, ar, bs, br);
  binop p = {.a = a, .b = b, .y = y};
  bcast_walk(&bc, visit_add, &p);
}

void ref_mul_fwd(const ref_t *a, const int64_t *as, int ar, const ref_t *b,
                 const int64_t *bs, int br, ref_t *y) {
  bcast bc;
  bcast_init(&bc, as, ar, bs, br);
  binop p = {.a = a, .b = b, .y = y};
  bcast_walk(&bc, visit_mul, &p);
}

/* The gradients are written (zeroed, then summed into), per ref.h. */
void ref_add_bwd(const ref_t *dy, const int64_t *as, int ar, const int64_t *bs,
                 int br, ref_t *da, ref_t *db) {
  bcast bc;
  bcast_init(&bc, as, ar, bs, br);
  zero(da, shape_count(as, ar));
  zero(db, shape_count(bs, br));
  binop p = {.dy = dy, .da = da, .db = db};
  bcast_walk(&bc, visit_add_bwd, &p);
}

void ref_mul_bwd(const ref_t *a, const int64_t *as, int ar, const ref_t *b,
                 const int64_t *bs, int br, const ref_t *dy, ref_t *da,
                 ref_t *db) {
  bcast bc;
  bcast_init(&bc, as, ar, bs, br);
  zero(da, shape_count(as, ar));
  zero(db, shape_count(bs, br));
  binop p = {.a = a, .b = b, .dy = dy, .da = da, .db = db};
  bcast_walk(&bc, visit_mul_bwd, &p);
}

/* ---- concat ---- */

/* The output is [outer, sum(lens), inner]: row o of the output is the
 * concatenation of row o of every input. */
void ref_concat_fwd(const ref_t *const *xs, const int64_t *lens, int k,
                    int64_t outer, int64_t inner, ref_t *y) {
  int64_t at = 0;
  for (int64_t o = 0; o < outer; o++) {
    for (int i = 0; i < k; i++) {
      int64_t m = lens[i] * inner;
      for (int64_t j = 0; j < m; j++)
        y[at++] = xs[i][o * m + j];
    }
  }
}

void ref_concat_bwd(const ref_t *dy, const int64_t *lens, int k, int64_t outer,
                    int64_t inner, ref_t *const *dxs) {
  int64_t at = 0;
  for (int64_t o = 0; o < outer; o++) {
    for (int i = 0; i < k; i++) {
      int64_t m = lens[i] * inner;
      for (int64_t j = 0; j < m; j++)
        dxs[i][o * m + j] = dy[at++];
    }
  }
}

/* ---- softmax ---- */

/* Subtracting the row's maximum first keeps every exp() in (0, 1], so
 * large logits cannot overflow; the result is mathematically unchanged. */
void ref_softmax_fwd(const ref_t *x, ref_t *y, int64_t outer, int64_t len,
                     int64_t inner) {
  for (int64_t o = 0; o < outer; o++) {
    for (int64_t j = 0; j < inner; j++) {
      const ref_t *xr = x + o * len * inner + j;
      ref_t *yr = y + o * len * inner + j;
      double mx = -INFINITY;
      for (int64_t i = 0; i < len; i++)
        mx = fmax(mx, xr[i * inner]);
      double sum = 0;
      for (int64_t i = 0; i < len; i++) {
        yr[i * inner] = exp(xr[i * inner] - mx);
        sum += yr[i * inner];
      }
      for (int64_t i = 0; i < len; i++)
        yr[i * inner] /= sum;
    }
  }
}

/* The Jacobian of softmax is diag(y) - y y^T, so
 * dx_i = y_i dy_i - y_i sum_j y_j dy_j = y_i (dy_i - <y, dy>). */
void ref_softmax_bwd(const ref_t *y, const ref_t *dy, ref_t *dx, int64_t outer,
                     int64_t len, int64_t inner) {
  for (int64_t o = 0; o < outer; o++) {
    for (int64_t j = 0; j < inner; j++) {
      int64_t base = o * len * inner + j;
      double dot = 0;
      for (int64_t i = 0; i < len; i++)
        dot += y[base + i * inner] * dy[base + i * inner];
      for (int64_t i = 0; i < len; i++)
        dx[base + i * inner] =
            y[base + i * inner] * (dy[base + i * inner] - dot);
    }
  }
}
