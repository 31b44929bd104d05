// Scalar reference quantization and dequantization: the specification every fast path
// (SIMD, CUDA) is tested against. Bit-exact with ggml's reference functions (no FMA: the
// project compiles with -ffp-contract=off).
#pragma once

#include <cstdint>

#include "quant/types.h"

namespace plumb {

float fp16_to_fp32(uint16_t h);
uint16_t fp32_to_fp16(float f);   // round to nearest even, like ggml_fp32_to_fp16
float bf16_to_fp32(uint16_t h);
uint16_t fp32_to_bf16(float f);   // ggml_fp32_to_bf16 (nearest even, NaN quieted)

// y[0..n) = dequantized x. n must be a multiple of the type's block size. Every type of
// TensorType except the integer ones (I8..I64) is supported, F32/F64 included.
void dequantize_row(TensorType type, const void* x, float* y, int64_t n);

// Whether quantize_row supports `type` as a destination.
bool can_quantize(TensorType type);

// ggml's reference quantizer (ggml_quantize_chunk without importance matrix; for Q8_K,
// quantize_row_q8_K_ref; for Q8_0/Q8_1 the reference rounding). n multiple of the block size.
// Thread-safe, allocation-free. Uses a SIMD path where one exists (same bytes).
void quantize_row(TensorType type, const float* x, void* y, int64_t n);
// The scalar reference itself, never a SIMD path: what fast paths are tested against.
void quantize_row_scalar(TensorType type, const float* x, void* y, int64_t n);

}  // namespace plumb
