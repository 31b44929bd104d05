#include "model/logit_stats.h"

#include <cmath>

#include "util/cpu_features.h"
#include "util/exp_f32.h"
#include "util/partial_sums.h"

namespace plumb {

float logit_exp_term(float a, float b) {
  const float d = a + b;  // TwoSum: a + b = d + err exactly
  const float bb = d - a;
  const float err = (a - (d - bb)) + (b - bb);
  const float e = exp_f32(d);
  return std::fma(e, err, e);
}

LogitStats logit_stats_scalar(const float* x, int64_t n) {
  LogitStats s;
  s.max = x[0];
  for (int64_t i = 1; i < n; ++i) {
    if (x[i] > s.max) {
      s.max = x[i];
      s.top = static_cast<int32_t>(i);
    }
  }
  const float b = -s.max;
  double partial[8] = {};
  for (int64_t i = 0; i < n; ++i) partial[i % 8] += logit_exp_term(x[i], b);
  s.sum_exp = combine_partial_sums(partial);
  return s;
}

LogitStats logit_stats(const float* x, int64_t n) {
  static const bool avx2 = cpu_has_avx2_fma_f16c();
  return avx2 ? logit_stats_avx2(x, n) : logit_stats_scalar(x, n);
}

}  // namespace plumb
