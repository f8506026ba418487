/* ckpt_write.c — writing safetensors files atomically, and the dtype table
 * the reader shares.
 *
 * Needs: a description of each tensor (name, dtype, shape, data pointer).
 * Guarantees: the file at `path` is either left untouched or replaced by a
 * complete file; its bytes depend only on the tensors and metadata given,
 * not on their order or on the machine (layout in ckpt.h). Nothing is
 * written until the whole description has been checked. */
#include "runtime/checkpoint/ckpt.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The data region is copied from memory as it is: the host's byte order
 * must be the file's. */
#if defined(__BYTE_ORDER__)
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "safetensors data is little-endian; kiln assumes such a host");
#endif

static const kiln_loc no_loc = {NULL, 0, 0};

static const struct {
  const char *name;
  int size;
} dtypes[] = {
    [IR_F32] = {"F32", 4},   [IR_F64] = {"F64", 8}, [IR_F16] = {"F16", 2},
    [IR_BF16] = {"BF16", 2}, [IR_I32] = {"I32", 4}, [IR_I64] = {"I64", 8},
};
_Static_assert(ARRAY_LEN(dtypes) == IR_DTYPE_COUNT,
               "every ir_dtype needs a safetensors name");

const char *ckpt_dtype_name(ir_dtype t) {
  KILN_ASSERT((unsigned)t < IR_DTYPE_COUNT);
  return dtypes[t].name;
}

int ckpt_dtype_size(ir_dtype t) {
  KILN_ASSERT((unsigned)t < IR_DTYPE_COUNT);
  return dtypes[t].size;
}

bool ckpt_dtype_parse(const char *name, ir_dtype *out) {
  for (int t = 0; t < IR_DTYPE_COUNT; t++) {
    if (strcmp(dtypes[t].name, name) == 0) {
      *out = (ir_dtype)t;
      return true;
    }
  }
  return false;
}

bool ckpt_tensor_nbytes(const ckpt_tensor *t, int64_t *out) {
  if ((unsigned)t->dtype >= IR_DTYPE_COUNT || t->rank < 0 ||
      (t->rank > 0 && !t->shape))
    return false;
  int64_t n = dtypes[t->dtype].size;
  for (int i = 0; i < t->rank; i++) {
    int64_t d = t->shape[i];
    if (d < 0 || (d > 0 && n > INT64_MAX / d))
      return false;
    n *= d;
  }
  *out = n;
  return true;
}

/* ---- checking the description ---- */

static int cmp_name(const void *a, const void *b) {
  const ckpt_tensor *x = *(const ckpt_tensor *const *)a;
  const ckpt_tensor *y = *(const ckpt_tensor *const *)b;
  return strcmp(x->name, y->name);
}

/* Largest element first, so that each tensor starts aligned to its own
 * element size; ties by name, so the layout does not depend on the order
 * the caller listed the tensors in. */
static int cmp_layout(const void *a, const void *b) {
  const ckpt_tensor *x = *(const ckpt_tensor *const *)a;
  const ckpt_tensor *y = *(const ckpt_tensor *const *)b;
  int sx = dtypes[x->dtype].size, sy = dtypes[y->dtype].size;
  if (sx != sy)
    return sx > sy ? -1 : 1;
  return strcmp(x->name, y->name);
}

static int cmp_meta(const void *a, const void *b) {
  return strcmp(((const ckpt_meta *)a)->key, ((const ckpt_meta *)b)->key);
}

static kiln_status check_tensors(const char *path, const ckpt_tensor *ts, int n,
                                 const ckpt_tensor **order, kiln_error *err) {
  for (int i = 0; i < n; i++) {
    const ckpt_tensor *t = &ts[i];
    int64_t nbytes;
    if (!t->name)
      return diag_error(err, KILN_ERR_INVALID, no_loc,
                        "cannot write '%s': tensor %d has no name", path, i);
    if (strcmp(t->name, "__metadata__") == 0)
      return diag_error(err, KILN_ERR_INVALID, no_loc,
                        "cannot write '%s': '__metadata__' is reserved by "
                        "safetensors and cannot name a tensor",
                        path);
    if (!ckpt_tensor_nbytes(t, &nbytes))
      return diag_error(err, KILN_ERR_INVALID, no_loc,
                        "cannot write '%s': tensor '%s': bad dtype, rank or "
                        "shape (negative, or more than 2^63 bytes)",
                        path, t->name);
    if (nbytes > 0 && !t->data)
      return diag_error(err, KILN_ERR_INVALID, no_loc,
                        "cannot write '%s': tensor '%s': no data", path,
                        t->name);
    order[i] = t;
  }
  qsort(order, (size_t)n, sizeof *order, cmp_name);
  for (int i = 1; i < n; i++)
    if (strcmp(order[i - 1]->name, order[i]->name) == 0)
      return diag_error(err, KILN_ERR_INVALID, no_loc,
                        "cannot write '%s': two tensors are named '%s'", path,
                        order[i]->name);
  qsort(order, (size_t)n, sizeof *order, cmp_layout);
  return KILN_OK;
}

/* ---- the header ---- */

static json_t *tensor_entry(const ckpt_tensor *t, int64_t begin, int64_t end) {
  json_t *shape = json_array();
  for (int i = 0; i < t->rank; i++)
    json_array_append_new(shape, json_integer(t->shape[i]));
  return json_pack("{s:s, s:o, s:[I, I]}", "dtype", dtypes[t->dtype].name,
                   "shape", shape, "data_offsets", (json_int_t)begin,
                   (json_int_t)end);
}

/* Builds the padded header into *out (malloc'd, *len bytes). jansson
 * refuses strings that are not valid UTF-8, which the format requires. */
static kiln_status build_header(const char *path, const ckpt_tensor **order,
                                int n, const ckpt_meta *meta, int n_meta,
                                char **out, size_t *len, kiln_error *err) {
  json_t *root = json_object();
  KILN_ASSERT(root && "out of memory");
  kiln_status st = KILN_OK;
  int64_t offset = 0;
  for (int i = 0; i < n && st == KILN_OK; i++) {
    int64_t nbytes = 0;
    ckpt_tensor_nbytes(order[i], &nbytes);
    json_t *e = tensor_entry(order[i], offset, offset + nbytes);
    KILN_ASSERT(e && "out of memory");
    offset += nbytes;
    if (json_object_set_new(root, order[i]->name, e) != 0)
      st = diag_error(err, KILN_ERR_INVALID, no_loc,
                      "cannot write '%s': tensor name '%s' is not valid UTF-8",
                      path, order[i]->name);
  }
  if (st == KILN_OK && n_meta > 0) {
    for (int i = 0; i < n_meta && st == KILN_OK; i++)
      if (!meta[i].key || !meta[i].value)
        st = diag_error(err, KILN_ERR_INVALID, no_loc,
                        "cannot write '%s': metadata entry %d has no key or "
                        "value",
                        path, i);
    ckpt_meta *sorted = malloc((size_t)n_meta * sizeof *sorted);
    KILN_ASSERT(sorted && "out of memory");
    memcpy(sorted, meta, (size_t)n_meta * sizeof *sorted);
    if (st == KILN_OK)
      qsort(sorted, (size_t)n_meta, sizeof *sorted, cmp_meta);
    json_t *m = json_object();
    json_object_set_new(root, "__metadata__", m);
    for (int i = 0; i < n_meta && st == KILN_OK; i++) {
      const ckpt_meta *kv = &sorted[i];
      if (i > 0 && strcmp(sorted[i - 1].key, kv->key) == 0)
        st = diag_error(err, KILN_ERR_INVALID, no_loc,
                        "cannot write '%s': metadata key '%s' given twice",
                        path, kv->key);
      else if (json_object_set_new(m, kv->key, json_string(kv->value)) != 0)
        st = diag_error(err, KILN_ERR_INVALID, no_loc,
                        "cannot write '%s': metadata '%s' is not valid UTF-8",
                        path, kv->key);
    }
    free(sorted);
  }
  char *text = NULL;
  if (st == KILN_OK) {
    text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    KILN_ASSERT(text && "out of memory");
  }
  json_decref(root);
  if (st != KILN_OK)
    return st;

  size_t raw = strlen(text), padded = (raw + 7) & ~(size_t)7;
  if ((uint64_t)padded > CKPT_MAX_HEADER) {
    free(text);
    return diag_error(err, KILN_ERR_INVALID, no_loc,
                      "cannot write '%s': the header would be %zu bytes, "
                      "above the 100 MB that readers accept",
                      path, padded);
  }
  char *grown = realloc(text, padded + 1);
  KILN_ASSERT(grown && "out of memory");
  memset(grown + raw, ' ', padded - raw);
  grown[padded] = '\0';
  *out = grown;
  *len = padded;
  return KILN_OK;
}

/* ---- the file ---- */

static bool put(FILE *f, const void *p, size_t n) {
  return n == 0 || fwrite(p, 1, n, f) == n;
}

/* After the rename, the directory entry itself must reach the disk for the
 * new file to survive a power cut. Best effort: some file systems refuse
 * fsync on a directory, and the rename has already replaced the file. */
static void sync_parent_dir(const char *path) {
  const char *slash = strrchr(path, '/');
  char *dir = slash ? strndup(path, (size_t)(slash - path + 1)) : strdup(".");
  KILN_ASSERT(dir && "out of memory");
  int fd = open(dir, O_RDONLY);
  if (fd >= 0) {
    (void)fsync(fd);
    close(fd);
  }
  free(dir);
}

static kiln_status write_file(const char *path, const char *tmp,
                              const char *header, size_t header_len,
                              const ckpt_tensor **order, int n,
                              kiln_error *err) {
  errno = 0;
  FILE *f = fopen(tmp, "wb");
  if (!f)
    return diag_error(err, KILN_ERR_IO, no_loc,
                      "cannot write '%s': cannot create '%s': %s", path, tmp,
                      strerror(errno));
  unsigned char len8[8];
  for (int i = 0; i < 8; i++)
    len8[i] = (unsigned char)((uint64_t)header_len >> (8 * i));
  bool ok = put(f, len8, 8) && put(f, header, header_len);
  for (int i = 0; i < n && ok; i++) {
    int64_t nbytes = 0;
    ckpt_tensor_nbytes(order[i], &nbytes);
    ok = put(f, order[i]->data, (size_t)nbytes);
  }
  /* fflush moves the data to the kernel, fsync to the disk: only then may
   * the rename make it the checkpoint. */
  ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
  int saved = errno;
  if (fclose(f) != 0 && ok) {
    ok = false;
    saved = errno;
  }
  if (!ok) {
    remove(tmp);
    return diag_error(err, KILN_ERR_IO, no_loc,
                      "cannot write '%s': writing '%s': %s", path, tmp,
                      saved ? strerror(saved) : "write failed");
  }
  if (rename(tmp, path) != 0) {
    saved = errno;
    remove(tmp);
    return diag_error(err, KILN_ERR_IO, no_loc,
                      "cannot write '%s': cannot rename '%s' over it: %s", path,
                      tmp, strerror(saved));
  }
  sync_parent_dir(path);
  return KILN_OK;
}

kiln_status ckpt_write(const char *path, const ckpt_tensor *tensors, int n,
                       const ckpt_meta *meta, int n_meta, kiln_error *err) {
  KILN_ASSERT(path && n >= 0 && n_meta >= 0);
  KILN_ASSERT((n == 0 || tensors) && (n_meta == 0 || meta));
  const ckpt_tensor **order = malloc(((size_t)n + 1) * sizeof *order);
  KILN_ASSERT(order && "out of memory");
  char *header = NULL, *tmp = NULL;
  size_t header_len = 0;
  kiln_status st = check_tensors(path, tensors, n, order, err);
  if (st == KILN_OK)
    st = build_header(path, order, n, meta, n_meta, &header, &header_len, err);
  if (st == KILN_OK) {
    /* Beside the target, so that rename() stays within one file system;
     * the pid keeps two processes writing the same path apart. */
    size_t cap = strlen(path) + 32;
    tmp = malloc(cap);
    KILN_ASSERT(tmp && "out of memory");
    snprintf(tmp, cap, "%s.tmp.%ld", path, (long)getpid());
    st = write_file(path, tmp, header, header_len, order, n, err);
  }
  free(tmp);
  free(header);
  free(order);
  return st;
}
