#include "backend/cpu/activation_kernels.h"

#include "backend/cpu/matmul_internal.h"
#include "util/exp_f32.h"

namespace plumb::cpu {

void swiglu_scalar(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + exp_f32(-g)) * up[i];
  }
}

void swiglu_kernel(const float* gate, const float* up, float* out, int64_t n) {
  static const bool simd = detail::simd_enabled();
  if (simd) {
    swiglu_avx2(gate, up, out, n);
  } else {
    swiglu_scalar(gate, up, out, n);
  }
}

}  // namespace plumb::cpu
