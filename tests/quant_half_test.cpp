// Edge cases of the fp16 and bf16 conversions (signed zeros, subnormals, infinities, NaNs,
// rounding ties), which must match ggml's software conversions bit for bit.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "quant/ref.h"

namespace plumb {
namespace {

float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

TEST(QuantHalf, Fp32ToFp16Basics) {
  EXPECT_EQ(fp32_to_fp16(0.0f), 0x0000);
  EXPECT_EQ(fp32_to_fp16(-0.0f), 0x8000);
  EXPECT_EQ(fp32_to_fp16(1.0f), 0x3c00);
  EXPECT_EQ(fp32_to_fp16(-2.0f), 0xc000);
  EXPECT_EQ(fp32_to_fp16(65504.0f), 0x7bff);  // largest finite half
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -14)), 0x0400);  // smallest normal
}

TEST(QuantHalf, Fp32ToFp16RoundsToNearestEven) {
  // halfway between 1 and the next half (1 + 2^-10): even mantissa (1) wins
  EXPECT_EQ(fp32_to_fp16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
  // halfway between 1 + 2^-10 (odd) and 1 + 2^-9 (even)
  EXPECT_EQ(fp32_to_fp16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  // just above a tie rounds up
  EXPECT_EQ(fp32_to_fp16(std::nextafter(1.0f + std::ldexp(1.0f, -11), 2.0f)), 0x3c01);
  // a tie whose rounding carries into the exponent
  EXPECT_EQ(fp32_to_fp16(2.0f - std::ldexp(1.0f, -11)), 0x4000);
}

TEST(QuantHalf, Fp32ToFp16OverflowsToInfinity) {
  EXPECT_EQ(fp32_to_fp16(std::nextafter(65520.0f, 0.0f)), 0x7bff);
  EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7c00);  // tie between 65504 (odd) and 65536: infinity
  EXPECT_EQ(fp32_to_fp16(-1e10f), 0xfc00);
  EXPECT_EQ(fp32_to_fp16(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_EQ(fp32_to_fp16(-std::numeric_limits<float>::infinity()), 0xfc00);
  EXPECT_EQ(fp32_to_fp16(std::numeric_limits<float>::max()), 0x7c00);
}

TEST(QuantHalf, Fp32ToFp16Subnormals) {
  const float tiny = std::ldexp(1.0f, -24);  // smallest half subnormal
  EXPECT_EQ(fp32_to_fp16(tiny), 0x0001);
  EXPECT_EQ(fp32_to_fp16(-tiny), 0x8001);
  EXPECT_EQ(fp32_to_fp16(1023 * tiny), 0x03ff);
  EXPECT_EQ(fp32_to_fp16(tiny / 2), 0x0000);                               // tie with 0: even
  EXPECT_EQ(fp32_to_fp16(-tiny / 2), 0x8000);                              // keeps its sign
  EXPECT_EQ(fp32_to_fp16(std::nextafter(tiny / 2, 1.0f)), 0x0001);         // above the tie
  EXPECT_EQ(fp32_to_fp16(3 * tiny / 2), 0x0002);                           // tie 1.5: even
  EXPECT_EQ(fp32_to_fp16(5 * tiny / 2), 0x0002);                           // tie 2.5: even
  EXPECT_EQ(fp32_to_fp16(1023.5f * tiny), 0x0400);  // rounds up into the smallest normal
  EXPECT_EQ(fp32_to_fp16(std::numeric_limits<float>::denorm_min()), 0x0000);
  EXPECT_EQ(fp32_to_fp16(1e-30f), 0x0000);
}

TEST(QuantHalf, Fp32ToFp16NaNBecomesCanonicalQuietNaN) {
  EXPECT_EQ(fp32_to_fp16(from_bits(0x7fc00000)), 0x7e00);
  EXPECT_EQ(fp32_to_fp16(from_bits(0x7f800001)), 0x7e00);  // signalling, payload dropped
  EXPECT_EQ(fp32_to_fp16(from_bits(0xffc12345)), 0xfe00);
}

TEST(QuantHalf, Fp16ToFp32) {
  EXPECT_EQ(bits(fp16_to_fp32(0x0000)), 0x00000000u);
  EXPECT_EQ(bits(fp16_to_fp32(0x8000)), 0x80000000u);
  EXPECT_EQ(fp16_to_fp32(0x3c00), 1.0f);
  EXPECT_EQ(fp16_to_fp32(0x7bff), 65504.0f);
  EXPECT_EQ(fp16_to_fp32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(fp16_to_fp32(0x83ff), -1023 * std::ldexp(1.0f, -24));
  EXPECT_EQ(fp16_to_fp32(0x7c00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(fp16_to_fp32(0xfc00), -std::numeric_limits<float>::infinity());
  EXPECT_EQ(bits(fp16_to_fp32(0x7e00)), 0x7fc00000u);
  EXPECT_EQ(bits(fp16_to_fp32(0x7c01)), 0x7fc02000u);  // payload kept, quieted as ggml does
  EXPECT_EQ(bits(fp16_to_fp32(0xfd55)), 0xffeaa000u);
}

TEST(QuantHalf, Fp16RoundTripsEveryNonNaNValue) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0) continue;
    ASSERT_EQ(fp32_to_fp16(fp16_to_fp32(static_cast<uint16_t>(h))), h) << std::hex << h;
  }
}

TEST(QuantHalf, Bf16) {
  EXPECT_EQ(fp32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(fp32_to_bf16(-0.0f), 0x8000);
  EXPECT_EQ(fp32_to_bf16(from_bits(0x3f808000)), 0x3f80);  // tie: even
  EXPECT_EQ(fp32_to_bf16(from_bits(0x3f818000)), 0x3f82);  // tie: even (up)
  EXPECT_EQ(fp32_to_bf16(from_bits(0x3f808001)), 0x3f81);
  EXPECT_EQ(fp32_to_bf16(from_bits(0x3f807fff)), 0x3f80);
  EXPECT_EQ(fp32_to_bf16(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_EQ(fp32_to_bf16(std::numeric_limits<float>::max()), 0x7f80);  // rounds to infinity
  EXPECT_EQ(fp32_to_bf16(from_bits(0x00012345)), 0x0001);  // subnormals are not flushed
  EXPECT_EQ(fp32_to_bf16(from_bits(0x80008000)), 0x8000);  // tie at the subnormal end: even
  EXPECT_EQ(fp32_to_bf16(from_bits(0x7f800001)), 0x7fc0);  // NaN: top half | 0x40
  EXPECT_EQ(fp32_to_bf16(from_bits(0xffa00000)), 0xffe0);
  EXPECT_EQ(fp32_to_bf16(from_bits(0x7fffffff)), 0x7fff);  // no rounding carry out of a NaN
  EXPECT_EQ(bits(bf16_to_fp32(0x8000)), 0x80000000u);
  EXPECT_EQ(bits(bf16_to_fp32(0x0001)), 0x00010000u);
  EXPECT_EQ(bits(bf16_to_fp32(0x7fc1)), 0x7fc10000u);
}

}  // namespace
}  // namespace plumb
