// SwiGLU's element-wise kernel: out[i] = silu(gate[i]) * up[i] = gate / (1 + exp(-gate)) * up,
// as ggml writes it, with exp_f32 (util/exp_f32.h, < 1 ulp). The scalar version is the
// contract; the AVX2 one gives the same bits. Accurate for large |gate|: exp(-gate) only
// overflows for gate < -88.7, where the result is -0 instead of a value below 1e-36.
#pragma once

#include <cstdint>

namespace plumb::cpu {

void swiglu_scalar(const float* gate, const float* up, float* out, int64_t n);
void swiglu_avx2(const float* gate, const float* up, float* out, int64_t n);  // only with AVX2 + FMA
// AVX2 when the CPU has it and PLUMB_NO_SIMD is not set, else scalar. out may alias gate or up.
void swiglu_kernel(const float* gate, const float* up, float* out, int64_t n);

}  // namespace plumb::cpu
