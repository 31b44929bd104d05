// The AVX-512 lanes of exp_f32 (exp_f32.h): exp_f32_avx2.h's operations on 16 lanes, in the same
// order (vroundscaleps with round-to-nearest-even is vroundps; min/max pass a NaN x the same
// way), so every lane gives the bits of the scalar exp_f32. Include only from *_avx512.cpp files.
#pragma once

#include <immintrin.h>

#include "util/exp_f32.h"

namespace plumb {

static inline __m512 exp_f32_avx512(__m512 x) {
  using namespace exp_f32_detail;
  x = _mm512_min_ps(_mm512_set1_ps(kMaxArg), x);
  x = _mm512_max_ps(_mm512_set1_ps(kMinArg), x);
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 r_hi = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Hi), x);
  const __m512 c = _mm512_mul_ps(_mm512_xor_ps(n, _mm512_set1_ps(-0.0f)), _mm512_set1_ps(kLn2Lo));  // -n * ln2_lo
  const __m512 r = _mm512_add_ps(r_hi, c);
  const __m512 r2 = _mm512_mul_ps(r, r);
  __m512 q = _mm512_set1_ps(kC7);
  q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(kC6));
  q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(kC5));
  q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(kC4));
  q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(kC3));
  q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(kC2));
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512 s = _mm512_add_ps(one, r_hi);
  const __m512 s_err = _mm512_add_ps(_mm512_sub_ps(one, s), r_hi);
  const __m512 p = _mm512_add_ps(s, _mm512_fmadd_ps(q, r2, _mm512_add_ps(c, s_err)));
  const __m512i ni = _mm512_cvtps_epi32(n);
  const __m512i n1 = _mm512_srai_epi32(ni, 1);
  const __m512i n2 = _mm512_sub_epi32(ni, n1);
  const __m512i bias = _mm512_set1_epi32(127);
  const __m512 s1 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n1, bias), 23));
  const __m512 s2 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n2, bias), 23));
  return _mm512_mul_ps(_mm512_mul_ps(p, s1), s2);
}

}  // namespace plumb
