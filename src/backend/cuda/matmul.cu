// Weight kernels read as the reference dequantizes: the staged matvec (the types without a
// register kernel), dequantized rows (and F16 weights' activation planes) for the cuBLAS path of
// longer batches, and embedding rows.
#include <algorithm>

#include "backend/cuda/dequant.cuh"
#include "backend/cuda/kernels.h"
#include "backend/cuda/launch.cuh"

namespace plumb::cuda {

namespace {

constexpr int kWarpsPerBlock = 4;

// The 4-byte words of one chunk of a row: 32 groups of 32 values (32 blocks of the 32-value
// types, 4 super-blocks of the 256-value ones), which each lane of a warp dequantizes one of.
template <TensorType T>
struct Chunk {
  static constexpr int words = static_cast<int>(1024 / Block<T>::values * sizeof(typename Block<T>::type) / 4);
};

// Floats of x staged per token and chunk: 32 groups of 32 values, each group padded to 33 so
// that lane l reading value j of group l hits bank (l + j) % 32 (no conflicts).
constexpr int kStagedX = 32 * 33;

// One warp per output row r, over a row in chunks of 32 groups of 32 values: the warp copies its
// row's chunk into shared memory with coalesced 4-byte loads (the next chunk's loads in flight
// while this one is used), the block copies the same chunk of x for every token, and lane l
// dequantizes group l of the chunk. So lane l takes the groups l, l + 32, ... of the row and
// keeps one f32 fma chain per token over their values, ascending; the 32 lanes' sums are
// combined by a xor butterfly (fixed order: the same bits every run).
template <TensorType T>
__global__ void matvec_staged_kernel(MatvecParts parts, size_t row_stride, int64_t n_in, const float* __restrict__ x, int n) {
  constexpr int kWords = Chunk<T>::words;
  constexpr int kPerLane = (kWords + 31) / 32;
  __shared__ __align__(16) uint32_t stage[kWarpsPerBlock][kWords];
  extern __shared__ float x_stage[];  // [n][kStagedX]
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  int64_t r = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + warp;
  int part = 0;
  while (part < parts.count && r >= parts.n_out[part]) r -= parts.n_out[part++];
  const bool active = part < parts.count;  // inactive warps still take part in staging x
  const uint32_t* row =
      active ? reinterpret_cast<const uint32_t*>(static_cast<const uint8_t*>(parts.w[part]) + r * row_stride) : nullptr;
  const int64_t row_words = static_cast<int64_t>(row_stride / 4);
  const int64_t n_groups = n_in / 32;
  const int64_t n_chunks = (n_groups + 31) / 32;
  float acc[kMaxMatvecTokens];
#pragma unroll
  for (int t = 0; t < kMaxMatvecTokens; ++t) acc[t] = 0.0f;
  uint32_t next[kPerLane];
#pragma unroll
  for (int k = 0; k < kPerLane; ++k) {
    const int64_t i = k * 32 + lane;
    next[k] = active && i < kWords && i < row_words ? row[i] : 0u;
  }
  pdl_start();  // the first weights are on their way while the op before finishes
  for (int64_t c = 0; c < n_chunks; ++c) {
    const int64_t groups = n_groups - c * 32 < 32 ? n_groups - c * 32 : 32;
    __syncthreads();  // the last chunk's x and weights are no longer read
    for (int i = threadIdx.x; i < n * 1024; i += 32 * kWarpsPerBlock) {
      const int t = i / 1024, v = i % 1024;
      if (v / 32 < groups) x_stage[t * kStagedX + (v / 32) * 33 + v % 32] = x[t * n_in + c * 1024 + v];
    }
#pragma unroll
    for (int k = 0; k < kPerLane; ++k) {
      if (k * 32 + lane < kWords) stage[warp][k * 32 + lane] = next[k];
    }
    __syncthreads();
    if (active && c + 1 < n_chunks) {
#pragma unroll
      for (int k = 0; k < kPerLane; ++k) {
        const int64_t i = (c + 1) * kWords + k * 32 + lane;
        next[k] = k * 32 + lane < kWords && i < row_words ? row[i] : 0u;
      }
    }
    if (!active || lane >= groups) continue;
    float v[32];
    dequant_group<T>(reinterpret_cast<const uint8_t*>(stage[warp]), lane, v);
#pragma unroll
    for (int t = 0; t < kMaxMatvecTokens; ++t) {
      if (t >= n) break;
      const float* xs = x_stage + t * kStagedX + lane * 33;
      float a = acc[t];
#pragma unroll
      for (int j = 0; j < 32; ++j) a = fmaf(v[j], xs[j], a);
      acc[t] = a;
    }
  }
  if (!active) return;
  const int64_t n_out = parts.n_out[part];
  float* y = parts.y[part];
#pragma unroll
  for (int t = 0; t < kMaxMatvecTokens; ++t) {
    if (t >= n) break;
    float a = acc[t];
#pragma unroll
    for (int off = 16; off > 0; off /= 2) a += __shfl_xor_sync(0xffffffffu, a, off);
    if (lane == 0) {
      y[t * n_out + r] = a;
      if (parts.acc[part] != nullptr) parts.acc[part][t * n_out + r] += a;
    }
  }
}

// Thread per 32-value group of rows r0 .. r0 + rows - 1.
template <TensorType T>
__global__ void dequantize_rows_kernel(const uint8_t* __restrict__ w, size_t row_bytes, int64_t n_in, int64_t r0,
                                       int64_t rows, float* __restrict__ out) {
  pdl_start();
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

// Block per token: the row's largest |x| (a max, so any order gives it), its power-of-two scale,
// and the three planes.
__global__ void split_f16_kernel(const float* __restrict__ x, int64_t n_in, __half* __restrict__ planes,
                                 int64_t plane, float* __restrict__ inv) {
  __shared__ float partial[256];
  pdl_start();
  const int64_t t = blockIdx.x;
  const float* row = x + t * n_in;
  float m = 0.0f;
  for (int64_t i = threadIdx.x; i < n_in; i += blockDim.x) m = fmaxf(m, fabsf(row[i]));
  partial[threadIdx.x] = m;
  __syncthreads();
  for (int w = blockDim.x / 2; w > 0; w /= 2) {
    if (threadIdx.x < w) partial[threadIdx.x] = fmaxf(partial[threadIdx.x], partial[threadIdx.x + w]);
    __syncthreads();
  }
  m = partial[0];
  // m in [2^e, 2^(e + 1)): s = 2^(13 - e); none for zeros, NaN or Inf (they pass through hi).
  int k = 0;
  if (m > 0.0f && isfinite(m)) k = min(max(13 - ilogbf(m), -100), 100);
  const float s = ldexpf(1.0f, k);
  if (threadIdx.x == 0) inv[t] = ldexpf(1.0f, -k);
  __half* hi = planes + t * n_in;
  for (int64_t i = threadIdx.x; i < n_in; i += blockDim.x) {
    const float v = row[i] * s;
    const __half h = __float2half_rn(v);
    const float r1 = isfinite(v) ? v - __half2float(h) : 0.0f;  // exact: v and h are multiples of v's ulp
    const __half md = __float2half_rn(r1);
    const float r2 = r1 - __half2float(md);
    hi[i] = h;
    hi[plane + i] = md;
    hi[2 * plane + i] = __float2half_rn(r2);
  }
}

__global__ void scale_tokens_kernel(float* __restrict__ y, int64_t n_out, const float* __restrict__ inv) {
  pdl_start();
  const int64_t t = blockIdx.y;
  const float f = inv[t];
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n_out;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    y[t * n_out + i] *= f;
  }
}

// Block per token, threads over the row's groups.
template <TensorType T>
__global__ void get_rows_kernel(const uint8_t* __restrict__ table, size_t row_bytes, int64_t n_in,
                                const int32_t* __restrict__ batch, float* __restrict__ out) {
  pdl_start();
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

cudaError_t matvec_staged(TensorType type, const MatvecParts& parts, size_t row_stride, int64_t n_in, const float* x,
                          int n, cudaStream_t stream) {
  int64_t rows = 0;
  for (int i = 0; i < parts.count; ++i) rows += parts.n_out[i];
  const auto blocks = static_cast<unsigned>((rows + kWarpsPerBlock - 1) / kWarpsPerBlock);
  const size_t shared = static_cast<size_t>(n) * kStagedX * sizeof(float);
  cudaError_t setup = cudaSuccess;
  if (!dispatch_type(type, [&](auto tag) {
        // Above 48 KiB of shared memory a kernel must say so, once.
        static const cudaError_t allowed =
            cudaFuncSetAttribute(matvec_staged_kernel<decltype(tag)::value>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 static_cast<int>(kMaxMatvecTokens * kStagedX * sizeof(float)));
        setup = allowed;
        if (allowed == cudaSuccess) {
          setup = launch(matvec_staged_kernel<decltype(tag)::value>, blocks, 32 * kWarpsPerBlock, shared, stream, parts,
                         row_stride, n_in, x, n);
        }
      })) {
    return cudaErrorInvalidValue;
  }
  return setup;
}

cudaError_t dequantize_rows(TensorType type, const void* w, size_t row_bytes, int64_t n_in, int64_t r0, int64_t rows,
                            float* out, cudaStream_t stream) {
  const int64_t groups = rows * (n_in / 32);
  const auto blocks = static_cast<unsigned>((groups + 255) / 256);
  cudaError_t e = cudaSuccess;
  if (!dispatch_type(type, [&](auto tag) {
        e = launch(dequantize_rows_kernel<decltype(tag)::value>, blocks, 256, 0, stream, static_cast<const uint8_t*>(w),
                   row_bytes, n_in, r0, rows, out);
      })) {
    return cudaErrorInvalidValue;
  }
  return e;
}

cudaError_t split_f16_planes(const float* x, int64_t n, int64_t n_in, void* planes, float* inv, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  if (n > 0x7fffffff) return cudaErrorInvalidValue;
  return launch(split_f16_kernel, static_cast<unsigned>(n), 256, 0, stream, x, n_in, static_cast<__half*>(planes),
                n * n_in, inv);
}

cudaError_t scale_tokens(float* y, int64_t n, int64_t n_out, const float* inv, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  if (n > 65535) return cudaErrorInvalidValue;
  const auto blocks = static_cast<unsigned>(std::min<int64_t>((n_out + 255) / 256, 64));
  return launch(scale_tokens_kernel, dim3(blocks, static_cast<unsigned>(n)), 256, 0, stream, y, n_out, inv);
}

cudaError_t get_rows(TensorType type, const void* table, size_t row_bytes, int64_t n_in, const int32_t* batch,
                     int64_t n, float* out, cudaStream_t stream) {
  cudaError_t e = cudaSuccess;
  if (!dispatch_type(type, [&](auto tag) {
        e = launch(get_rows_kernel<decltype(tag)::value>, static_cast<unsigned>(n), 128, 0, stream,
                   static_cast<const uint8_t*>(table), row_bytes, n_in, batch, out);
      })) {
    return cudaErrorInvalidValue;
  }
  return e;
}

}  // namespace plumb::cuda
