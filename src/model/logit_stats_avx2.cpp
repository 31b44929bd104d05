// AVX2 lanes of logit_stats.h: lane k holds partial sum k (elements i with i % 8 == k).
#include <immintrin.h>

#include "model/logit_stats.h"
#include "util/exp_f32_avx2.h"
#include "util/partial_sums.h"

namespace plumb {

LogitStats logit_stats_avx2(const float* x, int64_t n) {
  LogitStats s;
  const int64_t n8 = n / 8 * 8;
  s.max = x[0];
  if (n8 > 0) {
    __m256 mv = _mm256_loadu_ps(x);
    for (int64_t i = 8; i < n8; i += 8) mv = _mm256_max_ps(mv, _mm256_loadu_ps(x + i));
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mv), _mm256_extractf128_ps(mv, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    s.max = _mm_cvtss_f32(m4);
  }
  for (int64_t i = n8; i < n; ++i) s.max = x[i] > s.max ? x[i] : s.max;
  // The first index holding the max.
  const __m256 mb = _mm256_set1_ps(s.max);
  int64_t i = 0;
  for (; i < n8; i += 8) {
    const int mask = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + i), mb, _CMP_EQ_OQ));
    if (mask != 0) {
      i += __builtin_ctz(static_cast<unsigned>(mask));
      break;
    }
  }
  if (i >= n8) {
    for (i = n8; i < n && x[i] != s.max; ++i) {
    }
  }
  s.top = static_cast<int32_t>(i);

  const float b = -s.max;
  const __m256 bv = _mm256_set1_ps(b);
  __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
  for (i = 0; i < n8; i += 8) {
    const __m256 a = _mm256_loadu_ps(x + i);
    const __m256 d = _mm256_add_ps(a, bv);
    const __m256 bb = _mm256_sub_ps(d, a);
    const __m256 err = _mm256_add_ps(_mm256_sub_ps(a, _mm256_sub_ps(d, bb)), _mm256_sub_ps(bv, bb));
    const __m256 e = exp_f32_avx2(d);
    const __m256 t = _mm256_fmadd_ps(e, err, e);
    lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(t)));
    hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps(t, 1)));
  }
  alignas(32) double partial[8];
  _mm256_store_pd(partial, lo);
  _mm256_store_pd(partial + 4, hi);
  for (; i < n; ++i) partial[i % 8] += logit_exp_term(x[i], b);  // compiled without AVX2
  s.sum_exp = combine_partial_sums(partial);
  return s;
}

}  // namespace plumb
