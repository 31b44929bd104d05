// AVX2 lanes of activation_kernels.h: the scalar expression, 8 values at a time.
#include "backend/cpu/activation_kernels.h"
#include "util/exp_f32_avx2.h"

namespace plumb::cpu {

void swiglu_avx2(const float* gate, const float* up, float* out, int64_t n) {
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 sign = _mm256_set1_ps(-0.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 g = _mm256_loadu_ps(gate + i);
    const __m256 e = exp_f32_avx2(_mm256_xor_ps(g, sign));
    _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(one, e)), _mm256_loadu_ps(up + i)));
  }
  swiglu_scalar(gate + i, up + i, out + i, n - i);
}

}  // namespace plumb::cpu
