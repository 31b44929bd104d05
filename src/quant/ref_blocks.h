// Per-type scalar reference (de)quantizers, callable one type at a time (quant/ref.h
// dispatches on TensorType). Each is bit-exact with ggml's function of the same name; n is
// the element count, a multiple of the type's block size. All are thread-safe (no static
// scratch) and allocate nothing.
#pragma once

#include <cstdint>

#include "quant/blocks.h"

namespace plumb {

// ---- plain types
void dequantize_row_f16(const fp16_t* x, float* y, int64_t n);
void dequantize_row_bf16(const bf16_t* x, float* y, int64_t n);
void dequantize_row_f64(const double* x, float* y, int64_t n);
void quantize_row_f16_ref(const float* x, fp16_t* y, int64_t n);
void quantize_row_bf16_ref(const float* x, bf16_t* y, int64_t n);

// ---- 32-element blocks (ref_legacy.cpp)
void dequantize_row_q4_0(const block_q4_0* x, float* y, int64_t n);
void dequantize_row_q4_1(const block_q4_1* x, float* y, int64_t n);
void dequantize_row_q5_0(const block_q5_0* x, float* y, int64_t n);
void dequantize_row_q5_1(const block_q5_1* x, float* y, int64_t n);
void dequantize_row_q8_0(const block_q8_0* x, float* y, int64_t n);
void dequantize_row_q8_1(const block_q8_1* x, float* y, int64_t n);  // y = q*d (ggml has none)
void quantize_row_q4_0_ref(const float* x, block_q4_0* y, int64_t n);
void quantize_row_q4_1_ref(const float* x, block_q4_1* y, int64_t n);
void quantize_row_q5_0_ref(const float* x, block_q5_0* y, int64_t n);
void quantize_row_q5_1_ref(const float* x, block_q5_1* y, int64_t n);
void quantize_row_q8_0_ref(const float* x, block_q8_0* y, int64_t n);  // roundf ties away
void quantize_row_q8_1_ref(const float* x, block_q8_1* y, int64_t n);

// ---- K-quants, 256-element super-blocks (ref_kquants.cpp)
void dequantize_row_q2_K(const block_q2_K* x, float* y, int64_t n);
void dequantize_row_q3_K(const block_q3_K* x, float* y, int64_t n);
void dequantize_row_q4_K(const block_q4_K* x, float* y, int64_t n);
void dequantize_row_q5_K(const block_q5_K* x, float* y, int64_t n);
void dequantize_row_q6_K(const block_q6_K* x, float* y, int64_t n);
void dequantize_row_q8_K(const block_q8_K* x, float* y, int64_t n);
void quantize_row_q2_K_ref(const float* x, block_q2_K* y, int64_t n);
void quantize_row_q3_K_ref(const float* x, block_q3_K* y, int64_t n);
void quantize_row_q4_K_ref(const float* x, block_q4_K* y, int64_t n);
void quantize_row_q5_K_ref(const float* x, block_q5_K* y, int64_t n);
void quantize_row_q6_K_ref(const float* x, block_q6_K* y, int64_t n);
// All-zero super-blocks get d = 0, qs = 0 and (unlike ggml, which leaves them unwritten)
// bsums = 0, so the output never depends on the buffer's prior contents.
void quantize_row_q8_K_ref(const float* x, block_q8_K* y, int64_t n);

// ---- non-linear 4-bit (ref_iq4.cpp). These are ggml_quantize_chunk's path (no importance
// matrix, ntry = 7), not ggml's quantize_row_iq4_nl_ref (ntry = -1).
void dequantize_row_iq4_nl(const block_iq4_nl* x, float* y, int64_t n);
void dequantize_row_iq4_xs(const block_iq4_xs* x, float* y, int64_t n);
void quantize_row_iq4_nl_ref(const float* x, block_iq4_nl* y, int64_t n);
void quantize_row_iq4_xs_ref(const float* x, block_iq4_xs* y, int64_t n);

}  // namespace plumb
