// Q4_K weights repacked for one-token products under contract S with 16 rows along the vector
// lanes (matmul_internal.h): no horizontal sums, 8-bit products on the weights' own nibbles.
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

size_t q4k_rows16_bytes(int64_t n_rows, int64_t n_in);
// src: n_rows Q4_K rows of n_in values, row_bytes apart; dst: q4k_rows16_bytes of them.
void q4k_rows16_repack(const uint8_t* src, size_t row_bytes, int64_t n_rows, int64_t n_in, uint8_t* dst);
// One token's activations as the kernel reads them: q split into a signed high and an unsigned
// low byte (q = 256 hi + lo), and per 32-value sub-block -8 times the sum of q (Q4_K's offset).
struct Rows16Act {
  int8_t* hi;
  uint8_t* lo;
  int32_t* corr;
};
void q4k_rows16_prepare(const ActRow& a, int64_t n_in, const Rows16Act& out);
// y[r] for the rows of groups [g0, g1) (r < n_rows), contract S bit for bit.
void q4k_rows16_avx512(const uint8_t* packed, int64_t n_rows, int64_t n_in, const ActRow& a, const Rows16Act& act,
                       float* y, int64_t g0, int64_t g1);

}  // namespace plumb::cpu::detail
