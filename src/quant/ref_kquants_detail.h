// Internal to src/quant: the K-quant reference quantizers split in two phases, so a SIMD
// path can replace the expensive per-sub-block fits (make_qkx2_quants / make_qx_quants) and
// share the rest. Each finish_* takes the fitted sub-block scales (and mins) plus the fitted
// levels L, quantizes the scales, re-quantizes L against them and packs the block, exactly as
// ggml's quantize_row_qN_K_ref does after its fitting loop.
#pragma once

#include <cstdint>

#include "quant/blocks.h"

namespace plumb::kquant_detail {

// The 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K scales array (ggml's
// get_scale_min_k4), and their packing (into a zeroed array: set ORs the high bits in).
void get_scale_min_k4(int j, const uint8_t* q, uint8_t* sc, uint8_t* mn);
void set_scale_min_k4(int j, uint8_t ls, uint8_t lm, uint8_t* q);

// scales/mins: [16] (one per 16 elements); L: [256] levels in [0, 3]
void finish_q2_K(const float* x, const float* scales, const float* mins, uint8_t* L, block_q2_K* y);
// scales/mins: [8] (one per 32 elements); L: [256] levels in [0, 15] / [0, 31]
void finish_q4_K(const float* x, const float* scales, const float* mins, uint8_t* L, block_q4_K* y);
void finish_q5_K(const float* x, const float* scales, const float* mins, uint8_t* L, block_q5_K* y);
// scales: [16] signed; L: [256] levels in [0, 63] (offset by 32)
void finish_q6_K(const float* x, const float* scales, int8_t* L, block_q6_K* y);

}  // namespace plumb::kquant_detail
