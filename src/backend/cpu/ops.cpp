// Element-wise and per-row ops of the CPU backend: RMSNorm, RoPE, SwiGLU, add.
#include <cmath>

#include "backend/cpu/activation_kernels.h"
#include "backend/cpu/cpu_backend.h"
#include "util/partial_sums.h"

namespace plumb::cpu {

namespace {
// Below this many values a region is not worth waking the other threads for.
constexpr int64_t kMinParallelValues = 16384;
}  // namespace

void CpuBackend::rms_norm(const float* x, const float* w, float eps, int64_t width, int64_t n, float* y) {
  OpTimer timer(OpKind::kNorm, pool_.size());
  auto rows = [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const float* xt = x + t * width;
      float* yt = y + t * width;
      // The squares summed in double, as ggml, in eight partials (util/partial_sums.h): eight
      // independent chains instead of one long dependent one, and a loop the compiler vectorizes.
      double partial[8] = {};
      int64_t i = 0;
      for (; i + 8 <= width; i += 8) {
        for (int k = 0; k < 8; ++k) partial[k] += static_cast<double>(xt[i + k]) * static_cast<double>(xt[i + k]);
      }
      for (; i < width; ++i) partial[i % 8] += static_cast<double>(xt[i]) * static_cast<double>(xt[i]);
      const double sum = combine_partial_sums(partial);
      const float scale = static_cast<float>(1.0 / std::sqrt(sum / static_cast<double>(width) + static_cast<double>(eps)));
      for (int64_t i = 0; i < width; ++i) yt[i] = (xt[i] * scale) * w[i];
    }
  };
  if (n * width < kMinParallelValues) {
    rows(0, n);
  } else {
    pool_.parallel_for(n, rows);
  }
}

void CpuBackend::rope(float* x, int64_t n, int64_t n_heads, int64_t head_dim) {
  OpTimer timer(OpKind::kRope, pool_.size());
  const RopeTable& table = rope_;
  const int64_t half = table.n_rot / 2;
  auto rows = [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const float* cs = table.cos.data() + pos_[static_cast<size_t>(t)] * half;
      const float* sn = table.sin.data() + pos_[static_cast<size_t>(t)] * half;
      for (int64_t h = 0; h < n_heads; ++h) {
        float* v = x + (t * n_heads + h) * head_dim;
        for (int64_t i = 0; i < half; ++i) {  // "normal" mode: pairs (2i, 2i+1)
          const float x0 = v[2 * i];
          const float x1 = v[2 * i + 1];
          v[2 * i] = x0 * cs[i] - x1 * sn[i];
          v[2 * i + 1] = x0 * sn[i] + x1 * cs[i];
        }
      }
    }
  };
  if (n * n_heads * head_dim < kMinParallelValues) {
    rows(0, n);
  } else {
    pool_.parallel_for(n, rows);
  }
}

void CpuBackend::swiglu(const float* gate, const float* up, int64_t n, float* out) {
  OpTimer timer(OpKind::kSwiglu, pool_.size());
  auto range = [&](int64_t i0, int64_t i1) { swiglu_kernel(gate + i0, up + i0, out + i0, i1 - i0); };
  if (n < kMinParallelValues) {
    range(0, n);
  } else {
    pool_.parallel_for(n, range);
  }
}

void CpuBackend::add(const float* a, const float* b, int64_t n, float* out) {
  OpTimer timer(OpKind::kAdd, 1);
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

}  // namespace plumb::cpu
