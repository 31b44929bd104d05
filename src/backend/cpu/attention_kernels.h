// The inner loops of attention and of the F16 KV cache. Scalar versions (the contract) and
// AVX2/F16C/FMA versions (attention_avx2.cpp) that give the same bits, chosen once at run time.
//
// attend() computes one AttentionTile: the query rows of a run of consecutive tokens for the
// `group` query heads that share one KV head, against that head's cached keys and values. Per
// query row r (token t = r / group, head j = r % group), which sees the first L_r = n_kv0 + t
// cache rows (causal), in chunks c of positions [C c, min(L_r, C (c + 1))), C = kAttentionChunk
// (backend/attention_chunk.h), the arithmetic is, in this order:
//   s_p  = fma-chain over d of q[d] * k_p[d] (f32, d ascending, from 0), times scale;
//   per chunk c:
//     m_c   = max of its s_p;  e_p = exp_f32(s_p - m_c)  (util/exp_f32.h, < 1 ulp);
//     sum_c = sum of its e_p in double: eight partial sums (e_p goes to partial p % 8),
//             combined as util/partial_sums.h says;
//     a_c[d] = fma-chain over its p of e_p * v_p[d] (f32, p ascending, from 0);
//   m = max_c m_c;  f_c = exp_f32(m_c - m);
//   sum = sum_0 * f_0, then + sum_c * f_c for c = 1, 2, ... (double);
//   a[d] = a_0[d] * f_0, then fma(a_c[d], f_c, a[d]) for c = 1, 2, ... (f32);
//   out[d] = a[d] * float(1 / sum).
// A row of at most C positions is one chunk, f_0 = exp_f32(0) = 1 exactly: one softmax over the
// row and one fma chain over its positions.
// Exact softmax attention: f32 queries, scores and probabilities (no F16 rounding), no running
// rescale (each chunk's factor f_c is applied once, from the row's final maximum). A row's
// result depends only on its own query and the cache, not on the other rows of the tile, so
// tiling, threads and batch-vs-token-by-token give the same bits.
//
// The AVX2 version converts each cached K/V row (F16 -> f32, keys transposed) once per KV head
// and thread, keeps it for the following tiles of that head, and scores 4 rows x 16 keys of
// registers at a time; values likewise. The AVX-512 version is the same driver with 16-lane
// inner loops (attention_tiles.h).
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "backend/attention_chunk.h"

namespace plumb::cpu {

struct AttentionTile {
  const void* k = nullptr;  // K cache of the layer at the KV head: key p at k + p * k_stride elements
  const void* v = nullptr;  // V cache likewise, v_stride
  bool f16 = true;          // cache elements are F16 bits (uint16_t), else float
  int64_t k_stride = 0, v_stride = 0;
  int64_t head_dim_k = 0, head_dim_v = 0;
  float scale = 1.0f;
  const float* q = nullptr;  // query of token t, head j of the group: q + t * q_stride + j * head_dim_k
  int64_t q_stride = 0;
  float* out = nullptr;      // out + t * out_stride + j * head_dim_v
  int64_t out_stride = 0;
  int64_t group = 1;         // query heads per KV head
  int64_t n_tokens = 0;
  int64_t n_kv0 = 0;         // cache rows seen by token 0 (>= 1); token t sees n_kv0 + t
};

// Per-thread buffers of attend(), grown as needed and reused.
struct AttentionScratch {
  std::vector<float> scores;  // [rows][key stride]: scores, then probabilities
  std::vector<float> keys;    // the KV head's keys as f32, transposed in blocks: [block][head_dim_k][64]
  std::vector<float> values;  // its values as f32: [row][head_dim_v rounded up to 8]
  std::vector<float> acc;     // chunks' a_c: [rows][head_dim_v rounded up to 8] (scalar: [chunk][head_dim_v])
  std::vector<float> total;   // [rows][head_dim_v rounded up to 8]: a, the chunks combined so far
  std::vector<double> sums;   // [rows]
  std::vector<float> chunk_max;      // [rows][chunks]: m_c, then f_c
  std::vector<double> chunk_sums;    // [rows][chunks]: sum_c
  std::vector<float> block;   // one block of keys or values (generation steps)
  // keys/values hold the first `converted` cache rows of the KV head whose keys start at
  // converted_k, for the next tile of the same head. The caller sets converted_k = nullptr
  // whenever the cache may have changed since (every new attention call).
  const void* converted_k = nullptr;
  int64_t converted = 0;
};

// One chunk of attend()'s rows, for a task that takes part of the positions (a generation step's
// chunks spread over threads): for row r = t * group + j of the tile that sees chunk c (n_kv0 + t
// > C c), max[r] = m_c, sum[r] = sum_c and chains[r * chains_stride + d] = a_c[d], as attend()
// computes them before the fold; rows that do not see the chunk are left alone.
struct ChunkParts {
  float* max = nullptr;
  double* sum = nullptr;
  float* chains = nullptr;
  int64_t chains_stride = 0;
};

struct AttentionKernels {
  void (*attend)(const AttentionTile& tile, AttentionScratch& scratch);
  void (*attend_chunk)(const AttentionTile& tile, int64_t chunk, AttentionScratch& scratch, const ChunkParts& out);
  void (*to_f16)(const float* x, uint16_t* y, int64_t n);  // round to nearest even
};

// The contract's fold, one definition for every version and caller. fold_chunk_sums: the n
// chunks' maxima m become their factors f_c = exp_f32(m_c - max m) in place; returns
// sum_0 f_0 + sum_1 f_1 + ... in that order, in double. fold_chunk_chains: total = chains * f for
// the first chunk, then fma(chains, f, total).
double fold_chunk_sums(float* m, const double* sums, int64_t n);
inline void fold_chunk_chains(float* total, const float* chains, float f, bool first, int64_t n) {
  for (int64_t d = 0; d < n; ++d) total[d] = first ? chains[d] * f : std::fma(chains[d], f, total[d]);
}

const AttentionKernels& attention_kernels_scalar();
const AttentionKernels& attention_kernels_avx2();  // only call when the CPU has AVX2, FMA, F16C
const AttentionKernels& attention_kernels_avx512();  // only call when the CPU has AVX-512 F too
// The best of these at the matrix products' level (PLUMB_SIMD / PLUMB_NO_SIMD cap both).
const AttentionKernels& attention_kernels();

}  // namespace plumb::cpu
