// The contract's chunks of positions (backend/attention_chunk.h) on the GPU: a row's chunks
// computed by different blocks go through a scratch of per-chunk results and are folded in chunk
// order, as the CPU folds them (attention_kernels.h). Used by the generation steps' split launch
// (ops.cu) and the prompts' tiled attention (attention_tiled.cu).
#pragma once

#include <cstddef>
#include <cstdint>

#include "backend/attention_chunk.h"
#include "backend/cuda/exp_f32.cuh"

namespace plumb::cuda {

constexpr int kChunk = static_cast<int>(kAttentionChunk);
__host__ __device__ inline int64_t chunks_of(int64_t n_kv) { return (n_kv + kChunk - 1) / kChunk; }

// The scratch of chunks computed apart: per (token, head, chunk) the chunk's sum, maximum and
// value chains a_c.
struct SplitLayout {
  double* sums;    // [n][n_head][chunks]
  float* maxes;    // [n][n_head][chunks]
  float* chains;   // [n][n_head][chunks][head_dim_v]
  __host__ __device__ static size_t bytes(int64_t n, int64_t n_head, int64_t chunks, int64_t head_dim_v) {
    return static_cast<size_t>(n * n_head * chunks) * sizeof(double) +
           static_cast<size_t>(n * n_head * chunks * (1 + head_dim_v)) * sizeof(float);
  }
  __host__ __device__ SplitLayout(void* base, int64_t n, int64_t n_head, int64_t chunks) {
    sums = static_cast<double*>(base);
    maxes = reinterpret_cast<float*>(sums + n * n_head * chunks);
    chains = maxes + n * n_head * chunks;
  }
};

// The fold of a row's chunk sums (attention_kernels.h's fold_chunk_sums, one thread): m holds each
// chunk's m_c and gets its factor f_c = exp_f32(m_c - max m_c) (exp_f32(0) is exactly 1, so a
// single chunk keeps its sum); returns the sum of sum_c * f_c in chunk order.
__device__ inline double fold_chunk_sums(float* m, const double* sums, int chunks) {
  float mx = m[0];
  for (int c = 1; c < chunks; ++c) mx = fmaxf(mx, m[c]);
  double sum = 0.0;
  for (int c = 0; c < chunks; ++c) {
    m[c] = exp_f32(m[c] - mx);
    const double weighted = sums[c] * static_cast<double>(m[c]);
    sum = c == 0 ? weighted : sum + weighted;
  }
  return sum;
}

// Row `row` of the scratch (chunks of nc, the first `chunks` of them its own, written by other
// blocks or launches) folded into out[0, hdv) by the whole block: out = (a_c f_c folded in chunk
// order) * (1 / sum). m, sums: the block's shared memory for `chunks` values; inv_sum: one.
__device__ inline void fold_row(const SplitLayout& sp, int64_t row, int64_t nc, int chunks, int hdv, float* m,
                                double* sums, float* inv_sum, float* __restrict__ out) {
  for (int c = threadIdx.x; c < chunks; c += blockDim.x) {
    m[c] = __ldcg(sp.maxes + row * nc + c);
    sums[c] = __ldcg(sp.sums + row * nc + c);
  }
  __syncthreads();
  if (threadIdx.x == 0) *inv_sum = static_cast<float>(1.0 / fold_chunk_sums(m, sums, chunks));
  __syncthreads();
  const float* chains = sp.chains + row * nc * hdv;
  for (int o = threadIdx.x; o < hdv; o += blockDim.x) {
    float v = 0.0f;
    for (int c = 0; c < chunks; ++c) {
      const float ac = __ldcg(chains + c * hdv + o);
      v = c == 0 ? ac * m[c] : fmaf(ac, m[c], v);
    }
    out[o] = v * *inv_sum;
  }
}

}  // namespace plumb::cuda
