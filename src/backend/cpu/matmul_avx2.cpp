// AVX2/FMA/F16C kernels (this file is compiled with -mavx2 -mfma -mf16c; matmul.cpp picks it at
// run time). They follow the contracts of matmul_internal.h to the bit: for 1 to 3 tokens the
// lane contract (integer lane partials from _mm256_madd_epi16, exact; the same f32 multiply and
// fma per lane as the scalar kernels, and the same reduction tree), for prompt batches contract S.
//
// Prompt batches: each row is first unpacked into an L1-resident int16 buffer (plus its
// per-sub-block multipliers), then dotted with the tokens in tiles of 8, so a weight row is read
// from memory and unpacked once per block of 64 or more tokens (avx2_summed_prompt).
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "backend/cpu/float_blocks.h"
#include "backend/cpu/matmul_internal.h"
#include "backend/cpu/rows16.h"
#include "backend/cpu/simd_x86.h"
#include "backend/cpu/weight_unpack.h"
#include "quant/ref.h"

namespace plumb::cpu::detail {
namespace {





// ---- SIMD unpackers of one block into int16 weights (same values as weight_unpack.h) ----

// 16 bytes of nibbles (byte j: element j low, element j+16 high) -> 32 int16 minus `offset`.
inline void unpack_nibbles16(const uint8_t* qs, int16_t* w, int offset) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i m4 = _mm_set1_epi8(0x0F);
  const __m128i off = _mm_set1_epi8(static_cast<char>(offset));
  const __m128i lo = _mm_sub_epi8(_mm_and_si128(v, m4), off);
  const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(v, 4), m4), off);
  _mm256_store_si256(reinterpret_cast<__m256i*>(w), _mm256_cvtepi8_epi16(lo));
  _mm256_store_si256(reinterpret_cast<__m256i*>(w + 16), _mm256_cvtepi8_epi16(hi));
}

// 32 signed bytes -> 32 int16.
inline void widen32(__m256i b, int16_t* w) {
  _mm256_store_si256(reinterpret_cast<__m256i*>(w), _mm256_cvtepi8_epi16(_mm256_castsi256_si128(b)));
  _mm256_store_si256(reinterpret_cast<__m256i*>(w + 16), _mm256_cvtepi8_epi16(_mm256_extracti128_si256(b, 1)));
}

struct SimdQ4_0 : UnpackQ4_0 {
  static void unpack(const uint8_t* p, int16_t* w, float* dw, float*) {
    const auto* b = reinterpret_cast<const Block*>(p);
    unpack_nibbles16(b->qs, w, 8);
    dw[0] = f16(&b->d);
  }
};

struct SimdQ4_1 : UnpackQ4_1 {
  static void unpack(const uint8_t* p, int16_t* w, float* dw, float* mc) {
    const auto* b = reinterpret_cast<const Block*>(p);
    unpack_nibbles16(b->qs, w, 8);
    dw[0] = f16(&b->d);
    mc[0] = f16(&b->m) + 8.0f * dw[0];
  }
};

struct SimdQ8_0 : UnpackQ8_0 {
  static void unpack(const uint8_t* p, int16_t* w, float* dw, float*) {
    const auto* b = reinterpret_cast<const Block*>(p);
    widen32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b->qs)), w);
    dw[0] = f16(&b->d);
  }
};

struct SimdIQ4_NL : UnpackIQ4_NL {
  static void unpack(const uint8_t* p, int16_t* w, float* dw, float*) {
    const auto* b = reinterpret_cast<const Block*>(p);
    const __m128i table = _mm_loadu_si128(reinterpret_cast<const __m128i*>(kIQ4NLValues));
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b->qs));
    const __m128i m4 = _mm_set1_epi8(0x0F);
    const __m128i lo = _mm_shuffle_epi8(table, _mm_and_si128(v, m4));
    const __m128i hi = _mm_shuffle_epi8(table, _mm_and_si128(_mm_srli_epi16(v, 4), m4));
    _mm256_store_si256(reinterpret_cast<__m256i*>(w), _mm256_cvtepi8_epi16(lo));
    _mm256_store_si256(reinterpret_cast<__m256i*>(w + 16), _mm256_cvtepi8_epi16(hi));
    dw[0] = f16(&b->d);
  }
};

struct SimdQ4_K : UnpackQ4_K {
  static void unpack(const uint8_t* p, int16_t* w, float* dw, float* mc) {
    const auto* b = reinterpret_cast<const Block*>(p);
    const float d = f16(&b->d);
    const float dmin = f16(&b->dmin);
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      k4_scale_min(j, b->scales, &sc, &m);
      dw[j] = d * static_cast<float>(sc);
      mc[j] = -(dmin * static_cast<float>(m)) + 8.0f * dw[j];
    }
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i off = _mm256_set1_epi8(8);
    for (int i = 0; i < 4; ++i) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b->qs + 32 * i));
      widen32(_mm256_sub_epi8(_mm256_and_si256(v, m4), off), w + 64 * i);
      widen32(_mm256_sub_epi8(_mm256_and_si256(_mm256_srli_epi16(v, 4), m4), off), w + 64 * i + 32);
    }
  }
};

struct SimdQ6_K : UnpackQ6_K {
  static void unpack(const uint8_t* p, int16_t* w, float* dw, float*) {
    const auto* b = reinterpret_cast<const Block*>(p);
    const float d = f16(&b->d);
    for (int s = 0; s < 16; ++s) dw[s] = d * static_cast<float>(b->scales[s]);
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i m2 = _mm256_set1_epi8(0x03);
    const __m256i off = _mm256_set1_epi8(32);
    for (int n = 0; n < 2; ++n) {
      const __m256i ql0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b->ql + 64 * n));
      const __m256i ql1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b->ql + 64 * n + 32));
      const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b->qh + 32 * n));
      const __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(qh, m2), 4);
      const __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m2), 4);
      const __m256i h2 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m2), 4);
      const __m256i h3 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m2), 4);
      int16_t* o = w + 128 * n;
      widen32(_mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(ql0, m4), h0), off), o);
      widen32(_mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(ql1, m4), h1), off), o + 32);
      widen32(_mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4), h2), off), o + 64);
      widen32(_mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4), h3), off), o + 96);
    }
  }
};

// ---- the generic dot of an unpacked row with up to 4 tokens ----

// Per-thread scratch for a group of unpacked rows: int16 weights (row stride n_in, 64-byte
// aligned) and per-sub-block multipliers.
struct RowScratch {
  Buffer w_buf, dw_buf, mc_buf;  // no std::vector in a SIMD file (simd_x86.h)
  int16_t* w_aligned = nullptr;
  float* dw = nullptr;
  float* mc = nullptr;
  void reserve(int64_t n_rows, int64_t n_in, int64_t n_sub) {
    const auto n = static_cast<size_t>(n_rows * n_in);
    w_aligned = w_buf.get<int16_t>(n + 32);
    std::memset(w_aligned + n, 0, 32 * sizeof(int16_t));  // the padding past the last row reads zeros
    dw = dw_buf.get<float>(static_cast<size_t>(n_rows * n_sub));
    mc = mc_buf.get<float>(static_cast<size_t>(n_rows * n_sub));
  }
};

// Sub-block s of an unpacked row into acc[t] (the caller passes the set s % 2).
template <int kSub, int kT>
inline void dot_sub(const int16_t* w, const float* dw, int64_t s, const ActRow* a, __m256* acc) {
  const int64_t e0 = s * kSub;
  const __m256 dws = _mm256_broadcast_ss(dw + s);
  const __m256i w0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(w + e0));
  if constexpr (kSub == 32) {
    const __m256i w1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(w + e0 + 16));
    for (int t = 0; t < kT; ++t) {
      const __m256i p0 = _mm256_madd_epi16(w0, _mm256_load_si256(reinterpret_cast<const __m256i*>(a[t].q + e0)));
      const __m256i p1 = _mm256_madd_epi16(w1, _mm256_load_si256(reinterpret_cast<const __m256i*>(a[t].q + e0 + 16)));
      const __m256 coef = _mm256_mul_ps(dws, _mm256_broadcast_ss(a[t].d + s));
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(p0, p1)), coef, acc[t]);
    }
  } else {
    for (int t = 0; t < kT; ++t) {
      const __m256i p0 = _mm256_madd_epi16(w0, _mm256_load_si256(reinterpret_cast<const __m256i*>(a[t].q + e0)));
      const __m256 coef = _mm256_mul_ps(dws, _mm256_broadcast_ss(a[t].d + s / 2));
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), coef, acc[t]);
    }
  }
}

// Sub-blocks [s0, s1) (s0 even) of an unpacked row for kT tokens, continuing the accumulators
// acc[2t] (even sub-blocks) and acc[2t + 1] (odd). Kept in registers inside the span: a runtime
// set index would keep them in memory.
template <int kSub, int kT>
inline void dot_span(const int16_t* w, const float* dw, int64_t s0, int64_t s1, const ActRow* a, __m256* acc) {
  __m256 even[kT], odd[kT];
  for (int t = 0; t < kT; ++t) {
    even[t] = acc[2 * t];
    odd[t] = acc[2 * t + 1];
  }
  int64_t s = s0;
  for (; s + 2 <= s1; s += 2) {
    dot_sub<kSub, kT>(w, dw, s, a, even);
    dot_sub<kSub, kT>(w, dw, s + 1, a, odd);
  }
  if (s < s1) dot_sub<kSub, kT>(w, dw, s, a, even);
  for (int t = 0; t < kT; ++t) {
    acc[2 * t] = even[t];
    acc[2 * t + 1] = odd[t];
  }
}

// macc[s % 8] = fma(mc[s], sx[s], macc[s % 8]) over s, as a vector plus a scalar tail.
inline __m256 min_lanes(const float* mc, const float* sx, int64_t n_sub) {
  __m256 macc = _mm256_setzero_ps();
  int64_t s = 0;
  for (; s + 8 <= n_sub; s += 8) macc = _mm256_fmadd_ps(_mm256_loadu_ps(mc + s), _mm256_loadu_ps(sx + s), macc);
  if (s < n_sub) {
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, macc);
    for (int l = 0; s < n_sub; ++s, ++l) lanes[l] = std::fma(mc[s], sx[s], lanes[l]);
    macc = _mm256_load_ps(lanes);
  }
  return macc;
}

// ---- single-token kernels: unpack in registers and dot at once (generation is bound by
// memory bandwidth, so every instruction per weight byte counts) ----

// The 8 per-sub-block coefficients go through memory: a broadcast load costs a load port,
// where a register permute per sub-block would compete with the widening shuffles.
struct Coef8 {
  alignas(32) float c[8];
  explicit Coef8(__m256 v) { _mm256_store_ps(c, v); }
  __m256 operator[](int i) const { return _mm256_broadcast_ss(c + i); }
};

inline __m256i act16(const int16_t* q) { return _mm256_load_si256(reinterpret_cast<const __m256i*>(q)); }

// Lane partials of 32 signed-byte weights (element order) with 32 activations.
inline __m256 dot32(__m256i wbytes, const int16_t* q) {
  const __m256i w0 = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(wbytes));
  const __m256i w1 = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(wbytes, 1));
  return _mm256_cvtepi32_ps(_mm256_add_epi32(_mm256_madd_epi16(w0, act16(q)), _mm256_madd_epi16(w1, act16(q + 16))));
}
inline __m256 dot32(__m128i lo16, __m128i hi16, const int16_t* q) {
  return _mm256_cvtepi32_ps(_mm256_add_epi32(_mm256_madd_epi16(_mm256_cvtepi8_epi16(lo16), act16(q)),
                                             _mm256_madd_epi16(_mm256_cvtepi8_epi16(hi16), act16(q + 16))));
}
// Lane partials of 16 signed-byte weights with 16 activations.
inline __m256 dot16(__m128i w16, const int16_t* q) {
  return _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_cvtepi8_epi16(w16), act16(q)));
}

// Q4_0 / Q4_1 share the main term (weights q - 8); Q4_1 adds mc = m + 8 d per block.
// 32-element blocks (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL): B gives the block size, its
// weights' lane partials with 32 activations, d, and for min types mc (as weight_unpack.h).
template <class B>
inline __m256 legacy_block(const uint8_t* b, int64_t i, const ActRow& a, __m256 acc, float* mcs) {
  const __m128 dm = f16x2(b);  // d, and m for the min types (every block here starts with d)
  const float d = _mm_cvtss_f32(dm);
  if constexpr (B::kHasMin) mcs[i & 7] = B::mc(_mm_cvtss_f32(_mm_movehdup_ps(dm)), d);
  return _mm256_fmadd_ps(B::dot(b, a.q + 32 * i), _mm256_set1_ps(d * a.d[i]), acc);
}

template <class B>
float fused_legacy(const uint8_t* row, int64_t nb, const ActRow& a) {
  __m256 even = _mm256_setzero_ps(), odd = _mm256_setzero_ps();
  __m256 macc = _mm256_setzero_ps();
  // Min coefficients of groups of 8 blocks, double-buffered: a group is consumed (one vector
  // fma, lanes = block % 8) one group late, so its 8 scalar stores have left the store buffer
  // (a vector load right after them would stall on store forwarding).
  alignas(32) float mcs[2][8];
  int64_t pending = -1;
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    float* buf = mcs[(i >> 3) & 1];
    even = legacy_block<B>(row + i * B::kBytes, i, a, even, buf);
    odd = legacy_block<B>(row + (i + 1) * B::kBytes, i + 1, a, odd, buf);
    if constexpr (B::kHasMin) {
      if ((i & 7) == 6) {
        if (pending >= 0) {
          macc = _mm256_fmadd_ps(_mm256_load_ps(mcs[pending & 1]), _mm256_loadu_ps(a.sx32 + 8 * pending), macc);
        }
        pending = i >> 3;
      }
    }
  }
  if (i < nb) even = legacy_block<B>(row + i * B::kBytes, i, a, even, mcs[(i >> 3) & 1]);
  float out = hsum8_ps(_mm256_add_ps(even, odd));
  if constexpr (B::kHasMin) {
    if (pending >= 0) {
      macc = _mm256_fmadd_ps(_mm256_load_ps(mcs[pending & 1]), _mm256_loadu_ps(a.sx32 + 8 * pending), macc);
    }
    if (nb & 7) {
      const float* last = mcs[(nb >> 3) & 1];
      alignas(32) float lanes[8];
      _mm256_store_ps(lanes, macc);
      for (int64_t j = nb & ~int64_t{7}, l = 0; j < nb; ++j, ++l) lanes[l] = std::fma(last[l], a.sx32[j], lanes[l]);
      macc = _mm256_load_ps(lanes);
    }
    out += hsum8_ps(macc);
  }
  return out;
}

// 16 bytes of nibbles -> element-order low (elements 0..15) and high (16..31) halves, minus off.
inline void nibbles(const uint8_t* qs, int off, __m128i* lo, __m128i* hi) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i m4 = _mm_set1_epi8(0x0F);
  const __m128i o = _mm_set1_epi8(static_cast<char>(off));
  *lo = _mm_sub_epi8(_mm_and_si128(v, m4), o);
  *hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(v, 4), m4), o);
}

// The 32 fifth bits of Q5_0/Q5_1 (bit j = element j) as 0x10 bytes in element order.
inline __m256i fifth_bits(const uint8_t* qh4) {
  uint32_t qh;
  std::memcpy(&qh, qh4, 4);
  const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(qh)),
                                             _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                                               0x0101010101010101, 0x0000000000000000));
  const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ull));
  return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit), _mm256_set1_epi8(0x10));
}

inline __m256i q5_bytes(const uint8_t* qh4, const uint8_t* qs) {
  __m128i lo, hi;
  nibbles(qs, 0, &lo, &hi);
  const __m256i q = _mm256_or_si256(_mm256_set_m128i(hi, lo), fifth_bits(qh4));
  return _mm256_sub_epi8(q, _mm256_set1_epi8(16));
}

struct BlkQ4_0 {
  static constexpr size_t kBytes = sizeof(block_q4_0);
  static constexpr bool kHasMin = false;
  static __m256 dot(const uint8_t* b, const int16_t* q) {
    __m128i lo, hi;
    nibbles(b + 2, 8, &lo, &hi);
    return dot32(lo, hi, q);
  }
  static float mc(float, float) { return 0.0f; }
};
struct BlkQ4_1 {
  static constexpr size_t kBytes = sizeof(block_q4_1);
  static constexpr bool kHasMin = true;
  static __m256 dot(const uint8_t* b, const int16_t* q) {
    __m128i lo, hi;
    nibbles(b + 4, 8, &lo, &hi);
    return dot32(lo, hi, q);
  }
  static float mc(float m, float d) { return m + 8.0f * d; }
};
struct BlkQ5_0 {
  static constexpr size_t kBytes = sizeof(block_q5_0);
  static constexpr bool kHasMin = false;
  static __m256 dot(const uint8_t* b, const int16_t* q) { return dot32(q5_bytes(b + 2, b + 6), q); }
  static float mc(float, float) { return 0.0f; }
};
struct BlkQ5_1 {
  static constexpr size_t kBytes = sizeof(block_q5_1);
  static constexpr bool kHasMin = true;
  static __m256 dot(const uint8_t* b, const int16_t* q) { return dot32(q5_bytes(b + 4, b + 8), q); }
  static float mc(float m, float d) { return m + 16.0f * d; }
};
struct BlkQ8_0 {
  static constexpr size_t kBytes = sizeof(block_q8_0);
  static constexpr bool kHasMin = false;
  // Two 16-byte halves, each widened straight from memory (vpmovsxbw ymm, m128): from one 32-byte
  // load GCC loaded the low half a second time and extracted the high one, 15 instructions a
  // block against 11 (one Zen 3 core, bench_matmul 2048 x 5632 from L3: 15.5-16.1 -> 20.4-22.2
  // GB/s; TinyLlama Q8_0 generation docs/PERFORMANCE.md, Zen 3).
  static __m256 dot(const uint8_t* b, const int16_t* q) {
    return dot32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 2)),
                 _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 18)), q);
  }
  static float mc(float, float) { return 0.0f; }
};
struct BlkIQ4_NL {
  static constexpr size_t kBytes = sizeof(block_iq4_nl);
  static constexpr bool kHasMin = false;
  static __m256 dot(const uint8_t* b, const int16_t* q) {
    const __m128i table = _mm_loadu_si128(reinterpret_cast<const __m128i*>(kIQ4NLValues));
    __m128i lo, hi;
    nibbles(b + 2, 0, &lo, &hi);
    return dot32(_mm_shuffle_epi8(table, lo), _mm_shuffle_epi8(table, hi), q);
  }
  static float mc(float, float) { return 0.0f; }
};

// Four short rows (at most kRows4MaxBlocks blocks) at once, sharing the activation loads and
// one transposed reduction. Min coefficients are kept per row and applied after the blocks, in
// block order as the contract wants (and long after their scalar stores).
constexpr int64_t kLegacyRows4MaxBlocks = 24;

template <class B>
void fused_legacy_rows4(const uint8_t* row, size_t row_bytes, int64_t nb, const ActRow& a, float* y) {
  __m256 even[4], odd[4];
  alignas(32) float mcs[4][kLegacyRows4MaxBlocks];
  for (int r = 0; r < 4; ++r) even[r] = odd[r] = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    for (int r = 0; r < 4; ++r) {
      const uint8_t* b = row + r * row_bytes + i * B::kBytes;
      even[r] = legacy_block<B>(b, i, a, even[r], mcs[r] + (i & ~int64_t{7}));
      odd[r] = legacy_block<B>(b + B::kBytes, i + 1, a, odd[r], mcs[r] + (i & ~int64_t{7}));
    }
  }
  if (i < nb) {
    for (int r = 0; r < 4; ++r) {
      even[r] = legacy_block<B>(row + r * row_bytes + i * B::kBytes, i, a, even[r], mcs[r] + (i & ~int64_t{7}));
    }
  }
  __m128 out = hsum8x4(_mm256_add_ps(even[0], odd[0]), _mm256_add_ps(even[1], odd[1]), _mm256_add_ps(even[2], odd[2]),
                       _mm256_add_ps(even[3], odd[3]));
  if constexpr (B::kHasMin) {
    __m256 macc[4];
    for (int r = 0; r < 4; ++r) macc[r] = min_lanes(mcs[r], a.sx32, nb);
    out = _mm_add_ps(out, hsum8x4(macc[0], macc[1], macc[2], macc[3]));
  }
  _mm_storeu_ps(y, out);
}

template <class B>
struct FusedLegacy {
  static constexpr int64_t kRows4MaxBlocks = B::kHasMin ? kLegacyRows4MaxBlocks : 16;
  static float row(const uint8_t* r, int64_t nb, const ActRow& a) { return fused_legacy<B>(r, nb, a); }
  static void rows4(const uint8_t* row, size_t row_bytes, int64_t nb, const ActRow& a, float* y) {
    fused_legacy_rows4<B>(row, row_bytes, nb, a, y);
  }
};
using FusedQ4_0 = FusedLegacy<BlkQ4_0>;
using FusedQ4_1 = FusedLegacy<BlkQ4_1>;
using FusedQ5_0 = FusedLegacy<BlkQ5_0>;
using FusedQ5_1 = FusedLegacy<BlkQ5_1>;
using FusedQ8_0 = FusedLegacy<BlkQ8_0>;
using FusedIQ4_NL = FusedLegacy<BlkIQ4_NL>;

// ---- K-quant single-token kernels: one super-block of one row at a time (K::block), driven
// for one row or four rows at once. Rows of 256-768 elements (small models, and every K/V
// product) are only 1-3 super-blocks long, so a per-row reduction and call would cost a third
// of the work; four rows share the activation loads and one transposed reduction. ----

// Accumulators of one row: the contract's two sets and the min term.
struct KAcc {
  __m256 even = _mm256_setzero_ps(), odd = _mm256_setzero_ps(), min = _mm256_setzero_ps();
};


// dw = d * scale and mc = offset * dw - dmin * min of the 8 sub-blocks; the min term of the block.
inline __m256 k4_dw_and_min(const uint8_t* scales, float d, float dmin, float offset, const float* sx, KAcc& acc) {
  const __m128i sm = k4_scales_mins(scales);
  const __m256 dw = _mm256_mul_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(sm)));
  const __m256 mf = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(sm, 8)));
  const __m256 mc = _mm256_sub_ps(_mm256_mul_ps(_mm256_set1_ps(offset), dw), _mm256_mul_ps(_mm256_set1_ps(dmin), mf));
  acc.min = _mm256_fmadd_ps(mc, _mm256_loadu_ps(sx), acc.min);
  return dw;
}

// kRows4MaxBlocks: the longest rows (in super-blocks) that rows4 runs faster than four row
// calls (measured on Zen 3; beyond it the four rows' temporaries spill).
//
// Q5_K: Q4_K's scales and mins, plus the fifth bits of qh; weights q - 16, mc = -dmin*m + 16*dw.
// (Q4_K and Q6_K have no single-token kernels: their products follow contract S,
// ActivationBuffer::summed_for.)
struct KQ5_K {
  using Block = block_q5_K;
  static constexpr bool kHasMin = true;
  static constexpr int64_t kRows4MaxBlocks = 3;
  static inline __attribute__((always_inline)) void block(const Block& b, int64_t i, const ActRow& a, KAcc& acc) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i one = _mm256_set1_epi8(1);
    const __m256i off = _mm256_set1_epi8(16);
    const __m256 dw = k4_dw_and_min(b.scales, f16(&b.d), f16(&b.dmin), 16.0f, a.sx32 + 8 * i, acc);
    const Coef8 coef(_mm256_mul_ps(dw, _mm256_loadu_ps(a.d + 8 * i)));
    const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh));
    const int16_t* q = a.q + 256 * i;
    for (int j = 0; j < 4; ++j) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs + 32 * j));
      const __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * j), one), 4);
      const __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * j + 1), one), 4);
      const __m256i lo = _mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(v, m4), h0), off);
      const __m256i hi = _mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v, 4), m4), h1), off);
      acc.even = _mm256_fmadd_ps(dot32(lo, q + 64 * j), coef[2 * j], acc.even);
      acc.odd = _mm256_fmadd_ps(dot32(hi, q + 64 * j + 32), coef[2 * j + 1], acc.odd);
    }
  }
};

template <class K>
struct FusedK {
  static constexpr int64_t kRows4MaxBlocks = K::kRows4MaxBlocks;
  static float row(const uint8_t* row, int64_t nb, const ActRow& a) {
    const auto* blocks = reinterpret_cast<const typename K::Block*>(row);
    KAcc acc;
    for (int64_t i = 0; i < nb; ++i) K::block(blocks[i], i, a, acc);
    float out = hsum8_ps(_mm256_add_ps(acc.even, acc.odd));
    if constexpr (K::kHasMin) out += hsum8_ps(acc.min);
    return out;
  }
  // Four consecutive rows (row_bytes apart) into y[0..4).
  static void rows4(const uint8_t* row, size_t row_bytes, int64_t nb, const ActRow& a, float* y) {
    const auto* b0 = reinterpret_cast<const typename K::Block*>(row);
    const auto* b1 = reinterpret_cast<const typename K::Block*>(row + row_bytes);
    const auto* b2 = reinterpret_cast<const typename K::Block*>(row + 2 * row_bytes);
    const auto* b3 = reinterpret_cast<const typename K::Block*>(row + 3 * row_bytes);
    KAcc acc[4];
    for (int64_t i = 0; i < nb; ++i) {
      K::block(b0[i], i, a, acc[0]);
      K::block(b1[i], i, a, acc[1]);
      K::block(b2[i], i, a, acc[2]);
      K::block(b3[i], i, a, acc[3]);
    }
    __m128 out = hsum8x4(_mm256_add_ps(acc[0].even, acc[0].odd), _mm256_add_ps(acc[1].even, acc[1].odd),
                         _mm256_add_ps(acc[2].even, acc[2].odd), _mm256_add_ps(acc[3].even, acc[3].odd));
    if constexpr (K::kHasMin) out = _mm_add_ps(out, hsum8x4(acc[0].min, acc[1].min, acc[2].min, acc[3].min));
    _mm_storeu_ps(y, out);
  }
};
using FusedQ5_K = FusedK<KQ5_K>;

// IQ4_XS: 8 sub-blocks of 32 with 6-bit scales (ls - 32), values from the IQ4_NL grid.
struct FusedIQ4_XS {
  static float row(const uint8_t* row, int64_t nb, const ActRow& a) {
    const __m128i table = _mm_loadu_si128(reinterpret_cast<const __m128i*>(kIQ4NLValues));
    __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    const auto* blocks = reinterpret_cast<const block_iq4_xs*>(row);
    for (int64_t i = 0; i < nb; ++i) {
      const block_iq4_xs& b = blocks[i];
      const uint16_t scales_h = load_u16(&b.scales_h);
      alignas(32) int32_t ls[8];
      for (int ib = 0; ib < 8; ++ib) {
        ls[ib] = (((b.scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF) | (((scales_h >> (2 * ib)) & 3) << 4)) - 32;
      }
      const __m256 dw = _mm256_mul_ps(_mm256_set1_ps(f16(&b.d)),
                                      _mm256_cvtepi32_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(ls))));
      const Coef8 coef(_mm256_mul_ps(dw, _mm256_loadu_ps(a.d + 8 * i)));
      const int16_t* q = a.q + 256 * i;
      for (int ib = 0; ib < 8; ib += 2) {
        __m128i lo, hi;
        nibbles(b.qs + 16 * ib, 0, &lo, &hi);
        acc[0] = _mm256_fmadd_ps(dot32(_mm_shuffle_epi8(table, lo), _mm_shuffle_epi8(table, hi), q + 32 * ib),
                                 coef[ib], acc[0]);
        nibbles(b.qs + 16 * ib + 16, 0, &lo, &hi);
        acc[1] = _mm256_fmadd_ps(dot32(_mm_shuffle_epi8(table, lo), _mm_shuffle_epi8(table, hi), q + 32 * ib + 32),
                                 coef[ib + 1], acc[1]);
      }
    }
    return hsum8_ps(_mm256_add_ps(acc[0], acc[1]));
  }
};

// Q2_K / Q3_K: 16 sub-blocks of 16 per super-block, two halves of 128 elements; in half n, shift
// 2j of the 32 bytes qs[32n..] holds sub-blocks 8n+2j (bytes 0..15) and 8n+2j+1 (bytes 16..31).
// coef[s] = dw[s] * d_a[s / 2] for the sub-blocks 8n..8n+7 of half n.
inline Coef8 k16_coef(__m256 dw, const float* d_a) {
  const __m256i pairs = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
  return Coef8(_mm256_mul_ps(dw, _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(d_a)), pairs)));
}

template <class Bytes>
inline void k16_half(const Bytes& bytes_of, const Coef8& coef, const int16_t* q, __m256 acc[2]) {
  for (int j = 0; j < 4; ++j) {
    const __m256i w = bytes_of(j);
    acc[0] = _mm256_fmadd_ps(dot16(_mm256_castsi256_si128(w), q + 32 * j), coef[2 * j], acc[0]);
    acc[1] = _mm256_fmadd_ps(dot16(_mm256_extracti128_si256(w, 1), q + 32 * j + 16), coef[2 * j + 1], acc[1]);
  }
}

struct FusedQ2_K {
  static float row(const uint8_t* row, int64_t nb, const ActRow& a) {
    const __m256i m2 = _mm256_set1_epi8(3);
    const __m256i off = _mm256_set1_epi8(2);
    __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    __m256 macc = _mm256_setzero_ps();
    const auto* blocks = reinterpret_cast<const block_q2_K*>(row);
    for (int64_t i = 0; i < nb; ++i) {
      const block_q2_K& b = blocks[i];
      const __m256 d = _mm256_set1_ps(f16(&b.d));
      const __m256 dmin = _mm256_set1_ps(f16(&b.dmin));
      const __m128i sc = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales));
      const __m128i sc_lo = _mm_and_si128(sc, _mm_set1_epi8(0x0F));
      const __m128i sc_hi = _mm_and_si128(_mm_srli_epi16(sc, 4), _mm_set1_epi8(0x0F));
      for (int n = 0; n < 2; ++n) {
        const __m256 dw = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(n ? _mm_srli_si128(sc_lo, 8) : sc_lo)));
        const __m256 mf = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(n ? _mm_srli_si128(sc_hi, 8) : sc_hi));
        const __m256 mc = _mm256_sub_ps(_mm256_mul_ps(_mm256_set1_ps(2.0f), dw), _mm256_mul_ps(dmin, mf));
        macc = _mm256_fmadd_ps(mc, _mm256_loadu_ps(a.sx16 + 16 * i + 8 * n), macc);
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs + 32 * n));
        k16_half(
            [&](int j) { return _mm256_sub_epi8(_mm256_and_si256(_mm256_srli_epi16(v, 2 * j), m2), off); },
            k16_coef(dw, a.d + 8 * i + 4 * n), a.q + 256 * i + 128 * n, acc);
      }
    }
    return hsum8_ps(_mm256_add_ps(acc[0], acc[1])) + hsum8_ps(macc);
  }
};

struct FusedQ3_K {
  static float row(const uint8_t* row, int64_t nb, const ActRow& a) {
    const __m256i m2 = _mm256_set1_epi8(3);
    const __m256i one = _mm256_set1_epi8(1);
    const __m256i off = _mm256_set1_epi8(4);
    __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    const auto* blocks = reinterpret_cast<const block_q3_K*>(row);
    for (int64_t i = 0; i < nb; ++i) {
      const block_q3_K& b = blocks[i];
      const __m256 d = _mm256_set1_ps(f16(&b.d));
      alignas(16) int8_t sc[16];
      q3k_scales(b.scales, sc);
      const __m128i scv = _mm_sub_epi8(_mm_load_si128(reinterpret_cast<const __m128i*>(sc)), _mm_set1_epi8(32));
      const __m256i hm = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.hmask));
      for (int n = 0; n < 2; ++n) {
        const __m256 dw = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(n ? _mm_srli_si128(scv, 8) : scv)));
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs + 32 * n));
        k16_half(
            [&](int j) {
              const __m256i low = _mm256_and_si256(_mm256_srli_epi16(v, 2 * j), m2);
              const __m256i hbit = _mm256_and_si256(_mm256_srli_epi16(hm, 4 * n + j), one);
              return _mm256_sub_epi8(_mm256_or_si256(low, _mm256_slli_epi16(hbit, 2)), off);
            },
            k16_coef(dw, a.d + 8 * i + 4 * n), a.q + 256 * i + 128 * n, acc);
      }
    }
    return hsum8_ps(_mm256_add_ps(acc[0], acc[1]));
  }
};

struct NoFused {};

// ---- prompt batches: contract S, 8 tokens along the lanes ----
// As the AVX-512 kernels (matmul_avx512.cpp): a sub-block's activations as int16 pairs (dwords)
// transposed to [dword][token] stay in registers while each row's weight dwords are broadcast
// into vpmaddwd; the exact int32 sums of a sub-block then take one fma per 8 tokens.
constexpr int kLaneTokens = 8;
// 6 rows a group, 2 activation dwords at a time: 8 of the 16 ymm registers for the sums and
// activations (one TinyLlama layer x 64 tokens, one core: Q4_K 70 ms with 2 rows x 4 dwords,
// 53 with 4 x 2, 52 with 6 x 2, 55 with 8 x 1; Q6_K 64, 66, 48, 52).
constexpr int kSummedRows = 6;
constexpr int kActDwords = 2;
// Activations per block of token tiles (see avx2_summed_prompt): half the L2 of a Zen 3 core.
constexpr int64_t kPromptBlockBytes = int64_t{256} << 10;

// The 8 x 8 dword transpose of rows v[0..8).
inline void transpose8x8(__m256i v[8]) {
  __m256i t[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_epi32(v[i], v[i + 1]);
    t[i + 1] = _mm256_unpackhi_epi32(v[i], v[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    v[i] = _mm256_unpacklo_epi64(t[i], t[i + 2]);
    v[i + 1] = _mm256_unpackhi_epi64(t[i], t[i + 2]);
    v[i + 2] = _mm256_unpacklo_epi64(t[i + 1], t[i + 3]);
    v[i + 3] = _mm256_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  // 128-bit lane L of v[4q + c] holds dword 4L + c of rows 4q..4q+3.
  for (int c = 0; c < 4; ++c) {
    t[c] = _mm256_permute2x128_si256(v[c], v[4 + c], 0x20);
    t[4 + c] = _mm256_permute2x128_si256(v[c], v[4 + c], 0x31);
  }
  for (int i = 0; i < 8; ++i) v[i] = t[i];
}

// The min term of a group's rows for a tile, added to out[r]: hsum8 of the contract's chains
// macc[s % 8] += mc[r * n_sub + s] * sx[s]. Chains j and j + 4 of every row at a time (12
// accumulators), so that each load of the tile's sums feeds all the rows, as the AVX-512 kernel's
// add_min_terms says why; the same operations in the same order for every output.
inline void add_min_terms(const float* mc, const float* sxt, int64_t n_sub, __m256* out) {
  __m256 chain_pairs[4][kSummedRows];  // [j][r]: macc[j] + macc[j + 4]
  for (int j = 0; j < 4; ++j) {
    __m256 lo[kSummedRows], hi[kSummedRows];
    for (int r = 0; r < kSummedRows; ++r) lo[r] = hi[r] = _mm256_setzero_ps();
    for (int64_t s = j; s < n_sub; s += 8) {
      const __m256 x = _mm256_load_ps(sxt + s * kLaneTokens);
      for (int r = 0; r < kSummedRows; ++r) lo[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(mc + r * n_sub + s), x, lo[r]);
      if (s + 4 < n_sub) {
        const __m256 x4 = _mm256_load_ps(sxt + (s + 4) * kLaneTokens);
        for (int r = 0; r < kSummedRows; ++r) {
          hi[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(mc + r * n_sub + s + 4), x4, hi[r]);
        }
      }
    }
    for (int r = 0; r < kSummedRows; ++r) chain_pairs[j][r] = _mm256_add_ps(lo[r], hi[r]);
  }
  for (int r = 0; r < kSummedRows; ++r) {
    const __m256 h = _mm256_add_ps(_mm256_add_ps(chain_pairs[0][r], chain_pairs[2][r]),
                                   _mm256_add_ps(chain_pairs[1][r], chain_pairs[3][r]));
    out[r] = _mm256_add_ps(out[r], h);
  }
}

// y[t * ldy + r] = out[r][t] for rows r < nr and tokens t < nt: the tile transposed in registers,
// so that a token's six rows go out as two stores (16 and 8 bytes) instead of six.
inline void store_tile_transposed(const __m256* out, int nr, int nt, float* y, int64_t ldy) {
  __m256i v[8];
  for (int r = 0; r < 8; ++r) v[r] = r < kSummedRows ? _mm256_castps_si256(out[r]) : _mm256_setzero_si256();
  transpose8x8(v);  // v[t]: token t's rows
  for (int t = 0; t < nt; ++t) {
    const __m256 rows = _mm256_castsi256_ps(v[t]);
    float* yt = y + t * ldy;
    if (nr == kSummedRows) {
      static_assert(kSummedRows == 6, "four rows and two");
      _mm_storeu_ps(yt, _mm256_castps256_ps128(rows));
      _mm_storel_pi(reinterpret_cast<__m64*>(yt + 4), _mm256_extractf128_ps(rows, 1));
    } else {
      alignas(32) float o[8];
      _mm256_store_ps(o, rows);
      for (int r = 0; r < nr; ++r) yt[r] = o[r];
    }
  }
}

template <class U>
void avx2_summed_prompt(const WeightMatrix& w, const ActivationBuffer& x, float* y, int64_t ldy, int64_t r0,
                        int64_t r1) {
  constexpr int kSubs = U::kBlock / U::kSub;
  constexpr size_t kBlockBytes = sizeof(typename U::Block);
  constexpr int kSubDwords = U::kSub / 2;
  const ActLayout lay = ActLayout::for_n_in(w.n_in);
  const int64_t n_in = w.n_in;
  const int64_t n_tokens = x.n_tokens();
  const int64_t n_blocks = n_in / U::kBlock;
  const int64_t n_sub = n_in / U::kSub;
  const int64_t n_tiles = (n_tokens + kLaneTokens - 1) / kLaneTokens;

  // Per tile of 8 tokens (zeros past the last token): the activations' dwords along the lanes
  // (xt[(tile * n_in / 2 + i) * 8 + c]), each sub-block's d_a and the min term's sums; kept per
  // thread while x's preparation is the same (a thread's later chunks of rows reuse them).
  thread_local Buffer xt_buf, da_buf, sx_buf;
  thread_local uint64_t held = 0;
  int32_t* xt = xt_buf.get<int32_t>(static_cast<size_t>(n_tiles * n_in / 2 * kLaneTokens));
  float* da = da_buf.get<float>(static_cast<size_t>(n_tiles * n_sub * kLaneTokens));
  float* sxt = sx_buf.get<float>(static_cast<size_t>(n_tiles * n_sub * kLaneTokens));
  for (int64_t tile = 0; held != x.preparation() && tile < n_tiles; ++tile) {
    const int64_t t0 = tile * kLaneTokens;
    const int nt = static_cast<int>(std::min<int64_t>(n_tokens - t0, kLaneTokens));
    ActRow a[kLaneTokens];
    for (int c = 0; c < nt; ++c) a[c] = act_row(x, lay, t0 + c);
    for (int64_t i = 0; i < n_in / 2; i += 8) {
      __m256i v[8];
      for (int c = 0; c < 8; ++c) {
        v[c] = c < nt ? _mm256_load_si256(reinterpret_cast<const __m256i*>(a[c].q + 2 * i)) : _mm256_setzero_si256();
      }
      transpose8x8(v);
      for (int k = 0; k < 8; ++k) {
        _mm256_store_si256(reinterpret_cast<__m256i*>(xt + (tile * n_in / 2 + i + k) * kLaneTokens), v[k]);
      }
    }
    for (int64_t s = 0; s < n_sub; ++s) {
      for (int c = 0; c < kLaneTokens; ++c) {
        const bool real = c < nt;
        da[(tile * n_sub + s) * kLaneTokens + c] = real ? a[c].d[s * U::kSub / kActBlock] : 0.0f;
        sxt[(tile * n_sub + s) * kLaneTokens + c] = real ? (U::kSub == 32 ? a[c].sx32 : a[c].sx16)[s] : 0.0f;
      }
    }
  }

  held = x.preparation();

  // Groups of kSummedRows rows, unpacked once per block of token tiles, their weight dwords
  // interleaved (wi[d * kSummedRows + r]: dword d of row r), so that the main loop reads one
  // stream of weights instead of six rows apart.
  thread_local RowScratch scratch;
  scratch.reserve(kSummedRows, U::kBlock, n_sub);
  thread_local Buffer wi_buf;
  int32_t* wi = wi_buf.get<int32_t>(static_cast<size_t>(n_in / 2 * kSummedRows + 8));
  // Token tiles in blocks (tiles_per_block, matmul_avx512.cpp says why): every group of rows
  // passes over one block's activations, kept in L2, before the next block.
  const int64_t tile_bytes = n_in / 2 * kLaneTokens * 4;
  const int64_t block_tiles = std::min<int64_t>(n_tiles, std::max<int64_t>(8, kPromptBlockBytes / tile_bytes));
  for (int64_t tb = 0; tb < n_tiles; tb += block_tiles) {
    const int64_t te = std::min(tb + block_tiles, n_tiles);
    for (int64_t g0 = r0; g0 < r1; g0 += kSummedRows) {
      const int nr = static_cast<int>(std::min<int64_t>(r1 - g0, kSummedRows));
      // A missing row: zero weights and mins (its outputs are not stored).
      for (int r = nr; r < kSummedRows; ++r) {
        std::fill(scratch.w_aligned + r * U::kBlock, scratch.w_aligned + (r + 1) * U::kBlock, int16_t{0});
        std::fill(scratch.dw + r * n_sub, scratch.dw + (r + 1) * n_sub, 0.0f);
        std::fill(scratch.mc + r * n_sub, scratch.mc + (r + 1) * n_sub, 0.0f);
      }
      for (int64_t blk = 0; blk < n_blocks; ++blk) {  // a block of every row, then its dwords interleaved
        for (int r = 0; r < nr; ++r) {
          const uint8_t* b = w.data + static_cast<size_t>(g0 + r) * w.row_bytes + blk * kBlockBytes;
          if (blk + 1 < n_blocks) prefetch_range(b, kBlockBytes, kBlockBytes);  // the row's next block
          U::unpack(b, scratch.w_aligned + r * U::kBlock, scratch.dw + r * n_sub + blk * kSubs,
                    scratch.mc + r * n_sub + blk * kSubs);
        }
        for (int d = 0; d < U::kBlock / 2; d += 8) {
          __m256i v[8];
          for (int r = 0; r < 8; ++r) {
            v[r] = r < kSummedRows ? _mm256_load_si256(reinterpret_cast<const __m256i*>(scratch.w_aligned + r * U::kBlock + 2 * d))
                                   : _mm256_setzero_si256();
          }
          transpose8x8(v);  // v[k]: dword d + k of the rows
          // Ascending, each store's last two dwords overwritten by the next (wi has room past the end).
          for (int k = 0; k < 8; ++k) {
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(wi + (blk * U::kBlock / 2 + d + k) * kSummedRows), v[k]);
          }
        }
      }
      for (int64_t tile = tb; tile < te; ++tile) {
        const int32_t* xtile = xt + tile * n_in / 2 * kLaneTokens;
        alignas(32) float acc[kSummedRows][2][kLaneTokens] = {};  // [row][set s % 2][token]
        for (int64_t s = 0; s < n_sub; ++s) {
          __m256i sum[kSummedRows];
          for (auto& v : sum) v = _mm256_setzero_si256();
          for (int i0 = 0; i0 < kSubDwords; i0 += kActDwords) {
            const int64_t d0 = s * kSubDwords + i0;
            __m256i act[kActDwords];
            for (int i = 0; i < kActDwords; ++i) {
              act[i] = _mm256_load_si256(reinterpret_cast<const __m256i*>(xtile + (d0 + i) * kLaneTokens));
            }
            for (int i = 0; i < kActDwords; ++i) {
              for (int r = 0; r < kSummedRows; ++r) {
                const int32_t wd = wi[(d0 + i) * kSummedRows + r];
                sum[r] = _mm256_add_epi32(sum[r], _mm256_madd_epi16(act[i], _mm256_set1_epi32(wd)));
              }
            }
          }
          const __m256 dv = _mm256_load_ps(da + (tile * n_sub + s) * kLaneTokens);
          for (int r = 0; r < kSummedRows; ++r) {
            float* ar = acc[r][s % 2];
            const __m256 coef = _mm256_mul_ps(_mm256_broadcast_ss(&scratch.dw[r * n_sub + s]), dv);
            _mm256_store_ps(ar, _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum[r]), coef, _mm256_load_ps(ar)));
          }
        }
        const int64_t t0 = tile * kLaneTokens;
        const int nt = static_cast<int>(std::min<int64_t>(n_tokens - t0, kLaneTokens));
        __m256 out[kSummedRows];
        for (int r = 0; r < kSummedRows; ++r) out[r] = _mm256_add_ps(_mm256_load_ps(acc[r][0]), _mm256_load_ps(acc[r][1]));
        if constexpr (U::kHasMin) add_min_terms(scratch.mc, sxt + tile * n_sub * kLaneTokens, n_sub, out);
        store_tile_transposed(out, nr, nt, y + t0 * ldy + g0, ldy);
      }
    }
  }
}

// Contract S for 1-4 tokens (plumb serve's generated tokens when few sequences share a step):
// the rows along the 8 lanes, as summed_few_rows in matmul_avx512.cpp says why. 8 rows unpacked
// once; per sub-block each row's products summed in its 8 lanes, then a transposed reduction to
// the rows' exact sums (integers: the bits of every contract-S kernel).
constexpr int64_t kFewSummedTokens = 4;

// out lane r = the sum of v[r]'s 8 lanes.
inline __m256i row_sums8(const __m256i v[8]) {
  __m256i s[4], u[2];
  for (int i = 0; i < 4; ++i) {  // per 128-bit lane: rows 2i, 2i + 1, two dwords each
    s[i] = _mm256_add_epi32(_mm256_unpacklo_epi32(v[2 * i], v[2 * i + 1]), _mm256_unpackhi_epi32(v[2 * i], v[2 * i + 1]));
  }
  for (int j = 0; j < 2; ++j) {  // per 128-bit lane L, element k: row 4j + k's dwords 4L..4L+3
    u[j] = _mm256_add_epi32(_mm256_unpacklo_epi64(s[2 * j], s[2 * j + 1]), _mm256_unpackhi_epi64(s[2 * j], s[2 * j + 1]));
  }
  return _mm256_add_epi32(_mm256_permute2x128_si256(u[0], u[1], 0x20), _mm256_permute2x128_si256(u[0], u[1], 0x31));
}

template <class U>
void avx2_summed_few(const WeightMatrix& w, const ActivationBuffer& x, float* y, int64_t ldy, int64_t r0,
                     int64_t r1) {
  constexpr int kRows = 8;
  constexpr int kSubs = U::kBlock / U::kSub;
  constexpr size_t kBlockBytes = sizeof(typename U::Block);
  const ActLayout lay = ActLayout::for_n_in(w.n_in);
  const int64_t n_in = w.n_in;
  const int64_t n_tokens = x.n_tokens();
  const int64_t n_blocks = n_in / U::kBlock;
  const int64_t n_sub = n_in / U::kSub;
  thread_local RowScratch scratch;
  scratch.reserve(kRows, n_in, n_sub);
  thread_local Buffer dwt_buf, mct_buf;
  float* dwt = dwt_buf.get<float>(static_cast<size_t>(n_sub * kRows));  // [s][row]
  float* mct = mct_buf.get<float>(static_cast<size_t>(n_sub * kRows));
  const auto load = [](const int16_t* p) { return _mm256_load_si256(reinterpret_cast<const __m256i*>(p)); };
  for (int64_t g0 = r0; g0 < r1; g0 += kRows) {
    const int nr = static_cast<int>(std::min<int64_t>(r1 - g0, kRows));
    for (int r = 0; r < kRows; ++r) {
      int16_t* wq = scratch.w_aligned + r * n_in;
      float* dw = scratch.dw + r * n_sub;
      float* mc = scratch.mc + r * n_sub;
      if (r >= nr) {  // a missing row: zero weights (its outputs are not stored)
        std::fill(wq, wq + n_in, int16_t{0});
        std::fill(dw, dw + n_sub, 0.0f);
        std::fill(mc, mc + n_sub, 0.0f);
        continue;
      }
      const uint8_t* row = w.data + static_cast<size_t>(g0 + r) * w.row_bytes;
      prefetch_range(row, w.row_bytes, w.row_bytes);  // the next row, while this one unpacks
      for (int64_t blk = 0; blk < n_blocks; ++blk) {
        U::unpack(row + blk * kBlockBytes, wq + blk * U::kBlock, dw + blk * kSubs, mc + blk * kSubs);
      }
    }
    for (int64_t s = 0; s < n_sub; ++s) {
      for (int r = 0; r < kRows; ++r) {
        dwt[static_cast<size_t>(s * kRows + r)] = scratch.dw[static_cast<size_t>(r * n_sub + s)];
        mct[static_cast<size_t>(s * kRows + r)] = scratch.mc[static_cast<size_t>(r * n_sub + s)];
      }
    }
    for (int64_t t = 0; t < n_tokens; ++t) {
      const ActRow a = act_row(x, lay, t);
      __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};  // sets s % 2, rows along the lanes
      for (int64_t s = 0; s < n_sub; ++s) {
        const int16_t* q = a.q + s * U::kSub;
        __m256i v[kRows];
        for (int r = 0; r < kRows; ++r) {
          const int16_t* wr = scratch.w_aligned + r * n_in + s * U::kSub;
          v[r] = _mm256_madd_epi16(load(wr), load(q));
          if constexpr (U::kSub == 32) v[r] = _mm256_add_epi32(v[r], _mm256_madd_epi16(load(wr + 16), load(q + 16)));
        }
        const __m256 coef =
            _mm256_mul_ps(_mm256_loadu_ps(&dwt[static_cast<size_t>(s * kRows)]), _mm256_set1_ps(a.d[s * U::kSub / kActBlock]));
        acc[s % 2] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(row_sums8(v)), coef, acc[s % 2]);
      }
      __m256 out = _mm256_add_ps(acc[0], acc[1]);
      if constexpr (U::kHasMin) {  // hsum8 of macc[s % 8], lane by lane
        const float* sx = U::kSub == 32 ? a.sx32 : a.sx16;
        __m256 m[8];
        for (auto& v : m) v = _mm256_setzero_ps();
        for (int64_t s = 0; s < n_sub; ++s) {
          m[s % 8] = _mm256_fmadd_ps(_mm256_loadu_ps(&mct[static_cast<size_t>(s * kRows)]), _mm256_set1_ps(sx[s]), m[s % 8]);
        }
        out = _mm256_add_ps(out, _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(m[0], m[4]), _mm256_add_ps(m[2], m[6])),
                                               _mm256_add_ps(_mm256_add_ps(m[1], m[5]), _mm256_add_ps(m[3], m[7]))));
      }
      alignas(32) float o[kRows];
      _mm256_store_ps(o, out);
      for (int r = 0; r < nr; ++r) y[t * ldy + g0 + r] = o[r];
    }
  }
}

// The lane contract for a type without a single-token kernel (Q8_K): the unpacked row's sub-blocks
// into the lane contract's two sets of 8 lanes.
template <class U>
void unfused_few_tokens(const WeightMatrix& w, const ActivationBuffer& x, float* y, int64_t ldy, int64_t r0,
                        int64_t r1) {
  constexpr int kSubs = U::kBlock / U::kSub;
  constexpr size_t kBlockBytes = sizeof(typename U::Block);
  const ActLayout lay = ActLayout::for_n_in(w.n_in);
  const int64_t n_blocks = w.n_in / U::kBlock;
  const int64_t n_sub = w.n_in / U::kSub;
  thread_local RowScratch scratch;
  scratch.reserve(1, w.n_in, n_sub);
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = w.data + static_cast<size_t>(r) * w.row_bytes;
    for (int64_t blk = 0; blk < n_blocks; ++blk) {
      U::unpack(row + blk * kBlockBytes, scratch.w_aligned + blk * U::kBlock, scratch.dw + blk * kSubs,
                scratch.mc + blk * kSubs);
    }
    for (int64_t t = 0; t < x.n_tokens(); ++t) {
      const ActRow a[1] = {act_row(x, lay, t)};
      __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
      dot_span<U::kSub, 1>(scratch.w_aligned, scratch.dw, 0, n_sub, a, acc);
      float out = hsum8_ps(_mm256_add_ps(acc[0], acc[1]));
      if constexpr (U::kHasMin) {
        out += hsum8_ps(min_lanes(scratch.mc, U::kSub == 32 ? a[0].sx32 : a[0].sx16, n_sub));
      }
      y[t * ldy + r] = out;
    }
  }
}

template <class U, class F = NoFused>
void avx2_quant_rows(const WeightMatrix& w, const ActivationBuffer& x, float* y, int64_t ldy, int64_t r0,
                     int64_t r1) {
  const ActLayout lay = ActLayout::for_n_in(w.n_in);
  const int64_t n_tokens = x.n_tokens();
  const int64_t n_blocks = w.n_in / U::kBlock;
  if (x.summed_for(w.type)) {
    if (n_tokens < kSummedMinTokens && w.rows16 != nullptr && x.has_split()) {  // Q4_K, Q6_K: 16 rows along the lanes
      rows16_rows(w.type == TensorType::Q4_K ? q4k_rows16_avx2 : q6k_rows16_avx2, w, x, y, ldy, r0, r1);
      return;
    }
    if (n_tokens <= kFewSummedTokens) {
      avx2_summed_few<U>(w, x, y, ldy, r0, r1);
    } else {
      avx2_summed_prompt<U>(w, x, y, ldy, r0, r1);
    }
    return;
  }
  if constexpr (std::is_same_v<F, NoFused>) {
    unfused_few_tokens<U>(w, x, y, ldy, r0, r1);
  } else {
    // The lane contract, token by token: a row (a few KB) stays in L1 between tokens, no
    // unpacked copy needed.
    int64_t r = r0;
    if constexpr (requires { F::rows4; }) {
      for (; r + 4 <= r1 && n_blocks <= F::kRows4MaxBlocks; r += 4) {
        const uint8_t* row = w.data + static_cast<size_t>(r) * w.row_bytes;
        prefetch_range(row, 4 * w.row_bytes, 4 * w.row_bytes);  // the next four rows
        for (int64_t t = 0; t < n_tokens; ++t) {
          F::rows4(row, w.row_bytes, n_blocks, act_row(x, lay, t), y + t * ldy + r);
        }
      }
    }
    for (; r < r1; ++r) {
      const uint8_t* row = w.data + static_cast<size_t>(r) * w.row_bytes;
      prefetch_range(row, w.row_bytes, w.row_bytes);  // the next row
      for (int64_t t = 0; t < n_tokens; ++t) y[t * ldy + r] = F::row(row, n_blocks, act_row(x, lay, t));
    }
  }
}

// ---- float weights: acc lanes k % 16 in two vectors ----

struct RowF32 {
  static constexpr size_t kBytes = 4;
  static __m256 load8(const uint8_t* row, int64_t k) { return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + k); }
  static float at(const uint8_t* row, int64_t k) {
    float v;
    std::memcpy(&v, row + 4 * k, 4);
    return v;
  }
};
struct RowF16 {
  static constexpr size_t kBytes = 2;
  static __m256 load8(const uint8_t* row, int64_t k) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * k)));
  }
  static float at(const uint8_t* row, int64_t k) { return f16(row + 2 * k); }
};
struct RowBF16 {
  static constexpr size_t kBytes = 2;
  static __m256 load8(const uint8_t* row, int64_t k) {
    const __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * k)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(h, 16));
  }
  static float at(const uint8_t* row, int64_t k) { return bf16_to_fp32(load_u16(row + 2 * k)); }
};

// One load of x for all the rows that use it: the compiler would fold the load into each fma (a
// memory operand), one load per fma, and the loads become the limit (as the AVX-512 kernel's
// float_span, which measured it).
inline void keep_in_register(__m256& v) { asm("" : "+x"(v)); }

// Lanes k % 16 over [k0, k1) (multiples of 16) for kR rows and kT tokens: lanes 0-7 of row r and
// token t in acc[2 (r kT + t)], lanes 8-15 in the next. 2 rows x 3 tokens are 12 accumulators of
// the 16 registers, 10 loads for 12 fmas where a row at a time took 10 for 8.
template <class R, int kR, int kT>
inline void float_span(const uint8_t* const* rows, const float* const* xs, int64_t k0, int64_t k1, __m256* acc) {
  __m256 c[kR][kT][2];
  for (int r = 0; r < kR; ++r)
    for (int t = 0; t < kT; ++t)
      for (int h = 0; h < 2; ++h) c[r][t][h] = acc[2 * (r * kT + t) + h];
  for (int64_t k = k0; k < k1; k += 16) {
    for (int h = 0; h < 2; ++h) {
      __m256 wv[kR];
      for (int r = 0; r < kR; ++r) wv[r] = R::load8(rows[r], k + 8 * h);
      for (int t = 0; t < kT; ++t) {
        __m256 xv = _mm256_loadu_ps(xs[t] + k + 8 * h);
        keep_in_register(xv);
        for (int r = 0; r < kR; ++r) c[r][t][h] = _mm256_fmadd_ps(wv[r], xv, c[r][t][h]);
      }
    }
  }
  for (int r = 0; r < kR; ++r)
    for (int t = 0; t < kT; ++t)
      for (int h = 0; h < 2; ++h) acc[2 * (r * kT + t) + h] = c[r][t][h];
}

// The ragged tail [k, n_in) element by element into lanes (k - k_tail) % 16, then hsum8.
template <class R, int kT>
inline void float_finish(const uint8_t* row, const float* const* xs, int64_t k, int64_t n_in, const __m256* acc,
                         float* out) {
  for (int t = 0; t < kT; ++t) {
    __m256 sum;
    if (k < n_in) {
      alignas(32) float lanes[16];
      _mm256_store_ps(lanes, acc[2 * t]);
      _mm256_store_ps(lanes + 8, acc[2 * t + 1]);
      for (int64_t j = k; j < n_in; ++j) lanes[j - k] = std::fma(R::at(row, j), xs[t][j], lanes[j - k]);
      sum = _mm256_add_ps(_mm256_load_ps(lanes), _mm256_load_ps(lanes + 8));
    } else {
      sum = _mm256_add_ps(acc[2 * t], acc[2 * t + 1]);
    }
    out[t] = hsum8_ps(sum);
  }
}

constexpr int kFloatRows = 8;
constexpr int64_t kFloatKBlock = 512;

// Rows a span takes side by side for kT tokens: 12 accumulators at 3 tokens and at 2 (6 at one).
template <int kT>
constexpr int kSpanRows = kT >= 3 ? 2 : 3;

// A group of up to kFloatRows rows (n_in weights each, as R reads them) times kT tokens, blocked
// over k so the tokens' slice of x (kT x 512 floats) and the rows' slices stay in L1 (classic GEMM
// blocking; each lane still accumulates its k in order, so the result is the contract's). Output
// row g0 + r of token t0 + t. Each k block takes its step of `ahead` (the next group's rows into
// L2, as the AVX-512 kernel's float_tiles, which says why).
template <class R, int kT>
inline void float_group(const uint8_t* const* rows, int64_t n_rows, int64_t n_in, const float* const* xs, float* y,
                        int64_t ldy, int64_t t0, int64_t g0, PrefetchAhead& ahead) {
  constexpr int kR = kSpanRows<kT>;
  const int64_t n_full = n_in / 16 * 16;
  __m256 acc[kFloatRows * 2 * kT];
  for (int64_t i = 0; i < n_rows * 2 * kT; ++i) acc[i] = _mm256_setzero_ps();
  for (int64_t k0 = 0; k0 < n_full; k0 += kFloatKBlock) {
    const int64_t k1 = std::min(n_full, k0 + kFloatKBlock);
    ahead.step();
    int64_t r = 0;
    for (; r + kR <= n_rows; r += kR) float_span<R, kR, kT>(rows + r, xs, k0, k1, acc + 2 * r * kT);
    if constexpr (kR > 2) {
      if (r + 2 <= n_rows) {
        float_span<R, 2, kT>(rows + r, xs, k0, k1, acc + 2 * r * kT);
        r += 2;
      }
    }
    if (r < n_rows) float_span<R, 1, kT>(rows + r, xs, k0, k1, acc + 2 * r * kT);
  }
  for (int64_t r = 0; r < n_rows; ++r) {
    float out[kT];
    float_finish<R, kT>(rows[r], xs, n_full, n_in, acc + 2 * r * kT, out);
    for (int t = 0; t < kT; ++t) y[(t0 + t) * ldy + g0 + r] = out[t];
  }
}

// One token from the copy cut into blocks (float_blocks.h; as the AVX-512 kernel's
// float_one_token_blocks): block by block over the rows, each row's lanes carried in acc.
template <class R>
void float_one_token_blocks(const WeightMatrix& w, const float* x, float* y, int64_t r0, int64_t r1) {
  thread_local Buffer acc_buf;
  __m256* acc = acc_buf.get<__m256>(static_cast<size_t>(2 * (r1 - r0)));
  for (int64_t i = 0; i < 2 * (r1 - r0); ++i) acc[i] = _mm256_setzero_ps();
  const int64_t n_full = w.n_in / 16 * 16;
  const size_t ahead = stream_ahead();
  for (int64_t b = 0; b * kFloatBlock < n_full; ++b) {
    const int64_t k0 = b * kFloatBlock, n = std::min(n_full - k0, kFloatBlock);
    const float* xb = x + k0;
    for (int64_t r = r0; r < r1; ++r) {
      const uint8_t* piece = w.blocks + static_cast<size_t>(float_block_start(w.n_out, w.n_in, b, r)) * R::kBytes;
      prefetch_stream(piece, ahead, static_cast<size_t>(n) * R::kBytes);
      __m256 a0 = acc[2 * (r - r0)], a1 = acc[2 * (r - r0) + 1];
      for (int64_t k = 0; k < n; k += 16) {
        a0 = _mm256_fmadd_ps(R::load8(piece, k), _mm256_loadu_ps(xb + k), a0);
        a1 = _mm256_fmadd_ps(R::load8(piece, k + 8), _mm256_loadu_ps(xb + k + 8), a1);
      }
      acc[2 * (r - r0)] = a0, acc[2 * (r - r0) + 1] = a1;
    }
  }
  const float* xs[1] = {x};
  for (int64_t r = r0; r < r1; ++r) {
    float_finish<R, 1>(w.data + static_cast<size_t>(r) * w.row_bytes, xs, n_full, w.n_in, acc + 2 * (r - r0), y + r);
  }
}

template <class R>
void avx2_float_rows(const WeightMatrix& w, const ActivationBuffer& x, float* y, int64_t ldy, int64_t r0,
                     int64_t r1) {
  const int64_t n_in = w.n_in;
  const int64_t n_tokens = x.n_tokens();
  if (n_tokens == 1 && w.blocks != nullptr) {
    float_one_token_blocks<R>(w, x.f32(), y, r0, r1);
    return;
  }
  if (n_tokens == 1 && detail::one_token_rows_one_at_a_time()) {
    // One token on AMD: a row at a time, its k blocks in order, so that the weights are read as
    // one sequential stream (as the AVX-512 kernel's float_one_token, which says why).
    const float* xs[1] = {x.f32()};
    PrefetchAhead none(nullptr, 0, 1);
    const size_t ahead = stream_ahead();
    for (int64_t r = r0; r < r1; ++r) {
      const uint8_t* row = w.data + static_cast<size_t>(r) * w.row_bytes;
      prefetch_stream(row, ahead, w.row_bytes);
      float_group<R, 1>(&row, 1, n_in, xs, y, ldy, 0, r, none);
    }
    return;
  }
  // Block by block of tokens (float_token_block: the block's x from L2, not the prompt's from L3;
  // 512 KiB, Zen 3's L2), in tiles of 3 tokens (spans of 2 rows), the last of 2 or 1.
  const int64_t block = float_token_block(n_in, n_tokens, 3, int64_t{512} << 10);
  const int64_t n_kblocks = (n_in / 16 * 16 + kFloatKBlock - 1) / kFloatKBlock;
  for (int64_t b0 = 0; b0 < n_tokens; b0 += block) {
    const int64_t b1 = std::min(n_tokens, b0 + block);
    for (int64_t g0 = r0; g0 < r1; g0 += kFloatRows) {
      const int64_t n_rows = std::min(r1, g0 + kFloatRows) - g0;
      const uint8_t* rows[kFloatRows];
      for (int64_t r = 0; r < n_rows; ++r) rows[r] = w.data + static_cast<size_t>(g0 + r) * w.row_bytes;
      // The next group: the following rows, or the first of the next block's pass.
      const int64_t n0 = g0 + n_rows < r1 ? g0 + n_rows : b1 < n_tokens ? r0 : r1;
      const int64_t n_next = std::min(r1, n0 + kFloatRows) - n0;
      PrefetchAhead ahead(w.data + static_cast<size_t>(n0) * w.row_bytes, static_cast<size_t>(n_next) * w.row_bytes,
                          ((b1 - b0) / 3 + ((b1 - b0) % 3 != 0)) * n_kblocks);
      int64_t t = b0;
      for (; t + 3 <= b1; t += 3) {
        const float* xs[3] = {x.f32() + t * n_in, x.f32() + (t + 1) * n_in, x.f32() + (t + 2) * n_in};
        float_group<R, 3>(rows, n_rows, n_in, xs, y, ldy, t, g0, ahead);
      }
      if (t + 2 == b1) {
        const float* xs[2] = {x.f32() + t * n_in, x.f32() + (t + 1) * n_in};
        float_group<R, 2>(rows, n_rows, n_in, xs, y, ldy, t, g0, ahead);
      } else if (t < b1) {
        const float* xs[1] = {x.f32() + t * n_in};
        float_group<R, 1>(rows, n_rows, n_in, xs, y, ldy, t, g0, ahead);
      }
    }
  }
}

// Double sum of 16 floats in the contract's tree order.
inline double half_sum(const float* x) {
  const __m256d a = _mm256_add_pd(_mm256_cvtps_pd(_mm_loadu_ps(x)), _mm256_cvtps_pd(_mm_loadu_ps(x + 4)));
  const __m256d b = _mm256_add_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + 8)), _mm256_cvtps_pd(_mm_loadu_ps(x + 12)));
  const __m256d v = _mm256_add_pd(a, b);                                                  // v0..v3
  const __m128d p = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));  // v0+v2, v1+v3
  return _mm_cvtsd_f64(_mm_add_sd(p, _mm_unpackhi_pd(p, p)));
}

}  // namespace

void quantize_token_avx2(const float* x, const ActLayout& lay, uint8_t* out) {
  auto* q = reinterpret_cast<int16_t*>(out + lay.q_off);
  auto* d = reinterpret_cast<float*>(out + lay.d_off);
  auto* sx32 = reinterpret_cast<float*>(out + lay.sx32_off);
  auto* sx16 = reinterpret_cast<float*>(out + lay.sx16_off);
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  for (int64_t b = 0; b < lay.n_blocks; ++b) {
    const float* xb = x + b * kActBlock;
    __m256 v[4];
    for (int j = 0; j < 4; ++j) v[j] = _mm256_loadu_ps(xb + 8 * j);
    // max is exact and order-free; NaN is caught by the finiteness test below.
    __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_and_ps(v[0], abs_mask), _mm256_and_ps(v[1], abs_mask)),
                             _mm256_max_ps(_mm256_and_ps(v[2], abs_mask), _mm256_and_ps(v[3], abs_mask)));
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    const float amax = _mm_cvtss_f32(_mm_max_ss(m4, _mm_movehdup_ps(m4)));
    bool finite = amax <= std::numeric_limits<float>::max();
    for (int j = 0; j < 4 && finite; ++j) {
      finite = _mm256_movemask_ps(_mm256_cmp_ps(v[j], v[j], _CMP_UNORD_Q)) == 0;
    }
    int16_t* qb = q + b * kActBlock;
    if (!finite) {
      d[b] = std::numeric_limits<float>::quiet_NaN();
      _mm256_store_si256(reinterpret_cast<__m256i*>(qb), _mm256_setzero_si256());
      _mm256_store_si256(reinterpret_cast<__m256i*>(qb + 16), _mm256_setzero_si256());
    } else {
      float db = amax / kActQMax;
      float id = db != 0.0f ? 1.0f / db : 0.0f;
      if (!(id <= std::numeric_limits<float>::max())) db = id = 0.0f;  // amax below ~1e-34: zero block
      d[b] = db;
      const __m256 idv = _mm256_set1_ps(id);
      __m256i i32[4];
      for (int j = 0; j < 4; ++j) i32[j] = _mm256_cvtps_epi32(_mm256_mul_ps(v[j], idv));
      // packs interleaves 128-bit lanes: restore element order.
      const __m256i p01 = _mm256_permute4x64_epi64(_mm256_packs_epi32(i32[0], i32[1]), 0xD8);
      const __m256i p23 = _mm256_permute4x64_epi64(_mm256_packs_epi32(i32[2], i32[3]), 0xD8);
      _mm256_store_si256(reinterpret_cast<__m256i*>(qb), p01);
      _mm256_store_si256(reinterpret_cast<__m256i*>(qb + 16), p23);
    }
    const double h0 = half_sum(xb), h1 = half_sum(xb + 16);
    sx16[2 * b] = static_cast<float>(h0);
    sx16[2 * b + 1] = static_cast<float>(h1);
    sx32[b] = static_cast<float>(h0 + h1);
  }
}

RowDot avx2_fused_row(TensorType type) {
  switch (type) {
    case TensorType::Q4_0: return FusedQ4_0::row;
    case TensorType::Q4_1: return FusedQ4_1::row;
    case TensorType::Q5_0: return FusedQ5_0::row;
    case TensorType::Q5_1: return FusedQ5_1::row;
    case TensorType::Q8_0: return FusedQ8_0::row;
    case TensorType::Q2_K: return FusedQ2_K::row;
    case TensorType::Q3_K: return FusedQ3_K::row;
    case TensorType::Q5_K: return FusedQ5_K::row;
    case TensorType::IQ4_NL: return FusedIQ4_NL::row;
    case TensorType::IQ4_XS: return FusedIQ4_XS::row;
    default: return nullptr;
  }
}

RowsKernel avx2_kernel(TensorType type) {
  switch (type) {
    case TensorType::F32: return avx2_float_rows<RowF32>;
    case TensorType::F16: return avx2_float_rows<RowF16>;
    case TensorType::BF16: return avx2_float_rows<RowBF16>;
    case TensorType::Q4_0: return avx2_quant_rows<SimdQ4_0, FusedQ4_0>;
    case TensorType::Q4_1: return avx2_quant_rows<SimdQ4_1, FusedQ4_1>;
    case TensorType::Q5_0: return avx2_quant_rows<UnpackQ5_0, FusedQ5_0>;
    case TensorType::Q5_1: return avx2_quant_rows<UnpackQ5_1, FusedQ5_1>;
    case TensorType::Q8_0: return avx2_quant_rows<SimdQ8_0, FusedQ8_0>;
    case TensorType::Q2_K: return avx2_quant_rows<UnpackQ2_K, FusedQ2_K>;
    case TensorType::Q3_K: return avx2_quant_rows<UnpackQ3_K, FusedQ3_K>;
    case TensorType::Q4_K: return avx2_quant_rows<SimdQ4_K>;
    case TensorType::Q5_K: return avx2_quant_rows<UnpackQ5_K, FusedQ5_K>;
    case TensorType::Q6_K: return avx2_quant_rows<SimdQ6_K>;
    case TensorType::Q8_K: return avx2_quant_rows<UnpackQ8_K>;
    case TensorType::IQ4_NL: return avx2_quant_rows<SimdIQ4_NL, FusedIQ4_NL>;
    case TensorType::IQ4_XS: return avx2_quant_rows<UnpackIQ4_XS, FusedIQ4_XS>;
    default: return nullptr;
  }
}

}  // namespace plumb::cpu::detail
