// Attention of a prompt's many query rows, with the contract of attention_kernels.h (the chains of
// ops.cu's attention_kernel, the same bits): a block takes kRows query rows (the query heads that
// share a KV head, for as many consecutive tokens as fill kRows) and one chunk of positions, and
// runs the chunk's two products as register-tiled matrix products, each output's chain over d or
// over positions in the contract's order. Its chunk's maximum, sum and value chains go to a
// scratch (attention_chunks.cuh), and a second launch folds each row's chunks.
//
// Why: a block per token (ops.cu) reads each staged key and value once per query row from shared
// memory for one fma; here a thread keeps a 4 x 4 tile of outputs and reads 8 values for 16 fmas.
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>

#include "backend/cuda/attention_chunks.cuh"
#include "backend/cuda/attention_tiled.h"
#include "backend/cuda/device_info.h"
#include "backend/cuda/exp_f32.cuh"
#include "backend/cuda/launch.cuh"

namespace plumb::cuda {

namespace {

constexpr int kRows = 64;        // query rows a block
constexpr int kTile = 64;        // positions whose keys or values are staged at once
constexpr int kThreads = 256;    // 16 x 16 threads, each a 4 x 4 tile of a 64 x 64 product
constexpr int kMaxDim = 128;     // head dims up to this, multiples of 8
constexpr int kFoldThreads = 64;
constexpr int64_t kMaxScratch = 64ll << 20;  // bytes of chunk results a launch writes at most
static_assert(kChunk % kTile == 0, "a chunk is whole tiles");

// Shared memory, floats: the block's queries transposed, qt[d][r]; the chunk's scores, then their
// exponentials, st[p][r] (p from the chunk's start); one staged tile, keys transposed kt[d][p] or
// values v[p][d]; then per row its maximum, and its eight double partial sums.
struct TiledLayout {
  int hd, hdv;
  __host__ __device__ int q_floats() const { return hd * kRows; }
  __host__ __device__ int scores_floats() const { return kChunk * kRows; }
  __host__ __device__ int tile_floats() const { return kTile * (hd > hdv ? hd : hdv); }
  __host__ __device__ int floats() const { return q_floats() + scores_floats() + tile_floats() + kRows; }
  __host__ __device__ size_t bytes() const {
    return static_cast<size_t>(floats()) * sizeof(float) + kRows * 8 * sizeof(double);
  }
};

// The tile of positions p0 .. p0 + kTile - 1 (zeros past `end`) of the KV head's columns col0 ..
// col0 + width - 1 as f32: transposed into dst[c * kTile + p] (keys), or as it is into
// dst[p * width + c] (values). Eight values a load; for the transpose a warp's lanes take
// consecutive positions, so that their stores fall in distinct banks.
template <bool F16, bool kTranspose>
__device__ void stage(const void* __restrict__ cache, int64_t cache_width, int64_t col0, int p0, int end, int width,
                      float* __restrict__ dst) {
  const int groups = width / 8;
  for (int i = threadIdx.x; i < kTile * groups; i += kThreads) {
    const int p = kTranspose ? i % kTile : i / groups, c = 8 * (kTranspose ? i / kTile : i % groups);
    float v[8] = {};
    if (p0 + p < end) {
      const int64_t at = static_cast<int64_t>(p0 + p) * cache_width + col0 + c;
      if constexpr (F16) {
        const uint4 raw = *reinterpret_cast<const uint4*>(static_cast<const uint16_t*>(cache) + at);
        const __half2* h = reinterpret_cast<const __half2*>(&raw);
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const float2 f = __half22float2(h[e]);
          v[2 * e] = f.x, v[2 * e + 1] = f.y;
        }
      } else {
        const float4* f = reinterpret_cast<const float4*>(static_cast<const float*>(cache) + at);
        const float4 a = f[0], b = f[1];
        v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
      }
    }
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      if constexpr (kTranspose) {
        dst[(c + e) * kTile + p] = v[e];
      } else {
        dst[p * width + c + e] = v[e];
      }
    }
  }
}

__device__ __forceinline__ float4 ld4(const float* p) { return *reinterpret_cast<const float4*>(p); }
__device__ __forceinline__ float at4(const float4& v, int i) { return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w; }

// Block (KV head, tile of TT = kRows / G tokens, chunk c) of a launch over tokens t_off ..
// t_off + m - 1 of the batch: row r = tt G + g is query head kvh G + g of token t_off + tile
// TT + tt, which sees positions [0, n_kv) with n_kv = batch[0] + its token + 1. The chunk's
// positions of each row, by the contract:
//   s_p = (fma chain over d of q[d] k_p[d]) * scale;  m_c = max s_p;  e_p = exp_f32(s_p - m_c);
//   sum_c = eight double partials (e_p to partial p % 8, ascending), combined as partial_sums.h;
//   a_c[d] = fma chain over p ascending of e_p v_p[d];
// m_c, sum_c and a_c to the scratch row (token - t_off) * n_head + head, chunk c.
template <bool F16>
__global__ void __launch_bounds__(kThreads, 2) tiled_attention_kernel(AttentionArgs a, const float* __restrict__ q,
                                                                   const int32_t* __restrict__ batch, int64_t t_off,
                                                                   int64_t m) {
  pdl_start();
  extern __shared__ float4 shared_p[];
  const int hd = static_cast<int>(a.head_dim_k), hdv = static_cast<int>(a.head_dim_v);
  const int group = static_cast<int>(a.n_head / a.n_head_kv), tt_count = kRows / group, rows = tt_count * group;
  const int kvh = static_cast<int>(blockIdx.x), c = static_cast<int>(blockIdx.z);
  const int64_t t0 = static_cast<int64_t>(blockIdx.y) * tt_count;  // the tile's first token, from t_off
  const int tokens = static_cast<int>(min(static_cast<int64_t>(tt_count), m - t0));
  const int64_t first_kv = batch[0] + t_off + t0 + 1;  // n_kv of the tile's first token
  const int begin = c * kChunk;
  const int last_end = static_cast<int>(first_kv) + tokens - 1;
  if (begin >= last_end) return;  // no row of the tile reaches this chunk
  const int end_max = min(last_end, begin + kChunk);

  const TiledLayout lay{hd, hdv};
  float* qt = reinterpret_cast<float*>(shared_p);  // [hd][kRows]
  float* st = qt + lay.q_floats();                 // [kChunk][kRows]
  float* tile = st + lay.scores_floats();          // keys [hd][kTile] or values [kTile][hdv]
  float* row_max = tile + lay.tile_floats();       // [kRows]
  double* partials = reinterpret_cast<double*>(row_max + kRows);  // [kRows][8]
  // Row r's end in this chunk (its positions are [begin, row_end(r)); none where it is begin).
  const auto row_end = [&](int r) {
    if (r >= rows || r / group >= tokens) return begin;
    return static_cast<int>(min(first_kv + r / group, static_cast<int64_t>(begin + kChunk)));
  };

  // The rows' queries, transposed (a warp's lanes take consecutive rows: distinct banks).
  for (int i = threadIdx.x; i < hd * kRows; i += kThreads) {
    const int r = i % kRows, d = i / kRows;
    float v = 0.0f;
    if (r < rows && r / group < tokens) {
      const int64_t token = t_off + t0 + r / group;
      v = q[(token * a.n_head + static_cast<int64_t>(kvh) * group + r % group) * hd + d];
    }
    qt[d * kRows + r] = v;
  }

  // Scores: thread (tr, tp) takes rows 4 tr .. 4 tr + 3 and positions 4 tp .. 4 tp + 3 of a tile.
  const int tr = threadIdx.x / 16, tp = threadIdx.x % 16;
  for (int p0 = begin; p0 < end_max; p0 += kTile) {
    __syncthreads();
    stage<F16, true>(a.k_cache, a.k_width, static_cast<int64_t>(kvh) * hd, p0, end_max, hd, tile);
    __syncthreads();
    float acc[4][4] = {};
#pragma unroll 4
    for (int d = 0; d < hd; ++d) {
      const float4 qv = ld4(qt + d * kRows + 4 * tr), kv = ld4(tile + d * kTile + 4 * tp);
#pragma unroll
      for (int i = 0; i < 4; ++i) {
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(at4(qv, i), at4(kv, j), acc[i][j]);
      }
    }
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      float* to = st + (p0 - begin + 4 * tp + j) * kRows + 4 * tr;
      *reinterpret_cast<float4*>(to) =
          make_float4(acc[0][j] * a.scale, acc[1][j] * a.scale, acc[2][j] * a.scale, acc[3][j] * a.scale);
    }
  }
  __syncthreads();
  // Each row's maximum (fmaxf: the same value in any order), then its exponentials.
  if (threadIdx.x < kRows) {
    const int r = threadIdx.x, e = row_end(r);
    float mx = -INFINITY;
    for (int p = begin; p < e; ++p) mx = fmaxf(mx, st[(p - begin) * kRows + r]);
    row_max[r] = mx;
  }
  __syncthreads();
  for (int i = threadIdx.x; i < (end_max - begin) * kRows; i += kThreads) {
    const int r = i % kRows, p = begin + i / kRows;
    st[i] = p < row_end(r) ? exp_f32(st[i] - row_max[r]) : 0.0f;
  }
  __syncthreads();
  // The eight double partials of each row: partial j sums e_p for p = begin + j, begin + j + 8, ...
  for (int i = threadIdx.x; i < kRows * 8; i += kThreads) {
    const int r = i / 8, j = i % 8, e = row_end(r);
    double s = 0.0;
    for (int p = begin + j; p < e; p += 8) s += st[(p - begin) * kRows + r];
    partials[i] = s;
  }

  // Values: thread (tr, td) takes rows 4 tr .. 4 tr + 3 and dims 4 td + 64 k .. + 3 (k < 2),
  // each output's chain over the chunk's positions in order; a row's chain stops at its end.
  const int td = threadIdx.x % 16;
  int ends[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) ends[i] = row_end(4 * tr + i);
  float acc[4][2][4] = {};
  for (int p0 = begin; p0 < end_max; p0 += kTile) {
    __syncthreads();
    stage<F16, false>(a.v_cache, a.v_width, static_cast<int64_t>(kvh) * hdv, p0, end_max, hdv, tile);
    __syncthreads();
    const int n_pos = min(kTile, end_max - p0);
    for (int pl = 0; pl < n_pos; ++pl) {
      const int p = p0 + pl;
      const float4 ev = ld4(st + (p - begin) * kRows + 4 * tr);
#pragma unroll
      for (int k = 0; k < 2; ++k) {
        const int d = 4 * td + 64 * k;
        if (d >= hdv) break;
        const float4 vv = ld4(tile + pl * hdv + d);
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          if (p >= ends[i]) continue;
#pragma unroll
          for (int j = 0; j < 4; ++j) acc[i][k][j] = fmaf(at4(ev, i), at4(vv, j), acc[i][k][j]);
        }
      }
    }
  }

  // The chunk's results of each row that has positions in it.
  const SplitLayout sp(a.split, m, a.n_head, chunks_of(a.n_kv_max));
  const int64_t nc = chunks_of(a.n_kv_max);
  const auto scratch_row = [&](int r) { return (t0 + r / group) * a.n_head + static_cast<int64_t>(kvh) * group + r % group; };
  if (threadIdx.x < kRows) {
    const int r = threadIdx.x;
    if (row_end(r) > begin) {
      const double* pr = partials + r * 8;
      sp.sums[scratch_row(r) * nc + c] = ((pr[0] + pr[4]) + (pr[2] + pr[6])) + ((pr[1] + pr[5]) + (pr[3] + pr[7]));
      sp.maxes[scratch_row(r) * nc + c] = row_max[r];
    }
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int r = 4 * tr + i;
    if (ends[i] <= begin) continue;
    float* chains = sp.chains + (scratch_row(r) * nc + c) * hdv;
#pragma unroll
    for (int k = 0; k < 2; ++k) {
      const int d = 4 * td + 64 * k;
      if (d >= hdv) break;
      *reinterpret_cast<float4*>(chains + d) = make_float4(acc[i][k][0], acc[i][k][1], acc[i][k][2], acc[i][k][3]);
    }
  }
}

// Block per (head, token) of the launch: the row's chunks folded (attention_chunks.cuh).
__global__ void __launch_bounds__(kFoldThreads) tiled_fold_kernel(AttentionArgs a, const int32_t* __restrict__ batch,
                                                                  int64_t t_off, int64_t m, float* __restrict__ out) {
  pdl_start();
  extern __shared__ float4 shared_f[];
  const int64_t nc = chunks_of(a.n_kv_max);
  const int64_t t = blockIdx.y, row = t * a.n_head + blockIdx.x;
  const int chunks = static_cast<int>(chunks_of(batch[0] + t_off + t + 1));
  double* sums = reinterpret_cast<double*>(shared_f);
  float* f = reinterpret_cast<float*>(sums + nc);
  __shared__ float inv_sum;
  const SplitLayout sp(a.split, m, a.n_head, nc);
  fold_row(sp, row, nc, chunks, static_cast<int>(a.head_dim_v), f, sums, &inv_sum,
           out + ((t_off + t) * a.n_head + blockIdx.x) * a.head_dim_v);
}

// Up to kRows query heads a KV head; head dims multiples of 8 (16-byte loads of F16 rows) up to
// kMaxDim.
bool shape_fits(const AttentionArgs& a) {
  const int64_t group = a.n_head / a.n_head_kv;
  return group >= 1 && group <= kRows && a.head_dim_k % 8 == 0 && a.head_dim_v % 8 == 0 && a.head_dim_k <= kMaxDim &&
         a.head_dim_v <= kMaxDim;
}

// Tokens a launch takes: its scratch within kMaxScratch, a whole number of tiles.
int64_t tokens_per_launch(const AttentionArgs& a) {
  const int64_t tt = kRows / (a.n_head / a.n_head_kv);
  const auto per_token = static_cast<int64_t>(SplitLayout::bytes(1, a.n_head, chunks_of(a.n_kv_max), a.head_dim_v));
  return std::max<int64_t>(tt, kMaxScratch / per_token / tt * tt);
}

}  // namespace

bool tiled_attention_takes(const AttentionArgs& a, int64_t n) {
  static const bool enabled = switched_on("PLUMB_CUDA_ATTENTION_TILED");
  return enabled && shape_fits(a) && a.n_head * n > 2 * static_cast<int64_t>(multiprocessors());
}

size_t tiled_attention_scratch(const AttentionArgs& a, int64_t n) {
  return SplitLayout::bytes(std::min(n, tokens_per_launch(a)), a.n_head, chunks_of(a.n_kv_max), a.head_dim_v);
}

cudaError_t tiled_attention(const AttentionArgs& a, const float* q, int64_t n, const int32_t* batch, float* out,
                            cudaStream_t stream) {
  const auto kernel = a.f16 ? tiled_attention_kernel<true> : tiled_attention_kernel<false>;
  const size_t shared = TiledLayout{static_cast<int>(a.head_dim_k), static_cast<int>(a.head_dim_v)}.bytes();
  static const cudaError_t allowed[2] = {
      cudaFuncSetAttribute(tiled_attention_kernel<false>, cudaFuncAttributeMaxDynamicSharedMemorySize, 200 * 1024),
      cudaFuncSetAttribute(tiled_attention_kernel<true>, cudaFuncAttributeMaxDynamicSharedMemorySize, 200 * 1024)};
  if (allowed[a.f16 ? 1 : 0] != cudaSuccess) return allowed[a.f16 ? 1 : 0];
  const int64_t tt = kRows / (a.n_head / a.n_head_kv), per = tokens_per_launch(a), nc = chunks_of(a.n_kv_max);
  const size_t fold_shared = static_cast<size_t>(nc) * (sizeof(double) + sizeof(float));
  cudaError_t e = cudaSuccess;
  for (int64_t t_off = 0; t_off < n && e == cudaSuccess; t_off += per) {
    const int64_t m = std::min(per, n - t_off);
    const dim3 grid(static_cast<unsigned>(a.n_head_kv), static_cast<unsigned>((m + tt - 1) / tt),
                    static_cast<unsigned>(nc));
    e = launch(kernel, grid, kThreads, shared, stream, a, q, batch, t_off, m);
    if (e == cudaSuccess) {
      e = launch(tiled_fold_kernel, dim3(static_cast<unsigned>(a.n_head), static_cast<unsigned>(m)), kFoldThreads,
                 fold_shared, stream, a, batch, t_off, m, out);
    }
  }
  return e;
}

}  // namespace plumb::cuda
