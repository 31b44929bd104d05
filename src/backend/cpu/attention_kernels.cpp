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
  scratch.scores.resize(static_cast<size_t>(a.n_kv0 + a.n_tokens));
  scratch.acc.resize(static_cast<size_t>(a.head_dim_v));
  float* s = scratch.scores.data();
  float* acc = scratch.acc.data();
  for (int64_t t = 0; t < a.n_tokens; ++t) {
    const int64_t n_kv = a.n_kv0 + t;
    for (int64_t j = 0; j < a.group; ++j) {
      const float* q = a.q + t * a.q_stride + j * a.head_dim_k;
      float m = -std::numeric_limits<float>::infinity();
      for (int64_t p = 0; p < n_kv; ++p) {
        float dot = 0.0f;
        for (int64_t d = 0; d < a.head_dim_k; ++d) dot = std::fma(q[d], k.at(p, d), dot);
        s[p] = dot * a.scale;
        m = std::max(m, s[p]);
      }
      double partial[8] = {};
      for (int64_t p = 0; p < n_kv; ++p) {
        s[p] = exp_f32(s[p] - m);
        partial[p % 8] += s[p];
      }
      std::fill(acc, acc + a.head_dim_v, 0.0f);
      for (int64_t p = 0; p < n_kv; ++p) {
        for (int64_t d = 0; d < a.head_dim_v; ++d) acc[d] = std::fma(s[p], v.at(p, d), acc[d]);
      }
      const float inv_sum = static_cast<float>(1.0 / combine_partial_sums(partial));
      float* out = a.out + t * a.out_stride + j * a.head_dim_v;
      for (int64_t d = 0; d < a.head_dim_v; ++d) out[d] = acc[d] * inv_sum;
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
