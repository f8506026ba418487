/* test_ckpt.c — safetensors checkpoints: round trips of every dtype, the
 * exact bytes of a small file, every malformed-file message, prefixes and
 * corrupted copies that must fail cleanly (run under ASan in CI), and the
 * atomic write (no temporary left behind, an overwrite replaces the file
 * whole). tests/py/test_safetensors_compat.py checks the same files against
 * the safetensors library itself. */
#include "runtime/checkpoint/ckpt.h"
#include "test.h"

#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[64];

/* A fresh directory per test program, so parallel ctest runs never meet. */
static const char *tmp_path(const char *name) {
  static char buf[8][512]; /* tmpdir + a d_name fit */
  static int next;
  char *p = buf[next++ % 8];
  snprintf(p, sizeof buf[0], "%s/%s", tmpdir, name);
  return p;
}

/* Files in tmpdir whose name contains `part`. */
static int count_files(const char *part) {
  DIR *d = opendir(tmpdir);
  int n = 0;
  for (struct dirent *e; d && (e = readdir(d));)
    n += strstr(e->d_name, part) != NULL;
  if (d)
    closedir(d);
  return n;
}

static void clean_tmpdir(void) {
  DIR *d = opendir(tmpdir);
  for (struct dirent *e; d && (e = readdir(d));) {
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
      remove(tmp_path(e->d_name));
  }
  if (d)
    closedir(d);
}

static long file_size(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 ? (long)sb.st_size : -1;
}

/* ---- round trip ---- */

static const int64_t s23[] = {2, 3}, s4[] = {4}, s3[] = {3}, s22[] = {2, 2},
                     s03[] = {0, 3}, s5[] = {5};
static const float f32v[] = {0.5f, -1.25f, 3.0f, 1e-20f, -0.0f, 65504.0f};
static const double f64v[] = {3.141592653589793, -2.5e300, 1.0 / 3.0, 0.0};
static const uint16_t f16v[] = {0x3c00, 0xc000, 0x7bff}; /* 1, -2, 65504 */
static const uint16_t bf16v[] = {0x3f80, 0xc040, 0x0001, 0x7f80};
static const int32_t i32v[] = {-2147483647 - 1, -1, 0, 1, 2147483647};
static const int64_t i64v[] = {INT64_MIN, -1, 0, INT64_MAX};
static const float scalar = 42.0f;

/* Listed out of order on purpose: the file must not depend on it. */
static const ckpt_tensor demo[] = {
    {"layer1.weight", IR_F32, 2, s23, f32v},
    {"layer1.bias", IR_F16, 1, s3, f16v},
    {"embed", IR_BF16, 2, s22, bf16v},
    {"counts", IR_I32, 1, s5, i32v},
    {"big", IR_F64, 1, s4, f64v},
    {"ids", IR_I64, 1, s4, i64v},
    {"step_scale", IR_F32, 0, NULL, &scalar},
    {"empty", IR_F32, 2, s03, NULL},
};
static const ckpt_meta demo_meta[] = {
    {"step", "1200"}, {"model", "lenet5"}, {"note", "caf\xc3\xa9 {\"q\"}"}};

TEST(test_dtype_names) {
  static const char *const names[] = {"F32",  "F64", "F16",
                                      "BF16", "I32", "I64"};
  for (int t = 0; t < IR_DTYPE_COUNT; t++) {
    ir_dtype back;
    CHECK(strcmp(ckpt_dtype_name((ir_dtype)t), names[t]) == 0);
    CHECK(ckpt_dtype_parse(names[t], &back) && back == (ir_dtype)t);
  }
  ir_dtype d;
  CHECK(!ckpt_dtype_parse("U8", &d) && !ckpt_dtype_parse("f32", &d));
  CHECK_EQ_INT(ckpt_dtype_size(IR_BF16), 2);
  CHECK_EQ_INT(ckpt_dtype_size(IR_I64), 8);
}

TEST(test_round_trip) {
  const char *path = tmp_path("round.safetensors");
  kiln_error err = {0};
  int n = (int)ARRAY_LEN(demo);
  CHECK_EQ_INT(ckpt_write(path, demo, n, demo_meta, 3, &err), KILN_OK);
  ckpt_file f;
  CHECK_EQ_INT(ckpt_load(&f, path, &err), KILN_OK);
  if (err.status)
    fprintf(stderr, "%s", err.message);
  CHECK_EQ_INT(f.n_tensors, n);
  for (int i = 1; i < f.n_tensors; i++) /* listed by name */
    CHECK(strcmp(f.tensors[i - 1].name, f.tensors[i].name) < 0);
  for (int i = 0; i < n; i++) {
    const ckpt_tensor *want = &demo[i], *got = ckpt_find(&f, want->name);
    CHECK(got != NULL);
    if (!got)
      continue;
    CHECK_EQ_INT(got->dtype, want->dtype);
    CHECK_EQ_INT(got->rank, want->rank);
    for (int k = 0; k < want->rank; k++)
      CHECK_EQ_INT(got->shape[k], want->shape[k]);
    int64_t nbytes = -1;
    CHECK(ckpt_tensor_nbytes(got, &nbytes));
    CHECK(nbytes == 0 || memcmp(got->data, want->data, (size_t)nbytes) == 0);
    /* kiln's layout keeps every tensor aligned to its element size. */
    CHECK((uintptr_t)got->data % (uintptr_t)ckpt_dtype_size(got->dtype) == 0);
  }
  CHECK(ckpt_find(&f, "layer1") == NULL);
  CHECK(ckpt_find(&f, "zzz") == NULL);
  CHECK_EQ_INT(f.n_meta, 3);
  CHECK(strcmp(ckpt_meta_get(&f, "model"), "lenet5") == 0);
  CHECK(strcmp(ckpt_meta_get(&f, "step"), "1200") == 0);
  CHECK(strcmp(ckpt_meta_get(&f, "note"), demo_meta[2].value) == 0);
  CHECK(ckpt_meta_get(&f, "missing") == NULL);
  /* Writing what was read gives the same bytes (the order is canonical). */
  const char *again = tmp_path("again.safetensors");
  CHECK_EQ_INT(
      ckpt_write(again, f.tensors, f.n_tensors, f.meta, f.n_meta, &err),
      KILN_OK);
  ckpt_file g;
  CHECK_EQ_INT(ckpt_load(&g, again, &err), KILN_OK);
  CHECK(g.len == f.len && memcmp(g.bytes, f.bytes, f.len) == 0);
  ckpt_file_free(&g);
  ckpt_file_free(&f);
  ckpt_file_free(&f); /* freeing twice is harmless */
  CHECK_EQ_INT(count_files(".tmp."), 0);
}

/* ---- exact bytes ---- */

/* Keys sorted at every level, compact, padded with spaces to 144 bytes;
 * the I64 scalar first (larger elements first), then the F32 pair. */
static const char tiny_expected[] =
    "\x90\0\0\0\0\0\0\0"
    "{\"__metadata__\":{\"format\":\"pt\"},"
    "\"step\":{\"data_offsets\":[0,8],\"dtype\":\"I64\",\"shape\":[]},"
    "\"w\":{\"data_offsets\":[8,16],\"dtype\":\"F32\",\"shape\":[2]}}"
    "   "
    "\x03\0\0\0\0\0\0\0"
    "\0\0\x80\x3f"
    "\0\0\0\xc0";

TEST(test_exact_bytes) {
  static const float w[] = {1.0f, -2.0f};
  static const int64_t step = 3, two[] = {2};
  const ckpt_tensor ts[] = {{"w", IR_F32, 1, two, w},
                            {"step", IR_I64, 0, NULL, &step}};
  const ckpt_meta meta[] = {{"format", "pt"}};
  const char *path = tmp_path("tiny.safetensors");
  kiln_error err = {0};
  CHECK_EQ_INT(ckpt_write(path, ts, 2, meta, 1, &err), KILN_OK);
  size_t want = sizeof tiny_expected - 1;
  CHECK_EQ_INT(want, 8 + 144 + 16);
  FILE *f = fopen(path, "rb");
  unsigned char got[256] = {0};
  size_t n = f ? fread(got, 1, sizeof got, f) : 0;
  if (f)
    fclose(f);
  CHECK_EQ_INT(n, want);
  CHECK(memcmp(got, tiny_expected, want) == 0);
  /* No metadata: no __metadata__ key at all. */
  CHECK_EQ_INT(ckpt_write(path, ts, 1, NULL, 0, &err), KILN_OK);
  ckpt_file cf;
  CHECK_EQ_INT(ckpt_load(&cf, path, &err), KILN_OK);
  CHECK_EQ_INT(cf.len, 8 + 56 + 8);
  CHECK(
      memcmp(cf.bytes + 8,
             "{\"w\":{\"data_offsets\":[0,8],\"dtype\":\"F32\",\"shape\":[2]}}"
             "  ",
             56) == 0);
  ckpt_file_free(&cf);
}

/* ---- malformed files ---- */

/* 8-byte length (hlen, or the header's own length when hlen < 0), the
 * header text, then `data_len` bytes of data. */
static unsigned char *build(const char *header, long long hlen, size_t data_len,
                            size_t *len) {
  size_t h = strlen(header);
  uint64_t l = hlen < 0 ? (uint64_t)h : (uint64_t)hlen;
  *len = 8 + h + data_len;
  unsigned char *b = calloc(1, *len);
  for (int i = 0; i < 8; i++)
    b[i] = (unsigned char)(l >> (8 * i));
  memcpy(b + 8, header, h);
  for (size_t i = 0; i < data_len; i++)
    b[8 + h + i] = (unsigned char)(i * 7);
  return b;
}

static void expect_bad(const char *header, long long hlen, size_t data_len,
                       const char *message) {
  size_t len;
  unsigned char *b = build(header, hlen, data_len, &len);
  ckpt_file f;
  kiln_error err = {0};
  kiln_status st = ckpt_parse(&f, "ckpt.safetensors", b, len, &err);
  CHECK_EQ_INT(st, KILN_ERR_IO);
  CHECK_STR_CONTAINS(err.message, "error: 'ckpt.safetensors': ");
  CHECK_STR_CONTAINS(err.message, message);
  CHECK(f.bytes == NULL && f.n_tensors == 0); /* left empty */
  ckpt_file_free(&f);
  free(b);
}

#define T_F32_2(off)                                                           \
  "{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":" off "}"

TEST(test_malformed) {
  kiln_error err = {0};
  ckpt_file f;
  CHECK_EQ_INT(ckpt_parse(&f, "ckpt.safetensors", "\x08\0\0", 3, &err),
               KILN_ERR_IO);
  CHECK_STR_CONTAINS(err.message, "'ckpt.safetensors': the file is 3 bytes, "
                                  "too short");
  expect_bad("{}", 1ll << 40, 0,
             "header length 1099511627776 is above the "
             "100 MB limit");
  expect_bad("{}", 100, 0, "header length 100 runs past the end of the file");
  expect_bad("{\"a\": {", -1, 0, "header is not valid JSON: ");
  expect_bad("{\"a\": {", -1, 0, "header line 1, column 7");
  expect_bad("", -1, 0, "header is not valid JSON");
  expect_bad("[1, 2]", -1, 0, "header is a JSON array, not an object");
  expect_bad("{\"a\": 3}", -1, 0, "tensor 'a': entry is not a JSON object");
  expect_bad("{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", -1, 8,
             "tensor 'a': missing \"dtype\"");
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", -1, 8,
             "tensor 'a': missing \"shape\"");
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", -1, 8,
             "tensor 'a': missing \"data_offsets\"");
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],"
             "\"strides\":[1]}}",
             -1, 8, "tensor 'a': unknown key 'strides'");
  expect_bad("{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],"
             "\"data_offsets\":[0,2]}}",
             -1, 2, "tensor 'a': unsupported dtype 'F8_E4M3'");
  expect_bad("{\"a\":{\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]}}", -1,
             8, "tensor 'a': \"dtype\" is not a string");
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,-3],"
             "\"data_offsets\":[0,8]}}",
             -1, 8, "tensor 'a': shape[1] is not a non-negative integer");
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.0],"
             "\"data_offsets\":[0,8]}}",
             -1, 8, "shape[0] is not a non-negative integer");
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}",
             -1, 8, "tensor 'a': \"shape\" is not an array");
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],"
             "\"data_offsets\":[0,8]}}",
             -1, 8,
             "shape [4294967296, 4294967296] x F32 is more than 2^63 bytes");
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],"
             "\"data_offsets\":[0,8]}}",
             -1, 8, "header is not valid JSON: too big integer");
  expect_bad("{\"fc.weight\":{\"dtype\":\"F32\",\"shape\":[10,84],"
             "\"data_offsets\":[0,100]}}",
             -1, 100,
             "'ckpt.safetensors': tensor 'fc.weight': data_offsets [0, 100] "
             "do not match shape [10, 84] x F32 = 3360 bytes");
  expect_bad("{\"a\":" T_F32_2("[0]") "}", -1, 8,
             "tensor 'a': \"data_offsets\" is not a pair of integers");
  expect_bad("{\"a\":" T_F32_2("[0,\"8\"]") "}", -1, 8,
             "\"data_offsets\" is not a pair of integers");
  expect_bad("{\"a\":" T_F32_2("[8,0]") "}", -1, 8,
             "data_offsets [8, 0] are not 0 <= begin <= end");
  expect_bad("{\"a\":" T_F32_2("[-8,0]") "}", -1, 8,
             "data_offsets [-8, 0] are not 0 <= begin <= end");
  expect_bad("{\"a\":" T_F32_2("[4,12]") "}", -1, 8,
             "tensor 'a': data_offsets [4, 12] are out of bounds: the data "
             "region is 8 bytes");
  /* Tiling: gaps before, between and after; overlap. */
  expect_bad("{\"a\":" T_F32_2("[4,12]") "}", -1, 12,
             "bytes [0, 4) of the data region belong to no tensor (gap "
             "before tensor 'a')");
  expect_bad("{\"a\":" T_F32_2("[0,8]") ",\"b\":" T_F32_2("[12,20]") "}", -1,
             20,
             "bytes [8, 12) of the data region belong to no tensor (gap "
             "before tensor 'b')");
  expect_bad("{\"a\":" T_F32_2("[0,8]") "}", -1, 12,
             "bytes [8, 12) of the data region belong to no tensor (after "
             "the last tensor)");
  expect_bad("{}", -1, 4, "bytes [0, 4) of the data region belong to no");
  expect_bad("{\"a\":" T_F32_2("[0,8]") ",\"b\":" T_F32_2("[4,12]") "}", -1, 12,
             "tensor 'b' (data_offsets [4, 12]) overlaps tensor 'a' "
             "(data_offsets [0, 8])");
  expect_bad("{\"b\":" T_F32_2("[0,8]") ",\"a\":" T_F32_2("[0,8]") "}", -1, 8,
             "overlaps tensor");
  expect_bad("{\"a\":" T_F32_2("[0,8]") ",\"a\":" T_F32_2("[8,16]") "}", -1, 16,
             "header is not valid JSON: duplicate object key");
  expect_bad("{\"__metadata__\":{\"k\":1}}", -1, 0,
             "metadata 'k': value is not a string");
  expect_bad("{\"__metadata__\":[\"k\"]}", -1, 0,
             "\"__metadata__\" is not a JSON object");
  /* A hostile name is shown without its control bytes. */
  expect_bad("{\"a\\u001b[2J\": 3}", -1, 0, "tensor 'a?[2J': entry is not");
}

/* Valid files kiln does not write itself: unpadded header, zero-sized
 * tensors sharing an offset, no tensors at all. */
TEST(test_valid_foreign) {
  static const char *const headers[] = {
      "{\"e\":{\"dtype\":\"I32\",\"shape\":[0],\"data_offsets\":[0,0]},"
      "\"a\":" T_F32_2("[0,8]") ",\"z\":{\"dtype\":\"I64\",\"shape\":[3,0],"
                                "\"data_offsets\":[8,8]}}",
      "{}",
      "{\"__metadata__\":{}}  ",
      "{\"__metadata__\":null}",
  };
  static const size_t data[] = {8, 0, 0, 0};
  for (size_t i = 0; i < ARRAY_LEN(headers); i++) {
    size_t len;
    unsigned char *b = build(headers[i], -1, data[i], &len);
    ckpt_file f;
    kiln_error err = {0};
    CHECK_EQ_INT(ckpt_parse(&f, "foreign", b, len, &err), KILN_OK);
    if (err.status)
      fprintf(stderr, "%s", err.message);
    CHECK_EQ_INT(f.n_tensors, i == 0 ? 3 : 0);
    ckpt_file_free(&f);
    free(b);
  }
}

/* Every proper prefix of a valid file must be rejected, and every one-byte
 * corruption must be rejected or accepted without reading out of bounds
 * (ASan watches; the copy ckpt_parse makes is exactly `len` bytes). */
TEST(test_truncated_and_corrupted) {
  const char *path = tmp_path("whole.safetensors");
  kiln_error err = {0};
  CHECK_EQ_INT(ckpt_write(path, demo, (int)ARRAY_LEN(demo), demo_meta, 3, &err),
               KILN_OK);
  ckpt_file whole;
  CHECK_EQ_INT(ckpt_load(&whole, path, &err), KILN_OK);
  int accepted = 0;
  for (size_t n = 0; n < whole.len; n++) {
    ckpt_file f;
    if (ckpt_parse(&f, "prefix", whole.bytes, n, &err) == KILN_OK)
      accepted++;
    ckpt_file_free(&f);
  }
  CHECK_EQ_INT(accepted, 0);
  unsigned char *copy = malloc(whole.len);
  static const unsigned char values[] = {0,   ' ', '"', '0',  '9', '[',
                                         '{', '}', ',', 0x7f, 0xff};
  for (size_t at = 0; at < whole.len && copy; at++) {
    for (size_t v = 0; v < ARRAY_LEN(values); v++) {
      memcpy(copy, whole.bytes, whole.len);
      copy[at] = values[v];
      ckpt_file f;
      if (ckpt_parse(&f, "corrupt", copy, whole.len, &err) == KILN_OK)
        for (int i = 0; i < f.n_tensors; i++) {
          int64_t nb = 0;
          CHECK(ckpt_tensor_nbytes(&f.tensors[i], &nb));
          CHECK((const unsigned char *)f.tensors[i].data + nb <=
                f.bytes + f.len);
        }
      ckpt_file_free(&f);
    }
  }
  free(copy);
  ckpt_file_free(&whole);
}

/* ---- writing ---- */

TEST(test_write_errors) {
  kiln_error err = {0};
  static const float v[2] = {1, 2};
  static const int64_t two[] = {2}, neg[] = {-2};
  const char *path = tmp_path("bad.safetensors");
  const ckpt_tensor dup[] = {{"a", IR_F32, 1, two, v},
                             {"a", IR_F32, 1, two, v}};
  CHECK_EQ_INT(ckpt_write(path, dup, 2, NULL, 0, &err), KILN_ERR_INVALID);
  CHECK_STR_CONTAINS(err.message, "two tensors are named 'a'");
  const ckpt_tensor reserved[] = {{"__metadata__", IR_F32, 1, two, v}};
  CHECK_EQ_INT(ckpt_write(path, reserved, 1, NULL, 0, &err), KILN_ERR_INVALID);
  CHECK_STR_CONTAINS(err.message, "'__metadata__' is reserved");
  const ckpt_tensor negative[] = {{"a", IR_F32, 1, neg, v}};
  CHECK_EQ_INT(ckpt_write(path, negative, 1, NULL, 0, &err), KILN_ERR_INVALID);
  CHECK_STR_CONTAINS(err.message, "tensor 'a': bad dtype, rank or shape");
  const ckpt_tensor no_data[] = {{"a", IR_F32, 1, two, NULL}};
  CHECK_EQ_INT(ckpt_write(path, no_data, 1, NULL, 0, &err), KILN_ERR_INVALID);
  CHECK_STR_CONTAINS(err.message, "tensor 'a': no data");
  const ckpt_tensor latin1[] = {{"caf\xe9", IR_F32, 1, two, v}};
  CHECK_EQ_INT(ckpt_write(path, latin1, 1, NULL, 0, &err), KILN_ERR_INVALID);
  CHECK_STR_CONTAINS(err.message, "is not valid UTF-8");
  const ckpt_meta twice[] = {{"k", "1"}, {"k", "2"}};
  CHECK_EQ_INT(ckpt_write(path, dup, 1, twice, 2, &err), KILN_ERR_INVALID);
  CHECK_STR_CONTAINS(err.message, "metadata key 'k' given twice");
  const ckpt_meta bad_value[] = {{"k", "\xff"}};
  CHECK_EQ_INT(ckpt_write(path, dup, 1, bad_value, 1, &err), KILN_ERR_INVALID);
  CHECK_STR_CONTAINS(err.message, "metadata 'k' is not valid UTF-8");
  CHECK_STR_CONTAINS(err.message, "bad.safetensors");
  CHECK_EQ_INT(file_size(path), -1); /* nothing was created */
  CHECK_EQ_INT(count_files(".tmp."), 0);
}

TEST(test_atomic_write) {
  kiln_error err = {0};
  static const int64_t one[] = {1};
  static const float x = 1;
  const ckpt_tensor t[] = {{"x", IR_F32, 1, one, &x}};

  /* No such directory: an I/O error naming the file and the reason. */
  const char *nodir = tmp_path("no-such-dir/ckpt.safetensors");
  CHECK_EQ_INT(ckpt_write(nodir, t, 1, NULL, 0, &err), KILN_ERR_IO);
  CHECK_STR_CONTAINS(err.message, "no-such-dir/ckpt.safetensors");
  CHECK_STR_CONTAINS(err.message, "No such file or directory");

  /* The target is a directory: the temporary file is written, the rename
   * fails, and the temporary must be gone. */
  const char *dir = tmp_path("a-directory");
  CHECK(mkdir(dir, 0755) == 0);
  CHECK_EQ_INT(ckpt_write(dir, t, 1, NULL, 0, &err), KILN_ERR_IO);
  CHECK_STR_CONTAINS(err.message, "cannot rename");
  CHECK_STR_CONTAINS(err.message, "a-directory");
  CHECK_EQ_INT(count_files(".tmp."), 0);
  rmdir(dir);

  /* Overwrite a large checkpoint with a small one: the result is the small
   * one, whole, with nothing of the old file left past its end. */
  const char *path = tmp_path("over.safetensors");
  enum { BIG = 1 << 16 };
  float *big = calloc(BIG, sizeof *big);
  const int64_t big_shape[] = {BIG};
  const ckpt_tensor bt[] = {{"big", IR_F32, 1, big_shape, big}};
  CHECK_EQ_INT(ckpt_write(path, bt, 1, NULL, 0, &err), KILN_OK);
  long before = file_size(path);
  CHECK(before > BIG * 4);
  CHECK_EQ_INT(ckpt_write(path, t, 1, NULL, 0, &err), KILN_OK);
  CHECK_EQ_INT(file_size(path), 8 + 56 + 4);
  ckpt_file f;
  CHECK_EQ_INT(ckpt_load(&f, path, &err), KILN_OK);
  CHECK_EQ_INT(f.n_tensors, 1);
  CHECK(ckpt_find(&f, "x") && !ckpt_find(&f, "big"));
  ckpt_file_free(&f);
  CHECK_EQ_INT(count_files(".tmp."), 0);
  free(big);

  /* Reading errors name the file too. */
  CHECK_EQ_INT(ckpt_load(&f, nodir, &err), KILN_ERR_IO);
  CHECK_STR_CONTAINS(err.message, "cannot open '");
  CHECK_STR_CONTAINS(err.message, "No such file or directory");
  CHECK_EQ_INT(ckpt_load(&f, tmpdir, &err), KILN_ERR_IO);
  CHECK_STR_CONTAINS(err.message, "not a regular file");
}

int main(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/kiln-test-ckpt-XXXXXX");
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    return 1;
  }
  RUN(test_dtype_names);
  RUN(test_round_trip);
  RUN(test_exact_bytes);
  RUN(test_malformed);
  RUN(test_valid_foreign);
  RUN(test_truncated_and_corrupted);
  RUN(test_write_errors);
  RUN(test_atomic_write);
  clean_tmpdir();
  rmdir(tmpdir);
  return TEST_SUMMARY();
}
