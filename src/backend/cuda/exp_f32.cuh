// exp for f32 on the device (softmax, SiLU) and SwiGLU: util/exp_f32.h's steps in the same order, so the
// same bits as the CPU's for every input.
#pragma once

#include <cstdint>

namespace plumb::cuda {

// (The CUDA op tests check SwiGLU and attention, which use it, against the CPU bit for bit.)
__device__ __forceinline__ float exp_f32(float x) {
  constexpr float kLog2e = 1.44269504088896341f, kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
  constexpr float kMaxArg = 89.0f, kMinArg = -104.0f;
  if (x != x) return x + x;
  x = kMaxArg < x ? kMaxArg : x;
  x = kMinArg > x ? kMinArg : x;
  const float n = rintf(x * kLog2e);
  const float r_hi = fmaf(-n, kLn2Hi, x);
  const float c = -n * kLn2Lo;
  const float r = r_hi + c;
  const float r2 = r * r;
  float q = 1.0f / 5040.0f;
  q = fmaf(q, r, 1.0f / 720.0f);
  q = fmaf(q, r, 1.0f / 120.0f);
  q = fmaf(q, r, 1.0f / 24.0f);
  q = fmaf(q, r, 1.0f / 6.0f);
  q = fmaf(q, r, 1.0f / 2.0f);
  const float s = 1.0f + r_hi;
  const float s_err = (1.0f - s) + r_hi;
  const float p = s + fmaf(q, r2, c + s_err);
  const auto ni = static_cast<int32_t>(n);
  const int32_t n1 = ni >> 1;
  const int32_t n2 = ni - n1;
  const float s1 = __uint_as_float(static_cast<uint32_t>(n1 + 127) << 23);
  const float s2 = __uint_as_float(static_cast<uint32_t>(n2 + 127) << 23);
  return p * s1 * s2;
}

// SwiGLU of one value: silu(g) * u, the CPU's operations in its order.
__device__ __forceinline__ float swiglu_value(float g, float u) { return g / (1.0f + exp_f32(-g)) * u; }

}  // namespace plumb::cuda
