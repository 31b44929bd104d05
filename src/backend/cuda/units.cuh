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
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

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

// Contract S's exact integer dot products of four bytes (matvec.cu's summed kernels): unsigned
// weight bytes (offsets taken out afterwards) against activations' signed high bytes, or their
// unsigned low bytes.
PLUMB_UNIT int32_t dot4_hi(uint32_t w, uint32_t a, int32_t c) {
#ifdef __CUDA_ARCH__
  int32_t d;
  asm("dp4a.u32.s32 %0, %1, %2, %3;" : "=r"(d) : "r"(w), "r"(a), "r"(c));
  return d;
#else
  for (int i = 0; i < 4; ++i) c += static_cast<int32_t>((w >> (8 * i)) & 0xff) * static_cast<int8_t>(a >> (8 * i));
  return c;
#endif
}
PLUMB_UNIT uint32_t dot4_lo(uint32_t w, uint32_t a, uint32_t c) {
#ifdef __CUDA_ARCH__
  return __dp4a(w, a, c);
#else
  for (int i = 0; i < 4; ++i) c += ((w >> (8 * i)) & 0xff) * ((a >> (8 * i)) & 0xff);
  return c;
#endif
}
// sum over the 16 values of (b - offset) * a, exactly, for weight bytes b (four words) and
// activations a = 256 hi + lo (their high and low bytes, four words each) whose sum is asum.
PLUMB_UNIT int32_t run_dot(const uint32_t (&b)[4], const uint4& hi, const uint4& lo, int32_t asum, int32_t offset) {
  int32_t h = 0;
  uint32_t l = 0;
  h = dot4_hi(b[0], hi.x, h), l = dot4_lo(b[0], lo.x, l);
  h = dot4_hi(b[1], hi.y, h), l = dot4_lo(b[1], lo.y, l);
  h = dot4_hi(b[2], hi.z, h), l = dot4_lo(b[2], lo.z, l);
  h = dot4_hi(b[3], hi.w, h), l = dot4_lo(b[3], lo.w, l);
  return 256 * h + static_cast<int32_t>(l) - offset * asum;
}

template <TensorType T> struct Unit { static constexpr bool kExists = false; };

// F16: 32 consecutive values, 64 bytes.
template <> struct Unit<TensorType::F16> {
  static constexpr bool kExists = true, kOffset = false;
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
  static constexpr bool kExists = true, kOffset = false;
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
  // Contract S: the unit is one block and one 32-value sub-block, P = the two runs' sums.
  static constexpr bool kSummed = true, kPairs = false;
  static constexpr int kOwned = 1;
  PLUMB_UNIT int32_t run_sum(int run, const uint4& hi, const uint4& lo, int32_t asum) const {
    const uint32_t b[4] = {(q[0] >> (4 * run)) & 0x0F0F0F0Fu, (q[1] >> (4 * run)) & 0x0F0F0F0Fu,
                           (q[2] >> (4 * run)) & 0x0F0F0F0Fu, (q[3] >> (4 * run)) & 0x0F0F0F0Fu};
    return run_dot(b, hi, lo, asum, 8);
  }
  PLUMB_UNIT void owned_scales(float (&dw)[2], float& mc) const { dw[0] = dw[1] = d, mc = 0.0f; }
  static PLUMB_UNIT void slot(int64_t e0, int64_t& u, int& run) { u = e0 / 32, run = static_cast<int>((e0 / 16) % 2); }
  static constexpr int kChainSteps = 16;  // as Q4_K's: lane l owns sub-block l
  static PLUMB_UNIT int chain_lane(int k) { return 2 * k; }
  static PLUMB_UNIT int chain_term(int) { return 0; }
};

// Q4_1: as Q4_0 with a minimum (20 bytes: d, m, 16 bytes); w = q d + m.
template <> struct Unit<TensorType::Q4_1> {
  static constexpr bool kExists = true, kOffset = true;
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
  static constexpr bool kExists = true, kOffset = false;
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
  // Contract S: as Q4_0's, the signed bytes made unsigned (+128) and 128 times the sum taken out.
  static constexpr bool kSummed = true, kPairs = false;
  static constexpr int kOwned = 1;
  PLUMB_UNIT int32_t run_sum(int run, const uint4& hi, const uint4& lo, int32_t asum) const {
    const uint32_t b[4] = {q[4 * run] ^ 0x80808080u, q[4 * run + 1] ^ 0x80808080u, q[4 * run + 2] ^ 0x80808080u,
                           q[4 * run + 3] ^ 0x80808080u};
    return run_dot(b, hi, lo, asum, 128);
  }
  PLUMB_UNIT void owned_scales(float (&dw)[2], float& mc) const { dw[0] = dw[1] = d, mc = 0.0f; }
  static PLUMB_UNIT void slot(int64_t e0, int64_t& u, int& run) { u = e0 / 32, run = static_cast<int>((e0 / 16) % 2); }
  static constexpr int kChainSteps = 16;
  static PLUMB_UNIT int chain_lane(int k) { return 2 * k; }
  static PLUMB_UNIT int chain_term(int) { return 0; }
};

// Q4_K: a super-block of 256 (144 bytes: d, dmin, 12 bytes of six-bit scales and mins, 128
// bytes whose byte 32 k + l holds value 64 k + l (low nibble, group 2k) and 64 k + 32 + l
// (high nibble, group 2k + 1)); unit j of a super-block reads bytes 32 (j / 2) + 16 (j % 2)
// .. + 15: w = (d sc) q - dmin m per group.
template <> struct Unit<TensorType::Q4_K> {
  static constexpr bool kExists = true, kOffset = true;
  uint32_t q[4];
  uint4 h;  // d, dmin, scales
  int j;
  static PLUMB_UNIT int64_t run_start(int64_t u, int run) {
    const int64_t j = u % 8;
    return 256 * (u / 8) + 64 * (j / 2) + 16 * (j % 2) + 32 * run;
  }
  PLUMB_UNIT void load(const uint8_t* row, int64_t u) {
    const uint8_t* b = row + 144 * (u / 8);
    j = static_cast<int>(u % 8);
    load_words_16(b + 16 + 32 * (j / 2) + 16 * (j % 2), q);
    h = ldg(reinterpret_cast<const uint4*>(b));
  }
  // Group s's six-bit scale and min (ggml's get_scale_min_k4).
  PLUMB_UNIT void scale_min(int s, int& sc, int& mn) const {
    const auto byte = [&](int i) {  // scales byte i, by selects (an indexed array would live in local memory)
      const uint32_t word = i < 4 ? h.y : i < 8 ? h.z : h.w;
      return static_cast<int>((word >> (8 * (i % 4))) & 0xff);
    };
    if (s < 4) {
      sc = byte(s) & 63, mn = byte(s + 4) & 63;
    } else {
      sc = (byte(s + 4) & 0xf) | ((byte(s - 4) >> 6) << 4);
      mn = (byte(s + 4) >> 4) | ((byte(s) >> 6) << 4);
    }
  }
  PLUMB_UNIT void scales(float (&a)[2], float (&o)[2]) const {
    const float d = lo_half(h.x), dmin = hi_half(h.x);
PLUMB_UNROLL
    for (int run = 0; run < 2; ++run) {
      int sc, mn;
      scale_min(2 * (j / 2) + run, sc, mn);  // the group
      a[run] = d * static_cast<float>(sc);
      o[run] = -(dmin * static_cast<float>(mn));
    }
  }
  // Contract S. Lane pairs (units 2i, 2i + 1 of a super-block) hold groups 2i (their runs A) and
  // 2i + 1 (runs B): after the pair trades one run's sum, unit j owns group j, one 32-value
  // sub-block, and so unit u of a row owns the row's sub-block u. run_sum: sum (q - 8) a over a
  // run; owned_scales: the owned group's dw = d sc and mc = -(dmin m) + 8 dw (weight_unpack.h).
  static constexpr bool kSummed = true, kPairs = true;
  static constexpr int kOwned = 1;
  PLUMB_UNIT int32_t run_sum(int run, const uint4& hi, const uint4& lo, int32_t asum) const {
    const uint32_t b[4] = {(q[0] >> (4 * run)) & 0x0F0F0F0Fu, (q[1] >> (4 * run)) & 0x0F0F0F0Fu,
                           (q[2] >> (4 * run)) & 0x0F0F0F0Fu, (q[3] >> (4 * run)) & 0x0F0F0F0Fu};
    return run_dot(b, hi, lo, asum, 8);
  }
  PLUMB_UNIT void owned_scales(float (&dw)[2], float& mc) const {
    int sc, mn;
    scale_min(j, sc, mn);
    dw[0] = dw[1] = lo_half(h.x) * static_cast<float>(sc);
    mc = -(hi_half(h.x) * static_cast<float>(mn)) + 8.0f * dw[0];
  }
  // Inverse of run_start: the unit and run of the 16 values from e0 (a multiple of 16).
  static PLUMB_UNIT void slot(int64_t e0, int64_t& u, int& run) {
    const int64_t r = e0 % 256;
    run = static_cast<int>((r % 64) / 32);
    u = 8 * (e0 / 256) + 2 * (r / 64) + (r % 32) / 16;
  }
  // Step k of the accumulator chains of a lane iteration (its 32 sub-blocks): sub-blocks 2k and
  // 2k + 1, owned by lanes 2k and 2k + 1 (their term 0).
  static constexpr int kChainSteps = 16;
  static PLUMB_UNIT int chain_lane(int k) { return 2 * k; }
  static PLUMB_UNIT int chain_term(int) { return 0; }
  PLUMB_UNIT float value(int run, int i) const { return byte_minus((q[i / 4] >> (4 * run)) & 0x0F0F0F0Fu, i % 4, k2p23); }
};

// Q6_K: a super-block of 256 (210 bytes: ql[128], qh[64], 16 signed scales, d). Value
// 128 h + 32 c + l has its low four bits in ql[64 h + 32 (c % 2) + l] (nibble c / 2) and its
// high two in qh[32 h + l] (bits 2c); unit j of a super-block: h = j / 4, c = (j / 2) % 2 (run
// A) and c + 2 (run B), l = 16 (j % 2) .. + 15, so both runs read the same 16 ql and qh bytes.
template <> struct Unit<TensorType::Q6_K> {
  static constexpr bool kExists = true, kOffset = false;
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
  // Contract S. Each run is one 16-value sub-block: unit j of a super-block owns sub-blocks
  // 8 (j / 4) + 2 c + j % 2 (run A, term 0) and that + 4 (run B, term 1). run_sum: sum (q - 32) a
  // over a run; owned_scales: the runs' dw = d sc.
  static constexpr bool kSummed = true, kPairs = false;
  static constexpr int kOwned = 2;
  PLUMB_UNIT int32_t run_sum(int run, const uint4& hi, const uint4& lo, int32_t asum) const {
    uint32_t b[4];
PLUMB_UNROLL
    for (int i = 0; i < 4; ++i) {
      b[i] = ((ql[i] >> (4 * run)) & 0x0F0F0F0Fu) | (((qh[i] >> (2 * c + 4 * run)) & 0x03030303u) << 4);
    }
    return run_dot(b, hi, lo, asum, 32);
  }
  PLUMB_UNIT void owned_scales(float (&dw)[2], float& mc) const { dw[0] = a0, dw[1] = a1, mc = 0.0f; }
  static PLUMB_UNIT void slot(int64_t e0, int64_t& u, int& run) {
    const int64_t r = e0 % 256, cq = (r % 128) / 32;
    run = static_cast<int>(cq / 2);
    u = 8 * (e0 / 256) + 4 * (r / 128) + 2 * (cq % 2) + (r % 32) / 16;
  }
  // Step k of a lane iteration's chains (its 64 sub-blocks, four super-blocks): sub-blocks 2k and
  // 2k + 1, both in super-block k / 8, both runs A or both runs B of two consecutive lanes: lanes
  // chain_lane(k) and chain_lane(k) + 1, term chain_term(k).
  static constexpr int kChainSteps = 32;
  static PLUMB_UNIT int chain_lane(int k) {
    const int s = (2 * k) % 16, group = s / 4;
    return 8 * (k / 8) + s - (group == 0 ? 0 : group == 3 ? 8 : 4);
  }
  static PLUMB_UNIT int chain_term(int k) { return ((2 * k) % 16 / 4) % 2; }
  PLUMB_UNIT float value(int run, int i) const {
    const uint32_t lo = (ql[i / 4] >> (4 * run)) & 0x0F0F0F0Fu;
    const uint32_t hi = ((qh[i / 4] >> (2 * c + 4 * run)) & 0x03030303u) << 4;
    return byte_minus(lo | hi, i % 4, k2p23 + 32.0f);
  }
};

// Whether T's units also compute contract S (run_sum, owned_scales, slot, the chain schedule).
template <TensorType T, class = void>
struct SummedUnit {
  static constexpr bool value = false;
};
template <TensorType T>
struct SummedUnit<T, std::void_t<decltype(Unit<T>::kSummed)>> {
  static constexpr bool value = Unit<T>::kSummed;
};

// Contract S's staged activations (matvec.cu): where unit u's lane reads them in a block's buffer
// of `iters` lane iterations a token: slot k of token t is 0, 1: the high bytes of the unit's runs
// A and B (16 bytes each, in value order); 2, 3: their low bytes; 4: {run A's sum of q, run B's,
// two floats for the sub-blocks the unit owns (Q4_K: d and sx32 of its 32-value block; Q6_K: d of
// each run's block)}. A warp's reads of one slot are 512 contiguous bytes.
constexpr int kSummedSlots = 5;
PLUMB_UNIT int64_t summed_at(int64_t iters, int64_t t, int64_t u, int k) {
  return ((t * iters + u / 32) * kSummedSlots + k) * 32 + u % 32;
}

// Writes the 16 values from e0 (half of a block, prepared as p) of token t where the lanes read them.
template <TensorType T>
PLUMB_UNIT void stage_half(uint4* ps, int64_t iters, int64_t t, int64_t e0, const summed::HalfPrepared& p) {
  int64_t u;
  int run;
  Unit<T>::slot(e0, u, run);
  uint32_t hi[4], lo[4];
PLUMB_UNROLL
  for (int k = 0; k < 4; ++k) {  // q as bytes lo, hi, lo, hi, ...: the odd bytes and the even ones
    const uint32_t w0 = static_cast<uint16_t>(p.q[4 * k]) | (static_cast<uint32_t>(static_cast<uint16_t>(p.q[4 * k + 1])) << 16);
    const uint32_t w1 = static_cast<uint16_t>(p.q[4 * k + 2]) | (static_cast<uint32_t>(static_cast<uint16_t>(p.q[4 * k + 3])) << 16);
    hi[k] = byte_perm(w0, w1, 0x7531), lo[k] = byte_perm(w0, w1, 0x6420);
  }
  ps[summed_at(iters, t, u, run)] = make_uint4(hi[0], hi[1], hi[2], hi[3]);
  ps[summed_at(iters, t, u, 2 + run)] = make_uint4(lo[0], lo[1], lo[2], lo[3]);
  uint32_t* meta = reinterpret_cast<uint32_t*>(ps + summed_at(iters, t, u, 4));
  meta[run] = static_cast<uint32_t>(p.qsum);
  if constexpr (Unit<T>::kOwned == 1) {  // the unit that owns this 32-value block, written once
    if ((e0 / 16) % 2 == 0) {
      uint32_t* owner = reinterpret_cast<uint32_t*>(ps + summed_at(iters, t, e0 / 32, 4));
      owner[2] = summed::bits_of(p.d), owner[3] = summed::bits_of(p.sx32);
    }
  } else {
    meta[2 + run] = summed::bits_of(p.d);
  }
}

}  // namespace plumb::cuda
