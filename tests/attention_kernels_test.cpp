// The attention kernels (attention_kernels.h): the AVX2 tile kernel gives the scalar contract's
// bits on every shape (head sizes with and without a tail of 8, groups, runs of tokens, short
// contexts and contexts of several chunks, F16 and F32 caches); a row's result does not depend on how rows are tiled;
// both are within f32 rounding of exact attention computed in double; F16 stores bit for bit.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "backend/cpu/attention_kernels.h"
#include "quant/ref.h"
#include "util/cpu_features.h"

namespace plumb::cpu {
namespace {

struct Case {
  int64_t head_dim_k, head_dim_v, group, n_tokens, n_kv0;
  bool f16;
};

// Random queries and cache (keys and values as F16 bits and as floats) for one KV head, laid out
// as the backend lays them out: a cache row holds n_kv_heads heads, the query row n_head heads.
struct Problem {
  Case c;
  int64_t n_kv;
  std::vector<float> q, k32, v32;
  std::vector<uint16_t> k16, v16;
  int64_t k_stride, v_stride, q_stride, out_stride;

  explicit Problem(const Case& cs, uint32_t seed) : c(cs) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist(0.0f, 1.5f);
    n_kv = c.n_kv0 + c.n_tokens - 1;
    k_stride = c.head_dim_k * 2 + 3;  // other heads around this one
    v_stride = c.head_dim_v * 2 + 5;
    q_stride = c.group * c.head_dim_k + 7;
    out_stride = c.group * c.head_dim_v + 2;
    q.resize(static_cast<size_t>(c.n_tokens * q_stride));
    for (auto& x : q) x = dist(rng);
    k16.resize(static_cast<size_t>(n_kv * k_stride));
    v16.resize(static_cast<size_t>(n_kv * v_stride));
    for (auto& x : k16) x = fp32_to_fp16(dist(rng));
    for (auto& x : v16) x = fp32_to_fp16(dist(rng));
    for (auto x : k16) k32.push_back(fp16_to_fp32(x));
    for (auto x : v16) v32.push_back(fp16_to_fp32(x));
  }

  AttentionTile tile(std::vector<float>& out, int64_t t0, int64_t n_tokens) const {
    AttentionTile a;
    a.k = c.f16 ? static_cast<const void*>(k16.data()) : k32.data();
    a.v = c.f16 ? static_cast<const void*>(v16.data()) : v32.data();
    a.f16 = c.f16;
    a.k_stride = k_stride;
    a.v_stride = v_stride;
    a.head_dim_k = c.head_dim_k;
    a.head_dim_v = c.head_dim_v;
    a.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim_k));
    a.q = q.data() + t0 * q_stride;
    a.q_stride = q_stride;
    out.resize(static_cast<size_t>(c.n_tokens * out_stride), -7.0f);
    a.out = out.data() + t0 * out_stride;
    a.out_stride = out_stride;
    a.group = c.group;
    a.n_tokens = n_tokens;
    a.n_kv0 = c.n_kv0 + t0;
    return a;
  }

  std::vector<float> run(const AttentionKernels& kern) const {
    std::vector<float> out;
    AttentionScratch scratch;
    kern.attend(tile(out, 0, c.n_tokens), scratch);
    return out;
  }
};

std::vector<Case> cases() {
  std::vector<Case> all;
  for (bool f16 : {true, false}) {
    all.push_back({32, 32, 2, 64, 1, f16});     // austen-21m: a prompt into an empty cache
    all.push_back({32, 32, 2, 1, 300, f16});    // a generation step
    all.push_back({64, 64, 4, 17, 90, f16});
    all.push_back({8, 8, 2, 9, 1, f16});        // stories260K-sized heads
    all.push_back({20, 12, 3, 7, 33, f16});     // head sizes with tails of 8, V narrower than K
    all.push_back({128, 128, 1, 5, 130, f16});  // no GQA, head size 128
    all.push_back({40, 72, 8, 3, 15, f16});
    all.push_back({64, 64, 8, 9, 100, f16});    // TinyLlama: 8 query heads a KV head
    all.push_back({48, 48, 4, 5, 47, f16});     // value rows of 32 + 16
    // Contexts of several chunks (kAttentionChunk): a prompt whose rows cross a chunk's end, a
    // generation step deep in the cache, a prompt at depth with a partial last chunk.
    all.push_back({32, 32, 2, 300, 1, f16});
    all.push_back({64, 64, 8, 1, 1000, f16});
    all.push_back({128, 128, 4, 6, 509, f16});
    all.push_back({20, 12, 3, 3, 769, f16});
  }
  return all;
}

void expect_scalar_bits(const AttentionKernels& fast, uint32_t seed) {
  for (const Case& c : cases()) {
    const Problem p(c, seed++);
    const std::vector<float> ref = p.run(attention_kernels_scalar());
    const std::vector<float> got = p.run(fast);
    ASSERT_EQ(ref.size(), got.size());
    for (size_t i = 0; i < ref.size(); ++i) {
      ASSERT_EQ(std::bit_cast<uint32_t>(ref[i]), std::bit_cast<uint32_t>(got[i]))
          << "hd " << c.head_dim_k << "/" << c.head_dim_v << " group " << c.group << " tokens " << c.n_tokens
          << " n_kv0 " << c.n_kv0 << (c.f16 ? " f16" : " f32") << " at " << i << ": " << ref[i] << " vs " << got[i];
    }
  }
}

TEST(AttentionKernels, Avx2MatchesScalarBitForBit) {
  if (!cpu_has_avx2_fma_f16c()) GTEST_SKIP() << "CPU without AVX2/FMA/F16C: only the scalar kernels run here";
  expect_scalar_bits(attention_kernels_avx2(), 1);
}

TEST(AttentionKernels, Avx512MatchesScalarBitForBit) {
  if (!cpu_has_avx512_vnni()) GTEST_SKIP() << "CPU without AVX-512: the AVX-512 attention loops do not run here";
  expect_scalar_bits(attention_kernels_avx512(), 1);
}

TEST(AttentionKernels, RowsDoNotDependOnTiling) {
  uint32_t seed = 100;
  for (const Case& c : cases()) {
    const Problem p(c, seed++);
    const AttentionKernels& kern = attention_kernels();
    const std::vector<float> whole = p.run(kern);
    std::vector<float> split;
    AttentionScratch scratch;
    for (int64_t t = 0; t < c.n_tokens; t += 3) kern.attend(p.tile(split, t, std::min<int64_t>(3, c.n_tokens - t)), scratch);
    ASSERT_EQ(whole.size(), split.size());
    for (size_t i = 0; i < whole.size(); ++i) ASSERT_EQ(whole[i], split[i]) << i;
  }
}

// A row's chunks computed apart (attend_chunk, as threads take them) and folded in order give
// attend()'s bits, at every level.
TEST(AttentionKernels, ChunksApartFoldToTheBitsOfAttend) {
  std::vector<const AttentionKernels*> levels{&attention_kernels_scalar()};
  if (cpu_has_avx2_fma_f16c()) levels.push_back(&attention_kernels_avx2());
  if (cpu_has_avx512_vnni()) levels.push_back(&attention_kernels_avx512());
  uint32_t seed = 300;
  for (const Case& c : cases()) {
    const Problem p(c, seed++);
    for (const AttentionKernels* kern : levels) {
      const std::vector<float> whole = p.run(*kern);
      const int64_t rows = c.n_tokens * c.group, n_kv_max = c.n_kv0 + c.n_tokens - 1;
      const int64_t chunks = (n_kv_max + kAttentionChunk - 1) / kAttentionChunk;
      std::vector<float> max(static_cast<size_t>(chunks * rows)), chains(static_cast<size_t>(chunks * rows * c.head_dim_v));
      std::vector<double> sum(static_cast<size_t>(chunks * rows));
      std::vector<float> out;
      AttentionScratch scratch;
      const AttentionTile tile = p.tile(out, 0, c.n_tokens);
      for (int64_t k = 0; k < chunks; ++k) {
        kern->attend_chunk(tile, k, scratch,
                           ChunkParts{max.data() + k * rows, sum.data() + k * rows,
                                      chains.data() + k * rows * c.head_dim_v, c.head_dim_v});
      }
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t t = r / c.group, j = r % c.group, n = (c.n_kv0 + t + kAttentionChunk - 1) / kAttentionChunk;
        std::vector<float> f(static_cast<size_t>(n)), total(static_cast<size_t>(c.head_dim_v));
        std::vector<double> sums(static_cast<size_t>(n));
        for (int64_t k = 0; k < n; ++k) f[k] = max[k * rows + r], sums[k] = sum[k * rows + r];
        const float inv_sum = static_cast<float>(1.0 / fold_chunk_sums(f.data(), sums.data(), n));
        for (int64_t k = 0; k < n; ++k) {
          fold_chunk_chains(total.data(), chains.data() + (k * rows + r) * c.head_dim_v, f[k], k == 0, c.head_dim_v);
        }
        for (int64_t d = 0; d < c.head_dim_v; ++d) {
          const size_t at = static_cast<size_t>(t * p.out_stride + j * c.head_dim_v + d);
          ASSERT_EQ(std::bit_cast<uint32_t>(whole[at]), std::bit_cast<uint32_t>(total[d] * inv_sum))
              << "hd " << c.head_dim_k << " group " << c.group << " tokens " << c.n_tokens << " n_kv0 " << c.n_kv0
              << " row " << r << " d " << d;
        }
      }
    }
  }
}

TEST(AttentionKernels, WithinF32RoundingOfExactAttention) {
  uint32_t seed = 200;
  for (const Case& c : cases()) {
    const Problem p(c, seed++);
    const std::vector<float> got = p.run(attention_kernels());
    const float* k = p.k32.data();
    const float* v = p.v32.data();
    const double scale = 1.0 / std::sqrt(static_cast<double>(c.head_dim_k));
    double worst = 0;
    for (int64_t t = 0; t < c.n_tokens; ++t) {
      for (int64_t j = 0; j < c.group; ++j) {
        const float* q = p.q.data() + t * p.q_stride + j * c.head_dim_k;
        const int64_t n_kv = c.n_kv0 + t;
        std::vector<double> s(static_cast<size_t>(n_kv));
        double m = -INFINITY;
        for (int64_t i = 0; i < n_kv; ++i) {
          double dot = 0;
          for (int64_t d = 0; d < c.head_dim_k; ++d) dot += static_cast<double>(q[d]) * k[i * p.k_stride + d];
          s[static_cast<size_t>(i)] = dot * static_cast<double>(static_cast<float>(scale));
          m = std::max(m, s[static_cast<size_t>(i)]);
        }
        double sum = 0;
        for (auto& x : s) sum += (x = std::exp(x - m));
        for (int64_t d = 0; d < c.head_dim_v; ++d) {
          double exact = 0, mag = 0;
          for (int64_t i = 0; i < n_kv; ++i) {
            exact += s[static_cast<size_t>(i)] * v[i * p.v_stride + d];
            mag += s[static_cast<size_t>(i)] * std::fabs(v[i * p.v_stride + d]);
          }
          const double out = got[static_cast<size_t>(t * p.out_stride + j * c.head_dim_v + d)];
          // f32 rounding of scores (relative to |q|.|k|, amplified by |score|) and of the
          // weighted sum, relative to sum p |v|.
          worst = std::max(worst, std::fabs(out - exact / sum) / (mag / sum));
        }
      }
    }
    EXPECT_LT(worst, 2e-5) << "hd " << c.head_dim_k << " group " << c.group << " tokens " << c.n_tokens;
  }
}

TEST(AttentionKernels, F16StoresMatchScalarBitForBit) {
  if (!cpu_has_avx2_fma_f16c()) GTEST_SKIP() << "CPU without AVX2/FMA/F16C: only the scalar kernels run here";
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0.0f, 2.0f);
  for (int64_t n : {1, 7, 8, 31, 32, 100}) {
    std::vector<float> x(static_cast<size_t>(n));
    for (auto& e : x) e = dist(rng);
    x[0] = 70000.0f;  // overflows F16
    std::vector<uint16_t> ref(static_cast<size_t>(n)), fast(static_cast<size_t>(n));
    attention_kernels_scalar().to_f16(x.data(), ref.data(), n);
    attention_kernels_avx2().to_f16(x.data(), fast.data(), n);
    EXPECT_EQ(ref, fast) << "n = " << n;
  }
}

}  // namespace
}  // namespace plumb::cpu
