// The AVX-512 (VNNI) kernels of rows16.h: per 16 rows and sub-block, a vpdpbusd per 4 values for
// the high and one for the low activation bytes (broadcast to the rows' lanes) on the weights'
// own bits, P = 256 H + L + corr exact in int32, then the contract's fma per row.
#include <immintrin.h>

#include "backend/cpu/gcc_avx512_diagnostics.h"

#include "backend/cpu/rows16.h"
#include "backend/cpu/simd_x86.h"

namespace plumb::cpu::detail {
namespace {

inline __m512i bcast4(const void* p) {
  int32_t v;
  __builtin_memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}
inline __m512 bytes_as_floats(const uint8_t* p) {
  return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
}

}  // namespace

void q4k_rows16_avx512(const uint8_t* packed, int64_t n_rows, int64_t n_in, const ActRow& a, const Rows16Act& act,
                       float* y, int64_t g0, int64_t g1) {
  const int64_t n_sb = n_in / 256;
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  const size_t ahead = stream_ahead(), ahead_l2 = stream_ahead_l2();
  for (int64_t g = g0; g < g1; ++g) {
    __m512 acc[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
    __m512 macc[8];
    for (auto& m : macc) m = _mm512_setzero_ps();
    for (int64_t i = 0; i < n_sb; ++i) {
      const uint8_t* blk = packed + static_cast<size_t>(g * n_sb + i) * kQ4KGroupBlock;
      prefetch_stream(blk, ahead, kQ4KGroupBlock);
      prefetch_stream_l2(blk, ahead_l2, kQ4KGroupBlock);
      const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk)));
      const __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 32)));
#pragma GCC unroll 4
      for (int p = 0; p < 4; ++p) {
        __m512i H[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};
        __m512i L[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};
        const int64_t k0 = 256 * i + 64 * p;  // sub-block 2p; 2p + 1 is 32 values on
#pragma GCC unroll 8
        for (int step = 0; step < 8; ++step) {
          const __m512i v = _mm512_loadu_si512(blk + 320 + (p * 8 + step) * 64);
          const __m512i w[2] = {_mm512_and_si512(v, m4), _mm512_and_si512(_mm512_srli_epi16(v, 4), m4)};
          for (int h = 0; h < 2; ++h) {
            const int64_t k = k0 + 32 * h + 4 * step;
            H[h] = _mm512_dpbusd_epi32(H[h], w[h], bcast4(act.hi + k));
            L[h] = _mm512_dpbusd_epi32(L[h], bcast4(act.lo + k), w[h]);
          }
        }
        for (int h = 0; h < 2; ++h) {
          const int s = 2 * p + h;
          const int64_t sg = 8 * i + s;
          const __m512i P = _mm512_add_epi32(_mm512_add_epi32(_mm512_slli_epi32(H[h], 8), L[h]),
                                             _mm512_set1_epi32(act.corr4[sg]));
          const __m512 dw = _mm512_mul_ps(d, bytes_as_floats(blk + 64 + 16 * s));
          const __m512 coef = _mm512_mul_ps(dw, _mm512_set1_ps(a.d[sg]));
          acc[h] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(P), coef, acc[h]);
          const __m512 mc = _mm512_fmsub_ps(_mm512_set1_ps(8.0f), dw, _mm512_mul_ps(dmin, bytes_as_floats(blk + 192 + 16 * s)));
          macc[s] = _mm512_fmadd_ps(mc, _mm512_set1_ps(a.sx32[sg]), macc[s]);
        }
      }
    }
    // hsum8 of the min lanes, vertically: ((m0 + m4) + (m2 + m6)) + ((m1 + m5) + (m3 + m7)).
    const __m512 s0 = _mm512_add_ps(macc[0], macc[4]), s1 = _mm512_add_ps(macc[1], macc[5]);
    const __m512 s2 = _mm512_add_ps(macc[2], macc[6]), s3 = _mm512_add_ps(macc[3], macc[7]);
    const __m512 mins = _mm512_add_ps(_mm512_add_ps(s0, s2), _mm512_add_ps(s1, s3));
    const __m512 out = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), mins);
    const int64_t r0 = g * kRows16, left = n_rows - r0;
    const __mmask16 keep = left >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << left) - 1);
    _mm512_mask_storeu_ps(y + (g - g0) * kRows16, keep, out);
  }
}

// Q6_K: a step's three vectors give 4 values of four sub-blocks (the file's ql low nibbles, ql
// high nibbles, and the two bits of qh above each), so the even sub-blocks of a half are done
// after steps 0-3 and the odd ones after 4-7: acc[0] and acc[1] each see their sub-blocks in order.
// Each super-block asks for the next one's activation bytes into L1 (prefetch_next_block: Zen 4,
// TinyLlama Q4_K_M generation 3-6 % faster, whole model; the same for Q4_K's kernel measured
// within the noise, so it has none).
void q6k_rows16_avx512(const uint8_t* packed, int64_t n_rows, int64_t n_in, const ActRow& a, const Rows16Act& act,
                       float* y, int64_t g0, int64_t g1) {
  const int64_t n_sb = n_in / 256;
  const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
  const size_t ahead = stream_ahead();
  for (int64_t g = g0; g < g1; ++g) {
    __m512 acc[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
    for (int64_t i = 0; i < n_sb; ++i) {
      const uint8_t* blk = packed + static_cast<size_t>(g * n_sb + i) * kQ6KGroupBlock;
      prefetch_stream(blk, ahead, kQ6KGroupBlock);
      prefetch_next_block(act.hi, act.lo, i, n_sb);
      const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk)));
      for (int n = 0; n < 2; ++n) {
#pragma GCC unroll 2
        for (int e = 0; e < 2; ++e) {
          __m512i H[4], L[4];
          for (int j = 0; j < 4; ++j) H[j] = L[j] = _mm512_setzero_si512();
#pragma GCC unroll 4
          for (int step = 4 * e; step < 4 * e + 4; ++step) {
            const uint8_t* v = blk + kQ6KQs + (n * 8 + step) * 192;
            const __m512i qa = _mm512_loadu_si512(v), qb = _mm512_loadu_si512(v + 64), qh = _mm512_loadu_si512(v + 128);
            // 16-bit shifts move bits across bytes only outside the masks.
            const __m512i w[4] = {
                _mm512_or_si512(_mm512_and_si512(qa, m4), _mm512_and_si512(_mm512_slli_epi16(qh, 4), m30)),
                _mm512_or_si512(_mm512_and_si512(qb, m4), _mm512_and_si512(_mm512_slli_epi16(qh, 2), m30)),
                _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(qa, 4), m4), _mm512_and_si512(qh, m30)),
                _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(qb, 4), m4),
                                _mm512_and_si512(_mm512_srli_epi16(qh, 2), m30))};
            for (int j = 0; j < 4; ++j) {
              const int64_t k = 256 * i + 128 * n + 32 * j + 4 * step;
              H[j] = _mm512_dpbusd_epi32(H[j], w[j], bcast4(act.hi + k));
              L[j] = _mm512_dpbusd_epi32(L[j], bcast4(act.lo + k), w[j]);
            }
          }
          for (int j = 0; j < 4; ++j) {
            const int s = 8 * n + 2 * j + e;
            const int64_t sg = 16 * i + s;
            const __m512i P = _mm512_add_epi32(_mm512_add_epi32(_mm512_slli_epi32(H[j], 8), L[j]),
                                               _mm512_set1_epi32(act.corr6[sg]));
            const __m512 sc = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 32 + 16 * s))));
            const __m512 coef = _mm512_mul_ps(_mm512_mul_ps(d, sc), _mm512_set1_ps(a.d[sg / 2]));
            acc[e] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(P), coef, acc[e]);
          }
        }
      }
    }
    const int64_t r0 = g * kRows16, left = n_rows - r0;
    const __mmask16 keep = left >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << left) - 1);
    _mm512_mask_storeu_ps(y + (g - g0) * kRows16, keep, _mm512_add_ps(acc[0], acc[1]));
  }
}

}  // namespace plumb::cpu::detail
