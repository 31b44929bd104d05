// Reference (de)quantizers of the K-quant super-block formats (Q2_K..Q6_K, Q8_K): ggml's
// quantize_row_qN_K_ref (no importance matrix) and dequantize_row_qN_K, bit for bit. The
// scale searches are float-order sensitive: each expression below is evaluated exactly as
// ggml writes it (left to right, every operation rounded, no FMA).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "quant/ref.h"
#include "quant/ref_blocks.h"
#include "quant/ref_kquants_detail.h"
#include "quant/ref_math.h"

namespace plumb {

using quant_detail::kGroupMaxEps;
using quant_detail::nearest_int;
using quant_detail::signed_absmax;

namespace kquant_detail {

// The 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K scales array.
void get_scale_min_k4(int j, const uint8_t* q, uint8_t* sc, uint8_t* mn) {
  if (j < 4) {
    *sc = q[j] & 63;
    *mn = q[j + 4] & 63;
  } else {
    *sc = static_cast<uint8_t>((q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4));
    *mn = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

void set_scale_min_k4(int j, uint8_t ls, uint8_t lm, uint8_t* q) {
  if (j < 4) {
    q[j] = ls;
    q[j + 4] = lm;
  } else {
    q[j + 4] = static_cast<uint8_t>((ls & 0xf) | ((lm & 0xf) << 4));
    q[j - 4] |= static_cast<uint8_t>((ls >> 4) << 6);
    q[j] |= static_cast<uint8_t>((lm >> 4) << 6);
  }
}

}  // namespace kquant_detail

using kquant_detail::get_scale_min_k4;
using kquant_detail::set_scale_min_k4;

namespace {

// ggml's make_qx_quants with rmse_type 1 and no importance weights (w = x²): a symmetric
// fit of x[0..n) to integers in [-nmax, nmax-1], searching 19 candidate scales around
// nmax/max. L receives the integers offset by nmax; returns the scale.
float fit_symmetric(int n, int nmax, const float* x, int8_t* L) {
  const float max = signed_absmax(x, n);
  if (std::fabs(max) < kGroupMaxEps) {
    std::memset(L, 0, static_cast<size_t>(n));
    return 0.0f;
  }
  const float fnmax = static_cast<float>(nmax);
  float iscale = static_cast<float>(-nmax) / max;
  float sumlx = 0.0f;
  float suml2 = 0.0f;
  for (int i = 0; i < n; ++i) {
    const int l = std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1);
    L[i] = static_cast<int8_t>(l + nmax);
    const float w = x[i] * x[i];
    const float fl = static_cast<float>(l);
    sumlx += w * x[i] * fl;
    suml2 += w * fl * fl;
  }
  float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(fnmax + 0.1f * static_cast<float>(is)) / max;
    sumlx = 0.0f;
    suml2 = 0.0f;
    for (int i = 0; i < n; ++i) {
      const float fl = static_cast<float>(std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1));
      const float w = x[i] * x[i];
      sumlx += w * x[i] * fl;
      suml2 += w * fl * fl;
    }
    if (suml2 > 0.0f && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) {
        L[i] = static_cast<int8_t>(nmax + std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1));
      }
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// ggml's make_q3_quants with do_rmse: a symmetric fit to [-nmax, nmax-1] refined element by
// element (up to 5 sweeps) with weights x². L receives the integers offset by nmax.
float fit_symmetric_refined(int n, int nmax, const float* x, int8_t* L) {
  const float max = signed_absmax(x, n);
  if (std::fabs(max) < kGroupMaxEps) {
    std::memset(L, 0, static_cast<size_t>(n));
    return 0.0f;
  }
  const float iscale = static_cast<float>(-nmax) / max;
  float sumlx = 0.0f;
  float suml2 = 0.0f;
  for (int i = 0; i < n; ++i) {
    const int l = std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1);
    L[i] = static_cast<int8_t>(l);
    const float w = x[i] * x[i];
    const float fl = static_cast<float>(l);
    sumlx += w * x[i] * fl;
    suml2 += w * fl * fl;
  }
  for (int itry = 0; itry < 5; ++itry) {
    int n_changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = x[i] * x[i];
      const float li = static_cast<float>(L[i]);
      float slx = sumlx - w * x[i] * li;
      if (slx > 0.0f) {
        float sl2 = suml2 - w * li * li;
        const int new_l = std::clamp(nearest_int(x[i] * sl2 / slx), -nmax, nmax - 1);
        if (new_l != L[i]) {
          const float fl = static_cast<float>(new_l);
          slx += w * x[i] * fl;
          sl2 += w * fl * fl;
          if (sl2 > 0.0f && slx * slx * suml2 > sumlx * sumlx * sl2) {
            L[i] = static_cast<int8_t>(new_l);
            sumlx = slx;
            suml2 = sl2;
            ++n_changed;
          }
        }
      }
    }
    if (n_changed == 0) break;
  }
  for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(L[i] + nmax);
  return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

// ggml's make_qkx2_quants: an asymmetric fit x ≈ scale·L - min with L in [0, nmax] and
// min >= 0 (returned through *the_min), minimizing the weighted error (absolute when
// use_mad, else squared) over nstep+1 candidate scales. Laux: n bytes of scratch.
float fit_affine(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                 float* the_min, uint8_t* Laux, float rmin, float rdelta, int nstep,
                 bool use_mad) {
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
    return 0.0f;
  }
  const float fnmax = static_cast<float>(nmax);
  float iscale = fnmax / (max - min);
  float scale = 1.0f / iscale;
  float best_error = 0.0f;
  for (int i = 0; i < n; ++i) {
    const int l = nearest_int(iscale * (x[i] - min));
    L[i] = static_cast<uint8_t>(std::clamp(l, 0, nmax));
    float diff = scale * static_cast<float>(L[i]) + min - x[i];
    diff = use_mad ? std::fabs(diff) : diff * diff;
    best_error += weights[i] * diff;
  }
  if (nstep < 1) {
    *the_min = -min;
    return scale;
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * static_cast<float>(is) + fnmax) / (max - min);
    float sum_l = 0.0f;
    float sum_l2 = 0.0f;
    float sum_xl = 0.0f;
    for (int i = 0; i < n; ++i) {
      const int l = std::clamp(nearest_int(iscale * (x[i] - min)), 0, nmax);
      Laux[i] = static_cast<uint8_t>(l);
      const float w = weights[i];
      const float fl = static_cast<float>(l);
      sum_l += w * fl;
      sum_l2 += w * fl * fl;
      sum_xl += w * fl * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0.0f) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0.0f) {
        this_min = 0.0f;
        this_scale = sum_xl / sum_l2;
      }
      float cur_error = 0.0f;
      for (int i = 0; i < n; ++i) {
        float diff = this_scale * static_cast<float>(Laux[i]) + this_min - x[i];
        diff = use_mad ? std::fabs(diff) : diff * diff;
        cur_error += weights[i] * diff;
      }
      if (cur_error < best_error) {
        std::memcpy(L, Laux, static_cast<size_t>(n));
        best_error = cur_error;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *the_min = -min;
  return scale;
}


// The signed 6-bit scale of sub-block j (0..15) of a Q3_K scales array.
int q3_k_scale(const uint8_t* scales, int j) {
  const int low = j < 8 ? (scales[j] & 0xf) : (scales[j - 8] >> 4);
  const int high = (scales[8 + j % 4] >> (2 * (j / 4))) & 3;
  return (low | (high << 4)) - 32;
}

// Q4_K and Q5_K share everything but the range of L and the bit packing: given the fitted
// sub-block scales and mins, quantize them to 6 bits against max/63 and re-quantize L[256]
// (values in [0, nmax]) against the rounded scales.
void finish_scales_q45_K(const float* x, int nmax, const float* scales, const float* mins,
                         uint8_t* scales_out, fp16_t* d_out, fp16_t* dmin_out, uint8_t* L) {
  float max_scale = 0.0f;  // the min is subtracted, so scales are never negative
  float max_min = 0.0f;
  for (int j = 0; j < QK_K / 32; ++j) {
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  const float inv_scale = max_scale > 0.0f ? 63.0f / max_scale : 0.0f;
  const float inv_min = max_min > 0.0f ? 63.0f / max_min : 0.0f;
  for (int j = 0; j < QK_K / 32; ++j) {
    // ggml stores nearest_int into a uint8_t before clamping
    const uint8_t ls = std::min<uint8_t>(63, static_cast<uint8_t>(nearest_int(inv_scale * scales[j])));
    const uint8_t lm = std::min<uint8_t>(63, static_cast<uint8_t>(nearest_int(inv_min * mins[j])));
    set_scale_min_k4(j, ls, lm, scales_out);
  }
  *d_out = fp32_to_fp16(max_scale / 63.0f);
  *dmin_out = fp32_to_fp16(max_min / 63.0f);

  // a sub-block whose scale rounds to 0 keeps the L of its fit
  const float d_all = fp16_to_fp32(*d_out);
  const float dmin_all = fp16_to_fp32(*dmin_out);
  for (int j = 0; j < QK_K / 32; ++j) {
    uint8_t sc, m;
    get_scale_min_k4(j, scales_out, &sc, &m);
    const float d = d_all * static_cast<float>(sc);
    if (d == 0.0f) continue;
    const float dm = dmin_all * static_cast<float>(m);
    for (int ii = 0; ii < 32; ++ii) {
      L[32 * j + ii] = static_cast<uint8_t>(std::clamp(nearest_int((x[32 * j + ii] + dm) / d), 0, nmax));
    }
  }
}

// Scalar fit of the 8 sub-blocks of a Q4_K/Q5_K super-block: weights sqrt(mean x²) + |x|.
void fit_q45_K(const float* x, int nmax, float rmin, int nstep, float* scales, float* mins, uint8_t* L) {
  uint8_t Laux[32];
  float weights[32];
  for (int j = 0; j < QK_K / 32; ++j) {
    const float* xb = x + 32 * j;
    float sum_x2 = 0.0f;
    for (int l = 0; l < 32; ++l) sum_x2 += xb[l] * xb[l];
    const float av_x = std::sqrt(sum_x2 / 32.0f);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(xb[l]);
    scales[j] = fit_affine(32, nmax, xb, weights, L + 32 * j, &mins[j], Laux, rmin, 0.1f, nstep, false);
  }
}

}  // namespace

// ---------------------------------------------------------------- dequantization

void dequantize_row_q2_K(const block_q2_K* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    const float dmin = fp16_to_fp32(x[i].dmin);
    for (int e = 0; e < QK_K; ++e) {
      const int h = e / 128, j = (e / 32) % 4, m = e % 32;
      const uint8_t sc = x[i].scales[e / 16];
      const float dl = d * static_cast<float>(sc & 0xf);
      const float ml = dmin * static_cast<float>(sc >> 4);
      const int q = (x[i].qs[32 * h + m] >> (2 * j)) & 3;
      *y++ = dl * static_cast<float>(q) - ml;
    }
  }
}

void dequantize_row_q3_K(const block_q3_K* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d_all = fp16_to_fp32(x[i].d);
    for (int e = 0; e < QK_K; ++e) {
      const int h = e / 128, j = (e / 32) % 4, m = e % 32;
      const float dl = d_all * static_cast<float>(q3_k_scale(x[i].scales, e / 16));
      const int low = (x[i].qs[32 * h + m] >> (2 * j)) & 3;
      const bool high = (x[i].hmask[m] >> (4 * h + j)) & 1;
      *y++ = dl * static_cast<float>(low - (high ? 0 : 4));
    }
  }
}

void dequantize_row_q4_K(const block_q4_K* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    const float dmin = fp16_to_fp32(x[i].dmin);
    for (int s = 0; s < QK_K / 32; ++s) {
      uint8_t sc, mn;
      get_scale_min_k4(s, x[i].scales, &sc, &mn);
      const float dl = d * static_cast<float>(sc);
      const float ml = dmin * static_cast<float>(mn);
      const uint8_t* q = x[i].qs + 32 * (s / 2);
      const int shift = 4 * (s % 2);
      for (int l = 0; l < 32; ++l) *y++ = dl * static_cast<float>((q[l] >> shift) & 0xf) - ml;
    }
  }
}

void dequantize_row_q5_K(const block_q5_K* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    const float dmin = fp16_to_fp32(x[i].dmin);
    for (int s = 0; s < QK_K / 32; ++s) {
      uint8_t sc, mn;
      get_scale_min_k4(s, x[i].scales, &sc, &mn);
      const float dl = d * static_cast<float>(sc);
      const float ml = dmin * static_cast<float>(mn);
      const uint8_t* q = x[i].qs + 32 * (s / 2);
      const int shift = 4 * (s % 2);
      for (int l = 0; l < 32; ++l) {
        const int v = ((q[l] >> shift) & 0xf) | (((x[i].qh[l] >> s) & 1) << 4);
        *y++ = dl * static_cast<float>(v) - ml;
      }
    }
  }
}

void dequantize_row_q6_K(const block_q6_K* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    for (int e = 0; e < QK_K; ++e) {
      const int h = e / 128, c = (e / 32) % 4, l = e % 32;
      const int low = (x[i].ql[64 * h + 32 * (c % 2) + l] >> (4 * (c / 2))) & 0xf;
      const int high = (x[i].qh[32 * h + l] >> (2 * c)) & 3;
      const int q = (low | (high << 4)) - 32;
      *y++ = d * static_cast<float>(x[i].scales[e / 16]) * static_cast<float>(q);
    }
  }
}

void dequantize_row_q8_K(const block_q8_K* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i) {
    for (int j = 0; j < QK_K; ++j) *y++ = x[i].d * static_cast<float>(x[i].qs[j]);
  }
}

// ---------------------------------------------------------------- quantization

namespace kquant_detail {

void finish_q2_K(const float* x, const float* scales, const float* mins, uint8_t* L, block_q2_K* y) {
  const float q4scale = 15.0f;
  float max_scale = 0.0f;
  float max_min = 0.0f;
  for (int j = 0; j < QK_K / 16; ++j) {
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  if (max_scale > 0.0f) {
    const float iscale = q4scale / max_scale;
    for (int j = 0; j < QK_K / 16; ++j) {
      y->scales[j] = static_cast<uint8_t>(nearest_int(iscale * scales[j]));
    }
    y->d = fp32_to_fp16(max_scale / q4scale);
  } else {
    std::memset(y->scales, 0, sizeof y->scales);
    y->d = fp32_to_fp16(0.0f);
  }
  if (max_min > 0.0f) {
    const float iscale = q4scale / max_min;
    for (int j = 0; j < QK_K / 16; ++j) {
      y->scales[j] |= static_cast<uint8_t>(nearest_int(iscale * mins[j]) << 4);
    }
    y->dmin = fp32_to_fp16(max_min / q4scale);
  } else {
    y->dmin = fp32_to_fp16(0.0f);
  }

  const float d_all = fp16_to_fp32(y->d);
  const float dmin_all = fp16_to_fp32(y->dmin);
  for (int j = 0; j < QK_K / 16; ++j) {
    const float d = d_all * static_cast<float>(y->scales[j] & 0xf);
    if (d == 0.0f) continue;
    const float dm = dmin_all * static_cast<float>(y->scales[j] >> 4);
    for (int ii = 0; ii < 16; ++ii) {
      L[16 * j + ii] = static_cast<uint8_t>(std::clamp(nearest_int((x[16 * j + ii] + dm) / d), 0, 3));
    }
  }

  for (int j = 0; j < QK_K; j += 128) {
    for (int l = 0; l < 32; ++l) {
      y->qs[j / 4 + l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) |
                                              (L[j + l + 96] << 6));
    }
  }
}

void finish_q4_K(const float* x, const float* scales, const float* mins, uint8_t* L, block_q4_K* y) {
  finish_scales_q45_K(x, 15, scales, mins, y->scales, &y->d, &y->dmin, L);
  uint8_t* q = y->qs;
  for (int j = 0; j < QK_K; j += 64, q += 32) {
    for (int l = 0; l < 32; ++l) q[l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 4));
  }
}

void finish_q5_K(const float* x, const float* scales, const float* mins, uint8_t* L, block_q5_K* y) {
  finish_scales_q45_K(x, 31, scales, mins, y->scales, &y->d, &y->dmin, L);
  uint8_t* qh = y->qh;
  uint8_t* ql = y->qs;
  std::memset(qh, 0, QK_K / 8);
  // sub-block s = 2p + k keeps its fifth bits in bit s of qh[l]
  for (int p = 0; p < QK_K / 64; ++p, ql += 32) {
    for (int l = 0; l < 32; ++l) {
      const int l1 = L[64 * p + l];
      const int l2 = L[64 * p + l + 32];
      qh[l] |= static_cast<uint8_t>(((l1 >> 4) << (2 * p)) | ((l2 >> 4) << (2 * p + 1)));
      ql[l] = static_cast<uint8_t>((l1 & 0xf) | ((l2 & 0xf) << 4));
    }
  }
}

void finish_q6_K(const float* x, const float* scales, int8_t* L, block_q6_K* y) {
  float max_scale = 0.0f;
  float max_abs_scale = 0.0f;
  for (int ib = 0; ib < QK_K / 16; ++ib) {
    const float abs_scale = std::fabs(scales[ib]);
    if (abs_scale > max_abs_scale) {
      max_abs_scale = abs_scale;
      max_scale = scales[ib];
    }
  }
  if (max_abs_scale < kGroupMaxEps) {
    std::memset(y, 0, sizeof *y);
    y->d = fp32_to_fp16(0.0f);
    return;
  }

  const float iscale = -128.0f / max_scale;
  y->d = fp32_to_fp16(1.0f / iscale);
  for (int ib = 0; ib < QK_K / 16; ++ib) {
    y->scales[ib] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales[ib])));
  }

  const float d_all = fp16_to_fp32(y->d);
  for (int j = 0; j < QK_K / 16; ++j) {
    const float d = d_all * static_cast<float>(y->scales[j]);
    if (d == 0.0f) continue;
    for (int ii = 0; ii < 16; ++ii) {
      L[16 * j + ii] = static_cast<int8_t>(std::clamp(nearest_int(x[16 * j + ii] / d), -32, 31) + 32);
    }
  }

  uint8_t* ql = y->ql;
  uint8_t* qh = y->qh;
  for (int j = 0; j < QK_K; j += 128, ql += 64, qh += 32) {
    for (int l = 0; l < 32; ++l) {
      const int q1 = L[j + l], q2 = L[j + l + 32], q3 = L[j + l + 64], q4 = L[j + l + 96];
      ql[l] = static_cast<uint8_t>((q1 & 0xf) | ((q3 & 0xf) << 4));
      ql[l + 32] = static_cast<uint8_t>((q2 & 0xf) | ((q4 & 0xf) << 4));
      qh[l] = static_cast<uint8_t>((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
    }
  }
}

}  // namespace kquant_detail

void quantize_row_q2_K_ref(const float* x, block_q2_K* y, int64_t n) {
  uint8_t L[QK_K];
  uint8_t Laux[16];
  float weights[16];
  float mins[QK_K / 16];
  float scales[QK_K / 16];
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    for (int j = 0; j < QK_K / 16; ++j) {
      for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]);
      scales[j] = fit_affine(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15, true);
    }
    kquant_detail::finish_q2_K(x, scales, mins, L, &y[i]);
  }
}

void quantize_row_q3_K_ref(const float* x, block_q3_K* y, int64_t n) {
  int8_t L[QK_K];
  float scales[QK_K / 16];
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    float max_scale = 0.0f;
    float amax = 0.0f;
    for (int j = 0; j < QK_K / 16; ++j) {
      scales[j] = fit_symmetric_refined(16, 4, x + 16 * j, L + 16 * j);
      const float scale = std::fabs(scales[j]);
      if (scale > amax) {
        amax = scale;
        max_scale = scales[j];
      }
    }

    std::memset(y[i].scales, 0, sizeof y[i].scales);
    if (max_scale != 0.0f) {
      const float iscale = -32.0f / max_scale;
      for (int j = 0; j < QK_K / 16; ++j) {
        // ggml keeps nearest_int's result in an int8_t
        const int8_t q = static_cast<int8_t>(nearest_int(iscale * scales[j]));
        const int l = std::clamp<int>(q, -32, 31) + 32;
        if (j < 8) {
          y[i].scales[j] = static_cast<uint8_t>(l & 0xf);
        } else {
          y[i].scales[j - 8] |= static_cast<uint8_t>((l & 0xf) << 4);
        }
        y[i].scales[j % 4 + 8] |= static_cast<uint8_t>((l >> 4) << (2 * (j / 4)));
      }
      y[i].d = fp32_to_fp16(1.0f / iscale);
    } else {
      y[i].d = fp32_to_fp16(0.0f);
    }

    const float d_all = fp16_to_fp32(y[i].d);
    for (int j = 0; j < QK_K / 16; ++j) {
      const float d = d_all * static_cast<float>(q3_k_scale(y[i].scales, j));
      if (d == 0.0f) continue;
      for (int ii = 0; ii < 16; ++ii) {
        L[16 * j + ii] = static_cast<int8_t>(std::clamp(nearest_int(x[16 * j + ii] / d), -4, 3) + 4);
      }
    }

    // hmask bit (j / 32) of byte (j % 32) is the high bit of element j
    std::memset(y[i].hmask, 0, sizeof y[i].hmask);
    for (int j = 0; j < QK_K; ++j) {
      if (L[j] > 3) {
        y[i].hmask[j % 32] |= static_cast<uint8_t>(1 << (j / 32));
        L[j] = static_cast<int8_t>(L[j] - 4);
      }
    }
    for (int j = 0; j < QK_K; j += 128) {
      for (int l = 0; l < 32; ++l) {
        y[i].qs[j / 4 + l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 2) |
                                                  (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
      }
    }
  }
}

void quantize_row_q4_K_ref(const float* x, block_q4_K* y, int64_t n) {
  uint8_t L[QK_K];
  float scales[QK_K / 32];
  float mins[QK_K / 32];
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    fit_q45_K(x, 15, -1.0f, 20, scales, mins, L);
    kquant_detail::finish_q4_K(x, scales, mins, L, &y[i]);
  }
}

void quantize_row_q5_K_ref(const float* x, block_q5_K* y, int64_t n) {
  uint8_t L[QK_K];
  float scales[QK_K / 32];
  float mins[QK_K / 32];
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    fit_q45_K(x, 31, -0.5f, 15, scales, mins, L);
    kquant_detail::finish_q5_K(x, scales, mins, L, &y[i]);
  }
}

void quantize_row_q6_K_ref(const float* x, block_q6_K* y, int64_t n) {
  int8_t L[QK_K];
  float scales[QK_K / 16];
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    for (int ib = 0; ib < QK_K / 16; ++ib) scales[ib] = fit_symmetric(16, 32, x + 16 * ib, L + 16 * ib);
    kquant_detail::finish_q6_K(x, scales, L, &y[i]);
  }
}

void quantize_row_q8_K_ref(const float* x, block_q8_K* y, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    const float max = signed_absmax(x, QK_K);
    if (max == 0.0f) {
      y[i].d = 0.0f;
      std::memset(y[i].qs, 0, sizeof y[i].qs);
      std::memset(y[i].bsums, 0, sizeof y[i].bsums);
      continue;
    }
    const float iscale = -127.0f / max;
    for (int j = 0; j < QK_K; ++j) {
      y[i].qs[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * x[j])));
    }
    for (int g = 0; g < QK_K / 16; ++g) {
      int sum = 0;
      for (int l = 0; l < 16; ++l) sum += y[i].qs[16 * g + l];
      y[i].bsums[g] = static_cast<int16_t>(sum);
    }
    y[i].d = 1.0f / iscale;
  }
}

}  // namespace plumb
