// The CUDA prompt product under the CPU's contract S (src/backend/cpu/matmul_internal.h), the
// parts that are plain arithmetic: compiled for the device by summed.cu and for the host by the
// tests (tests/cuda_summed_test.cpp), which check them against the CPU's weight unpacking,
// activation preparation and scalar_summed_kernel without a GPU. No CUDA-only construct outside
// the PLUMB_HD wrappers below, so that g++ compiles this header as it is.
//
// The product, y[t][r] = contract S of weight row r and token t:
//   - Activations (prepare_block, the CPU's quantize_token for one 32-value block): d_a, the
//     int16 q, and the sums sx16 / sx32 of the original values; each q is split exactly into a
//     signed high byte and an unsigned low byte, q = 256 hi + lo (split_hi / split_lo).
//   - Weights: each block decoded to the integer weights of the CPU's Unpack (offsets applied),
//     which all fit int8 (Q4_0 and Q4_K -8..7, Q5_K -16..15, Q6_K -32..31, Q8_0 -128..127), and
//     per sub-block dw and mc computed as the CPU computes them (Kind<T>::unit, Kind<T>::scale).
//   - Per sub-block s (32 values; 16 for Q6_K), two int8 tensor-core products with int32
//     accumulators: C_hi = sum w hi (s8 x s8) and C_lo = sum w lo (s8 x u8). |C_hi| <= 32 * 128 *
//     128 = 2^19 and |C_lo| <= 32 * 128 * 255 < 2^20, so both are exact, and P_s = 256 C_hi + C_lo
//     is the CPU's exact integer sum (|P_s| <= 32 * 128 * 32767 < 2^27).
//   - float(P_s), rounded to nearest even once as the CPU's conversion rounds it, without the
//     quarter-rate integer conversion: the accumulators start at the bits of 1.5 * 2^23, so each
//     holds the float 1.5 * 2^23 + C (exact for |C| < 2^22); one subtraction each gives float(C_hi)
//     and float(C_lo) exactly, and fma(256, float(C_hi), float(C_lo)) rounds 256 C_hi + C_lo = P_s
//     once (combine_sums).
//   - Then the contract's epilogue in sub-block order for every (row, token):
//     acc[s % 2] = fma(float(P_s), dw[s] * d_a[b(s)], acc[s % 2]), macc[s % 8] = fma(mc[s], sx[s],
//     macc[s % 8]) for types with a min, y = (acc[0] + acc[1]) + hsum8(macc).
#pragma once

#include <cfloat>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "quant/blocks.h"
#include "quant/types.h"

#if defined(__CUDACC__)
#define PLUMB_HD __host__ __device__ __forceinline__
#else
#include <cmath>
#define PLUMB_HD inline
#endif

namespace plumb::cuda::summed {

// ---- Scalar operations with one IEEE rounding each, the same on the host and the device ----

PLUMB_HD uint32_t bits_of(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
#endif
}
PLUMB_HD float float_of(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, 4);
  return f;
#endif
}
PLUMB_HD float mul_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
PLUMB_HD float add_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
PLUMB_HD float sub_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fsub_rn(a, b);
#else
  return a - b;
#endif
}
PLUMB_HD float div_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fdiv_rn(a, b);
#else
  return a / b;
#endif
}
PLUMB_HD float fma_rn(float a, float b, float c) {
#if defined(__CUDA_ARCH__)
  return __fmaf_rn(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}
PLUMB_HD double dadd_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}
PLUMB_HD float double_to_float_rn(double d) {
#if defined(__CUDA_ARCH__)
  return __double2float_rn(d);
#else
  return static_cast<float>(d);
#endif
}
// Round to the nearest integer, ties to even (|f| < 2^31).
PLUMB_HD int float_to_int_rn(float f) {
#if defined(__CUDA_ARCH__)
  return __float2int_rn(f);
#else
  return static_cast<int>(std::lrint(f));
#endif
}

// IEEE binary16 bits to float, bit for bit as quant/half.cpp's fp16_to_fp32 (NaN payload kept and
// quieted; subnormals as mant * 2^-24, an exact product).
PLUMB_HD float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  if (exp == 0x1fu) return float_of(sign | 0x7f800000u | (mant << 13) | (mant != 0 ? 0x00400000u : 0u));
  if (exp != 0) return float_of(sign | ((exp + 112u) << 23) | (mant << 13));
  const float f = mul_rn(static_cast<float>(static_cast<int>(mant)), 5.9604644775390625e-8f);  // 2^-24
  return sign != 0 ? -f : f;
}

// ---- Loads from a block's bytes (on the device, in shared memory) ----

PLUMB_HD uint16_t ld16(const uint8_t* p) {  // p 2-byte aligned
#if defined(__CUDA_ARCH__)
  return *reinterpret_cast<const uint16_t*>(p);
#else
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
#endif
}
// Four bytes at any address (little endian), from the two aligned words that hold them: the
// word after p's may be read, so buffers keep 4 readable bytes past their last block.
PLUMB_HD uint32_t ld32(const uint8_t* p) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  const uint32_t* w = reinterpret_cast<const uint32_t*>(a & ~uintptr_t{3});
  const unsigned sh = 8u * static_cast<unsigned>(a & 3u);
#if defined(__CUDA_ARCH__)
  return __funnelshift_r(w[0], w[1], sh);
#else
  uint32_t w0, w1;
  std::memcpy(&w0, w, 4);
  std::memcpy(&w1, w + 1, 4);
  return sh == 0 ? w0 : (w0 >> sh) | (w1 << (32u - sh));
#endif
}
// 16 bytes at a 16-byte aligned address, as four little-endian words.
PLUMB_HD void ld128(const uint8_t* p, uint32_t v[4]) {
#if defined(__CUDA_ARCH__)
  const uint4 u = *reinterpret_cast<const uint4*>(p);
  v[0] = u.x, v[1] = u.y, v[2] = u.z, v[3] = u.w;
#else
  std::memcpy(v, p, 16);
#endif
}
// 16 bytes at a 16-byte aligned address.
PLUMB_HD void st128(uint8_t* p, uint32_t a, uint32_t b, uint32_t c, uint32_t d) {
#if defined(__CUDA_ARCH__)
  *reinterpret_cast<uint4*>(p) = make_uint4(a, b, c, d);
#else
  const uint32_t v[4] = {a, b, c, d};
  std::memcpy(p, v, 16);
#endif
}

// Bytes v (each 0 .. 2o-1) minus o (a power of two <= 64) as int8 bytes, lane by lane: o's bit 7
// set keeps every byte's subtraction inside the byte, and the xor turns the biased value into
// two's complement (b + 128 - o, xor 128, is b - o mod 256).
PLUMB_HD uint32_t sub_bytes(uint32_t v, uint32_t o) {
  return ((v | 0x80808080u) - o * 0x01010101u) ^ 0x80808080u;
}

// ---- Weight types: block -> int8 weights (element order) and dw, mc per sub-block ----
//
// unit(blk, u, dst): writes some of the block's int8 weights at dst[e] (e: element within the
// block), each unit a fixed set; the kUnits units together write all kBlockVals. scale(blk, j,
// dw, mc): sub-block j's multiplier (and min term coefficient) as the CPU's Unpack computes them.
// The block pointer may be 2-byte aligned only (every block size is even), except for the types
// with kAligned16 (blocks of a multiple of 16 bytes), which read 16 bytes at a time and need it
// 16-byte aligned.

template <TensorType T>
struct Kind;

template <>
struct Kind<TensorType::Q4_0> {
  static constexpr int kBlockVals = 32, kBlockBytes = sizeof(block_q4_0), kSub = 32, kUnits = 1, kRawBufs = 2;
  static constexpr bool kHasMin = false, kAligned16 = false;
  PLUMB_HD static void unit(const uint8_t* blk, int, uint8_t* dst) {
    const uint8_t* qs = blk + offsetof(block_q4_0, qs);
    uint32_t lo[4], hi[4];
    for (int w = 0; w < 4; ++w) {
      const uint32_t q = ld32(qs + 4 * w);
      lo[w] = sub_bytes(q & 0x0f0f0f0fu, 8);
      hi[w] = sub_bytes((q >> 4) & 0x0f0f0f0fu, 8);
    }
    st128(dst, lo[0], lo[1], lo[2], lo[3]);       // w[j] = (qs[j] & 15) - 8
    st128(dst + 16, hi[0], hi[1], hi[2], hi[3]);  // w[j + 16] = (qs[j] >> 4) - 8
  }
  PLUMB_HD static void scale(const uint8_t* blk, int, float* dw, float*) {
    *dw = half_to_float(ld16(blk + offsetof(block_q4_0, d)));
  }
};

template <>
struct Kind<TensorType::Q8_0> {
  static constexpr int kBlockVals = 32, kBlockBytes = sizeof(block_q8_0), kSub = 32, kUnits = 1, kRawBufs = 1;
  static constexpr bool kHasMin = false, kAligned16 = false;
  PLUMB_HD static void unit(const uint8_t* blk, int, uint8_t* dst) {
    const uint8_t* qs = blk + offsetof(block_q8_0, qs);
    st128(dst, ld32(qs), ld32(qs + 4), ld32(qs + 8), ld32(qs + 12));
    st128(dst + 16, ld32(qs + 16), ld32(qs + 20), ld32(qs + 24), ld32(qs + 28));
  }
  PLUMB_HD static void scale(const uint8_t* blk, int, float* dw, float*) {
    *dw = half_to_float(ld16(blk + offsetof(block_q8_0, d)));
  }
};

// ggml's get_scale_min_k4 (weight_unpack.h's k4_scale_min).
PLUMB_HD void k4_scale_min(int j, const uint8_t* q, int* sc, int* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// Q4_K and Q5_K: unit u = 2i + h covers bytes qs[32i + 16h, +16): elements 64i + 16h + l (low
// nibbles, sub-block 2i) and 64i + 32 + 16h + l (high nibbles, sub-block 2i + 1), l < 16; Q5_K
// adds bit 2i (2i + 1) of qh[16h + l] as the fifth bit.
template <TensorType T, int kOffset>
struct KindK4 {
  using B = std::conditional_t<T == TensorType::Q4_K, block_q4_K, block_q5_K>;
  static constexpr int kBlockVals = 256, kBlockBytes = sizeof(B), kSub = 32, kUnits = 8, kRawBufs = 2;
  static constexpr bool kHasMin = true, kAligned16 = true;
  static_assert(sizeof(B) % 16 == 0 && offsetof(B, qs) % 16 == 0, "16-byte loads");
  PLUMB_HD static void unit(const uint8_t* blk, int u, uint8_t* dst) {
    const int i = u >> 1, h = u & 1;
    uint32_t q4[4], qh4[4] = {};
    ld128(blk + offsetof(B, qs) + 32 * i + 16 * h, q4);
    if constexpr (T == TensorType::Q5_K) ld128(blk + offsetof(block_q5_K, qh) + 16 * h, qh4);
    uint32_t lo[4], hi[4];
    for (int w = 0; w < 4; ++w) {
      const uint32_t q = q4[w];
      uint32_t l = q & 0x0f0f0f0fu, m = (q >> 4) & 0x0f0f0f0fu;
      if constexpr (T == TensorType::Q5_K) {
        const uint32_t qh = qh4[w];
        l |= ((qh >> (2 * i)) & 0x01010101u) << 4;
        m |= ((qh >> (2 * i + 1)) & 0x01010101u) << 4;
      }
      lo[w] = sub_bytes(l, kOffset);
      hi[w] = sub_bytes(m, kOffset);
    }
    st128(dst + 64 * i + 16 * h, lo[0], lo[1], lo[2], lo[3]);
    st128(dst + 64 * i + 32 + 16 * h, hi[0], hi[1], hi[2], hi[3]);
  }
  // dw = d * sc, mc = -(dmin * m) + o * dw (o = 8 or 16): weight_unpack.h's expressions.
  PLUMB_HD static void scale(const uint8_t* blk, int j, float* dw, float* mc) {
    const float d = half_to_float(ld16(blk + offsetof(B, d)));
    const float dmin = half_to_float(ld16(blk + offsetof(B, dmin)));
    int sc, m;
    k4_scale_min(j, blk + offsetof(B, scales), &sc, &m);
    const float dws = mul_rn(d, static_cast<float>(sc));
    *dw = dws;
    *mc = add_rn(-mul_rn(dmin, static_cast<float>(m)), mul_rn(static_cast<float>(kOffset), dws));
  }
};
template <>
struct Kind<TensorType::Q4_K> : KindK4<TensorType::Q4_K, 8> {};
template <>
struct Kind<TensorType::Q5_K> : KindK4<TensorType::Q5_K, 16> {};

// Q6_K: element 128 n + 32 c + l = ((ql[64 n + 32 (c % 2) + l] >> 4 (c / 2)) & 15) | (((qh[32 n +
// l] >> 2 c) & 3) << 4), minus 32. Unit u = 2n + h: l in [16h, 16h + 16), all four c.
template <>
struct Kind<TensorType::Q6_K> {
  static constexpr int kBlockVals = 256, kBlockBytes = sizeof(block_q6_K), kSub = 16, kUnits = 4, kRawBufs = 1;
  static constexpr bool kHasMin = false, kAligned16 = false;
  PLUMB_HD static void unit(const uint8_t* blk, int u, uint8_t* dst) {
    const int n = u >> 1, h = u & 1;
    const uint8_t* ql = blk + offsetof(block_q6_K, ql) + 64 * n + 16 * h;
    const uint8_t* qh = blk + offsetof(block_q6_K, qh) + 32 * n + 16 * h;
    uint32_t v[4][4];
    for (int w = 0; w < 4; ++w) {
      const uint32_t l0 = ld32(ql + 4 * w), l1 = ld32(ql + 32 + 4 * w), hb = ld32(qh + 4 * w);
      v[0][w] = sub_bytes((l0 & 0x0f0f0f0fu) | ((hb & 0x03030303u) << 4), 32);
      v[1][w] = sub_bytes((l1 & 0x0f0f0f0fu) | (((hb >> 2) & 0x03030303u) << 4), 32);
      v[2][w] = sub_bytes(((l0 >> 4) & 0x0f0f0f0fu) | (((hb >> 4) & 0x03030303u) << 4), 32);
      v[3][w] = sub_bytes(((l1 >> 4) & 0x0f0f0f0fu) | (((hb >> 6) & 0x03030303u) << 4), 32);
    }
    for (int c = 0; c < 4; ++c) st128(dst + 128 * n + 32 * c + 16 * h, v[c][0], v[c][1], v[c][2], v[c][3]);
  }
  PLUMB_HD static void scale(const uint8_t* blk, int j, float* dw, float*) {
    const float d = half_to_float(ld16(blk + offsetof(block_q6_K, d)));
    const int8_t sc = static_cast<int8_t>(blk[offsetof(block_q6_K, scales) + j]);
    *dw = mul_rn(d, static_cast<float>(sc));
  }
};

// Whether the summed kernels read `type`.
constexpr bool covers(TensorType t) {
  return t == TensorType::Q4_0 || t == TensorType::Q8_0 || t == TensorType::Q4_K || t == TensorType::Q5_K ||
         t == TensorType::Q6_K;
}

// ---- Activations ----

constexpr float kActQMax = 32767.0f;

struct ActBlock {
  int16_t q[32];
  float d;
  float sx16[2];
  float sx32;
};

// The pieces of the CPU's quantize_token (matmul.cpp) for a 32-value block, operation for
// operation; prepare_block puts them together, the register matvec (units.cuh) uses them on a
// block's halves.
//
// amax and NaN over values as quantize_token folds them: fabs, then std::max (-0 -> 0 does not
// change the max); the order does not matter, NaN never becomes the maximum, so two halves'
// folds fold together exactly.
PLUMB_HD void fold_magnitude(float x, float& amax, bool& nan) {
  const float a = x < 0.0f ? -x : x;
  amax = amax < a ? a : amax;
  nan = nan || x != x;
}
// The block's scale d = amax / 32767 (f32 division) and id = 1 / d. NaN or Inf in the block: d
// the CPU's quiet NaN bits and id = 0, so that every q is 0 (quantize_act); amax below ~1e-34
// (1 / d overflows): d = id = 0, a zero block.
struct ActScale {
  float d, id;
};
PLUMB_HD ActScale act_scale(float amax, bool nan) {
  if (nan || !(amax <= FLT_MAX)) return {float_of(0x7fc00000u), 0.0f};  // std::numeric_limits<float>::quiet_NaN()
  const float d = div_rn(amax, kActQMax);
  const float id = d != 0.0f ? div_rn(1.0f, d) : 0.0f;
  if (!(id <= FLT_MAX)) return {0.0f, 0.0f};
  return {d, id};
}
// q = round-nearest-even(x * id); 0 where x * id is NaN (id = 0 and x NaN or Inf), as the
// device's conversion gives and the CPU's NaN block stores.
PLUMB_HD int quantize_act(float x, float id) {
  const float v = mul_rn(x, id);
  return v != v ? 0 : float_to_int_rn(v);
}
// The sum of 16 consecutive original values in the contract's tree of doubles.
PLUMB_HD double sum16(const float* x) {
  double v[4];
  for (int j = 0; j < 4; ++j) {
    v[j] = dadd_rn(dadd_rn(static_cast<double>(x[j]), static_cast<double>(x[4 + j])),
                   dadd_rn(static_cast<double>(x[8 + j]), static_cast<double>(x[12 + j])));
  }
  return dadd_rn(dadd_rn(v[0], v[2]), dadd_rn(v[1], v[3]));
}

// One 32-value block as quantize_token prepares it: d_a, the int16 q, the halves' and the
// block's sums of the original values (double, rounded once each).
PLUMB_HD void prepare_block(const float* x, ActBlock* out) {
  float amax = 0.0f;
  bool nan = false;
  for (int k = 0; k < 32; ++k) fold_magnitude(x[k], amax, nan);
  const ActScale sc = act_scale(amax, nan);
  out->d = sc.d;
  for (int k = 0; k < 32; ++k) out->q[k] = static_cast<int16_t>(quantize_act(x[k], sc.id));
  const double half[2] = {sum16(x), sum16(x + 16)};
  out->sx16[0] = double_to_float_rn(half[0]);
  out->sx16[1] = double_to_float_rn(half[1]);
  out->sx32 = double_to_float_rn(dadd_rn(half[0], half[1]));
}

// q = 256 * hi + lo exactly, hi signed (-128 .. 127), lo unsigned (0 .. 255).
PLUMB_HD int8_t split_hi(int q) { return static_cast<int8_t>((q - (q & 255)) / 256); }
PLUMB_HD uint8_t split_lo(int q) { return static_cast<uint8_t>(q & 255); }

// Prepared activations of n tokens in device memory, one allocation: hi and lo planes [n][n_in]
// (bytes), then d, sx32 [n][ld] and sx16 [n][2 ld] (floats), ld = n_in / 32 rounded up to 8 so
// that every row of a plane starts 32-byte aligned (the padding is written as zeros).
struct ActPlanes {
  int8_t* hi;
  uint8_t* lo;
  float* d;
  float* sx32;
  float* sx16;
  int64_t n_in, ld, n;
};
PLUMB_HD int64_t act_ld(int64_t n_in) { return (n_in / 32 + 7) / 8 * 8; }
PLUMB_HD size_t act_bytes(int64_t n_in, int64_t n) {
  return static_cast<size_t>(n) * (2 * static_cast<size_t>(n_in) + 16 * static_cast<size_t>(act_ld(n_in)));
}
PLUMB_HD ActPlanes act_planes(void* base, int64_t n_in, int64_t n) {
  ActPlanes p;
  uint8_t* b = static_cast<uint8_t*>(base);
  p.n_in = n_in;
  p.ld = act_ld(n_in);
  p.n = n;
  const size_t plane = static_cast<size_t>(n) * static_cast<size_t>(n_in);
  p.hi = reinterpret_cast<int8_t*>(b);
  p.lo = b + plane;
  p.d = reinterpret_cast<float*>(b + 2 * plane);
  p.sx32 = p.d + n * p.ld;
  p.sx16 = p.sx32 + n * p.ld;
  return p;
}

// ---- The product's tiles ----
//
// A block of kThreads threads computes kBM rows x kBN tokens, over the row in steps of kStep
// values: each step's weight bytes and activations are copied into shared memory (cp.async, the
// next step's copies in flight while this one is used), the weights decoded into int8 tiles, and
// each of the 8 warps computes a kWM x kWN piece with mma.sync. Warp w: rows (w % 2) * 32, tokens
// (w / 2) * 16; in each 32-value column chunk it loads 2 A fragments (16 rows each) and 2 B
// fragments (8 tokens each, hi and lo) with ldmatrix and issues 2 x 2 x 2 mma (m16n8k32: one
// 32-value sub-block) or twice that many m16n8k16 (two 16-value sub-blocks).

constexpr int kStep = 256;
constexpr int kBM = 64, kBN = 64;
constexpr int kThreads = 256;
constexpr int kWM = 32, kWN = 16;
constexpr int kMTiles = kWM / 16, kNTiles = kWN / 8;
// Bytes between rows of the int8 tiles: 256 + 16, so the 8 rows of an ldmatrix 8x16-byte matrix
// start 4 banks apart (272 / 4 = 68 = 4 mod 32): no bank conflicts.
constexpr int kTileStride = kStep + 16;
// Floats between tokens of the d_a tile (8 blocks a step; 12 so that the 4 tokens 2t + e
// that a warp reads at once fall in different banks, and rows stay 16-byte aligned).
constexpr int kCoefStride = 12;
constexpr uint32_t kMagicBits = 0x4B400000u;  // 1.5 * 2^23
constexpr float kMagic = 12582912.0f;

// float(256 * C_hi + C_lo), rounded once, from the accumulators' bits (kMagicBits + C each).
PLUMB_HD float combine_sums(int32_t d_hi, int32_t d_lo) {
  const float h = sub_rn(float_of(static_cast<uint32_t>(d_hi)), kMagic);  // exact: C_hi
  const float l = sub_rn(float_of(static_cast<uint32_t>(d_lo)), kMagic);  // exact: C_lo
  return fma_rn(256.0f, h, l);
}

// matmul_internal.h's hsum8.
PLUMB_HD float hsum8(const float a[8]) {
  const float s0 = add_rn(a[0], a[4]), s1 = add_rn(a[1], a[5]), s2 = add_rn(a[2], a[6]), s3 = add_rn(a[3], a[7]);
  return add_rn(add_rn(s0, s2), add_rn(s1, s3));
}

// Fragment coordinates (PTX ISA, "Matrix Fragments for mma.m16n8k32" and "... mma.m16n8k16 with
// integer type"; "Warp-level matrix load instruction: ldmatrix"). g = lane / 4, t = lane % 4.
//   A (16 x 32, .row): reg 0 row g, k 4t..4t+3; reg 1 row g+8; reg 2 row g, k 16+4t..; reg 3 row
//     g+8, k 16+4t.. . m16n8k16 (16 x 16): reg 0 row g, k 4t..; reg 1 row g+8.
//   B (32 x 8, .col): reg 0 k 4t..4t+3 of column g; reg 1 k 16+4t.. . m16n8k16: reg 0 only.
//   C/D: c0, c1 row g, columns 2t, 2t+1; c2, c3 row g+8.
//   ldmatrix .m8n8.x4 .b16 on bytes: lanes 8m .. 8m+7 give the 8 row addresses (16 bytes each)
//     of matrix m, and lane l receives bytes 4(l % 4) .. 4(l % 4)+3 of row l / 4 of each matrix m
//     in register m: exactly the int8 fragments above when matrix m is chosen as below.
// A tile (rows x k, k contiguous): matrices 0..3 = (rows 0-7, k 0-15), (rows 8-15, k 0-15),
// (rows 0-7, k 16-31), (rows 8-15, k 16-31): registers 0..3 are the m16n8k32 A fragment, and
// {0, 1}, {2, 3} the m16n8k16 fragments of the first and second 16 values.
PLUMB_HD int a_ldm_row(int lane) { return lane & 15; }
PLUMB_HD int a_ldm_k(int lane) { return 16 * (lane >> 4); }
// B tiles (tokens x k, one plane of hi bytes and one of lo bytes): matrices 0..3 = (hi, k 0-15),
// (hi, k 16-31), (lo, k 0-15), (lo, k 16-31) of 8 tokens: registers {0, 1} the hi B fragment,
// {2, 3} the lo one (and 0, 1, 2, 3 alone the m16n8k16 fragments hi / lo of each 16 values).
PLUMB_HD int b_ldm_token(int lane) { return lane & 7; }
PLUMB_HD int b_ldm_plane(int lane) { return lane >> 4; }
PLUMB_HD int b_ldm_k(int lane) { return 16 * ((lane >> 3) & 1); }
// Row (within a 16-row m tile) and token (within an 8-token n tile) of accumulator i of `lane`.
PLUMB_HD int c_row(int lane, int i) { return (lane >> 2) + 8 * (i >> 1); }
PLUMB_HD int c_col(int lane, int i) { return 2 * (lane & 3) + (i & 1); }

// The shared memory under which two blocks share a multiprocessor (228 KiB, 1 KiB of it reserved
// per block).
constexpr size_t kTwoBlockSmem = 113 * 1024;

// Shared memory of one block for type K, in bytes from a 16-byte aligned base:
//   raw [K::kRawBufs][kBM][kRawStride]: each row's bytes of a step, from the 16-byte boundary at or
//     below the step's first byte (a row starts 16-byte aligned), plus 16 bytes so that ld32 stays
//     inside. Two buffers (the next step's bytes copied while this step's are decoded) where the
//     total allows two blocks a multiprocessor anyway or nothing does; one (the next step's bytes
//     copied once this step's are decoded, while they are multiplied) where that makes room for
//     two blocks: Q8_0 (130,064 -> 112,656 bytes) and Q6_K (128,016 -> 112,656 bytes; ptxas
//     holds it to 128 registers without spilling, from 139);
//   a [kBM][kTileStride] (int8 weights), b [2][2 (hi, lo)][kBN][kTileStride];
//   dw [kSubs][kBM], da [2][kBN][kCoefStride] (the min term has a kernel of its own).
// Two blocks share a multiprocessor when total is at most kTwoBlockSmem: Q4_0 and Q4_K (113,680
// bytes), Q8_0 and Q6_K (112,656); Q5_K holds more.
template <class K>
struct Smem {
  static constexpr int kSubs = kStep / K::kSub;
  static constexpr int kStepBytes = kStep / K::kBlockVals * K::kBlockBytes;
  // A step of whole 16-byte lines starts at a line (rows do), so its window is its bytes; any
  // other needs room for the offset and the rounding up.
  static constexpr int kRawStride = kStepBytes % 16 == 0 ? kStepBytes : (kStepBytes + 15 + 15) / 16 * 16;
  static constexpr size_t raw = 0;
  static constexpr size_t raw_bytes = K::kRawBufs * kBM * kRawStride + 16;
  // The raw buffer of a step whose other tiles are in buffer `buf`.
  PLUMB_HD static int raw_buf(int buf) { return K::kRawBufs == 2 ? buf : 0; }
  static constexpr size_t a = (raw + raw_bytes + 15) / 16 * 16;
  static constexpr size_t b = a + kBM * kTileStride;
  static constexpr size_t b_buf = 2 * kBN * kTileStride;  // one buffer: hi then lo
  static constexpr size_t dw = b + 2 * b_buf;
  static constexpr size_t da = dw + sizeof(float) * kSubs * kBM;
  static constexpr size_t coef_buf = sizeof(float) * kBN * kCoefStride;
  static constexpr size_t total = da + 2 * coef_buf;
};

static_assert(Smem<Kind<TensorType::Q4_0>>::total <= kTwoBlockSmem &&
                  Smem<Kind<TensorType::Q8_0>>::total <= kTwoBlockSmem &&
                  Smem<Kind<TensorType::Q6_K>>::total <= kTwoBlockSmem,
              "two Q4_0, Q8_0 or Q6_K blocks a multiprocessor");

// The bytes of step `step` of a row (its values [256 step, 256 step + 256) cut at the row's end):
// they start `offset` bytes into a 16-byte aligned window of `window` bytes.
struct RawWindow {
  int64_t start;  // byte of the row where the window starts (a multiple of 16)
  int offset;     // of the step's first byte in the window
  int window;     // bytes to copy, a multiple of 16
};
template <class K>
PLUMB_HD RawWindow raw_window(int64_t step, int k_valid) {
  const int64_t first = step * Smem<K>::kStepBytes;
  const int bytes = k_valid / K::kBlockVals * K::kBlockBytes;
  RawWindow w;
  w.start = first & ~int64_t{15};
  w.offset = static_cast<int>(first - w.start);
  w.window = (w.offset + bytes + 15) / 16 * 16;
  return w;
}

}  // namespace plumb::cuda::summed
