#include "backend/cpu/attention_kernels.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "backend/cpu/matmul_internal.h"
#include "quant/ref.h"
#include "util/exp_f32.h"
#include "util/partial_sums.h"

namespace plumb::cpu {

namespace {

// All 65536 half-precision values as floats: reading the F16 cache is one load per element.
const float* fp16_table() {
  static const std::vector<float> table = [] {
    std::vector<float> t(65536);
    for (uint32_t i = 0; i < 65536; ++i) t[i] = fp16_to_fp32(static_cast<uint16_t>(i));
    return t;
  }();
  return table.data();
}

// Element d of cache row p.
struct CacheRows {
  const void* base;
  bool f16;
  int64_t stride;
  float at(int64_t p, int64_t d) const {
    if (f16) return fp16_table()[static_cast<const uint16_t*>(base)[p * stride + d]];
    return static_cast<const float*>(base)[p * stride + d];
  }
};

// Chunk c of one query row (its n_kv cache rows): s[0 ..) the chunk's probabilities, acc its
// value chains; *max and the returned sum its m_c and sum_c.
double row_chunk(const AttentionTile& a, const float* q, int64_t n_kv, int64_t c, float* s, float* acc, float* max) {
  const CacheRows k{a.k, a.f16, a.k_stride};
  const CacheRows v{a.v, a.f16, a.v_stride};
  const int64_t p0 = c * kAttentionChunk, p1 = std::min(n_kv, p0 + kAttentionChunk);
  float mc = -std::numeric_limits<float>::infinity();
  for (int64_t p = p0; p < p1; ++p) {
    float dot = 0.0f;
    for (int64_t d = 0; d < a.head_dim_k; ++d) dot = std::fma(q[d], k.at(p, d), dot);
    s[p - p0] = dot * a.scale;
    mc = std::max(mc, s[p - p0]);
  }
  double partial[8] = {};
  for (int64_t p = p0; p < p1; ++p) {
    s[p - p0] = exp_f32(s[p - p0] - mc);
    partial[p % 8] += s[p - p0];
  }
  std::fill(acc, acc + a.head_dim_v, 0.0f);
  for (int64_t p = p0; p < p1; ++p) {
    for (int64_t d = 0; d < a.head_dim_v; ++d) acc[d] = std::fma(s[p - p0], v.at(p, d), acc[d]);
  }
  *max = mc;
  return combine_partial_sums(partial);
}

// The contract of attention_kernels.h, one query row at a time.
void attend(const AttentionTile& a, AttentionScratch& scratch) {
  const int64_t n_kv_max = a.n_kv0 + a.n_tokens - 1;
  const int64_t max_chunks = (n_kv_max + kAttentionChunk - 1) / kAttentionChunk;
  scratch.scores.resize(static_cast<size_t>(kAttentionChunk));
  scratch.acc.resize(static_cast<size_t>(max_chunks * a.head_dim_v));
  scratch.total.resize(static_cast<size_t>(a.head_dim_v));
  scratch.chunk_max.resize(static_cast<size_t>(max_chunks));
  scratch.chunk_sums.resize(static_cast<size_t>(max_chunks));
  float* total = scratch.total.data();
  for (int64_t t = 0; t < a.n_tokens; ++t) {
    const int64_t n_kv = a.n_kv0 + t;
    const int64_t chunks = (n_kv + kAttentionChunk - 1) / kAttentionChunk;
    for (int64_t j = 0; j < a.group; ++j) {
      const float* q = a.q + t * a.q_stride + j * a.head_dim_k;
      for (int64_t c = 0; c < chunks; ++c) {
        scratch.chunk_sums[static_cast<size_t>(c)] = row_chunk(a, q, n_kv, c, scratch.scores.data(),
                                                               scratch.acc.data() + c * a.head_dim_v,
                                                               &scratch.chunk_max[static_cast<size_t>(c)]);
      }
      const double sum = fold_chunk_sums(scratch.chunk_max.data(), scratch.chunk_sums.data(), chunks);
      for (int64_t c = 0; c < chunks; ++c) {
        fold_chunk_chains(total, scratch.acc.data() + c * a.head_dim_v, scratch.chunk_max[static_cast<size_t>(c)],
                          c == 0, a.head_dim_v);
      }
      const float inv_sum = static_cast<float>(1.0 / sum);
      float* out = a.out + t * a.out_stride + j * a.head_dim_v;
      for (int64_t d = 0; d < a.head_dim_v; ++d) out[d] = total[d] * inv_sum;
    }
  }
}

void attend_chunk(const AttentionTile& a, int64_t c, AttentionScratch& scratch, const ChunkParts& out) {
  scratch.scores.resize(static_cast<size_t>(kAttentionChunk));
  for (int64_t t = 0; t < a.n_tokens; ++t) {
    const int64_t n_kv = a.n_kv0 + t;
    if (n_kv <= c * kAttentionChunk) continue;
    for (int64_t j = 0; j < a.group; ++j) {
      const int64_t r = t * a.group + j;
      out.sum[r] = row_chunk(a, a.q + t * a.q_stride + j * a.head_dim_k, n_kv, c, scratch.scores.data(),
                             out.chains + r * out.chains_stride, &out.max[r]);
    }
  }
}

void to_f16(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_fp16(x[i]);
}

}  // namespace

const AttentionKernels& attention_kernels_scalar() {
  static const AttentionKernels k{attend, attend_chunk, to_f16};
  return k;
}

double fold_chunk_sums(float* m, const double* sums, int64_t n) {
  float mx = m[0];
  for (int64_t c = 1; c < n; ++c) mx = std::max(mx, m[c]);
  double sum = 0.0;
  for (int64_t c = 0; c < n; ++c) {
    m[c] = exp_f32(m[c] - mx);
    const double weighted = sums[c] * static_cast<double>(m[c]);
    sum = c == 0 ? weighted : sum + weighted;
  }
  return sum;
}

const AttentionKernels& attention_kernels() {
  using detail::SimdLevel;
  static const AttentionKernels& chosen = detail::simd_level() >= SimdLevel::kAvx512 ? attention_kernels_avx512()
                                          : detail::simd_enabled()                  ? attention_kernels_avx2()
                                                                                    : attention_kernels_scalar();
  return chosen;
}

}  // namespace plumb::cpu
