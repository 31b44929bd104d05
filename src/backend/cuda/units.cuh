// Lane-sized pieces of a weight row for the register matvec (matvec.cu). A unit is 32 values of
// a row that one lane reads with a few wide loads: run A, 16 consecutive values from
// run_start(u, 0), and run B, 16 from run_start(u, 1), chosen so that each run shares one scale
// (and offset) in the block layout. value(run, i) is the reference's integer (or, for F16, the
// weight) and scales() the run's scale a and offset b, as the scalar reference computes them
// (quant/ref_legacy.cpp, ref_kquants.cpp): w = a * q + b. The matvec sums a * (q . x) + b * sum(x)
// per run, which is why its bounds are float64's, not the reference's bits.
//
// Integers come out of the packed bytes without a conversion instruction: a byte placed in the
// low mantissa of 2^23 (0x4B0000nn) is the float 2^23 + nn, and subtracting 2^23 + offset is
// exact.
//
// The integer units (kInt: Q4_K and Q6_K) also give each run's integers as bytes, four values a
// word (bytes(run, k): values 4k .. 4k + 3, byte i value 4k + i), kZero above the reference's
// integer (q = byte - kZero): the matvec multiplies them with the 16-bit activations exactly in
// int32, two values an instruction (dp2a). The other types kept the float units: with integer
// units, staging the activations cost them more than the products saved (H100, TinyLlama tg128:
// Q8_0 -6 %, Q4_0 within the rounds' spread; docs/PERFORMANCE.md).
#pragma once

#include <cstdint>
#include <cstring>

#include "backend/cuda/dequant.cuh"
#include "backend/cuda/summed.h"

namespace plumb::cuda {

constexpr float k2p23 = 8388608.0f;

// The units are host code too (units_check.cu tests their layouts on the CPU): the device's
// intrinsics, and their host equivalents.
#define PLUMB_UNIT __host__ __device__ __forceinline__
#ifdef __CUDA_ARCH__  // the host compiler would warn of an unknown pragma
#define PLUMB_UNROLL _Pragma("unroll")
#else
#define PLUMB_UNROLL
#endif
template <typename V>
PLUMB_UNIT V ldg(const V* p) {
#ifdef __CUDA_ARCH__
  return __ldg(p);
#else
  return *p;
#endif
}
PLUMB_UNIT float bits_float(uint32_t u) {
#ifdef __CUDA_ARCH__
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
#endif
}
PLUMB_UNIT uint32_t byte_perm(uint32_t x, uint32_t y, uint32_t s) {
#ifdef __CUDA_ARCH__
  return __byte_perm(x, y, s);
#else  // the PTX prmt rule for selectors 0-7 (no sign replication)
  const uint64_t b = (static_cast<uint64_t>(y) << 32) | x;
  uint32_t r = 0;
  for (int i = 0; i < 4; ++i) r |= static_cast<uint32_t>((b >> (8 * ((s >> (4 * i)) & 7))) & 0xff) << (8 * i);
  return r;
#endif
}
PLUMB_UNIT float half_float(uint16_t h) { return __half2float(__ushort_as_half(h)); }
// c + the products of a's two int16 halves with bytes 0 and 1 (lo) or 2 and 3 (hi) of b, each
// byte signed: exact in int32 for the matvec's operands (|sum| < 2^31).
PLUMB_UNIT int dp2a_lo(uint32_t a, uint32_t b, int c) {
#ifdef __CUDA_ARCH__
  return __dp2a_lo(static_cast<int>(a), static_cast<int>(b), c);
#else
  return c + static_cast<int16_t>(a) * static_cast<int8_t>(b) + static_cast<int16_t>(a >> 16) * static_cast<int8_t>(b >> 8);
#endif
}
PLUMB_UNIT int dp2a_hi(uint32_t a, uint32_t b, int c) {
#ifdef __CUDA_ARCH__
  return __dp2a_hi(static_cast<int>(a), static_cast<int>(b), c);
#else
  return c + static_cast<int16_t>(a) * static_cast<int8_t>(b >> 16) + static_cast<int16_t>(a >> 16) * static_cast<int8_t>(b >> 24);
#endif
}

// Byte k of w minus `offset`, exactly: bias = 2^23 + offset.
PLUMB_UNIT float byte_minus(uint32_t w, int k, float bias) {
  return bits_float(byte_perm(w, 0x4B000000u, 0x7650u | static_cast<uint32_t>(k))) - bias;
}
// Words at 2-byte aligned addresses (blocks of 18, 34 or 210 bytes).
template <int N>
PLUMB_UNIT void load_words_2(const uint8_t* p, uint32_t (&w)[N]) {
  const auto* h = reinterpret_cast<const uint16_t*>(p);
PLUMB_UNROLL
  for (int i = 0; i < N; ++i) w[i] = static_cast<uint32_t>(ldg(h + 2 * i)) | (static_cast<uint32_t>(ldg(h + 2 * i + 1)) << 16);
}
PLUMB_UNIT void load_words_16(const uint8_t* p, uint32_t (&w)[4]) {
  const uint4 v = ldg(reinterpret_cast<const uint4*>(p));
  w[0] = v.x, w[1] = v.y, w[2] = v.z, w[3] = v.w;
}
PLUMB_UNIT float half_at(const uint8_t* p) { return half_float(ldg(reinterpret_cast<const uint16_t*>(p))); }
PLUMB_UNIT float lo_half(uint32_t w) { return half_float(static_cast<uint16_t>(w)); }
PLUMB_UNIT float hi_half(uint32_t w) { return half_float(static_cast<uint16_t>(w >> 16)); }

template <TensorType T> struct Unit { static constexpr bool kExists = false; };

// F16: 32 consecutive values, 64 bytes.
template <> struct Unit<TensorType::F16> {
  static constexpr bool kExists = true, kOffset = false, kInt = false;
  uint32_t w[16];
  static PLUMB_UNIT int64_t run_start(int64_t u, int run) { return 32 * u + 16 * run; }
  PLUMB_UNIT void load(const uint8_t* row, int64_t u) {
PLUMB_UNROLL
    for (int i = 0; i < 4; ++i) {
      const uint4 v = ldg(reinterpret_cast<const uint4*>(row + 64 * u) + i);
      w[4 * i] = v.x, w[4 * i + 1] = v.y, w[4 * i + 2] = v.z, w[4 * i + 3] = v.w;
    }
  }
  PLUMB_UNIT void scales(float (&a)[2], float (&b)[2]) const { a[0] = a[1] = 1.0f, b[0] = b[1] = 0.0f; }
  PLUMB_UNIT float value(int run, int i) const {
    const uint32_t x = w[8 * run + i / 2];
    return i % 2 == 0 ? lo_half(x) : hi_half(x);
  }
};

// Q4_0: a block of 32 (18 bytes: d, 16 bytes whose low nibbles are values 0..15 and high
// nibbles 16..31); w = (q - 8) d.
template <> struct Unit<TensorType::Q4_0> {
  static constexpr bool kExists = true, kOffset = false, kInt = false;
  uint32_t q[4];
  float d;
  static PLUMB_UNIT int64_t run_start(int64_t u, int run) { return 32 * u + 16 * run; }
  PLUMB_UNIT void load(const uint8_t* row, int64_t u) {
    const uint8_t* b = row + 18 * u;
    load_words_2(b + 2, q);
    d = half_at(b);
  }
  PLUMB_UNIT void scales(float (&a)[2], float (&o)[2]) const { a[0] = a[1] = d, o[0] = o[1] = 0.0f; }
  PLUMB_UNIT float value(int run, int i) const {
    return byte_minus((q[i / 4] >> (4 * run)) & 0x0F0F0F0Fu, i % 4, k2p23 + 8.0f);
  }
};

// Q4_1: as Q4_0 with a minimum (20 bytes: d, m, 16 bytes); w = q d + m.
template <> struct Unit<TensorType::Q4_1> {
  static constexpr bool kExists = true, kOffset = true, kInt = false;
  uint32_t q[4];
  uint32_t dm;
  static PLUMB_UNIT int64_t run_start(int64_t u, int run) { return 32 * u + 16 * run; }
  PLUMB_UNIT void load(const uint8_t* row, int64_t u) {
    const uint8_t* b = row + 20 * u;
    const auto* w = reinterpret_cast<const uint32_t*>(b);
    dm = ldg(w);
PLUMB_UNROLL
    for (int i = 0; i < 4; ++i) q[i] = ldg(w + 1 + i);
  }
  PLUMB_UNIT void scales(float (&a)[2], float (&o)[2]) const {
    a[0] = a[1] = lo_half(dm);
    o[0] = o[1] = hi_half(dm);
  }
  PLUMB_UNIT float value(int run, int i) const {
    return byte_minus((q[i / 4] >> (4 * run)) & 0x0F0F0F0Fu, i % 4, k2p23);
  }
};

// Q8_0: a block of 32 (34 bytes: d, 32 signed bytes, flipped to unsigned: +128); w = q d.
template <> struct Unit<TensorType::Q8_0> {
  static constexpr bool kExists = true, kOffset = false, kInt = false;
  uint32_t q[8];
  float d;
  static PLUMB_UNIT int64_t run_start(int64_t u, int run) { return 32 * u + 16 * run; }
  PLUMB_UNIT void load(const uint8_t* row, int64_t u) {
    const uint8_t* b = row + 34 * u;
    load_words_2(b + 2, q);
    d = half_at(b);
  }
  PLUMB_UNIT void scales(float (&a)[2], float (&o)[2]) const { a[0] = a[1] = d, o[0] = o[1] = 0.0f; }
  PLUMB_UNIT float value(int run, int i) const { return byte_minus(q[4 * run + i / 4] ^ 0x80808080u, i % 4, k2p23 + 128.0f); }
};

// Q4_K: a super-block of 256 (144 bytes: d, dmin, 12 bytes of six-bit scales and mins, 128
// bytes whose byte 32 k + l holds value 64 k + l (low nibble, group 2k) and 64 k + 32 + l
// (high nibble, group 2k + 1)); unit j of a super-block reads bytes 32 (j / 2) + 16 (j % 2)
// .. + 15: w = (d sc) q - dmin m per group.
template <> struct Unit<TensorType::Q4_K> {
  static constexpr bool kExists = true, kOffset = true, kInt = true;
  static constexpr int kZero = 0;
  uint32_t q[4];
  uint4 h;  // d, dmin, scales
  int j;
  static PLUMB_UNIT int64_t run_start(int64_t u, int run) {
    const int64_t j = u % 8;
    return 256 * (u / 8) + 64 * (j / 2) + 16 * (j % 2) + 32 * run;
  }
  PLUMB_UNIT void load(const uint8_t* row, int64_t u) {
    const auto uu = static_cast<uint64_t>(u);
    const uint8_t* b = row + 144 * (uu / 8);
    j = static_cast<int>(uu % 8);
    load_words_16(b + 16 + 16 * j, q);  // bytes 32 (j / 2) + 16 (j % 2) of the 128
    h = ldg(reinterpret_cast<const uint4*>(b));
  }
  // The two runs' groups s = 2 (j / 2) + run are adjacent bytes of the twelve, so their six-bit
  // scales and mins are cut out together, a byte each, without a branch (a warp's lanes hold
  // every j): groups 0-3, the low six bits of bytes s (scale) and s + 4 (min); groups 4-7, the
  // low (scale) or high (min) nibble of byte s + 4 under the top two bits of byte s - 4 or s
  // (the reference's get_scale_min_k4).
  PLUMB_UNIT void scales(float (&a)[2], float (&o)[2]) const {
    const bool low = j < 4;
    const int sh = 16 * ((j / 2) % 2);  // byte s % 4 of its word, s even
    const uint32_t keep = low ? 0x3F3Fu : 0x0F0Fu, top = low ? 0u : 0x3030u;
    const uint32_t sc = (((low ? h.y : h.w) >> sh) & keep) | ((h.y >> (sh + 2)) & top);
    const uint32_t mn = (((low ? h.z : h.w) >> (low ? sh : sh + 4)) & keep) | ((h.z >> (sh + 2)) & top);
    const float d = lo_half(h.x), dmin = hi_half(h.x);
PLUMB_UNROLL
    for (int run = 0; run < 2; ++run) {
      a[run] = d * byte_minus(sc, run, k2p23);
      o[run] = -(dmin * byte_minus(mn, run, k2p23));
    }
  }
  PLUMB_UNIT float value(int run, int i) const { return byte_minus(bytes(run, i / 4), i % 4, k2p23); }
  PLUMB_UNIT uint32_t bytes(int run, int k) const { return (q[k] >> (4 * run)) & 0x0F0F0F0Fu; }
};

// Q6_K: a super-block of 256 (210 bytes: ql[128], qh[64], 16 signed scales, d). Value
// 128 h + 32 c + l has its low four bits in ql[64 h + 32 (c % 2) + l] (nibble c / 2) and its
// high two in qh[32 h + l] (bits 2c); unit j of a super-block: h = j / 4, c = (j / 2) % 2 (run
// A) and c + 2 (run B), l = 16 (j % 2) .. + 15, so both runs read the same 16 ql and qh bytes.
template <> struct Unit<TensorType::Q6_K> {
  static constexpr bool kExists = true, kOffset = false, kInt = true;
  static constexpr int kZero = 32;
  uint32_t ql[4], qh[4];
  float a0, a1;
  int c;
  static PLUMB_UNIT int64_t run_start(int64_t u, int run) {
    const int64_t j = u % 8;
    return 256 * (u / 8) + 128 * (j / 4) + 32 * ((j / 2) % 2) + 16 * (j % 2) + 64 * run;
  }
  PLUMB_UNIT void load(const uint8_t* row, int64_t u) {
    const uint8_t* b = row + 210 * (u / 8);
    const int j = static_cast<int>(u % 8), hh = j / 4, m = j % 2;
    c = (j / 2) % 2;
    load_words_2(b + 64 * hh + 32 * c + 16 * m, ql);
    load_words_2(b + 128 + 32 * hh + 16 * m, qh);
    const float d = half_at(b + 208);
    // Scale of value e = 32 s + l: scales[e / 16] = scales[8 hh + 2 c' + m] for c' = c, c + 2.
    a0 = d * static_cast<float>(static_cast<int8_t>(ldg(b + 192 + 8 * hh + 2 * c + m)));
    a1 = d * static_cast<float>(static_cast<int8_t>(ldg(b + 192 + 8 * hh + 2 * c + 4 + m)));
  }
  PLUMB_UNIT void scales(float (&a)[2], float (&o)[2]) const { a[0] = a0, a[1] = a1, o[0] = o[1] = 0.0f; }
  PLUMB_UNIT float value(int run, int i) const { return byte_minus(bytes(run, i / 4), i % 4, k2p23 + 32.0f); }
  PLUMB_UNIT uint32_t bytes(int run, int k) const {
    const uint32_t lo = (ql[k] >> (4 * run)) & 0x0F0F0F0Fu;
    const uint32_t hi = ((qh[k] >> (2 * c + 4 * run)) & 0x03030303u) << 4;
    return lo | hi;
  }
};

// ---- The integer units' contract, shared by the matvec and its host emulation ----

// A run's 16 activations as the CPU's quantize_token prepares their 32-value block (summed.h's
// pieces, from which prepare_block is made too): the block's scale sc (act_scale of the
// magnitudes of both halves), q = quantize_act(x, sc.id), two a word (value 2m in the low half of
// word m), their sum, and sx, the sum of the run's original values in the CPU's tree of doubles,
// rounded once. A thread holds the run's 16 values, not the block's 32.
struct RunActs {
  uint32_t q[8];
  float d, sx;
  int sum;
};
PLUMB_UNIT RunActs run_acts(const float (&x)[16], summed::ActScale sc) {
  namespace s = summed;
  RunActs r;
  r.d = sc.d;
  r.sx = s::double_to_float_rn(s::sum16(x));
  int sum = 0;
PLUMB_UNROLL
  for (int m = 0; m < 8; ++m) {
    const int lo = s::quantize_act(x[2 * m], sc.id), hi = s::quantize_act(x[2 * m + 1], sc.id);
    r.q[m] = static_cast<uint32_t>(static_cast<uint16_t>(lo)) | (static_cast<uint32_t>(static_cast<uint16_t>(hi)) << 16);
    sum += lo + hi;
  }
  r.sum = sum;
  return r;
}

// The exact integer sum of a run's products, sum (byte - kZero) q: |sum| <= 16 * 128 * 32768
// = 2^26.
template <TensorType T>
PLUMB_UNIT int run_dot(const Unit<T>& w, int run, const uint32_t (&q)[8], int q_sum) {
  int p = 0;
PLUMB_UNROLL
  for (int k = 0; k < 4; ++k) {
    const uint32_t b = w.bytes(run, k);
    p = dp2a_lo(q[2 * k], b, p);
    p = dp2a_hi(q[2 * k + 1], b, p);
  }
  if constexpr (Unit<T>::kZero != 0) p -= Unit<T>::kZero * q_sum;
  return p;
}

// A run added to a lane's sum: (a d_a) float(p), rounded once each, then b sx where the type has
// an offset (w = a q + b).
template <TensorType T>
PLUMB_UNIT float add_run(float acc, float a, float b, float d_a, float sx, int p) {
  acc = fmaf(a * d_a, static_cast<float>(p), acc);
  if constexpr (Unit<T>::kOffset) acc = fmaf(b, sx, acc);
  return acc;
}

}  // namespace plumb::cuda
