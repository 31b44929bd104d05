// Faster K-quant quantizers for `plumb quantize`: the same results as the scalar references
// (quantize_row_q4_K_ref, _q5_K_ref, _q6_K_ref) byte for byte, with the candidate-scale
// searches run for eight candidates at once (AVX2). Each candidate keeps ggml's sequential
// summation order, so the floats are the reference's; the choice among candidates is then
// made in the reference's order. Falls back to the reference without AVX2.
#pragma once

#include <cstdint>

#include "quant/types.h"

namespace plumb {

// quantize_row(type, ...) for every type; Q4_K, Q5_K and Q6_K take the fast path.
void quantize_row_fast(TensorType type, const float* x, void* y, int64_t n);

namespace kquant_detail {

// The searches, for the tests: AVX2 versions of ggml's make_qkx2_quants (use_mad false) and
// make_qx_quants (rmse_type 1, no weights). Return false when the CPU lacks AVX2.
bool fit_affine_avx2(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                     float* the_min, float rmin, float rdelta, int nstep, float* scale);
bool fit_symmetric_avx2(int n, int nmax, const float* x, int8_t* L, float* scale);

}  // namespace kquant_detail

}  // namespace plumb
