// The CUDA backend's ops other than weight products, each the CPU backend's arithmetic
// operation for operation (src/backend/cpu/ops.cpp, attention_kernels.h, activation_kernels.cpp).
#include <cuda_fp16.h>

#include <cstdint>

#include "backend/cuda/kernels.h"
#include "quant/half_bits.h"

namespace plumb::cuda {

namespace {

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

// quant/half.cpp's fp32_to_fp16, on the same bits.
__device__ __forceinline__ uint16_t to_f16_bits(float f) { return fp16_bits_of_fp32_bits(__float_as_uint(f)); }

__device__ __forceinline__ float from_f16_bits(uint16_t h) { return __half2float(__ushort_as_half(h)); }

constexpr int kNormThreads = 256;

// Block per row: the squares summed in double (per thread, then a fixed tree), as the CPU.
__global__ void rms_norm_kernel(const float* __restrict__ x, const float* __restrict__ w, float eps, int64_t width,
                                float* __restrict__ y) {
  __shared__ double partial[kNormThreads];
  const float* xt = x + blockIdx.x * width;
  float* yt = y + blockIdx.x * width;
  double sum = 0.0;
  for (int64_t i = threadIdx.x; i < width; i += kNormThreads) sum += static_cast<double>(xt[i]) * xt[i];
  partial[threadIdx.x] = sum;
  __syncthreads();
  for (int stride = kNormThreads / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  const float scale = static_cast<float>(1.0 / sqrt(partial[0] / static_cast<double>(width) + static_cast<double>(eps)));
  for (int64_t i = threadIdx.x; i < width; i += kNormThreads) yt[i] = (xt[i] * scale) * w[i];
}

// Thread per pair (token, head, i).
__global__ void rope_kernel(float* x, int64_t n, int64_t n_heads, int64_t head_dim, const float* __restrict__ cos_t,
                            const float* __restrict__ sin_t, int64_t half, const int32_t* __restrict__ batch) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= n * n_heads * half) return;
  const int64_t i = idx % half;
  const int64_t h = (idx / half) % n_heads;
  const int64_t t = idx / (half * n_heads);
  const int64_t pos = batch[0] + t;
  const float cs = cos_t[pos * half + i];
  const float sn = sin_t[pos * half + i];
  float* v = x + (t * n_heads + h) * head_dim;
  const float x0 = v[2 * i];
  const float x1 = v[2 * i + 1];
  v[2 * i] = x0 * cs - x1 * sn;
  v[2 * i + 1] = x0 * sn + x1 * cs;
}

// Thread per value of k, then of v.
__global__ void kv_store_kernel(bool f16, void* __restrict__ k_cache, void* __restrict__ v_cache, int64_t k_width,
                                int64_t v_width, const float* __restrict__ k, const float* __restrict__ v, int64_t n,
                                const int32_t* __restrict__ batch) {
  int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  void* cache = k_cache;
  const float* src = k;
  int64_t width = k_width;
  if (idx >= n * k_width) {
    idx -= n * k_width;
    cache = v_cache, src = v, width = v_width;
    if (idx >= n * v_width) return;
  }
  const int64_t dst = (batch[0] + idx / width) * width + idx % width;
  if (f16) {
    static_cast<uint16_t*>(cache)[dst] = to_f16_bits(src[idx]);
  } else {
    static_cast<float*>(cache)[dst] = src[idx];
  }
}

// Thread per item of [q pairs | k pairs | v values]: a q or k pair (2i, 2i + 1) is rotated
// (i < n_rot / 2) as rope_kernel does; a k pair is then stored with its rotated values, a v
// value as it is, as kv_store_kernel does.
__global__ void rope_store_kernel(RopeStoreArgs a, int64_t n, const int32_t* __restrict__ batch) {
  int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t half = a.head_dim / 2, rot = a.n_rot / 2;
  const int64_t q_pairs = n * a.n_head * half, k_pairs = n * a.n_head_kv * half;
  if (idx < q_pairs + k_pairs) {
    const bool is_k = idx >= q_pairs;
    if (is_k) idx -= q_pairs;
    const int64_t heads = is_k ? a.n_head_kv : a.n_head;
    const int64_t i = idx % half, h = (idx / half) % heads, t = idx / (half * heads);
    float* v = (is_k ? a.k : a.q) + (t * heads + h) * a.head_dim;
    float x0 = v[2 * i], x1 = v[2 * i + 1];
    if (i < rot) {
      const int64_t pos = batch[0] + t;
      const float cs = a.cos[pos * rot + i], sn = a.sin[pos * rot + i];
      const float y0 = x0 * cs - x1 * sn;
      const float y1 = x0 * sn + x1 * cs;
      x0 = y0, x1 = y1;
      v[2 * i] = x0, v[2 * i + 1] = x1;
    }
    if (!is_k) return;
    const int64_t width = a.n_head_kv * a.head_dim;
    const int64_t dst = (batch[0] + t) * width + h * a.head_dim + 2 * i;
    if (a.f16) {
      static_cast<uint16_t*>(a.k_cache)[dst] = to_f16_bits(x0);
      static_cast<uint16_t*>(a.k_cache)[dst + 1] = to_f16_bits(x1);
    } else {
      static_cast<float*>(a.k_cache)[dst] = x0;
      static_cast<float*>(a.k_cache)[dst + 1] = x1;
    }
    return;
  }
  idx -= q_pairs + k_pairs;
  if (idx >= n * a.v_width) return;
  const int64_t dst = (batch[0] + idx / a.v_width) * a.v_width + idx % a.v_width;
  if (a.f16) {
    static_cast<uint16_t*>(a.v_cache)[dst] = to_f16_bits(a.v[idx]);
  } else {
    static_cast<float*>(a.v_cache)[dst] = a.v[idx];
  }
}

constexpr int kAttentionThreads = 128;
constexpr int kKeyTile = kAttentionThreads;  // positions whose keys are staged in shared memory at once
constexpr int64_t kMaxHeadDim = 256;

__device__ __forceinline__ float cache_at(bool f16, const void* base, int64_t i) {
  return f16 ? from_f16_bits(static_cast<const uint16_t*>(base)[i]) : static_cast<const float*>(base)[i];
}

// Shared memory of attention_kernel beyond its static arrays: the scores of n_ctx positions and a
// tile of kKeyTile keys (rows padded by one float against bank conflicts).
size_t attention_shared_bytes(int64_t n_ctx, int64_t head_dim_k) {
  return static_cast<size_t>(n_ctx + kKeyTile * (head_dim_k + 1)) * sizeof(float);
}

// Block per (query head, token): the contract of attention_kernels.h for one query row.
//   s_p = fma chain over d of q[d] k_p[d], times scale (a thread per position p; the keys are
//         staged a tile at a time in shared memory with coalesced loads);
//   m = max s_p; e_p = exp_f32(s_p - m);
//   sum = eight double partials (e_p to partial p % 8, p ascending), combined as partial_sums.h;
//   a[d] = fma chain over p ascending of e_p v_p[d] (a thread per d); out[d] = a[d] * float(1 / sum).
__global__ void attention_kernel(AttentionArgs a, const float* __restrict__ q, const int32_t* __restrict__ batch,
                                 float* __restrict__ out) {
  extern __shared__ float shared[];
  float* scores = shared;                  // [n_ctx]
  float* keys = shared + a.n_ctx;          // [kKeyTile][head_dim_k + 1]
  __shared__ float q_s[kMaxHeadDim];
  __shared__ float red[kAttentionThreads];
  __shared__ double partial[8];
  const int64_t h = blockIdx.x;
  const int64_t t = blockIdx.y;
  const int64_t n_kv = batch[0] + t + 1;
  const int64_t hd = a.head_dim_k;
  const int64_t kvh = h / (a.n_head / a.n_head_kv);
  const float* qt = q + (t * a.n_head + h) * hd;
  for (int64_t d = threadIdx.x; d < hd; d += kAttentionThreads) q_s[d] = qt[d];

  float m = -INFINITY;
  for (int64_t p0 = 0; p0 < n_kv; p0 += kKeyTile) {
    const int64_t tile = n_kv - p0 < kKeyTile ? n_kv - p0 : kKeyTile;
    __syncthreads();
    for (int64_t i = threadIdx.x; i < tile * hd; i += kAttentionThreads) {
      const int64_t pl = i / hd, d = i % hd;
      keys[pl * (hd + 1) + d] = cache_at(a.f16, a.k_cache, (p0 + pl) * a.k_width + kvh * hd + d);
    }
    __syncthreads();
    const int64_t pl = threadIdx.x;
    if (pl < tile) {
      const float* k = keys + pl * (hd + 1);
      float dot = 0.0f;
      for (int64_t d = 0; d < hd; ++d) dot = fmaf(q_s[d], k[d], dot);
      const float s = dot * a.scale;
      scores[p0 + pl] = s;
      m = fmaxf(m, s);
    }
  }
  red[threadIdx.x] = m;
  __syncthreads();
  for (int stride = kAttentionThreads / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) red[threadIdx.x] = fmaxf(red[threadIdx.x], red[threadIdx.x + stride]);
    __syncthreads();
  }
  m = red[0];
  for (int64_t p = threadIdx.x; p < n_kv; p += kAttentionThreads) scores[p] = exp_f32(scores[p] - m);
  __syncthreads();
  if (threadIdx.x < 8) {
    double s = 0.0;
    for (int64_t p = threadIdx.x; p < n_kv; p += 8) s += scores[p];
    partial[threadIdx.x] = s;
  }
  __syncthreads();
  const double sum = ((partial[0] + partial[4]) + (partial[2] + partial[6])) +
                     ((partial[1] + partial[5]) + (partial[3] + partial[7]));
  const float inv_sum = static_cast<float>(1.0 / sum);
  float* ot = out + (t * a.n_head + h) * a.head_dim_v;
  for (int64_t d = threadIdx.x; d < a.head_dim_v; d += kAttentionThreads) {
    float acc = 0.0f;
    const int64_t col = kvh * a.head_dim_v + d;
#pragma unroll 8
    for (int64_t p = 0; p < n_kv; ++p) acc = fmaf(scores[p], cache_at(a.f16, a.v_cache, p * a.v_width + col), acc);
    ot[d] = acc * inv_sum;
  }
}

__global__ void swiglu_kernel(const float* __restrict__ gate, const float* __restrict__ up, int64_t n,
                              float* __restrict__ out) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float g = gate[i];
  out[i] = g / (1.0f + exp_f32(-g)) * up[i];
}

__global__ void add_kernel(const float* a, const float* b, int64_t n, float* out) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = a[i] + b[i];
}

unsigned blocks_for(int64_t n, int threads) { return static_cast<unsigned>((n + threads - 1) / threads); }

// Dynamic shared memory of attention_kernel, within the device's 227 KiB per block.
constexpr size_t kMaxAttentionShared = 200 * 1024;

}  // namespace

cudaError_t rms_norm(const float* x, const float* w, float eps, int64_t width, int64_t n, float* y,
                     cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  rms_norm_kernel<<<static_cast<unsigned>(n), kNormThreads, 0, stream>>>(x, w, eps, width, y);
  return cudaGetLastError();
}

cudaError_t rope(float* x, int64_t n, int64_t n_heads, int64_t head_dim, const float* cos, const float* sin,
                 int64_t n_rot, const int32_t* batch, cudaStream_t stream) {
  const int64_t pairs = n * n_heads * (n_rot / 2);
  if (pairs == 0) return cudaSuccess;
  rope_kernel<<<blocks_for(pairs, 256), 256, 0, stream>>>(x, n, n_heads, head_dim, cos, sin, n_rot / 2, batch);
  return cudaGetLastError();
}

cudaError_t kv_store(bool f16, void* k_cache, void* v_cache, int64_t k_width, int64_t v_width, const float* k,
                     const float* v, int64_t n, const int32_t* batch, cudaStream_t stream) {
  kv_store_kernel<<<blocks_for(n * (k_width + v_width), 256), 256, 0, stream>>>(f16, k_cache, v_cache, k_width, v_width,
                                                                                 k, v, n, batch);
  return cudaGetLastError();
}

cudaError_t rope_store(const RopeStoreArgs& a, int64_t n, const int32_t* batch, cudaStream_t stream) {
  const int64_t items = n * ((a.n_head + a.n_head_kv) * (a.head_dim / 2) + a.v_width);
  if (items == 0) return cudaSuccess;
  rope_store_kernel<<<blocks_for(items, 256), 256, 0, stream>>>(a, n, batch);
  return cudaGetLastError();
}

int64_t max_attention_context() {
  return static_cast<int64_t>(kMaxAttentionShared / sizeof(float)) - kKeyTile * (kMaxHeadDim + 1);
}

cudaError_t prepare_attention(int64_t n_ctx) {
  return cudaFuncSetAttribute(attention_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                              static_cast<int>(attention_shared_bytes(n_ctx, kMaxHeadDim)));
}

cudaError_t attention(const AttentionArgs& a, const float* q, int64_t n, const int32_t* batch, float* out,
                      cudaStream_t stream) {
  if (a.head_dim_k > kMaxHeadDim || a.n_ctx > max_attention_context()) return cudaErrorInvalidValue;
  const dim3 grid(static_cast<unsigned>(a.n_head), static_cast<unsigned>(n));
  attention_kernel<<<grid, kAttentionThreads, attention_shared_bytes(a.n_ctx, a.head_dim_k), stream>>>(a, q, batch,
                                                                                                     out);
  return cudaGetLastError();
}

cudaError_t swiglu(const float* gate, const float* up, int64_t n, float* out, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  swiglu_kernel<<<blocks_for(n, 256), 256, 0, stream>>>(gate, up, n, out);
  return cudaGetLastError();
}

cudaError_t add(const float* a, const float* b, int64_t n, float* out, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  add_kernel<<<blocks_for(n, 256), 256, 0, stream>>>(a, b, n, out);
  return cudaGetLastError();
}

}  // namespace plumb::cuda
