// The CUDA backend's ops other than weight products, each the CPU backend's arithmetic
// operation for operation (src/backend/cpu/ops.cpp, attention_kernels.h, activation_kernels.cpp).
#include <cuda_fp16.h>

#include <cstdint>
#include <cstdlib>

#include "backend/cuda/attention_chunks.cuh"
#include "backend/cuda/attention_step.h"
#include "backend/cuda/attention_tiled.h"
#include "backend/cuda/device_info.h"
#include "backend/cuda/exp_f32.cuh"
#include "backend/cuda/kernels.h"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/rms_scale.cuh"
#include "backend/cuda/rope_cache.cuh"
#include "quant/half_bits.h"

namespace plumb::cuda {

namespace {

// Block per row: rms_scale, then y = x * scale * w as the CPU.
__global__ void rms_norm_kernel(const float* __restrict__ x, const float* __restrict__ w, float eps, int64_t width,
                                float* __restrict__ y) {
  pdl_start();
  __shared__ double partial[kNormThreads];
  const float* xt = x + blockIdx.x * width;
  float* yt = y + blockIdx.x * width;
  const float scale = rms_scale(xt, width, eps, partial);
  for (int64_t i = threadIdx.x; i < width; i += kNormThreads) yt[i] = (xt[i] * scale) * w[i];
}

// Thread per pair (token, head, i).
__global__ void rope_kernel(float* x, int64_t n, int64_t n_heads, int64_t head_dim, const float* __restrict__ cos_t,
                            const float* __restrict__ sin_t, int64_t half, const int32_t* __restrict__ batch) {
  pdl_start();
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= n * n_heads * half) return;
  const int64_t i = idx % half;
  const int64_t h = (idx / half) % n_heads;
  const int64_t t = idx / (half * n_heads);
  const int64_t pos = batch[0] + t;
  const float cs = cos_t[pos * half + i];
  const float sn = sin_t[pos * half + i];
  float* v = x + (t * n_heads + h) * head_dim;
  float x0 = v[2 * i], x1 = v[2 * i + 1];
  rotate_pair(x0, x1, cs, sn);
  v[2 * i] = x0, v[2 * i + 1] = x1;
}

// Thread per value of k, then of v.
__global__ void kv_store_kernel(bool f16, void* __restrict__ k_cache, void* __restrict__ v_cache, int64_t k_width,
                                int64_t v_width, const float* __restrict__ k, const float* __restrict__ v, int64_t n,
                                const int32_t* __restrict__ batch) {
  pdl_start();
  int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  void* cache = k_cache;
  const float* src = k;
  int64_t width = k_width;
  if (idx >= n * k_width) {
    idx -= n * k_width;
    cache = v_cache, src = v, width = v_width;
    if (idx >= n * v_width) return;
  }
  store_cached(f16, cache, (batch[0] + idx / width) * width + idx % width, src[idx]);
}

// Thread per item of [q pairs | k pairs | v values]: a q or k pair (2i, 2i + 1) is rotated
// (i < n_rot / 2) as rope_kernel does; a k pair is then stored with its rotated values, a v
// value as it is, as kv_store_kernel does.
__global__ void rope_store_kernel(RopeStoreArgs a, int64_t n, const int32_t* __restrict__ batch) {
  pdl_start();
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
      rotate_pair(x0, x1, a.cos[pos * rot + i], a.sin[pos * rot + i]);
      v[2 * i] = x0, v[2 * i + 1] = x1;
    }
    if (!is_k) return;
    const int64_t width = a.n_head_kv * a.head_dim;
    const int64_t dst = (batch[0] + t) * width + h * a.head_dim + 2 * i;
    store_cached(a.f16, a.k_cache, dst, x0);
    store_cached(a.f16, a.k_cache, dst + 1, x1);
    return;
  }
  idx -= q_pairs + k_pairs;
  if (idx >= n * a.v_width) return;
  store_cached(a.f16, a.v_cache, (batch[0] + idx / a.v_width) * a.v_width + idx % a.v_width, a.v[idx]);
}

constexpr int kAttentionThreads = 128;
constexpr int kKeyTile = kAttentionThreads;  // positions whose keys (then values) are in shared memory at once
constexpr int kMaxHeadDim = 256;

// Floats of a staged tile row: keys padded by one against bank conflicts, values as they are.
__host__ __device__ inline int tile_row(int head_dim_k, int head_dim_v) {
  return head_dim_k + 1 > head_dim_v ? head_dim_k + 1 : head_dim_v;
}

// Floats of one query row's scores over n positions, a multiple of four (16-byte aligned rows).
__host__ __device__ inline int64_t scores_floats(int64_t n) { return (n + 3) / 4 * 4; }

// A chunk of the contract (attention_chunks.cuh) is whole tiles.
static_assert(kChunk % kKeyTile == 0, "a chunk is whole tiles");

// Rows of the tile that starts at position p0, of the positions before `end`.
__device__ __forceinline__ int tile_rows(int p0, int end) { return end - p0 < kKeyTile ? end - p0 : kKeyTile; }

// Cache rows p0 .. p0 + rows - 1, columns col0 .. col0 + width - 1 (width even) into
// dst[row * dst_stride + column] as f32, two values a load, by the whole block.
template <bool F16>
__device__ __forceinline__ void stage_tile(const void* __restrict__ cache, int64_t cache_width, int64_t col0, int p0,
                                           int rows, int width, float* __restrict__ dst, int dst_stride) {
  const int half = width / 2;
  for (int i = threadIdx.x; i < rows * half; i += kAttentionThreads) {
    const int r = i / half, c = 2 * (i % half);
    const int64_t at = (p0 + r) * cache_width + col0 + c;
    float2 v;
    if constexpr (F16) {
      v = __half22float2(*reinterpret_cast<const __half2*>(static_cast<const uint16_t*>(cache) + at));
    } else {
      v = *reinterpret_cast<const float2*>(static_cast<const float*>(cache) + at);
    }
    dst[r * dst_stride + c] = v.x;
    dst[r * dst_stride + c + 1] = v.y;
  }
}

// F16 tiles loaded a tile ahead: widths w up to kAheadWidth whose eight-value chunks divide
// kAttentionThreads (8, 16, 32, 64, 128), so that a thread's chunks are rows apart at one column.
constexpr int kAheadWidth = 128;
constexpr int kAheadChunks = kKeyTile * kAheadWidth / 8 / kAttentionThreads;
__host__ __device__ inline bool loads_ahead(int width) {
  return width % 8 == 0 && width <= kAheadWidth && kAttentionThreads % (width / 8) == 0;
}

// The tiles of one phase (keys, then values) over positions [begin, end): rows of the KV head's
// columns col0 .. col0 + width - 1 into shared memory as f32, kKeyTile rows at a time. With
// kAhead (F16, loads_ahead) each thread's eight-value chunks of the next tile are loaded into
// registers as soon as this one is in shared memory, so their latency passes while the block
// works on this one; without, stage_tile loads each tile when it is put.
template <bool F16, bool kAhead>
struct TileStream {
  const void* cache;
  int64_t cache_width, col0;
  int width, end;
  uint4 raw[kAhead ? kAheadChunks : 1];

  __device__ TileStream(const void* c, int64_t cw, int64_t c0, int w, int begin, int e)
      : cache(c), cache_width(cw), col0(c0), width(w), end(e) {
    if constexpr (kAhead) fetch(begin);
  }
  // Chunk j of this thread: row first_row() + j * row_step(), values column() .. column() + 7.
  __device__ int chunks() const { return width / 8; }
  __device__ int first_row() const { return threadIdx.x / chunks(); }
  __device__ int row_step() const { return kAttentionThreads / chunks(); }
  __device__ int column() const { return 8 * (threadIdx.x % chunks()); }
  __device__ void fetch(int p0) {
    const int rows = tile_rows(p0, end), step = row_step();
    const uint16_t* at = static_cast<const uint16_t*>(cache) + (p0 + first_row()) * cache_width + col0 + column();
#pragma unroll
    for (int j = 0; j < kAheadChunks; ++j) {
      if (first_row() + j * step < rows) raw[j] = *reinterpret_cast<const uint4*>(at + j * step * cache_width);
    }
  }
  // The tile at p0 into dst[row * stride + column]; then the next one's loads, when kAhead.
  __device__ void put(int p0, float* __restrict__ dst, int stride) {
    if constexpr (kAhead) {
      const int rows = tile_rows(p0, end), step = row_step();
      float* to = dst + first_row() * stride + column();
#pragma unroll
      for (int j = 0; j < kAheadChunks; ++j) {
        if (first_row() + j * step >= rows) continue;
        const __half2* h = reinterpret_cast<const __half2*>(&raw[j]);
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const float2 v = __half22float2(h[e]);
          to[j * step * stride + 2 * e] = v.x;
          to[j * step * stride + 2 * e + 1] = v.y;
        }
      }
      if (p0 + kKeyTile < end) fetch(p0 + kKeyTile);
    } else {
      stage_tile<F16>(cache, cache_width, col0, p0, tile_rows(p0, end), width, dst, stride);
    }
  }
};

// Query heads a block takes: one (kHeads = 1), or the G = n_head / n_head_kv heads that share a
// KV head (kHeads = kMaxGroup, G at most that, head dims at most kMaxGroupWidth), so that a
// prompt's blocks stage each key and value tile once for the G of them instead of G times.
// Measured (H100, pp512): TinyLlama's 8 heads of 64 a KV head 16,429 -> 18,559 t/s; Llama-3-8B's
// 4 of 128, 3,602 -> 3,447: so head dims of at most 64.
constexpr int kMaxGroup = 8;
constexpr int kMaxGroupWidth = 64;
template <int kHeads>
constexpr int kQueryFloats = kHeads == 1 ? kMaxHeadDim : kHeads * kMaxGroupWidth;
template <int kHeads>
constexpr int kOutputsPerThread = kQueryFloats<kHeads> / kAttentionThreads;

// A launch's shared memory beyond its static arrays, for `heads` query rows a block over `own`
// chunks each (all of a row's, or one in a split launch) of a context of `chunks`: the scores over
// the positions the block takes (first, and rows of a multiple of four floats, so that a tile's
// scores are 16-byte aligned and read four at a time); a tile of kKeyTile keys or values, which
// between the keys and the values holds per (head, own chunk) eight double partial sums; per
// (head, chunk) the chunk's maximum (then its factor f_c); per (head, own chunk) the maxima of the
// block's four warps; per (head, chunk) the chunk's sum (doubles, 8-byte aligned).
struct SharedLayout {
  int64_t chunks, own, stride;
  __host__ __device__ SharedLayout(int64_t n_kv_max, bool split, int heads)
      : chunks(chunks_of(n_kv_max)), own(split ? 1 : chunks), stride(split ? kChunk : scores_floats(n_kv_max)) {}
  __host__ __device__ int64_t tile_floats(int heads, int head_dim_k, int head_dim_v) const {
    const int64_t tile = kKeyTile * tile_row(head_dim_k, head_dim_v), partials = heads * own * 8 * 2;
    return tile > partials ? tile : partials;
  }
  // Floats before the sums: an even count.
  __host__ __device__ int64_t floats(int heads, int head_dim_k, int head_dim_v) const {
    const int64_t n = heads * stride + tile_floats(heads, head_dim_k, head_dim_v) + heads * chunks +
                      heads * own * (kAttentionThreads / 32);
    return (n + 1) / 2 * 2;
  }
  __host__ __device__ size_t bytes(int heads, int head_dim_k, int head_dim_v) const {
    return static_cast<size_t>(floats(heads, head_dim_k, head_dim_v)) * sizeof(float) +
           static_cast<size_t>(heads * chunks) * sizeof(double);
  }
};

size_t attention_shared_bytes(int64_t n_kv_max, bool split, int heads, int head_dim_k, int head_dim_v) {
  return SharedLayout(n_kv_max, split, heads).bytes(heads, head_dim_k, head_dim_v);
}

// Block per (token, its `heads` query heads) and, in a split launch, chunk: the contract of
// attention_kernels.h for each query row, the same chains in the same order whichever heads share
// the block and whichever block takes a chunk:
//   s_p = fma chain over d of q[d] k_p[d], times scale (a thread per position p; the keys are
//         staged a tile at a time in shared memory with coalesced loads);
//   per chunk: m_c = max s_p (fmaxf: the same value in any order); e_p = exp_f32(s_p - m_c);
//         sum_c = eight double partials (e_p to partial p % 8, p ascending), combined as
//         partial_sums.h; a_c[d] = fma chain over p ascending of e_p v_p[d] (a thread per
//         output, the values staged a tile at a time like the keys);
//   f_c = exp_f32(m_c - max m_c); sum and a[d] the chunks folded in order; out = a * (1 / sum).
// A block takes all the chunks of its rows, or (a split launch: gridDim.z > 1, a generation
// step's few rows) the one chunk blockIdx.z, whose m_c, sum_c and a_c go to the scratch; the last
// block of a row to finish (a counter) folds the chunks and writes the row. Three blocks a
// multiprocessor: registers for three (the F16 tile-ahead variants would take some 190-200 and
// fit two; a prompt's blocks need the third).
template <bool F16, bool kAhead, int kHeads>
__global__ void __launch_bounds__(kAttentionThreads, 3) attention_kernel(AttentionArgs a, const float* __restrict__ q,
                                                                      const int32_t* __restrict__ batch,
                                                                      float* __restrict__ out) {
  pdl_start();
  extern __shared__ float4 shared_v[];
  constexpr int kWarps = kAttentionThreads / 32;
  const int group = static_cast<int>(a.n_head / a.n_head_kv);
  const int heads = kHeads == 1 ? 1 : group;
  const int hd = static_cast<int>(a.head_dim_k), hdv = static_cast<int>(a.head_dim_v);
  const int h0 = static_cast<int>(blockIdx.x) * heads, t = static_cast<int>(blockIdx.y);
  const int kvh = h0 / group;
  const int n_kv = batch[0] + t + 1;
  const int chunks = static_cast<int>(chunks_of(n_kv));
  if (static_cast<int>(blockIdx.z) >= chunks) return;  // a split launch sized for a longer context
  const bool split = gridDim.z > 1 && chunks > 1;
  const int c0 = split ? static_cast<int>(blockIdx.z) : 0, c1 = split ? c0 + 1 : chunks, own = c1 - c0;
  const int begin = c0 * kChunk, end = min(n_kv, c1 * kChunk);

  const SharedLayout lay(a.n_kv_max, gridDim.z > 1, heads);
  const int64_t stride = lay.stride, nc = lay.chunks;
  float* scores = reinterpret_cast<float*>(shared_v);                                 // [heads][stride], from `begin`
  float* tile = scores + heads * stride;                                              // [kKeyTile][tile_row]
  double* partials = reinterpret_cast<double*>(tile);                                 // [heads][own][8], between
  float* chunk_f = tile + lay.tile_floats(heads, hd, hdv);                            // [heads][nc]
  float* warp_max = chunk_f + heads * nc;                                             // [heads][lay.own][kWarps]
  double* chunk_sum = reinterpret_cast<double*>(scores + lay.floats(heads, hd, hdv));  // [heads][nc]
  __shared__ float q_s[kQueryFloats<kHeads>];
  __shared__ float inv_sums[kHeads];
  const float* qt = q + (static_cast<int64_t>(t) * a.n_head + h0) * hd;  // the block's heads are consecutive
  for (int i = threadIdx.x; i < heads * hd; i += kAttentionThreads) q_s[i] = qt[i];

  // Scores, and each warp's maximum over a chunk's positions as the chunk's last tile is done.
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  float m[kHeads];
#pragma unroll
  for (int g = 0; g < kHeads; ++g) m[g] = -INFINITY;
  TileStream<F16, kAhead> keys(a.k_cache, a.k_width, static_cast<int64_t>(kvh) * hd, hd, begin, end);
  for (int p0 = begin; p0 < end; p0 += kKeyTile) {
    const int rows = tile_rows(p0, end);
    __syncthreads();
    keys.put(p0, tile, hd + 1);
    __syncthreads();
    const int pl = threadIdx.x;
    if (pl < rows) {
      const float* k = tile + pl * (hd + 1);
      float dot[kHeads] = {};
      for (int d = 0; d < hd; ++d) {
        const float kd = k[d];
#pragma unroll
        for (int g = 0; g < kHeads; ++g) {
          if (g < heads) dot[g] = fmaf(q_s[g * hd + d], kd, dot[g]);
        }
      }
#pragma unroll
      for (int g = 0; g < kHeads; ++g) {
        if (g >= heads) break;
        const float sc = dot[g] * a.scale;
        scores[g * stride + p0 - begin + pl] = sc;
        m[g] = fmaxf(m[g], sc);
      }
    }
    if (p0 + kKeyTile >= end || (p0 + kKeyTile) % kChunk == 0) {
      const int c = p0 / kChunk - c0;
#pragma unroll
      for (int g = 0; g < kHeads; ++g) {
        if (g >= heads) break;
        float v = m[g];
#pragma unroll
        for (int off = 16; off > 0; off /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
        if (lane == 0) warp_max[(g * lay.own + c) * kWarps + warp] = v;
        m[g] = -INFINITY;
      }
    }
  }
  // m_c of head g and chunk c (one of the block's), from its warps' maxima.
  const auto chunk_max = [&](int g, int c) {
    const float* w = warp_max + (g * lay.own + c - c0) * kWarps;
    float v = w[0];
#pragma unroll
    for (int k = 1; k < kWarps; ++k) v = fmaxf(v, w[k]);
    return v;
  };
  __syncthreads();
  for (int g = 0; g < heads; ++g) {
    float* sg = scores + g * stride;
    int c = -1;
    float mc = 0.0f;
    for (int p = threadIdx.x; p < end - begin; p += kAttentionThreads) {
      if ((begin + p) / kChunk != c) c = (begin + p) / kChunk, mc = chunk_max(g, c);
      sg[p] = exp_f32(sg[p] - mc);
    }
  }
  __syncthreads();
  // Each chunk's eight double partials (a thread per head, chunk and partial, into the free tile).
  for (int i = threadIdx.x; i < heads * own * 8; i += kAttentionThreads) {
    const int g = i / (own * 8), c = c0 + (i / 8) % own, j = i % 8;
    const float* sg = scores + g * stride - begin;
    double s = 0.0;
    for (int p = c * kChunk + j; p < min(end, (c + 1) * kChunk); p += 8) s += sg[p];
    partials[i] = s;
  }
  __syncthreads();
  // A thread per head: each chunk's m_c and sum_c (the partials' fixed combination); with all of
  // its rows' chunks, their factors f_c (over m_c: 1 for a single chunk) and the sum.
  if (threadIdx.x < heads) {
    const int g = threadIdx.x;
    float* fg = chunk_f + g * nc;
    double* sums = chunk_sum + g * nc;
    for (int c = c0; c < c1; ++c) {
      const double* pg = partials + (g * own + c - c0) * 8;
      sums[c] = ((pg[0] + pg[4]) + (pg[2] + pg[6])) + ((pg[1] + pg[5]) + (pg[3] + pg[7]));
      fg[c] = chunk_max(g, c);
    }
    if (!split) inv_sums[g] = static_cast<float>(1.0 / fold_chunk_sums(fg, sums, chunks));
  }

  // The value chains, each chunk's folded into the total as the chunk ends (not in a split block:
  // its one chunk's chains are the output).
  float acc[kOutputsPerThread<kHeads>] = {};
  float* total = q_s;  // the queries' room: output o's total, this thread's alone
  const auto fold = [&](int c) {
#pragma unroll
    for (int j = 0; j < kOutputsPerThread<kHeads>; ++j) {
      const int o = threadIdx.x + j * kAttentionThreads;
      if (o >= heads * hdv) break;
      const float f = chunk_f[(o / hdv) * nc + c];
      total[o] = c == 0 ? acc[j] * f : fmaf(acc[j], f, total[o]);
      acc[j] = 0.0f;
    }
  };
  TileStream<F16, kAhead> values(a.v_cache, a.v_width, static_cast<int64_t>(kvh) * hdv, hdv, begin, end);
  // (rel counts from 0 in whole tiles, so that the scores of a tile are known to be aligned.)
  for (int rel = 0; rel < end - begin; rel += kKeyTile) {
    const int p0 = begin + rel, rows = tile_rows(p0, end);
    if (!split && rel > 0 && p0 % kChunk == 0) fold(p0 / kChunk - 1);
    __syncthreads();
    values.put(p0, tile, hdv);
    __syncthreads();
#pragma unroll
    for (int j = 0; j < kOutputsPerThread<kHeads>; ++j) {
      const int o = threadIdx.x + j * kAttentionThreads;
      if (o >= heads * hdv) break;
      const int g = o / hdv, d = o % hdv;
      // Four scores a load: they are 16-byte aligned (scores start so, rows are multiples of four
      // floats, rel of kKeyTile); the chain is the same, one position after another.
      const float* sg = scores + g * stride + rel;
      float v = acc[j];
      int pl = 0;
#pragma unroll 2
      for (; pl + 4 <= rows; pl += 4) {
        const float4 s4 = *reinterpret_cast<const float4*>(sg + pl);
        v = fmaf(s4.x, tile[pl * hdv + d], v);
        v = fmaf(s4.y, tile[(pl + 1) * hdv + d], v);
        v = fmaf(s4.z, tile[(pl + 2) * hdv + d], v);
        v = fmaf(s4.w, tile[(pl + 3) * hdv + d], v);
      }
      for (; pl < rows; ++pl) v = fmaf(sg[pl], tile[pl * hdv + d], v);
      acc[j] = v;
    }
  }
  float* ot = out + (static_cast<int64_t>(t) * a.n_head + h0) * hdv;
  if (!split) {
    fold(chunks - 1);
#pragma unroll
    for (int j = 0; j < kOutputsPerThread<kHeads>; ++j) {
      const int o = threadIdx.x + j * kAttentionThreads;
      if (o < heads * hdv) ot[o] = total[o] * inv_sums[o / hdv];
    }
    return;
  }

  // A split block: its chunk to the scratch; the last of its row's chunks folds them all.
  const int64_t row = static_cast<int64_t>(t) * a.n_head + h0;  // kHeads is 1 in a split launch
  const SplitLayout sp(a.split, gridDim.y, a.n_head, nc);
  float* chains = sp.chains + row * nc * hdv;
#pragma unroll
  for (int j = 0; j < kOutputsPerThread<kHeads>; ++j) {
    const int o = threadIdx.x + j * kAttentionThreads;
    if (o < hdv) chains[c0 * hdv + o] = acc[j];
  }
  if (threadIdx.x == 0) {
    sp.sums[row * nc + c0] = chunk_sum[c0];
    sp.maxes[row * nc + c0] = chunk_f[c0];
  }
  if (!last_to_finish(&a.split_done[row], chunks)) return;
  fold_row(sp, row, nc, chunks, hdv, chunk_f, chunk_sum, inv_sums, ot);
}

__global__ void swiglu_kernel(const float* __restrict__ gate, const float* __restrict__ up, int64_t n,
                              float* __restrict__ out) {
  pdl_start();
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  out[i] = swiglu_value(gate[i], up[i]);
}

__global__ void add_kernel(const float* a, const float* b, int64_t n, float* out) {
  pdl_start();
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
  return launch(rms_norm_kernel, static_cast<unsigned>(n), kNormThreads, 0, stream, x, w, eps, width, y);
}

cudaError_t rope(float* x, int64_t n, int64_t n_heads, int64_t head_dim, const float* cos, const float* sin,
                 int64_t n_rot, const int32_t* batch, cudaStream_t stream) {
  const int64_t pairs = n * n_heads * (n_rot / 2);
  if (pairs == 0) return cudaSuccess;
  return launch(rope_kernel, blocks_for(pairs, 256), 256, 0, stream, x, n, n_heads, head_dim, cos, sin, n_rot / 2, batch);
}

cudaError_t kv_store(bool f16, void* k_cache, void* v_cache, int64_t k_width, int64_t v_width, const float* k,
                     const float* v, int64_t n, const int32_t* batch, cudaStream_t stream) {
  return launch(kv_store_kernel, blocks_for(n * (k_width + v_width), 256), 256, 0, stream, f16, k_cache, v_cache,
                k_width, v_width, k, v, n, batch);
}

cudaError_t rope_store(const RopeStoreArgs& a, int64_t n, const int32_t* batch, cudaStream_t stream) {
  const int64_t items = n * ((a.n_head + a.n_head_kv) * (a.head_dim / 2) + a.v_width);
  if (items == 0) return cudaSuccess;
  return launch(rope_store_kernel, blocks_for(items, 256), 256, 0, stream, a, n, batch);
}

int64_t max_attention_context() {
  // The longest context whose one head's scores, chunk arrays and tile fit the budget.
  static const int64_t longest = [] {
    int64_t lo = 1, hi = static_cast<int64_t>(kMaxAttentionShared / sizeof(float));
    while (lo < hi) {
      const int64_t mid = (lo + hi + 1) / 2;
      if (attention_shared_bytes(mid, false, 1, kMaxHeadDim, kMaxHeadDim) <= kMaxAttentionShared) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }();
  return longest;
}

// Every variant of attention_kernel that attention() launches.
constexpr auto kAttentionKernels = {attention_kernel<false, false, 1>,         attention_kernel<true, false, 1>,
                                    attention_kernel<true, true, 1>,          attention_kernel<false, false, kMaxGroup>,
                                    attention_kernel<true, false, kMaxGroup>, attention_kernel<true, true, kMaxGroup>};

cudaError_t prepare_attention() {
  cudaError_t e = cudaSuccess;
  for (auto* kernel : kAttentionKernels) {
    if (e == cudaSuccess) {
      e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(kMaxAttentionShared));
    }
  }
  return e == cudaSuccess ? prepare_step_attention() : e;
}

namespace {
// A launch of few blocks (a generation step: heads x tokens at most twice the multiprocessors)
// over more than one chunk gives each chunk a block of its own (PLUMB_CUDA_ATTENTION_SPLIT=0: a
// block a row, for measuring).
bool splits(const AttentionArgs& a, int64_t n) {
  static const bool enabled = switched_on("PLUMB_CUDA_ATTENTION_SPLIT");
  const int64_t n_kv_max = a.n_kv_max <= 0 || a.n_kv_max > a.n_ctx ? a.n_ctx : a.n_kv_max;
  return enabled && chunks_of(n_kv_max) > 1 && a.n_head * n <= 2 * static_cast<int64_t>(multiprocessors());
}
}  // namespace

size_t attention_split_bytes(const AttentionArgs& args, int64_t n) {
  AttentionArgs a = args;
  if (a.n_kv_max <= 0 || a.n_kv_max > a.n_ctx) a.n_kv_max = a.n_ctx;
  if (tiled_attention_takes(a, n)) return tiled_attention_scratch(a, n);
  if (!splits(a, n)) return 0;
  return SplitLayout::bytes(n, a.n_head, chunks_of(a.n_kv_max), a.head_dim_v);
}

int64_t attention_split_counters(const AttentionArgs& args, int64_t n) {
  AttentionArgs a = args;
  if (a.n_kv_max <= 0 || a.n_kv_max > a.n_ctx) a.n_kv_max = a.n_ctx;
  return !tiled_attention_takes(a, n) && splits(a, n) ? n * a.n_head : 0;
}

cudaError_t attention(const AttentionArgs& args, const float* q, int64_t n, const int32_t* batch, float* out,
                      cudaStream_t stream) {
  AttentionArgs a = args;
  if (a.n_kv_max <= 0 || a.n_kv_max > a.n_ctx) a.n_kv_max = a.n_ctx;
  if (a.head_dim_k > kMaxHeadDim || a.head_dim_v > kMaxHeadDim || a.head_dim_k % 2 != 0 || a.head_dim_v % 2 != 0 ||
      a.n_ctx > max_attention_context() || n > 65535 || a.n_head_kv <= 0 || a.n_head % a.n_head_kv != 0) {
    return cudaErrorInvalidValue;
  }
  if (a.split != nullptr && tiled_attention_takes(a, n)) return tiled_attention(a, q, n, batch, out, stream);
  const int hd = static_cast<int>(a.head_dim_k), hdv = static_cast<int>(a.head_dim_v);
  const int group = static_cast<int>(a.n_head / a.n_head_kv);
  const bool split = a.split != nullptr && a.split_done != nullptr && splits(a, n);
  if (split && step_attention_takes(a)) return step_attention(a, q, n, batch, out, stream);
  const bool ahead = loads_ahead(hd) && loads_ahead(hdv);
  // A prompt's blocks (more than two a multiprocessor) take the query heads that share a KV head
  // together where their scores leave room for two blocks a multiprocessor; a generation step's
  // few blocks take a head each, to spread over the multiprocessors.
  const bool many = a.n_head * n > 2 * static_cast<int64_t>(multiprocessors());
  static const bool grouping = switched_on("PLUMB_CUDA_ATTENTION_GROUP");
  const bool grouped = grouping && many && group >= 2 && group <= kMaxGroup && hd <= kMaxGroupWidth &&
                       hdv <= kMaxGroupWidth &&
                       attention_shared_bytes(a.n_kv_max, false, group, hd, hdv) <= kMaxAttentionShared / 2;
  const int heads = grouped ? group : 1;
  auto* kernel = grouped ? (!a.f16 ? attention_kernel<false, false, kMaxGroup>
                            : ahead ? attention_kernel<true, true, kMaxGroup>
                                    : attention_kernel<true, false, kMaxGroup>)
                         : (!a.f16 ? attention_kernel<false, false, 1>
                            : ahead ? attention_kernel<true, true, 1>
                                    : attention_kernel<true, false, 1>);
  const dim3 grid(static_cast<unsigned>(a.n_head / heads), static_cast<unsigned>(n),
                  split ? static_cast<unsigned>(chunks_of(a.n_kv_max)) : 1u);
  return launch(kernel, grid, kAttentionThreads, attention_shared_bytes(a.n_kv_max, split, heads, hd, hdv), stream, a,
                q, batch, out);
}

cudaError_t swiglu(const float* gate, const float* up, int64_t n, float* out, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  return launch(swiglu_kernel, blocks_for(n, 256), 256, 0, stream, gate, up, n, out);
}

cudaError_t add(const float* a, const float* b, int64_t n, float* out, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  return launch(add_kernel, blocks_for(n, 256), 256, 0, stream, a, b, n, out);
}

}  // namespace plumb::cuda
