// AVX2 candidate-scale searches of the K-quants: lane c of a vector follows one candidate
// through exactly the reference's sequence of float operations (no FMA: the project builds
// with -ffp-contract=off), so each candidate's sums equal the scalar ones bit for bit.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "quant/kquant_fast.h"
#include "quant/ref_math.h"

namespace plumb::kquant_detail {

namespace {

using quant_detail::kGroupMaxEps;
using quant_detail::nearest_int;

constexpr int kMaxN = 32;

// ggml's nearest_int on eight lanes.
inline __m256i nearest_int8(__m256 v) {
  const __m256 shifted = _mm256_add_ps(v, _mm256_set1_ps(12582912.0f));
  const __m256i bits = _mm256_castps_si256(shifted);
  return _mm256_sub_epi32(_mm256_and_si256(bits, _mm256_set1_epi32(0x007fffff)),
                          _mm256_set1_epi32(0x00400000));
}

inline __m256i clamp8(__m256i v, int lo, int hi) {
  return _mm256_min_epi32(_mm256_max_epi32(v, _mm256_set1_epi32(lo)), _mm256_set1_epi32(hi));
}

}  // namespace

bool fit_affine_avx2(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                     float* the_min, float rmin, float rdelta, int nstep, float* scale_out) {
  if (n > kMaxN || nstep < 1) return false;

  // The reference's first guess, scalar.
  float min = x[0];
  float max = x[0];
  float sum_w = weights[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    const float w = weights[i];
    sum_w += w;
    sum_x += w * x[i];
  }
  if (min > 0.0f) min = 0.0f;
  if (max == min) {
    std::memset(L, 0, static_cast<size_t>(n));
    *the_min = -min;
    *scale_out = 0.0f;
    return true;
  }
  const float fnmax = static_cast<float>(nmax);
  float iscale = fnmax / (max - min);
  float scale = 1.0f / iscale;
  float best_error = 0.0f;
  for (int i = 0; i < n; ++i) {
    const int l = nearest_int(iscale * (x[i] - min));
    L[i] = static_cast<uint8_t>(std::clamp(l, 0, nmax));
    float diff = scale * static_cast<float>(L[i]) + min - x[i];
    diff = diff * diff;
    best_error += weights[i] * diff;
  }

  // Eight candidates at a time: iscale = (rmin + rdelta·is + nmax) / (max - min). A candidate
  // the reference takes changes min, which the later candidates depend on: they are then
  // evaluated again from the one after it.
  const __m256 sw = _mm256_set1_ps(sum_w);
  const __m256 sx = _mm256_set1_ps(sum_x);
  const __m256 zero = _mm256_setzero_ps();
  const __m256 lanes = _mm256_cvtepi32_ps(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  __m256 laux[kMaxN];
  alignas(32) float D[8], this_scale[8], this_min[8], error[8];
  int start = 0;
  while (start <= nstep) {
    const __m256 is = _mm256_add_ps(_mm256_set1_ps(static_cast<float>(start)), lanes);
    __m256 t = _mm256_add_ps(_mm256_set1_ps(rmin), _mm256_mul_ps(_mm256_set1_ps(rdelta), is));
    t = _mm256_add_ps(t, _mm256_set1_ps(fnmax));
    const __m256 v_iscale = _mm256_div_ps(t, _mm256_set1_ps(max - min));
    __m256 s_l = zero, s_l2 = zero, s_xl = zero;
    for (int i = 0; i < n; ++i) {
      const __m256 xm = _mm256_set1_ps(x[i] - min);
      const __m256i l = clamp8(nearest_int8(_mm256_mul_ps(v_iscale, xm)), 0, nmax);
      const __m256 fl = _mm256_cvtepi32_ps(l);
      laux[i] = fl;
      const __m256 wl = _mm256_mul_ps(_mm256_set1_ps(weights[i]), fl);
      s_l = _mm256_add_ps(s_l, wl);
      s_l2 = _mm256_add_ps(s_l2, _mm256_mul_ps(wl, fl));
      s_xl = _mm256_add_ps(s_xl, _mm256_mul_ps(wl, _mm256_set1_ps(x[i])));
    }
    const __m256 d = _mm256_sub_ps(_mm256_mul_ps(sw, s_l2), _mm256_mul_ps(s_l, s_l));
    __m256 ts = _mm256_div_ps(_mm256_sub_ps(_mm256_mul_ps(sw, s_xl), _mm256_mul_ps(sx, s_l)), d);
    __m256 tm = _mm256_div_ps(_mm256_sub_ps(_mm256_mul_ps(s_l2, sx), _mm256_mul_ps(s_l, s_xl)), d);
    const __m256 positive = _mm256_cmp_ps(tm, zero, _CMP_GT_OQ);
    tm = _mm256_blendv_ps(tm, zero, positive);
    ts = _mm256_blendv_ps(ts, _mm256_div_ps(s_xl, s_l2), positive);
    __m256 err = zero;
    for (int i = 0; i < n; ++i) {
      __m256 diff = _mm256_add_ps(_mm256_mul_ps(ts, laux[i]), tm);
      diff = _mm256_sub_ps(diff, _mm256_set1_ps(x[i]));
      diff = _mm256_mul_ps(diff, diff);
      err = _mm256_add_ps(err, _mm256_mul_ps(_mm256_set1_ps(weights[i]), diff));
    }
    _mm256_store_ps(D, d);
    _mm256_store_ps(this_scale, ts);
    _mm256_store_ps(this_min, tm);
    _mm256_store_ps(error, err);
    // The reference's choice, in its order, up to the first candidate it takes.
    const int count = std::min(8, nstep + 1 - start);
    int taken = -1;
    for (int c = 0; c < count; ++c) {
      if (D[c] > 0.0f && error[c] < best_error) {
        taken = c;
        break;
      }
    }
    if (taken < 0) {
      start += 8;
      continue;
    }
    best_error = error[taken];
    scale = this_scale[taken];
    min = this_min[taken];
    alignas(32) float lane[8];
    for (int i = 0; i < n; ++i) {
      _mm256_store_ps(lane, laux[i]);
      L[i] = static_cast<uint8_t>(lane[taken]);
    }
    start += taken + 1;
  }
  *the_min = -min;
  *scale_out = scale;
  return true;
}

bool fit_symmetric_avx2(int n, int nmax, const float* x, int8_t* L, float* scale_out) {
  if (n > kMaxN) return false;
  float max = 0.0f;
  float amax = 0.0f;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < kGroupMaxEps) {
    std::memset(L, 0, static_cast<size_t>(n));
    *scale_out = 0.0f;
    return true;
  }
  const float fnmax = static_cast<float>(nmax);
  const float iscale0 = static_cast<float>(-nmax) / max;
  float sumlx = 0.0f;
  float suml2 = 0.0f;
  for (int i = 0; i < n; ++i) {
    const int l = std::clamp(nearest_int(iscale0 * x[i]), -nmax, nmax - 1);
    L[i] = static_cast<int8_t>(l + nmax);
    const float w = x[i] * x[i];
    const float fl = static_cast<float>(l);
    sumlx += w * x[i] * fl;
    suml2 += w * fl * fl;
  }
  float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;

  // Candidates is = -9..-1, 1..9 (18 lanes; the last six of the third vector repeat is = 9).
  constexpr int kCand = 18;
  alignas(32) static const int kIs[24] = {-9, -8, -7, -6, -5, -4, -3, -2, -1, 1, 2, 3,
                                          4,  5,  6,  7,  8,  9,  9,  9,  9,  9, 9, 9};
  __m256 v_iscale[3], s_lx[3], s_l2[3];
  for (int v = 0; v < 3; ++v) {
    const __m256 is = _mm256_cvtepi32_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(kIs + 8 * v)));
    const __m256 t = _mm256_add_ps(_mm256_set1_ps(fnmax), _mm256_mul_ps(_mm256_set1_ps(0.1f), is));
    const __m256 neg = _mm256_xor_ps(t, _mm256_set1_ps(-0.0f));
    v_iscale[v] = _mm256_div_ps(neg, _mm256_set1_ps(max));
    s_lx[v] = s_l2[v] = _mm256_setzero_ps();
  }
  for (int i = 0; i < n; ++i) {
    const float w = x[i] * x[i];
    const __m256 xi = _mm256_set1_ps(x[i]);
    const __m256 wx = _mm256_set1_ps(w * x[i]);
    const __m256 vw = _mm256_set1_ps(w);
    for (int v = 0; v < 3; ++v) {
      const __m256i l = clamp8(nearest_int8(_mm256_mul_ps(v_iscale[v], xi)), -nmax, nmax - 1);
      const __m256 fl = _mm256_cvtepi32_ps(l);
      s_lx[v] = _mm256_add_ps(s_lx[v], _mm256_mul_ps(wx, fl));
      s_l2[v] = _mm256_add_ps(s_l2[v], _mm256_mul_ps(_mm256_mul_ps(vw, fl), fl));
    }
  }
  alignas(32) float lx[24], l2[24], isc[24];
  for (int v = 0; v < 3; ++v) {
    _mm256_store_ps(lx + 8 * v, s_lx[v]);
    _mm256_store_ps(l2 + 8 * v, s_l2[v]);
    _mm256_store_ps(isc + 8 * v, v_iscale[v]);
  }
  int chosen = -1;
  for (int c = 0; c < kCand; ++c) {
    if (l2[c] > 0.0f && lx[c] * lx[c] > best * l2[c]) {
      scale = lx[c] / l2[c];
      best = scale * lx[c];
      chosen = c;
    }
  }
  if (chosen >= 0) {
    for (int i = 0; i < n; ++i) {
      L[i] = static_cast<int8_t>(nmax + std::clamp(nearest_int(isc[chosen] * x[i]), -nmax, nmax - 1));
    }
  }
  *scale_out = scale;
  return true;
}

}  // namespace plumb::kquant_detail
