// AVX2 IQ4_NL / IQ4_XS quantizers: ggml's per-block scale search (iq4_detail::fit_block) for 8
// blocks of 32 at once, one block per lane, each lane doing the scalar reference's IEEE
// operations in the same order; the finish is shared with ref_iq4.cpp. Bit-identical to it.
#include <immintrin.h>

#include "quant/quant_fast.h"
#include "quant/ref_iq4_detail.h"
#include "quant/ref_math.h"

namespace plumb::quant_fast {

namespace {

constexpr int kLanes = 8;

// Grid value nearest to each lane of v (as a float), ties to the larger: the number of
// doubled midpoints at or below 2v is the index (0 for NaN, as the scalar search gives).
inline __m256 nearest_grid_value(__m256 v, const __m256 table_lo, const __m256 table_hi) {
  const __m256 v2 = _mm256_add_ps(v, v);
  __m256i idx = _mm256_setzero_si256();
  for (int j = 1; j < 16; ++j) {
    const __m256 ge = _mm256_cmp_ps(v2, _mm256_set1_ps(iq4_detail::kGridMid2[j]), _CMP_GE_OQ);
    idx = _mm256_sub_epi32(idx, _mm256_castps_si256(ge));  // a true lane is -1
  }
  const __m256 lo = _mm256_permutevar8x32_ps(table_lo, idx);
  const __m256 hi = _mm256_permutevar8x32_ps(table_hi, idx);
  const __m256 upper = _mm256_castsi256_ps(_mm256_cmpgt_epi32(idx, _mm256_set1_epi32(7)));
  return _mm256_blendv_ps(lo, hi, upper);
}

// fit_block for 8 blocks: xt[8*j + lane] is element j of block `lane`. Writes 8 scales.
void fit_blocks_x8(const float* xt, float* scales) {
  const __m256 zero = _mm256_setzero_ps();
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const int8_t* values = kIQ4NLValues;
  const __m256 table_lo = _mm256_setr_ps(values[0], values[1], values[2], values[3], values[4], values[5],
                                         values[6], values[7]);
  const __m256 table_hi = _mm256_setr_ps(values[8], values[9], values[10], values[11], values[12],
                                         values[13], values[14], values[15]);

  __m256 amax = zero, max = zero;
  for (int j = 0; j < 32; ++j) {
    const __m256 x = _mm256_loadu_ps(xt + kLanes * j);
    const __m256 ax = _mm256_and_ps(x, abs_mask);
    const __m256 larger = _mm256_cmp_ps(ax, amax, _CMP_GT_OQ);
    amax = _mm256_blendv_ps(amax, ax, larger);
    max = _mm256_blendv_ps(max, x, larger);
  }
  const __m256 all_zero = _mm256_cmp_ps(amax, _mm256_set1_ps(quant_detail::kGroupMaxEps), _CMP_LT_OQ);

  // Per lane, with w = x²: sumqx = Σ w·q·x and sumq2 = Σ w·q², q = the grid value nearest id·x.
  auto weighted_sums = [&](__m256 id, __m256* sumqx, __m256* sumq2) {
    *sumqx = zero;
    *sumq2 = zero;
    for (int j = 0; j < 32; ++j) {
      const __m256 x = _mm256_loadu_ps(xt + kLanes * j);
      const __m256 w = _mm256_mul_ps(x, x);
      const __m256 q = nearest_grid_value(_mm256_mul_ps(id, x), table_lo, table_hi);
      const __m256 wq = _mm256_mul_ps(w, q);
      *sumqx = _mm256_add_ps(*sumqx, _mm256_mul_ps(wq, x));
      *sumq2 = _mm256_add_ps(*sumq2, _mm256_mul_ps(wq, q));
    }
  };

  // d = -max / T[0]; id = 1 / d
  const __m256 neg_max = _mm256_xor_ps(max, _mm256_set1_ps(-0.0f));
  __m256 d = _mm256_div_ps(neg_max, _mm256_set1_ps(static_cast<float>(values[0])));
  __m256 id = _mm256_div_ps(_mm256_set1_ps(1.0f), d);
  __m256 sumqx, sumq2;
  weighted_sums(id, &sumqx, &sumq2);
  d = _mm256_blendv_ps(zero, _mm256_div_ps(sumqx, sumq2), _mm256_cmp_ps(sumq2, zero, _CMP_GT_OQ));
  __m256 best = _mm256_mul_ps(d, sumqx);
  for (int itry = -iq4_detail::kSearchSteps; itry <= iq4_detail::kSearchSteps; ++itry) {
    id = _mm256_div_ps(_mm256_set1_ps(static_cast<float>(itry + values[0])), max);
    weighted_sums(id, &sumqx, &sumq2);
    const __m256 better = _mm256_and_ps(
        _mm256_cmp_ps(sumq2, zero, _CMP_GT_OQ),
        _mm256_cmp_ps(_mm256_mul_ps(sumqx, sumqx), _mm256_mul_ps(best, sumq2), _CMP_GT_OQ));
    if (_mm256_movemask_ps(better) == 0) continue;
    const __m256 new_d = _mm256_div_ps(sumqx, sumq2);
    d = _mm256_blendv_ps(d, new_d, better);
    best = _mm256_blendv_ps(best, _mm256_mul_ps(new_d, sumqx), better);
  }
  _mm256_storeu_ps(scales, _mm256_blendv_ps(d, zero, all_zero));
}

// xt[8*j + k] = x[32*k + j]: 8 consecutive blocks of 32, element-major.
void transpose_blocks(const float* x, float* xt) {
  for (int k = 0; k < kLanes; ++k) {
    for (int j = 0; j < 32; ++j) xt[kLanes * j + k] = x[32 * k + j];
  }
}

}  // namespace

void quantize_row_iq4_nl_avx2(const float* x, block_iq4_nl* y, int64_t n) {
  alignas(32) float xt[kLanes * 32];
  float scales[kLanes];
  const int64_t nb = n / QK4_NL;
  int64_t i = 0;
  for (; i + kLanes <= nb; i += kLanes) {
    transpose_blocks(x + 32 * i, xt);
    fit_blocks_x8(xt, scales);
    for (int k = 0; k < kLanes; ++k) iq4_detail::finish_iq4_nl(x + 32 * (i + k), scales[k], &y[i + k]);
  }
  for (; i < nb; ++i) iq4_detail::finish_iq4_nl(x + 32 * i, iq4_detail::fit_block(x + 32 * i), &y[i]);
}

void quantize_row_iq4_xs_avx2(const float* x, block_iq4_xs* y, int64_t n) {
  alignas(32) float xt[QK_K];
  float scales[QK_K / 32];
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    transpose_blocks(x, xt);
    fit_blocks_x8(xt, scales);
    iq4_detail::finish_iq4_xs(x, scales, &y[i]);
  }
}

}  // namespace plumb::quant_fast
