#include "backend/cpu/attention_kernels.h"

#include <vector>

#include "quant/ref.h"

namespace plumb::cpu {

namespace {

// All 65536 half-precision values as floats: reading the F16 cache is one load per element.
const float* fp16_table() {
  static const std::vector<float> table = [] {
    std::vector<float> t(65536);
    for (uint32_t i = 0; i < 65536; ++i) t[i] = fp16_to_fp32(static_cast<uint16_t>(i));
    return t;
  }();
  return table.data();
}

float dot_f16(const float* q, const uint16_t* k, int64_t n) {
  const float* table = fp16_table();
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += q[i] * table[k[i]];
  return sum;
}

float dot_f32(const float* q, const float* k, int64_t n) {
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += q[i] * k[i];
  return sum;
}

void axpy_f16(float w, const uint16_t* v, float* acc, int64_t n) {
  const float* table = fp16_table();
  for (int64_t i = 0; i < n; ++i) acc[i] += w * table[v[i]];
}

void axpy_f32(float w, const float* v, float* acc, int64_t n) {
  for (int64_t i = 0; i < n; ++i) acc[i] += w * v[i];
}

void to_f16(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_fp16(x[i]);
}

}  // namespace

const AttentionKernels& attention_kernels_scalar() {
  static const AttentionKernels k{dot_f16, dot_f32, axpy_f16, axpy_f32, to_f16};
  return k;
}

const AttentionKernels& attention_kernels() {
  static const AttentionKernels& chosen =
#if defined(__x86_64__)
      (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
          ? attention_kernels_avx2()
          : attention_kernels_scalar();
#else
      attention_kernels_scalar();
#endif
  return chosen;
}

}  // namespace plumb::cpu
