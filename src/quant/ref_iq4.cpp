// Reference (de)quantizers of the non-linear 4-bit formats IQ4_NL and IQ4_XS: ggml's
// quantize_row_iq4_nl_impl as ggml_quantize_chunk runs it without an importance matrix
// (weights x², ntry = 7), bit for bit.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "quant/ref.h"
#include "quant/ref_blocks.h"
#include "quant/ref_math.h"

namespace plumb {

using quant_detail::kGroupMaxEps;
using quant_detail::nearest_int;

namespace {

constexpr int kSearchSteps = 7;  // ggml_quantize_chunk's ntry

// Index of the grid value nearest to x (ties toward the larger value), exactly as ggml's
// best_index_int8 decides it, float comparisons included.
int nearest_grid_index(float x) {
  const int8_t* val = kIQ4NLValues;
  if (x <= static_cast<float>(val[0])) return 0;
  if (x >= static_cast<float>(val[15])) return 15;
  int lo = 0, hi = 15;
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    if (x < static_cast<float>(val[mid])) {
      hi = mid;
    } else {
      lo = mid;
    }
  }
  return x - static_cast<float>(val[hi - 1]) < static_cast<float>(val[hi]) - x ? hi - 1 : hi;
}

// Best scale for one block of 32 (x[0..32) -> L[0..32) indices into the grid); 0 when the
// block is all zero. Tries the scale that maps max onto the grid's end, then 15 more.
float fit_block(const float* xb, uint8_t* Lb) {
  float weight[32];
  for (int j = 0; j < 32; ++j) weight[j] = xb[j] * xb[j];
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < 32; ++j) {
    const float ax = std::fabs(xb[j]);
    if (ax > amax) {
      amax = ax;
      max = xb[j];
    }
  }
  if (amax < kGroupMaxEps) {
    std::memset(Lb, 0, 32);
    return 0.0f;
  }
  const int8_t* values = kIQ4NLValues;
  float d = -max / static_cast<float>(values[0]);
  float id = 1.0f / d;
  float sumqx = 0.0f, sumq2 = 0.0f;
  for (int j = 0; j < 32; ++j) {
    const int l = nearest_grid_index(id * xb[j]);
    Lb[j] = static_cast<uint8_t>(l);
    const float q = static_cast<float>(values[l]);
    sumqx += weight[j] * q * xb[j];
    sumq2 += weight[j] * q * q;
  }
  d = sumq2 > 0.0f ? sumqx / sumq2 : 0.0f;
  float best = d * sumqx;
  for (int itry = -kSearchSteps; itry <= kSearchSteps; ++itry) {
    id = static_cast<float>(itry + values[0]) / max;
    sumqx = 0.0f;
    sumq2 = 0.0f;
    for (int j = 0; j < 32; ++j) {
      const float q = static_cast<float>(values[nearest_grid_index(id * xb[j])]);
      sumqx += weight[j] * q * xb[j];
      sumq2 += weight[j] * q * q;
    }
    if (sumq2 > 0.0f && sumqx * sumqx > best * sumq2) {
      d = sumqx / sumq2;
      best = d * sumqx;
    }
  }
  return d;
}

// Split-order nibble packing of n_blocks blocks of 32 indices.
void pack_nibbles(const uint8_t* L, uint8_t* qs, int n_blocks) {
  for (int i = 0; i < n_blocks; ++i) {
    for (int j = 0; j < 16; ++j) {
      qs[16 * i + j] = static_cast<uint8_t>(L[32 * i + j] | (L[32 * i + 16 + j] << 4));
    }
  }
}

}  // namespace

void dequantize_row_iq4_nl(const block_iq4_nl* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / QK4_NL; ++i, y += QK4_NL) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < 16; ++j) {
      y[j] = d * static_cast<float>(kIQ4NLValues[x[i].qs[j] & 0xf]);
      y[j + 16] = d * static_cast<float>(kIQ4NLValues[x[i].qs[j] >> 4]);
    }
  }
}

void dequantize_row_iq4_xs(const block_iq4_xs* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    for (int b = 0; b < QK_K / 32; ++b, y += 32) {
      const int ls = ((x[i].scales_l[b / 2] >> (4 * (b % 2))) & 0xf) | (((x[i].scales_h >> (2 * b)) & 3) << 4);
      const float dl = d * static_cast<float>(ls - 32);
      const uint8_t* qs = x[i].qs + 16 * b;
      for (int j = 0; j < 16; ++j) {
        y[j] = dl * static_cast<float>(kIQ4NLValues[qs[j] & 0xf]);
        y[j + 16] = dl * static_cast<float>(kIQ4NLValues[qs[j] >> 4]);
      }
    }
  }
}

void quantize_row_iq4_nl_ref(const float* x, block_iq4_nl* y, int64_t n) {
  uint8_t L[QK4_NL];
  for (int64_t i = 0; i < n / QK4_NL; ++i, x += QK4_NL) {
    const float scale = fit_block(x, L);
    y[i].d = fp32_to_fp16(scale);
    // re-pick the indices against the final (unrounded) scale
    const float id = scale != 0.0f ? 1.0f / scale : 0.0f;
    for (int j = 0; j < QK4_NL; ++j) L[j] = static_cast<uint8_t>(nearest_grid_index(id * x[j]));
    pack_nibbles(L, y[i].qs, 1);
  }
}

void quantize_row_iq4_xs_ref(const float* x, block_iq4_xs* y, int64_t n) {
  uint8_t L[QK_K];
  float scales[QK_K / 32];
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    float max_scale = 0.0f, amax_scale = 0.0f;
    for (int b = 0; b < QK_K / 32; ++b) {
      scales[b] = fit_block(x + 32 * b, L + 32 * b);
      const float abs_d = std::fabs(scales[b]);
      if (abs_d > amax_scale) {
        amax_scale = abs_d;
        max_scale = scales[b];
      }
    }
    // 6-bit signed sub-scales against d; an all-zero super-block gets d = -0.0
    const float d = -max_scale / 32.0f;
    y[i].d = fp32_to_fp16(d);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].scales_h = 0;
    for (int b = 0; b < QK_K / 32; ++b) {
      const int l = std::clamp(nearest_int(id * scales[b]), -32, 31);
      const float dl = d * static_cast<float>(l);
      const float idl = dl != 0.0f ? 1.0f / dl : 0.0f;
      for (int j = 0; j < 32; ++j) {
        L[32 * b + j] = static_cast<uint8_t>(nearest_grid_index(idl * x[32 * b + j]));
      }
      const int biased = l + 32;
      if (b % 2 == 0) {
        y[i].scales_l[b / 2] = static_cast<uint8_t>(biased & 0xf);
      } else {
        y[i].scales_l[b / 2] |= static_cast<uint8_t>((biased & 0xf) << 4);
      }
      y[i].scales_h = static_cast<uint16_t>(y[i].scales_h | ((biased >> 4) << (2 * b)));
    }
    pack_nibbles(L, y[i].qs, QK_K / 32);
  }
}

}  // namespace plumb
