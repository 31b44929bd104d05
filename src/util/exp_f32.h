// exp for f32 with a stated error, for softmax, SiLU and perplexity scoring: one definition in
// scalar C++ (here) and in AVX2 lanes (exp_f32_avx2.h) that give the same bits for every input.
//
// Method (Cody-Waite reduction as Cephes' expf, with FMA and one compensated sum):
//   n = rint(x * log2(e)); r_hi = x - n * ln2_hi (exact: ln2_hi has 9 bits), c = -n * ln2_lo;
//   exp(r) = s + (s_err + c + r^2 * q(r)) with 1 + r_hi = s + s_err exactly (Fast2Sum) and
//   q = Taylor coefficients 1/2! .. 1/7! (truncation <= 5.2e-9 for |r| <= ln2/2);
//   exp(x) = exp(r) * 2^(n>>1) * 2^(n - (n>>1)): two scalings, exact except the last one, so a
//   result in the subnormal range is rounded once.
// Error, measured over all 2^32 floats against exp in double (tests/exp_f32_test.cpp, its
// exhaustive mode): at most 0.752 ulp of the exact result where that is a normal float (so
// within 1 ulp: the correctly rounded result or a neighbour), at most 0.80 units of 2^-149 in
// the subnormal range (never flushed to 0); +0 below -103.972 (where exp rounds to 0) and for
// -inf; +inf from 88.7228 (where it overflows) and for +inf; NaN for NaN.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

namespace plumb {

namespace exp_f32_detail {
inline constexpr float kLog2e = 1.44269504088896341f;
inline constexpr float kLn2Hi = 0.693359375f;        // 355/512: n * kLn2Hi is exact for |n| <= 2^15
inline constexpr float kLn2Lo = -2.12194440e-4f;     // ln2 - kLn2Hi
inline constexpr float kMaxArg = 89.0f;              // exp(89) overflows f32: inf after scaling
inline constexpr float kMinArg = -104.0f;            // exp(-104) < 2^-150: rounds to 0 after scaling
inline constexpr float kC2 = 1.0f / 2.0f;
inline constexpr float kC3 = 1.0f / 6.0f;
inline constexpr float kC4 = 1.0f / 24.0f;
inline constexpr float kC5 = 1.0f / 120.0f;
inline constexpr float kC6 = 1.0f / 720.0f;
inline constexpr float kC7 = 1.0f / 5040.0f;
}  // namespace exp_f32_detail

// e^x, same bits as the AVX2 lanes of exp_f32_avx2.h. Static: every translation unit keeps its
// own copy, so the one compiled with -mavx2 -mfma in *_avx2.cpp is never what the scalar path of
// a CPU without them calls.
static inline float exp_f32(float x) {
  using namespace exp_f32_detail;
  if (x != x) return x + x;  // NaN
  x = kMaxArg < x ? kMaxArg : x;
  x = kMinArg > x ? kMinArg : x;
  const float n = std::nearbyint(x * kLog2e);
  const float r_hi = std::fma(-n, kLn2Hi, x);  // exact
  const float c = -n * kLn2Lo;
  const float r = r_hi + c;
  const float r2 = r * r;
  float q = kC7;
  q = std::fma(q, r, kC6);
  q = std::fma(q, r, kC5);
  q = std::fma(q, r, kC4);
  q = std::fma(q, r, kC3);
  q = std::fma(q, r, kC2);
  const float s = 1.0f + r_hi;
  const float s_err = (1.0f - s) + r_hi;  // 1 + r_hi = s + s_err exactly (Fast2Sum)
  const float p = s + std::fma(q, r2, c + s_err);
  const auto ni = static_cast<int32_t>(n);
  const int32_t n1 = ni >> 1;
  const int32_t n2 = ni - n1;
  const float s1 = std::bit_cast<float>(static_cast<uint32_t>(n1 + 127) << 23);
  const float s2 = std::bit_cast<float>(static_cast<uint32_t>(n2 + 127) << 23);
  return p * s1 * s2;
}

// y[i] = exp_f32(x[i]) (AVX2 when the CPU has it; y may alias x).
void exp_f32_array(const float* x, float* y, int64_t n);
// The same with the scalar, AVX2 and AVX-512 code (tests; only call the last two on CPUs with
// AVX2 and AVX-512 F/DQ).
void exp_f32_array_scalar(const float* x, float* y, int64_t n);
void exp_f32_array_avx2(const float* x, float* y, int64_t n);
void exp_f32_array_avx512(const float* x, float* y, int64_t n);

}  // namespace plumb
