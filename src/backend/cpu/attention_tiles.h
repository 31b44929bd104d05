// Private to the tiled attention: the inner loops of attention_avx2.cpp's tile driver, one table
// per instruction set (AVX2: 8 lanes, attention_avx2.cpp; AVX-512: 16, attention_avx512.cpp).
// Every lane of every version runs the contract's own fma chain (attention_kernels.h): a score is
// one key's chain over d, an output value one dim's chain over the keys in order. A wider vector
// only runs more of those chains at once, so every version gives the scalar contract's bits.
#pragma once

#include <cstdint>

#include "backend/cpu/attention_kernels.h"

namespace plumb::cpu::detail {

// Keys are converted to f32 and transposed in blocks of kAttentionBlock: [head_dim_k][64].
constexpr int64_t kAttentionBlock = 64;
// Query rows per register tile.
constexpr int64_t kAttentionRows = 4;

struct AttentionTileOps {
  // For nr (1..kAttentionRows) rows: s[i][j] = scale * fma-chain over d of q[i][d] * keys[d][j]
  // for the keys j in [0, n) of one block (n <= kAttentionBlock); may write up to n rounded up
  // to 32 (the block is zero-padded, score rows hold whole blocks).
  void (*scores)(const float* const* q, int64_t nr, const float* keys, int64_t hd, float scale, float* const* s,
                 int64_t n);
  // For nr rows: acc_i[0 .. width) += e_i[p] * values[(p - vbase) * width ..] for p in [p0, p1)
  // in ascending order (width a multiple of 8).
  void (*accumulate)(const float* const* e, float* const* acc, int64_t nr, const float* values, int64_t width,
                     int64_t vbase, int64_t p0, int64_t p1);
  // One chunk's n scores of a row (s 8-aligned in the row's positions) into unnormalised
  // probabilities exp_f32(s - max), in place (zeros up to the next multiple of 16 past n; the row
  // has room); *max = their maximum; returns their sum in the contract's 8 double partials.
  double (*softmax)(float* s, int64_t n, float* max);
};

const AttentionTileOps& attention_tile_ops_avx2();
const AttentionTileOps& attention_tile_ops_avx512();  // only on a CPU with AVX-512 F

// attention_kernels.h's attend() and attend_chunk() for AVX2 machines, with the given inner loops.
void attend_tiled(const AttentionTile& tile, AttentionScratch& scratch, const AttentionTileOps& ops);
void attend_tiled_chunk(const AttentionTile& tile, int64_t chunk, AttentionScratch& scratch,
                        const AttentionTileOps& ops, const ChunkParts& out);

}  // namespace plumb::cpu::detail
