// Private to the CPU matmul: the prepared-activation layout, the arithmetic contracts every
// kernel follows (so the scalar, AVX2, AVX-512 and AMX kernels agree bit for bit), and the kernel
// tables.
//
// Contract for quantized weights (one output y = W[r] . x[t]):
//   - Activations: per 32-element block b, d_a[b] = amax/32767 (f32 division), id = 1/d_a, and
//     q[k] = round_nearest_even(x[k] * id) as int16; sx16[2b], sx16[2b+1] hold the sums of the
//     ORIGINAL x over each 16-element half, summed in double in a fixed tree (lanes j = 0..3:
//     (x_j + x_{4+j}) + (x_{8+j} + x_{12+j}), then (v0 + v2) + (v1 + v3)) and rounded to f32;
//     sx32[b] = f32(half0 + half1) from the double halves. A block with NaN/Inf gets d_a = NaN.
//   - Weights: each block is split into sub-blocks of 16 or 32 elements that share one float
//     multiplier dw[s] (d, or d*scale for K-quants) and, for types with a min, mc[s] (+m or -dmin*m).
//     The integer weights w[k] include any fixed offset (q-8, q-16, q-32, q-4 ...).
//   - A sub-block contributes 8 integer lane partials: for 32 elements lane l sums the products of
//     elements {2l, 2l+1, 16+2l, 17+2l}; for 16 elements, of {2l, 2l+1} (exactly what two / one
//     _mm256_madd_epi16 give). Each partial is < 2^24 in magnitude, so converting it to float is exact.
//   - acc[s % 2][l] = fma(float(p_l), dw[s] * d_a[b(s)], acc[s % 2][l])  for every sub-block s
//     in order (two accumulator sets so consecutive sub-blocks do not wait on one fma chain);
//     macc[s % 8] = fma(mc[s], sx[s], macc[s % 8])  for every sub-block in order (min types);
//     y = hsum8(acc[0] + acc[1]) + hsum8(macc)  (hsum8 below; without a min term no macc).
// Contract S ("summed"; reference: scalar_summed_kernel): activations, weights, dw, mc and the
// min term as above, but a sub-block contributes ONE integer, the exact sum P_s of all its
// products (|P_s| < 2^31), and
//     acc[s % 2] = fma(float(P_s), dw[s] * d_a[b(s)], acc[s % 2])  (float(P_s) rounds to nearest
//     even once |P_s| >= 2^24), y = (acc[0] + acc[1]) + hsum8(macc).
// One rounding per sub-block instead of eight. With the tokens along the lanes it needs no
// horizontal sums (AVX2/AVX-512: a sub-block's activations in registers, each row's weights
// broadcast into vpmaddwd/vpdpwssd) and it is what a tile multiply (AMX) computes.
// Which contract: the one the activations were prepared for (ActivationBuffer::contract), chosen
// by each token's role and never by how many tokens share the product: contract S for a
// sequence's runs of kSummedMinTokens or more prompt tokens, the lane contract for generated
// tokens and shorter runs (the single-token kernels, where contract S would need horizontal sums:
// generation measured 30 % slower), at every level; except Q4_K and Q6_K weights, which follow
// contract S for every token (ActivationBuffer::summed_for): with 16 rows along the lanes
// (rows16.h) it needs no horizontal sums and takes fewer vector operations than the lane contract. So every
// level gives the same bits, a token's bits do not depend on the other sequences of a batch, and
// how a prompt is split into runs changes only the last bits.
// Contract for F32/F16/BF16 weights (activations stay F32): acc[k % 16] = fma(w[k], x[k], acc[k % 16])
//   over k in order, y = hsum8(acc[0..8) + acc[8..16)).
#pragma once

#include <cmath>
#include <cstdint>

#include "backend/cpu/matmul.h"

namespace plumb::cpu::detail {

constexpr int kActBlock = 32;
constexpr int64_t kSummedMinTokens = 4;  // contract S for prompt runs from this many tokens on
constexpr float kActQMax = 32767.0f;

// Offsets inside one token's prepared activations (all 32-byte aligned when n_in % 32 == 0).
struct ActLayout {
  int64_t n_in = 0;
  int64_t n_blocks = 0;    // n_in / 32
  size_t q_off = 0;        // int16 q[n_in]
  size_t d_off = 0;        // float d[n_blocks]
  size_t sx32_off = 0;     // float sx32[n_blocks]
  size_t sx16_off = 0;     // float sx16[2 * n_blocks]
  size_t stride = 0;       // bytes per token (multiple of 64)

  static ActLayout for_n_in(int64_t n_in);
};

// One token's prepared activations.
struct ActRow {
  const int16_t* q;
  const float* d;
  const float* sx32;
  const float* sx16;
};

inline ActRow act_row(const ActivationBuffer& x, const ActLayout& lay, int64_t t) {
  const uint8_t* base = x.data() + static_cast<size_t>(t) * lay.stride;
  return ActRow{reinterpret_cast<const int16_t*>(base + lay.q_off), reinterpret_cast<const float*>(base + lay.d_off),
                reinterpret_cast<const float*>(base + lay.sx32_off),
                reinterpret_cast<const float*>(base + lay.sx16_off)};
}

// The fixed reduction order of 8 lanes: the one _mm256 -> _mm -> scalar reduction performs.
inline float hsum8(const float a[8]) {
  const float s0 = a[0] + a[4], s1 = a[1] + a[5], s2 = a[2] + a[6], s3 = a[3] + a[7];
  const float t0 = s0 + s2, t1 = s1 + s3;
  return t0 + t1;
}

// Tokens per block of a float-weight product whose activations are rows of ldx floats: about
// block_bytes of them (so every group of rows reads the block from L2, not the whole prompt from
// L3), a multiple of `tile` tokens, at least one tile, at most n_tokens.
inline int64_t float_token_block(int64_t ldx, int64_t n_tokens, int64_t tile, int64_t block_bytes) {
  const int64_t tokens = block_bytes / (ldx * 4) / tile * tile;
  const int64_t block = tokens < tile ? tile : tokens;
  return block < n_tokens ? block : n_tokens;
}

// One token's activations into the prepared layout (scalar contract / AVX2, bit-identical).
void quantize_token(const float* x, const ActLayout& lay, uint8_t* out);
void quantize_token_avx2(const float* x, const ActLayout& lay, uint8_t* out);

// Computes rows [r0, r1) of y for every token of x.
using RowsKernel = void (*)(const WeightMatrix& w, const ActivationBuffer& x, float* y, int64_t ldy, int64_t r0,
                            int64_t r1);

// The reference (contract S from kSummedMinTokens tokens on for quantized weights, the lane
// contract below); nullptr when the type has no kernel (the caller reports it).
RowsKernel scalar_kernel(TensorType type);
// nullptr when there is no AVX2 kernel for the type (the scalar one is used).
RowsKernel avx2_kernel(TensorType type);
// The AVX2 single-token dot of one quantized row (n_blocks weight blocks) with one token, used
// for products of 1 to 3 tokens; nullptr for types without one. Exposed so tests check it directly.
using RowDot = float (*)(const uint8_t* row, int64_t n_blocks, const ActRow& a);
RowDot avx2_fused_row(TensorType type);

// nullptr when there is no AVX-512 kernel for the type (the AVX2 one is used). Products of 1 to
// 3 tokens run its single-token kernels (the lane contract), larger ones contract S (there is no
// separate entry point: tests reach both through these shapes).
RowsKernel avx512_kernel(TensorType type);

// The AMX kernel of a type with 32-element sub-blocks (as every kernel: contract S from
// kSummedMinTokens tokens on, the lane contract below); nullptr for other types (the AVX-512 one
// is used: tiles are no faster for 16-element sub-blocks) or when built without AMX support.
RowsKernel amx_kernel(TensorType type);
// Contract S at every token count, in scalar C++ (tests compare it with float64; nullptr for
// float types).
RowsKernel scalar_summed_kernel(TensorType type);

// The instruction sets the kernels come in, in order of preference.
enum class SimdLevel { kScalar = 0, kAvx2 = 1, kAvx512 = 2, kAmx = 3 };
// The best level this CPU runs (AMX needs AMX-TILE/INT8 on top of AVX-512; AVX-512 needs
// F/BW/VL/DQ/VNNI, AVX2 needs FMA and F16C).
SimdLevel cpu_simd_level();
// The level matmul uses: cpu_simd_level(), capped by PLUMB_NO_SIMD=1 (scalar) or
// PLUMB_SIMD=scalar|avx2|avx512|amx (decided once per process).
SimdLevel simd_level();
const char* simd_level_name(SimdLevel level);  // "scalar", "avx2", "avx512-vnni", "amx-int8"
// simd_level() is at least AVX2 (the activations are prepared with quantize_token_avx2).
bool simd_enabled();
// The kernel for `type` at `level` (capped at cpu_simd_level()): the best level at or below it
// that has a kernel for the type.
RowsKernel select_kernel(TensorType type, SimdLevel level);

// The part of a quantized row that multiplies the 16-bit activations, per element:
// eff[k] = dw[s(k)] * w[k] (the min/offset term uses exact activation sums). The activation
// rounding error of a product is sum_k eff[k] * e_k; tests use this to predict it. False for
// types without 16-bit activations.
bool effective_weights(TensorType type, const uint8_t* row, int64_t n_in, float* eff);

// Whether the weight type consumes 16-bit quantized activations (else plain F32).
bool uses_quantized_activations(TensorType type);

// How the single-token float kernels read a thread's rows: one row at a time (one sequential
// stream a thread, the faster on AMD: measured on Zen 4) or interleaved in groups (the faster on
// the Intel Xeons measured); the same bits either way. The CPU's vendor decides
// (PLUMB_ONE_TOKEN_ROWS=one or interleaved, for measuring); the tests set each in turn, so that
// both are checked on any machine.
enum class OneTokenRows { kByVendor, kOneAtATime, kInterleaved };
void set_one_token_rows(OneTokenRows rows);
bool one_token_rows_one_at_a_time();

// How far ahead (bytes; 0: not at all) a single token's products that read a thread's weights as
// one stream ask for its lines (simd_x86.h, stream_ahead); where they do, the AVX-512 F16 rows
// are taken two at a time (one stream, two chains; the same bits). 8 KiB on AMD CPUs other than
// Zen 4: on Zen 5 it took TinyLlama Q4_K_M generation from 21 to 34 GB/s at one thread and from 32
// to 39 at two, 4 and 16 KiB being slower; on Zen 4 (family 25 with AVX-512) the same made Q4_K_M
// generation 13-35 % and F16's 25-75 % slower (docs/PERFORMANCE.md, "Zen 5", "Zen 4"); the Intel
// Xeons were measured without it. PLUMB_STREAM_AHEAD=bytes overrides the choice (for
// measuring); set_stream_ahead too (the tests take both ways; -1: the CPU's choice again).
size_t stream_ahead_bytes();
void set_stream_ahead(int64_t bytes);

// How far ahead (bytes; 0: not at all) the single-token Q4_K kernels of repacked rows (rows16.h)
// ask for their group's lines into L2 (prefetcht1, simd_x86.h, stream_ahead_l2), beside
// stream_ahead's L1 requests. 8 KiB on Zen 4 (AMD family 25 with AVX-512): there the hardware
// prefetchers alone kept one core's Q4_K stream at 18-29 GB/s from memory against 24-37 with the
// lines asked for 8 KiB ahead into L2 (bench_matmul, one thread), while into L1 (prefetcht0) the
// same distance was slower than nothing, and Q6_K's kernel was slower with either (so it asks
// nothing); 4, 12 and 16 KiB gave less in the whole model. 0 elsewhere (not measured).
// PLUMB_STREAM_AHEAD_L2=bytes overrides the choice (for measuring); set_stream_ahead_l2 too (-1:
// the CPU's choice again). The bits are the same either way.
size_t stream_ahead_l2_bytes();
void set_stream_ahead_l2(int64_t bytes);

}  // namespace plumb::cpu::detail
