// Q4_K and Q6_K weights repacked for products of 1 to 3 tokens under contract S with 16 rows
// along the vector lanes (matmul_internal.h): no horizontal sums, 8-bit products on the weights'
// own bits. Products of these types follow contract S at every token count
// (ActivationBuffer::summed_for), so these kernels serve generated tokens and prompt runs of 1 to
// 3 tokens; the prompt kernels read the file's layout.
//
// Per group of 16 rows (the last padded with zero rows) and per 256-value super-block:
//   Q4_K, kQ4KGroupBlock bytes: the rows' d (16 f16), dmin (16 f16), the 6-bit scales decoded
//   to bytes [sub-block][row] (128), the mins likewise (128), then for each sub-block pair p and
//   step i (4 values) the 16 rows' qs bytes 32p + 4i .. 4i + 3, one 32-bit lane a row (2048): the
//   low nibbles of a step are 4 values of sub-block 2p, the high nibbles the same of 2p + 1.
//   Q6_K, kQ6KGroupBlock bytes: the rows' d (16 f16), the scales [sub-block][row] (256 int8),
//   32 zero bytes (so that the vectors below start on a cache line in every block: 64-byte loads
//   that straddle two lines cost a second access each),
//   then for each half n (128 values) and step i (4 values) three 64-byte vectors of 16 rows x
//   4 bytes, the file's ql[64n + 4i ..], ql[64n + 32 + 4i ..] and qh[32n + 4i ..] (3072): one
//   step gives 4 values of each of the sub-blocks 8n + (i >= 4) + {0, 2, 4, 6} (values 4i % 16 ..
//   of each), so steps 0-3 complete the even sub-blocks of the half and 4-7 the odd ones. Q4_K's
//   are the file's bytes and 3 % more; Q6_K's the file's and 1 % of padding.
#pragma once

#include <cstddef>
#include <cstdint>

#include "backend/cpu/matmul_internal.h"

namespace plumb::cpu::detail {

constexpr int64_t kRows16 = 16;
constexpr size_t kQ4KGroupBlock = 32 + 32 + 128 + 128 + 2048;
constexpr size_t kQ6KQs = 32 + 256 + 32;  // the vectors of a Q6_K block: 5 cache lines on
constexpr size_t kQ6KGroupBlock = kQ6KQs + 3072;

// Whether `type` has a layout here (Q4_K, Q6_K), and the lowest SIMD level with kernels for
// them (lower levels compute the same bits from the file's layout and need no copy).
bool has_rows16(TensorType type);
constexpr SimdLevel kRows16Level = SimdLevel::kAvx2;

int64_t rows16_groups(int64_t n_rows);
size_t rows16_bytes(TensorType type, int64_t n_rows, int64_t n_in);
// Groups [g0, g1) of dst (rows16_bytes in all) from src: n_rows rows of n_in values, row_bytes
// apart.
void rows16_repack(TensorType type, const uint8_t* src, size_t row_bytes, int64_t n_rows, int64_t n_in, uint8_t* dst,
                   int64_t g0, int64_t g1);

// One token's activations as the kernels read them: q split into a signed high and an unsigned
// low byte (q = 256 hi + lo), and the corrections for the weights' fixed offsets: per 32-value
// sub-block -8 times the sum of q (Q4_K), per 16 values -32 times it (Q6_K). Stored per token
// (rows16_split_bytes) by ActivationBuffer for products of fewer than kSummedMinTokens tokens.
struct Rows16Act {
  const int8_t* hi;
  const uint8_t* lo;
  const int32_t* corr4;  // [n_in / 32]
  const int32_t* corr6;  // [n_in / 16]
};
size_t rows16_split_bytes(int64_t n_in);  // a multiple of 64
void rows16_prepare(const ActRow& a, int64_t n_in, uint8_t* split);
// The same bytes with AVX2 (rows16_avx2.cpp), for CPUs at kRows16Level and above.
void rows16_prepare_avx2(const ActRow& a, int64_t n_in, uint8_t* split);
Rows16Act rows16_act(const uint8_t* split, int64_t n_in);

// y[r - 16 g0] for the rows r of groups [g0, g1) (r < n_rows), contract S bit for bit.
using Rows16Kernel = void (*)(const uint8_t* packed, int64_t n_rows, int64_t n_in, const ActRow& a,
                              const Rows16Act& act, float* y, int64_t g0, int64_t g1);
void q4k_rows16_avx512(const uint8_t* packed, int64_t n_rows, int64_t n_in, const ActRow& a, const Rows16Act& act,
                       float* y, int64_t g0, int64_t g1);
void q4k_rows16_avx2(const uint8_t* packed, int64_t n_rows, int64_t n_in, const ActRow& a, const Rows16Act& act,
                     float* y, int64_t g0, int64_t g1);
void q6k_rows16_avx512(const uint8_t* packed, int64_t n_rows, int64_t n_in, const ActRow& a, const Rows16Act& act,
                       float* y, int64_t g0, int64_t g1);
void q6k_rows16_avx2(const uint8_t* packed, int64_t n_rows, int64_t n_in, const ActRow& a, const Rows16Act& act,
                     float* y, int64_t g0, int64_t g1);

// Rows [r0, r1) of every token of x (fewer than kSummedMinTokens, prepared with their split) from
// w.rows16 through `kernel`: whole groups straight into y, the groups cut by r0 or r1 through a
// buffer of 16.
void rows16_rows(Rows16Kernel kernel, const WeightMatrix& w, const ActivationBuffer& x, float* y, int64_t ldy,
                 int64_t r0, int64_t r1);

}  // namespace plumb::cpu::detail
