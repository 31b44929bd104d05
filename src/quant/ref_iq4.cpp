// Reference (de)quantizers of the non-linear 4-bit formats IQ4_NL and IQ4_XS: ggml's
// quantize_row_iq4_nl_impl as ggml_quantize_chunk runs it without an importance matrix
// (weights x², ntry = 7), bit for bit. Quantizing is split in a per-block scale fit (the
// expensive part, which a SIMD path may replace) and a finish shared by all paths.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "quant/ref.h"
#include "quant/ref_blocks.h"
#include "quant/ref_iq4_detail.h"
#include "quant/ref_math.h"

namespace plumb {

using quant_detail::kGroupMaxEps;
using quant_detail::nearest_int;

namespace iq4_detail {

int nearest_grid_index(float x) {
  const float x2 = x + x;
  int idx = 0;
  for (int step = 8; step > 0; step >>= 1) {
    const int j = idx + step;
    idx = x2 >= kGridMid2[j] ? j : idx;
  }
  return idx;
}

float fit_block(const float* xb) {
  float weight[32];
  for (int j = 0; j < 32; ++j) weight[j] = xb[j] * xb[j];
  const float max = quant_detail::signed_absmax(xb, 32);
  if (std::fabs(max) < kGroupMaxEps) return 0.0f;
  const int8_t* values = kIQ4NLValues;
  float d = -max / static_cast<float>(values[0]);
  float id = 1.0f / d;
  float sumqx = 0.0f, sumq2 = 0.0f;
  for (int j = 0; j < 32; ++j) {
    const float q = static_cast<float>(values[nearest_grid_index(id * xb[j])]);
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

namespace {

// Grid indices of 32 elements against 1/scale, packed in split order (byte j: elements j, j+16).
void pack_block(const float* xb, float id, uint8_t* qs) {
  for (int j = 0; j < 16; ++j) {
    const int lo = nearest_grid_index(id * xb[j]);
    const int hi = nearest_grid_index(id * xb[j + 16]);
    qs[j] = static_cast<uint8_t>(lo | (hi << 4));
  }
}

}  // namespace

void finish_iq4_nl(const float* x, float scale, block_iq4_nl* y) {
  y->d = fp32_to_fp16(scale);
  pack_block(x, scale != 0.0f ? 1.0f / scale : 0.0f, y->qs);  // against the unrounded scale
}

void finish_iq4_xs(const float* x, const float* scales, block_iq4_xs* y) {
  float max_scale = 0.0f, amax_scale = 0.0f;
  for (int b = 0; b < QK_K / 32; ++b) {
    const float abs_d = std::fabs(scales[b]);
    if (abs_d > amax_scale) {
      amax_scale = abs_d;
      max_scale = scales[b];
    }
  }
  // 6-bit signed sub-scales against d; an all-zero super-block gets d = -0.0
  const float d = -max_scale / 32.0f;
  y->d = fp32_to_fp16(d);
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  y->scales_h = 0;
  for (int b = 0; b < QK_K / 32; ++b) {
    const int l = std::clamp(nearest_int(id * scales[b]), -32, 31);
    const float dl = d * static_cast<float>(l);
    pack_block(x + 32 * b, dl != 0.0f ? 1.0f / dl : 0.0f, y->qs + 16 * b);
    const int biased = l + 32;
    if (b % 2 == 0) {
      y->scales_l[b / 2] = static_cast<uint8_t>(biased & 0xf);
    } else {
      y->scales_l[b / 2] |= static_cast<uint8_t>((biased & 0xf) << 4);
    }
    y->scales_h = static_cast<uint16_t>(y->scales_h | ((biased >> 4) << (2 * b)));
  }
}

}  // namespace iq4_detail

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
  for (int64_t i = 0; i < n / QK4_NL; ++i, x += QK4_NL) {
    iq4_detail::finish_iq4_nl(x, iq4_detail::fit_block(x), &y[i]);
  }
}

void quantize_row_iq4_xs_ref(const float* x, block_iq4_xs* y, int64_t n) {
  float scales[QK_K / 32];
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    for (int b = 0; b < QK_K / 32; ++b) scales[b] = iq4_detail::fit_block(x + 32 * b);
    iq4_detail::finish_iq4_xs(x, scales, &y[i]);
  }
}

}  // namespace plumb
