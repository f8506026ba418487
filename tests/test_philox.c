/* test_philox.c — Philox4x32-10 against Random123's published known answers,
 * the exactness of the float conversion, the (seed, stream, index) mapping
 * that the code generators must reproduce, and the statistics of a million
 * draws (fixed seed, so the bounds are deterministic, never flaky). */
#include "support/support.h"
#include "test.h"

#include <stdlib.h>

typedef struct kat {
  int rounds;
  uint32_t ctr[4], key[2], want[4];
} kat;

/* Random123 tests/kat_vectors (DEShawResearch/random123), the philox4x32
 * lines; columns there are name, rounds, CTR[4], KEY[2], EXPECTED[4]:
 *   philox4x32 7  00000000 x4  00000000 x2  5f6fb709 0d893f64 4f121f81 4f730a48
 *   ...
 *   philox4x32 10 243f6a88 85a308d3 13198a2e 03707344 a4093822 299f31d0
 *                 d16cfe09 94fdcceb 5001e420 24126ea1
 * The last inputs are the hex digits of pi. The same lines are quoted,
 * unchanged, by several independent implementations. */
static const kat kats[] = {
    {7,
     {0x00000000, 0x00000000, 0x00000000, 0x00000000},
     {0x00000000, 0x00000000},
     {0x5f6fb709, 0x0d893f64, 0x4f121f81, 0x4f730a48}},
    {7,
     {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
     {0xffffffff, 0xffffffff},
     {0x5207ddc2, 0x45165e59, 0x4d8ee751, 0x8c52f662}},
    {7,
     {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
     {0xa4093822, 0x299f31d0},
     {0x4dfccaba, 0x190a87f0, 0xc47362ba, 0xb6b5242a}},
    {10,
     {0x00000000, 0x00000000, 0x00000000, 0x00000000},
     {0x00000000, 0x00000000},
     {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
    {10,
     {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
     {0xffffffff, 0xffffffff},
     {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
    {10,
     {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
     {0xa4093822, 0x299f31d0},
     {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
};

TEST(test_known_answers) {
  for (size_t i = 0; i < ARRAY_LEN(kats); i++) {
    const kat *k = &kats[i];
    uint32_t out[4];
    philox4x32_r(k->rounds, k->ctr, k->key, out);
    for (int w = 0; w < 4; w++)
      CHECK_EQ_INT(out[w], k->want[w]);
    if (k->rounds == 10) {
      uint32_t out10[4] = {0};
      philox4x32_10(k->ctr, k->key, out10);
      for (int w = 0; w < 4; w++)
        CHECK_EQ_INT(out10[w], k->want[w]);
    }
  }
}

/* The inputs are const: the function must not write through them. */
TEST(test_inputs_untouched) {
  const uint32_t ctr[4] = {1, 2, 3, 4}, key[2] = {5, 6};
  uint32_t c[4] = {1, 2, 3, 4}, k[2] = {5, 6}, out[4];
  philox4x32_10(c, k, out);
  for (int i = 0; i < 4; i++)
    CHECK_EQ_INT(c[i], ctr[i]);
  CHECK_EQ_INT(k[0], key[0]);
  CHECK_EQ_INT(k[1], key[1]);
}

TEST(test_uniform_conversion) {
  CHECK(philox_to_uniform(0) == 0.0f);
  CHECK(philox_to_uniform(0xffu) == 0.0f); /* the low 8 bits are dropped */
  CHECK(philox_to_uniform(0x100u) == 0x1p-24f);
  CHECK(philox_to_uniform(0x80000000u) == 0.5f);
  CHECK(philox_to_uniform(0xffffffffu) == 1.0f - 0x1p-24f);
  CHECK(philox_to_uniform(0xffffffffu) < 1.0f);
  /* Monotonic in x, and exactly m * 2^-24 for m = x >> 8. */
  uint32_t x = 0x9e3779b9u;
  for (int i = 0; i < 1000; i++, x = x * 1664525u + 1013904223u) {
    float u = philox_to_uniform(x);
    CHECK((double)u * 16777216.0 == (double)(x >> 8));
    if (x < 0xffffffffu)
      CHECK(philox_to_uniform(x + 1) >= u);
  }
}

/* The stream mapping is a contract with the CUDA and LLVM renderers. Seed 0,
 * stream 0, indices 0..3 are the all-zero known answer (counter 0, key 0);
 * the other values were computed by an independent Python implementation
 * of the mapping documented in philox.c and are pinned so that any change
 * to it fails here before it makes CPU and GPU masks disagree. */
TEST(test_stream_mapping_pinned) {
  for (int i = 0; i < 4; i++)
    CHECK_EQ_INT(philox_u32(0, 0, (uint64_t)i), kats[3].want[i]);
  CHECK_EQ_INT(
      philox_u32(0x0123456789abcdefu, 0xfedcba9876543210u, 0x123456789u),
      0xf3b3ebacu);
  CHECK_EQ_INT(philox_u32(42, 1, 5), 0xfdd21d94u);
  CHECK(philox_uniform(42, 7, 1000) ==
        philox_to_uniform(philox_u32(42, 7, 1000)));
  CHECK_NEAR(philox_uniform(42, 7, 1000), 0.838188111782074, 1e-12);
}

/* Index 4b + j is word j of block b; the counter's words are the block and
 * the stream, the key's the seed. */
TEST(test_stream_mapping_structure) {
  const uint64_t seed = 0xdeadbeefcafef00du, stream = 0x0000000700000003u;
  for (uint64_t b = 0; b < 64; b++) {
    uint64_t block = b * 0x10000001u; /* reaches the high counter word */
    uint32_t words[4], direct[4];
    philox_block(seed, stream, block, words);
    const uint32_t ctr[4] = {(uint32_t)block, (uint32_t)(block >> 32),
                             (uint32_t)stream, (uint32_t)(stream >> 32)};
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    philox4x32_10(ctr, key, direct);
    for (int j = 0; j < 4; j++) {
      CHECK_EQ_INT(words[j], direct[j]);
      CHECK_EQ_INT(philox_u32(seed, stream, 4 * block + (uint64_t)j), words[j]);
    }
  }
  /* Every 32-bit half of every 64-bit input changes the output. */
  uint32_t base = philox_u32(seed, stream, 12345);
  CHECK(philox_u32(seed ^ 1, stream, 12345) != base);
  CHECK(philox_u32(seed ^ (1ull << 40), stream, 12345) != base);
  CHECK(philox_u32(seed, stream ^ 1, 12345) != base);
  CHECK(philox_u32(seed, stream ^ (1ull << 40), 12345) != base);
  CHECK(philox_u32(seed, stream, 12345 ^ (1ull << 40)) != base);
  CHECK(philox_u32(seed, stream, 12345) == base); /* and it is a function */
}

enum { N_DRAWS = 1000000, N_BINS = 256 };

/* Pearson's statistic over N_BINS bins with N_DRAWS / N_BINS expected each.
 * With 255 degrees of freedom the Wilson-Hilferty approximation puts the
 * 5-sigma quantiles at about 157 and 385. Too small a value fails as well:
 * a generator that returned its counter would fill the bins evenly. */
static double chi_square(const int *counts, int bins, double n) {
  double expect = n / bins, chi2 = 0;
  for (int i = 0; i < bins; i++) {
    double d = counts[i] - expect;
    chi2 += d * d / expect;
  }
  return chi2;
}

TEST(test_uniform_statistics) {
  const uint64_t seed = 20111112u, stream = 3;
  int *counts = calloc(N_BINS, sizeof *counts);
  int *pairs = calloc(N_BINS, sizeof *pairs);
  CHECK(counts && pairs);
  if (!counts || !pairs) {
    free(counts);
    free(pairs);
    return;
  }
  double sum = 0;
  int out_of_range = 0;
  float prev = 0;
  for (uint64_t i = 0; i < N_DRAWS; i++) {
    float u = philox_uniform(seed, stream, i);
    if (!(u >= 0.0f && u < 1.0f))
      out_of_range++;
    sum += u;
    counts[(int)(u * N_BINS)]++;
    /* Consecutive draws (the four words of one block among them) on a
     * 16 x 16 grid: catches correlation inside a block. */
    if (i % 2 == 1)
      pairs[(int)(prev * 16) * 16 + (int)(u * 16)]++;
    prev = u;
  }
  CHECK_EQ_INT(out_of_range, 0);
  /* The standard error of the mean is 0.2887 / 1000. */
  CHECK_NEAR(sum / N_DRAWS, 0.5, 0.0015);
  double c1 = chi_square(counts, N_BINS, N_DRAWS);
  double c2 = chi_square(pairs, N_BINS, N_DRAWS / 2);
  CHECK(c1 > 157 && c1 < 385);
  CHECK(c2 > 157 && c2 < 385);
  if (!(c1 > 157 && c1 < 385 && c2 > 157 && c2 < 385))
    fprintf(stderr, "chi-square: %.1f (bins), %.1f (pairs)\n", c1, c2);
  free(counts);
  free(pairs);
}

/* Two streams of one seed must look independent: their correlation over a
 * million draws is within 5 standard errors (5 / sqrt(n)) of zero. */
TEST(test_streams_uncorrelated) {
  double sa = 0, sb = 0, sab = 0, saa = 0, sbb = 0;
  for (uint64_t i = 0; i < N_DRAWS; i++) {
    double a = philox_uniform(7, 0, i), b = philox_uniform(7, 1, i);
    sa += a;
    sb += b;
    sab += a * b;
    saa += a * a;
    sbb += b * b;
  }
  double n = N_DRAWS;
  double cov = sab / n - (sa / n) * (sb / n);
  double va = saa / n - (sa / n) * (sa / n), vb = sbb / n - (sb / n) * (sb / n);
  CHECK_NEAR(cov / sqrt(va * vb), 0.0, 5.0 / 1000.0);
}

int main(void) {
  RUN(test_known_answers);
  RUN(test_inputs_untouched);
  RUN(test_uniform_conversion);
  RUN(test_stream_mapping_pinned);
  RUN(test_stream_mapping_structure);
  RUN(test_uniform_statistics);
  RUN(test_streams_uncorrelated);
  return TEST_SUMMARY();
}
