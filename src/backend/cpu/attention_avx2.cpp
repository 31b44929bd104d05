// AVX2 + FMA + F16C version of attention_kernels.h: the same arithmetic, tiled. The cached keys
// and values of the KV head are converted to f32 once (keys transposed to [d][key] in blocks of
// kBlock) and kept in the scratch for the next tiles of the same head (a one-token tile converts
// block by block instead). For a tile of query rows (consecutive tokens x the query heads of one
// KV head):
//   1. scores: every group of 4 rows against 16 keys at a time (8 accumulators; each lane is one
//      key's fma-chain over d, as the scalar code);
//   2. softmax per row and chunk of kAttentionChunk keys: max, exp_f32 lanes, the double sum in
//      the scalar code's 8 partials; then the chunks' factors and the row's sum;
//   3. values, chunk by chunk: 4 rows x 16 dims of registers per key (each lane one dim's
//      fma-chain over the chunk's keys, in key order), each chunk folded into the row's total.
// Steps 1 to 3 are the AttentionTileOps of attention_tiles.h: this file's, or the AVX-512 ones
// (attention_avx512.cpp) with the same driver.
#include <immintrin.h>

#include <algorithm>
#include <limits>

#include "backend/cpu/attention_kernels.h"
#include "backend/cpu/attention_tiles.h"
#include "quant/ref.h"
#include "util/exp_f32_avx2.h"
#include "util/partial_sums.h"

namespace plumb::cpu {

namespace {

using detail::AttentionTileOps;
constexpr int64_t kBlock = detail::kAttentionBlock;  // keys (values) converted at a time; a multiple of 32
constexpr int64_t kRows = detail::kAttentionRows;
constexpr int64_t kChunk = kAttentionChunk;
static_assert(kChunk % kBlock == 0, "a chunk is whole blocks of keys");

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// 8 consecutive cache elements as f32.
__m256 load8(const void* base, bool f16, int64_t offset) {
  if (f16) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(base) + offset)));
  }
  return _mm256_loadu_ps(static_cast<const float*>(base) + offset);
}

float load1(const void* base, bool f16, int64_t offset) {
  if (f16) return fp16_to_fp32(static_cast<const uint16_t*>(base)[offset]);
  return static_cast<const float*>(base)[offset];
}

// In-register 8 x 8 transpose: r[i] = row i -> r[i] = column i.
void transpose8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

// keys [hd][kBlock] = K rows p0 .. p0+n (transposed, f32), zero past n.
void load_keys(const AttentionTile& a, int64_t p0, int64_t n, float* keys) {
  const int64_t hd = a.head_dim_k;
  for (int64_t j = 0; j < kBlock; j += 8) {
    const int64_t valid = std::clamp<int64_t>(n - j, 0, 8);
    const int64_t row0 = (p0 + j) * a.k_stride;
    int64_t d = 0;
    for (; d + 8 <= hd; d += 8) {
      __m256 r[8];
      if (valid == 8) {
        for (int64_t i = 0; i < 8; ++i) r[i] = load8(a.k, a.f16, row0 + i * a.k_stride + d);
      } else {
        for (int64_t i = 0; i < 8; ++i) r[i] = i < valid ? load8(a.k, a.f16, row0 + i * a.k_stride + d) : _mm256_setzero_ps();
      }
      transpose8(r);
      for (int64_t i = 0; i < 8; ++i) _mm256_storeu_ps(keys + (d + i) * kBlock + j, r[i]);
    }
    for (; d < hd; ++d) {
      for (int64_t i = 0; i < 8; ++i) keys[d * kBlock + j + i] = i < valid ? load1(a.k, a.f16, row0 + i * a.k_stride + d) : 0.0f;
    }
  }
}

// values [n][width] = V rows p0 .. p0+n as f32, columns past head_dim_v zero.
void load_values(const AttentionTile& a, int64_t p0, int64_t n, int64_t width, float* values) {
  const int64_t hd = a.head_dim_v;
  for (int64_t i = 0; i < n; ++i) {
    float* row = values + i * width;
    const int64_t base = (p0 + i) * a.v_stride;
    int64_t d = 0;
    for (; d + 8 <= hd; d += 8) _mm256_storeu_ps(row + d, load8(a.v, a.f16, base + d));
    for (; d < hd; ++d) row[d] = load1(a.v, a.f16, base + d);
    for (; d < width; ++d) row[d] = 0.0f;
  }
}

// Scores of `nr` (1..4) rows against 16 keys of the block: s[i][k] = scale * fma-chain(q_i, key k).
// Inlined into the table's functions below: compiled on their own, GCC kept these register tiles
// in memory (a store per fma: prompts of 512 tokens 20 % slower).
template <int NR>
[[gnu::always_inline]] inline void score_16(const float* const* q, const float* keys, int64_t hd, float scale,
                                            float* const* s) {
  __m256 acc[NR][2];
  for (int i = 0; i < NR; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  for (int64_t d = 0; d < hd; ++d) {
    const __m256 k0 = _mm256_loadu_ps(keys + d * kBlock);
    const __m256 k1 = _mm256_loadu_ps(keys + d * kBlock + 8);
    for (int i = 0; i < NR; ++i) {
      const __m256 qd = _mm256_broadcast_ss(q[i] + d);
      acc[i][0] = _mm256_fmadd_ps(qd, k0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(qd, k1, acc[i][1]);
    }
  }
  const __m256 sc = _mm256_set1_ps(scale);
  for (int i = 0; i < NR; ++i) {
    _mm256_storeu_ps(s[i], _mm256_mul_ps(acc[i][0], sc));
    _mm256_storeu_ps(s[i] + 8, _mm256_mul_ps(acc[i][1], sc));
  }
}

// acc_i[d0 .. d0+8*NV) += e_i[p] * values[p - vbase][d0 ..] for p in [p0, p1) in order, NR rows.
template <int NR, int NV>
[[gnu::always_inline]] inline void accumulate(const float* const* e, float* const* acc, const float* values,
                                              int64_t width, int64_t vbase, int64_t p0, int64_t p1, int64_t d0) {
  __m256 r[NR][NV];
  for (int i = 0; i < NR; ++i) {
    for (int u = 0; u < NV; ++u) r[i][u] = _mm256_loadu_ps(acc[i] + d0 + 8 * u);
  }
  for (int64_t p = p0; p < p1; ++p) {
    const float* vrow = values + (p - vbase) * width + d0;
    __m256 vv[NV];
    for (int u = 0; u < NV; ++u) vv[u] = _mm256_loadu_ps(vrow + 8 * u);
    for (int i = 0; i < NR; ++i) {
      const __m256 w = _mm256_broadcast_ss(e[i] + p);
      for (int u = 0; u < NV; ++u) r[i][u] = _mm256_fmadd_ps(w, vv[u], r[i][u]);
    }
  }
  for (int i = 0; i < NR; ++i) {
    for (int u = 0; u < NV; ++u) _mm256_storeu_ps(acc[i] + d0 + 8 * u, r[i][u]);
  }
}

template <int NR>
[[gnu::always_inline]] inline void accumulate_rows(const float* const* e, float* const* acc, const float* values,
                                                   int64_t width, int64_t vbase, int64_t p0, int64_t p1) {
  if (p0 >= p1) return;
  int64_t d = 0;
  for (; d + 16 <= width; d += 16) accumulate<NR, 2>(e, acc, values, width, vbase, p0, p1, d);
  if (d < width) accumulate<NR, 1>(e, acc, values, width, vbase, p0, p1, d);
}

// AttentionTileOps::scores: 16 keys at a time.
void scores_block(const float* const* q, int64_t nr, const float* keys, int64_t hd, float scale, float* const* s,
                  int64_t n) {
  for (int64_t j = 0; j < n; j += 16) {
    float* sj[kRows];
    for (int64_t i = 0; i < nr; ++i) sj[i] = s[i] + j;
    switch (nr) {
      case 4: score_16<4>(q, keys + j, hd, scale, sj); break;
      case 3: score_16<3>(q, keys + j, hd, scale, sj); break;
      case 2: score_16<2>(q, keys + j, hd, scale, sj); break;
      default: score_16<1>(q, keys + j, hd, scale, sj); break;
    }
  }
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

// Softmax of one chunk of n scores in place (probabilities, unnormalised); returns the double
// sum, *max the chunk's maximum.
double softmax_row(float* s, int64_t n, float* max) {
  const __m256 neg_inf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  auto tail_mask = [&](int64_t valid) {
    return _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(valid)), lane));
  };
  __m256 mv = neg_inf;
  int64_t p = 0;
  for (; p + 8 <= n; p += 8) mv = _mm256_max_ps(mv, _mm256_loadu_ps(s + p));
  if (p < n) mv = _mm256_max_ps(mv, _mm256_blendv_ps(neg_inf, _mm256_loadu_ps(s + p), tail_mask(n - p)));
  __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mv), _mm256_extractf128_ps(mv, 1));
  m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
  *max = _mm_cvtss_f32(m4);
  const __m256 m = _mm256_broadcastss_ps(m4);

  __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
  for (p = 0; p < n; p += 8) {
    __m256 e = exp_f32_avx2(_mm256_sub_ps(_mm256_loadu_ps(s + p), m));
    if (n - p < 8) e = _mm256_and_ps(e, tail_mask(n - p));  // zero past the row: adds 0 to its partial
    _mm256_storeu_ps(s + p, e);
    lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
    hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
  }
  alignas(32) double partial[8];
  _mm256_store_pd(partial, lo);
  _mm256_store_pd(partial + 4, hi);
  return combine_partial_sums(partial);
}

// Makes the scratch hold the first n cache rows of the tile's KV head as f32: keys in blocks of
// [hd][kBlock], values [row][width]. Rows converted for an earlier tile of the same head are
// kept (a partly converted block is converted again).
void convert_cache(const AttentionTile& a, int64_t n, int64_t width, AttentionScratch& scratch) {
  if (scratch.converted_k != a.k) {
    scratch.converted_k = a.k;
    scratch.converted = 0;
  }
  if (scratch.converted >= n) return;
  const int64_t first_block = scratch.converted / kBlock;
  const int64_t n_blocks = (n + kBlock - 1) / kBlock;
  scratch.keys.resize(static_cast<size_t>(n_blocks * a.head_dim_k * kBlock));
  scratch.values.resize(static_cast<size_t>(n_blocks * kBlock * width));
  for (int64_t b = first_block; b < n_blocks; ++b) {
    const int64_t p0 = b * kBlock;
    const int64_t count = std::min(kBlock, n - p0);
    load_keys(a, p0, count, scratch.keys.data() + b * a.head_dim_k * kBlock);
    load_values(a, p0, count, width, scratch.values.data() + p0 * width);
  }
  scratch.converted = n;
}

// The scores of a tile's rows against the block of keys at p0 (keys [head_dim_k][kBlock]; row
// r's at scores(r)[p - origin]), four rows at a time up to the positions the tile's last row
// sees (limit(r): those row r sees).
template <typename Query, typename Scores, typename Limit>
void score_rows(const AttentionTileOps& ops, const AttentionTile& a, int64_t rows, Query query, Scores scores,
                Limit limit, const float* keys, int64_t p0, int64_t origin) {
  for (int64_t r0 = 0; r0 < rows; r0 += kRows) {
    const int64_t nr = std::min(kRows, rows - r0);
    const int64_t end = std::min(p0 + kBlock, limit(r0 + nr - 1));  // the tile's last row sees the most
    if (end <= p0) continue;
    const float* q[kRows];
    float* s[kRows];
    for (int64_t i = 0; i < nr; ++i) {
      q[i] = query(r0 + i);
      s[i] = scores(r0 + i) + (p0 - origin);
    }
    ops.scores(q, nr, keys, a.head_dim_k, a.scale, s, end - p0);
  }
}

// The value chains of a tile's rows over positions [p0, p1) (row p of `values` at (p - vbase) *
// width; row r's probabilities at scores(r)[p - origin]): the rows of a register tile share the
// positions all of them see (limit(r): those row r sees), then each row takes its own rest, so
// every chain runs over its positions in ascending order.
template <typename Scores, typename Acc, typename Limit>
void value_chains(const AttentionTileOps& ops, int64_t rows, Scores scores, Acc acc, Limit limit, const float* values,
                  int64_t width, int64_t vbase, int64_t p0, int64_t p1, int64_t origin) {
  for (int64_t r0 = 0; r0 < rows; r0 += kRows) {
    const int64_t nr = std::min(kRows, rows - r0);
    const float* e[kRows];
    float* ac[kRows];
    for (int64_t i = 0; i < nr; ++i) {
      e[i] = scores(r0 + i);
      ac[i] = acc(r0 + i);
    }
    const int64_t shared_end = std::max(p0, std::min(p1, limit(r0)));
    if (p0 < shared_end) ops.accumulate(e, ac, nr, values, width, vbase - origin, p0 - origin, shared_end - origin);
    for (int64_t i = 0; i < nr; ++i) {
      const int64_t end = std::min(p1, limit(r0 + i));
      if (shared_end < end) {
        ops.accumulate(e + i, ac + i, 1, values, width, vbase - origin, shared_end - origin, end - origin);
      }
    }
  }
}

}  // namespace

namespace detail {

void attend_tiled(const AttentionTile& a, AttentionScratch& scratch, const AttentionTileOps& ops) {
  const int64_t rows = a.n_tokens * a.group;
  const int64_t n_kv_max = a.n_kv0 + a.n_tokens - 1;
  const int64_t stride = round_up(n_kv_max, kBlock);  // score rows hold whole blocks (and 16-key groups)
  const int64_t width = round_up(a.head_dim_v, 8);
  scratch.scores.resize(static_cast<size_t>(rows * stride));
  scratch.acc.assign(static_cast<size_t>(rows * width), 0.0f);
  scratch.sums.resize(static_cast<size_t>(rows));
  // A tile of several tokens keeps the f32 copy of the head's cache for the next tiles of the
  // head; a generation step (one token) converts a block at a time, which stays in L1.
  const bool keep = a.n_tokens > 1;
  if (keep) {
    convert_cache(a, n_kv_max, width, scratch);
  } else {
    scratch.block.resize(static_cast<size_t>(std::max(a.head_dim_k, width) * kBlock));
  }
  auto limit = [&](int64_t r) { return a.n_kv0 + r / a.group; };  // cache rows seen by row r
  auto query = [&](int64_t r) { return a.q + (r / a.group) * a.q_stride + (r % a.group) * a.head_dim_k; };
  auto scores = [&](int64_t r) { return scratch.scores.data() + r * stride; };
  auto acc = [&](int64_t r) { return scratch.acc.data() + r * width; };

  // 1. Scores.
  for (int64_t p0 = 0; p0 < n_kv_max; p0 += kBlock) {
    const float* keys = scratch.block.data();
    if (keep) {
      keys = scratch.keys.data() + (p0 / kBlock) * a.head_dim_k * kBlock;
    } else {
      load_keys(a, p0, std::min(kBlock, n_kv_max - p0), scratch.block.data());
    }
    score_rows(ops, a, rows, query, scores, limit, keys, p0, 0);
  }

  // 2. Softmax of every row, chunk by chunk, over the keys it sees; then the chunks' factors
  // f_c (in chunk_max, over m_c) and the row's sum.
  const int64_t max_chunks = (n_kv_max + kChunk - 1) / kChunk;
  scratch.chunk_max.resize(static_cast<size_t>(rows * max_chunks));
  scratch.chunk_sums.resize(static_cast<size_t>(rows * max_chunks));
  for (int64_t r = 0; r < rows; ++r) {
    float* f = scratch.chunk_max.data() + r * max_chunks;
    double* sums = scratch.chunk_sums.data() + r * max_chunks;
    const int64_t chunks = (limit(r) + kChunk - 1) / kChunk;
    for (int64_t c = 0; c < chunks; ++c) {
      sums[c] = ops.softmax(scores(r) + c * kChunk, std::min(kChunk, limit(r) - c * kChunk), &f[c]);
    }
    scratch.sums[static_cast<size_t>(r)] = fold_chunk_sums(f, sums, chunks);
  }

  // 3. Values, chunk by chunk (value_chains); at the end of a chunk each row that has it folds its
  // chains into the total.
  scratch.total.resize(static_cast<size_t>(rows * width));
  for (int64_t c = 0; c < max_chunks; ++c) {
    const int64_t c0 = c * kChunk, c1 = std::min(c0 + kChunk, n_kv_max);
    for (int64_t r = 0; r < rows; ++r) {
      if (limit(r) > c0) std::fill(acc(r), acc(r) + width, 0.0f);
    }
    for (int64_t p0 = c0; p0 < c1; p0 += kBlock) {
      const int64_t p1 = std::min(p0 + kBlock, c1);
      const float* values = scratch.values.data();  // row p at values + (p - vbase) * width
      int64_t vbase = 0;
      if (!keep) {
        load_values(a, p0, p1 - p0, width, scratch.block.data());
        values = scratch.block.data();
        vbase = p0;
      }
      value_chains(ops, rows, scores, acc, limit, values, width, vbase, p0, p1, 0);
    }
    for (int64_t r = 0; r < rows; ++r) {
      if (limit(r) <= c0) continue;
      fold_chunk_chains(scratch.total.data() + r * width, acc(r),
                        scratch.chunk_max[static_cast<size_t>(r * max_chunks + c)], c == 0, width);
    }
  }

  for (int64_t r = 0; r < rows; ++r) {
    const float inv_sum = static_cast<float>(1.0 / scratch.sums[static_cast<size_t>(r)]);
    float* out = a.out + (r / a.group) * a.out_stride + (r % a.group) * a.head_dim_v;
    const float* tr = scratch.total.data() + r * width;
    int64_t d = 0;
    const __m256 inv = _mm256_set1_ps(inv_sum);
    for (; d + 8 <= a.head_dim_v; d += 8) _mm256_storeu_ps(out + d, _mm256_mul_ps(_mm256_loadu_ps(tr + d), inv));
    for (; d < a.head_dim_v; ++d) out[d] = tr[d] * inv_sum;
  }
}

// attention_kernels.h's attend_chunk() with the given inner loops: the steps of attend_tiled over
// the chunk's positions alone, cache blocks converted as they come.
void attend_tiled_chunk(const AttentionTile& a, int64_t c, AttentionScratch& scratch, const AttentionTileOps& ops,
                        const ChunkParts& out) {
  const int64_t rows = a.n_tokens * a.group;
  const int64_t c0 = c * kChunk, c1 = std::min(c0 + kChunk, a.n_kv0 + a.n_tokens - 1);
  if (c1 <= c0) return;
  const int64_t width = round_up(a.head_dim_v, 8);
  scratch.scores.resize(static_cast<size_t>(rows * kChunk));
  scratch.acc.assign(static_cast<size_t>(rows * width), 0.0f);
  scratch.block.resize(static_cast<size_t>(std::max(a.head_dim_k, width) * kBlock));
  auto limit = [&](int64_t r) { return a.n_kv0 + r / a.group; };
  auto query = [&](int64_t r) { return a.q + (r / a.group) * a.q_stride + (r % a.group) * a.head_dim_k; };
  auto scores = [&](int64_t r) { return scratch.scores.data() + r * kChunk; };  // position c0 + i at [i]
  auto acc = [&](int64_t r) { return scratch.acc.data() + r * width; };

  for (int64_t p0 = c0; p0 < c1; p0 += kBlock) {
    load_keys(a, p0, std::min(kBlock, c1 - p0), scratch.block.data());
    score_rows(ops, a, rows, query, scores, limit, scratch.block.data(), p0, c0);  // scores from c0
  }
  for (int64_t r = 0; r < rows; ++r) {
    if (limit(r) > c0) out.sum[r] = ops.softmax(scores(r), std::min(kChunk, limit(r) - c0), &out.max[r]);
  }
  for (int64_t p0 = c0; p0 < c1; p0 += kBlock) {
    const int64_t p1 = std::min(p0 + kBlock, c1);
    load_values(a, p0, p1 - p0, width, scratch.block.data());
    value_chains(ops, rows, scores, acc, limit, scratch.block.data(), width, p0, p0, p1, c0);  // scores from c0
  }
  for (int64_t r = 0; r < rows; ++r) {
    if (limit(r) > c0) std::copy(acc(r), acc(r) + a.head_dim_v, out.chains + r * out.chains_stride);
  }
}

}  // namespace detail

namespace {

void to_f16(const float* x, uint16_t* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  for (; i < n; ++i) y[i] = fp32_to_fp16(x[i]);
}

void attend(const AttentionTile& a, AttentionScratch& scratch) {
  detail::attend_tiled(a, scratch, detail::attention_tile_ops_avx2());
}

void attend_chunk(const AttentionTile& a, int64_t c, AttentionScratch& scratch, const ChunkParts& out) {
  detail::attend_tiled_chunk(a, c, scratch, detail::attention_tile_ops_avx2(), out);
}

}  // namespace

const detail::AttentionTileOps& detail::attention_tile_ops_avx2() {
  static const AttentionTileOps ops{scores_block, accumulate_block, softmax_row};
  return ops;
}

const AttentionKernels& attention_kernels_avx2() {
  static const AttentionKernels k{attend, attend_chunk, to_f16};
  return k;
}

}  // namespace plumb::cpu
