// Weight kernels: products of a few tokens (matvec), dequantized rows for the cuBLAS path of
// longer batches, and embedding rows.
#include "backend/cuda/dequant.cuh"
#include "backend/cuda/kernels.h"

namespace plumb::cuda {

namespace {

constexpr int kWarpsPerBlock = 4;

// One warp per output row r: lane l takes the 32-value groups l, l + 32, ... of the row, keeps
// one f32 fma chain per token over its groups (values in ascending order), and the 32 lanes'
// sums are combined by a xor butterfly (fixed order: the same bits every run).
template <TensorType T>
__global__ void matvec_kernel(const uint8_t* __restrict__ w, size_t row_bytes, int64_t n_in, int64_t n_out,
                              const float* __restrict__ x, int n, float* __restrict__ y) {
  const int lane = threadIdx.x % 32;
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
  if (r >= n_out) return;
  const uint8_t* row = w + static_cast<size_t>(r) * row_bytes;
  const int64_t n_groups = n_in / 32;
  float acc[kMaxMatvecTokens];
#pragma unroll
  for (int t = 0; t < kMaxMatvecTokens; ++t) acc[t] = 0.0f;
  for (int64_t g = lane; g < n_groups; g += 32) {
    float v[32];
    dequant_group<T>(row, g, v);
#pragma unroll
    for (int t = 0; t < kMaxMatvecTokens; ++t) {
      if (t >= n) break;
      const float4* xv = reinterpret_cast<const float4*>(x + t * n_in + g * 32);
      float a = acc[t];
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        const float4 xj = xv[j];
        a = fmaf(v[4 * j], xj.x, a);
        a = fmaf(v[4 * j + 1], xj.y, a);
        a = fmaf(v[4 * j + 2], xj.z, a);
        a = fmaf(v[4 * j + 3], xj.w, a);
      }
      acc[t] = a;
    }
  }
#pragma unroll
  for (int t = 0; t < kMaxMatvecTokens; ++t) {
    if (t >= n) break;
    float a = acc[t];
#pragma unroll
    for (int off = 16; off > 0; off /= 2) a += __shfl_xor_sync(0xffffffffu, a, off);
    if (lane == 0) y[t * n_out + r] = a;
  }
}

// Thread per 32-value group of rows r0 .. r0 + rows - 1.
template <TensorType T>
__global__ void dequantize_rows_kernel(const uint8_t* __restrict__ w, size_t row_bytes, int64_t n_in, int64_t r0,
                                       int64_t rows, float* __restrict__ out) {
  const int64_t n_groups = n_in / 32;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= rows * n_groups) return;
  const int64_t r = i / n_groups, g = i % n_groups;
  float v[32];
  dequant_group<T>(w + static_cast<size_t>(r0 + r) * row_bytes, g, v);
  float4* o = reinterpret_cast<float4*>(out + r * n_in + g * 32);
#pragma unroll
  for (int j = 0; j < 8; ++j) o[j] = make_float4(v[4 * j], v[4 * j + 1], v[4 * j + 2], v[4 * j + 3]);
}

// Block per token, threads over the row's groups.
template <TensorType T>
__global__ void get_rows_kernel(const uint8_t* __restrict__ table, size_t row_bytes, int64_t n_in,
                                const int32_t* __restrict__ batch, float* __restrict__ out) {
  const int64_t t = blockIdx.x;
  const uint8_t* row = table + static_cast<size_t>(batch[1 + t]) * row_bytes;
  for (int64_t g = threadIdx.x; g < n_in / 32; g += blockDim.x) {
    float v[32];
    dequant_group<T>(row, g, v);
    float4* o = reinterpret_cast<float4*>(out + t * n_in + g * 32);
#pragma unroll
    for (int j = 0; j < 8; ++j) o[j] = make_float4(v[4 * j], v[4 * j + 1], v[4 * j + 2], v[4 * j + 3]);
  }
}

}  // namespace

bool has_matrix_kernel(TensorType type) {
  return dispatch_type(type, [](auto) {});
}

cudaError_t matvec(TensorType type, const void* w, size_t row_bytes, int64_t n_in, int64_t n_out, const float* x,
                   int n, float* y, cudaStream_t stream) {
  const auto blocks = static_cast<unsigned>((n_out + kWarpsPerBlock - 1) / kWarpsPerBlock);
  if (!dispatch_type(type, [&](auto tag) {
        matvec_kernel<decltype(tag)::value><<<blocks, 32 * kWarpsPerBlock, 0, stream>>>(
            static_cast<const uint8_t*>(w), row_bytes, n_in, n_out, x, n, y);
      })) {
    return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

cudaError_t dequantize_rows(TensorType type, const void* w, size_t row_bytes, int64_t n_in, int64_t r0, int64_t rows,
                            float* out, cudaStream_t stream) {
  const int64_t groups = rows * (n_in / 32);
  const auto blocks = static_cast<unsigned>((groups + 255) / 256);
  if (!dispatch_type(type, [&](auto tag) {
        dequantize_rows_kernel<decltype(tag)::value><<<blocks, 256, 0, stream>>>(
            static_cast<const uint8_t*>(w), row_bytes, n_in, r0, rows, out);
      })) {
    return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

cudaError_t get_rows(TensorType type, const void* table, size_t row_bytes, int64_t n_in, const int32_t* batch,
                     int64_t n, float* out, cudaStream_t stream) {
  if (!dispatch_type(type, [&](auto tag) {
        get_rows_kernel<decltype(tag)::value><<<static_cast<unsigned>(n), 128, 0, stream>>>(
            static_cast<const uint8_t*>(table), row_bytes, n_in, batch, out);
      })) {
    return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

}  // namespace plumb::cuda
