// RMSNorm's scale of one row on the device, shared by the norm kernel (ops.cu) and the products
// that normalize their input as they stage it (matvec.cu), so both give the same bits.
#pragma once

#include <cstdint>

namespace plumb::cuda {

constexpr int kNormThreads = 256;

// float(1 / sqrt(sum(x^2) / width + eps)) for x [width], the squares summed in double: the block's
// first kNormThreads threads each sum i = t, t + kNormThreads, ..., then a fixed tree (its last
// five levels by shuffles) combines them. Every thread of the block (at least kNormThreads) calls
// it and gets the scale; `partial` is kNormThreads doubles of shared memory.
__device__ __forceinline__ float rms_scale(const float* __restrict__ x, int64_t width, float eps, double* partial) {
  if (threadIdx.x < kNormThreads) {
    double sum = 0.0;
    for (int64_t i = threadIdx.x; i < width; i += kNormThreads) sum += static_cast<double>(x[i]) * x[i];
    partial[threadIdx.x] = sum;
  }
  __syncthreads();
  for (int stride = kNormThreads / 2; stride >= 32; stride /= 2) {
    if (threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x < 32) {
    double v = partial[threadIdx.x];
    for (int stride = 16; stride > 0; stride /= 2) v += __shfl_down_sync(0xffffffffu, v, stride);
    if (threadIdx.x == 0) partial[0] = v;
  }
  __syncthreads();
  return static_cast<float>(1.0 / sqrt(partial[0] / static_cast<double>(width) + static_cast<double>(eps)));
}

}  // namespace plumb::cuda
