// The inner loops of attention and of the F16 KV cache: dot products of a query with cached
// keys, weighted sums of cached values, F32 -> F16 stores. Scalar versions (the reference) and
// AVX2/F16C/FMA versions (attention_avx2.cpp), chosen once at run time. All accumulate in f32.
#pragma once

#include <cstdint>

namespace plumb::cpu {

struct AttentionKernels {
  float (*dot_f16)(const float* q, const uint16_t* k, int64_t n);     // Σ q[i] * k[i]
  float (*dot_f32)(const float* q, const float* k, int64_t n);
  void (*axpy_f16)(float w, const uint16_t* v, float* acc, int64_t n);  // acc[i] += w * v[i]
  void (*axpy_f32)(float w, const float* v, float* acc, int64_t n);
  void (*to_f16)(const float* x, uint16_t* y, int64_t n);              // round to nearest even
};

const AttentionKernels& attention_kernels_scalar();
const AttentionKernels& attention_kernels_avx2();  // only call when the CPU has AVX2, FMA, F16C
// AVX2 when the CPU has it, else scalar.
const AttentionKernels& attention_kernels();

}  // namespace plumb::cpu
