/* data_npy.c — NumPy's .npy format (numpy.lib.format), versions 1.0, 2.0
 * and 3.0:
 *
 *   "\x93NUMPY" major minor
 *   header length: u16 little-endian (1.x) or u32 (2.x, 3.x)
 *   header: a Python dict literal, padded with spaces, ending in '\n'
 *     {'descr': '<f4', 'fortran_order': False, 'shape': (60000, 28, 28), }
 *   data: prod(shape) elements, C order
 *
 * Accepted: descr <f4 <f8 |u1 <i4 <i8, fortran_order False. Images are
 * [n, F], [n, H, W] (stored as [1, H, W]) or [n, C, H, W] of any accepted
 * type, and floats must be finite; |u1 images are 8-bit pixels. Labels are
 * [n] of an integer type with values in 0..DATA_MAX_CLASSES-1. The data must
 * be exactly what the header announces. Values are decoded byte by byte, so
 * the host's endianness and the data's alignment do not matter. */
#include "runtime/data/data.h"

#include "support/support.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const kiln_loc no_loc = {NULL, 0, 0};

enum { NPY_MAX_DIMS = 8 };

typedef enum npy_type { NPY_F4, NPY_F8, NPY_U1, NPY_I4, NPY_I8 } npy_type;

static const struct {
  const char *descr;
  int size;
} npy_types[] = {
    [NPY_F4] = {"<f4", 4}, [NPY_F8] = {"<f8", 8}, [NPY_U1] = {"|u1", 1},
    [NPY_I4] = {"<i4", 4}, [NPY_I8] = {"<i8", 8},
};

typedef struct npy_header {
  npy_type type;
  int rank;
  int64_t dims[NPY_MAX_DIMS];
  int64_t count;   /* elements */
  size_t data_off; /* first data byte */
} npy_header;

/* A cursor over the header dict; `why` is set at the first error. */
typedef struct npy_cur {
  const char *p, *end;
  const char *why;
} npy_cur;

static void skip_ws(npy_cur *c) {
  while (c->p < c->end && (*c->p == ' ' || *c->p == '\t'))
    c->p++;
}

static bool expect(npy_cur *c, char ch, const char *why) {
  skip_ws(c);
  if (c->p < c->end && *c->p == ch) {
    c->p++;
    return true;
  }
  c->why = why;
  return false;
}

/* string := "'" chars "'" | '"' chars '"' (no escapes: numpy writes none) */
static bool parse_str(npy_cur *c, char *out, size_t cap) {
  skip_ws(c);
  if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) {
    c->why = "expected a quoted string";
    return false;
  }
  char q = *c->p++;
  size_t n = 0;
  while (c->p < c->end && *c->p != q) {
    if (n + 1 >= cap) {
      c->why = "string too long";
      return false;
    }
    out[n++] = *c->p++;
  }
  if (c->p >= c->end) {
    c->why = "unterminated string";
    return false;
  }
  c->p++;
  out[n] = '\0';
  return true;
}

/* tuple := "(" [ int { "," int } [","] ] ")"; a one-element tuple needs its
 * comma in Python, but numpy always writes it, so it is not checked. */
static bool parse_shape(npy_cur *c, npy_header *h) {
  if (!expect(c, '(', "expected '(' to start the shape"))
    return false;
  h->rank = 0;
  for (;;) {
    skip_ws(c);
    if (c->p < c->end && *c->p == ')') {
      c->p++;
      return true;
    }
    if (c->p >= c->end || !isdigit((unsigned char)*c->p)) {
      c->why = "expected a non-negative integer in the shape";
      return false;
    }
    if (h->rank == NPY_MAX_DIMS) {
      c->why = "too many dimensions in the shape";
      return false;
    }
    int64_t v = 0;
    while (c->p < c->end && isdigit((unsigned char)*c->p)) {
      if (v > (INT64_MAX - 9) / 10) {
        c->why = "shape dimension too large";
        return false;
      }
      v = v * 10 + (*c->p++ - '0');
    }
    if (c->p < c->end && *c->p == 'L') /* Python 2 longs */
      c->p++;
    h->dims[h->rank++] = v;
    skip_ws(c);
    if (c->p < c->end && *c->p == ',')
      c->p++;
    else if (c->p >= c->end || *c->p != ')') {
      c->why = "expected ',' or ')' in the shape";
      return false;
    }
  }
}

static bool parse_dict(npy_cur *c, npy_header *h, char *descr, size_t cap) {
  bool seen_descr = false, seen_order = false, seen_shape = false;
  if (!expect(c, '{', "expected '{'"))
    return false;
  for (;;) {
    skip_ws(c);
    if (c->p < c->end && *c->p == '}') {
      c->p++;
      break;
    }
    char key[32];
    if (!parse_str(c, key, sizeof key) ||
        !expect(c, ':', "expected ':' after a key"))
      return false;
    bool *seen = !strcmp(key, "descr")           ? &seen_descr
                 : !strcmp(key, "fortran_order") ? &seen_order
                 : !strcmp(key, "shape")         ? &seen_shape
                                                 : NULL;
    if (!seen) {
      c->why = "unknown key (expected 'descr', 'fortran_order', 'shape')";
      return false;
    }
    if (*seen) {
      c->why = "duplicate key";
      return false;
    }
    *seen = true;
    if (seen == &seen_descr) {
      if (!parse_str(c, descr, cap))
        return false;
    } else if (seen == &seen_order) {
      skip_ws(c);
      if (c->end - c->p >= 5 && !memcmp(c->p, "False", 5)) {
        c->p += 5;
      } else if (c->end - c->p >= 4 && !memcmp(c->p, "True", 4)) {
        c->why = "fortran_order True is not supported (save a C-order "
                 "array: np.ascontiguousarray)";
        return false;
      } else {
        c->why = "expected False for 'fortran_order'";
        return false;
      }
    } else if (!parse_shape(c, h)) {
      return false;
    }
    skip_ws(c);
    if (c->p < c->end && *c->p == ',')
      c->p++;
    else if (c->p >= c->end || *c->p != '}') {
      c->why = "expected ',' or '}'";
      return false;
    }
  }
  if (!seen_descr || !seen_order || !seen_shape) {
    c->why = !seen_descr   ? "missing 'descr'"
             : !seen_order ? "missing 'fortran_order'"
                           : "missing 'shape'";
    return false;
  }
  while (c->p < c->end && (*c->p == ' ' || *c->p == '\n'))
    c->p++;
  if (c->p != c->end) {
    c->why = "unexpected text after the dict";
    return false;
  }
  return true;
}

static kiln_status npy_parse(const char *path, const data_bytes *b,
                             npy_header *h, kiln_error *err) {
  static const char magic[] = "\x93NUMPY";
  memset(h, 0, sizeof *h);
  if (b->len < 10 || memcmp(b->data, magic, 6) != 0)
    return diag_error(err, KILN_ERR_TYPE, no_loc,
                      "'%s': not a .npy file (no \\x93NUMPY magic)", path);
  unsigned major = b->data[6], minor = b->data[7];
  if (major < 1 || major > 3 || minor != 0)
    return diag_error(err, KILN_ERR_TYPE, no_loc,
                      "'%s': bad npy header: unsupported version %u.%u "
                      "(expected 1.0, 2.0 or 3.0)",
                      path, major, minor);
  size_t hlen_size = major == 1 ? 2 : 4, start = 8 + hlen_size;
  if (b->len < start)
    return diag_error(err, KILN_ERR_IO, no_loc,
                      "'%s': truncated: the npy header is cut short", path);
  size_t hlen = (size_t)b->data[8] | (size_t)b->data[9] << 8;
  if (hlen_size == 4)
    hlen |= (size_t)b->data[10] << 16 | (size_t)b->data[11] << 24;
  if (b->len - start < hlen)
    return diag_error(err, KILN_ERR_IO, no_loc,
                      "'%s': truncated: the npy header needs %zu bytes, found "
                      "%zu",
                      path, hlen, b->len - start);
  const char *text = (const char *)b->data + start;
  if (hlen == 0 || text[hlen - 1] != '\n')
    return diag_error(err, KILN_ERR_TYPE, no_loc,
                      "'%s': bad npy header: it does not end with a newline",
                      path);
  npy_cur c = {text, text + hlen, NULL};
  char descr[16];
  if (!parse_dict(&c, h, descr, sizeof descr))
    return diag_error(err, KILN_ERR_TYPE, no_loc,
                      "'%s': bad npy header: %s at byte %zu of the header",
                      path, c.why, (size_t)(c.p - text));
  int t = -1;
  for (size_t i = 0; i < ARRAY_LEN(npy_types); i++)
    if (!strcmp(descr, npy_types[i].descr))
      t = (int)i;
  if (t < 0)
    return diag_error(err, KILN_ERR_TYPE, no_loc,
                      "'%s': unsupported dtype '%s'%s (supported: <f4 <f8 |u1 "
                      "<i4 <i8)",
                      path, descr, descr[0] == '>' ? ", big-endian" : "");
  h->type = (npy_type)t;
  int64_t count = 1, bytes = 0;
  for (int i = 0; i < h->rank; i++)
    if (!data_mul_ok(count, h->dims[i], &count))
      return diag_error(err, KILN_ERR_TYPE, no_loc,
                        "'%s': the npy shape overflows 64 bits", path);
  if (!data_mul_ok(count, npy_types[t].size, &bytes))
    return diag_error(err, KILN_ERR_TYPE, no_loc,
                      "'%s': the npy shape overflows 64 bits", path);
  uint64_t have = b->len - start - hlen;
  if (have < (uint64_t)bytes)
    return diag_error(err, KILN_ERR_IO, no_loc,
                      "'%s': truncated: expected %lld bytes of array data, "
                      "found %llu",
                      path, (long long)bytes, (unsigned long long)have);
  if (have > (uint64_t)bytes)
    return diag_error(err, KILN_ERR_IO, no_loc,
                      "'%s': %llu bytes of trailing data after the array", path,
                      (unsigned long long)(have - (uint64_t)bytes));
  h->count = count;
  h->data_off = start + hlen;
  return KILN_OK;
}

static uint64_t le(const unsigned char *p, int size) {
  uint64_t v = 0;
  for (int i = size - 1; i >= 0; i--)
    v = v << 8 | p[i];
  return v;
}

/* Element i as a double; integers up to 2^53 exactly. */
static double npy_get(const npy_header *h, const unsigned char *data,
                      int64_t i) {
  int size = npy_types[h->type].size;
  uint64_t v = le(data + (size_t)i * (size_t)size, size);
  switch (h->type) {
  case NPY_F4: {
    uint32_t u = (uint32_t)v;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
  }
  case NPY_F8: {
    double d;
    memcpy(&d, &v, sizeof d);
    return d;
  }
  case NPY_U1:
    return (double)v;
  case NPY_I4:
    return (double)(int32_t)(uint32_t)v;
  case NPY_I8:
    return (double)(int64_t)v;
  }
  KILN_ASSERT(!"unreachable npy type");
  return 0;
}

static const char *shape_str(char *buf, size_t cap, const npy_header *h) {
  size_t n = (size_t)snprintf(buf, cap, "(");
  for (int i = 0; i < h->rank && n < cap; i++)
    n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? ", " : "",
                          (long long)h->dims[i]);
  if (n < cap)
    snprintf(buf + n, cap - n, ")");
  return buf;
}

kiln_status data_npy_read_images(const char *path, data_images *out,
                                 kiln_error *err) {
  memset(out, 0, sizeof *out);
  data_bytes b;
  npy_header h;
  char sbuf[160];
  kiln_status st = data_file_read(path, &b, err);
  if (st == KILN_OK)
    st = npy_parse(path, &b, &h, err);
  if (st == KILN_OK && (h.rank < 2 || h.rank > 4))
    st = diag_error(err, KILN_ERR_TYPE, no_loc,
                    "'%s': images must be [n, F], [n, H, W] or [n, C, H, W]; "
                    "the array is %s",
                    path, shape_str(sbuf, sizeof sbuf, &h));
  if (st == KILN_OK) {
    int64_t shape[3] = {1, 1, 1};
    int rank = h.rank == 3 ? 3 : h.rank - 1; /* [n, H, W] -> [1, H, W] */
    for (int i = 1; i < h.rank; i++)
      shape[rank - (h.rank - i)] = h.dims[i];
    st = data_images_alloc(out, path, h.dims[0], rank, shape, err);
  }
  if (st == KILN_OK) {
    const unsigned char *data = b.data + h.data_off;
    for (int64_t i = 0; i < h.count && st == KILN_OK; i++) {
      double v = npy_get(&h, data, i);
      out->x[i] = (float)v;
      if (!isfinite(out->x[i]))
        st = diag_error(err, KILN_ERR_TYPE, no_loc,
                        "'%s': element %lld is %g; images must be finite", path,
                        (long long)i, v);
    }
    out->u8 = h.type == NPY_U1;
  }
  if (st != KILN_OK)
    data_images_free(out);
  data_bytes_free(&b);
  return st;
}

kiln_status data_npy_read_labels(const char *path, data_labels *out,
                                 kiln_error *err) {
  memset(out, 0, sizeof *out);
  data_bytes b;
  npy_header h;
  char sbuf[160];
  kiln_status st = data_file_read(path, &b, err);
  if (st == KILN_OK)
    st = npy_parse(path, &b, &h, err);
  if (st == KILN_OK && h.rank != 1)
    st = diag_error(err, KILN_ERR_TYPE, no_loc,
                    "'%s': labels must be [n]; the array is %s", path,
                    shape_str(sbuf, sizeof sbuf, &h));
  if (st == KILN_OK && (h.type == NPY_F4 || h.type == NPY_F8))
    st = diag_error(err, KILN_ERR_TYPE, no_loc,
                    "'%s': labels must be integers (|u1, <i4 or <i8), found "
                    "'%s'",
                    path, npy_types[h.type].descr);
  if (st == KILN_OK)
    st = data_labels_alloc(out, path, h.dims[0], err);
  if (st == KILN_OK) {
    const unsigned char *data = b.data + h.data_off;
    for (int64_t i = 0; i < h.count && st == KILN_OK; i++) {
      double v = npy_get(&h, data, i);
      if (v < 0 || v >= DATA_MAX_CLASSES)
        st = diag_error(err, KILN_ERR_TYPE, no_loc,
                        "'%s': label %.0f of example %lld is out of range "
                        "0..%d",
                        path, v, (long long)i, DATA_MAX_CLASSES - 1);
      else
        out->y[i] = (int32_t)v;
    }
  }
  if (st != KILN_OK)
    data_labels_free(out);
  data_bytes_free(&b);
  return st;
}
