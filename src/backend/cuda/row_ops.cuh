// Row arithmetic shared by the CUDA kernels that run it on their own (ops.cu) and those that
// run it in a product's epilogue (matvec.cu): one definition, so both give the same bits, which
// are the CPU backend's (src/backend/cpu/activation_kernels.cpp, ops.cpp; the CUDA op tests
// check them bit for bit).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace plumb::cuda {

// util/exp_f32.h on the device, the same steps in the same order (same bits: the CUDA op tests
// check SwiGLU and attention, which use it, against the CPU bit for bit).
__device__ __forceinline__ float exp_f32(float x) {
  constexpr float kLog2e = 1.44269504088896341f, kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
  constexpr float kMaxArg = 89.0f, kMinArg = -104.0f;
  if (x != x) return x + x;
  x = kMaxArg < x ? kMaxArg : x;
  x = kMinArg > x ? kMinArg : x;
  const float n = rintf(x * kLog2e);
  const float r_hi = fmaf(-n, kLn2Hi, x);
  const float c = -n * kLn2Lo;
  const float r = r_hi + c;
  const float r2 = r * r;
  float q = 1.0f / 5040.0f;
  q = fmaf(q, r, 1.0f / 720.0f);
  q = fmaf(q, r, 1.0f / 120.0f);
  q = fmaf(q, r, 1.0f / 24.0f);
  q = fmaf(q, r, 1.0f / 6.0f);
  q = fmaf(q, r, 1.0f / 2.0f);
  const float s = 1.0f + r_hi;
  const float s_err = (1.0f - s) + r_hi;
  const float p = s + fmaf(q, r2, c + s_err);
  const auto ni = static_cast<int32_t>(n);
  const int32_t n1 = ni >> 1;
  const int32_t n2 = ni - n1;
  const float s1 = __uint_as_float(static_cast<uint32_t>(n1 + 127) << 23);
  const float s2 = __uint_as_float(static_cast<uint32_t>(n2 + 127) << 23);
  return p * s1 * s2;
}

// SwiGLU of one value: silu(g) * u.
__device__ __forceinline__ float silu_times(float g, float u) { return g / (1.0f + exp_f32(-g)) * u; }

// RMSNorm's partial sums: value i of a row goes to partial i % kNormPartials (squares summed in
// double, i ascending), then the partials are combined by a fixed halving tree.
constexpr int kNormPartials = 256;
constexpr int kNormThreads = kNormPartials;  // rms_norm_kernel's block

// y = x * float(1 / sqrt(sum(x^2) / width + eps)) * w for one row, by a block of kThreads threads
// (a divisor of kNormPartials; each holds kNormPartials / kThreads of the partials), `partial`
// kNormPartials doubles of shared memory. Every thread of the block must call it. x is read
// through L2 (__ldcg): in a product's epilogue other blocks wrote it during the same kernel.
template <int kThreads>
__device__ void rms_norm_row(const float* x, const float* __restrict__ w, float eps, int64_t width,
                             float* __restrict__ y, double* partial) {
  static_assert(kNormPartials % kThreads == 0, "each thread holds whole partials");
  __syncthreads();  // partial may still be read by the block's last row
  for (int j = threadIdx.x; j < kNormPartials; j += kThreads) {
    double sum = 0.0;
    for (int64_t i = j; i < width; i += kNormPartials) {
      const float v = __ldcg(x + i);
      sum += static_cast<double>(v) * v;
    }
    partial[j] = sum;
  }
  __syncthreads();
  for (int stride = kNormPartials / 2; stride > 0; stride /= 2) {
    for (int j = threadIdx.x; j < stride; j += kThreads) partial[j] += partial[j + stride];
    __syncthreads();
  }
  const float scale = static_cast<float>(1.0 / sqrt(partial[0] / static_cast<double>(width) + static_cast<double>(eps)));
  for (int64_t i = threadIdx.x; i < width; i += kThreads) y[i] = (__ldcg(x + i) * scale) * w[i];
}

}  // namespace plumb::cuda
