#include "util/exp_f32_avx512.h"

namespace plumb {

void exp_f32_array_avx512(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, exp_f32_avx512(_mm512_loadu_ps(x + i)));
  for (; i < n; ++i) y[i] = exp_f32(x[i]);
}

}  // namespace plumb
