// Products of a few tokens with the weights read once (generation steps): the register matvec
// for the common types (quads.cuh), the staged matvec (matmul.cu) for the others.
#include "backend/cuda/kernels.h"
#include "backend/cuda/quads.cuh"

namespace plumb::cuda {

namespace {

constexpr int kWarps = 4;  // warps of a block, which split a row's length between them
constexpr int kRows = 2;   // rows of a block: each warp reads them all, so x is loaded once for them

// parts.field[k] by selects on constant indices: a kernel parameter indexed at run time would be
// copied to local memory.
template <typename V>
__device__ __forceinline__ V pick(const V (&field)[3], int k) {
  return k == 0 ? field[0] : k == 1 ? field[1] : field[2];
}

// Block per kRows rows, the row length cut in spans of 256 values: warp w takes spans w, w +
// kWarps, ...; lane l takes values 4l .. 4l + 3 and 128 + 4l .. 131 + 4l of a span (so a warp's
// x loads are 512 contiguous bytes). Per row, token and quad, the lane adds a * (q . x) + b *
// sum(x) to its sum (fma, q . x an fma chain over j); the 32 lanes' sums are combined by a xor
// butterfly, then the warps' in warp order: a fixed order, the same bits every run.
// y = sum, and acc += sum where acc is given.
template <TensorType T, int NT>
__global__ void __launch_bounds__(32 * kWarps) matvec_kernel(MatvecParts parts, size_t row_stride, int64_t n_in,
                                                             const float* __restrict__ x, int n) {
  __shared__ float partial[kWarps][kRows][NT];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const uint8_t* row[kRows];
  int part[kRows];
  int64_t local[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    int64_t i = static_cast<int64_t>(blockIdx.x) * kRows + r;
    int p = 0;
#pragma unroll
    for (int k = 0; k < 3; ++k) {
      if (p == k && k < parts.count && i >= parts.n_out[k]) i -= parts.n_out[k], p = k + 1;
    }
    part[r] = p, local[r] = i;
    row[r] = p < parts.count ? static_cast<const uint8_t*>(pick(parts.w, p)) + i * row_stride : nullptr;
  }
  float acc[kRows][NT];
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
#pragma unroll
    for (int t = 0; t < NT; ++t) acc[r][t] = 0.0f;
  }
  const int64_t spans = (n_in + 255) / 256;
  for (int64_t s = warp; s < spans; s += kWarps) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int64_t v = s * 256 + half * 128 + 4 * lane;
      if (v >= n_in) continue;
      Quad w[kRows];
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        if (row[r] != nullptr) w[r] = quad<T>(row[r], v);
      }
#pragma unroll
      for (int t = 0; t < NT; ++t) {
        if (t >= n) break;
        const float4 xv = __ldg(reinterpret_cast<const float4*>(x + t * n_in + v));
        const float sx = kHasOffset<T> ? ((xv.x + xv.y) + (xv.z + xv.w)) : 0.0f;
#pragma unroll
        for (int r = 0; r < kRows; ++r) {
          float d = w[r].q[0] * xv.x;
          d = fmaf(w[r].q[1], xv.y, d);
          d = fmaf(w[r].q[2], xv.z, d);
          d = fmaf(w[r].q[3], xv.w, d);
          if constexpr (T == TensorType::F16) {
            acc[r][t] += d;
          } else {
            acc[r][t] = fmaf(w[r].a, d, acc[r][t]);
            if constexpr (kHasOffset<T>) acc[r][t] = fmaf(w[r].b, sx, acc[r][t]);
          }
        }
      }
    }
  }
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
#pragma unroll
    for (int t = 0; t < NT; ++t) {
      float a = acc[r][t];
#pragma unroll
      for (int off = 16; off > 0; off /= 2) a += __shfl_xor_sync(0xffffffffu, a, off);
      if (lane == 0) partial[warp][r][t] = a;
    }
  }
  __syncthreads();
  if (threadIdx.x >= kRows * NT) return;
  const int r = threadIdx.x / NT, t = threadIdx.x % NT;
  int p = part[0];
  int64_t i = local[0];
#pragma unroll
  for (int k = 1; k < kRows; ++k) {
    if (r == k) p = part[k], i = local[k];
  }
  if (p >= parts.count || t >= n) return;
  float sum = partial[0][r][t];
#pragma unroll
  for (int w = 1; w < kWarps; ++w) sum += partial[w][r][t];
  const int64_t at = t * pick(parts.n_out, p) + i;
  pick(parts.y, p)[at] = sum;
  if (float* acc_out = pick(parts.acc, p)) acc_out[at] += sum;
}

template <TensorType T, int NT>
void launch(const MatvecParts& parts, size_t row_stride, int64_t n_in, const float* x, int n, int64_t rows,
            cudaStream_t stream) {
  const auto blocks = static_cast<unsigned>((rows + kRows - 1) / kRows);
  matvec_kernel<T, NT><<<blocks, 32 * kWarps, 0, stream>>>(parts, row_stride, n_in, x, n);
}

}  // namespace

cudaError_t matvec(TensorType type, const MatvecParts& parts, size_t row_stride, int64_t n_in, const float* x, int n,
                   cudaStream_t stream) {
  int64_t rows = 0;
  for (int i = 0; i < parts.count; ++i) rows += parts.n_out[i];
  if (rows == 0 || n == 0) return cudaSuccess;
  bool fast = false;
  if (!dispatch_type(type, [&](auto tag) {
        constexpr TensorType T = decltype(tag)::value;
        if constexpr (kHasQuads<T>) {
          fast = true;
          if (n == 1) {
            launch<T, 1>(parts, row_stride, n_in, x, n, rows, stream);
          } else if (n == 2) {
            launch<T, 2>(parts, row_stride, n_in, x, n, rows, stream);
          } else if (n <= 4) {
            launch<T, 4>(parts, row_stride, n_in, x, n, rows, stream);
          } else {
            launch<T, kMaxMatvecTokens>(parts, row_stride, n_in, x, n, rows, stream);
          }
        }
      })) {
    return cudaErrorInvalidValue;
  }
  return fast ? cudaGetLastError() : matvec_staged(type, parts, row_stride, n_in, x, n, stream);
}

}  // namespace plumb::cuda
