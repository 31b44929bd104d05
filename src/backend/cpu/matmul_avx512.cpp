// AVX-512 kernels (F/BW/VL/DQ/VNNI; this file is compiled with those flags and matmul.cpp picks
// it at run time). They follow the contracts of matmul_internal.h to the bit: the lane contract
// for 1 to 3 tokens, contract S for prompt batches. At the end, the AMX prompt kernels (contract
// S), which reuse this file's weight unpacking and activation tiles; compiled also with
// AMX-TILE/INT8 and run only where cpu_has_amx_int8().
//
// Quantized weights, 1 to 3 tokens: the lane contract keeps two sets of 8 float lanes, for even
// and odd sub-blocks.
// One zmm holds both: sub-block s (even) in the low 256 bits, s + 1 in the high 256 bits. The
// weights of the pair are laid out so that one vpmaddwd (+ one vpdpwssd for 32-element
// sub-blocks) gives exactly the contract's integer lane partials of both sub-blocks (integer sums
// are exact, so vpdpwssd's accumulate equals madd + add), then one conversion and one fma per
// lane with the same f32 coefficient dw[s] * d_a[b(s)] as the scalar kernel. The final
// reduction adds the two halves (acc[0] + acc[1]) and runs the same hsum8 tree.
//   16-element sub-blocks: a pair is 32 consecutive elements, i.e. the activations' natural order.
//   32-element sub-blocks: a pair needs elements 0..15 of both sub-blocks in one register and
//   16..31 in another, so the activations are first copied into "pair order" (pair_order),
//   once per call; the weights are built in the same order.
// Weights stored with a fixed offset (q - 8 for Q4_0, Q4_1; q - 2, q - 4 for Q2_K, Q3_K) are used
// raw by the single-token kernels (Q4_K and Q6_K have none: their products follow contract S,
// rows16.h for 1 to 3 tokens): sum (q - o) x = sum q x - o sum x, and
// the per-lane -o sum x of each token is computed once per call, so vpdpwssd adds it for free
// (integer arithmetic, exact: the lane partials are the contract's).
// Quantized weights, prompt batches: contract S with the tokens along the lanes (below, "prompt
// batches"), from the same unpacked weights in pair order.
// F32/F16/BF16 weights: the contract's 16 float lanes (k % 16) are one zmm per (row, token).
//
// Nothing here has external linkage but avx512_kernel and amx_kernel: an inline function or template
// instantiated in this file (std::vector's members, say) could be chosen by the linker for other
// files too and run AVX-512 instructions on a CPU without them.
#include <immintrin.h>

#include "backend/cpu/gcc_avx512_diagnostics.h"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "backend/cpu/float_blocks.h"
#include "backend/cpu/matmul_internal.h"
#include "backend/cpu/rows16.h"
#include "backend/cpu/simd_x86.h"
#include "quant/blocks.h"

// tests/matmul_avx512_emulated.cpp compiles this file a second time into another namespace,
// over plain-C++ stand-ins of the intrinsics, to check it on CPUs without AVX-512.
#ifndef PLUMB_AVX512_NAMESPACE
#define PLUMB_AVX512_NAMESPACE detail
#endif

namespace plumb::cpu::PLUMB_AVX512_NAMESPACE {
namespace {

// ---- small helpers ----

inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }


// hsum8(acc[0] + acc[1]) of a [even | odd] accumulator.
inline float hsum_pair(__m512 acc) {
  return hsum8_ps(_mm256_add_ps(_mm512_castps512_ps256(acc), _mm512_extractf32x8_ps(acc, 1)));
}

inline uint16_t u16(const void* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
inline uint32_t u32(const void* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline __m512i load512(const void* p) { return _mm512_loadu_si512(p); }
inline __m128i load128(const void* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }
inline __m256i load256(const void* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

// 16 bytes at p in both 128-bit halves.
inline __m256i bcast128(const void* p) { return _mm256_broadcastsi128_si256(load128(p)); }

// [16 bytes at a | 16 bytes at b].
inline __m256i join128(const void* a, const void* b) {
  return _mm256_inserti128_si256(_mm256_castsi128_si256(load128(a)), load128(b), 1);
}

// zmm with lanes 0..7 = v[lo], lanes 8..15 = v[lo + 1] (v: 2..16 floats in the low lanes).
inline __m512 spread_pair(__m512 v, int lo) {
  return _mm512_permutexvar_ps(_mm512_set_epi32(lo + 1, lo + 1, lo + 1, lo + 1, lo + 1, lo + 1, lo + 1, lo + 1, lo,
                                                lo, lo, lo, lo, lo, lo, lo),
                               v);
}

// Lane partials of a pair of 32-element sub-blocks, [s | s + 1], from weights in pair order;
// with raw weights, corr = the pair's -offset * (lane sums of the activations).
template <int kRawOffset>
inline __m512i dot_pair32(__m512i w0, __m512i w1, const int16_t* qz, const int32_t* corr) {
  __m512i first;
  if constexpr (kRawOffset != 0) {
    first = _mm512_dpwssd_epi32(load512(corr), w0, load512(qz));
  } else {
    first = _mm512_madd_epi16(w0, load512(qz));
  }
  return _mm512_dpwssd_epi32(first, w1, load512(qz + 32));
}
// The same for a pair of 16-element sub-blocks (32 elements in order).
template <int kRawOffset>
inline __m512i dot_pair16(__m512i w, const int16_t* q, const int32_t* corr) {
  if constexpr (kRawOffset != 0) return _mm512_dpwssd_epi32(load512(corr), w, load512(q));
  return _mm512_madd_epi16(w, load512(q));
}

// ---- activations in pair order ----

void pair_order(const int16_t* q, int64_t n_blocks, int16_t* qz) {
  const int64_t full = n_blocks / 2;
  for (int64_t p = 0; p < full; ++p) {
    const __m512i a = load512(q + 64 * p);       // block 2p: elements 0..15 | 16..31
    const __m512i b = load512(q + 64 * p + 32);  // block 2p + 1
    _mm512_store_si512(qz + 64 * p, _mm512_shuffle_i64x2(a, b, 0x44));
    _mm512_store_si512(qz + 64 * p + 32, _mm512_shuffle_i64x2(a, b, 0xEE));
  }
  if (n_blocks & 1) {
    const __m512i a = load512(q + 64 * full);
    const __m512i z = _mm512_setzero_si512();
    _mm512_store_si512(qz + 64 * full, _mm512_shuffle_i64x2(a, z, 0x44));
    _mm512_store_si512(qz + 64 * full + 32, _mm512_shuffle_i64x2(a, z, 0xEE));
  }
}

// corr[16p ..] = -offset * the contract's lane sums of pair p: from activations in pair order
// (32-element sub-blocks) or in element order (16-element sub-blocks, 32 elements a pair).
void offset_sums32(const int16_t* qz, int64_t n_pairs, int offset, int32_t* corr) {
  const __m512i neg = _mm512_set1_epi16(static_cast<int16_t>(-offset));
  for (int64_t p = 0; p < n_pairs; ++p) {
    const __m512i s = _mm512_dpwssd_epi32(_mm512_madd_epi16(load512(qz + 64 * p), neg), load512(qz + 64 * p + 32), neg);
    _mm512_store_si512(corr + 16 * p, s);
  }
}
void offset_sums16(const int16_t* q, int64_t n_pairs, int offset, int32_t* corr) {
  const __m512i neg = _mm512_set1_epi16(static_cast<int16_t>(-offset));
  for (int64_t p = 0; p < n_pairs; ++p) _mm512_store_si512(corr + 16 * p, _mm512_madd_epi16(load512(q + 32 * p), neg));
}

// ---- weights: 32-element blocks (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL) ----
// A pair is two consecutive blocks b0, b1; pair() gives w0 = [b0 elements 0..15 | b1 0..15] and
// w1 = [b0 16..31 | b1 16..31] as int16: weight_unpack.h's weights plus kRawOffset.

// 16 bytes of nibbles of two blocks, [b0 | b1] (byte j: element j low, j + 16 high).
inline void nibble_pair(__m256i v, __m512i* w0, __m512i* w1) {
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  *w0 = _mm512_cvtepu8_epi16(_mm256_and_si256(v, m4));
  *w1 = _mm512_cvtepu8_epi16(_mm256_and_si256(_mm256_srli_epi16(v, 4), m4));
}

// Q5: nibbles plus fifth bits (qh: bit j = element j), minus 16: a byte whose fifth bit is clear
// is nibble - 16, one whose bit is set is nibble + 16 - 16.
inline void q5_pair(const uint8_t* qh0, const uint8_t* qs0, const uint8_t* qh1, const uint8_t* qs1, __m512i* w0,
                    __m512i* w1) {
  const uint32_t h0 = u32(qh0), h1 = u32(qh1);
  const __mmask32 clear0 = ~((h0 & 0xFFFFu) | (h1 << 16));          // elements 0..15 of both
  const __mmask32 clear1 = ~((h0 >> 16) | (h1 & 0xFFFF0000u));      // elements 16..31 of both
  const __m256i v = join128(qs0, qs1);
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  const __m256i sixteen = _mm256_set1_epi8(16);
  const __m256i lo = _mm256_and_si256(v, m4);
  const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
  *w0 = _mm512_cvtepi8_epi16(_mm256_mask_sub_epi8(lo, clear0, lo, sixteen));
  *w1 = _mm512_cvtepi8_epi16(_mm256_mask_sub_epi8(hi, clear1, hi, sixteen));
}

struct BlkQ4_0 {
  using Block = block_q4_0;
  static constexpr bool kHasMin = false;
  static constexpr int kRawOffset = 8;
  static void pair(const uint8_t* b0, const uint8_t* b1, __m512i* w0, __m512i* w1) {
    nibble_pair(join128(b0 + 2, b1 + 2), w0, w1);
  }
};
struct BlkQ4_1 {
  using Block = block_q4_1;
  static constexpr bool kHasMin = true;
  static constexpr int kRawOffset = 8;
  static constexpr float kMinOffset = 8.0f;  // mc = m + 8 d
  static void pair(const uint8_t* b0, const uint8_t* b1, __m512i* w0, __m512i* w1) {
    nibble_pair(join128(b0 + 4, b1 + 4), w0, w1);
  }
};
struct BlkQ5_0 {
  using Block = block_q5_0;
  static constexpr bool kHasMin = false;
  static constexpr int kRawOffset = 0;
  static void pair(const uint8_t* b0, const uint8_t* b1, __m512i* w0, __m512i* w1) {
    q5_pair(b0 + 2, b0 + 6, b1 + 2, b1 + 6, w0, w1);
  }
};
struct BlkQ5_1 {
  using Block = block_q5_1;
  static constexpr bool kHasMin = true;
  static constexpr int kRawOffset = 0;
  static constexpr float kMinOffset = 16.0f;  // mc = m + 16 d
  static void pair(const uint8_t* b0, const uint8_t* b1, __m512i* w0, __m512i* w1) {
    q5_pair(b0 + 4, b0 + 8, b1 + 4, b1 + 8, w0, w1);
  }
};
struct BlkQ8_0 {
  using Block = block_q8_0;
  static constexpr bool kHasMin = false;
  static constexpr int kRawOffset = 0;
  static void pair(const uint8_t* b0, const uint8_t* b1, __m512i* w0, __m512i* w1) {
    *w0 = _mm512_cvtepi8_epi16(join128(b0 + 2, b1 + 2));
    *w1 = _mm512_cvtepi8_epi16(join128(b0 + 18, b1 + 18));
  }
};
struct BlkIQ4_NL {
  using Block = block_iq4_nl;
  static constexpr bool kHasMin = false;
  static constexpr int kRawOffset = 0;
  static void pair(const uint8_t* b0, const uint8_t* b1, __m512i* w0, __m512i* w1) {
    const __m256i table = bcast128(kIQ4NLValues);
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i v = join128(b0 + 2, b1 + 2);
    *w0 = _mm512_cvtepi8_epi16(_mm256_shuffle_epi8(table, _mm256_and_si256(v, m4)));
    *w1 = _mm512_cvtepi8_epi16(_mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srli_epi16(v, 4), m4)));
  }
};

// Per-block multipliers of the 32-element types: dw = d, and mc = m + offset * d for min types.
template <class B>
inline void legacy_scales(const uint8_t* b, float* dw, float* mc) {
  const __m128 dm = f16x2(b);
  dw[0] = _mm_cvtss_f32(dm);
  if constexpr (B::kHasMin) mc[0] = _mm_cvtss_f32(_mm_movehdup_ps(dm)) + B::kMinOffset * dw[0];
}

// One row's single-token state: the [even | odd] accumulator and the min term's lanes (and,
// for the 32-element min types, the mc of the current 8 blocks, lane = block % 8).
struct RowAcc {
  __m512 acc = _mm512_setzero_ps();
  __m256 macc = _mm256_setzero_ps();
  __m256 group = _mm256_setzero_ps();
};

#define PLUMB_INLINE inline __attribute__((always_inline))

// Single-token units of the 32-element types: unit u = blocks 2u, 2u + 1 (the last one alone
// when the count is odd: its pair's high halves are masked off).
template <class B>
struct LegacyUnits {
  static int64_t count(int64_t nb) { return (nb + 1) / 2; }
  static PLUMB_INLINE void unit(const uint8_t* row, int64_t u, int64_t nb, const ActRow& a, const int16_t* qz,
                                const int32_t* corr, RowAcc& st) {
    constexpr size_t kBytes = sizeof(typename B::Block);
    const int64_t i = 2 * u;
    const bool tail = i + 1 == nb;
    const uint8_t* b0 = row + i * kBytes;
    const uint8_t* b1 = tail ? b0 : b0 + kBytes;
    __m512i w0, w1;
    B::pair(b0, b1, &w0, &w1);
    const __m512 p = _mm512_cvtepi32_ps(dot_pair32<B::kRawOffset>(w0, w1, qz + 32 * i, corr + 8 * i));
    const __m128 dd = _mm_unpacklo_ps(f16x2(b0), f16x2(b1));  // d0, d1, m0, m1
    const __m128 da = tail ? _mm_load_ss(a.d + i) : _mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(a.d + i)));
    const __m512 coef = spread_pair(_mm512_castps128_ps512(_mm_mul_ps(dd, da)), 0);
    st.acc = _mm512_mask3_fmadd_ps(p, coef, st.acc, tail ? 0x00FF : 0xFFFF);
    if constexpr (B::kHasMin) {
      const __m128 mc = _mm_add_ps(_mm_movehl_ps(dd, dd), _mm_mul_ps(_mm_set1_ps(B::kMinOffset), dd));
      st.group = _mm256_mask_permutexvar_ps(st.group, static_cast<__mmask8>(3u << (i & 7)),
                                            _mm256_setr_epi32(0, 1, 0, 1, 0, 1, 0, 1), _mm256_castps128_ps256(mc));
      if ((i & 7) == 6 && !tail) st.macc = _mm256_fmadd_ps(st.group, _mm256_loadu_ps(a.sx32 + i - 6), st.macc);
    }
  }
  // The min term of a last, partial group of 8 blocks.
  static PLUMB_INLINE void finish(int64_t nb, const ActRow& a, RowAcc& st) {
    if constexpr (B::kHasMin) {
      if (nb & 7) {
        const __mmask8 k = static_cast<__mmask8>((1u << (nb & 7)) - 1);
        st.macc = _mm256_mask3_fmadd_ps(st.group, _mm256_maskz_loadu_ps(k, a.sx32 + (nb & ~int64_t{7})), st.macc, k);
      }
    }
  }
};

// ---- weights: 256-element super-blocks with 32-element sub-blocks (Q4_K, Q5_K, IQ4_XS) ----
// scales() gives dw (and mc) of the 8 sub-blocks, pair(j) the weights of sub-blocks 2j, 2j + 1.

// [low nibbles of 16 bytes | high nibbles of the same 16 bytes].
inline __m256i nibbles_lo_hi(const uint8_t* p) {
  const __m256i shift = _mm256_setr_epi16(0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4);
  return _mm256_and_si256(_mm256_srlv_epi16(bcast128(p), shift), _mm256_set1_epi8(0x0F));
}


// dw = d * scale, mc = -(dmin * min) + offset * dw (weight_unpack.h's order of operations; the
// offset is 8 or 16, so offset * dw is exact and one fused multiply-subtract rounds the same).
// Scales and mins are converted together, [scales | mins] x [d | dmin] in one zmm.
inline void k4_scales(const uint8_t* d_dmin, const uint8_t* scales, float offset, __m256* dw, __m256* mc) {
  const __m512 sm = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(k4_scales_mins(scales)));
  const __m512 d = _mm512_permutexvar_ps(_mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0),
                                         _mm512_castps128_ps512(f16x2(d_dmin)));
  const __m512 prod = _mm512_mul_ps(sm, d);  // [dw | dmin * min]
  *dw = _mm512_castps512_ps256(prod);
  *mc = _mm256_fmsub_ps(_mm256_set1_ps(offset), *dw, _mm512_extractf32x8_ps(prod, 1));
}

struct SupQ4_K {
  using Block = block_q4_K;
  static constexpr bool kHasMin = true;
  static constexpr int kRawOffset = 8;
  static void scales(const Block& b, __m256* dw, __m256* mc) {
    k4_scales(reinterpret_cast<const uint8_t*>(&b.d), b.scales, 8.0f, dw, mc);
  }
  static void pair(const Block& b, int j, __m512i* w0, __m512i* w1) {
    *w0 = _mm512_cvtepu8_epi16(nibbles_lo_hi(b.qs + 32 * j));
    *w1 = _mm512_cvtepu8_epi16(nibbles_lo_hi(b.qs + 32 * j + 16));
  }
};

struct SupQ5_K {
  using Block = block_q5_K;
  static constexpr bool kHasMin = true;
  static constexpr int kRawOffset = 0;
  static void scales(const Block& b, __m256* dw, __m256* mc) {
    k4_scales(reinterpret_cast<const uint8_t*>(&b.d), b.scales, 16.0f, dw, mc);
  }
  // Fifth bits: qh[k] bit 2j (sub-block 2j element k) and bit 2j + 1 (sub-block 2j + 1).
  static void pair(const Block& b, int j, __m512i* w0, __m512i* w1) {
    const __m256i bit = _mm256_slli_epi16(
        _mm256_setr_epi8(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2),
        2 * j);
    const __m256i sixteen = _mm256_set1_epi8(16);
    for (int h = 0; h < 2; ++h) {
      const __m256i nib = nibbles_lo_hi(b.qs + 32 * j + 16 * h);
      const __mmask32 clear = _mm256_testn_epi8_mask(bcast128(b.qh + 16 * h), bit);
      const __m512i w = _mm512_cvtepi8_epi16(_mm256_mask_sub_epi8(nib, clear, nib, sixteen));
      *(h ? w1 : w0) = w;
    }
  }
};

struct SupIQ4_XS {
  using Block = block_iq4_xs;
  static constexpr bool kHasMin = false;
  static constexpr int kRawOffset = 0;
  static void scales(const Block& b, __m256* dw, __m256*) {
    const uint16_t scales_h = u16(&b.scales_h);
    alignas(32) int32_t ls[8];
    for (int ib = 0; ib < 8; ++ib) {
      ls[ib] = (((b.scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF) | (((scales_h >> (2 * ib)) & 3) << 4)) - 32;
    }
    *dw = _mm256_mul_ps(_mm256_set1_ps(f16(&b.d)),
                        _mm256_cvtepi32_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(ls))));
  }
  // Sub-blocks 2j, 2j + 1 are 32 consecutive bytes, [2j | 2j + 1], nibbles as in IQ4_NL.
  static void pair(const Block& b, int j, __m512i* w0, __m512i* w1) {
    const __m256i table = bcast128(kIQ4NLValues);
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i v = load256(b.qs + 32 * j);
    *w0 = _mm512_cvtepi8_epi16(_mm256_shuffle_epi8(table, _mm256_and_si256(v, m4)));
    *w1 = _mm512_cvtepi8_epi16(_mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srli_epi16(v, 4), m4)));
  }
};

// Single-token units of the 32-element-sub-block super-block types: unit = one super-block.
template <class S>
struct Sup32Units {
  static int64_t count(int64_t nb) { return nb; }
  static PLUMB_INLINE void unit(const uint8_t* row, int64_t i, int64_t, const ActRow& a, const int16_t* qz,
                                const int32_t* corr, RowAcc& st) {
    const auto& b = reinterpret_cast<const typename S::Block*>(row)[i];
    __m256 dw, mc = _mm256_setzero_ps();
    S::scales(b, &dw, &mc);
    if constexpr (S::kHasMin) st.macc = _mm256_fmadd_ps(mc, _mm256_loadu_ps(a.sx32 + 8 * i), st.macc);
    const __m512 coef = _mm512_castps256_ps512(_mm256_mul_ps(dw, _mm256_loadu_ps(a.d + 8 * i)));
    for (int j = 0; j < 4; ++j) {
      __m512i w0, w1;
      S::pair(b, j, &w0, &w1);
      const __m512i p = dot_pair32<S::kRawOffset>(w0, w1, qz + 256 * i + 64 * j, corr + 64 * i + 16 * j);
      st.acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), spread_pair(coef, 2 * j), st.acc);
    }
  }
  static PLUMB_INLINE void finish(int64_t, const ActRow&, RowAcc&) {}
};

// ---- weights: 256-element super-blocks with 16-element sub-blocks (Q2_K, Q3_K, Q6_K) ----
// half(n) gives dw (and mc) of sub-blocks 8n..8n+7 and, in bytes[k], the raw (unsigned) weights
// of sub-blocks 8n + 2k (bytes 0..15) and 8n + 2k + 1 (bytes 16..31): 32 consecutive elements.

struct SupQ6_K {
  using Block = block_q6_K;
  static constexpr bool kHasMin = false;
  static constexpr int kRawOffset = 32;
  static void half(const Block& b, int n, __m256* dw, __m256*, __m256i bytes[4]) {
    const __m128i sc = load128(b.scales);
    *dw = _mm256_mul_ps(_mm256_set1_ps(f16(&b.d)),
                        _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(n ? _mm_srli_si128(sc, 8) : sc)));
    half_bytes(b, n, bytes);
  }
  static void half_bytes(const Block& b, int n, __m256i bytes[4]) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i m30 = _mm256_set1_epi8(0x30);
    const __m256i ql0 = load256(b.ql + 64 * n);
    const __m256i ql1 = load256(b.ql + 64 * n + 32);
    const __m256i qh = load256(b.qh + 32 * n);
    // Bits 4-5 from qh: shift the pair into place, then mask (16-bit shifts only move bits
    // across bytes outside the mask).
    bytes[0] = _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30));
    bytes[1] = _mm256_or_si256(_mm256_and_si256(ql1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30));
    bytes[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4), _mm256_and_si256(qh, m30));
    bytes[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                               _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30));
  }
};

struct SupQ2_K {
  using Block = block_q2_K;
  static constexpr bool kHasMin = true;
  static constexpr int kRawOffset = 2;
  static void half(const Block& b, int n, __m256* dw, __m256* mc, __m256i bytes[4]) {
    const __m128i sc = load128(b.scales);
    const __m128i sc_lo = _mm_and_si128(sc, _mm_set1_epi8(0x0F));
    const __m128i sc_hi = _mm_and_si128(_mm_srli_epi16(sc, 4), _mm_set1_epi8(0x0F));
    *dw = _mm256_mul_ps(_mm256_set1_ps(f16(&b.d)),
                        _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(n ? _mm_srli_si128(sc_lo, 8) : sc_lo)));
    const __m256 mf = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(n ? _mm_srli_si128(sc_hi, 8) : sc_hi));
    *mc = _mm256_sub_ps(_mm256_mul_ps(_mm256_set1_ps(2.0f), *dw), _mm256_mul_ps(_mm256_set1_ps(f16(&b.dmin)), mf));
    const __m256i v = load256(b.qs + 32 * n);
    const __m256i m2 = _mm256_set1_epi8(3);
    for (int j = 0; j < 4; ++j) bytes[j] = _mm256_and_si256(_mm256_srli_epi16(v, 2 * j), m2);
  }
};

struct SupQ3_K {
  using Block = block_q3_K;
  static constexpr bool kHasMin = false;
  static constexpr int kRawOffset = 4;
  // The 16 six-bit scales, still offset by 32 (ggml's unpacking of the 12 bytes).
  static __m128i scales16(const uint8_t* packed) {
    constexpr uint32_t kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f;
    uint32_t aux[4];
    std::memcpy(aux, packed, 12);
    const uint32_t tmp = aux[2];
    aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4);
    aux[3] = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4);
    aux[0] = (aux[0] & kmask2) | (((tmp >> 0) & kmask1) << 4);
    aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4);
    return _mm_set_epi32(static_cast<int>(aux[3]), static_cast<int>(aux[2]), static_cast<int>(aux[1]),
                         static_cast<int>(aux[0]));
  }
  static void half(const Block& b, int n, __m256* dw, __m256*, __m256i bytes[4]) {
    const __m128i scv = _mm_sub_epi8(scales16(b.scales), _mm_set1_epi8(32));
    *dw = _mm256_mul_ps(_mm256_set1_ps(f16(&b.d)),
                        _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(n ? _mm_srli_si128(scv, 8) : scv)));
    const __m256i v = load256(b.qs + 32 * n);
    const __m256i hm = load256(b.hmask);
    const __m256i m2 = _mm256_set1_epi8(3);
    const __m256i one = _mm256_set1_epi8(1);
    for (int j = 0; j < 4; ++j) {
      const __m256i low = _mm256_and_si256(_mm256_srli_epi16(v, 2 * j), m2);
      const __m256i hbit = _mm256_and_si256(_mm256_srli_epi16(hm, 4 * n + j), one);
      bytes[j] = _mm256_or_si256(low, _mm256_slli_epi16(hbit, 2));
    }
  }
};

// coef[m] = dw[m] * d_a[m / 2] for the 8 sub-blocks of a half (two per activation block).
inline __m256 k16_coef(__m256 dw, const float* d_a) {
  const __m256i pairs = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
  return _mm256_mul_ps(dw, _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(d_a)), pairs));
}

// Single-token units of the 16-element-sub-block types: unit = one super-block.
template <class S>
struct Sup16Units {
  static int64_t count(int64_t nb) { return nb; }
  static PLUMB_INLINE void unit(const uint8_t* row, int64_t i, int64_t, const ActRow& a, const int16_t*,
                                const int32_t* corr, RowAcc& st) {
    const auto& b = reinterpret_cast<const typename S::Block*>(row)[i];
    for (int n = 0; n < 2; ++n) {
      __m256i bytes[4];
      __m256 dw, mc = _mm256_setzero_ps();
      S::half(b, n, &dw, &mc, bytes);
      if constexpr (S::kHasMin) st.macc = _mm256_fmadd_ps(mc, _mm256_loadu_ps(a.sx16 + 16 * i + 8 * n), st.macc);
      // The multipliers of sub-blocks 8n, 8n + 1, ... from lane 0.
      const __m512 coef = _mm512_castps256_ps512(k16_coef(dw, a.d + 8 * i + 4 * n));
      const int16_t* q = a.q + 256 * i + 128 * n;
      for (int k = 0; k < 4; ++k) {
        const __m512i p = dot_pair16<S::kRawOffset>(_mm512_cvtepu8_epi16(bytes[k]), q + 32 * k,
                                                     corr + 128 * i + 64 * n + 16 * k);
        st.acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), spread_pair(coef, 2 * k), st.acc);
      }
    }
  }
  static PLUMB_INLINE void finish(int64_t, const ActRow&, RowAcc&) {}
};


inline __m256 even_plus_odd(__m512 acc) {
  return _mm256_add_ps(_mm512_castps512_ps256(acc), _mm512_extractf32x8_ps(acc, 1));
}

// One token against kR rows (1, or 4 short rows at once: they share the activation loads and
// one transposed reduction, where a row of 1-3 super-blocks would spend a third of its work on
// its own reduction). out[r] = y of rows[r]. With kPrefetch, the rows are consecutive, row_bytes
// apart, and the weights that follow them are prefetched as the units advance.
template <class K, bool kHasMin, int kR, bool kPrefetch>
void fused_rows(const uint8_t* const* rows, size_t row_bytes, int64_t nb, const ActRow& a, const int16_t* qz,
                const int32_t* corr, float* out) {
  RowAcc st[kR];
  const int64_t n_units = K::count(nb);
  PrefetchStream ahead(rows[0], kR * row_bytes, n_units);
  for (int64_t u = 0; u < n_units; ++u) {
    if constexpr (kPrefetch) ahead.step();
    for (int r = 0; r < kR; ++r) K::unit(rows[r], u, nb, a, qz, corr, st[r]);
  }
  for (int r = 0; r < kR; ++r) K::finish(nb, a, st[r]);
  if constexpr (kR == 1) {
    out[0] = hsum_pair(st[0].acc);
    if constexpr (kHasMin) out[0] += hsum8_ps(st[0].macc);
  } else {
    static_assert(kR == 4);
    __m128 y = hsum8x4(even_plus_odd(st[0].acc), even_plus_odd(st[1].acc), even_plus_odd(st[2].acc),
                       even_plus_odd(st[3].acc));
    if constexpr (kHasMin) y = _mm_add_ps(y, hsum8x4(st[0].macc, st[1].macc, st[2].macc, st[3].macc));
    _mm_storeu_ps(out, y);
  }
}

// ---- unpacking whole rows for the prompt path ----
// wz: the row's int16 weights pair after pair (64 per pair for 32-element sub-blocks, in the
// pair order of w0 then w1; 32 per pair for 16-element sub-blocks, element order), pair p at
// wz + p * pair_stride (a pair's own size unless the caller interleaves rows); dw, mc: per
// sub-block multipliers (as weight_unpack.h).

// The contract's int16 weights from raw ones.
template <int kRawOffset>
inline __m512i centred(__m512i w) {
  return kRawOffset ? _mm512_sub_epi16(w, _mm512_set1_epi16(kRawOffset)) : w;
}

template <class B>
struct Legacy {
  static constexpr int kBlock = 32, kSub = 32;
  static constexpr bool kHasMin = B::kHasMin;
  static constexpr int kRawOffset = B::kRawOffset;
  using Units = LegacyUnits<B>;
  static void unpack(const uint8_t* row, int64_t nb, int16_t* wz, float* dw, float* mc, int64_t pair_stride = 64) {
    constexpr size_t kBytes = sizeof(typename B::Block);
    int64_t i = 0;
    for (; i < nb; i += 2) {
      const uint8_t* b0 = row + i * kBytes;
      const bool tail = i + 1 == nb;
      __m512i w0, w1;
      B::pair(b0, tail ? b0 : b0 + kBytes, &w0, &w1);
      w0 = centred<kRawOffset>(w0);
      w1 = centred<kRawOffset>(w1);
      if (tail) {  // zero weights for the missing block (the activations there are zeros too)
        w0 = _mm512_maskz_mov_epi16(0x0000FFFF, w0);
        w1 = _mm512_maskz_mov_epi16(0x0000FFFF, w1);
      }
      _mm512_store_si512(wz + i / 2 * pair_stride, w0);
      _mm512_store_si512(wz + i / 2 * pair_stride + 32, w1);
      legacy_scales<B>(b0, dw + i, mc + i);
      if (!tail) legacy_scales<B>(b0 + kBytes, dw + i + 1, mc + i + 1);
    }
  }
  // dw and mc alone, sub-block s at dw[s * stride] (the few-token path, which decodes the
  // weights in registers: pair_dot).
  static void scales(const uint8_t* row, int64_t nb, float* dw, float* mc, int64_t stride) {
    for (int64_t i = 0; i < nb; ++i) legacy_scales<B>(row + i * sizeof(typename B::Block), dw + i * stride, mc + i * stride);
  }
  // Pair p's 16 int32 partials against one token (qz in pair order, corr its offset sums): lanes
  // 0-7 sub-block 2p, 8-15 sub-block 2p + 1 (none past an odd last block).
  static PLUMB_INLINE __m512i pair_dot(const uint8_t* row, int64_t p, int64_t nb, const int16_t* qz, const int32_t* corr) {
    constexpr size_t kBytes = sizeof(typename B::Block);
    const uint8_t* b0 = row + 2 * p * kBytes;
    __m512i w0, w1;
    B::pair(b0, 2 * p + 1 == nb ? b0 : b0 + kBytes, &w0, &w1);
    return dot_pair32<kRawOffset>(w0, w1, qz + 64 * p, corr + 16 * p);
  }
};

template <class S>
struct Sup32 {
  static constexpr int kBlock = 256, kSub = 32;
  static constexpr bool kHasMin = S::kHasMin;
  static constexpr int kRawOffset = S::kRawOffset;
  using Units = Sup32Units<S>;
  static void unpack(const uint8_t* row, int64_t nb, int16_t* wz, float* dw, float* mc, int64_t pair_stride = 64) {
    const auto* blocks = reinterpret_cast<const typename S::Block*>(row);
    for (int64_t i = 0; i < nb; ++i) {
      __m256 d, m = _mm256_setzero_ps();
      S::scales(blocks[i], &d, &m);
      _mm256_storeu_ps(dw + 8 * i, d);
      if constexpr (S::kHasMin) _mm256_storeu_ps(mc + 8 * i, m);
      for (int j = 0; j < 4; ++j) {
        __m512i w0, w1;
        S::pair(blocks[i], j, &w0, &w1);
        _mm512_store_si512(wz + (4 * i + j) * pair_stride, centred<kRawOffset>(w0));
        _mm512_store_si512(wz + (4 * i + j) * pair_stride + 32, centred<kRawOffset>(w1));
      }
    }
  }
  static void scales(const uint8_t* row, int64_t nb, float* dw, float* mc, int64_t stride) {
    const auto* blocks = reinterpret_cast<const typename S::Block*>(row);
    alignas(32) float d8[8], m8[8];
    for (int64_t i = 0; i < nb; ++i) {
      __m256 d, m = _mm256_setzero_ps();
      S::scales(blocks[i], &d, &m);
      _mm256_store_ps(d8, d);
      _mm256_store_ps(m8, m);
      for (int k = 0; k < 8; ++k) {
        dw[(8 * i + k) * stride] = d8[k];
        if constexpr (S::kHasMin) mc[(8 * i + k) * stride] = m8[k];
      }
    }
  }
  static PLUMB_INLINE __m512i pair_dot(const uint8_t* row, int64_t p, int64_t, const int16_t* qz, const int32_t* corr) {
    __m512i w0, w1;
    S::pair(reinterpret_cast<const typename S::Block*>(row)[p / 4], static_cast<int>(p % 4), &w0, &w1);
    return dot_pair32<kRawOffset>(w0, w1, qz + 64 * p, corr + 16 * p);
  }
};

template <class S>
struct Sup16 {
  static constexpr int kBlock = 256, kSub = 16;
  static constexpr bool kHasMin = S::kHasMin;
  static constexpr int kRawOffset = S::kRawOffset;
  using Units = Sup16Units<S>;
  static void unpack(const uint8_t* row, int64_t nb, int16_t* wz, float* dw, float* mc, int64_t pair_stride = 32) {
    const auto* blocks = reinterpret_cast<const typename S::Block*>(row);
    for (int64_t i = 0; i < nb; ++i) {
      for (int n = 0; n < 2; ++n) {
        __m256 d, m = _mm256_setzero_ps();
        __m256i bytes[4];
        S::half(blocks[i], n, &d, &m, bytes);
        _mm256_storeu_ps(dw + 16 * i + 8 * n, d);
        if constexpr (S::kHasMin) _mm256_storeu_ps(mc + 16 * i + 8 * n, m);
        for (int k = 0; k < 4; ++k) {
          _mm512_store_si512(wz + (8 * i + 4 * n + k) * pair_stride, centred<kRawOffset>(_mm512_cvtepu8_epi16(bytes[k])));
        }
      }
    }
  }
};

// ---- prompt batches: contract S, tokens along the lanes ----
// Products prepared for contract S (prompt runs of kSummedMinTokens tokens or more; matmul_internal.h): each
// sub-block's products summed exactly in int32, then one fma per sub-block. Tokens go along the
// lanes, 16 to a tile, so a sub-block's sum needs no horizontal reduction: its activations, as
// int16 pairs (dwords) transposed to [dword][token], stay in registers while each row's weight
// dwords are broadcast into vpdpwssd (32 products an instruction, then 3 float ops per sub-block
// and 16 tokens). The AMX kernels below use the same activation tiles, split into bytes.
constexpr int kTileTokens = 16;

// Token tiles per block of a prompt product. A thread's range of rows runs block by block: every
// group of its rows passes over one block's prepared activations (tile_bytes a tile) before the
// next block, unpacking its weights again for each block. Without blocks each group streamed the
// whole prompt's activations, which outgrow the 2 MiB L2 at 512 tokens of 2048-wide rows, from
// L3 (bench --profile: the products' time per token grew with the prompt). About 512 KiB a block
// leaves room for the weights in the L2 of Sapphire Rapids (2 MiB) and Zen 4 (1 MiB); at least 4
// tiles (64 tokens) keep the unpacking's share as at pp64.
inline int64_t tiles_per_block(int64_t tile_bytes, int64_t n_tiles) {
  constexpr int64_t kBlockBytes = int64_t{512} << 10;
  const int64_t tiles = kBlockBytes / tile_bytes;
  return min64(n_tiles, tiles < 4 ? 4 : tiles);
}

// The 16 x 16 dword transpose of rows v[0..16) (row i, dword j -> row j, dword i).
inline void transpose16x16(__m512i v[16]) {
  __m512i t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(v[i], v[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(v[i], v[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    v[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
    v[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
    v[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
    v[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  // Now 128-bit lane L of v[4q + c] holds dword 4L + c of rows 4q..4q+3: gather the lanes.
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm512_shuffle_i32x4(v[i], v[4 + i], 0x88);
    t[4 + i] = _mm512_shuffle_i32x4(v[i], v[4 + i], 0xDD);
    t[8 + i] = _mm512_shuffle_i32x4(v[8 + i], v[12 + i], 0x88);
    t[12 + i] = _mm512_shuffle_i32x4(v[8 + i], v[12 + i], 0xDD);
  }
  for (int i = 0; i < 4; ++i) {
    v[i] = _mm512_shuffle_i32x4(t[i], t[8 + i], 0x88);
    v[8 + i] = _mm512_shuffle_i32x4(t[i], t[8 + i], 0xDD);
    v[4 + i] = _mm512_shuffle_i32x4(t[4 + i], t[12 + i], 0x88);
    v[12 + i] = _mm512_shuffle_i32x4(t[4 + i], t[12 + i], 0xDD);
  }
}

// A prompt's activations in tiles of 16 tokens, per call: d_a of each pair's two sub-blocks
// (da[((tile * n_pairs + p) * 2 + j) * 16 + c]) and the min term's sums (sxt[(tile * n_sub + s)
// * 16 + c]), zero for columns past the last token; each_tile(tile, xs) gets the tile's tokens'
// int16 activations in the weights' element order (pair order for 32-element sub-blocks; nullptr
// past the last token) for the kernel's own layout. Kept per thread (and per kernel: F is the
// caller's lambda) while x's preparation is the same, so a thread's later chunks of rows of the
// same product, or of another product of the same input, reuse it.
struct PromptTiles {
  int64_t n_tiles;
  const float* da;
  const float* sxt;
};

template <int kSub, bool kHasMin, class F>
PromptTiles prompt_tiles(const ActivationBuffer& x, const ActLayout& lay, int64_t n_pairs, int64_t n_sub,
                         F&& each_tile) {
  const int64_t n_tokens = x.n_tokens();
  const int64_t n_tiles = (n_tokens + kTileTokens - 1) / kTileTokens;
  thread_local Buffer da_buf, sx_buf, xo_buf;
  thread_local uint64_t held = 0;  // the preparation the buffers (and the caller's) hold
  float* da = da_buf.get<float>(static_cast<size_t>(n_tiles * n_pairs * 2 * kTileTokens));
  float* sxt = kHasMin ? sx_buf.get<float>(static_cast<size_t>(n_tiles * n_sub * kTileTokens)) : nullptr;
  if (held == x.preparation()) return PromptTiles{n_tiles, da, sxt};
  held = x.preparation();
  int16_t* xo = kSub == 32 ? xo_buf.get<int16_t>(static_cast<size_t>(kTileTokens * 64 * n_pairs)) : nullptr;
  for (int64_t tile = 0; tile < n_tiles; ++tile) {
    const int64_t t0 = tile * kTileTokens;
    const int nt = static_cast<int>(min64(n_tokens - t0, kTileTokens));
    const int16_t* xs[kTileTokens] = {};
    float* dt = da + tile * n_pairs * 2 * kTileTokens;
    float* st = kHasMin ? sxt + tile * n_sub * kTileTokens : nullptr;
    for (int c = 0; c < kTileTokens; ++c) {
      if (c >= nt) {  // columns past the last token: zero scales and sums
        for (int64_t i = 0; i < 2 * n_pairs; ++i) dt[i * kTileTokens + c] = 0.0f;
        for (int64_t s = 0; kHasMin && s < n_sub; ++s) st[s * kTileTokens + c] = 0.0f;
        continue;
      }
      const ActRow a = act_row(x, lay, t0 + c);
      if constexpr (kSub == 32) {
        pair_order(a.q, lay.n_blocks, xo + c * 64 * n_pairs);
        xs[c] = xo + c * 64 * n_pairs;
      } else {
        xs[c] = a.q;
      }
      for (int64_t p = 0; p < n_pairs; ++p) {
        for (int j = 0; j < 2; ++j) {
          const int64_t b = kSub == 32 ? 2 * p + j : p;
          dt[(2 * p + j) * kTileTokens + c] = b < lay.n_blocks ? a.d[b] : 0.0f;
        }
      }
      if constexpr (kHasMin) {
        const float* sx = kSub == 32 ? a.sx32 : a.sx16;
        for (int64_t s = 0; s < n_sub; ++s) st[s * kTileTokens + c] = sx[s];
      }
    }
    each_tile(tile, xs);
  }
  return PromptTiles{n_tiles, da, sxt};
}

// A tile's activations as dwords along the lanes: xt[(p * kChunk / 2 + i) * 16 + c] = dword i of
// pair p of token c (kChunk: elements per pair).
template <int kChunk>
void lane_tokens(const int16_t* const* xs, int64_t n_pairs, int32_t* xt) {
  for (int64_t p = 0; p < n_pairs; ++p) {
    for (int q = 0; q < kChunk / 32; ++q) {
      __m512i v[16];
      for (int c = 0; c < 16; ++c) {
        v[c] = xs[c] != nullptr ? load512(xs[c] + p * kChunk + 32 * q) : _mm512_setzero_si512();
      }
      transpose16x16(v);
      for (int i = 0; i < 16; ++i) _mm512_store_si512(xt + (p * kChunk / 2 + 16 * q + i) * 16, v[i]);
    }
  }
}

// Rows a group of the prompt kernels (AVX-512 below and AMX): a tile's results are 8 rows x 16 tokens.
constexpr int kTileRows = 8;

// The min term of a group's rows for a tile, added to out[r]: hsum8 of the contract's chains
// macc[s % 8] += mc[r * s_stride + s] * sx[s] (mc zero for rows past the range). Chains j and
// j + 4 of every row at a time (16 accumulators), so that each load of the tile's sums feeds all
// the rows: a row at a time, each multiply-add needed its own load of the sums beside the
// multiplier's broadcast, and the loads held it at about two cycles (Zen 4). The same operations
// in the same order for every output.
inline void add_min_terms(const float* mc, int64_t s_stride, const float* sxt, int64_t n_sub, __m512* out) {
  __m512 chain_pairs[4][kTileRows];  // [j][r]: macc[j] + macc[j + 4]
  for (int j = 0; j < 4; ++j) {
    __m512 lo[kTileRows], hi[kTileRows];
#pragma GCC unroll 8
    for (int r = 0; r < kTileRows; ++r) lo[r] = hi[r] = _mm512_setzero_ps();
    for (int64_t s = j; s < n_sub; s += 8) {
      const __m512 x = _mm512_load_ps(sxt + s * kTileTokens);
#pragma GCC unroll 8
      for (int r = 0; r < kTileRows; ++r) lo[r] = _mm512_fmadd_ps(_mm512_set1_ps(mc[r * s_stride + s]), x, lo[r]);
      if (s + 4 < n_sub) {
        const __m512 x4 = _mm512_load_ps(sxt + (s + 4) * kTileTokens);
#pragma GCC unroll 8
        for (int r = 0; r < kTileRows; ++r) {
          hi[r] = _mm512_fmadd_ps(_mm512_set1_ps(mc[r * s_stride + s + 4]), x4, hi[r]);
        }
      }
    }
#pragma GCC unroll 8
    for (int r = 0; r < kTileRows; ++r) chain_pairs[j][r] = _mm512_add_ps(lo[r], hi[r]);
  }
#pragma GCC unroll 8
  for (int r = 0; r < kTileRows; ++r) {
    const __m512 h = _mm512_add_ps(_mm512_add_ps(chain_pairs[0][r], chain_pairs[2][r]),
                                   _mm512_add_ps(chain_pairs[1][r], chain_pairs[3][r]));
    out[r] = _mm512_add_ps(out[r], h);
  }
}

// y[t * ldy + r] = out[r][t] for rows r < nr and tokens t < nt. The tile is transposed in
// registers so that a token's 8 rows (32 contiguous bytes of y) are one store: stored a value at
// a time, the 128 stores to 16 lines of y that are seldom in the caches filled the store queue.
inline void store_tile_transposed(const __m512* out, int nr, int nt, float* y, int64_t ldy) {
  __m512 t[8], u[8];
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {  // 128-bit lane L: rows 2i, 2i + 1 of tokens 4L, 4L + 1 / 4L + 2, 4L + 3
    t[2 * i] = _mm512_unpacklo_ps(out[2 * i], out[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(out[2 * i], out[2 * i + 1]);
  }
#pragma GCC unroll 2
  for (int h = 0; h < 2; ++h) {  // u[4h + k], lane L: rows 4h..4h + 3 of token 4L + k
    u[4 * h] = _mm512_shuffle_ps(t[4 * h], t[4 * h + 2], 0x44);
    u[4 * h + 1] = _mm512_shuffle_ps(t[4 * h], t[4 * h + 2], 0xEE);
    u[4 * h + 2] = _mm512_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0x44);
    u[4 * h + 3] = _mm512_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0xEE);
  }
  const __m512i first = _mm512_set_epi32(23, 22, 21, 20, 7, 6, 5, 4, 19, 18, 17, 16, 3, 2, 1, 0);
  const __m512i second = _mm512_set_epi32(31, 30, 29, 28, 15, 14, 13, 12, 27, 26, 25, 24, 11, 10, 9, 8);
  const __mmask8 rows = static_cast<__mmask8>((1u << nr) - 1);
#pragma GCC unroll 4
  for (int k = 0; k < 4; ++k) {  // tokens k, 4 + k (first), 8 + k, 12 + k (second), rows 0-7 each
    const __m512 v[2] = {_mm512_permutex2var_ps(u[k], first, u[4 + k]),
                         _mm512_permutex2var_ps(u[k], second, u[4 + k])};
#pragma GCC unroll 2
    for (int i = 0; i < 2; ++i) {
      const int tok = 8 * i + k;
      if (tok < nt) _mm256_mask_storeu_ps(y + tok * ldy, rows, _mm512_castps512_ps256(v[i]));
      if (tok + 4 < nt) _mm256_mask_storeu_ps(y + (tok + 4) * ldy, rows, _mm512_extractf32x8_ps(v[i], 1));
    }
  }
}

// y of rows [0, nr) of a group for a tile's nt tokens: sums[r] = acc of set 0 + acc of set 1 (16
// tokens), plus the min term with mc[r * s_stride + s] (zero for rows past nr) and the tile's sums.
template <bool kHasMin>
void store_tile_rows(const __m512* sums, int nr, const float* mc, int64_t s_stride, const float* sxt,
                     int64_t n_sub, int nt, float* y, int64_t ldy) {
  __m512 out[kTileRows];
#pragma GCC unroll 8
  for (int r = 0; r < kTileRows; ++r) out[r] = sums[r];
  if constexpr (kHasMin) add_min_terms(mc, s_stride, sxt, n_sub, out);
  store_tile_transposed(out, nr, nt, y, ldy);
}

// Rows a group: each activation dword loaded from the tile feeds this many vpdpwssd. With 8 the
// tile's reads per multiply-add are half those of 4, which matters where a block of tiles is read
// from L3 (rows of 14336 values: 448 KiB a tile); Zen 4, Llama-3-8B shapes at 512 tokens: Q4_K
// 4096 wide 312-315 -> 318-326 GFLOP/s, 14336 wide 273-275 -> 297-299 (two threads).
constexpr int kSumRows = kTileRows;

// The exact sums of sub-block j of one pair for kSumRows rows (wp[r]: the rows' pair weights)
// and a tile of tokens (xp: the pair's dwords along the lanes). The sub-block's dwords: 8j..8j+7
// and 16+8j..16+8j+7 of a 32-element pair in pair order, 8j..8j+7 of a 16-element pair. One
// accumulator per row keeps eight vpdpwssd chains in flight.
template <int kSub>
inline void sub_block_sums(const int32_t* xp, const int16_t* const* wp, int j, __m512i* sums) {
  for (int r = 0; r < kSumRows; ++r) sums[r] = _mm512_setzero_si512();
#pragma GCC unroll 2
  for (int h = 0; h < kSub / 16; ++h) {
    const int base = 16 * h + 8 * j;
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) {
      const __m512i act = _mm512_load_si512(xp + (base + i) * kTileTokens);
#pragma GCC unroll 8
      for (int r = 0; r < kSumRows; ++r) {
        const __m512i wv = _mm512_set1_epi32(static_cast<int32_t>(u32(wp[r] + 2 * (base + i))));
        sums[r] = _mm512_dpwssd_epi32(sums[r], act, wv);
      }
    }
  }
}

// Sub-block j of a pair for the group's rows and one tile (dt: the pair's d_a, dw: the rows' first
// multiplier of the pair): the exact sums, then the contract's fma into set j of each row.
template <int kSub, int j>
PLUMB_INLINE void sub_block_fma(const int32_t* xp, const int16_t* const* wp, const float* dt, const float* dw,
                                int64_t s_stride, __m512* acc) {
  __m512i sums[kSumRows];
  sub_block_sums<kSub>(xp, wp, j, sums);
  const __m512 da = _mm512_load_ps(dt + j * kTileTokens);
#pragma GCC unroll 8
  for (int r = 0; r < kSumRows; ++r) {
    const __m512 coef = _mm512_mul_ps(_mm512_set1_ps(dw[r * s_stride + j]), da);
    acc[2 * r + j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums[r]), coef, acc[2 * r + j]);
  }
}

// Pair p of the group's rows (wz: kSumRows rows of unpacked weights, interleaved pair by pair)
// and one tile (xtile, dt: its d_a), its first kSubs sub-blocks: 2, or 1 for an odd last
// sub-block. The sub-blocks' sets are known when this compiles, so the 2 * kSumRows float chains
// stay in registers.
template <int kSub, int kSubs>
PLUMB_INLINE void pair_fma(const int32_t* xtile, const int16_t* wz, const float* dt, const float* dw,
                           int64_t s_stride, int64_t p, __m512* acc) {
  constexpr int kChunk = 2 * kSub;  // elements per pair
  const int16_t* wp[kSumRows];
  for (int r = 0; r < kSumRows; ++r) wp[r] = wz + (p * kSumRows + r) * kChunk;
  const int32_t* xp = xtile + p * kChunk / 2 * kTileTokens;
  sub_block_fma<kSub, 0>(xp, wp, dt + 2 * p * kTileTokens, dw + 2 * p, s_stride, acc);
  if constexpr (kSubs == 2) sub_block_fma<kSub, 1>(xp, wp, dt + 2 * p * kTileTokens, dw + 2 * p, s_stride, acc);
}

template <class U>
void summed_prompt_rows(const WeightMatrix& w, const ActivationBuffer& x, float* y, int64_t ldy, int64_t r0,
                        int64_t r1) {
  constexpr int kChunk = 2 * U::kSub;  // elements per pair
  constexpr int kPairDwords = kChunk / 2;
  const ActLayout lay = ActLayout::for_n_in(w.n_in);
  const int64_t n_tokens = x.n_tokens();
  const int64_t n_blocks = w.n_in / U::kBlock;
  const int64_t n_sub = w.n_in / U::kSub;
  const int64_t n_pairs = (n_sub + 1) / 2;

  thread_local Buffer xt_buf;
  const int64_t tile_dwords = n_pairs * kPairDwords * kTileTokens;
  int32_t* xt = xt_buf.get<int32_t>(static_cast<size_t>((n_tokens + kTileTokens - 1) / kTileTokens * tile_dwords));
  const PromptTiles pt = prompt_tiles<U::kSub, U::kHasMin>(
      x, lay, n_pairs, n_sub,
      [&](int64_t tile, const int16_t* const* xs) { lane_tokens<kChunk>(xs, n_pairs, xt + tile * tile_dwords); });

  // A group of kSumRows rows, unpacked once per block of token tiles (int16 in pair order, as
  // weight_unpack.h's weights), the rows interleaved pair by pair: the group's weights are one
  // sequential stream for the hardware prefetchers instead of kSumRows streams whose lines, at a
  // multiple of 4 KiB apart (rows of 4096 values: 8 KiB), fall into one set of Zen 4's L1.
  constexpr int64_t kPairStride = kSumRows * kChunk;
  const int64_t s_stride = 2 * n_pairs;  // dw / mc per row, padded to whole pairs
  thread_local Buffer wz_buf, dw_buf, mc_buf;
  int16_t* wz = wz_buf.get<int16_t>(static_cast<size_t>(n_pairs * kPairStride));
  float* dw = dw_buf.get<float>(static_cast<size_t>(kSumRows * s_stride));
  float* mc = mc_buf.get<float>(static_cast<size_t>(kSumRows * s_stride));
  const int64_t block_tiles = tiles_per_block(tile_dwords * 4, pt.n_tiles);
  for (int64_t tb = 0; tb < pt.n_tiles; tb += block_tiles) {
    const int64_t te = min64(tb + block_tiles, pt.n_tiles);
    for (int64_t g0 = r0; g0 < r1; g0 += kSumRows) {
      const int nr = static_cast<int>(min64(r1 - g0, kSumRows));
      for (int r = 0; r < kSumRows; ++r) {
        if (r >= nr) {  // rows past the range: zero weights (their outputs are not stored)
          for (int64_t p = 0; p < n_pairs; ++p) {
            std::memset(wz + p * kPairStride + r * kChunk, 0, kChunk * sizeof(int16_t));
          }
          std::memset(dw + r * s_stride, 0, static_cast<size_t>(s_stride) * sizeof(float));
          std::memset(mc + r * s_stride, 0, static_cast<size_t>(s_stride) * sizeof(float));
          continue;
        }
        const uint8_t* row = w.data + static_cast<size_t>(g0 + r) * w.row_bytes;
        prefetch_range(row, w.row_bytes, w.row_bytes);  // the next row, while this one unpacks
        U::unpack(row, n_blocks, wz + r * kChunk, dw + r * s_stride, mc + r * s_stride, kPairStride);
      }
      for (int64_t tile = tb; tile < te; ++tile) {
        __m512 acc[2 * kSumRows];  // [row][set s % 2], tokens along the lanes
        for (auto& v : acc) v = _mm512_setzero_ps();
        const int32_t* xtile = xt + tile * tile_dwords;
        const float* dt = pt.da + tile * n_pairs * 2 * kTileTokens;
        for (int64_t p = 0; p < n_sub / 2; ++p) pair_fma<U::kSub, 2>(xtile, wz, dt, dw, s_stride, p, acc);
        if (n_sub % 2 != 0) pair_fma<U::kSub, 1>(xtile, wz, dt, dw, s_stride, n_sub / 2, acc);
        __m512 rows[kSumRows];
        for (int r = 0; r < kSumRows; ++r) rows[r] = _mm512_add_ps(acc[2 * r], acc[2 * r + 1]);
        const int64_t t0 = tile * kTileTokens;
        store_tile_rows<U::kHasMin>(rows, nr, mc, s_stride, U::kHasMin ? pt.sxt + tile * n_sub * kTileTokens : nullptr,
                                    n_sub, static_cast<int>(min64(n_tokens - t0, kTileTokens)), y + t0 * ldy + g0,
                                    ldy);
      }
    }
  }
}

// ---- few tokens under contract S: rows along the lanes ----
// A product of 1-4 tokens prepared for contract S (the generated tokens of plumb serve's steps
// with few sequences) would fill one column of a 16-token tile. Here the rows go along the lanes
// instead: 16 rows unpacked once (as the prompt path), then per pair of sub-blocks one vpdpwssd
// chain per row and token and a transposed reduction of the 16 rows' lanes to each row's exact
// sub-block sums; the contract's fmas then run on 16 rows at once. Integer sums are exact in any
// order, so these are the bits of every other contract-S kernel.
constexpr int kFewRows = 16;
constexpr int64_t kFewSummedTokens = 4;  // summed products of this many tokens or fewer (measured: the tiles win from 5-6)

// v[r]: row r's 16 int32 partials of one pair, dwords 0-7 of its first sub-block, 8-15 of its
// second (pair order; element order for 16-element sub-blocks). Returns the rows' sums of each.
inline void pair_sums16(const __m512i v[kFewRows], __m512i* first, __m512i* second) {
  __m512i s[8], u[4], w[4];
  for (int i = 0; i < 8; ++i) {  // per 128-bit lane: rows 2i, 2i + 1, two dwords each
    s[i] = _mm512_add_epi32(_mm512_unpacklo_epi32(v[2 * i], v[2 * i + 1]), _mm512_unpackhi_epi32(v[2 * i], v[2 * i + 1]));
  }
  for (int j = 0; j < 4; ++j) {  // per 128-bit lane L, element k: row 4j + k's dwords 4L..4L+3
    u[j] = _mm512_add_epi32(_mm512_unpacklo_epi64(s[2 * j], s[2 * j + 1]), _mm512_unpackhi_epi64(s[2 * j], s[2 * j + 1]));
    w[j] = _mm512_add_epi32(u[j], _mm512_shuffle_i32x4(u[j], u[j], _MM_SHUFFLE(2, 3, 0, 1)));  // lanes 0+1, 2+3
  }
  const __m512i x01 = _mm512_shuffle_i32x4(w[0], w[1], _MM_SHUFFLE(2, 0, 2, 0));
  const __m512i x23 = _mm512_shuffle_i32x4(w[2], w[3], _MM_SHUFFLE(2, 0, 2, 0));
  *first = _mm512_shuffle_i32x4(x01, x23, _MM_SHUFFLE(2, 0, 2, 0));
  *second = _mm512_shuffle_i32x4(x01, x23, _MM_SHUFFLE(3, 1, 3, 1));
}

template <class U>
void summed_few_rows(const WeightMatrix& w, const ActivationBuffer& x, float* y, int64_t ldy, int64_t r0,
                     int64_t r1) {
  constexpr int kChunk = 2 * U::kSub;  // elements per pair
  const ActLayout lay = ActLayout::for_n_in(w.n_in);
  const int64_t n_tokens = x.n_tokens();
  const int64_t n_blocks = w.n_in / U::kBlock;
  const int64_t n_sub = w.n_in / U::kSub;
  const int64_t n_pairs = (n_sub + 1) / 2;
  const int64_t wz_stride = n_pairs * kChunk;
  const int64_t s_stride = 2 * n_pairs;
  thread_local Buffer qz_buf, corr_buf, wz_buf, dw_buf, mc_buf, dwt_buf, mct_buf;
  // The tokens' activations in the weights' element order.
  int16_t* qz = U::kSub == 32 ? qz_buf.get<int16_t>(static_cast<size_t>(n_tokens * wz_stride)) : nullptr;
  for (int64_t t = 0; qz != nullptr && t < n_tokens; ++t) pair_order(act_row(x, lay, t).q, lay.n_blocks, qz + t * wz_stride);
  // One token of a 32-element type: its weights decoded in registers as they are used (pair_dot),
  // as the single-token kernels do, not unpacked to memory first; more tokens share one unpacking.
  constexpr bool kInRegisters = requires { U::pair_dot(nullptr, 0, 0, nullptr, nullptr); };
  const bool in_registers = kInRegisters && n_tokens == 1;
  int32_t* corr = nullptr;
  if (in_registers && U::kRawOffset != 0) {
    corr = corr_buf.get<int32_t>(static_cast<size_t>(16 * n_pairs));
    offset_sums32(qz, n_pairs, U::kRawOffset, corr);
  }
  int16_t* wz = wz_buf.get<int16_t>(static_cast<size_t>(kFewRows * wz_stride));
  float* dw = dw_buf.get<float>(static_cast<size_t>(kFewRows * s_stride));
  float* mc = mc_buf.get<float>(static_cast<size_t>(kFewRows * s_stride));
  float* dwt = dwt_buf.get<float>(static_cast<size_t>(s_stride * kFewRows));  // [s][row]
  float* mct = mct_buf.get<float>(static_cast<size_t>(s_stride * kFewRows));
  for (int64_t g0 = r0; g0 < r1; g0 += kFewRows) {
    const int nr = static_cast<int>(min64(r1 - g0, kFewRows));
    const uint8_t* rows[kFewRows];
    for (int r = 0; r < kFewRows; ++r) {
      // Rows past the range: zero weights, or the first row's in registers (their outputs are
      // not stored, and each lane is a row of its own: nothing crosses to the others).
      rows[r] = w.data + static_cast<size_t>(g0 + (r < nr ? r : 0)) * w.row_bytes;
      if constexpr (kInRegisters) {
        if (in_registers) {  // the multipliers straight into [s][row]
          U::scales(rows[r], n_blocks, dwt + r, mct + r, kFewRows);
          continue;
        }
      }
      if (r >= nr) {
        std::memset(wz + r * wz_stride, 0, static_cast<size_t>(wz_stride) * sizeof(int16_t));
        std::memset(dw + r * s_stride, 0, static_cast<size_t>(s_stride) * sizeof(float));
        std::memset(mc + r * s_stride, 0, static_cast<size_t>(s_stride) * sizeof(float));
        continue;
      }
      prefetch_range(rows[r], w.row_bytes, w.row_bytes);  // the next row, while this one unpacks
      U::unpack(rows[r], n_blocks, wz + r * wz_stride, dw + r * s_stride, mc + r * s_stride);
    }
    for (int64_t sb = 0; !in_registers && sb < n_sub; ++sb) {
      for (int r = 0; r < kFewRows; ++r) {
        dwt[sb * kFewRows + r] = dw[r * s_stride + sb];
        if constexpr (U::kHasMin) mct[sb * kFewRows + r] = mc[r * s_stride + sb];
      }
    }
    for (int64_t t = 0; t < n_tokens; ++t) {
      const ActRow a = act_row(x, lay, t);
      const int16_t* q = U::kSub == 32 ? qz + t * wz_stride : a.q;
      __m512 acc[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};  // sets s % 2, rows along the lanes
      for (int64_t p = 0; p < n_pairs; ++p) {
        const int16_t* qp = q + p * kChunk;
        __m512i v[kFewRows];
        if constexpr (kInRegisters) {
          if (in_registers) {
            for (int r = 0; r < kFewRows; ++r) v[r] = U::pair_dot(rows[r], p, n_blocks, q, corr);
          }
        }
        if (in_registers) {
        } else if constexpr (kChunk == 64) {
          const __m512i q0 = load512(qp), q1 = load512(qp + 32);
          for (int r = 0; r < kFewRows; ++r) {
            const int16_t* wp = wz + r * wz_stride + p * kChunk;
            v[r] = _mm512_dpwssd_epi32(_mm512_madd_epi16(_mm512_load_si512(wp), q0), _mm512_load_si512(wp + 32), q1);
          }
        } else {
          const __m512i q0 = load512(qp);
          for (int r = 0; r < kFewRows; ++r) v[r] = _mm512_madd_epi16(_mm512_load_si512(wz + r * wz_stride + p * kChunk), q0);
        }
        __m512i sums[2];
        pair_sums16(v, &sums[0], &sums[1]);
        for (int j = 0; j < 2 && 2 * p + j < n_sub; ++j) {
          const int64_t sb = 2 * p + j;
          const float d_a = a.d[U::kSub == 32 ? sb : p];
          const __m512 coef = _mm512_mul_ps(_mm512_load_ps(dwt + sb * kFewRows), _mm512_set1_ps(d_a));
          acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums[j]), coef, acc[j]);
        }
      }
      __m512 out = _mm512_add_ps(acc[0], acc[1]);
      if constexpr (U::kHasMin) {
        const float* sx = U::kSub == 32 ? a.sx32 : a.sx16;
        __m512 m[8];
        for (auto& v : m) v = _mm512_setzero_ps();
        for (int64_t sb = 0; sb < n_sub; ++sb) {
          m[sb % 8] = _mm512_fmadd_ps(_mm512_load_ps(mct + sb * kFewRows), _mm512_set1_ps(sx[sb]), m[sb % 8]);
        }
        const __m512 h = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(m[0], m[4]), _mm512_add_ps(m[2], m[6])),
                                       _mm512_add_ps(_mm512_add_ps(m[1], m[5]), _mm512_add_ps(m[3], m[7])));
        out = _mm512_add_ps(out, h);
      }
      alignas(64) float o[kFewRows];
      _mm512_store_ps(o, out);
      for (int r = 0; r < nr; ++r) y[t * ldy + g0 + r] = o[r];
    }
  }
}

// macc[s % 8] = fma(mc[s], sx[s], macc[s % 8]) over s, as a vector plus a masked tail; the min
// term is hsum8 of it.
inline __m256 min_lanes(const float* mc, const float* sx, int64_t n_sub) {
  __m256 macc = _mm256_setzero_ps();
  int64_t s = 0;
  for (; s + 8 <= n_sub; s += 8) macc = _mm256_fmadd_ps(_mm256_loadu_ps(mc + s), _mm256_loadu_ps(sx + s), macc);
  if (s < n_sub) {
    const __mmask8 k = static_cast<__mmask8>((1u << (n_sub - s)) - 1);
    macc = _mm256_mask3_fmadd_ps(_mm256_maskz_loadu_ps(k, mc + s), _mm256_maskz_loadu_ps(k, sx + s), macc, k);
  }
  return macc;
}

constexpr int64_t kShortRow = 768;  // single-token rows this long or shorter go four at a time
constexpr int kTiles[] = {8, 4, 2, 1};  // tokens per tile of the float kernels, largest first


// The lane contract (generated tokens, prompt runs of up to 3 tokens; each token's bits as if it
// were alone, however many share the call): per token, once per call, the activations in pair order
// (32-element sub-blocks) and the raw-weight corrections (16 per pair); then unpack in
// registers and dot at once; a row (a few KB) stays in L1 between tokens.
template <class U>
void lane_rows(const WeightMatrix& w, const ActivationBuffer& x, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  constexpr bool kPairOrder = U::kSub == 32;
  const ActLayout lay = ActLayout::for_n_in(w.n_in);
  const int64_t n_tokens = x.n_tokens();
  const int64_t n_blocks = w.n_in / U::kBlock;
  const int64_t n_sub = w.n_in / U::kSub;
  const int64_t n_pairs = (n_sub + 1) / 2;
  thread_local Buffer act_buf;
  const bool need_corr = U::kRawOffset != 0;
  const int64_t qz_len = kPairOrder ? 64 * n_pairs : 0;  // int16
  const size_t stride = static_cast<size_t>(2 * qz_len + 64 * n_pairs);  // bytes per token
  uint8_t* prep = kPairOrder || need_corr ? act_buf.get<uint8_t>(stride * static_cast<size_t>(n_tokens)) : nullptr;
  auto qz_of = [&](int64_t t) { return reinterpret_cast<int16_t*>(prep + stride * static_cast<size_t>(t)); };
  auto corr_of = [&](int64_t t) { return reinterpret_cast<int32_t*>(prep + stride * static_cast<size_t>(t) + 2 * qz_len); };
  for (int64_t t = 0; prep != nullptr && t < n_tokens; ++t) {
    const ActRow a = act_row(x, lay, t);
    if constexpr (kPairOrder) pair_order(a.q, lay.n_blocks, qz_of(t));
    if (!need_corr) continue;
    if constexpr (kPairOrder) {
      offset_sums32(qz_of(t), n_pairs, U::kRawOffset, corr_of(t));
    } else {
      offset_sums16(a.q, n_pairs, U::kRawOffset, corr_of(t));
    }
  }
  const bool short_rows = w.n_in <= kShortRow;
  float out[4];
  for (int64_t r = r0; r < r1;) {
    const int kr = short_rows && r + 4 <= r1 ? 4 : 1;
    const uint8_t* rows[4];
    for (int i = 0; i < kr; ++i) rows[i] = w.data + static_cast<size_t>(r + i) * w.row_bytes;
    for (int64_t t = 0; t < n_tokens; ++t) {
      const ActRow a = act_row(x, lay, t);
      const int16_t* qz = kPairOrder ? qz_of(t) : nullptr;
      const int32_t* corr = need_corr ? corr_of(t) : nullptr;
      // The first token's pass brings the rows in; the others find them in L1.
      const size_t rb = w.row_bytes;
      if (kr == 4) {
        t == 0 ? fused_rows<typename U::Units, U::kHasMin, 4, true>(rows, rb, n_blocks, a, qz, corr, out)
               : fused_rows<typename U::Units, U::kHasMin, 4, false>(rows, rb, n_blocks, a, qz, corr, out);
      } else {
        t == 0 ? fused_rows<typename U::Units, U::kHasMin, 1, true>(rows, rb, n_blocks, a, qz, corr, out)
               : fused_rows<typename U::Units, U::kHasMin, 1, false>(rows, rb, n_blocks, a, qz, corr, out);
      }
      for (int i = 0; i < kr; ++i) y[t * ldy + r + i] = out[i];
    }
    r += kr;
  }
}

template <class U>
void avx512_quant_rows(const WeightMatrix& w, const ActivationBuffer& x, float* y, int64_t ldy, int64_t r0,
                       int64_t r1) {
  const int64_t n_tokens = x.n_tokens();
  if (x.summed_for(w.type)) {
#ifndef PLUMB_AVX512_EMULATED  // rows16_avx512.cpp is built for AVX-512 only
    if (n_tokens < kSummedMinTokens && w.rows16 != nullptr && x.has_split()) {  // Q4_K, Q6_K
      rows16_rows(w.type == TensorType::Q4_K ? q4k_rows16_avx512 : q6k_rows16_avx512, w, x, y, ldy, r0, r1);
      return;
    }
#endif
    if (n_tokens <= kFewSummedTokens) {
      summed_few_rows<U>(w, x, y, ldy, r0, r1);
    } else {
      summed_prompt_rows<U>(w, x, y, ldy, r0, r1);
    }
    return;
  }
  // Q4_K and Q6_K take contract S whatever was asked (summed_for): no lane kernels.
  if constexpr (!std::is_same_v<U, Sup32<SupQ4_K>> && !std::is_same_v<U, Sup16<SupQ6_K>>) {
    lane_rows<U>(w, x, y, ldy, r0, r1);
  }
}

// ---- float weights: lanes k % 16 in one zmm per (row, token) ----

struct RowF32 {
  static constexpr size_t kBytes = 4;
  static __m512 load16(const uint8_t* row, int64_t k) { return _mm512_loadu_ps(row + 4 * k); }
  static float at(const uint8_t* row, int64_t k) {
    float v;
    std::memcpy(&v, row + 4 * k, 4);
    return v;
  }
};
struct RowF16 {
  static constexpr size_t kBytes = 2;
  static __m512 load16(const uint8_t* row, int64_t k) { return _mm512_cvtph_ps(load256(row + 2 * k)); }
  static float at(const uint8_t* row, int64_t k) { return f16(row + 2 * k); }
};
struct RowBF16 {
  static constexpr size_t kBytes = 2;
  static __m512 load16(const uint8_t* row, int64_t k) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(load256(row + 2 * k)), 16));
  }
  static float at(const uint8_t* row, int64_t k) {
    const uint32_t bits = static_cast<uint32_t>(u16(row + 2 * k)) << 16;
    float v;
    std::memcpy(&v, &bits, 4);
    return v;
  }
};

// One load of v for all its uses: the compiler would fold the load into each fma (a memory
// operand), and the loads, one per fma, become the limit (float_span: 95 -> 117 GFLOP/s a core
// at 512 tokens of F16, measured). The emulated build of the tests has no registers to keep.
#ifdef PLUMB_AVX512_EMULATED
inline void keep_in_register(__m512&) {}
#else
inline void keep_in_register(__m512& v) { asm("" : "+v"(v)); }
#endif

// Lanes k % 16 over [k0, k1) (multiples of 16) for kR rows and kT tokens, added to acc[r * kT + t].
template <class R, int kR, int kT>
inline void float_span(const uint8_t* const* rows, const float* const* xs, int64_t k0, int64_t k1, __m512* acc) {
  __m512 c[kR][kT];
  for (int r = 0; r < kR; ++r)
    for (int t = 0; t < kT; ++t) c[r][t] = acc[r * kT + t];
  for (int64_t k = k0; k < k1; k += 16) {
    __m512 wv[kR];
    for (int r = 0; r < kR; ++r) wv[r] = R::load16(rows[r], k);
    for (int t = 0; t < kT; ++t) {
      __m512 xv = _mm512_load_ps(xs[t] + k);
      keep_in_register(xv);
      for (int r = 0; r < kR; ++r) c[r][t] = _mm512_fmadd_ps(wv[r], xv, c[r][t]);
    }
  }
  for (int r = 0; r < kR; ++r)
    for (int t = 0; t < kT; ++t) acc[r * kT + t] = c[r][t];
}

constexpr int kFloatGroup = 15;

// y of one (row, token) from its 16 lanes over the whole multiples of 16: the ragged tail element
// by element into lanes (k - n_full), then the contract's reduction.
template <class R>
inline float float_finish(__m512 v, const uint8_t* row, const float* x, int64_t n_in) {
  const int64_t n_full = n_in / 16 * 16;
  if (n_full < n_in) {
    alignas(64) float lanes[16];
    _mm512_store_ps(lanes, v);
    for (int64_t j = n_full; j < n_in; ++j) lanes[j - n_full] = std::fma(R::at(row, j), x[j], lanes[j - n_full]);
    v = _mm512_load_ps(lanes);
  }
  return hsum_pair(v);
}

constexpr int64_t kFloatKBlock = 512;

// A group of up to kFloatGroup rows (n_in weights each, as R reads them) times kT tokens, blocked
// over k so the tokens' slice of x (kT x 512 floats) and the rows' slices stay in L1; each lane
// still accumulates its k in order. Output row g0 + r of token t0 + t. Each k block takes its
// step of `ahead`.
template <class R, int kT>
void float_group(const uint8_t* const* rows, int64_t n_rows, int64_t n_in, const float* const* xs, float* y,
                 int64_t ldy, int64_t t0, int64_t g0, PrefetchAhead& ahead) {
  const int64_t n_full = n_in / 16 * 16;
  __m512 acc[kFloatGroup * kT];
  for (int64_t i = 0; i < n_rows * kT; ++i) acc[i] = _mm512_setzero_ps();
  for (int64_t k0 = 0; k0 < n_full; k0 += kFloatKBlock) {
    const int64_t k1 = min64(n_full, k0 + kFloatKBlock);
    ahead.step();
    int64_t r = 0;
    for (; r + 3 <= n_rows; r += 3) float_span<R, 3, kT>(rows + r, xs, k0, k1, acc + r * kT);
    if (r + 2 <= n_rows) {
      float_span<R, 2, kT>(rows + r, xs, k0, k1, acc + r * kT);
      r += 2;
    }
    if (r < n_rows) float_span<R, 1, kT>(rows + r, xs, k0, k1, acc + r * kT);
  }
  for (int64_t r = 0; r < n_rows; ++r) {
    for (int t = 0; t < kT; ++t) y[(t0 + t) * ldy + g0 + r] = float_finish<R>(acc[r * kT + t], rows[r], xs[t], n_in);
  }
}

// One token: each row alone over its whole length, the rows in order, so that a thread reads its
// weights as one sequential stream. On Zen 4 (2 cores) rows read side by side by one core,
// float_group's interleaved spans or even two halves of consecutive rows, cut the rate the
// weights came from memory by up to half (TinyLlama F16 generation 12.3 t/s at two threads, 20.8
// with this; one thread 6.3 and 11.1). The one fma chain this leaves a row (the contract's 16
// lanes: 16 weights per 4 cycles) costs less than the second stream (docs/PERFORMANCE.md, Zen 4).
// With the lines asked for ahead (stream_ahead(), not on Zen 4), two consecutive rows side by side
// are one stream and two chains: on Zen 5 19 t/s at one thread against 16 with one row's chain.
// Taken on AMD CPUs (detail::one_token_rows_one_at_a_time): on an Intel Xeon (family 6 model
// 207) at 16 threads float_group's interleaved rows were faster (TinyLlama F16 tg32 67.8 and 68.5
// t/s against 55.4 and 60.9).
template <class R>
void float_one_token(const WeightMatrix& w, const float* x, float* y, int64_t r0, int64_t r1) {
  const int64_t n_full = w.n_in / 16 * 16;
  const float* xs[1] = {x};
  const size_t ahead = stream_ahead();
  const bool pairs = ahead != 0;  // two rows' chains side by side (the last alone), or one
  for (int64_t r = r0; r < r1; r += pairs ? 2 : 1) {
    const uint8_t* row = w.data + static_cast<size_t>(r) * w.row_bytes;
    const uint8_t* rows[2] = {row, row + w.row_bytes};
    const bool two = pairs && r + 1 < r1;
    prefetch_stream(rows[0], ahead, (two ? 2 : 1) * w.row_bytes);
    __m512 acc[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
    if (two) {
      float_span<R, 2, 1>(rows, xs, 0, n_full, acc);
    } else {
      float_span<R, 1, 1>(rows, xs, 0, n_full, acc);
    }
    for (int i = 0; i < (two ? 2 : 1); ++i) y[r + i] = float_finish<R>(acc[i], rows[i], x, w.n_in);
  }
}

// One token from the copy cut into blocks (float_blocks.h): block by block over the rows, each
// row's 16 lane sums carried from one block to the next in acc, so that a block's x stays in L1
// while the block's pieces stream past it; the ragged tail from the row itself.
template <class R>
void float_one_token_blocks(const WeightMatrix& w, const float* x, float* y, int64_t r0, int64_t r1) {
  thread_local Buffer acc_buf;
  __m512* acc = acc_buf.get<__m512>(static_cast<size_t>(r1 - r0));
  for (int64_t r = r0; r < r1; ++r) acc[r - r0] = _mm512_setzero_ps();
  const int64_t n_full = w.n_in / 16 * 16;
  const size_t ahead = stream_ahead();
  const bool pairs = ahead != 0;
  for (int64_t b = 0; b * kFloatBlock < n_full; ++b) {
    const int64_t k0 = b * kFloatBlock, n = min64(n_full - k0, kFloatBlock);
    const float* xs[1] = {x + k0};
    for (int64_t r = r0; r < r1; r += pairs ? 2 : 1) {  // two rows' pieces side by side, or one
      const bool two = pairs && r + 1 < r1;
      const uint8_t* pieces[2];
      for (int i = 0; i < (two ? 2 : 1); ++i) {
        pieces[i] = w.blocks + static_cast<size_t>(float_block_start(w.n_out, w.n_in, b, r + i)) * R::kBytes;
      }
      prefetch_stream(pieces[0], ahead, static_cast<size_t>((two ? 2 : 1) * n) * R::kBytes);
      __m512* a = acc + (r - r0);
      if (two) {
        float_span<R, 2, 1>(pieces, xs, 0, n, a);
      } else {
        float_span<R, 1, 1>(pieces, xs, 0, n, a);
      }
    }
  }
  for (int64_t r = r0; r < r1; ++r) {
    y[r] = float_finish<R>(acc[r - r0], w.data + static_cast<size_t>(r) * w.row_bytes, x, w.n_in);
  }
}

// Tokens [b0, b1) (rows of x ldx floats apart) times a group of rows, in tiles of 8, 4, 2, 1;
// meanwhile the next group's rows ([next, next + next_bytes)) into L2, a share every k block of
// every tile. Left to the hardware, the first tile of each group waited on its rows from memory,
// fifteen streams side by side (Zen 4, one thread, TinyLlama F16 pp512: 33.2 -> 39.1 t/s with
// this and float_token_block's 768 KiB, docs/PERFORMANCE.md).
template <class R>
void float_tiles(const uint8_t* const* rows, int64_t n_rows, int64_t n_in, const float* xf, int64_t ldx, int64_t b0,
                 int64_t b1, float* y, int64_t ldy, int64_t g0, const uint8_t* next, size_t next_bytes) {
  int64_t n_tiles = 0;
  for (int64_t t = b0; const int kt : kTiles) {
    for (; t + kt <= b1; t += kt) ++n_tiles;
  }
  const int64_t n_kblocks = (n_in / 16 * 16 + kFloatKBlock - 1) / kFloatKBlock;
  PrefetchAhead ahead(next, next_bytes, n_tiles * n_kblocks);
  int64_t t = b0;
  for (const int kt : kTiles) {
    for (; t + kt <= b1; t += kt) {
      const float* xs[8];
      for (int i = 0; i < kt; ++i) xs[i] = xf + (t + i) * ldx;
      switch (kt) {
        case 8: float_group<R, 8>(rows, n_rows, n_in, xs, y, ldy, t, g0, ahead); break;
        case 4: float_group<R, 4>(rows, n_rows, n_in, xs, y, ldy, t, g0, ahead); break;
        case 2: float_group<R, 2>(rows, n_rows, n_in, xs, y, ldy, t, g0, ahead); break;
        default: float_group<R, 1>(rows, n_rows, n_in, xs, y, ldy, t, g0, ahead); break;
      }
    }
  }
}

template <class R>
void avx512_float_rows(const WeightMatrix& w, const ActivationBuffer& x, float* y, int64_t ldy, int64_t r0,
                       int64_t r1) {
  const int64_t n_in = w.n_in;
  const int64_t n_tokens = x.n_tokens();
  // Activations that are not 64-byte aligned are copied once per call into a buffer that is
  // (rows padded to 16 floats): otherwise every zmm load of x would straddle two cache lines.
  const float* xf = x.f32();
  int64_t ldx = n_in;
  if (reinterpret_cast<uintptr_t>(xf) % 64 != 0 || n_in % 16 != 0) {
    thread_local Buffer x_buf;
    ldx = (n_in + 15) / 16 * 16;
    float* xa = x_buf.get<float>(static_cast<size_t>(n_tokens * ldx));
    for (int64_t t = 0; t < n_tokens; ++t) std::memcpy(xa + t * ldx, xf + t * n_in, static_cast<size_t>(n_in) * 4);
    xf = xa;
  }
  if (n_tokens == 1 && w.blocks != nullptr) {
    float_one_token_blocks<R>(w, xf, y, r0, r1);
    return;
  }
  if (n_tokens == 1 && detail::one_token_rows_one_at_a_time()) {
    float_one_token<R>(w, xf, y, r0, r1);
    return;
  }
  // Block by block of tokens (about 768 KiB of x), so that every group of rows reads the block's
  // x from L2, not the whole prompt's from L3. The more tokens a block, the fewer times the
  // weights come from memory: against 512 KiB (16 tokens of 5632 values) TinyLlama's ffn_down
  // went from 89-92 to 95-97 GFLOP/s at one thread on Zen 4 (bench_matmul); the AVX-512 CPUs
  // have 1 MiB of L2 or more.
  const int64_t block = float_token_block(ldx, n_tokens, 8, int64_t{768} << 10);
  for (int64_t b0 = 0; b0 < n_tokens; b0 += block) {
    const int64_t b1 = min64(n_tokens, b0 + block);
    for (int64_t g0 = r0; g0 < r1; g0 += kFloatGroup) {
      const int64_t n_rows = min64(r1, g0 + kFloatGroup) - g0;
      const uint8_t* rows[kFloatGroup];
      for (int64_t r = 0; r < n_rows; ++r) rows[r] = w.data + static_cast<size_t>(g0 + r) * w.row_bytes;
      // The next group: the following rows, or the first of the next block's pass.
      const int64_t n0 = g0 + n_rows < r1 ? g0 + n_rows : b1 < n_tokens ? r0 : r1;
      const int64_t n_next = min64(r1, n0 + kFloatGroup) - n0;
      float_tiles<R>(rows, n_rows, n_in, xf, ldx, b0, b1, y, ldy, g0, w.data + static_cast<size_t>(n0) * w.row_bytes,
                     static_cast<size_t>(n_next) * w.row_bytes);
    }
  }
}

// ---- AMX: contract S (matmul_internal.h), one exact integer sum per sub-block ----
#if defined(__AMX_TILE__) && defined(__AMX_INT8__)

// For the types with 32-element sub-blocks (for 16-element ones the tiles would spend three
// quarters of each product on zeros and are no faster than the AVX-512 kernels, measured; those
// types use them at this level too). One tile product covers a pair of sub-blocks (its K: 64
// elements) for 8 weight rows and 16 tokens:
//   A (weights, int8): 16 rows m = 2r + j, the pair's weights of row r with the elements of the
//     other sub-block (1 - j) zeroed, so C's row m is sub-block j's sum alone;
//   B (activations, VNNI order): the 16-bit activations split exactly, a = 256 * hi + lo, into
//     signed hi bytes and unsigned lo bytes, one B tile each; column t = token t;
//   C = A.B_hi (tdpbssd) and A.B_lo (tdpbsud), int32 (exact), then P = 256 * C_hi + C_lo.
// Then acc[m] (a zmm over the 16 tokens) = fma(float(P), dw * d_a, acc[m]): row r's two
// accumulator sets of the contract are m = 2r and 2r + 1.
constexpr int kAmxRows = kTileRows;
constexpr int kAmxTileBytes = 16 * 64;  // A, B and C tiles alike: 16 rows of 64 bytes

struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// Tiles 0, 1: C (hi, lo); 2: A; 3, 4: B (hi, lo); all 16 rows of 64 bytes.
void amx_configure() {
  TileConfig c;
  for (int i = 0; i < 5; ++i) {
    c.rows[i] = 16;
    c.colsb[i] = 64;
  }
  _tile_loadconfig(&c);
}

// The int8 bytes of 32 int16 (truncation: the weights fit, the activations' lo bytes are wanted).
inline __m256i bytes_of(__m512i v) { return _mm512_cvtepi16_epi8(v); }

// The B tiles (hi, lo) of one token tile and every pair. xs[c]: token c's activations in pair
// order (nullptr past the last token: zero columns). Row i of a pair's tile holds dword i of
// every token's bytes (column c at byte offset 64 i + 4 c).
void amx_tokens(const int16_t* const* xs, int64_t n_pairs, uint8_t* bhi, uint8_t* blo) {
  for (int64_t p = 0; p < n_pairs; ++p) {
    __m512i hi[16], lo[16];
    for (int c = 0; c < 16; ++c) {
      if (xs[c] == nullptr) {
        hi[c] = lo[c] = _mm512_setzero_si512();
        continue;
      }
      const __m512i v0 = load512(xs[c] + 64 * p), v1 = load512(xs[c] + 64 * p + 32);
      lo[c] = _mm512_inserti64x4(_mm512_castsi256_si512(bytes_of(v0)), bytes_of(v1), 1);
      hi[c] = _mm512_inserti64x4(_mm512_castsi256_si512(bytes_of(_mm512_srai_epi16(v0, 8))),
                                 bytes_of(_mm512_srai_epi16(v1, 8)), 1);
    }
    transpose16x16(hi);
    transpose16x16(lo);
    for (int i = 0; i < 16; ++i) {
      _mm512_store_si512(bhi + p * kAmxTileBytes + 64 * i, hi[i]);
      _mm512_store_si512(blo + p * kAmxTileBytes + 64 * i, lo[i]);
    }
  }
}

// Row r of a group into the A tiles of every pair (rows 2r, 2r + 1 of each). In pair order,
// sub-block j is bytes [16j, 16j + 16) and [32 + 16j, 48 + 16j) of the pair's 64.
void amx_weights(const int16_t* wz, int64_t n_pairs, int r, uint8_t* a) {
  for (int64_t p = 0; p < n_pairs; ++p) {
    uint8_t* m0 = a + (p * 16 + 2 * r) * 64;
    const __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(bytes_of(load512(wz + 64 * p))),
                                         bytes_of(load512(wz + 64 * p + 32)), 1);
    _mm512_store_si512(m0, _mm512_maskz_mov_epi8(0x0000FFFF0000FFFFull, w));
    _mm512_store_si512(m0 + 64, _mm512_maskz_mov_epi8(0xFFFF0000FFFF0000ull, w));
  }
}

// acc[m] += P(m) * dw(m) * d_a over one pair's C tiles (c: hi then lo, 16 x 16 int32 each);
// kHalf: the pair's odd sub-block does not exist (the last pair of an odd count).
template <bool kHalf>
inline void amx_accumulate(const int32_t* c, const float* dw, int64_t dw_stride, int64_t s0, __m512 da0, __m512 da1,
                           __m512* acc) {
#pragma GCC unroll 16
  for (int m = 0; m < 16; ++m) {
    if (kHalf && (m & 1)) continue;
    const __m512i p = _mm512_add_epi32(_mm512_slli_epi32(_mm512_load_si512(c + 16 * m), 8),
                                       _mm512_load_si512(c + 256 + 16 * m));
    const __m512 coef = _mm512_mul_ps(_mm512_set1_ps(dw[(m >> 1) * dw_stride + s0 + (m & 1)]), (m & 1) ? da1 : da0);
    acc[m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), coef, acc[m]);
  }
}

template <class U>
void amx_quant_rows(const WeightMatrix& w, const ActivationBuffer& x, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  static_assert(U::kSub == 32, "AMX kernels are for 32-element sub-blocks");
  const ActLayout lay = ActLayout::for_n_in(w.n_in);
  const int64_t n_tokens = x.n_tokens();
  const int64_t n_blocks = w.n_in / U::kBlock;
  const int64_t n_sub = w.n_in / U::kSub;
  const int64_t n_pairs = (n_sub + 1) / 2;
  if (!x.summed_for(w.type) || n_tokens <= kFewSummedTokens) {  // the AVX-512 kernels of few tokens
    avx512_quant_rows<U>(w, x, y, ldy, r0, r1);
    return;
  }

  // Activations, once per call: B tiles (hi, lo) per (token tile, pair).
  thread_local Buffer bhi_buf, blo_buf;
  const int64_t tile_bytes = n_pairs * kAmxTileBytes;
  const size_t b_bytes = static_cast<size_t>((n_tokens + kTileTokens - 1) / kTileTokens * tile_bytes);
  uint8_t* bhi = bhi_buf.get<uint8_t>(b_bytes);
  uint8_t* blo = blo_buf.get<uint8_t>(b_bytes);
  const PromptTiles pt = prompt_tiles<U::kSub, U::kHasMin>(
      x, lay, n_pairs, n_sub, [&](int64_t tile, const int16_t* const* xs) {
        amx_tokens(xs, n_pairs, bhi + tile * tile_bytes, blo + tile * tile_bytes);
      });

  // A group of 8 rows: unpacked once per block of token tiles (int16, as the AVX-512 prompt
  // path), then into A tiles.
  const int64_t wz_stride = n_pairs * 64;
  const int64_t s_stride = 2 * n_pairs;  // dw / mc per row, padded to whole pairs
  thread_local Buffer wz_buf, a_buf, dw_buf, mc_buf;
  int16_t* wz = wz_buf.get<int16_t>(static_cast<size_t>(wz_stride));
  uint8_t* at = a_buf.get<uint8_t>(static_cast<size_t>(n_pairs * kAmxTileBytes));
  float* dw = dw_buf.get<float>(static_cast<size_t>(kAmxRows * s_stride));
  float* mc = mc_buf.get<float>(static_cast<size_t>(kAmxRows * s_stride));
  alignas(64) int32_t cbuf[2 * 512];  // two pairs' C tiles (hi, lo)
  amx_configure();
  const int64_t block_tiles = tiles_per_block(2 * tile_bytes, pt.n_tiles);
  for (int64_t tb = 0; tb < pt.n_tiles; tb += block_tiles) {
    const int64_t te = min64(tb + block_tiles, pt.n_tiles);
    for (int64_t g0 = r0; g0 < r1; g0 += kAmxRows) {
      const int nr = static_cast<int>(min64(r1 - g0, kAmxRows));
      if (nr < kAmxRows) std::memset(at, 0, static_cast<size_t>(n_pairs * kAmxTileBytes));
      for (int r = 0; r < nr; ++r) {
        const uint8_t* row = w.data + static_cast<size_t>(g0 + r) * w.row_bytes;
        prefetch_range(row, w.row_bytes, w.row_bytes);  // the next row, while this one unpacks
        U::unpack(row, n_blocks, wz, dw + r * s_stride, mc + r * s_stride);
        amx_weights(wz, n_pairs, r, at);
      }
      for (int r = nr; r < kAmxRows; ++r) {  // rows past the range: no min term (not stored)
        std::memset(mc + r * s_stride, 0, static_cast<size_t>(s_stride) * sizeof(float));
      }
      for (int64_t tile = tb; tile < te; ++tile) {
        __m512 acc[16];
#pragma GCC unroll 16
        for (auto& v : acc) v = _mm512_setzero_ps();
        const uint8_t* bh = bhi + tile * tile_bytes;
        const uint8_t* bl = blo + tile * tile_bytes;
        const float* dt = pt.da + tile * n_pairs * 2 * kTileTokens;
        // Pair p's products are issued before pair p - 1's sums are scaled, so that the vector
        // work overlaps the tile unit's latency (about 100 cycles from tilezero to the stored C).
        auto scale_pair = [&](int64_t p) {
          const int32_t* c = cbuf + 512 * (p & 1);
          const __m512 da0 = _mm512_load_ps(dt + 2 * p * kTileTokens);
          const __m512 da1 = _mm512_load_ps(dt + (2 * p + 1) * kTileTokens);
          if (2 * p + 1 < n_sub) {
            amx_accumulate<false>(c, dw, s_stride, 2 * p, da0, da1, acc);
          } else {
            amx_accumulate<true>(c, dw, s_stride, 2 * p, da0, da1, acc);
          }
        };
        for (int64_t p = 0; p < n_pairs; ++p) {
          _tile_loadd(2, at + p * kAmxTileBytes, 64);
          _tile_loadd(3, bh + p * kAmxTileBytes, 64);
          _tile_loadd(4, bl + p * kAmxTileBytes, 64);
          _tile_zero(0);
          _tile_zero(1);
          _tile_dpbssd(0, 2, 3);
          _tile_dpbsud(1, 2, 4);
          _tile_stored(0, cbuf + 512 * (p & 1), 64);
          _tile_stored(1, cbuf + 512 * (p & 1) + 256, 64);
          if (p > 0) scale_pair(p - 1);
        }
        scale_pair(n_pairs - 1);
        // acc is indexed by constants only (unrolled loops) so that it stays in registers: the
        // tile instructions are asm statements that clobber memory.
        __m512 sums[kAmxRows];
#pragma GCC unroll 8
        for (int r = 0; r < kAmxRows; ++r) sums[r] = _mm512_add_ps(acc[2 * r], acc[2 * r + 1]);
        const int64_t t0 = tile * kTileTokens;
        store_tile_rows<U::kHasMin>(sums, nr, mc, s_stride, U::kHasMin ? pt.sxt + tile * n_sub * kTileTokens : nullptr,
                                    n_sub, static_cast<int>(min64(n_tokens - t0, kTileTokens)), y + t0 * ldy + g0,
                                    ldy);
      }
    }
  }
  _tile_release();
}

#endif  // AMX

using Q4_0 = Legacy<BlkQ4_0>;
using Q4_1 = Legacy<BlkQ4_1>;
using Q5_0 = Legacy<BlkQ5_0>;
using Q5_1 = Legacy<BlkQ5_1>;
using Q8_0 = Legacy<BlkQ8_0>;
using IQ4_NL = Legacy<BlkIQ4_NL>;
using Q4_K = Sup32<SupQ4_K>;
using Q5_K = Sup32<SupQ5_K>;
using IQ4_XS = Sup32<SupIQ4_XS>;
using Q2_K = Sup16<SupQ2_K>;
using Q3_K = Sup16<SupQ3_K>;
using Q6_K = Sup16<SupQ6_K>;

}  // namespace

RowsKernel avx512_kernel(TensorType type) {
  switch (type) {
    case TensorType::F32: return avx512_float_rows<RowF32>;
    case TensorType::F16: return avx512_float_rows<RowF16>;
    case TensorType::BF16: return avx512_float_rows<RowBF16>;
    case TensorType::Q4_0: return avx512_quant_rows<Q4_0>;
    case TensorType::Q4_1: return avx512_quant_rows<Q4_1>;
    case TensorType::Q5_0: return avx512_quant_rows<Q5_0>;
    case TensorType::Q5_1: return avx512_quant_rows<Q5_1>;
    case TensorType::Q8_0: return avx512_quant_rows<Q8_0>;
    case TensorType::IQ4_NL: return avx512_quant_rows<IQ4_NL>;
    case TensorType::Q2_K: return avx512_quant_rows<Q2_K>;
    case TensorType::Q3_K: return avx512_quant_rows<Q3_K>;
    case TensorType::Q4_K: return avx512_quant_rows<Q4_K>;
    case TensorType::Q5_K: return avx512_quant_rows<Q5_K>;
    case TensorType::Q6_K: return avx512_quant_rows<Q6_K>;
    case TensorType::IQ4_XS: return avx512_quant_rows<IQ4_XS>;
    default: return nullptr;
  }
}

#if defined(__AMX_TILE__) && defined(__AMX_INT8__)
RowsKernel amx_kernel(TensorType type) {
  switch (type) {
    case TensorType::Q4_0: return amx_quant_rows<Q4_0>;
    case TensorType::Q4_1: return amx_quant_rows<Q4_1>;
    case TensorType::Q5_0: return amx_quant_rows<Q5_0>;
    case TensorType::Q5_1: return amx_quant_rows<Q5_1>;
    case TensorType::Q8_0: return amx_quant_rows<Q8_0>;
    case TensorType::IQ4_NL: return amx_quant_rows<IQ4_NL>;
    case TensorType::Q4_K: return amx_quant_rows<Q4_K>;
    case TensorType::Q5_K: return amx_quant_rows<Q5_K>;
    case TensorType::IQ4_XS: return amx_quant_rows<IQ4_XS>;
    default: return nullptr;
  }
}
#else
RowsKernel amx_kernel(TensorType) { return nullptr; }
#endif

}  // namespace plumb::cpu::PLUMB_AVX512_NAMESPACE
