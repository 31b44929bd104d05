// AVX2 + F16C fill: eight elements at a time, the same integer hash and the same two float
// operations as synth_detail::element, so the values equal the portable loop's.
#include <immintrin.h>

#include "quant/ref.h"
#include "synth/synth_fill.h"

namespace plumb::synth_detail {

namespace {

inline __m256i hash8(__m256i counter, uint32_t k1, uint32_t k2) {
  __m256i x = _mm256_add_epi32(counter, _mm256_set1_epi32(static_cast<int>(k1)));
  x = _mm256_xor_si256(x, _mm256_srli_epi32(x, 16));
  x = _mm256_mullo_epi32(x, _mm256_set1_epi32(static_cast<int>(0x85EBCA6Bu)));
  x = _mm256_xor_si256(x, _mm256_srli_epi32(x, 13));
  x = _mm256_mullo_epi32(x, _mm256_set1_epi32(static_cast<int>(0xC2B2AE35u)));
  x = _mm256_xor_si256(x, _mm256_srli_epi32(x, 16));
  x = _mm256_xor_si256(x, _mm256_set1_epi32(static_cast<int>(k2)));
  x = _mm256_mullo_epi32(x, _mm256_set1_epi32(static_cast<int>(0x9E3779B1u)));
  return _mm256_xor_si256(x, _mm256_srli_epi32(x, 16));
}

inline __m256 values8(uint32_t first, const StreamKeys& k, __m256 scale, __m256 mean) {
  const __m256i counter = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(first)),
                                           _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  const __m256i h1 = hash8(counter, k.a1, k.a2);
  const __m256i h2 = hash8(counter, k.b1, k.b2);
  const __m256i low = _mm256_set1_epi32(0xFFFF);
  __m256i s = _mm256_add_epi32(_mm256_and_si256(h1, low), _mm256_srli_epi32(h1, 16));
  s = _mm256_add_epi32(s, _mm256_and_si256(h2, low));
  s = _mm256_add_epi32(s, _mm256_srli_epi32(h2, 16));
  const __m256 centered = _mm256_sub_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(kSumMean));
  return _mm256_add_ps(_mm256_mul_ps(centered, scale), mean);
}

}  // namespace

void fill_f32_avx2(float* dst, int64_t n, const StreamKeys& k, uint32_t first, float scale,
                   float mean) {
  const __m256 vscale = _mm256_set1_ps(scale);
  const __m256 vmean = _mm256_set1_ps(mean);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(dst + i, values8(first + static_cast<uint32_t>(i), k, vscale, vmean));
  }
  for (; i < n; ++i) dst[i] = element(first + static_cast<uint32_t>(i), k, scale, mean);
}

void fill_f16_avx2(uint16_t* dst, int64_t n, const StreamKeys& k, uint32_t first, float scale,
                   float mean) {
  const __m256 vscale = _mm256_set1_ps(scale);
  const __m256 vmean = _mm256_set1_ps(mean);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = values8(first + static_cast<uint32_t>(i), k, vscale, vmean);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i),
                     _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  for (; i < n; ++i) dst[i] = fp32_to_fp16(element(first + static_cast<uint32_t>(i), k, scale, mean));
}

}  // namespace plumb::synth_detail
