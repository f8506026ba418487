/* ckpt.h — checkpoints and weight files in the safetensors format, readable
 * by PyTorch and the Hugging Face tools. Prototypes grouped by the file that
 * defines them.
 *
 * The format (https://github.com/huggingface/safetensors):
 *
 *   u64 N (little-endian) | N bytes of JSON header | data region
 *
 *   header = {"<name>": {"dtype": "F32", "shape": [2, 3],
 *                        "data_offsets": [begin, end]}, ...,
 *             "__metadata__": {"<key>": "<string value>", ...}}
 *
 * Offsets are relative to the start of the data region; the tensors tile
 * it exactly (no gap, no overlap); data is raw little-endian, row-major.
 *
 * What kiln writes (ckpt_write.c), byte for byte, so that files are
 * reproducible and the test can compare them with a hand-built string:
 *   - compact JSON (no spaces), object keys sorted by strcmp at every level
 *     (so "__metadata__" sits between upper- and lower-case names, and each
 *     entry reads {"data_offsets":[..],"dtype":"..","shape":[..]});
 *   - `__metadata__` only when there is metadata;
 *   - the header padded with spaces to a multiple of 8 bytes;
 *   - data laid out by dtype size, largest first, then by name: every
 *     tensor starts at a multiple of its element size (the data region
 *     starts at a multiple of 8), the order the safetensors library uses;
 *   - to "<path>.tmp.<pid>", fsync'd, then renamed over <path>: a crash
 *     leaves the old file or the new one, never a mix.
 *
 * What the reader (ckpt_read.c) accepts: any file the format allows with
 * the dtypes kiln has (F32, F64, F16, BF16, I32, I64), checked strictly:
 * every violation is a KILN_ERR_IO message naming the file and, where there
 * is one, the tensor. It never reads outside the file it loaded. A header
 * length that is not a multiple of 8 is accepted (older writers did not
 * pad); unknown keys in a tensor entry are not. Data pointers are aligned
 * to their element size when the file uses the layout above (kiln's, the
 * safetensors library's); for other files, copy with memcpy.
 *
 * The host must be little-endian (checked at compile time). */
#ifndef KILN_RUNTIME_CKPT_H
#define KILN_RUNTIME_CKPT_H

#include "ir/ir.h"
#include "kiln.h"
#include "support/support.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The safetensors reference implementation refuses headers above 100 MB;
 * so do we, before allocating or parsing anything. */
#define CKPT_MAX_HEADER ((uint64_t)100000000)

/* One tensor. For ckpt_write, the caller's description of its data; from
 * the reader, a view into the loaded file (valid until ckpt_file_free). A
 * rank-0 tensor (a scalar) has one element; shape may then be NULL. */
typedef struct ckpt_tensor {
  const char *name;
  ir_dtype dtype;
  int rank;
  const int64_t *shape;
  const void *data; /* ckpt_tensor_nbytes() bytes; may be NULL when 0 */
} ckpt_tensor;

/* One string of metadata (__metadata__ in the header). */
typedef struct ckpt_meta {
  const char *key, *value;
} ckpt_meta;

/* ---- ckpt_write.c ---- */

/* "F32", "F64", "F16", "BF16", "I32", "I64": the safetensors names. */
const char *ckpt_dtype_name(ir_dtype t);
/* false for names kiln has no dtype for ("U8", "BOOL", "F8_E4M3", ...). */
bool ckpt_dtype_parse(const char *name, ir_dtype *out);
int ckpt_dtype_size(ir_dtype t);
/* Bytes of t's data; false when the shape is negative or the size does not
 * fit in int64. */
bool ckpt_tensor_nbytes(const ckpt_tensor *t, int64_t *out);

/* Writes tensors (n of them, any order, names unique and not
 * "__metadata__") and metadata (n_meta pairs, keys unique; none when 0)
 * atomically to `path`. Errors: KILN_ERR_INVALID for a bad description
 * (duplicate name, negative dimension, invalid UTF-8, ...), KILN_ERR_IO for
 * the file system, with strerror; the temporary file is removed on every
 * failure and `path` is left as it was. */
kiln_status ckpt_write(const char *path, const ckpt_tensor *tensors, int n,
                       const ckpt_meta *meta, int n_meta, kiln_error *err);

/* ---- ckpt_read.c ---- */

typedef struct ckpt_file {
  arena arena;          /* names, shapes, tables */
  char *path;           /* as given, for messages */
  unsigned char *bytes; /* the whole file, malloc'd */
  size_t len;
  int n_tensors;
  ckpt_tensor *tensors; /* sorted by name (strcmp) */
  int n_meta;
  ckpt_meta *meta; /* sorted by key */
} ckpt_file;

/* Reads and validates a whole file. On failure f is left empty (freeing it
 * is allowed and does nothing). */
kiln_status ckpt_load(ckpt_file *f, const char *path, kiln_error *err);
/* The same from memory (copied); `name` stands for the file in messages. */
kiln_status ckpt_parse(ckpt_file *f, const char *name, const void *bytes,
                       size_t len, kiln_error *err);
void ckpt_file_free(ckpt_file *f);

/* NULL when absent. */
const ckpt_tensor *ckpt_find(const ckpt_file *f, const char *name);
const char *ckpt_meta_get(const ckpt_file *f, const char *key);

#endif
