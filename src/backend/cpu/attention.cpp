// The KV cache and causal attention of the CPU backend: f32 scores, f32 softmax (sum in
// double), f32 accumulation of V. Exact attention, not flash attention: no F16 rounding of
// queries or probabilities (llama.cpp rounds both to F16 when the cache is F16).
#include <algorithm>
#include <cmath>
#include <limits>

#include "backend/cpu/cpu_backend.h"
#include "quant/ref.h"

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

// Reads row elements of a cache of either type as floats.
struct CacheRow {
  const float* f32 = nullptr;
  const uint16_t* f16 = nullptr;
  const float* table = nullptr;
  float operator[](int64_t i) const { return f32 ? f32[i] : table[f16[i]]; }
};

}  // namespace

void CpuBackend::kv_store(KvCache& cache, int64_t layer, int64_t pos0, int64_t n, const float* k, const float* v) {
  auto& c = static_cast<CpuKvCache&>(cache);
  const auto L = static_cast<size_t>(layer);
  if (c.type == CacheType::F32) {
    std::copy(k, k + n * c.k_width, c.k32[L].data() + pos0 * c.k_width);
    std::copy(v, v + n * c.v_width, c.v32[L].data() + pos0 * c.v_width);
    return;
  }
  uint16_t* kd = c.k16[L].data() + pos0 * c.k_width;
  uint16_t* vd = c.v16[L].data() + pos0 * c.v_width;
  for (int64_t i = 0; i < n * c.k_width; ++i) kd[i] = fp32_to_fp16(k[i]);
  for (int64_t i = 0; i < n * c.v_width; ++i) vd[i] = fp32_to_fp16(v[i]);
}

void CpuBackend::attention(const KvCache& cache, int64_t layer, const float* q, int64_t n, int64_t pos0,
                           const AttentionShape& s, float* out) {
  const auto& c = static_cast<const CpuKvCache&>(cache);
  const auto L = static_cast<size_t>(layer);
  const float* table = fp16_table();
  const int64_t group = s.n_head / s.n_head_kv;
  const int64_t n_kv_max = pos0 + n;
  for (auto& scratch : attention_scratch_) {
    scratch.resize(static_cast<size_t>(n_kv_max + s.head_dim_v));
  }
  auto row_k = [&](int64_t pos, int64_t kvh) {
    CacheRow r;
    r.table = table;
    if (c.type == CacheType::F32) r.f32 = c.k32[L].data() + pos * c.k_width + kvh * s.head_dim_k;
    else r.f16 = c.k16[L].data() + pos * c.k_width + kvh * s.head_dim_k;
    return r;
  };
  auto row_v = [&](int64_t pos, int64_t kvh) {
    CacheRow r;
    r.table = table;
    if (c.type == CacheType::F32) r.f32 = c.v32[L].data() + pos * c.v_width + kvh * s.head_dim_v;
    else r.f16 = c.v16[L].data() + pos * c.v_width + kvh * s.head_dim_v;
    return r;
  };

  // One task per (token, query head).
  pool_.run([&](int ith, int nth) {
    float* scores = attention_scratch_[static_cast<size_t>(ith)].data();
    float* acc = scores + n_kv_max;
    for (int64_t task = ith; task < n * s.n_head; task += nth) {
      const int64_t t = task / s.n_head;
      const int64_t h = task % s.n_head;
      const int64_t n_kv = pos0 + t + 1;  // causal: positions 0 .. pos0 + t
      int64_t kvh = h / group;
      if (s.gqa_off_by_one) kvh = (kvh + 1) % s.n_head_kv;
      const float* qh = q + (t * s.n_head + h) * s.head_dim_k;

      float max_score = -std::numeric_limits<float>::infinity();
      for (int64_t p = 0; p < n_kv; ++p) {
        const CacheRow k = row_k(p, kvh);
        float dot = 0.0f;
        for (int64_t d = 0; d < s.head_dim_k; ++d) dot += qh[d] * k[d];
        scores[p] = dot * s.scale;
        max_score = std::max(max_score, scores[p]);
      }
      double sum = 0.0;
      for (int64_t p = 0; p < n_kv; ++p) {
        scores[p] = std::exp(scores[p] - max_score);
        sum += scores[p];
      }
      std::fill(acc, acc + s.head_dim_v, 0.0f);
      for (int64_t p = 0; p < n_kv; ++p) {
        const CacheRow v = row_v(p, kvh);
        const float w = scores[p];
        for (int64_t d = 0; d < s.head_dim_v; ++d) acc[d] += w * v[d];
      }
      const float inv_sum = static_cast<float>(1.0 / sum);
      float* o = out + (t * s.n_head + h) * s.head_dim_v;
      for (int64_t d = 0; d < s.head_dim_v; ++d) o[d] = acc[d] * inv_sum;
    }
  });
}

}  // namespace plumb::cpu
