/* data_idx.c — the IDX format of MNIST and Fashion-MNIST.
 *
 *   magic   u32 big-endian: 0x00 0x00 <element type> <number of dims>
 *   dims    u32 big-endian each
 *   data    the elements, C order
 *
 * Images are unsigned bytes [n, rows, cols] (magic 0x00000803), labels
 * unsigned bytes [n] (0x00000801); other element types and ranks are
 * refused. The file must hold exactly the data its header announces:
 * short data is "truncated", extra data is an error too (it usually means a
 * wrong header). Images come out as [1, rows, cols] examples with u8 set. */
#include "runtime/data/data.h"

#include "support/support.h"

#include <string.h>

static const kiln_loc no_loc = {NULL, 0, 0};

enum { IDX_U8 = 0x08 };

static uint32_t be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         (uint32_t)p[3];
}

static const char *idx_type_name(unsigned t) {
  switch (t) {
  case 0x08:
    return "unsigned byte";
  case 0x09:
    return "signed byte";
  case 0x0B:
    return "short";
  case 0x0C:
    return "int";
  case 0x0D:
    return "float";
  case 0x0E:
    return "double";
  default:
    return NULL;
  }
}

/* Checks the magic and reads the dimensions (at most 3) of an IDX file of
 * unsigned bytes with `ndim` dimensions; sets *data_off to the first data
 * byte and *count to the number of elements the header announces. */
static kiln_status idx_header(const char *path, const data_bytes *b, int ndim,
                              const char *what, int64_t *dims, size_t *data_off,
                              int64_t *count, kiln_error *err) {
  uint32_t want = (uint32_t)(IDX_U8 << 8 | ndim);
  if (b->len < 4)
    return diag_error(err, KILN_ERR_IO, no_loc,
                      "'%s': truncated: %zu bytes is too short for an IDX "
                      "header",
                      path, b->len);
  uint32_t magic = be32(b->data);
  if (magic != want) {
    unsigned type = magic >> 8 & 0xff, nd = magic & 0xff;
    const char *tname = idx_type_name(type);
    if (magic >> 16 == 0 && tname)
      return diag_error(err, KILN_ERR_TYPE, no_loc,
                        "'%s': wrong magic 0x%08x: expected 0x%08x (%s), "
                        "found an IDX array of %u dimension%s of type %s",
                        path, magic, want, what, nd, nd == 1 ? "" : "s", tname);
    return diag_error(err, KILN_ERR_TYPE, no_loc,
                      "'%s': wrong magic 0x%08x: expected 0x%08x (%s); this "
                      "is not an IDX file",
                      path, magic, want, what);
  }
  size_t header = 4 + 4 * (size_t)ndim;
  if (b->len < header)
    return diag_error(err, KILN_ERR_IO, no_loc,
                      "'%s': truncated: the IDX header needs %zu bytes, "
                      "found %zu",
                      path, header, b->len);
  int64_t total = 1;
  for (int i = 0; i < ndim; i++) {
    dims[i] = be32(b->data + 4 + 4 * i);
    /* u32 * u32 fits in int64; a third factor may not. */
    if (!data_mul_ok(total, dims[i], &total))
      return diag_error(err, KILN_ERR_TYPE, no_loc,
                        "'%s': the IDX dimensions overflow 64 bits", path);
  }
  *data_off = header;
  *count = total;
  return KILN_OK;
}

/* The data must be exactly `count` bytes after the header. */
static kiln_status idx_check_size(const char *path, const data_bytes *b,
                                  size_t off, int64_t count, const char *what,
                                  kiln_error *err) {
  uint64_t have = b->len - off;
  if (have < (uint64_t)count)
    return diag_error(err, KILN_ERR_IO, no_loc,
                      "'%s': truncated: expected %lld bytes of %s data, found "
                      "%llu",
                      path, (long long)count, what, (unsigned long long)have);
  if (have > (uint64_t)count)
    return diag_error(err, KILN_ERR_IO, no_loc,
                      "'%s': %llu bytes of trailing data after the %lld bytes "
                      "of %s data the header announces",
                      path, (unsigned long long)(have - (uint64_t)count),
                      (long long)count, what);
  return KILN_OK;
}

kiln_status data_idx_read_images(const char *path, data_images *out,
                                 kiln_error *err) {
  memset(out, 0, sizeof *out);
  data_bytes b;
  kiln_status st = data_file_read(path, &b, err);
  if (st != KILN_OK)
    return st;
  int64_t dims[3];
  size_t off = 0;
  int64_t count = 0;
  st = idx_header(path, &b, 3, "unsigned byte images [n, rows, cols]", dims,
                  &off, &count, err);
  if (st == KILN_OK && (dims[1] == 0 || dims[2] == 0))
    st = diag_error(err, KILN_ERR_TYPE, no_loc,
                    "'%s': images of %lld x %lld pixels", path,
                    (long long)dims[1], (long long)dims[2]);
  if (st == KILN_OK)
    st = idx_check_size(path, &b, off, count, "image", err);
  if (st == KILN_OK) {
    int64_t shape[3] = {1, dims[1], dims[2]};
    st = data_images_alloc(out, path, dims[0], 3, shape, err);
  }
  if (st == KILN_OK) {
    const unsigned char *p = b.data + off;
    for (int64_t i = 0; i < count; i++)
      out->x[i] = (float)p[i];
    out->u8 = true;
  }
  data_bytes_free(&b);
  return st;
}

kiln_status data_idx_read_labels(const char *path, data_labels *out,
                                 kiln_error *err) {
  memset(out, 0, sizeof *out);
  data_bytes b;
  kiln_status st = data_file_read(path, &b, err);
  if (st != KILN_OK)
    return st;
  int64_t dims[1];
  size_t off = 0;
  int64_t count = 0;
  st = idx_header(path, &b, 1, "unsigned byte labels [n]", dims, &off, &count,
                  err);
  if (st == KILN_OK)
    st = idx_check_size(path, &b, off, count, "label", err);
  if (st == KILN_OK)
    st = data_labels_alloc(out, path, count, err);
  if (st == KILN_OK)
    for (int64_t i = 0; i < count; i++)
      out->y[i] = b.data[off + (size_t)i];
  data_bytes_free(&b);
  return st;
}
