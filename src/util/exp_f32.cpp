#include "util/exp_f32.h"

#include "util/cpu_features.h"

namespace plumb {

void exp_f32_array_scalar(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = exp_f32(x[i]);
}

void exp_f32_array(const float* x, float* y, int64_t n) {
  if (cpu_has_avx2_fma_f16c()) {
    exp_f32_array_avx2(x, y, n);
  } else {
    exp_f32_array_scalar(x, y, n);
  }
}

}  // namespace plumb
