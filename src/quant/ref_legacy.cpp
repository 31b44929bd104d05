// Reference (de)quantizers of the 32-element block formats: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
// Q8_1. Bit-exact with ggml (ggml-quants.c): every float operation below is rounded on its
// own, in the order written (the project compiles with -ffp-contract=off).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "quant/ref.h"
#include "quant/ref_blocks.h"
#include "quant/ref_math.h"

namespace plumb {

using quant_detail::signed_absmax;
using quant_detail::trunc_to_int;

namespace {

void min_max(const float* x, int n, float* min_out, float* max_out) {
  float min = 3.402823466e+38f;
  float max = -3.402823466e+38f;
  for (int j = 0; j < n; ++j) {
    if (x[j] < min) min = x[j];
    if (x[j] > max) max = x[j];
  }
  *min_out = min;
  *max_out = max;
}

float absmax(const float* x, int n) {
  float amax = 0.0f;
  for (int j = 0; j < n; ++j) {
    const float a = std::fabs(x[j]);
    amax = amax > a ? amax : a;
  }
  return amax;
}

// 5-bit values q[0..32) split into low nibbles (split order: byte j holds elements j and j+16)
// and the fifth bits, bit j of qh for element j.
void pack_q5(const uint8_t* q, uint8_t* qs, uint8_t* qh_bytes) {
  uint32_t qh = 0;
  for (int j = 0; j < 16; ++j) {
    qs[j] = static_cast<uint8_t>((q[j] & 0x0f) | ((q[j + 16] & 0x0f) << 4));
    qh |= static_cast<uint32_t>((q[j] >> 4) & 1) << j;
    qh |= static_cast<uint32_t>((q[j + 16] >> 4) & 1) << (j + 16);
  }
  const uint8_t le[4] = {static_cast<uint8_t>(qh), static_cast<uint8_t>(qh >> 8),
                         static_cast<uint8_t>(qh >> 16), static_cast<uint8_t>(qh >> 24)};
  std::memcpy(qh_bytes, le, 4);
}

uint32_t load_qh(const uint8_t* qh) {
  return static_cast<uint32_t>(qh[0]) | static_cast<uint32_t>(qh[1]) << 8 |
         static_cast<uint32_t>(qh[2]) << 16 | static_cast<uint32_t>(qh[3]) << 24;
}

}  // namespace

// ---------------------------------------------------------------- dequantization

void dequantize_row_q4_0(const block_q4_0* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / QK4_0; ++i, y += QK4_0) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < 16; ++j) {
      y[j] = static_cast<float>((x[i].qs[j] & 0x0f) - 8) * d;
      y[j + 16] = static_cast<float>((x[i].qs[j] >> 4) - 8) * d;
    }
  }
}

void dequantize_row_q4_1(const block_q4_1* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / QK4_1; ++i, y += QK4_1) {
    const float d = fp16_to_fp32(x[i].d);
    const float m = fp16_to_fp32(x[i].m);
    for (int j = 0; j < 16; ++j) {
      y[j] = static_cast<float>(x[i].qs[j] & 0x0f) * d + m;
      y[j + 16] = static_cast<float>(x[i].qs[j] >> 4) * d + m;
    }
  }
}

void dequantize_row_q5_0(const block_q5_0* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / QK5_0; ++i, y += QK5_0) {
    const float d = fp16_to_fp32(x[i].d);
    const uint32_t qh = load_qh(x[i].qh);
    for (int j = 0; j < 16; ++j) {
      const int q0 = (x[i].qs[j] & 0x0f) | static_cast<int>(((qh >> j) & 1) << 4);
      const int q1 = (x[i].qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1) << 4);
      y[j] = static_cast<float>(q0 - 16) * d;
      y[j + 16] = static_cast<float>(q1 - 16) * d;
    }
  }
}

void dequantize_row_q5_1(const block_q5_1* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / QK5_1; ++i, y += QK5_1) {
    const float d = fp16_to_fp32(x[i].d);
    const float m = fp16_to_fp32(x[i].m);
    const uint32_t qh = load_qh(x[i].qh);
    for (int j = 0; j < 16; ++j) {
      const int q0 = (x[i].qs[j] & 0x0f) | static_cast<int>(((qh >> j) & 1) << 4);
      const int q1 = (x[i].qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1) << 4);
      y[j] = static_cast<float>(q0) * d + m;
      y[j + 16] = static_cast<float>(q1) * d + m;
    }
  }
}

void dequantize_row_q8_0(const block_q8_0* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / QK8_0; ++i, y += QK8_0) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < QK8_0; ++j) y[j] = static_cast<float>(x[i].qs[j]) * d;
  }
}

void dequantize_row_q8_1(const block_q8_1* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / QK8_1; ++i, y += QK8_1) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < QK8_1; ++j) y[j] = static_cast<float>(x[i].qs[j]) * d;
  }
}

// ---------------------------------------------------------------- quantization

void quantize_row_q4_0_ref(const float* x, block_q4_0* y, int64_t n) {
  for (int64_t i = 0; i < n / QK4_0; ++i, x += QK4_0) {
    const float d = signed_absmax(x, QK4_0) / -8.0f;  // all-zero block: d = -0.0
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    for (int j = 0; j < 16; ++j) {
      // ggml converts to int8_t first, then clamps
      const int q0 = std::min(15, static_cast<int>(static_cast<int8_t>(trunc_to_int(x[j] * id + 8.5f))));
      const int q1 =
          std::min(15, static_cast<int>(static_cast<int8_t>(trunc_to_int(x[j + 16] * id + 8.5f))));
      y[i].qs[j] = static_cast<uint8_t>(static_cast<uint8_t>(q0) | (static_cast<uint8_t>(q1) << 4));
    }
  }
}

void quantize_row_q4_1_ref(const float* x, block_q4_1* y, int64_t n) {
  for (int64_t i = 0; i < n / QK4_1; ++i, x += QK4_1) {
    float min, max;
    min_max(x, QK4_1, &min, &max);
    const float d = (max - min) / 15.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    y[i].m = fp32_to_fp16(min);
    for (int j = 0; j < 16; ++j) {
      const int q0 =
          std::min(15, static_cast<int>(static_cast<int8_t>(trunc_to_int((x[j] - min) * id + 0.5f))));
      const int q1 = std::min(
          15, static_cast<int>(static_cast<int8_t>(trunc_to_int((x[j + 16] - min) * id + 0.5f))));
      y[i].qs[j] = static_cast<uint8_t>(static_cast<uint8_t>(q0) | (static_cast<uint8_t>(q1) << 4));
    }
  }
}

void quantize_row_q5_0_ref(const float* x, block_q5_0* y, int64_t n) {
  uint8_t q[QK5_0];
  for (int64_t i = 0; i < n / QK5_0; ++i, x += QK5_0) {
    const float d = signed_absmax(x, QK5_0) / -16.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    for (int j = 0; j < QK5_0; ++j) {
      q[j] = static_cast<uint8_t>(
          std::min(31, static_cast<int>(static_cast<int8_t>(trunc_to_int(x[j] * id + 16.5f)))));
    }
    pack_q5(q, y[i].qs, y[i].qh);
  }
}

void quantize_row_q5_1_ref(const float* x, block_q5_1* y, int64_t n) {
  uint8_t q[QK5_1];
  for (int64_t i = 0; i < n / QK5_1; ++i, x += QK5_1) {
    float min, max;
    min_max(x, QK5_1, &min, &max);
    const float d = (max - min) / 31.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    y[i].m = fp32_to_fp16(min);
    for (int j = 0; j < QK5_1; ++j) {
      q[j] = static_cast<uint8_t>(trunc_to_int((x[j] - min) * id + 0.5f));  // no clamp in ggml
    }
    pack_q5(q, y[i].qs, y[i].qh);
  }
}

void quantize_row_q8_0_ref(const float* x, block_q8_0* y, int64_t n) {
  for (int64_t i = 0; i < n / QK8_0; ++i, x += QK8_0) {
    const float d = absmax(x, QK8_0) / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    for (int j = 0; j < QK8_0; ++j) {
      y[i].qs[j] = static_cast<int8_t>(trunc_to_int(std::round(x[j] * id)));
    }
  }
}

void quantize_row_q8_1_ref(const float* x, block_q8_1* y, int64_t n) {
  for (int64_t i = 0; i < n / QK8_1; ++i, x += QK8_1) {
    const float d = absmax(x, QK8_1) / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    int sum = 0;
    for (int j = 0; j < QK8_1; ++j) {
      y[i].qs[j] = static_cast<int8_t>(trunc_to_int(std::round(x[j] * id)));
      sum += y[i].qs[j];
    }
    y[i].s = fp32_to_fp16(static_cast<float>(sum) * d);  // s uses the unrounded f32 d
  }
}

// Rounds to nearest, ties to even, as _mm256_round_ps(_MM_ROUND_NEAREST) does (the default
// rounding mode of std::nearbyint).
void quantize_row_q8_0_cpu(const float* x, block_q8_0* y, int64_t n) {
  for (int64_t i = 0; i < n / QK8_0; ++i, x += QK8_0) {
    const float amax = absmax(x, QK8_0);
    y[i].d = fp32_to_fp16(amax / 127.0f);
    const float mult = amax != 0.0f ? 127.0f / amax : 0.0f;
    for (int j = 0; j < QK8_0; ++j) {
      y[i].qs[j] = static_cast<int8_t>(std::clamp(trunc_to_int(std::nearbyint(x[j] * mult)), -128, 127));
    }
  }
}

void quantize_row_q8_1_cpu(const float* x, block_q8_1* y, int64_t n) {
  for (int64_t i = 0; i < n / QK8_1; ++i, x += QK8_1) {
    const float amax = absmax(x, QK8_1);
    const float d = amax / 127.0f;
    y[i].d = fp32_to_fp16(d);
    const float mult = amax != 0.0f ? 127.0f / amax : 0.0f;
    int sum = 0;
    for (int j = 0; j < QK8_1; ++j) {
      y[i].qs[j] = static_cast<int8_t>(std::clamp(trunc_to_int(std::nearbyint(x[j] * mult)), -128, 127));
      sum += y[i].qs[j];
    }
    y[i].s = fp32_to_fp16(d * static_cast<float>(sum));
  }
}

}  // namespace plumb
