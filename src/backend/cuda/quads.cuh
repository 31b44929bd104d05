// Lane-sized decoding for the register matvec (matvec.cu): four consecutive values v .. v + 3 of
// a weight row (v % 4 == 0) as w_j = a * q[j] + b, where q[j] is the reference's integer (or,
// for F16, the weight itself) and a, b are the block's scale and offset as the scalar
// reference computes them (quant/ref_legacy.cpp, ref_kquants.cpp): so a * q[j] + b, rounded as
// the reference writes it, is the reference's value. The matvec sums a * (sum_j q[j] x[j]) +
// b * (sum_j x[j]) instead, which is why its bounds are float64's, not the reference's bits.
//
// Integers come out of the packed bytes without a conversion instruction: a byte placed in the
// low mantissa of 2^23 (0x4B0000nn) is the float 2^23 + nn, and subtracting 2^23 + offset is
// exact.
#pragma once

#include <cstdint>

#include "backend/cuda/dequant.cuh"

namespace plumb::cuda {

struct Quad {
  float q[4];
  float a = 1.0f;
  float b = 0.0f;
};

// Byte k of w minus `offset`, exactly: bias = 2^23 + offset.
__device__ __forceinline__ float byte_minus(uint32_t w, int k, float bias) {
  return __uint_as_float(__byte_perm(w, 0x4B000000u, 0x7650u | static_cast<uint32_t>(k))) - bias;
}
// Four bytes at a 2-byte aligned address.
__device__ __forceinline__ uint32_t load_u32_2(const uint8_t* p) {
  const auto* h = reinterpret_cast<const uint16_t*>(p);
  return static_cast<uint32_t>(__ldg(h)) | (static_cast<uint32_t>(__ldg(h + 1)) << 16);
}
__device__ __forceinline__ uint32_t load_u32(const uint8_t* p) { return __ldg(reinterpret_cast<const uint32_t*>(p)); }
__device__ __forceinline__ float load_f16(const uint8_t* p) { return f16(__ldg(reinterpret_cast<const uint16_t*>(p))); }

__device__ __forceinline__ void bytes_minus(Quad& o, uint32_t w, float bias) {
#pragma unroll
  for (int k = 0; k < 4; ++k) o.q[k] = byte_minus(w, k, bias);
}

constexpr float k2p23 = 8388608.0f;

// Types with a quad decoder; the others go through the staged matvec.
template <TensorType T>
constexpr bool kHasQuads = T == TensorType::F16 || T == TensorType::Q4_0 || T == TensorType::Q4_1 ||
                           T == TensorType::Q8_0 || T == TensorType::Q4_K || T == TensorType::Q6_K;
// Whether b can be nonzero (types with a minimum or offset per block).
template <TensorType T>
constexpr bool kHasOffset = T == TensorType::Q4_1 || T == TensorType::Q4_K;

// Values v .. v + 3 of `row` (16-byte aligned; v % 4 == 0).
template <TensorType T>
__device__ __forceinline__ Quad quad(const uint8_t* __restrict__ row, int64_t v) {
  Quad o;
  if constexpr (T == TensorType::F16) {
    const uint2 u = __ldg(reinterpret_cast<const uint2*>(row + 2 * v));
    o.q[0] = f16(static_cast<uint16_t>(u.x)), o.q[1] = f16(static_cast<uint16_t>(u.x >> 16));
    o.q[2] = f16(static_cast<uint16_t>(u.y)), o.q[3] = f16(static_cast<uint16_t>(u.y >> 16));
  } else if constexpr (T == TensorType::Q4_0) {
    // 18 bytes: d, then byte j holds values j (low nibble) and j + 16 (high).
    const uint8_t* b = row + 18 * (v / 32);
    const int j = static_cast<int>(v % 32);
    const uint32_t w = (load_u32_2(b + 2 + j % 16) >> (4 * (j / 16))) & 0x0F0F0F0Fu;
    bytes_minus(o, w, k2p23 + 8.0f);
    o.a = load_f16(b);
  } else if constexpr (T == TensorType::Q4_1) {
    // 20 bytes: d, m, then the nibbles as Q4_0's: w = q d + m.
    const uint8_t* b = row + 20 * (v / 32);
    const int j = static_cast<int>(v % 32);
    const uint32_t w = (load_u32(b + 4 + j % 16) >> (4 * (j / 16))) & 0x0F0F0F0Fu;
    bytes_minus(o, w, k2p23);
    const uint32_t dm = load_u32(b);
    o.a = f16(static_cast<uint16_t>(dm)), o.b = f16(static_cast<uint16_t>(dm >> 16));
  } else if constexpr (T == TensorType::Q8_0) {
    // 34 bytes: d, then 32 signed bytes (flipped to unsigned: +128).
    const uint8_t* b = row + 34 * (v / 32);
    bytes_minus(o, load_u32_2(b + 2 + v % 32) ^ 0x80808080u, k2p23 + 128.0f);
    o.a = load_f16(b);
  } else if constexpr (T == TensorType::Q4_K) {
    // 144 bytes: d, dmin, 12 bytes of six-bit scales and mins, then group s of 32 values in
    // the low (s even) or high nibbles of bytes 32 (s / 2) ..: w = (d sc) q - dmin m.
    const uint8_t* b = row + 144 * (v / 256);
    const int e = static_cast<int>(v % 256), s = e / 32;
    const uint32_t w = (load_u32(b + 16 + 32 * (s / 2) + e % 32) >> (4 * (s % 2))) & 0x0F0F0F0Fu;
    bytes_minus(o, w, k2p23);
    const uint4 h = __ldg(reinterpret_cast<const uint4*>(b));
    const auto byte = [&](int i) {  // scales byte i, by selects (an indexed array would live in local memory)
      const uint32_t word = i < 4 ? h.y : i < 8 ? h.z : h.w;
      return static_cast<int>((word >> (8 * (i % 4))) & 0xff);
    };
    int sc, mn;
    if (s < 4) {
      sc = byte(s) & 63, mn = byte(s + 4) & 63;
    } else {
      sc = (byte(s + 4) & 0xf) | ((byte(s - 4) >> 6) << 4);
      mn = (byte(s + 4) >> 4) | ((byte(s) >> 6) << 4);
    }
    o.a = f16(static_cast<uint16_t>(h.x)) * static_cast<float>(sc);
    o.b = -(f16(static_cast<uint16_t>(h.x >> 16)) * static_cast<float>(mn));
  } else if constexpr (T == TensorType::Q6_K) {
    // 210 bytes: ql[128], qh[64], 16 signed scales, d. Value e = 128 h + 32 c + l: low four
    // bits in ql[64 h + 32 (c % 2) + l] (nibble c / 2), high two in qh[32 h + l] (bits 2c).
    const uint8_t* b = row + 210 * (v / 256);
    const int e = static_cast<int>(v % 256), h = e / 128, c = (e % 128) / 32, l = e % 32;
    const uint32_t lo = (load_u32_2(b + 64 * h + 32 * (c % 2) + l) >> (4 * (c / 2))) & 0x0F0F0F0Fu;
    const uint32_t hi = ((load_u32_2(b + 128 + 32 * h + l) >> (2 * c)) & 0x03030303u) << 4;
    bytes_minus(o, lo | hi, k2p23 + 32.0f);
    const int8_t sc = static_cast<int8_t>(__ldg(b + 192 + e / 16));
    o.a = load_f16(b + 208) * static_cast<float>(sc);
  }
  return o;
}

}  // namespace plumb::cuda
