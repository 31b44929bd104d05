#include "util/exp_f32_avx2.h"

namespace plumb {

void exp_f32_array_avx2(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, exp_f32_avx2(_mm256_loadu_ps(x + i)));
  for (; i < n; ++i) y[i] = exp_f32(x[i]);
}

}  // namespace plumb
