/* ckpt_read.c — loading and validating safetensors files.
 *
 * A checkpoint is user input: it may be truncated, corrupt or hostile. The
 * whole file is read into memory, then checked in this order, each failure
 * a message naming the file (and the tensor):
 *   1. length: at least the 8-byte header length; the header length at
 *      most CKPT_MAX_HEADER and within the file;
 *   2. header: valid JSON (jansson's message and position), an object,
 *      no key twice;
 *   3. each entry: exactly dtype, shape and data_offsets; a dtype kiln has;
 *      a shape of non-negative integers whose byte size fits in int64;
 *      offsets 0 <= begin <= end <= data region, end - begin equal to that
 *      size; __metadata__ an object of strings;
 *   4. the tensors, sorted by offset, tile the data region exactly.
 * Only then are the tensors' data pointers handed out, so every pointer
 * points at bytes inside the file. */
#include "runtime/checkpoint/ckpt.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const kiln_loc no_loc = {NULL, 0, 0};

/* A rank this large is a corrupt header, not a tensor. */
enum { CKPT_MAX_RANK = 64 };

/* Names come from the file: shown with control bytes replaced and cut to a
 * readable length, so a hostile name cannot flood or drive the terminal. */
typedef struct shown {
  char s[120];
} shown;

static shown show(const char *name) {
  shown r;
  size_t i = 0, cap = sizeof r.s;
  for (; name[i] && i < cap - 4; i++) {
    unsigned char c = (unsigned char)name[i];
    r.s[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
  }
  if (name[i]) {
    memcpy(r.s + i, "...", 3);
    i += 3;
  }
  r.s[i] = '\0';
  return r;
}

/* Offsets of one tensor, kept beside the table for the tiling check. */
typedef struct span {
  int64_t begin, end;
  int tensor;
} span;

static void put_shape(strbuf *b, const ckpt_tensor *t) {
  strbuf_putc(b, '[');
  for (int i = 0; i < t->rank; i++)
    strbuf_printf(b, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
  strbuf_putc(b, ']');
}

static kiln_status read_shape(ckpt_file *f, const char *name, json_t *j,
                              ckpt_tensor *t, kiln_error *err) {
  if (!json_is_array(j))
    return diag_error(err, KILN_ERR_IO, no_loc,
                      "'%s': tensor '%s': \"shape\" is not an array", f->path,
                      show(name).s);
  size_t rank = json_array_size(j);
  if (rank > CKPT_MAX_RANK)
    return diag_error(err, KILN_ERR_IO, no_loc,
                      "'%s': tensor '%s': rank %zu is above the limit of %d",
                      f->path, show(name).s, rank, CKPT_MAX_RANK);
  int64_t *shape = ARENA_ARRAY(&f->arena, int64_t, rank ? rank : 1);
  for (size_t i = 0; i < rank; i++) {
    json_t *d = json_array_get(j, i);
    if (!json_is_integer(d) || json_integer_value(d) < 0)
      return diag_error(err, KILN_ERR_IO, no_loc,
                        "'%s': tensor '%s': shape[%zu] is not a non-negative "
                        "integer",
                        f->path, show(name).s, i);
    shape[i] = json_integer_value(d);
  }
  t->rank = (int)rank;
  t->shape = shape;
  return KILN_OK;
}

static kiln_status read_offsets(ckpt_file *f, const char *name, json_t *j,
                                span *sp, kiln_error *err) {
  json_t *b = json_array_get(j, 0), *e = json_array_get(j, 1);
  if (!json_is_array(j) || json_array_size(j) != 2 || !json_is_integer(b) ||
      !json_is_integer(e))
    return diag_error(err, KILN_ERR_IO, no_loc,
                      "'%s': tensor '%s': \"data_offsets\" is not a pair of "
                      "integers [begin, end]",
                      f->path, show(name).s);
  sp->begin = json_integer_value(b);
  sp->end = json_integer_value(e);
  if (sp->begin < 0 || sp->end < sp->begin)
    return diag_error(err, KILN_ERR_IO, no_loc,
                      "'%s': tensor '%s': data_offsets [%lld, %lld] are not "
                      "0 <= begin <= end",
                      f->path, show(name).s, (long long)sp->begin,
                      (long long)sp->end);
  return KILN_OK;
}

/* One "name": {"dtype", "shape", "data_offsets"} entry, checked against
 * itself and the size of the data region (not yet against its neighbours). */
static kiln_status read_tensor(ckpt_file *f, const char *name, json_t *j,
                               int64_t data_len, ckpt_tensor *t, span *sp,
                               kiln_error *err) {
  const char *path = f->path;
  if (!json_is_object(j))
    return diag_error(err, KILN_ERR_IO, no_loc,
                      "'%s': tensor '%s': entry is not a JSON object", path,
                      show(name).s);
  const char *key;
  json_t *v;
  json_object_foreach(j, key, v) {
    if (strcmp(key, "dtype") && strcmp(key, "shape") &&
        strcmp(key, "data_offsets"))
      return diag_error(err, KILN_ERR_IO, no_loc,
                        "'%s': tensor '%s': unknown key '%s' (expected dtype, "
                        "shape, data_offsets)",
                        path, show(name).s, show(key).s);
  }
  static const char *const required[] = {"dtype", "shape", "data_offsets"};
  for (size_t i = 0; i < ARRAY_LEN(required); i++)
    if (!json_object_get(j, required[i]))
      return diag_error(err, KILN_ERR_IO, no_loc,
                        "'%s': tensor '%s': missing \"%s\"", path, show(name).s,
                        required[i]);

  json_t *dt = json_object_get(j, "dtype");
  if (!json_is_string(dt))
    return diag_error(err, KILN_ERR_IO, no_loc,
                      "'%s': tensor '%s': \"dtype\" is not a string", path,
                      show(name).s);
  if (!ckpt_dtype_parse(json_string_value(dt), &t->dtype))
    return diag_error(err, KILN_ERR_IO, no_loc,
                      "'%s': tensor '%s': unsupported dtype '%s' (kiln reads "
                      "F32, F64, F16, BF16, I32, I64)",
                      path, show(name).s, show(json_string_value(dt)).s);
  t->name = arena_strdup(&f->arena, name);
  kiln_status st = read_shape(f, name, json_object_get(j, "shape"), t, err);
  if (st == KILN_OK)
    st = read_offsets(f, name, json_object_get(j, "data_offsets"), sp, err);
  if (st != KILN_OK)
    return st;

  int64_t nbytes;
  strbuf b;
  strbuf_init(&b);
  put_shape(&b, t);
  if (!ckpt_tensor_nbytes(t, &nbytes))
    st = diag_error(err, KILN_ERR_IO, no_loc,
                    "'%s': tensor '%s': shape %s x %s is more than 2^63 bytes",
                    path, show(name).s, b.data, ckpt_dtype_name(t->dtype));
  else if (sp->end - sp->begin != nbytes)
    st =
        diag_error(err, KILN_ERR_IO, no_loc,
                   "'%s': tensor '%s': data_offsets [%lld, %lld] do not "
                   "match shape %s x %s = %lld bytes",
                   path, show(name).s, (long long)sp->begin, (long long)sp->end,
                   b.data, ckpt_dtype_name(t->dtype), (long long)nbytes);
  else if (sp->end > data_len)
    st = diag_error(err, KILN_ERR_IO, no_loc,
                    "'%s': tensor '%s': data_offsets [%lld, %lld] are out of "
                    "bounds: the data region is %lld bytes",
                    path, show(name).s, (long long)sp->begin,
                    (long long)sp->end, (long long)data_len);
  strbuf_free(&b);
  return st;
}

/* The reference reader takes "__metadata__": null for no metadata (it is
 * an optional map there), so kiln does too. */
static kiln_status read_metadata(ckpt_file *f, json_t *j, kiln_error *err) {
  if (json_is_null(j))
    return KILN_OK;
  if (!json_is_object(j))
    return diag_error(err, KILN_ERR_IO, no_loc,
                      "'%s': \"__metadata__\" is not a JSON object", f->path);
  f->meta = ARENA_ARRAY(&f->arena, ckpt_meta, json_object_size(j) + 1);
  const char *key;
  json_t *v;
  json_object_foreach(j, key, v) {
    if (!json_is_string(v))
      return diag_error(err, KILN_ERR_IO, no_loc,
                        "'%s': metadata '%s': value is not a string", f->path,
                        show(key).s);
    f->meta[f->n_meta].key = arena_strdup(&f->arena, key);
    f->meta[f->n_meta].value = arena_strdup(&f->arena, json_string_value(v));
    f->n_meta++;
  }
  return KILN_OK;
}

static int cmp_span(const void *a, const void *b) {
  const span *x = a, *y = b;
  if (x->begin != y->begin)
    return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end)
    return x->end < y->end ? -1 : 1;
  return (x->tensor > y->tensor) - (x->tensor < y->tensor);
}

/* Sorted by (begin, end), each tensor must start where the previous one
 * ended (zero-sized tensors fit anywhere on a boundary), from 0 to the end
 * of the data region. */
static kiln_status check_tiling(ckpt_file *f, span *sp, int n, int64_t data_len,
                                kiln_error *err) {
  qsort(sp, (size_t)n, sizeof *sp, cmp_span);
  int64_t at = 0;
  int prev = -1;
  for (int i = 0; i < n; i++) {
    const char *name = f->tensors[sp[i].tensor].name;
    if (sp[i].begin > at)
      return diag_error(err, KILN_ERR_IO, no_loc,
                        "'%s': bytes [%lld, %lld) of the data region belong "
                        "to no tensor (gap before tensor '%s')",
                        f->path, (long long)at, (long long)sp[i].begin,
                        show(name).s);
    if (sp[i].begin < at)
      return diag_error(err, KILN_ERR_IO, no_loc,
                        "'%s': tensor '%s' (data_offsets [%lld, %lld]) "
                        "overlaps tensor '%s' (data_offsets [%lld, %lld])",
                        f->path, show(name).s, (long long)sp[i].begin,
                        (long long)sp[i].end,
                        show(f->tensors[sp[prev].tensor].name).s,
                        (long long)sp[prev].begin, (long long)sp[prev].end);
    at = sp[i].end;
    prev = i;
  }
  if (at != data_len)
    return diag_error(err, KILN_ERR_IO, no_loc,
                      "'%s': bytes [%lld, %lld) of the data region belong to "
                      "no tensor (%s)",
                      f->path, (long long)at, (long long)data_len,
                      n ? "after the last tensor" : "the header lists none");
  return KILN_OK;
}

static int cmp_tensor(const void *a, const void *b) {
  return strcmp(((const ckpt_tensor *)a)->name, ((const ckpt_tensor *)b)->name);
}

static int cmp_meta(const void *a, const void *b) {
  return strcmp(((const ckpt_meta *)a)->key, ((const ckpt_meta *)b)->key);
}

static kiln_status parse_header(ckpt_file *f, json_t *root, uint64_t hlen,
                                kiln_error *err) {
  if (!json_is_object(root))
    return diag_error(err, KILN_ERR_IO, no_loc,
                      "'%s': header is a JSON array, not an object", f->path);
  int64_t data_len = (int64_t)(f->len - 8 - hlen);
  const unsigned char *data = f->bytes + 8 + hlen;
  size_t cap = json_object_size(root) + 1;
  f->tensors = ARENA_ARRAY(&f->arena, ckpt_tensor, cap);
  span *sp = malloc(cap * sizeof *sp);
  KILN_ASSERT(sp && "out of memory");
  kiln_status st = KILN_OK;
  const char *key;
  json_t *v;
  json_object_foreach(root, key, v) {
    if (strcmp(key, "__metadata__") == 0) {
      st = read_metadata(f, v, err);
    } else {
      ckpt_tensor *t = &f->tensors[f->n_tensors];
      span *s = &sp[f->n_tensors];
      st = read_tensor(f, key, v, data_len, t, s, err);
      s->tensor = f->n_tensors++;
      t->data = st == KILN_OK ? data + s->begin : NULL;
    }
    if (st != KILN_OK)
      break;
  }
  if (st == KILN_OK)
    st = check_tiling(f, sp, f->n_tensors, data_len, err);
  free(sp);
  if (st == KILN_OK) {
    qsort(f->tensors, (size_t)f->n_tensors, sizeof *f->tensors, cmp_tensor);
    if (f->n_meta)
      qsort(f->meta, (size_t)f->n_meta, sizeof *f->meta, cmp_meta);
  }
  return st;
}

/* Takes ownership of `bytes` (malloc'd), whatever the outcome. */
static kiln_status parse_owned(ckpt_file *f, const char *path,
                               unsigned char *bytes, size_t len,
                               kiln_error *err) {
  memset(f, 0, sizeof *f);
  arena_init(&f->arena);
  f->path = arena_strdup(&f->arena, path);
  f->bytes = bytes;
  f->len = len;
  kiln_status st = KILN_OK;
  uint64_t hlen = 0; /* little-endian, whatever the host */
  if (len >= 8)
    for (int i = 0; i < 8; i++)
      hlen |= (uint64_t)bytes[i] << (8 * i);
  if (len < 8)
    st = diag_error(err, KILN_ERR_IO, no_loc,
                    "'%s': the file is %zu bytes, too short for the 8-byte "
                    "safetensors header length",
                    path, len);
  else if (hlen > CKPT_MAX_HEADER)
    st = diag_error(err, KILN_ERR_IO, no_loc,
                    "'%s': header length %llu is above the 100 MB limit (not "
                    "a safetensors file, or a corrupt one)",
                    path, (unsigned long long)hlen);
  else if (hlen > len - 8)
    st = diag_error(err, KILN_ERR_IO, no_loc,
                    "'%s': header length %llu runs past the end of the file "
                    "(%zu bytes; truncated?)",
                    path, (unsigned long long)hlen, len);
  if (st == KILN_OK) {
    json_error_t jerr;
    json_t *root = json_loadb((const char *)bytes + 8, (size_t)hlen,
                              JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
      st = diag_error(err, KILN_ERR_IO, no_loc,
                      "'%s': header is not valid JSON: %s (header line %d, "
                      "column %d, byte %d)",
                      path, show(jerr.text).s, jerr.line, jerr.column,
                      jerr.position);
    else
      st = parse_header(f, root, hlen, err);
    json_decref(root);
  }
  if (st != KILN_OK)
    ckpt_file_free(f);
  return st;
}

kiln_status ckpt_parse(ckpt_file *f, const char *name, const void *bytes,
                       size_t len, kiln_error *err) {
  unsigned char *copy = malloc(len ? len : 1);
  KILN_ASSERT(copy && "out of memory");
  if (len)
    memcpy(copy, bytes, len);
  return parse_owned(f, name, copy, len, err);
}

kiln_status ckpt_load(ckpt_file *f, const char *path, kiln_error *err) {
  memset(f, 0, sizeof *f);
  errno = 0;
  FILE *in = fopen(path, "rb");
  if (!in)
    return diag_error(err, KILN_ERR_IO, no_loc, "cannot open '%s': %s", path,
                      strerror(errno));
  struct stat sb;
  errno = 0;
  bool stat_ok = fstat(fileno(in), &sb) == 0;
  int stat_errno = errno;
  if (!stat_ok || !S_ISREG(sb.st_mode)) {
    fclose(in);
    return diag_error(err, KILN_ERR_IO, no_loc, "cannot read '%s': %s", path,
                      stat_ok ? "not a regular file" : strerror(stat_errno));
  }
  size_t len = (size_t)sb.st_size;
  unsigned char *bytes = malloc(len ? len : 1);
  KILN_ASSERT(bytes && "out of memory");
  size_t got = fread(bytes, 1, len, in);
  int saved = errno;
  bool failed = ferror(in) != 0;
  fclose(in);
  if (failed || got != len) {
    free(bytes);
    return diag_error(err, KILN_ERR_IO, no_loc, "cannot read '%s': %s", path,
                      failed && saved ? strerror(saved)
                                      : "the file changed while being read");
  }
  return parse_owned(f, path, bytes, len, err);
}

void ckpt_file_free(ckpt_file *f) {
  arena_free(&f->arena);
  free(f->bytes);
  memset(f, 0, sizeof *f);
}

const ckpt_tensor *ckpt_find(const ckpt_file *f, const char *name) {
  if (f->n_tensors == 0)
    return NULL;
  ckpt_tensor probe = {.name = name};
  return bsearch(&probe, f->tensors, (size_t)f->n_tensors, sizeof *f->tensors,
                 cmp_tensor);
}

const char *ckpt_meta_get(const ckpt_file *f, const char *key) {
  if (f->n_meta == 0)
    return NULL;
  ckpt_meta probe = {.key = key};
  const ckpt_meta *m =
      bsearch(&probe, f->meta, (size_t)f->n_meta, sizeof *f->meta, cmp_meta);
  return m ? m->value : NULL;
}
