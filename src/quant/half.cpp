// IEEE binary16 and bfloat16 conversions, bit-exact with ggml's software routines.
#include <cstring>

#include "quant/ref.h"
#include "quant/ref_blocks.h"

namespace plumb {

namespace {

uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

float float_of(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

}  // namespace

float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  if (exp == 0x1f) {
    // inf, or NaN with its payload kept and (as ggml's float arithmetic does) quieted
    return float_of(sign | 0x7f800000 | (mant << 13) | (mant != 0 ? 0x00400000u : 0u));
  }
  if (exp != 0) return float_of(sign | ((exp + 112) << 23) | (mant << 13));
  if (mant == 0) return float_of(sign);
  // subnormal: mant·2^-24; normalize so the leading one becomes the implicit bit
  int e = 113;  // biased f32 exponent of 2^-14
  while ((mant & 0x400) == 0) {
    mant <<= 1;
    --e;
  }
  return float_of(sign | (static_cast<uint32_t>(e) << 23) | ((mant & 0x3ff) << 13));
}

uint16_t fp32_to_fp16(float f) {
  const uint32_t u = bits_of(f);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000);
  const uint32_t a = u & 0x7fffffff;
  if (a > 0x7f800000) return sign | 0x7e00;     // NaN: ggml's canonical quiet NaN
  if (a >= 0x477ff000) return sign | 0x7c00;    // |f| >= 65520 rounds to infinity
  if (a >= 0x38800000) {                        // |f| >= 2^-14: a normal half
    const uint32_t rebased = a - (112u << 23);  // exponent bias 127 -> 15
    const uint32_t rounded = rebased + 0xfff + ((rebased >> 13) & 1);  // nearest, ties to even
    return sign | static_cast<uint16_t>(rounded >> 13);
  }
  // subnormal half (or zero): round |f| / 2^-24 to an integer, ties to even
  const int shift = 126 - static_cast<int>(a >> 23);  // >= 14
  if (shift >= 25) return sign;                        // below 2^-25: rounds to zero
  const uint32_t m = (a & 0x7fffff) | 0x800000;
  uint32_t q = m >> shift;
  const uint32_t rem = m & ((1u << shift) - 1);
  const uint32_t half = 1u << (shift - 1);
  if (rem > half || (rem == half && (q & 1))) ++q;
  return sign | static_cast<uint16_t>(q);
}

float bf16_to_fp32(uint16_t h) { return float_of(static_cast<uint32_t>(h) << 16); }

uint16_t fp32_to_bf16(float f) {
  const uint32_t u = bits_of(f);
  if ((u & 0x7fffffff) > 0x7f800000) return static_cast<uint16_t>((u >> 16) | 0x40);  // quiet NaN
  return static_cast<uint16_t>((u + 0x7fff + ((u >> 16) & 1)) >> 16);  // nearest, ties to even
}

void dequantize_row_f16(const fp16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = fp16_to_fp32(x[i]);
}

void dequantize_row_bf16(const bf16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = bf16_to_fp32(x[i]);
}

void dequantize_row_f64(const double* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(x[i]);
}

void quantize_row_f16_ref(const float* x, fp16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_fp16(x[i]);
}

void quantize_row_bf16_ref(const float* x, bf16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_bf16(x[i]);
}

}  // namespace plumb
