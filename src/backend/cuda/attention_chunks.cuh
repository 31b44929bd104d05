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

// After a block has written its chunk's results to the scratch: whether it is the last of the
// `chunks` blocks that count on `counter` (zero before the first of them), which then folds their
// results; the last one leaves the counter at zero again for the next launch. Every thread of the
// block calls it.
__device__ inline bool last_to_finish(unsigned* counter, int chunks) {
  __shared__ bool last;
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) last = atomicAdd(counter, 1u) == static_cast<unsigned>(chunks - 1);
  __syncthreads();
  if (!last) return false;
  __threadfence();
  if (threadIdx.x == 0) *counter = 0;
  return true;
}

// The threads that fold a row together: the whole block, or one warp (its lanes).
struct BlockTeam {
  __device__ int rank() const { return static_cast<int>(threadIdx.x); }
  __device__ int size() const { return static_cast<int>(blockDim.x); }
  __device__ void sync() const { __syncthreads(); }
};
struct WarpTeam {
  __device__ int rank() const { return static_cast<int>(threadIdx.x % 32); }
  __device__ int size() const { return 32; }
  __device__ void sync() const { __syncwarp(); }
};

// Row `row` of the scratch (chunks of nc, the first `chunks` of them its own, written by other
// blocks or launches) folded into out[0, hdv) by a team: out = (a_c f_c folded in chunk order) *
// (1 / sum). m, sums: the team's shared memory for `chunks` values; inv_sum: one.
template <class Team = BlockTeam>
__device__ inline void fold_row(const SplitLayout& sp, int64_t row, int64_t nc, int chunks, int hdv, float* m,
                                double* sums, float* inv_sum, float* __restrict__ out, Team team = {}) {
  for (int c = team.rank(); c < chunks; c += team.size()) {
    m[c] = __ldcg(sp.maxes + row * nc + c);
    sums[c] = __ldcg(sp.sums + row * nc + c);
  }
  team.sync();
  if (team.rank() == 0) *inv_sum = static_cast<float>(1.0 / fold_chunk_sums(m, sums, chunks));
  team.sync();
  const float* chains = sp.chains + row * nc * hdv;
  for (int o = team.rank(); o < hdv; o += team.size()) {
    float v = 0.0f;
    for (int c = 0; c < chunks; ++c) {
      const float ac = __ldcg(chains + c * hdv + o);
      v = c == 0 ? ac * m[c] : fmaf(ac, m[c], v);
    }
    out[o] = v * *inv_sum;
  }
}

}  // namespace plumb::cuda
