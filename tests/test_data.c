/* test_data.c — the data readers (IDX plain and gzip, NPY, CSV) against
 * files this test writes into a temporary directory, every error path with
 * its message, and loading real Fashion-MNIST when it is installed.
 * Splitting, shuffling, augmentation and batching: test_data_set.c. */
#include "runtime/data/data.h"
#include "support/support.h"
#include "test.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* ---- scratch files ---- */

static char tmp_dir[64];
static char made[128][128];
static int n_made;

/* The path of `name` in the temporary directory; remembered for cleanup. */
static const char *tpath(const char *name) {
  KILN_ASSERT(n_made < (int)ARRAY_LEN(made));
  snprintf(made[n_made], sizeof made[0], "%s/%s", tmp_dir, name);
  return made[n_made++];
}

static const char *write_file(const char *name, const void *data, size_t len) {
  const char *path = tpath(name);
  FILE *f = fopen(path, "wb");
  KILN_ASSERT(f);
  KILN_ASSERT(fwrite(data, 1, len, f) == len);
  fclose(f);
  return path;
}

static const char *write_gz(const char *name, const void *data, size_t len) {
  const char *path = tpath(name);
  gzFile f = gzopen(path, "wb");
  KILN_ASSERT(f);
  KILN_ASSERT(gzwrite(f, data, (unsigned)len) == (int)len);
  KILN_ASSERT(gzclose(f) == Z_OK);
  return path;
}

static const char *write_text(const char *name, const char *text) {
  return write_file(name, text, strlen(text));
}

static void put_be32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24);
  p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
}

/* An IDX file: magic 0x0000080<ndim>, dims, then `len` data bytes. */
static size_t idx_bytes(unsigned char *out, int ndim, const uint32_t *dims,
                        const unsigned char *data, size_t len) {
  put_be32(out, 0x800u | (uint32_t)ndim);
  for (int i = 0; i < ndim; i++)
    put_be32(out + 4 + 4 * i, dims[i]);
  size_t off = 4 + 4 * (size_t)ndim;
  memcpy(out + off, data, len);
  return off + len;
}

/* An .npy file of version `major`.0 with the given header dict; the header
 * is padded with spaces so the data starts at a multiple of 64, as numpy
 * writes it. */
static size_t npy_bytes(unsigned char *out, int major, const char *dict,
                        const void *data, size_t len) {
  size_t pre = major == 1 ? 10 : 12, n = strlen(dict);
  size_t hlen = ((pre + n + 1 + 63) / 64) * 64 - pre;
  memcpy(out, "\x93NUMPY", 6);
  out[6] = (unsigned char)major;
  out[7] = 0;
  out[8] = (unsigned char)(hlen & 0xff);
  out[9] = (unsigned char)(hlen >> 8);
  if (major > 1)
    out[10] = out[11] = 0;
  memcpy(out + pre, dict, n);
  memset(out + pre + n, ' ', hlen - n - 1);
  out[pre + hlen - 1] = '\n';
  memcpy(out + pre + hlen, data, len);
  return pre + hlen + len;
}

static kiln_error err;

/* ---- IDX ---- */

static const unsigned char pix[3 * 2 * 3] = {
    0, 1, 2, 3, 4, 5, 250, 251, 252, 253, 254, 255, 7, 0, 128, 64, 32, 16};
static const unsigned char lab[3] = {9, 0, 3};

TEST(test_idx_plain_and_gzip) {
  unsigned char buf[256];
  uint32_t idims[3] = {3, 2, 3}, ldims[1] = {3};
  size_t ni = idx_bytes(buf, 3, idims, pix, sizeof pix);
  const char *paths[2] = {write_file("img.idx", buf, ni),
                          write_gz("img.idx.gz", buf, ni)};
  size_t nl = idx_bytes(buf, 1, ldims, lab, sizeof lab);
  const char *lpaths[2] = {write_file("lab.idx", buf, nl),
                           write_gz("lab.idx.gz", buf, nl)};
  for (int k = 0; k < 2; k++) {
    data_images im;
    data_labels lb;
    CHECK_EQ_INT(data_idx_read_images(paths[k], &im, &err), KILN_OK);
    CHECK_EQ_INT(im.n, 3);
    CHECK_EQ_INT(im.rank, 3);
    CHECK_EQ_INT(im.shape[0], 1);
    CHECK_EQ_INT(im.shape[1], 2);
    CHECK_EQ_INT(im.shape[2], 3);
    CHECK_EQ_INT(im.example_size, 6);
    CHECK(im.u8);
    for (int i = 0; i < 18; i++)
      CHECK(im.x[i] == (float)pix[i]);
    CHECK_EQ_INT(data_idx_read_labels(lpaths[k], &lb, &err), KILN_OK);
    CHECK_EQ_INT(lb.n, 3);
    for (int i = 0; i < 3; i++)
      CHECK_EQ_INT(lb.y[i], lab[i]);
    data_images_free(&im);
    data_labels_free(&lb);
  }
}

TEST(test_idx_errors) {
  data_images im;
  data_labels lb;
  unsigned char buf[4096];
  const char *missing = tpath("no-such-file.gz");
  CHECK_EQ_INT(data_idx_read_images(missing, &im, &err), KILN_ERR_IO);
  CHECK_STR_CONTAINS(err.message, "cannot open '");
  CHECK_STR_CONTAINS(err.message, "no-such-file.gz': No such file or dir");
  CHECK(im.x == NULL);

  /* A labels file where images are expected, and the reverse. */
  uint32_t ldims[1] = {3}, idims[3] = {3, 2, 3};
  const char *lpath = write_gz("l.gz", buf, idx_bytes(buf, 1, ldims, lab, 3));
  CHECK_EQ_INT(data_idx_read_images(lpath, &im, &err), KILN_ERR_TYPE);
  CHECK_STR_CONTAINS(err.message, "wrong magic 0x00000801: expected "
                                  "0x00000803");
  const char *ipath =
      write_file("i.idx", buf, idx_bytes(buf, 3, idims, pix, sizeof pix));
  CHECK_EQ_INT(data_idx_read_labels(ipath, &lb, &err), KILN_ERR_TYPE);
  CHECK_STR_CONTAINS(err.message, "expected 0x00000801");
  CHECK(lb.y == NULL);
  const char *text = write_text("t.txt", "hello, world\n");
  CHECK_EQ_INT(data_idx_read_images(text, &im, &err), KILN_ERR_TYPE);
  CHECK_STR_CONTAINS(err.message, "not an IDX file");
  buf[0] = 0, buf[1] = 0, buf[2] = 0x0D, buf[3] = 3; /* float images */
  const char *fl = write_file("f.idx", buf, 16);
  CHECK_EQ_INT(data_idx_read_images(fl, &im, &err), KILN_ERR_TYPE);
  CHECK_STR_CONTAINS(err.message,
                     "found an IDX array of 3 dimensions of type float");

  /* Truncated: data, header, magic. */
  static unsigned char zeros[1000];
  uint32_t big[3] = {3, 28, 28};
  const char *tr =
      write_gz("trunc.gz", buf, idx_bytes(buf, 3, big, zeros, sizeof zeros));
  CHECK_EQ_INT(data_idx_read_images(tr, &im, &err), KILN_ERR_IO);
  CHECK_STR_CONTAINS(err.message, "trunc.gz': truncated: expected 2352 bytes "
                                  "of image data, found 1000");
  const char *th = write_file("th.idx", buf, 9);
  CHECK_EQ_INT(data_idx_read_images(th, &im, &err), KILN_ERR_IO);
  CHECK_STR_CONTAINS(err.message, "truncated: the IDX header needs 16 bytes, "
                                  "found 9");
  const char *t2 = write_file("t2.idx", buf, 2);
  CHECK_EQ_INT(data_idx_read_labels(t2, &lb, &err), KILN_ERR_IO);
  CHECK_STR_CONTAINS(err.message, "truncated");
  uint32_t five[1] = {5};
  const char *tl = write_file("tl.idx", buf, idx_bytes(buf, 1, five, lab, 3));
  CHECK_EQ_INT(data_idx_read_labels(tl, &lb, &err), KILN_ERR_IO);
  CHECK_STR_CONTAINS(err.message, "expected 5 bytes of label data, found 3");

  /* A header announcing 2^31 * 10^6 bytes is refused before any of that
   * is allocated; one that overflows 64 bits is refused as such. */
  uint32_t huge[3] = {0x7fffffffu, 1000, 1000};
  const char *hg = write_file("huge.idx", buf, idx_bytes(buf, 3, huge, pix, 6));
  CHECK_EQ_INT(data_idx_read_images(hg, &im, &err), KILN_ERR_IO);
  CHECK_STR_CONTAINS(err.message,
                     "expected 2147483647000000 bytes of image data, found 6");
  uint32_t ovf[3] = {0xffffffffu, 0xffffffffu, 0xffffffffu};
  const char *ov = write_file("ovf.idx", buf, idx_bytes(buf, 3, ovf, pix, 6));
  CHECK_EQ_INT(data_idx_read_images(ov, &im, &err), KILN_ERR_TYPE);
  CHECK_STR_CONTAINS(err.message, "ovf.idx': the IDX dimensions overflow");

  /* Extra bytes after the data. */
  const char *tw =
      write_file("trail.idx", buf, idx_bytes(buf, 1, ldims, pix, 5));
  CHECK_EQ_INT(data_idx_read_labels(tw, &lb, &err), KILN_ERR_IO);
  CHECK_STR_CONTAINS(err.message, "2 bytes of trailing data");

  /* A gzip stream cut in the middle: zlib's message is kept. */
  static unsigned char noise[4000];
  for (size_t i = 0; i < sizeof noise; i++)
    noise[i] = (unsigned char)(i * 2654435761u >> 13);
  uint32_t nd[3] = {4, 1000, 1};
  size_t n = idx_bytes(buf, 3, nd, noise, sizeof noise);
  const char *whole = write_gz("whole.gz", buf, n);
  data_bytes gz;
  CHECK_EQ_INT(data_file_read(whole, &gz, &err), KILN_OK);
  CHECK_EQ_INT(gz.len, n);
  FILE *f = fopen(whole, "rb");
  size_t gzlen = fread(buf, 1, sizeof buf, f);
  fclose(f);
  const char *cut = write_file("cut.gz", buf, gzlen / 2);
  CHECK_EQ_INT(data_idx_read_images(cut, &im, &err), KILN_ERR_IO);
  CHECK_STR_CONTAINS(err.message, "cannot read '");
  CHECK_STR_CONTAINS(err.message, "cut.gz': gzip data: unexpected end of file");
  data_bytes_free(&gz);

  /* A directory opens but cannot be read. */
  CHECK_EQ_INT(data_idx_read_images(tmp_dir, &im, &err), KILN_ERR_IO);
  CHECK_STR_CONTAINS(err.message, "Is a directory");
}

/* ---- NPY ---- */

TEST(test_npy_read) {
  unsigned char buf[1024];
  /* <f4 [3, 2, 2] (v1.0) as little-endian bytes, whatever the host. */
  float fv[12];
  unsigned char fb[48];
  for (int i = 0; i < 12; i++) {
    fv[i] = (float)i * 0.375f - 2.0f;
    uint32_t u;
    memcpy(&u, &fv[i], 4);
    for (int k = 0; k < 4; k++)
      fb[4 * i + k] = (unsigned char)(u >> (8 * k));
  }
  const char *f4 = write_file(
      "f4.npy", buf,
      npy_bytes(buf, 1,
                "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2, "
                "2), }",
                fb, sizeof fb));
  data_images im;
  CHECK_EQ_INT(data_npy_read_images(f4, &im, &err), KILN_OK);
  CHECK_EQ_INT(im.n, 3);
  CHECK_EQ_INT(im.rank, 3);
  CHECK(im.shape[0] == 1 && im.shape[1] == 2 && im.shape[2] == 2);
  CHECK(!im.u8);
  for (int i = 0; i < 12; i++)
    CHECK(im.x[i] == fv[i]);
  data_images_free(&im);

  /* |u1 [2, 1, 2, 3] (v2.0, double quotes, no trailing comma) -> [1, 2, 3]
   * examples of 8-bit pixels. */
  unsigned char ub[12];
  for (int i = 0; i < 12; i++)
    ub[i] = (unsigned char)(i * 21 + 3);
  const char *u1 = write_file(
      "u1.npy", buf,
      npy_bytes(buf, 2,
                "{\"descr\": \"|u1\", \"fortran_order\": False, \"shape\": "
                "(2, 1, 2, 3)}",
                ub, sizeof ub));
  CHECK_EQ_INT(data_npy_read_images(u1, &im, &err), KILN_OK);
  CHECK_EQ_INT(im.n, 2);
  CHECK(im.rank == 3 && im.shape[0] == 1 && im.shape[1] == 2 &&
        im.shape[2] == 3);
  CHECK(im.u8);
  for (int i = 0; i < 12; i++)
    CHECK(im.x[i] == (float)ub[i]);
  data_images_free(&im);

  /* <f8 [2, 3] (v3.0) -> [3] feature vectors. */
  double dv[6] = {0.5, -1.25, 3e10, 1e-3, 0, -0.0};
  unsigned char db[48];
  for (int i = 0; i < 6; i++) {
    uint64_t u;
    memcpy(&u, &dv[i], 8);
    for (int k = 0; k < 8; k++)
      db[8 * i + k] = (unsigned char)(u >> (8 * k));
  }
  const char *f8 = write_file(
      "f8.npy", buf,
      npy_bytes(buf, 3, "{'descr':'<f8','fortran_order':False,'shape':(2,3)}",
                db, sizeof db));
  CHECK_EQ_INT(data_npy_read_images(f8, &im, &err), KILN_OK);
  CHECK(im.n == 2 && im.rank == 1 && im.shape[0] == 3);
  for (int i = 0; i < 6; i++)
    CHECK(im.x[i] == (float)dv[i]);
  data_images_free(&im);

  /* Labels: <i8 and <i4 and |u1. */
  unsigned char lb8[24] = {9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                           0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0};
  const char *l8 = write_file(
      "l8.npy", buf,
      npy_bytes(buf, 1,
                "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }",
                lb8, sizeof lb8));
  data_labels lb;
  CHECK_EQ_INT(data_npy_read_labels(l8, &lb, &err), KILN_OK);
  CHECK(lb.n == 3 && lb.y[0] == 9 && lb.y[1] == 0 && lb.y[2] == 257);
  data_labels_free(&lb);
  unsigned char lb4[8] = {7, 0, 0, 0, 2, 0, 0, 0};
  const char *l4 = write_file(
      "l4.npy", buf,
      npy_bytes(buf, 1,
                "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }",
                lb4, sizeof lb4));
  CHECK_EQ_INT(data_npy_read_labels(l4, &lb, &err), KILN_OK);
  CHECK(lb.n == 2 && lb.y[0] == 7 && lb.y[1] == 2);
  data_labels_free(&lb);
  const char *l1 = write_file(
      "l1.npy", buf,
      npy_bytes(buf, 1,
                "{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }",
                lab, 3));
  CHECK_EQ_INT(data_npy_read_labels(l1, &lb, &err), KILN_OK);
  CHECK(lb.n == 3 && lb.y[0] == 9 && lb.y[1] == 0 && lb.y[2] == 3);
  data_labels_free(&lb);
}

/* Writes an .npy file with `dict` and `len` bytes of data and expects
 * reading it as images (or labels) to fail with `status` and `msg`. */
static void npy_fails(const char *dict, size_t len, bool labels,
                      kiln_status status, const char *msg, int line) {
  static unsigned char buf[2048], data[512];
  char name[32];
  snprintf(name, sizeof name, "bad%d.npy", line);
  const char *p = write_file(name, buf, npy_bytes(buf, 1, dict, data, len));
  data_images im;
  data_labels lb;
  kiln_status st = labels ? data_npy_read_labels(p, &lb, &err)
                          : data_npy_read_images(p, &im, &err);
  if (st != status || !strstr(err.message, msg)) {
    fprintf(stderr, "%s:%d: npy case failed (status %d): want \"%s\", got %s",
            __FILE__, line, (int)st, msg, err.message);
    test_failures_++;
  }
}
#define NPY_FAILS(dict, len, labels, status, msg)                              \
  npy_fails(dict, len, labels, status, msg, __LINE__)

TEST(test_npy_errors) {
  const char *ok =
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  NPY_FAILS(ok, 20, false, KILN_ERR_IO,
            "truncated: expected 24 bytes of array data, found 20");
  NPY_FAILS(ok, 28, false, KILN_ERR_IO, "4 bytes of trailing data");
  NPY_FAILS("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 24,
            false, KILN_ERR_TYPE, "fortran_order True is not supported");
  NPY_FAILS("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", 24,
            false, KILN_ERR_TYPE, "unsupported dtype '>f4', big-endian");
  NPY_FAILS("{'descr': '<f2', 'fortran_order': False, 'shape': (2, 3), }", 12,
            false, KILN_ERR_TYPE, "unsupported dtype '<f2'");
  NPY_FAILS("{'descr': '<f4', 'shape': (2, 3), }", 24, false, KILN_ERR_TYPE,
            "bad npy header: missing 'fortran_order'");
  NPY_FAILS("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), "
            "'extra': 1}",
            24, false, KILN_ERR_TYPE, "bad npy header: unknown key");
  NPY_FAILS("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, "
            "'shape': (2, 3)}",
            24, false, KILN_ERR_TYPE, "bad npy header: duplicate key");
  NPY_FAILS("{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }", 24,
            false, KILN_ERR_TYPE, "expected a non-negative integer");
  NPY_FAILS("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3) ", 24,
            false, KILN_ERR_TYPE, "bad npy header: expected ',' or '}'");
  NPY_FAILS("{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", 24,
            false, KILN_ERR_TYPE, "images must be [n, F], [n, H, W]");
  NPY_FAILS(ok, 24, true, KILN_ERR_TYPE,
            "labels must be [n]; the array is "
            "(2, 3)");
  NPY_FAILS("{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", 24,
            true, KILN_ERR_TYPE, "labels must be integers");
  NPY_FAILS("{'descr': '<i8', 'fortran_order': False, 'shape': (99999999999, "
            "99999999999, 99999999999), }",
            0, false, KILN_ERR_TYPE, "the npy shape overflows 64 bits");

  /* Values: a negative label, a NaN pixel. */
  unsigned char buf[256], neg[8] = {1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff};
  const char *p = write_file(
      "neg.npy", buf,
      npy_bytes(buf, 1,
                "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }",
                neg, 8));
  data_labels lb;
  CHECK_EQ_INT(data_npy_read_labels(p, &lb, &err), KILN_ERR_TYPE);
  CHECK_STR_CONTAINS(err.message, "label -1 of example 1 is out of range");
  unsigned char nan[8] = {0, 0, 0x80, 0x3f, 0, 0, 0xc0, 0x7f}; /* 1, NaN */
  p = write_file("nan.npy", buf,
                 npy_bytes(buf, 1,
                           "{'descr': '<f4', 'fortran_order': False, "
                           "'shape': (1, 2), }",
                           nan, 8));
  data_images im;
  CHECK_EQ_INT(data_npy_read_images(p, &im, &err), KILN_ERR_TYPE);
  CHECK_STR_CONTAINS(err.message, "element 1 is nan; images must be finite");

  /* Header-level damage. */
  p = write_text("magic.npy", "NUMPY not really");
  CHECK_EQ_INT(data_npy_read_images(p, &im, &err), KILN_ERR_TYPE);
  CHECK_STR_CONTAINS(err.message, "not a .npy file");
  size_t n = npy_bytes(buf, 1, ok, neg, 0);
  buf[6] = 4;
  p = write_file("v4.npy", buf, n);
  CHECK_EQ_INT(data_npy_read_images(p, &im, &err), KILN_ERR_TYPE);
  CHECK_STR_CONTAINS(err.message, "unsupported version 4.0");
  buf[6] = 2, buf[7] = 1;
  p = write_file("v21.npy", buf, n);
  CHECK_EQ_INT(data_npy_read_images(p, &im, &err), KILN_ERR_TYPE);
  CHECK_STR_CONTAINS(err.message, "unsupported version 2.1");
  buf[7] = 0;
  buf[6] = 1;
  buf[8] = 0xff; /* header length past the end of the file */
  p = write_file("hl.npy", buf, n);
  CHECK_EQ_INT(data_npy_read_images(p, &im, &err), KILN_ERR_IO);
  CHECK_STR_CONTAINS(err.message, "truncated: the npy header needs 255 bytes");
  n = npy_bytes(buf, 1, ok, neg, 0);
  buf[n - 1] = ' ';
  p = write_file("nl.npy", buf, n);
  CHECK_EQ_INT(data_npy_read_images(p, &im, &err), KILN_ERR_TYPE);
  CHECK_STR_CONTAINS(err.message, "does not end with a newline");
}

/* ---- CSV ---- */

TEST(test_csv_read) {
  /* A header, CRLF, blanks around fields, trailing blank lines. */
  const char *p = write_text("a.csv", "label,p1,p2,p3,p4\r\n"
                                      "9, 0,255 ,\t3,4\r\n"
                                      "0,10,20,30,40\r\n"
                                      "3,1,2,3,0\r\n"
                                      "\r\n\n");
  data_images im;
  data_labels lb;
  CHECK_EQ_INT(data_csv_read(p, &im, &lb, &err), KILN_OK);
  CHECK_EQ_INT(im.n, 3);
  CHECK_EQ_INT(lb.n, 3);
  CHECK(im.rank == 1 && im.shape[0] == 4 && im.example_size == 4);
  CHECK(im.u8);
  static const float want[12] = {0, 255, 3, 4, 10, 20, 30, 40, 1, 2, 3, 0};
  for (int i = 0; i < 12; i++)
    CHECK(im.x[i] == want[i]);
  CHECK(lb.y[0] == 9 && lb.y[1] == 0 && lb.y[2] == 3);
  data_images_free(&im);
  data_labels_free(&lb);

  /* No header, no final newline, float features: not 8-bit pixels. */
  p = write_text("b.csv", "1,0.5,-2\n2,1e3,+7.25");
  CHECK_EQ_INT(data_csv_read(p, &im, &lb, &err), KILN_OK);
  CHECK(im.n == 2 && im.shape[0] == 2 && !im.u8);
  CHECK(im.x[0] == 0.5f && im.x[1] == -2.0f && im.x[2] == 1000.0f &&
        im.x[3] == 7.25f);
  CHECK(lb.y[0] == 1 && lb.y[1] == 2);
  data_images_free(&im);
  data_labels_free(&lb);
  /* 256, 0.5 and -1 are not pixel values. */
  const char *not_pixels[] = {"1,0,256\n", "1,0.5,2\n", "1,-1,2\n"};
  for (size_t i = 0; i < ARRAY_LEN(not_pixels); i++) {
    char name[16];
    snprintf(name, sizeof name, "c%zu.csv", i);
    p = write_text(name, not_pixels[i]);
    CHECK_EQ_INT(data_csv_read(p, &im, &lb, &err), KILN_OK);
    CHECK(!im.u8);
    data_images_free(&im);
    data_labels_free(&lb);
  }
}

static void csv_fails(const char *text, const char *msg, int line) {
  char name[32];
  snprintf(name, sizeof name, "bad%d.csv", line);
  const char *p = write_text(name, text);
  data_images im;
  data_labels lb;
  kiln_status st = data_csv_read(p, &im, &lb, &err);
  if (st != KILN_ERR_TYPE || !strstr(err.message, msg) ||
      !strstr(err.message, name)) {
    fprintf(stderr, "%s:%d: csv case failed (status %d): want \"%s\", got %s",
            __FILE__, line, (int)st, msg, err.message);
    test_failures_++;
  }
  CHECK(im.x == NULL && lb.y == NULL);
}
#define CSV_FAILS(text, msg) csv_fails(text, msg, __LINE__)

TEST(test_csv_errors) {
  CSV_FAILS("label,a,b,c\n1,2,3,4\n5,6,7\n",
            ":3:1: error: ragged row: 3 columns, expected 4");
  CSV_FAILS("1,2,3\n5,6,7,8\n", ":2:7: error: ragged row: 4 columns");
  CSV_FAILS("1,2,3\n5,x,7\n", ":2:3: error: expected a number, found 'x'");
  CSV_FAILS("1,2,3\n5,nan,7\n", "expected a number, found 'nan'");
  CSV_FAILS("1,2,3\n5,,7\n", "expected a number, found ''");
  CSV_FAILS("1,2,3\n\n5,6,7\n", ":2:1: error: blank line before the end");
  CSV_FAILS("1,2,3\n-1,6,7\n", "the label must be an integer in 0..99999");
  CSV_FAILS("1.5,2,3\n", ":1:1: error: the label must be an integer");
  CSV_FAILS("1,2,1e999\n", "'1e999' is out of the range of a float");
  CSV_FAILS("1\n2\n", "expected a label and at least one feature");
  CSV_FAILS("label,a,b\n", "no examples in the file");
  CSV_FAILS("", "no examples in the file");
  /* The caret line shows the row. */
  CSV_FAILS("1,2,3\n5,6,7,8\n", "5,6,7,8\n      ^");
}

/* ---- Fashion-MNIST, when installed ---- */

TEST(test_fashion_mnist) {
  const char *dir = "/usr/share/datasets/fashion-mnist";
  struct stat sb;
  if (stat(dir, &sb) != 0) {
    printf("SKIP test_fashion_mnist: %s is not installed "
           "(scripts/setup.sh installs dataset-fashion-mnist)\n",
           dir);
    return;
  }
  ir_data_cfg cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.format = IR_DATA_IDX;
  cfg.train_images = "/usr/share/datasets/fashion-mnist/"
                     "train-images-idx3-ubyte.gz";
  cfg.train_labels = "/usr/share/datasets/fashion-mnist/"
                     "train-labels-idx1-ubyte.gz";
  cfg.test_images = "/usr/share/datasets/fashion-mnist/"
                    "t10k-images-idx3-ubyte.gz";
  cfg.test_labels = "/usr/share/datasets/fashion-mnist/"
                    "t10k-labels-idx1-ubyte.gz";
  cfg.validation = 0;
  cfg.mean = 0;
  cfg.std = 1;
  data_sets d;
  if (data_sets_load(&d, &cfg, 0, &err) != KILN_OK) {
    fprintf(stderr, "%s", err.message);
    CHECK(!"loading Fashion-MNIST failed");
    return;
  }
  CHECK_EQ_INT(d.train.n, 60000);
  CHECK_EQ_INT(d.validation.n, 0);
  CHECK_EQ_INT(d.test.n, 10000);
  CHECK(d.train.rank == 3 && d.train.shape[0] == 1 && d.train.shape[1] == 28 &&
        d.train.shape[2] == 28);
  CHECK_EQ_INT(d.train.n_classes, 10);
  CHECK_EQ_INT(d.train.y[0], 9); /* an ankle boot */
  int per_class[10] = {0};
  for (int64_t i = 0; i < 60000; i++) {
    CHECK(d.train.y[i] >= 0 && d.train.y[i] <= 9);
    if (d.train.y[i] >= 0 && d.train.y[i] <= 9)
      per_class[d.train.y[i]]++;
  }
  for (int k = 0; k < 10; k++)
    CHECK_EQ_INT(per_class[k], 6000);
  for (int64_t i = 0; i < 10000; i++)
    CHECK(d.test.y[i] >= 0 && d.test.y[i] <= 9);
  float lo = 1, hi = 0;
  for (int64_t i = 0; i < 60000 * 784; i++) {
    lo = d.train.x[i] < lo ? d.train.x[i] : lo;
    hi = d.train.x[i] > hi ? d.train.x[i] : hi;
  }
  CHECK(lo == 0.0f && hi == 1.0f);
  data_sets_free(&d);

  /* The default hold-out of 10%. */
  cfg.validation = 0.1;
  CHECK_EQ_INT(data_sets_load(&d, &cfg, 42, &err), KILN_OK);
  CHECK_EQ_INT(d.train.n, 54000);
  CHECK_EQ_INT(d.validation.n, 6000);
  data_sets_free(&d);
}

int main(void) {
  snprintf(tmp_dir, sizeof tmp_dir, "/tmp/kiln-test-data-XXXXXX");
  if (!mkdtemp(tmp_dir)) {
    perror("mkdtemp");
    return 1;
  }
  RUN(test_idx_plain_and_gzip);
  RUN(test_idx_errors);
  RUN(test_npy_read);
  RUN(test_npy_errors);
  RUN(test_csv_read);
  RUN(test_csv_errors);
  RUN(test_fashion_mnist);
  for (int i = 0; i < n_made; i++)
    unlink(made[i]);
  rmdir(tmp_dir);
  return TEST_SUMMARY();
}
