// F32, F16 and BF16 weights whose rows are longer than kFloatBlockMinIn values, copied with the
// rows cut into blocks of kFloatBlock values and stored block after block, for the single-token
// product of the one-row-at-a-time kernels (detail::one_token_rows_one_at_a_time). A row's x of
// more than 16 KiB of F32 shares the 32 KiB L1 with the weight stream and falls out of it: one
// thread on Zen 4, Llama's 5632-wide down rows from memory, 15 GB/s against 22 for 2048-wide
// rows. Over the blocks, a thread reads block b of all its rows as one sequential stream while
// that block's 8 KiB of x stays in L1; each row's 16 lane sums are carried from block to block,
// so every lane's fma chain still runs over k in order: the contract's bits.
//
// Layout: block b holds values [b K, b K + n_b) of every row, n_b = min(K, n_in - b K), row r's
// piece at b K n_out + r n_b values from the start: each block is n_out contiguous pieces.
#pragma once

#include <cstddef>
#include <cstdint>

#include "backend/cpu/matmul_internal.h"
#include "quant/types.h"

namespace plumb::cpu::detail {

constexpr int64_t kFloatBlock = 2048;
constexpr int64_t kFloatBlockMinIn = 4096;
// The lowest SIMD level whose single-token kernel reads the copy.
constexpr SimdLevel kFloatBlocksLevel = SimdLevel::kAvx2;

// Whether the copy has a layout for `type` rows of n_in values (a float type, n_in above
// kFloatBlockMinIn), and its bytes (0 where it has none).
bool has_float_blocks(TensorType type, int64_t n_in);
size_t float_blocks_bytes(TensorType type, int64_t n_out, int64_t n_in);
// Rows [r0, r1) of dst from src: n_out rows of n_in values, row_bytes apart.
void float_blocks_repack(TensorType type, const uint8_t* src, size_t row_bytes, int64_t n_out, int64_t n_in,
                         uint8_t* dst, int64_t r0, int64_t r1);
// Where row r's piece of block b starts, in values from the copy's start (a function, not an
// inline one: the SIMD files that call it must not lend the rest their instantiation).
int64_t float_block_start(int64_t n_out, int64_t n_in, int64_t b, int64_t r);

}  // namespace plumb::cpu::detail
