/* nvrtc_cache.c — compiled kernels on disk, so a second run of the same
 * model skips NVRTC.
 *
 * Key: 128-bit FNV-1a over every input that changes the binary (the
 * source, each option — the architecture among them —, NVRTC's version
 * and the entry format), each part followed by a NUL so that no two lists
 * of parts run together into the same bytes. Peers that keyed on less got
 * stale kernels; 128 bits make an accidental collision negligible (this is
 * not a defence against someone writing the cache directory).
 *
 * Entry: "<dir>/<32 hex digits of the key>.cubin" holding
 *   magic "KILNCUB1" | key (hi, lo) | payload size | FNV-1a 64 of the payload
 *   | payload
 * (integers as 8 little-endian bytes). A reader checks all four, so a
 * truncated, corrupt or foreign file is a miss, recompiled and rewritten.
 * Writers go through a temporary file in the same directory and rename(2)
 * it into place: concurrent compiles of the same kernel (parallel jobs,
 * two processes) each publish a whole file and the last one wins. */
#include "codegen/cuda/cuda.h"

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char magic[8] = {'K', 'I', 'L', 'N', 'C', 'U', 'B', '1'};
enum { HEADER = 40 };

/* ---- hashing ---- */

/* FNV-1a 128: offset basis 0x6c62272e07bb014262b821756295c58d, prime
 * 2^88 + 0x13b. */
cg_cuda_key cg_cuda_key_of(const char *const *parts, int n) {
  unsigned __int128 h =
      ((unsigned __int128)0x6c62272e07bb0142u << 64) | 0x62b821756295c58du;
  const unsigned __int128 prime = ((unsigned __int128)1 << 88) | 0x13bu;
  for (int i = 0; i < n; i++) {
    const unsigned char *p = (const unsigned char *)(parts[i] ? parts[i] : "");
    for (;; p++) {
      h = (h ^ *p) * prime;
      if (!*p)
        break;
    }
  }
  return (cg_cuda_key){.hi = (uint64_t)(h >> 64), .lo = (uint64_t)h};
}

static uint64_t fnv64(const void *data, size_t n) {
  const unsigned char *p = data;
  uint64_t h = 0xcbf29ce484222325u;
  for (size_t i = 0; i < n; i++)
    h = (h ^ p[i]) * 0x100000001b3u;
  return h;
}

static void put_u64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_u64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v |= (uint64_t)p[i] << (8 * i);
  return v;
}

/* ---- where ---- */

const char *cg_cuda_cache_dir(const cg_cuda_opts *o, char *buf, size_t len) {
  const char *env;
  int n;
  if (o->cache_dir && o->cache_dir[0])
    n = snprintf(buf, len, "%s", o->cache_dir);
  else if ((env = getenv("KILN_CACHE_DIR")) && env[0])
    n = snprintf(buf, len, "%s", env);
  else if ((env = getenv("XDG_CACHE_HOME")) && env[0])
    n = snprintf(buf, len, "%s/kiln", env);
  else if ((env = getenv("HOME")) && env[0])
    n = snprintf(buf, len, "%s/.cache/kiln", env);
  else
    return NULL;
  return n > 0 && (size_t)n < len ? buf : NULL;
}

void cg_cuda_cache_path(const char *dir, cg_cuda_key key, char *buf,
                        size_t len) {
  snprintf(buf, len, "%s/%016" PRIx64 "%016" PRIx64 ".cubin", dir, key.hi,
           key.lo);
}

/* mkdir -p; true when the directory exists afterwards. */
static bool make_dirs(const char *dir) {
  char path[1024];
  int n = snprintf(path, sizeof path, "%s", dir);
  if (n <= 0 || (size_t)n >= sizeof path)
    return false;
  for (char *p = path + 1; *p; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
      return false;
    *p = '/';
  }
  if (mkdir(path, 0755) != 0 && errno != EEXIST)
    return false;
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* ---- reading and writing ---- */

bool cg_cuda_cache_read(const char *dir, cg_cuda_key key, void **data,
                        size_t *size) {
  char path[1100];
  cg_cuda_cache_path(dir, key, path, sizeof path);
  FILE *f = fopen(path, "rb");
  if (!f)
    return false;
  unsigned char h[HEADER];
  bool ok = fread(h, 1, HEADER, f) == HEADER &&
            memcmp(h, magic, sizeof magic) == 0 && get_u64(h + 8) == key.hi &&
            get_u64(h + 16) == key.lo;
  uint64_t n = ok ? get_u64(h + 24) : 0;
  ok = ok && n > 0 && n < ((uint64_t)1 << 32);
  void *buf = ok ? malloc((size_t)n) : NULL;
  int extra = 0;
  ok = ok && buf && fread(buf, 1, (size_t)n, f) == n &&
       (extra = fgetc(f)) == EOF && fnv64(buf, (size_t)n) == get_u64(h + 32);
  fclose(f);
  if (!ok) {
    free(buf);
    return false;
  }
  *data = buf;
  *size = (size_t)n;
  return true;
}

bool cg_cuda_cache_write(const char *dir, cg_cuda_key key, const void *data,
                         size_t size) {
  static atomic_uint counter;
  if (!make_dirs(dir))
    return false;
  char path[1100], tmp[1200];
  cg_cuda_cache_path(dir, key, path, sizeof path);
  /* Unique per process and per call, so parallel writers never share a
   * temporary file. */
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%u", path, (long)getpid(),
           atomic_fetch_add(&counter, 1u));
  unsigned char h[HEADER];
  memcpy(h, magic, sizeof magic);
  put_u64(h + 8, key.hi);
  put_u64(h + 16, key.lo);
  put_u64(h + 24, size);
  put_u64(h + 32, fnv64(data, size));
  FILE *f = fopen(tmp, "wb");
  if (!f)
    return false;
  bool ok = fwrite(h, 1, HEADER, f) == HEADER &&
            fwrite(data, 1, size, f) == size && fflush(f) == 0;
  ok = fclose(f) == 0 && ok;
  if (!ok || rename(tmp, path) != 0) {
    remove(tmp);
    return false;
  }
  return true;
}
