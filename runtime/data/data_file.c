/* data_file.c — reading a data file into memory, and the image/label arrays
 * every reader fills.
 *
 * Files go through zlib's gzopen/gzread: a file that starts with the gzip
 * magic (1f 8b) is inflated, any other is passed through unchanged, so
 * "train-images-idx3-ubyte" and "train-images-idx3-ubyte.gz" read alike.
 * The whole (decompressed) file is held in memory and the readers parse it
 * with bounds checks; growth is by doubling as data arrives, so a truncated
 * file with a huge header never makes us allocate what the header claims.
 * zlib's own message is kept in every error it reports. */
#include "runtime/data/data.h"

#include "support/support.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static const kiln_loc no_loc = {NULL, 0, 0};

/* zlib reports "path: message" (with strerror for system errors); the
 * path is already in our message. */
static const char *gz_message(gzFile f, const char *path) {
  int code = Z_OK;
  const char *msg = gzerror(f, &code);
  size_t n = strlen(path);
  if (msg && strncmp(msg, path, n) == 0 && strncmp(msg + n, ": ", 2) == 0)
    msg += n + 2;
  return msg && *msg ? msg : "unknown zlib error";
}

static kiln_status read_error(gzFile f, const char *path, kiln_error *err) {
  return diag_error(err, KILN_ERR_IO, no_loc, "cannot read '%s': %s%s", path,
                    gzdirect(f) ? "" : "gzip data: ", gz_message(f, path));
}

kiln_status data_file_read(const char *path, data_bytes *out, kiln_error *err) {
  out->data = NULL;
  out->len = 0;
  errno = 0;
  gzFile f = gzopen(path, "rb");
  if (!f)
    return diag_error(err, KILN_ERR_IO, no_loc, "cannot open '%s': %s", path,
                      errno ? strerror(errno) : "out of memory");
  /* A bigger zlib buffer than the 8 KiB default: fewer read calls on the
   * 26 MB Fashion-MNIST images. Failure only keeps the default. */
  gzbuffer(f, 1 << 17);

  size_t cap = 1 << 16, len = 0;
  unsigned char *buf = malloc(cap + 1);
  KILN_ASSERT(buf && "out of memory");
  kiln_status st = KILN_OK;
  for (;;) {
    if (len == cap) {
      /* The buffer may grow to one byte past the limit: reading that byte
       * proves the file is too large. */
      if ((int64_t)cap > DATA_MAX_FILE_BYTES) {
        st = diag_error(err, KILN_ERR_IO, no_loc,
                        "'%s': larger than the %lld GiB limit on a data file",
                        path, (long long)(DATA_MAX_FILE_BYTES >> 30));
        break;
      }
      cap = (int64_t)cap * 2 > DATA_MAX_FILE_BYTES
                ? (size_t)DATA_MAX_FILE_BYTES + 1
                : cap * 2;
      unsigned char *grown = realloc(buf, cap + 1);
      KILN_ASSERT(grown && "out of memory");
      buf = grown;
    }
    size_t room = cap - len;
    unsigned want = room > (1u << 30) ? (1u << 30) : (unsigned)room;
    int got = gzread(f, buf + len, want);
    if (got < 0) {
      st = read_error(f, path, err);
      break;
    }
    if (got == 0) {
      /* End of input; a gzip stream cut short shows up here as an error
       * ("unexpected end of file") rather than as a short read. */
      int code = Z_OK;
      gzerror(f, &code);
      if (code != Z_OK)
        st = read_error(f, path, err);
      break;
    }
    len += (size_t)got;
  }
  gzclose(f);
  if (st != KILN_OK) {
    free(buf);
    return st;
  }
  buf[len] = '\0';
  out->data = buf;
  out->len = len;
  return KILN_OK;
}

void data_bytes_free(data_bytes *b) {
  free(b->data);
  b->data = NULL;
  b->len = 0;
}

bool data_mul_ok(int64_t a, int64_t b, int64_t *out) {
  if (a < 0 || b < 0)
    return false;
  if (a != 0 && b > INT64_MAX / a)
    return false;
  *out = a * b;
  return true;
}

kiln_status data_images_alloc(data_images *im, const char *path, int64_t n,
                              int rank, const int64_t *shape, kiln_error *err) {
  KILN_ASSERT(rank >= 1 && rank <= DATA_MAX_RANK);
  memset(im, 0, sizeof *im);
  int64_t size = 1, total = 0;
  for (int i = 0; i < rank; i++)
    if (shape[i] <= 0 || !data_mul_ok(size, shape[i], &size))
      return diag_error(err, KILN_ERR_TYPE, no_loc,
                        "'%s': example dimension %d is %lld; it must be "
                        "positive and the product must fit in 64 bits",
                        path, i, (long long)shape[i]);
  /* Floats per file: the limit on bytes read, as floats, bounds memory. */
  if (n < 0 || !data_mul_ok(n, size, &total) ||
      total > DATA_MAX_FILE_BYTES / (int64_t)sizeof(float))
    return diag_error(err, KILN_ERR_TYPE, no_loc,
                      "'%s': %lld examples of %lld values each is more than "
                      "the %lld GiB limit on a data set",
                      path, (long long)n, (long long)size,
                      (long long)(DATA_MAX_FILE_BYTES >> 30));
  im->n = n;
  im->rank = rank;
  for (int i = 0; i < rank; i++)
    im->shape[i] = shape[i];
  im->example_size = size;
  im->x = malloc(total ? (size_t)total * sizeof(float) : 1);
  KILN_ASSERT(im->x && "out of memory");
  return KILN_OK;
}

kiln_status data_labels_alloc(data_labels *lb, const char *path, int64_t n,
                              kiln_error *err) {
  memset(lb, 0, sizeof *lb);
  if (n < 0 || n > DATA_MAX_FILE_BYTES / (int64_t)sizeof(int32_t))
    return diag_error(err, KILN_ERR_TYPE, no_loc,
                      "'%s': %lld labels is more than the limit on a data set",
                      path, (long long)n);
  lb->n = n;
  lb->y = malloc(n ? (size_t)n * sizeof(int32_t) : 1);
  KILN_ASSERT(lb->y && "out of memory");
  return KILN_OK;
}

void data_images_free(data_images *im) {
  free(im->x);
  memset(im, 0, sizeof *im);
}

void data_labels_free(data_labels *lb) {
  free(lb->y);
  memset(lb, 0, sizeof *lb);
}
