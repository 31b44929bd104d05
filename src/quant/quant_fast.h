// Internal to src/quant: SIMD versions of the slow reference quantizers. Each produces the
// same bytes as its scalar *_ref counterpart (tests/quant_fast_test.cpp checks it): the SIMD
// lanes run independent sub-blocks, each lane doing the scalar algorithm's float operations
// in the scalar order. quantize_row (quant/ref.h) picks them when the CPU has AVX2.
#pragma once

#include <cstdint>

#include "quant/blocks.h"

namespace plumb::quant_fast {

bool cpu_has_avx2();

void quantize_row_q2_K_avx2(const float* x, block_q2_K* y, int64_t n);
void quantize_row_q4_K_avx2(const float* x, block_q4_K* y, int64_t n);
void quantize_row_q5_K_avx2(const float* x, block_q5_K* y, int64_t n);
void quantize_row_q6_K_avx2(const float* x, block_q6_K* y, int64_t n);

}  // namespace plumb::quant_fast
