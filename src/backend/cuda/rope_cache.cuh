// The arithmetic that RoPE and the KV store share between their own kernels (ops.cu) and the
// Q/K/V product that does their work in its epilogue (matvec.cu), so that both give the same bits.
#pragma once

#include <cstdint>

#include "quant/half_bits.h"

namespace plumb::cuda {

// A pair (x0, x1) rotated by the angle whose cosine and sine are cs and sn (the CPU's expressions;
// -fmad=false keeps each product rounded).
__device__ __forceinline__ void rotate_pair(float& x0, float& x1, float cs, float sn) {
  const float y0 = x0 * cs - x1 * sn;
  const float y1 = x0 * sn + x1 * cs;
  x0 = y0, x1 = y1;
}

// Element `at` of a KV cache: F16 rounded to nearest even (quant/half.cpp's fp32_to_fp16 on the
// same bits), or F32.
__device__ __forceinline__ void store_cached(bool f16, void* cache, int64_t at, float v) {
  if (f16) {
    static_cast<uint16_t*>(cache)[at] = fp16_bits_of_fp32_bits(__float_as_uint(v));
  } else {
    static_cast<float*>(cache)[at] = v;
  }
}

}  // namespace plumb::cuda
