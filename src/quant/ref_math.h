// Small numeric helpers shared by the reference quantizers (internal to src/quant).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace plumb::quant_detail {

// ggml's nearest_int: adding 1.5·2^23 makes the FPU round fval to an integer (to nearest,
// ties to even) in the low mantissa bits, which are then read back. Exact for |fval| < 2^22;
// outside that range the result is the same garbage ggml gets, which keeps us bit-exact.
inline int nearest_int(float fval) {
  const float shifted = fval + 12582912.0f;
  int32_t bits;
  std::memcpy(&bits, &shifted, sizeof bits);
  return (bits & 0x007fffff) - 0x00400000;
}

// C's (int) conversion of a float as x86-64 performs it (cvttss2si): truncation toward zero,
// and INT32_MIN for NaN or out-of-range values, where C++ would leave the result undefined.
inline int32_t trunc_to_int(float v) {
  if (!(v > -2147483648.0f && v < 2147483648.0f)) return INT32_MIN;
  return static_cast<int32_t>(v);
}

// The first element of x[0..n) with the largest |x|, with its sign (0 for an all-zero group).
inline float signed_absmax(const float* x, int n) {
  float amax = 0.0f;
  float max = 0.0f;
  for (int j = 0; j < n; ++j) {
    const float ax = std::fabs(x[j]);
    if (ax > amax) {
      amax = ax;
      max = x[j];
    }
  }
  return max;
}

constexpr float kGroupMaxEps = 1e-15f;  // a group with max |x| below this is all zero

}  // namespace plumb::quant_detail
