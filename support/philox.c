/* philox.c — Philox4x32-10, the counter-based random number generator that
 * kiln uses wherever the CPU and the GPU must draw the same numbers (dropout
 * masks regenerated in the backward pass, weight initialisation).
 *
 * Reference: J. K. Salmon, M. A. Moraes, R. O. Dror, D. E. Shaw, "Parallel
 * random numbers: as easy as 1, 2, 3", SC11 (2011); the same function as
 * Random123's philox4x32 with R = 10 and as cuRAND's Philox4_32_10 block
 * function. tests/test_philox.c checks it against Random123's known-answer
 * vectors (tests/kat_vectors).
 *
 * A counter-based generator is a keyed bijection of a 128-bit counter: it
 * has no state, so element i of a dropout mask is a pure function of
 * (seed, stream, i). The mask therefore does not depend on kernel order,
 * on the thread that draws it, or on how the batch is split across ranks,
 * and the backward pass recomputes it instead of storing it.
 *
 * Everything here uses only 32-bit and 64-bit unsigned integer arithmetic
 * (wrap-around is defined in C and in CUDA) and one exact float conversion,
 * so the CUDA and LLVM code generators can reproduce every bit. */
#include "support/support.h"

/* Round multipliers and Weyl key increments (Salmon et al., table 2;
 * Random123's PHILOX_M4x32_0/1 and PHILOX_W32_0/1). */
enum {
  PHILOX_M0 = 0xD2511F53u,
  PHILOX_M1 = 0xCD9E8D57u,
};
static const uint32_t philox_w0 = 0x9E3779B9u; /* golden ratio */
static const uint32_t philox_w1 = 0xBB67AE85u; /* sqrt(3) - 1 */

/* One round: two 32x32->64 multiplications (CUDA: __umulhi for the high
 * half, an ordinary multiply for the low half), then the Feistel-like
 * exchange of the four words, exactly as Random123's _philox4x32round:
 *   out = { hi(M1*c2) ^ c1 ^ k0, lo(M1*c2), hi(M0*c0) ^ c3 ^ k1, lo(M0*c0) } */
static void philox_round(uint32_t c[4], uint32_t k0, uint32_t k1) {
  uint64_t p0 = (uint64_t)PHILOX_M0 * c[0];
  uint64_t p1 = (uint64_t)PHILOX_M1 * c[2];
  uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
  uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
  uint32_t c1 = c[1], c3 = c[3];
  c[0] = hi1 ^ c1 ^ k0;
  c[1] = lo1;
  c[2] = hi0 ^ c3 ^ k1;
  c[3] = lo0;
}

/* The key is bumped by the Weyl increments between rounds, never before
 * the first: round r uses key + r * W (mod 2^32). */
void philox4x32_r(int rounds, const uint32_t ctr[4], const uint32_t key[2],
                  uint32_t out[4]) {
  KILN_ASSERT(rounds >= 1 && rounds <= 16);
  uint32_t c[4] = {ctr[0], ctr[1], ctr[2], ctr[3]};
  uint32_t k0 = key[0], k1 = key[1];
  for (int r = 0; r < rounds; r++) {
    if (r > 0) {
      k0 += philox_w0;
      k1 += philox_w1;
    }
    philox_round(c, k0, k1);
  }
  for (int i = 0; i < 4; i++)
    out[i] = c[i];
}

void philox4x32_10(const uint32_t ctr[4], const uint32_t key[2],
                   uint32_t out[4]) {
  philox4x32_r(10, ctr, key, out);
}

/* The top 24 bits of x as an integer m in [0, 2^24), times 2^-24. A float
 * has a 24-bit significand, so m converts exactly and the multiplication
 * by a power of two is exact too: no rounding mode, FMA contraction or
 * fast-math flag can change the result, and the CUDA rendering
 *     (float)(x >> 8) * 5.9604644775390625e-8f      (0x1p-24f)
 * gives the same bits. The range is {0, 2^-24, ..., 1 - 2^-24}: 0 can
 * occur, 1 cannot, so `u < p` keeps an element with probability exactly
 * round(p * 2^24) / 2^24. */
float philox_to_uniform(uint32_t x) {
  return (float)(x >> 8) * 0x1p-24f;
}

/* The keyed stream. The mapping, which the code generators must reproduce
 * word for word:
 *
 *   key     = { lo32(seed), hi32(seed) }
 *   block   = index >> 2                          (index / 4)
 *   counter = { lo32(block), hi32(block), lo32(stream), hi32(stream) }
 *   word    = philox4x32_10(counter, key)[index & 3]
 *
 * Four consecutive indices share one Philox call, so a GPU thread that
 * handles four adjacent elements (4*b .. 4*b+3) computes one block and uses
 * all four words, as cuRAND's curand_uniform4 does; a thread that handles
 * one element computes its block and picks word index & 3. Both give the
 * same numbers. Distinct (stream, index) pairs never share a word: the
 * counter words are the block and the stream verbatim, and Philox is a
 * bijection of the counter for a fixed key.
 *
 * `stream` names what the numbers are for. Dropout uses one stream per
 * (layer, step) pair; its packing of the two into 64 bits is dropout's to
 * define, not this file's. */
void philox_block(uint64_t seed, uint64_t stream, uint64_t block,
                  uint32_t out[4]) {
  const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
  const uint32_t ctr[4] = {(uint32_t)block, (uint32_t)(block >> 32),
                           (uint32_t)stream, (uint32_t)(stream >> 32)};
  philox4x32_10(ctr, key, out);
}

uint32_t philox_u32(uint64_t seed, uint64_t stream, uint64_t index) {
  uint32_t out[4];
  philox_block(seed, stream, index >> 2, out);
  return out[index & 3];
}

float philox_uniform(uint64_t seed, uint64_t stream, uint64_t index) {
  return philox_to_uniform(philox_u32(seed, stream, index));
}
