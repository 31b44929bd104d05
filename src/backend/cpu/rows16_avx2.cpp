// The AVX2 kernels of rows16.h, for CPUs without VNNI: vpmaddubsw (u8 x s8 -> s16 pairs, which
// saturate) summed in int16 over as many steps as cannot saturate, then vpmaddwd to int32. Q4_K's
// nibbles (0..15) are the unsigned operand against the signed high bytes: a pair is at most
// 2 * 15 * 128 = 3840, so all 8 steps of a sub-block fit in int16 (30720); against the unsigned
// low bytes (0..255) they are the signed operand: a pair is at most 2 * 255 * 15 = 7650, so 4 steps
// (30600). Q6_K's bounds are at its kernel. P = 256 H + L + corr is then the AVX-512 kernel's exact
// int32, and the float part is its operations in its order, so the bits are the same.
// 8 rows fill a register, so both halves of a group go through each sub-block together: one
// broadcast of the activations serves 16 rows.
#include <immintrin.h>

#include "backend/cpu/rows16.h"
#include "backend/cpu/simd_x86.h"

namespace plumb::cpu::detail {
namespace {

inline __m256i bcast4(const void* p) {
  int32_t v;
  __builtin_memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}
inline __m256 bytes_as_floats(const uint8_t* p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}

// Each step's sum where it is: GCC (12) otherwise regroups the sums of a sub-block's products into
// one expression at its end, keeps the 16 products alive and spills them (512 x 2048 on Zen 4:
// 27 us without, 23.4 with).
inline void keep_summed(__m256i& v) { asm("" : "+x"(v)); }

// Half a group's 8 rows, or the first `left` of them (a last group's padding rows are not stored).
inline void store_rows(float* out_rows, int64_t left, __m256 out) {
  if (left >= 8) {
    _mm256_storeu_ps(out_rows, out);
    return;
  }
  const __m256i keep = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(left)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  _mm256_maskstore_ps(out_rows, keep, out);
}

}  // namespace

// rows16_prepare's integers, 128 values a round: the split with shifts, masks and packs (both
// exact: hi in [-128, 127], lo in [0, 255]), the sums of q by vpmaddwd and horizontal adds (int32,
// exact in any order), so the bytes are the scalar function's.
void rows16_prepare_avx2(const ActRow& a, int64_t n_in, uint8_t* split) {
  auto* hi = reinterpret_cast<int8_t*>(split);
  uint8_t* lo = split + n_in;
  auto* corr4 = reinterpret_cast<int32_t*>(split + 2 * n_in);
  int32_t* corr6 = corr4 + n_in / 32;
  const __m256i ones = _mm256_set1_epi16(1), low_byte = _mm256_set1_epi16(0xFF);
  const __m256i by_m32 = _mm256_set1_epi32(-32), by_m8 = _mm256_set1_epi32(-8);
  int64_t k0 = 0;
  for (; k0 + 128 <= n_in; k0 += 128) {
    __m256i m[8];
    for (int j = 0; j < 8; ++j) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.q + k0 + 16 * j));
      m[j] = _mm256_madd_epi16(v, ones);
    }
    for (int j = 0; j < 8; j += 2) {
      const __m256i v0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.q + k0 + 16 * j));
      const __m256i v1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.q + k0 + 16 * j + 16));
      // packs interleaves 128-bit lanes: restore element order.
      const __m256i h = _mm256_packs_epi16(_mm256_srai_epi16(v0, 8), _mm256_srai_epi16(v1, 8));
      const __m256i l = _mm256_packus_epi16(_mm256_and_si256(v0, low_byte), _mm256_and_si256(v1, low_byte));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(hi + k0 + 16 * j), _mm256_permute4x64_epi64(h, 0xD8));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(lo + k0 + 16 * j), _mm256_permute4x64_epi64(l, 0xD8));
    }
    // The sums of the 8 halves (16 values each): [m0 m1 m2 m3 | m4 m5 m6 m7] after the adds.
    const __m256i h0123 = _mm256_hadd_epi32(_mm256_hadd_epi32(m[0], m[1]), _mm256_hadd_epi32(m[2], m[3]));
    const __m256i h4567 = _mm256_hadd_epi32(_mm256_hadd_epi32(m[4], m[5]), _mm256_hadd_epi32(m[6], m[7]));
    const __m256i sums = _mm256_add_epi32(_mm256_permute2x128_si256(h0123, h4567, 0x20),
                                          _mm256_permute2x128_si256(h0123, h4567, 0x31));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(corr6 + k0 / 16), _mm256_mullo_epi32(sums, by_m32));
    const __m256i pairs = _mm256_permute4x64_epi64(_mm256_hadd_epi32(sums, sums), 0x08);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(corr4 + k0 / 32),
                     _mm256_castsi256_si128(_mm256_mullo_epi32(pairs, by_m8)));
  }
  for (int64_t k = k0; k < n_in; ++k) {
    hi[k] = static_cast<int8_t>(a.q[k] >> 8);
    lo[k] = static_cast<uint8_t>(a.q[k] & 0xFF);
  }
  for (int64_t s = k0 / 32; s < n_in / 32; ++s) {
    int32_t sum[2] = {0, 0};
    for (int k = 0; k < 32; ++k) sum[k / 16] += a.q[32 * s + k];
    corr4[s] = -8 * (sum[0] + sum[1]);
    corr6[2 * s] = -32 * sum[0];
    corr6[2 * s + 1] = -32 * sum[1];
  }
}

// Each super-block asks for the next one's activation bytes into L1 (prefetch_next_block; here it
// paid at two threads, not measurably at one: docs/PERFORMANCE.md, Zen 4).
void q4k_rows16_avx2(const uint8_t* packed, int64_t n_rows, int64_t n_in, const ActRow& a, const Rows16Act& act,
                     float* y, int64_t g0, int64_t g1) {
  const int64_t n_sb = n_in / 256;
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  const __m256i ones = _mm256_set1_epi16(1), by256 = _mm256_set1_epi16(256);
  const size_t ahead = stream_ahead(), ahead_l2 = stream_ahead_l2();
  for (int64_t g = g0; g < g1; ++g) {
    // [half][...]; the padding rows of a last group are zeros, computed and not stored.
    __m256 acc[2][2], macc[2][8];
    for (auto& half : acc) half[0] = half[1] = _mm256_setzero_ps();
    for (auto& half : macc) {
      for (auto& m : half) m = _mm256_setzero_ps();
    }
    for (int64_t i = 0; i < n_sb; ++i) {
      // A half's rows begin 16 bytes on in the f16 fields, 8 in the byte ones, 32 in the qs.
      const uint8_t* blk = packed + static_cast<size_t>(g * n_sb + i) * kQ4KGroupBlock;
      prefetch_stream(blk, ahead, kQ4KGroupBlock);
      prefetch_stream_l2(blk, ahead_l2, kQ4KGroupBlock);
      prefetch_next_block(act.hi, act.lo, i, n_sb);
      // The even sub-blocks (low nibbles) first, then the odd: acc[s % 2] and macc[s] see their
      // sub-blocks in the contract's order all the same, and the nibble choice is no branch.
#pragma GCC unroll 2
      for (int h = 0; h < 2; ++h) {
#pragma GCC unroll 1
        for (int p = 0; p < 4; ++p) {
          const int s = 2 * p + h;
          const int64_t sg = 8 * i + s;
          __m256i H[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};  // int16 pairs
          __m256i L[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};  // int32
#pragma GCC unroll 2
          for (int quarter = 0; quarter < 2; ++quarter) {
            __m256i L16[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
#pragma GCC unroll 4
            for (int step = 4 * quarter; step < 4 * quarter + 4; ++step) {
              const int64_t k = 32 * sg + 4 * step;
              const __m256i hi = bcast4(act.hi + k), lo = bcast4(act.lo + k);
              for (int half = 0; half < 2; ++half) {
                const __m256i v =
                    _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 320 + (p * 8 + step) * 64 + 32 * half));
                const __m256i w = _mm256_and_si256(h == 0 ? v : _mm256_srli_epi16(v, 4), m4);
                H[half] = _mm256_add_epi16(H[half], _mm256_maddubs_epi16(w, hi));
                L16[half] = _mm256_add_epi16(L16[half], _mm256_maddubs_epi16(lo, w));
                keep_summed(H[half]);
                keep_summed(L16[half]);
              }
            }
            for (int half = 0; half < 2; ++half) L[half] = _mm256_add_epi32(L[half], _mm256_madd_epi16(L16[half], ones));
          }
          for (int half = 0; half < 2; ++half) {
            const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 16 * half)));
            const __m256 dmin = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 32 + 16 * half)));
            const __m256i P = _mm256_add_epi32(_mm256_add_epi32(_mm256_madd_epi16(H[half], by256), L[half]),
                                               _mm256_set1_epi32(act.corr4[sg]));
            const __m256 dw = _mm256_mul_ps(d, bytes_as_floats(blk + 64 + 16 * s + 8 * half));
            const __m256 coef = _mm256_mul_ps(dw, _mm256_set1_ps(a.d[sg]));
            acc[half][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(P), coef, acc[half][h]);
            const __m256 mc = _mm256_fmsub_ps(_mm256_set1_ps(8.0f), dw,
                                              _mm256_mul_ps(dmin, bytes_as_floats(blk + 192 + 16 * s + 8 * half)));
            macc[half][s] = _mm256_fmadd_ps(mc, _mm256_set1_ps(a.sx32[sg]), macc[half][s]);
          }
        }
      }
    }
    for (int half = 0; half < 2; ++half) {
      const int64_t r0 = g * kRows16 + 8 * half, left = n_rows - r0;
      if (left <= 0) break;
      float* out_rows = y + (r0 - g0 * kRows16);
      // hsum8 of the min lanes, vertically: ((m0 + m4) + (m2 + m6)) + ((m1 + m5) + (m3 + m7)).
      const __m256* m = macc[half];
      const __m256 s0 = _mm256_add_ps(m[0], m[4]), s1 = _mm256_add_ps(m[1], m[5]);
      const __m256 s2 = _mm256_add_ps(m[2], m[6]), s3 = _mm256_add_ps(m[3], m[7]);
      const __m256 mins = _mm256_add_ps(_mm256_add_ps(s0, s2), _mm256_add_ps(s1, s3));
      const __m256 out = _mm256_add_ps(_mm256_add_ps(acc[half][0], acc[half][1]), mins);
      store_rows(out_rows, left, out);
    }
  }
}

// Q6_K: the weights (0..63) are the unsigned operand against the high bytes: a pair is at most
// 2 * 63 * 128 = 16128, so two steps fit in int16 (32256); against the low bytes they are the
// signed operand: a pair reaches 2 * 255 * 63 = 32130, so each step is widened on its own.
// Sub-block by sub-block in order (s = 8n + 2j + e: half n, step group e, the j-th of a step's four
// weight vectors), so acc[half][e] sees its sub-blocks in the AVX-512 kernel's order; one
// sub-block at a time keeps its sums and both halves' accumulators in registers, at the price of
// loading a step's ql and qh bytes again for each of the sub-blocks that share them (from L1).
// Each super-block asks for the next one's activation bytes into L1 (prefetch_next_block).
void q6k_rows16_avx2(const uint8_t* packed, int64_t n_rows, int64_t n_in, const ActRow& a, const Rows16Act& act,
                     float* y, int64_t g0, int64_t g1) {
  const int64_t n_sb = n_in / 256;
  const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
  const __m256i ones = _mm256_set1_epi16(1), by256 = _mm256_set1_epi16(256);
  const size_t ahead = stream_ahead();
  for (int64_t g = g0; g < g1; ++g) {
    __m256 acc[2][2];  // [half][e]
    for (auto& half : acc) half[0] = half[1] = _mm256_setzero_ps();
    for (int64_t i = 0; i < n_sb; ++i) {
      // A half's rows begin 16 bytes on in d, 8 in the scales, 32 in the ql and qh vectors.
      const uint8_t* blk = packed + static_cast<size_t>(g * n_sb + i) * kQ6KGroupBlock;
      prefetch_stream(blk, ahead, kQ6KGroupBlock);
      prefetch_next_block(act.hi, act.lo, i, n_sb);
#pragma GCC unroll 1
      for (int n = 0; n < 2; ++n) {
#pragma GCC unroll 4
        for (int j = 0; j < 4; ++j) {
#pragma GCC unroll 2
          for (int e = 0; e < 2; ++e) {
            const int s = 8 * n + 2 * j + e;
            const int64_t sg = 16 * i + s;
            __m256i P[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};  // int32
#pragma GCC unroll 2
            for (int two = 0; two < 2; ++two) {
              __m256i H16[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
#pragma GCC unroll 2
              for (int step = 4 * e + 2 * two; step < 4 * e + 2 * two + 2; ++step) {
                const int64_t k = 16 * sg + 4 * (step - 4 * e);
                const __m256i hi = bcast4(act.hi + k), lo = bcast4(act.lo + k);
                const uint8_t* v = blk + kQ6KQs + (n * 8 + step) * 192;
                for (int half = 0; half < 2; ++half) {
                  const __m256i ql = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(v + 64 * (j % 2) + 32 * half));
                  const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(v + 128 + 32 * half));
                  // The two bits of qh above sub-block j's nibbles moved to bits 4-5; 16-bit
                  // shifts move bits across bytes only outside the masks.
                  const __m256i qh_bits = j == 0   ? _mm256_slli_epi16(qh, 4)
                                          : j == 1 ? _mm256_slli_epi16(qh, 2)
                                          : j == 2 ? qh
                                                   : _mm256_srli_epi16(qh, 2);
                  const __m256i w = _mm256_or_si256(_mm256_and_si256(j < 2 ? ql : _mm256_srli_epi16(ql, 4), m4),
                                                    _mm256_and_si256(qh_bits, m30));
                  H16[half] = _mm256_add_epi16(H16[half], _mm256_maddubs_epi16(w, hi));
                  P[half] = _mm256_add_epi32(P[half], _mm256_madd_epi16(_mm256_maddubs_epi16(lo, w), ones));
                  keep_summed(H16[half]);
                  keep_summed(P[half]);
                }
              }
              for (int half = 0; half < 2; ++half) {
                P[half] = _mm256_add_epi32(P[half], _mm256_madd_epi16(H16[half], by256));
              }
            }
            for (int half = 0; half < 2; ++half) {
              const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 16 * half)));
              const __m128i sc8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(blk + 32 + 16 * s + 8 * half));
              const __m256 sc = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(sc8));
              const __m256 coef = _mm256_mul_ps(_mm256_mul_ps(d, sc), _mm256_set1_ps(a.d[sg / 2]));
              const __m256i Pc = _mm256_add_epi32(P[half], _mm256_set1_epi32(act.corr6[sg]));
              acc[half][e] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(Pc), coef, acc[half][e]);
            }
          }
        }
      }
    }
    for (int half = 0; half < 2; ++half) {
      const int64_t r0 = g * kRows16 + 8 * half, left = n_rows - r0;
      if (left <= 0) break;
      float* out_rows = y + (r0 - g0 * kRows16);
      const __m256 out = _mm256_add_ps(acc[half][0], acc[half][1]);
      store_rows(out_rows, left, out);
    }
  }
}

}  // namespace plumb::cpu::detail
