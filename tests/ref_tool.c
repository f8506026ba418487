/* ref_tool.c — runs one reference kernel on numbers read from stdin and
 * prints the results, so that tests/py/test_ref_numpy.py can compare the
 * reference executor with numpy. Not a test by itself.
 *
 *   ref_tool gelu none|tanh      stdin: n, x[n], dy[n]      -> y, dx
 *   ref_tool softmax AXIS        stdin: rank, dims, x, dy   -> y, dx
 *   ref_tool add|mul             stdin: ra, dims, rb, dims, a, b, dy
 *                                -> rank, dims, y, da, db
 *   ref_tool cross_entropy EPS mean|sum
 *                                stdin: n, k, logits, labels, dloss
 *                                -> status (0 or -1), then loss, dlogits
 *
 * Numbers are printed with %.17g, one per line, so they round-trip. A
 * malformed request prints a message and returns 2. */
#include "runtime/reference/ref_pointwise.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The largest tensor a request may hold; the script sends small ones. */
enum { MAX_ELEMS = 1 << 20 };

static bool read_i64(int64_t *v) {
  long long t;
  if (scanf("%lld", &t) != 1)
    return false;
  *v = t;
  return true;
}

/* n doubles into a new buffer, or NULL on a short read or bad size. */
static ref_t *read_vec(int64_t n) {
  if (n < 0 || n > MAX_ELEMS)
    return NULL;
  ref_t *v = malloc(sizeof(ref_t) * (size_t)(n ? n : 1));
  for (int64_t i = 0; v && i < n; i++) {
    if (scanf("%lf", &v[i]) != 1) {
      free(v);
      return NULL;
    }
  }
  return v;
}

static bool read_shape(int64_t *shape, int *rank, int64_t *count) {
  int64_t r;
  if (!read_i64(&r) || r < 0 || r > REF_MAX_RANK)
    return false;
  *rank = (int)r;
  *count = 1;
  for (int i = 0; i < *rank; i++) {
    if (!read_i64(&shape[i]) || shape[i] < 0 || shape[i] > MAX_ELEMS)
      return false;
    *count *= shape[i];
  }
  return *count <= MAX_ELEMS;
}

static void print_vec(const ref_t *v, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    printf("%.17g\n", v[i]);
}

static int run_gelu(const char *mode) {
  ref_gelu_approx a = strcmp(mode, "tanh") == 0 ? REF_GELU_TANH : REF_GELU_NONE;
  int64_t n;
  if (!read_i64(&n) || n < 0 || n > MAX_ELEMS)
    return 2;
  ref_t *x = read_vec(n), *dy = read_vec(n);
  ref_t *y = malloc(sizeof(ref_t) * (size_t)(n + 1));
  ref_t *dx = malloc(sizeof(ref_t) * (size_t)(n + 1));
  int rc = 2;
  if (x && dy && y && dx) {
    ref_gelu_fwd(x, y, n, a);
    ref_gelu_bwd(x, dy, dx, n, a);
    print_vec(y, n);
    print_vec(dx, n);
    rc = 0;
  }
  free(x);
  free(dy);
  free(y);
  free(dx);
  return rc;
}

static int run_softmax(int axis) {
  int64_t shape[REF_MAX_RANK], count, outer, len, inner;
  int rank;
  if (!read_shape(shape, &rank, &count) ||
      !ref_axis_split(shape, rank, axis, &outer, &len, &inner))
    return 2;
  ref_t *x = read_vec(count), *dy = read_vec(count);
  ref_t *y = malloc(sizeof(ref_t) * (size_t)(count + 1));
  ref_t *dx = malloc(sizeof(ref_t) * (size_t)(count + 1));
  int rc = 2;
  if (x && dy && y && dx) {
    ref_softmax_fwd(x, y, outer, len, inner);
    ref_softmax_bwd(y, dy, dx, outer, len, inner);
    print_vec(y, count);
    print_vec(dx, count);
    rc = 0;
  }
  free(x);
  free(dy);
  free(y);
  free(dx);
  return rc;
}

static int run_binary(bool mul) {
  int64_t as[REF_MAX_RANK], bs[REF_MAX_RANK], ys[REF_MAX_RANK], na, nb;
  int ar, br, yr;
  if (!read_shape(as, &ar, &na) || !read_shape(bs, &br, &nb) ||
      !ref_broadcast_shape(as, ar, bs, br, ys, &yr)) {
    fprintf(stderr, "ref_tool: bad or incompatible shapes\n");
    return 2;
  }
  int64_t ny = 1;
  for (int i = 0; i < yr; i++)
    ny *= ys[i];
  if (ny > MAX_ELEMS)
    return 2;
  ref_t *a = read_vec(na), *b = read_vec(nb), *dy = read_vec(ny);
  ref_t *y = malloc(sizeof(ref_t) * (size_t)(ny + 1));
  ref_t *da = malloc(sizeof(ref_t) * (size_t)(na + 1));
  ref_t *db = malloc(sizeof(ref_t) * (size_t)(nb + 1));
  int rc = 2;
  if (a && b && dy && y && da && db) {
    if (mul) {
      ref_mul_fwd(a, as, ar, b, bs, br, y);
      ref_mul_bwd(a, as, ar, b, bs, br, dy, da, db);
    } else {
      ref_add_fwd(a, as, ar, b, bs, br, y);
      ref_add_bwd(dy, as, ar, bs, br, da, db);
    }
    printf("%d\n", yr);
    for (int i = 0; i < yr; i++)
      printf("%lld\n", (long long)ys[i]);
    print_vec(y, ny);
    print_vec(da, na);
    print_vec(db, nb);
    rc = 0;
  }
  free(a);
  free(b);
  free(dy);
  free(y);
  free(da);
  free(db);
  return rc;
}

static int run_cross_entropy(double eps, const char *red_name) {
  ref_reduction red =
      strcmp(red_name, "sum") == 0 ? REF_REDUCTION_SUM : REF_REDUCTION_MEAN;
  int64_t n, k;
  if (!read_i64(&n) || !read_i64(&k) || n < 0 || k <= 0 || n * k > MAX_ELEMS)
    return 2;
  ref_t *z = read_vec(n * k), *dz = malloc(sizeof(ref_t) * (size_t)(n * k + 1));
  int32_t *labels = malloc(sizeof(int32_t) * (size_t)(n + 1));
  int rc = 2;
  bool ok = z && dz && labels;
  for (int64_t i = 0; ok && i < n; i++) {
    int64_t l = 0;
    ok = read_i64(&l);
    labels[i] = (int32_t)l;
  }
  double dloss;
  if (ok && scanf("%lf", &dloss) == 1) {
    ref_t loss = 0;
    int st = ref_cross_entropy_fwd(z, labels, n, k, eps, red, &loss);
    if (st == 0)
      st = ref_cross_entropy_bwd(z, labels, n, k, eps, red, dloss, dz);
    printf("%d\n", st);
    if (st == 0) {
      print_vec(&loss, 1);
      print_vec(dz, n * k);
    }
    rc = 0;
  }
  free(z);
  free(dz);
  free(labels);
  return rc;
}

int main(int argc, char **argv) {
  if (argc >= 3 && strcmp(argv[1], "gelu") == 0)
    return run_gelu(argv[2]);
  if (argc >= 3 && strcmp(argv[1], "softmax") == 0)
    return run_softmax(atoi(argv[2]));
  if (argc >= 2 && (strcmp(argv[1], "add") == 0 || strcmp(argv[1], "mul") == 0))
    return run_binary(strcmp(argv[1], "mul") == 0);
  if (argc >= 4 && strcmp(argv[1], "cross_entropy") == 0)
    return run_cross_entropy(atof(argv[2]), argv[3]);
  fprintf(stderr, "usage: ref_tool gelu|softmax|add|mul|cross_entropy ...\n");
  return 2;
}
