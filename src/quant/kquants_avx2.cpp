// AVX2 K-quant quantizers: the per-sub-block fits of ggml's make_qkx2_quants (Q2_K, Q4_K,
// Q5_K) and make_qx_quants (Q6_K) run 8 sub-blocks at once, one per lane. Every lane performs
// exactly the scalar reference's IEEE operations in the same order (no FMA, no reassociation),
// and data-dependent branches become per-lane selects, so the result is bit-identical to
// ref_kquants.cpp; the cheap finishing phase is shared with it.
#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "quant/quant_fast.h"
#include "quant/ref_kquants_detail.h"
#include "quant/ref_math.h"

namespace plumb::quant_fast {

namespace {

constexpr int kLanes = 8;

// Lane-wise ggml nearest_int: the 1.5·2^23 trick, read back as integer bits.
inline __m256i nearest_int8(__m256 v) {
  const __m256 shifted = _mm256_add_ps(v, _mm256_set1_ps(12582912.0f));
  return _mm256_sub_epi32(_mm256_and_si256(_mm256_castps_si256(shifted), _mm256_set1_epi32(0x007fffff)),
                          _mm256_set1_epi32(0x00400000));
}

inline __m256i clamp_epi32(__m256i v, int lo, int hi) {
  return _mm256_min_epi32(_mm256_max_epi32(v, _mm256_set1_epi32(lo)), _mm256_set1_epi32(hi));
}

inline __m256 select(__m256 mask, __m256 if_true, __m256 if_false) {
  return _mm256_blendv_ps(if_false, if_true, mask);
}

inline __m256i select_epi32(__m256 mask, __m256i if_true, __m256i if_false) {
  return _mm256_castps_si256(
      _mm256_blendv_ps(_mm256_castsi256_ps(if_false), _mm256_castsi256_ps(if_true), mask));
}

inline __m256 gt(__m256 a, __m256 b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
inline __m256 lt(__m256 a, __m256 b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }

// make_qkx2_quants for 8 sub-blocks of n elements at once. xt, wt: [n][8] (element-major:
// xt[8*i + lane] is element i of sub-block `lane`). Outputs L: [8][n] (sub-block-major),
// scales[8], mins[8] (the_min of ggml: the subtracted minimum, >= 0).
void fit_affine_x8(int n, int nmax, const float* xt, const float* wt, float rmin, float rdelta,
                   int nstep, bool use_mad, uint8_t* L, float* scales, float* mins) {
  const __m256 zero = _mm256_setzero_ps();
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  __m256i best_l[32];
  __m256i aux_l[32];

  __m256 min = _mm256_loadu_ps(xt);
  __m256 max = min;
  __m256 sum_w = _mm256_loadu_ps(wt);
  __m256 sum_x = _mm256_mul_ps(sum_w, min);
  for (int i = 1; i < n; ++i) {
    const __m256 x = _mm256_loadu_ps(xt + kLanes * i);
    const __m256 w = _mm256_loadu_ps(wt + kLanes * i);
    min = _mm256_min_ps(x, min);  // x < min ? x : min
    max = _mm256_max_ps(x, max);  // x > max ? x : max
    sum_w = _mm256_add_ps(sum_w, w);
    sum_x = _mm256_add_ps(sum_x, _mm256_mul_ps(w, x));
  }
  min = select(gt(min, zero), zero, min);
  const __m256 flat = _mm256_cmp_ps(max, min, _CMP_EQ_OQ);  // ggml returns early for these lanes
  const __m256 flat_min = min;

  const __m256 fnmax = _mm256_set1_ps(static_cast<float>(nmax));
  __m256 iscale = _mm256_div_ps(fnmax, _mm256_sub_ps(max, min));
  __m256 scale = _mm256_div_ps(_mm256_set1_ps(1.0f), iscale);
  __m256 best_error = zero;
  for (int i = 0; i < n; ++i) {
    const __m256 x = _mm256_loadu_ps(xt + kLanes * i);
    const __m256 w = _mm256_loadu_ps(wt + kLanes * i);
    const __m256i l = clamp_epi32(nearest_int8(_mm256_mul_ps(iscale, _mm256_sub_ps(x, min))), 0, nmax);
    best_l[i] = l;
    __m256 diff = _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(scale, _mm256_cvtepi32_ps(l)), min), x);
    diff = use_mad ? _mm256_and_ps(diff, abs_mask) : _mm256_mul_ps(diff, diff);
    best_error = _mm256_add_ps(best_error, _mm256_mul_ps(w, diff));
  }

  for (int is = 0; is <= nstep; ++is) {
    const float numerator = rmin + rdelta * static_cast<float>(is) + static_cast<float>(nmax);
    iscale = _mm256_div_ps(_mm256_set1_ps(numerator), _mm256_sub_ps(max, min));
    __m256 sum_l = zero, sum_l2 = zero, sum_xl = zero;
    for (int i = 0; i < n; ++i) {
      const __m256 x = _mm256_loadu_ps(xt + kLanes * i);
      const __m256 w = _mm256_loadu_ps(wt + kLanes * i);
      const __m256i l = clamp_epi32(nearest_int8(_mm256_mul_ps(iscale, _mm256_sub_ps(x, min))), 0, nmax);
      aux_l[i] = l;
      const __m256 fl = _mm256_cvtepi32_ps(l);
      const __m256 wl = _mm256_mul_ps(w, fl);
      sum_l = _mm256_add_ps(sum_l, wl);
      sum_l2 = _mm256_add_ps(sum_l2, _mm256_mul_ps(wl, fl));
      sum_xl = _mm256_add_ps(sum_xl, _mm256_mul_ps(wl, x));
    }
    const __m256 D = _mm256_sub_ps(_mm256_mul_ps(sum_w, sum_l2), _mm256_mul_ps(sum_l, sum_l));
    const __m256 d_positive = gt(D, zero);
    if (_mm256_movemask_ps(d_positive) == 0) continue;
    __m256 this_scale =
        _mm256_div_ps(_mm256_sub_ps(_mm256_mul_ps(sum_w, sum_xl), _mm256_mul_ps(sum_x, sum_l)), D);
    __m256 this_min =
        _mm256_div_ps(_mm256_sub_ps(_mm256_mul_ps(sum_l2, sum_x), _mm256_mul_ps(sum_l, sum_xl)), D);
    const __m256 min_positive = gt(this_min, zero);
    this_min = select(min_positive, zero, this_min);
    this_scale = select(min_positive, _mm256_div_ps(sum_xl, sum_l2), this_scale);
    __m256 cur_error = zero;
    for (int i = 0; i < n; ++i) {
      const __m256 x = _mm256_loadu_ps(xt + kLanes * i);
      const __m256 w = _mm256_loadu_ps(wt + kLanes * i);
      __m256 diff =
          _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(this_scale, _mm256_cvtepi32_ps(aux_l[i])), this_min), x);
      diff = use_mad ? _mm256_and_ps(diff, abs_mask) : _mm256_mul_ps(diff, diff);
      cur_error = _mm256_add_ps(cur_error, _mm256_mul_ps(w, diff));
    }
    const __m256 better = _mm256_and_ps(d_positive, lt(cur_error, best_error));
    if (_mm256_movemask_ps(better) == 0) continue;
    for (int i = 0; i < n; ++i) best_l[i] = select_epi32(better, aux_l[i], best_l[i]);
    best_error = select(better, cur_error, best_error);
    scale = select(better, this_scale, scale);
    min = select(better, this_min, min);
  }

  scale = select(flat, zero, scale);
  min = select(flat, flat_min, min);
  const __m256 neg_min = _mm256_xor_ps(min, _mm256_set1_ps(-0.0f));
  _mm256_storeu_ps(scales, scale);
  _mm256_storeu_ps(mins, neg_min);
  const int flat_bits = _mm256_movemask_ps(flat);
  alignas(32) int32_t lane_l[kLanes];
  for (int i = 0; i < n; ++i) {
    _mm256_store_si256(reinterpret_cast<__m256i*>(lane_l), best_l[i]);
    for (int k = 0; k < kLanes; ++k) {
      L[k * n + i] = (flat_bits >> k) & 1 ? 0 : static_cast<uint8_t>(lane_l[k]);
    }
  }
}

// make_qx_quants (rmse_type 1, weights x²) for 8 sub-blocks of n elements at once. xt: [n][8]
// element-major. Outputs L: [8][n] levels offset by nmax, and the 8 scales.
void fit_symmetric_x8(int n, int nmax, const float* xt, int8_t* L, float* scales) {
  const __m256 zero = _mm256_setzero_ps();
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  __m256i best_l[32];
  __m256i aux_l[32];

  __m256 max = zero, amax = zero;
  for (int i = 0; i < n; ++i) {
    const __m256 x = _mm256_loadu_ps(xt + kLanes * i);
    const __m256 ax = _mm256_and_ps(x, abs_mask);
    const __m256 larger = gt(ax, amax);
    amax = select(larger, ax, amax);
    max = select(larger, x, max);
  }
  const __m256 all_zero = lt(amax, _mm256_set1_ps(quant_detail::kGroupMaxEps));

  __m256 iscale = _mm256_div_ps(_mm256_set1_ps(static_cast<float>(-nmax)), max);
  __m256 sumlx = zero, suml2 = zero;
  for (int i = 0; i < n; ++i) {
    const __m256 x = _mm256_loadu_ps(xt + kLanes * i);
    const __m256i l = clamp_epi32(nearest_int8(_mm256_mul_ps(iscale, x)), -nmax, nmax - 1);
    best_l[i] = l;
    const __m256 w = _mm256_mul_ps(x, x);
    const __m256 fl = _mm256_cvtepi32_ps(l);
    sumlx = _mm256_add_ps(sumlx, _mm256_mul_ps(_mm256_mul_ps(w, x), fl));
    suml2 = _mm256_add_ps(suml2, _mm256_mul_ps(_mm256_mul_ps(w, fl), fl));
  }
  // ggml: suml2 ? sumlx/suml2 : 0 (a NaN suml2 counts as true)
  __m256 scale = select(_mm256_cmp_ps(suml2, zero, _CMP_EQ_OQ), zero, _mm256_div_ps(sumlx, suml2));
  __m256 best = _mm256_mul_ps(scale, sumlx);
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    const float numerator = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is));
    iscale = _mm256_div_ps(_mm256_set1_ps(numerator), max);
    sumlx = zero;
    suml2 = zero;
    for (int i = 0; i < n; ++i) {
      const __m256 x = _mm256_loadu_ps(xt + kLanes * i);
      const __m256i l = clamp_epi32(nearest_int8(_mm256_mul_ps(iscale, x)), -nmax, nmax - 1);
      aux_l[i] = l;
      const __m256 w = _mm256_mul_ps(x, x);
      const __m256 fl = _mm256_cvtepi32_ps(l);
      sumlx = _mm256_add_ps(sumlx, _mm256_mul_ps(_mm256_mul_ps(w, x), fl));
      suml2 = _mm256_add_ps(suml2, _mm256_mul_ps(_mm256_mul_ps(w, fl), fl));
    }
    const __m256 better = _mm256_and_ps(gt(suml2, zero), gt(_mm256_mul_ps(sumlx, sumlx), _mm256_mul_ps(best, suml2)));
    if (_mm256_movemask_ps(better) == 0) continue;
    for (int i = 0; i < n; ++i) best_l[i] = select_epi32(better, aux_l[i], best_l[i]);
    const __m256 new_scale = _mm256_div_ps(sumlx, suml2);
    scale = select(better, new_scale, scale);
    best = select(better, _mm256_mul_ps(new_scale, sumlx), best);
  }

  scale = select(all_zero, zero, scale);
  _mm256_storeu_ps(scales, scale);
  const int zero_bits = _mm256_movemask_ps(all_zero);
  alignas(32) int32_t lane_l[kLanes];
  for (int i = 0; i < n; ++i) {
    _mm256_store_si256(reinterpret_cast<__m256i*>(lane_l), best_l[i]);
    for (int k = 0; k < kLanes; ++k) {
      L[k * n + i] = (zero_bits >> k) & 1 ? 0 : static_cast<int8_t>(lane_l[k] + nmax);
    }
  }
}

// xt[8*i + k] = x[n*k + i] for 8 sub-blocks of n elements.
void transpose8(const float* x, int n, float* xt) {
  for (int k = 0; k < kLanes; ++k) {
    for (int i = 0; i < n; ++i) xt[kLanes * i + k] = x[n * k + i];
  }
}

// Q4_K/Q5_K fit: weights sqrt(mean x²) + |x| per 32-element sub-block.
void fit_q45_K_x8(const float* x, int nmax, float rmin, int nstep, float* scales, float* mins, uint8_t* L) {
  alignas(32) float xt[QK_K];
  alignas(32) float wt[QK_K];
  transpose8(x, 32, xt);
  __m256 sum_x2 = _mm256_setzero_ps();
  for (int i = 0; i < 32; ++i) {
    const __m256 v = _mm256_load_ps(xt + kLanes * i);
    sum_x2 = _mm256_add_ps(sum_x2, _mm256_mul_ps(v, v));
  }
  const __m256 av_x = _mm256_sqrt_ps(_mm256_div_ps(sum_x2, _mm256_set1_ps(32.0f)));
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  for (int i = 0; i < 32; ++i) {
    const __m256 v = _mm256_load_ps(xt + kLanes * i);
    _mm256_store_ps(wt + kLanes * i, _mm256_add_ps(av_x, _mm256_and_ps(v, abs_mask)));
  }
  fit_affine_x8(32, nmax, xt, wt, rmin, 0.1f, nstep, false, L, scales, mins);
}

}  // namespace

void quantize_row_q2_K_avx2(const float* x, block_q2_K* y, int64_t n) {
  alignas(32) float xt[128];
  alignas(32) float wt[128];
  uint8_t L[QK_K];
  float scales[QK_K / 16];
  float mins[QK_K / 16];
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    for (int half = 0; half < 2; ++half) {
      transpose8(x + 128 * half, 16, xt);
      for (int j = 0; j < 16; ++j) {
        _mm256_store_ps(wt + kLanes * j, _mm256_and_ps(_mm256_load_ps(xt + kLanes * j), abs_mask));
      }
      fit_affine_x8(16, 3, xt, wt, -0.5f, 0.1f, 15, true, L + 128 * half, scales + 8 * half, mins + 8 * half);
    }
    kquant_detail::finish_q2_K(x, scales, mins, L, &y[i]);
  }
}

void quantize_row_q4_K_avx2(const float* x, block_q4_K* y, int64_t n) {
  uint8_t L[QK_K];
  float scales[QK_K / 32];
  float mins[QK_K / 32];
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    fit_q45_K_x8(x, 15, -1.0f, 20, scales, mins, L);
    kquant_detail::finish_q4_K(x, scales, mins, L, &y[i]);
  }
}

void quantize_row_q5_K_avx2(const float* x, block_q5_K* y, int64_t n) {
  uint8_t L[QK_K];
  float scales[QK_K / 32];
  float mins[QK_K / 32];
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    fit_q45_K_x8(x, 31, -0.5f, 15, scales, mins, L);
    kquant_detail::finish_q5_K(x, scales, mins, L, &y[i]);
  }
}

void quantize_row_q6_K_avx2(const float* x, block_q6_K* y, int64_t n) {
  alignas(32) float xt[128];
  int8_t L[QK_K];
  float scales[QK_K / 16];
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    for (int half = 0; half < 2; ++half) {
      transpose8(x + 128 * half, 16, xt);
      fit_symmetric_x8(16, 32, xt, L + 128 * half, scales + 8 * half);
    }
    kquant_detail::finish_q6_K(x, scales, L, &y[i]);
  }
}

}  // namespace plumb::quant_fast
