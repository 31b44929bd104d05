// Q4_K weights repacked for one-token products under contract S with 16 rows along the vector
// lanes (matmul_internal.h): no horizontal sums, 8-bit products on the weights' own nibbles.
// Q4_K products follow contract S at every token count (ActivationBuffer::summed_for), so this
// kernel serves generated tokens and prompt runs of 1 to 3 tokens; the prompt kernels read the
// file's layout.
// Layout, per group of 16 rows (the last padded with zero rows) and per super-block, kGroupBlock
// bytes: the rows' d (16 f16), dmin (16 f16), the 6-bit scales decoded to bytes [sub-block][row]
// (128), the mins likewise (128), then for each sub-block pair p and step i (4 values) the 16
// rows' qs bytes 32p + 4i .. 4i + 3, one 32-bit lane a row (2048): so the low nibbles of a step
// are 4 values of sub-block 2p of 16 rows, the high nibbles the same of sub-block 2p + 1.
#pragma once

#include <cstddef>
#include <cstdint>

#include "backend/cpu/matmul_internal.h"

namespace plumb::cpu::detail {

constexpr int64_t kRows16 = 16;
constexpr size_t kGroupBlock = 32 + 32 + 128 + 128 + 2048;

int64_t q4k_rows16_groups(int64_t n_rows);
size_t q4k_rows16_bytes(int64_t n_rows, int64_t n_in);
// Groups [g0, g1) of dst (q4k_rows16_bytes in all) from src: n_rows Q4_K rows of n_in values,
// row_bytes apart.
void q4k_rows16_repack(const uint8_t* src, size_t row_bytes, int64_t n_rows, int64_t n_in, uint8_t* dst, int64_t g0,
                       int64_t g1);

// One token's activations as the kernel reads them: q split into a signed high and an unsigned
// low byte (q = 256 hi + lo), and per 32-value sub-block -8 times the sum of q (Q4_K's offset).
// Stored per token (rows16_split_bytes) by ActivationBuffer for products of fewer than
// kSummedMinTokens tokens.
struct Rows16Act {
  const int8_t* hi;
  const uint8_t* lo;
  const int32_t* corr;
};
size_t rows16_split_bytes(int64_t n_in);  // a multiple of 64
void q4k_rows16_prepare(const ActRow& a, int64_t n_in, uint8_t* split);
Rows16Act rows16_act(const uint8_t* split, int64_t n_in);

// The lowest SIMD level with a kernel below (lower levels compute the same bits from the file's
// layout and need no repacked copy).
SimdLevel q4k_rows16_level();

// y[r - 16 g0] for the rows r of groups [g0, g1) (r < n_rows), contract S bit for bit.
using Rows16Kernel = void (*)(const uint8_t* packed, int64_t n_rows, int64_t n_in, const ActRow& a,
                              const Rows16Act& act, float* y, int64_t g0, int64_t g1);
void q4k_rows16_avx512(const uint8_t* packed, int64_t n_rows, int64_t n_in, const ActRow& a, const Rows16Act& act,
                       float* y, int64_t g0, int64_t g1);
void q4k_rows16_avx2(const uint8_t* packed, int64_t n_rows, int64_t n_in, const ActRow& a, const Rows16Act& act,
                     float* y, int64_t g0, int64_t g1);

// Rows [r0, r1) of every token of x (fewer than kSummedMinTokens, prepared with their split) from
// w.rows16 through `kernel`: whole groups straight into y, the groups cut by r0 or r1 through a
// buffer of 16.
void q4k_rows16_rows(Rows16Kernel kernel, const WeightMatrix& w, const ActivationBuffer& x, float* y, int64_t ldy,
                     int64_t r0, int64_t r1);

}  // namespace plumb::cpu::detail
