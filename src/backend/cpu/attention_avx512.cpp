// The AVX-512 inner loops of the tiled attention (attention_tiles.h): the AVX2 driver's steps
// with 16 lanes, so twice the fma chains per instruction. Scores: 4 rows x 32 keys of registers
// (8 accumulators, as many as two FMA ports with 4 cycles of latency keep busy); values: 4 rows
// x 64 dims. Each lane is still one key's (one dim's) chain, in the contract's order. Softmax:
// exp_f32 on 16 lanes, the max in four independent chains (a maximum is exact in any order).
#include <immintrin.h>

#include "backend/cpu/gcc_avx512_diagnostics.h"

#include <limits>

#include "backend/cpu/attention_tiles.h"
#include "util/exp_f32_avx512.h"
#include "util/partial_sums.h"

namespace plumb::cpu {

namespace {

using detail::kAttentionBlock;
using detail::kAttentionRows;

// s[i][k] = scale * fma-chain(q_i, key k) for NV x 16 keys of the block, NR rows.
// The templates are inlined into the table's functions (attention_avx2.cpp says why).
template <int NR, int NV>
[[gnu::always_inline]] inline void score_keys(const float* const* q, const float* keys, int64_t hd, float scale,
                                              float* const* s, int64_t j) {
  __m512 acc[NR][NV];
  for (int i = 0; i < NR; ++i) {
    for (int u = 0; u < NV; ++u) acc[i][u] = _mm512_setzero_ps();
  }
  for (int64_t d = 0; d < hd; ++d) {
    __m512 k[NV];
    for (int u = 0; u < NV; ++u) k[u] = _mm512_loadu_ps(keys + d * kAttentionBlock + j + 16 * u);
    for (int i = 0; i < NR; ++i) {
      const __m512 qd = _mm512_set1_ps(q[i][d]);
      for (int u = 0; u < NV; ++u) acc[i][u] = _mm512_fmadd_ps(qd, k[u], acc[i][u]);
    }
  }
  const __m512 sc = _mm512_set1_ps(scale);
  for (int i = 0; i < NR; ++i) {
    for (int u = 0; u < NV; ++u) _mm512_storeu_ps(s[i] + j + 16 * u, _mm512_mul_ps(acc[i][u], sc));
  }
}

template <int NR>
[[gnu::always_inline]] inline void score_rows(const float* const* q, const float* keys, int64_t hd, float scale,
                                              float* const* s, int64_t n) {
  int64_t j = 0;
  for (; j + 16 < n; j += 32) score_keys<NR, 2>(q, keys, hd, scale, s, j);
  if (j < n) score_keys<NR, 1>(q, keys, hd, scale, s, j);
}

void scores_block(const float* const* q, int64_t nr, const float* keys, int64_t hd, float scale, float* const* s,
                  int64_t n) {
  switch (nr) {
    case 4: score_rows<4>(q, keys, hd, scale, s, n); break;
    case 3: score_rows<3>(q, keys, hd, scale, s, n); break;
    case 2: score_rows<2>(q, keys, hd, scale, s, n); break;
    default: score_rows<1>(q, keys, hd, scale, s, n); break;
  }
}

// acc_i[d0 ..] += e_i[p] * values[p - vbase][d0 ..] for p in [p0, p1) in order: NV vectors of V
// lanes (16: __m512, 8: __m256) per row, NR rows.
template <int NR, int NV, class Vec>
[[gnu::always_inline]] inline void accumulate(const float* const* e, float* const* acc, const float* values,
                                              int64_t width, int64_t vbase,
                int64_t p0, int64_t p1, int64_t d0) {
  constexpr bool kWide = sizeof(Vec) == 64;
  constexpr int kLanes = kWide ? 16 : 8;
  auto load = [](const float* p) {
    if constexpr (kWide) return _mm512_loadu_ps(p); else return _mm256_loadu_ps(p);
  };
  Vec r[NR][NV];
  for (int i = 0; i < NR; ++i) {
    for (int u = 0; u < NV; ++u) r[i][u] = load(acc[i] + d0 + kLanes * u);
  }
  for (int64_t p = p0; p < p1; ++p) {
    const float* vrow = values + (p - vbase) * width + d0;
    Vec vv[NV];
    for (int u = 0; u < NV; ++u) vv[u] = load(vrow + kLanes * u);
    for (int i = 0; i < NR; ++i) {
      if constexpr (kWide) {
        const __m512 w = _mm512_set1_ps(e[i][p]);
        for (int u = 0; u < NV; ++u) r[i][u] = _mm512_fmadd_ps(w, vv[u], r[i][u]);
      } else {
        const __m256 w = _mm256_set1_ps(e[i][p]);
        for (int u = 0; u < NV; ++u) r[i][u] = _mm256_fmadd_ps(w, vv[u], r[i][u]);
      }
    }
  }
  for (int i = 0; i < NR; ++i) {
    for (int u = 0; u < NV; ++u) {
      if constexpr (kWide) {
        _mm512_storeu_ps(acc[i] + d0 + kLanes * u, r[i][u]);
      } else {
        _mm256_storeu_ps(acc[i] + d0 + kLanes * u, r[i][u]);
      }
    }
  }
}

template <int NR>
[[gnu::always_inline]] inline void accumulate_rows(const float* const* e, float* const* acc, const float* values,
                                                   int64_t width, int64_t vbase,
                     int64_t p0, int64_t p1) {
  int64_t d = 0;
  for (; d + 64 <= width; d += 64) accumulate<NR, 4, __m512>(e, acc, values, width, vbase, p0, p1, d);
  if (d + 32 <= width) {
    accumulate<NR, 2, __m512>(e, acc, values, width, vbase, p0, p1, d);
    d += 32;
  }
  if (d + 16 <= width) {
    accumulate<NR, 1, __m512>(e, acc, values, width, vbase, p0, p1, d);
    d += 16;
  }
  if (d < width) accumulate<NR, 1, __m256>(e, acc, values, width, vbase, p0, p1, d);  // width is a multiple of 8
}

void accumulate_block(const float* const* e, float* const* acc, int64_t nr, const float* values, int64_t width,
                      int64_t vbase, int64_t p0, int64_t p1) {
  switch (nr) {
    case 4: accumulate_rows<4>(e, acc, values, width, vbase, p0, p1); break;
    case 3: accumulate_rows<3>(e, acc, values, width, vbase, p0, p1); break;
    case 2: accumulate_rows<2>(e, acc, values, width, vbase, p0, p1); break;
    default: accumulate_rows<1>(e, acc, values, width, vbase, p0, p1); break;
  }
}

static_assert(kAttentionRows == 4, "the switches above cover 1..4 rows");

__mmask16 first_lanes(int64_t n) { return n >= 16 ? __mmask16{0xFFFF} : static_cast<__mmask16>((1u << n) - 1); }

double softmax_row(float* s, int64_t n, float* max) {
  const __m512 neg_inf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __m512 m4[4] = {neg_inf, neg_inf, neg_inf, neg_inf};
  int64_t p = 0;
  for (; p + 64 <= n; p += 64) {
    for (int i = 0; i < 4; ++i) m4[i] = _mm512_max_ps(m4[i], _mm512_loadu_ps(s + p + 16 * i));
  }
  for (; p < n; p += 16) m4[0] = _mm512_max_ps(m4[0], _mm512_mask_loadu_ps(neg_inf, first_lanes(n - p), s + p));
  *max = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(m4[0], m4[1]), _mm512_max_ps(m4[2], m4[3])));
  const __m512 m = _mm512_set1_ps(*max);

  // Partial k takes e_p for p % 8 == k in ascending p: a vector's lanes 0-7, then its lanes 8-15.
  __m512d partials = _mm512_setzero_pd();
  for (p = 0; p < n; p += 16) {
    const __mmask16 k = first_lanes(n - p);
    const __m512 e = _mm512_maskz_mov_ps(k, exp_f32_avx512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, s + p), m)));
    _mm512_storeu_ps(s + p, e);
    partials = _mm512_add_pd(partials, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
    partials = _mm512_add_pd(partials, _mm512_cvtps_pd(_mm512_extractf32x8_ps(e, 1)));
  }
  alignas(64) double partial[8];
  _mm512_store_pd(partial, partials);
  return combine_partial_sums(partial);
}

void attend(const AttentionTile& a, AttentionScratch& scratch) {
  detail::attend_tiled(a, scratch, detail::attention_tile_ops_avx512());
}

void attend_chunk(const AttentionTile& a, int64_t c, AttentionScratch& scratch, const ChunkParts& out) {
  detail::attend_tiled_chunk(a, c, scratch, detail::attention_tile_ops_avx512(), out);
}

// The AVX2 store (the cache store is well under 0.1 % of a forward pass, bench --profile). A
// function, not the AVX2 table's entry read at run time, so that the table below is a constant:
// a guarded initialization would make this file emit a weak symbol (ctest SimdLinkage).
void to_f16(const float* x, uint16_t* y, int64_t n) { attention_kernels_avx2().to_f16(x, y, n); }

}  // namespace

const detail::AttentionTileOps& detail::attention_tile_ops_avx512() {
  static const AttentionTileOps ops{scores_block, accumulate_block, softmax_row};
  return ops;
}

const AttentionKernels& attention_kernels_avx512() {
  static const AttentionKernels k{attend, attend_chunk, to_f16};
  return k;
}

}  // namespace plumb::cpu
