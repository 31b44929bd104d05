// IEEE binary16 rounding done on the bits, shared by the host reference (half.cpp's
// fp32_to_fp16) and the CUDA backend's F16 KV store, so both round exactly alike.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define PLUMB_HOST_DEVICE __host__ __device__
#else
#define PLUMB_HOST_DEVICE
#endif

namespace plumb {

// The binary16 nearest to the binary32 with bits u (ties to even), as ggml_fp32_to_fp16: NaN to
// ggml's canonical quiet NaN, |f| >= 65520 to infinity, subnormals rounded once. Static: each
// translation unit keeps its own copy (see scripts/check-simd-linkage).
PLUMB_HOST_DEVICE static inline uint16_t fp16_bits_of_fp32_bits(uint32_t u) {
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

}  // namespace plumb
