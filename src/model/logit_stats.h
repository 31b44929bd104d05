// What perplexity and KL-divergence scoring need from one row of logits: the largest logit, the
// first index where it occurs, and S = sum_i exp(x_i - max) in double, so that
// log p(i) = x_i - max - log S.
//
// Each term is exp_f32 (util/exp_f32.h, < 0.76 ulp) of x_i - max rounded to f32, corrected to
// first order for that rounding (TwoSum gives its exact error e: exp(d + e) ~ exp(d) * (1 + e),
// one f32 fma), so a term is within 1.3 ulp of f32 (1.5e-7 relative) of its exact value and S
// within 1.5e-7 relative of the float64 sum: log S, hence every NLL, within 1.5e-7 absolute.
// Terms are summed in double in eight partials (util/partial_sums.h). The AVX2 version gives
// the scalar version's bits.
#pragma once

#include <cstdint>

namespace plumb {

struct LogitStats {
  float max = 0.0f;
  int32_t top = 0;     // first index of max
  double sum_exp = 0;  // sum_i exp(x_i - max), >= 1
};

LogitStats logit_stats(const float* x, int64_t n);  // AVX2 when the CPU has it
LogitStats logit_stats_scalar(const float* x, int64_t n);
LogitStats logit_stats_avx2(const float* x, int64_t n);  // only call when the CPU has AVX2 + FMA

// One term of S: exp(a + b) from the f32 sum d = a + b, corrected for its rounding error (b =
// -max). The scalar version sums these; the AVX2 one computes 8 at once and these for its tail.
float logit_exp_term(float a, float b);

}  // namespace plumb
