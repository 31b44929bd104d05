// The KV cache and causal attention of the CPU backend: f32 scores, f32 softmax (its sum in
// double), f32 accumulation of V. Exact attention, not flash attention: no F16 rounding of
// queries or probabilities (llama.cpp rounds both to F16 when the cache is F16).
#include <algorithm>
#include <cmath>
#include <limits>

#include "backend/cpu/attention_kernels.h"
#include "backend/cpu/cpu_backend.h"

namespace plumb::cpu {

namespace {

// One (token, query head) of attention over cache rows of type T (uint16_t F16 bits or float).
template <class T>
struct HeadAttention {
  const T* k;          // layer's K [n_ctx][k_width], already offset to the KV head
  const T* v;          // layer's V [n_ctx][v_width], already offset to the KV head
  int64_t k_width, v_width, head_dim_k, head_dim_v;
  float scale;

  void run(const float* q, int64_t n_kv, float* scores, float* acc, float* out, const AttentionKernels& kern) const {
    float max_score = -std::numeric_limits<float>::infinity();
    for (int64_t p = 0; p < n_kv; ++p) {
      scores[p] = dot(q, k + p * k_width, head_dim_k, kern) * scale;
      max_score = std::max(max_score, scores[p]);
    }
    double sum = 0.0;
    for (int64_t p = 0; p < n_kv; ++p) {
      scores[p] = std::exp(scores[p] - max_score);
      sum += scores[p];
    }
    std::fill(acc, acc + head_dim_v, 0.0f);
    for (int64_t p = 0; p < n_kv; ++p) axpy(scores[p], v + p * v_width, acc, head_dim_v, kern);
    const float inv_sum = static_cast<float>(1.0 / sum);
    for (int64_t d = 0; d < head_dim_v; ++d) out[d] = acc[d] * inv_sum;
  }

  static float dot(const float* q, const T* k, int64_t n, const AttentionKernels& kern) {
    if constexpr (std::is_same_v<T, float>) return kern.dot_f32(q, k, n);
    else return kern.dot_f16(q, k, n);
  }
  static void axpy(float w, const T* v, float* acc, int64_t n, const AttentionKernels& kern) {
    if constexpr (std::is_same_v<T, float>) kern.axpy_f32(w, v, acc, n);
    else kern.axpy_f16(w, v, acc, n);
  }
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
  const AttentionKernels& kern = attention_kernels();
  kern.to_f16(k, c.k16[L].data() + pos0 * c.k_width, n * c.k_width);
  kern.to_f16(v, c.v16[L].data() + pos0 * c.v_width, n * c.v_width);
}

void CpuBackend::attention(const KvCache& cache, int64_t layer, const float* q, int64_t n, int64_t pos0,
                           const AttentionShape& s, float* out) {
  const auto& c = static_cast<const CpuKvCache&>(cache);
  const auto L = static_cast<size_t>(layer);
  const AttentionKernels& kern = attention_kernels();
  const int64_t group = s.n_head / s.n_head_kv;
  const int64_t n_kv_max = pos0 + n;
  for (auto& scratch : attention_scratch_) scratch.resize(static_cast<size_t>(n_kv_max + s.head_dim_v));

  auto run = [&](const auto* k_cache, const auto* v_cache) {
    // One task per (token, query head); threads take them round-robin, so the per-token cost
    // growing with the position is spread evenly.
    pool_.run([&](int ith, int nth) {
      float* scores = attention_scratch_[static_cast<size_t>(ith)].data();
      float* acc = scores + n_kv_max;
      for (int64_t task = ith; task < n * s.n_head; task += nth) {
        const int64_t t = task / s.n_head;
        const int64_t h = task % s.n_head;
        int64_t kvh = h / group;
        if (s.gqa_off_by_one) kvh = (kvh + 1) % s.n_head_kv;
        using T = std::remove_cv_t<std::remove_pointer_t<decltype(k_cache)>>;
        const HeadAttention<T> head{k_cache + kvh * s.head_dim_k, v_cache + kvh * s.head_dim_v, c.k_width, c.v_width,
                                    s.head_dim_k, s.head_dim_v, s.scale};
        head.run(q + (t * s.n_head + h) * s.head_dim_k, pos0 + t + 1, scores, acc,  // causal: 0 .. pos0 + t
                 out + (t * s.n_head + h) * s.head_dim_v, kern);
      }
    });
  };
  if (c.type == CacheType::F32) {
    run(c.k32[L].data(), c.v32[L].data());
  } else {
    run(c.k16[L].data(), c.v16[L].data());
  }
}

}  // namespace plumb::cpu
