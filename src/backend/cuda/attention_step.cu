// A generation step's attention deep in a context, with the contract of attention_kernels.h (the
// chains of ops.cu's attention_kernel, the same bits): a block per (KV head, token, chunk of
// kChunk positions) and in it a warp per query head of the KV head's group. The chunk's keys and
// values are copied into shared memory once for the group, all of the copies in flight at once
// (cp.async: the values arrive while the scores are computed), and the group's heads run side by
// side. Each warp's chunk maximum, sum and value chains go to the split scratch
// (attention_chunks.cuh); the last block of a (KV head, token) to finish folds its heads' rows,
// a warp a row.
//
// Why: ops.cu's split launch gives each (query head, chunk) a block of its own, which stages the
// KV head's chunk again for each of the G heads that share it, 128 positions at a time, and at
// three blocks a multiprocessor (its registers) takes two waves of blocks at depth 4096 on
// TinyLlama's 32 heads; grouping heads in series in its blocks was slower (docs/PERFORMANCE.md).
//
// Per warp (query head h), lane l:
//   scores: positions l + 32 i (i < 8), each s = (fma chain over d ascending of q[d] k[d]) * scale,
//           eight chains side by side, the keys read 16 bytes at a time;
//   m_c = max s (fmaxf, any order), e = exp_f32(s - m_c) into shared memory;
//   sum_c: lanes 0-7 each one of the eight double partials (positions = lane mod 8, ascending),
//          combined by shuffles as ((p0 + p4) + (p2 + p6)) + ((p1 + p5) + (p3 + p7));
//   a_c: outputs 2w, 2w + 1 of the half2 words w = l + 32 k, each an fma chain of e_p v_p over
//        the chunk's positions ascending.
#include <cuda_fp16.h>

#include <cstdint>

#include "backend/cuda/async_copy.cuh"
#include "backend/cuda/attention_chunks.cuh"
#include "backend/cuda/attention_step.h"
#include "backend/cuda/exp_f32.cuh"
#include "backend/cuda/launch.cuh"

namespace plumb::cuda {

namespace {

constexpr int kMaxGroup = 8;                // query heads a KV head: warps a block
// Head dims the kernel takes (keys and values alike): 64. At 128 a block's keys and values (128
// KiB) would leave one block a multiprocessor, so Llama-3-8B's steps keep ops.cu's split launch
// until that is measured.
constexpr int kHeadDim = 64;
constexpr int kPerLane = kChunk / 32;       // positions a lane scores
constexpr size_t kMaxShared = 113 * 1024;   // two blocks a multiprocessor

// Shared memory of a block, head dim HD (keys and values), `group` heads:
//   keys [kChunk][HD] halves in 16-byte pieces, piece p of row r at p ^ (r % 8), so that the eight
//        lanes of a quarter warp, reading piece p of eight consecutive rows, hit distinct banks;
//   values [kChunk][HD] halves as they are (a warp reads one row);
//   queries [group][HD] floats; exponentials [group][kChunk] floats.
// The last block reuses the keys' and values' room to fold: per warp nc doubles and nc + 1 floats.
template <int HD>
struct StepLayout {
  static constexpr int kPieces = HD / 8;
  static constexpr size_t kMatrix = static_cast<size_t>(kChunk) * HD * sizeof(__half);
  __host__ __device__ static size_t bytes(int group) { return 2 * kMatrix + static_cast<size_t>(group) * (HD + kChunk) * sizeof(float); }
  __host__ __device__ static size_t fold_bytes(int64_t nc) { return (static_cast<size_t>(nc) * (sizeof(double) + sizeof(float)) + 15) / 8 * 8; }
  static bool fold_fits(int64_t nc, int group) { return fold_bytes(nc) * static_cast<size_t>(group) <= 2 * kMatrix; }
};

template <int HD>
__global__ void __launch_bounds__(32 * kMaxGroup) step_attention_kernel(AttentionArgs a, const float* __restrict__ q,
                                                                        const int32_t* __restrict__ batch,
                                                                        float* __restrict__ out) {
  using L = StepLayout<HD>;
  pdl_start();
  extern __shared__ float4 shared_s[];
  const int group = static_cast<int>(a.n_head / a.n_head_kv);
  const int kvh = static_cast<int>(blockIdx.x), t = static_cast<int>(blockIdx.y), c = static_cast<int>(blockIdx.z);
  const int n_kv = batch[0] + t + 1, chunks = static_cast<int>(chunks_of(n_kv));
  if (c >= chunks) return;  // a launch sized for a longer context
  const int begin = c * kChunk, rows = min(n_kv - begin, kChunk);
  __half* keys = reinterpret_cast<__half*>(shared_s);
  __half* values = keys + kChunk * HD;
  float* queries = reinterpret_cast<float*>(values + kChunk * HD);
  float* exps = queries + group * HD;

  // The chunk's keys (one group of copies), then its values (a second).
  const auto* kc = static_cast<const __half*>(a.k_cache) + static_cast<int64_t>(begin) * a.k_width + kvh * HD;
  const auto* vc = static_cast<const __half*>(a.v_cache) + static_cast<int64_t>(begin) * a.v_width + kvh * HD;
  for (int i = threadIdx.x; i < rows * L::kPieces; i += blockDim.x) {
    const int r = i / L::kPieces, p = i % L::kPieces;
    cp_async16(keys + (r * L::kPieces + (p ^ (r % 8))) * 8, kc + r * a.k_width + 8 * p);
  }
  cp_async_commit();
  for (int i = threadIdx.x; i < rows * L::kPieces; i += blockDim.x) {
    const int r = i / L::kPieces, p = i % L::kPieces;
    cp_async16(values + i * 8, vc + r * a.v_width + 8 * p);
  }
  cp_async_commit();

  const int warp = static_cast<int>(threadIdx.x / 32), lane = static_cast<int>(threadIdx.x % 32);
  const int h = kvh * group + warp;
  const int64_t row = static_cast<int64_t>(t) * a.n_head + h;
  float* qw = queries + warp * HD;
  for (int d = lane; d < HD; d += 32) qw[d] = q[row * HD + d];
  cp_async_wait<1>();
  __syncthreads();

  // Scores: lane's positions r = lane + 32 i share r % 8 = lane % 8, the pieces' swizzle.
  float s[kPerLane] = {};
#pragma unroll 2
  for (int p = 0; p < L::kPieces; ++p) {
    const float4 qa = *reinterpret_cast<const float4*>(qw + 8 * p), qb = *reinterpret_cast<const float4*>(qw + 8 * p + 4);
    const float qv[8] = {qa.x, qa.y, qa.z, qa.w, qb.x, qb.y, qb.z, qb.w};
#pragma unroll
    for (int i = 0; i < kPerLane; ++i) {
      const int r = lane + 32 * i;
      const uint4 k4 = *reinterpret_cast<const uint4*>(keys + (r * L::kPieces + (p ^ (lane % 8))) * 8);
      const __half2* kh = reinterpret_cast<const __half2*>(&k4);
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float2 kf = __half22float2(kh[e]);
        s[i] = fmaf(qv[2 * e], kf.x, s[i]);
        s[i] = fmaf(qv[2 * e + 1], kf.y, s[i]);
      }
    }
  }
  float m = -INFINITY;
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) {
    s[i] *= a.scale;
    if (lane + 32 * i < rows) m = fmaxf(m, s[i]);
  }
#pragma unroll
  for (int off = 16; off > 0; off /= 2) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, off));
  float* ew = exps + warp * kChunk;
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) {
    if (lane + 32 * i < rows) ew[lane + 32 * i] = exp_f32(s[i] - m);
  }
  __syncwarp();
  double part = 0.0;
  if (lane < 8) {
    for (int r = lane; r < rows; r += 8) part += ew[r];
  }
  part += __shfl_down_sync(0xffffffffu, part, 4);  // lanes 0-3: p0 + p4, p1 + p5, p2 + p6, p3 + p7
  part += __shfl_down_sync(0xffffffffu, part, 2);  // lanes 0-1: (p0 + p4) + (p2 + p6), (p1 + p5) + (p3 + p7)
  part += __shfl_down_sync(0xffffffffu, part, 1);  // lane 0: the sum

  // Value chains.
  cp_async_wait<0>();
  __syncthreads();
  constexpr int kWords = HD / 64;
  float2 acc[kWords];
#pragma unroll
  for (int k = 0; k < kWords; ++k) acc[k] = make_float2(0.0f, 0.0f);
  const auto* vw = reinterpret_cast<const __half2*>(values);
  const auto step = [&](float e, int r) {
#pragma unroll
    for (int k = 0; k < kWords; ++k) {
      const float2 v = __half22float2(vw[r * (HD / 2) + lane + 32 * k]);
      acc[k].x = fmaf(e, v.x, acc[k].x);
      acc[k].y = fmaf(e, v.y, acc[k].y);
    }
  };
  int r = 0;
#pragma unroll 2
  for (; r + 4 <= rows; r += 4) {
    const float4 e4 = *reinterpret_cast<const float4*>(ew + r);
    step(e4.x, r), step(e4.y, r + 1), step(e4.z, r + 2), step(e4.w, r + 3);
  }
  for (; r < rows; ++r) step(ew[r], r);

  // This chunk's results to the scratch; the last block of the (KV head, token) folds.
  const int64_t nc = chunks_of(a.n_kv_max);
  const SplitLayout sp(a.split, gridDim.y, a.n_head, nc);
  float* chains = sp.chains + (row * nc + c) * HD;  // 4-byte aligned only (the scratch's floats)
#pragma unroll
  for (int k = 0; k < kWords; ++k) chains[2 * (lane + 32 * k)] = acc[k].x, chains[2 * (lane + 32 * k) + 1] = acc[k].y;
  if (lane == 0) {
    sp.sums[row * nc + c] = part;
    sp.maxes[row * nc + c] = m;
  }
  const int64_t counter = static_cast<int64_t>(t) * a.n_head + kvh * group;  // the group's first row's
  if (!last_to_finish(&a.split_done[counter], chunks)) return;
  auto* room = reinterpret_cast<uint8_t*>(shared_s) + warp * L::fold_bytes(nc);
  auto* sums = reinterpret_cast<double*>(room);
  auto* f = reinterpret_cast<float*>(sums + nc);
  fold_row(sp, row, nc, chunks, HD, f, sums, f + nc, out + row * HD, WarpTeam{});
}

template <int HD>
bool fits(const AttentionArgs& a) {
  const int group = static_cast<int>(a.n_head / a.n_head_kv);
  return StepLayout<HD>::bytes(group) <= kMaxShared && StepLayout<HD>::fold_fits(chunks_of(a.n_kv_max), group);
}

}  // namespace

bool step_attention_takes(const AttentionArgs& a) {
  static const bool enabled = switched_on("PLUMB_CUDA_STEP_ATTENTION");
  const int64_t hd = a.head_dim_k, group = a.n_head_kv > 0 ? a.n_head / a.n_head_kv : 0;
  const auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  return enabled && a.f16 && hd == kHeadDim && a.head_dim_v == kHeadDim && group >= 1 && group <= kMaxGroup &&
         a.k_width % 8 == 0 && a.v_width % 8 == 0 && aligned(a.k_cache) && aligned(a.v_cache) && fits<kHeadDim>(a);
}

cudaError_t prepare_step_attention() {
  return cudaFuncSetAttribute(step_attention_kernel<kHeadDim>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                              static_cast<int>(kMaxShared));
}

cudaError_t step_attention(const AttentionArgs& a, const float* q, int64_t n, const int32_t* batch, float* out,
                           cudaStream_t stream) {
  const int group = static_cast<int>(a.n_head / a.n_head_kv);
  const dim3 grid(static_cast<unsigned>(a.n_head_kv), static_cast<unsigned>(n),
                  static_cast<unsigned>(chunks_of(a.n_kv_max)));
  return launch(step_attention_kernel<kHeadDim>, grid, 32 * group, StepLayout<kHeadDim>::bytes(group), stream, a, q,
                batch, out);
}

}  // namespace plumb::cuda
