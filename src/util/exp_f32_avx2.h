// The AVX2 + FMA lanes of exp_f32 (exp_f32.h): same operations in the same order, so every lane
// gives the bits of the scalar exp_f32. Include only from *_avx2.cpp files.
#pragma once

#include <immintrin.h>

#include "util/exp_f32.h"

namespace plumb {

static inline __m256 exp_f32_avx2(__m256 x) {
  using namespace exp_f32_detail;
  // min/max return their second operand when either is NaN: a NaN x passes through both and
  // makes r, hence the result, NaN.
  x = _mm256_min_ps(_mm256_set1_ps(kMaxArg), x);
  x = _mm256_max_ps(_mm256_set1_ps(kMinArg), x);
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 r_hi = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Hi), x);
  const __m256 c = _mm256_mul_ps(_mm256_xor_ps(n, _mm256_set1_ps(-0.0f)), _mm256_set1_ps(kLn2Lo));  // -n * ln2_lo
  const __m256 r = _mm256_add_ps(r_hi, c);
  const __m256 r2 = _mm256_mul_ps(r, r);
  __m256 q = _mm256_set1_ps(kC7);
  q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(kC6));
  q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(kC5));
  q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(kC4));
  q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(kC3));
  q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(kC2));
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 s = _mm256_add_ps(one, r_hi);
  const __m256 s_err = _mm256_add_ps(_mm256_sub_ps(one, s), r_hi);
  const __m256 p = _mm256_add_ps(s, _mm256_fmadd_ps(q, r2, _mm256_add_ps(c, s_err)));
  const __m256i ni = _mm256_cvtps_epi32(n);
  const __m256i n1 = _mm256_srai_epi32(ni, 1);
  const __m256i n2 = _mm256_sub_epi32(ni, n1);
  const __m256i bias = _mm256_set1_epi32(127);
  const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
  const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
  return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

}  // namespace plumb
