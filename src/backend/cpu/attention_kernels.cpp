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

// The contract of attention_kernels.h, one query row at a time.
void attend(const AttentionTile& a, AttentionScratch& scratch) {
  const CacheRows k{a.k, a.f16, a.k_stride};
  const CacheRows v{a.v, a.f16, a.v_stride};
  const int64_t n_kv_max = a.n_kv0 + a.n_tokens - 1;
  const int64_t max_chunks = (n_kv_max + kAttentionChunk - 1) / kAttentionChunk;
  scratch.scores.resize(static_cast<size_t>(n_kv_max));
  scratch.acc.resize(static_cast<size_t>(a.head_dim_v));
  scratch.total.resize(static_cast<size_t>(a.head_dim_v));
  scratch.chunk_max.resize(static_cast<size_t>(max_chunks));
  scratch.chunk_sums.resize(static_cast<size_t>(max_chunks));
  float* s = scratch.scores.data();
  float* acc = scratch.acc.data();
  float* total = scratch.total.data();
  float* f = scratch.chunk_max.data();
  double* sums = scratch.chunk_sums.data();
  for (int64_t t = 0; t < a.n_tokens; ++t) {
    const int64_t n_kv = a.n_kv0 + t;
    const int64_t chunks = (n_kv + kAttentionChunk - 1) / kAttentionChunk;
    for (int64_t j = 0; j < a.group; ++j) {
      const float* q = a.q + t * a.q_stride + j * a.head_dim_k;
      for (int64_t p = 0; p < n_kv; ++p) {
        float dot = 0.0f;
        for (int64_t d = 0; d < a.head_dim_k; ++d) dot = std::fma(q[d], k.at(p, d), dot);
        s[p] = dot * a.scale;
      }
      float m = -std::numeric_limits<float>::infinity();
      for (int64_t c = 0; c < chunks; ++c) {
        const int64_t p0 = c * kAttentionChunk, p1 = std::min(n_kv, p0 + kAttentionChunk);
        float mc = -std::numeric_limits<float>::infinity();
        for (int64_t p = p0; p < p1; ++p) mc = std::max(mc, s[p]);
        double partial[8] = {};
        for (int64_t p = p0; p < p1; ++p) {
          s[p] = exp_f32(s[p] - mc);
          partial[p % 8] += s[p];
        }
        f[c] = mc;
        sums[c] = combine_partial_sums(partial);
        m = std::max(m, mc);
      }
      double sum = 0.0;
      for (int64_t c = 0; c < chunks; ++c) {
        f[c] = exp_f32(f[c] - m);
        const double weighted = sums[c] * static_cast<double>(f[c]);
        sum = c == 0 ? weighted : sum + weighted;
      }
      for (int64_t c = 0; c < chunks; ++c) {
        const int64_t p0 = c * kAttentionChunk, p1 = std::min(n_kv, p0 + kAttentionChunk);
        std::fill(acc, acc + a.head_dim_v, 0.0f);
        for (int64_t p = p0; p < p1; ++p) {
          for (int64_t d = 0; d < a.head_dim_v; ++d) acc[d] = std::fma(s[p], v.at(p, d), acc[d]);
        }
        for (int64_t d = 0; d < a.head_dim_v; ++d) total[d] = c == 0 ? acc[d] * f[c] : std::fma(acc[d], f[c], total[d]);
      }
      const float inv_sum = static_cast<float>(1.0 / sum);
      float* out = a.out + t * a.out_stride + j * a.head_dim_v;
      for (int64_t d = 0; d < a.head_dim_v; ++d) out[d] = total[d] * inv_sum;
    }
  }
}

void to_f16(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_fp16(x[i]);
}

}  // namespace

const AttentionKernels& attention_kernels_scalar() {
  static const AttentionKernels k{attend, to_f16};
  return k;
}

const AttentionKernels& attention_kernels() {
  using detail::SimdLevel;
  static const AttentionKernels& chosen = detail::simd_level() >= SimdLevel::kAvx512 ? attention_kernels_avx512()
                                          : detail::simd_enabled()                  ? attention_kernels_avx2()
                                                                                    : attention_kernels_scalar();
  return chosen;
}

}  // namespace plumb::cpu
