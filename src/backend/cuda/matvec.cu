// Products of up to kMaxMatvecTokens tokens with the weights read once (generation steps): the
// register matvec for the common types (units.cuh), one or two tokens a launch; the other types
// and rows too long for its shared memory through the staged matvec (matmul.cu).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <mutex>
#include <utility>
#include <vector>

#include "backend/cuda/device_info.h"
#include "backend/cuda/exp_f32.cuh"
#include "backend/cuda/kernels.h"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/rms_scale.cuh"
#include "backend/cuda/rope_cache.cuh"
#include "backend/cuda/units.cuh"

namespace plumb::cuda {

namespace {

// What a launch does with a warp's finished rows: stores them (and adds them to acc); rotates and
// stores a pair of q or k rows, stores a pair of v rows, K and V into the cache (rope_store_pair);
// or writes silu(gate row) * (up row) (swiglu_value).
enum class Epilogue { kStore, kRope, kSwiglu };

// What a launch does besides the product: the epilogue's arguments, and the input's RMSNorm.
struct Fused {
  RopeStoreArgs rope;               // Epilogue::kRope
  const int32_t* batch = nullptr;   // Epilogue::kRope: the token's position at batch[0]
  InputNorm norm;                   // kNorm
};

constexpr int kMaxUnitTokens = 2;  // token counts of the register kernel
constexpr size_t kMaxStagedBytes = 100 * 1024;  // x staged by a block, beside another block's

// x of every token, staged by the block in the order the lanes read it. The float units (F16,
// Q4_0, Q4_1, Q8_0): unit u = 32 it + lane reads its 32 values as 8 float4 at xs[t][it][k][lane]
// (k < 4: run A, else run B), so a warp's reads are 512 contiguous bytes; sums[t][u][run] = sum
// of the run's 16 values, ascending. The integer units (Q4_K, Q6_K): each run's 16-bit
// activations (run_acts) as 2 uint4 at
// xq[t][it][2 run + k][lane], its d_a and sx at acts[t][it][lane] (d_a A, sx A, d_a B, sx B) and
// its q's sum at qsums[t][it][lane].
struct StagedX {
  float4* xs;
  float* sums;
  uint4* xq;
  float4* acts;
  int2* qsums;
  int64_t iters;  // lane iterations of a row: ceil(units / 32)
};

// Bytes a block stages for n tokens of n_in values (ints: the integer units' layout).
size_t staged_bytes(int64_t n_in, int n, bool ints) {
  const int64_t iters = (n_in / 32 + 31) / 32;
  const size_t per_unit = ints ? 4 * sizeof(uint4) + sizeof(float4) + sizeof(int2) : (32 + 2) * sizeof(float);
  return static_cast<size_t>(n) * static_cast<size_t>(iters) * 32 * per_unit;
}
size_t staged_bytes(TensorType type, int64_t n_in, int n) {
  bool ints = false;
  dispatch_type(type, [&](auto tag) {
    if constexpr (Unit<decltype(tag)::value>::kExists) ints = Unit<decltype(tag)::value>::kInt;
  });
  return staged_bytes(n_in, n, ints);
}

// The staged layout's pointers into the block's shared memory.
template <TensorType T>
__device__ StagedX staged_at(float4* base, int64_t n_in, int n) {
  StagedX s{};
  s.iters = (n_in / 32 + 31) / 32;
  const int64_t slots = static_cast<int64_t>(n) * s.iters * 32;
  if constexpr (Unit<T>::kInt) {
    s.xq = reinterpret_cast<uint4*>(base);
    s.acts = reinterpret_cast<float4*>(s.xq + 4 * slots);
    s.qsums = reinterpret_cast<int2*>(s.acts + slots);
  } else {
    s.xs = base;
    s.sums = reinterpret_cast<float*>(base + 8 * slots);
  }
  return s;
}

// The integer units' staging: a thread a (token, unit, run) reads the run's 16 values through
// value4(t, at) (the four values of token t from position at) and stores run_acts of them. In
// both layouts the two halves of a 32-value activation block are the same run of units u and
// u + 1, u even (run_start), that is threads i and i ^ 2: each folds its half's magnitudes and
// takes the other's with a shuffle, so every value is read once and d_a is the block's.
template <TensorType T, class Value4>
__device__ void stage_ints(int64_t n_in, int n, const StagedX& s, Value4 value4) {
  const int64_t units = n_in / 32, items = n * units * 2;  // units even: a super-block has 8
  const int lane = static_cast<int>(threadIdx.x % 32);
  // Whole warps each trip (blockDim a multiple of 32), so that every lane takes part in the
  // shuffle; a pair is in range or out of it together (items a multiple of 4).
  for (int64_t first = threadIdx.x - lane; first < items; first += blockDim.x) {
    const int64_t i = first + lane;
    const bool valid = i < items;
    const int run = static_cast<int>(i % 2);
    const int64_t u = (i / 2) % units, t = i / (2 * units);
    const int64_t at = Unit<T>::run_start(u, run);
    float x[16], amax = 0.0f;
    bool nan = false;
    if (valid) {
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        const float4 v = value4(t, at + 4 * k);
        x[4 * k] = v.x, x[4 * k + 1] = v.y, x[4 * k + 2] = v.z, x[4 * k + 3] = v.w;
      }
#pragma unroll
      for (int k = 0; k < 16; ++k) summed::fold_magnitude(x[k], amax, nan);
    }
    const float other_amax = __shfl_xor_sync(0xffffffffu, amax, 2);
    const bool other_nan = __shfl_xor_sync(0xffffffffu, static_cast<int>(nan), 2) != 0;
    if (!valid) continue;
    summed::fold_magnitude(other_amax, amax, nan);
    const RunActs r = run_acts(x, summed::act_scale(amax, nan || other_nan));
    const int64_t slot = (t * s.iters + u / 32) * 32 + u % 32;
    uint4* q = s.xq + ((t * s.iters + u / 32) * 4 + 2 * run) * 32 + u % 32;
    q[0] = make_uint4(r.q[0], r.q[1], r.q[2], r.q[3]);
    q[32] = make_uint4(r.q[4], r.q[5], r.q[6], r.q[7]);
    float* acts = reinterpret_cast<float*>(s.acts + slot) + 2 * run;
    acts[0] = r.d, acts[1] = r.sx;
    reinterpret_cast<int*>(s.qsums + slot)[run] = r.sum;
  }
}

template <TensorType T>
__device__ void stage_x(const float* __restrict__ x, int64_t n_in, int n, StagedX s) {
  if constexpr (Unit<T>::kInt) {
    stage_ints<T>(n_in, n, s, [&](int64_t t, int64_t at) { return *reinterpret_cast<const float4*>(x + t * n_in + at); });
    return;
  }
  const int64_t units = n_in / 32;
  for (int64_t i = threadIdx.x; i < n * units * 2; i += blockDim.x) {
    const int run = static_cast<int>(i % 2);
    const int64_t u = (i / 2) % units, t = i / (2 * units);
    const float4* src = reinterpret_cast<const float4*>(x + t * n_in + Unit<T>::run_start(u, run));
    float4* dst = s.xs + ((t * s.iters + u / 32) * 8 + 4 * run) * 32 + u % 32;
    float sum = 0.0f;
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const float4 v = src[k];
      dst[32 * k] = v;
      sum = (((sum + v.x) + v.y) + v.z) + v.w;
    }
    s.sums[(t * s.iters * 32 + u) * 2 + run] = sum;
  }
}

// stage_x of one token whose x is RMSNorm's output: the block computes the norm's scale as the
// norm kernel does (rms_scale) and stages (raw * scale) * w; block 0 also writes it to norm.y.
template <TensorType T>
__device__ void stage_normed_x(const InputNorm& norm, int64_t n_in, StagedX s, bool write_y) {
  __shared__ double partial[kNormThreads];
  const float scale = rms_scale(norm.raw, n_in, norm.eps, partial);
  const auto normed4 = [&](int64_t at) {
    const float4 x = *reinterpret_cast<const float4*>(norm.raw + at), m = *reinterpret_cast<const float4*>(norm.w + at);
    return make_float4((x.x * scale) * m.x, (x.y * scale) * m.y, (x.z * scale) * m.z, (x.w * scale) * m.w);
  };
  if constexpr (Unit<T>::kInt) {
    stage_ints<T>(n_in, 1, s, [&](int64_t, int64_t at) { return normed4(at); });
    if (write_y) {
      for (int64_t i = threadIdx.x; i < n_in / 4; i += blockDim.x) reinterpret_cast<float4*>(norm.y)[i] = normed4(4 * i);
    }
    return;
  }
  const int64_t units = n_in / 32;
  for (int64_t i = threadIdx.x; i < units * 2; i += blockDim.x) {
    const int run = static_cast<int>(i % 2);
    const int64_t u = i / 2, at = Unit<T>::run_start(u, run);
    float4* dst = s.xs + ((u / 32) * 8 + 4 * run) * 32 + u % 32;
    float sum = 0.0f;
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const float4 v = normed4(at + 4 * k);
      dst[32 * k] = v;
      if (write_y) reinterpret_cast<float4*>(norm.y + at)[k] = v;
      sum = (((sum + v.x) + v.y) + v.z) + v.w;
    }
    s.sums[u * 2 + run] = sum;
  }
}

// parts.field[k] by selects on constant indices: a kernel parameter indexed at run time would be
// copied to local memory.
template <typename V>
__device__ __forceinline__ V pick(const V (&field)[3], int k) {
  return k == 0 ? field[0] : k == 1 ? field[1] : field[2];
}

// Rows first .. first + R - 1 of the parts laid end to end: each one's weights (nullptr past the
// last row), part and row within the part.
template <int R>
struct RowSet {
  const uint8_t* row[R];
  int part[R];
  int64_t local[R];

  __device__ RowSet(const MatvecParts& parts, size_t row_stride, int64_t first) {
#pragma unroll
    for (int r = 0; r < R; ++r) {
      int64_t i = first + r;
      int p = 0;
#pragma unroll
      for (int k = 0; k < 3; ++k) {
        if (p == k && k < parts.count && i >= parts.n_out[k]) i -= parts.n_out[k], p = k + 1;
      }
      part[r] = p, local[r] = i;
      row[r] = p < parts.count ? static_cast<const uint8_t*>(pick(parts.w, p)) + i * row_stride : nullptr;
    }
  }
  // Row j of part r, r < R (nullptr past the parts' rows): a gate row and its up row.
  __device__ RowSet(const MatvecParts& parts, size_t row_stride, int64_t j, Epilogue) {
#pragma unroll
    for (int r = 0; r < R; ++r) {
      part[r] = r, local[r] = j;
      row[r] = j < parts.n_out[0] ? static_cast<const uint8_t*>(pick(parts.w, r)) + j * row_stride : nullptr;
    }
  }
};

// The rows a warp takes at index i of its groups (RowSet's first row).
template <int R, Epilogue E>
__device__ __forceinline__ RowSet<R> rows_at(const MatvecParts& parts, size_t row_stride, int64_t i) {
  if constexpr (E == Epilogue::kSwiglu) {
    return RowSet<R>(parts, row_stride, i / R, E);
  } else {
    return RowSet<R>(parts, row_stride, i);
  }
}

// The units of lane iterations it0 and it0 + 1 of a warp's rows.
template <TensorType T, int R>
__device__ __forceinline__ void load_units(Unit<T> (&w)[2][R], const RowSet<R>& rs, int64_t it0, int64_t units,
                                           int lane) {
#pragma unroll
  for (int k = 0; k < 2; ++k) {
    const int64_t u = (it0 + k) * 32 + lane;
#pragma unroll
    for (int r = 0; r < R; ++r) {
      if (u < units && rs.row[r] != nullptr) w[k][r].load(rs.row[r], u);
    }
  }
}

// rope_store's work on rows i, i + 1 (i even) of part p of a product whose parts are q, k and v,
// one token at position batch[0], with rope_store_kernel's arithmetic (ops.cu): the pair of a q
// or k row rotated where i / 2 of its head is under n_rot / 2, written; k and v also stored in
// the cache.
__device__ __forceinline__ void rope_store_pair(const MatvecParts& parts, int p, int64_t i, float x0, float x1,
                                                const RopeStoreArgs& a, const int32_t* batch) {
  const int64_t pos = batch[0], rot = a.n_rot / 2, pair = (i % a.head_dim) / 2;
  if (p < 2 && pair < rot) {
    rotate_pair(x0, x1, a.cos[pos * rot + pair], a.sin[pos * rot + pair]);
  }
  float* y = pick(parts.y, p);
  y[i] = x0, y[i + 1] = x1;
  if (p == 0) return;
  const int64_t at = pos * pick(parts.n_out, p) + i;
  void* cache = p == 1 ? a.k_cache : a.v_cache;
  store_cached(a.f16, cache, at, x0);
  store_cached(a.f16, cache, at + 1, x1);
}

// Lane iterations it0 and it0 + 1 of a warp's R rows, their units in w: per row, token and run
// the lane adds a * (q . x) + b * sum(x) to acc (q . x an fma chain over the run's 16 values).
template <TensorType T, int NT, int R>
__device__ __forceinline__ void add_units(float (&acc)[R][NT], const Unit<T> (&w)[2][R], int64_t it0, int64_t units,
                                          const StagedX& s, int n, int lane) {
#pragma unroll
  for (int k = 0; k < 2; ++k) {
    const int64_t it = it0 + k, u = it * 32 + lane;
    if (u >= units) break;
    float a[R][2], b[R][2];
#pragma unroll
    for (int r = 0; r < R; ++r) w[k][r].scales(a[r], b[r]);
#pragma unroll
    for (int t = 0; t < NT; ++t) {
      if (t >= n) break;
      if constexpr (Unit<T>::kInt) {
        const int64_t slot = (t * s.iters + it) * 32 + lane;
        const float4 acts = s.acts[slot];
        const int2 sums = Unit<T>::kZero != 0 ? s.qsums[slot] : make_int2(0, 0);
#pragma unroll
        for (int run = 0; run < 2; ++run) {
          uint32_t q[8];
          const uint4 q0 = s.xq[((t * s.iters + it) * 4 + 2 * run) * 32 + lane];
          const uint4 q1 = s.xq[((t * s.iters + it) * 4 + 2 * run + 1) * 32 + lane];
          q[0] = q0.x, q[1] = q0.y, q[2] = q0.z, q[3] = q0.w, q[4] = q1.x, q[5] = q1.y, q[6] = q1.z, q[7] = q1.w;
#pragma unroll
          for (int r = 0; r < R; ++r) {
            const int p = run_dot<T>(w[k][r], run, q, run == 0 ? sums.x : sums.y);
            acc[r][t] = add_run<T>(acc[r][t], a[r][run], b[r][run], run == 0 ? acts.x : acts.z,
                                   run == 0 ? acts.y : acts.w, p);
          }
        }
      } else {
#pragma unroll
        for (int run = 0; run < 2; ++run) {
          float xv[16];
#pragma unroll
          for (int q = 0; q < 4; ++q) {
            const float4 v = s.xs[((t * s.iters + it) * 8 + 4 * run + q) * 32 + lane];
            xv[4 * q] = v.x, xv[4 * q + 1] = v.y, xv[4 * q + 2] = v.z, xv[4 * q + 3] = v.w;
          }
          const float sum = Unit<T>::kOffset ? s.sums[(t * s.iters * 32 + u) * 2 + run] : 0.0f;
#pragma unroll
          for (int r = 0; r < R; ++r) {
            float d = w[k][r].value(run, 0) * xv[0];
#pragma unroll
            for (int i = 1; i < 16; ++i) d = fmaf(w[k][r].value(run, i), xv[i], d);
            if constexpr (T == TensorType::F16) {
              acc[r][t] += d;
            } else {
              acc[r][t] = fmaf(a[r][run], d, acc[r][t]);
              if constexpr (Unit<T>::kOffset) acc[r][t] = fmaf(b[r][run], sum, acc[r][t]);
            }
          }
        }
      }
    }
  }
}

// A warp's R rows (rs). Lane l takes units l, l + 32, ... of each row, two lane iterations at a
// time; w holds the first two's units on entry and, on return, the first two of the warp's next
// rows (next). With `ahead` the loads of the following two iterations are issued before the
// current two are summed, so that a warp always has loads in flight; without, after (for
// measuring). The 32 lanes' sums are combined by a xor butterfly: a fixed order, the same bits
// every run and whichever block takes the row. y = the sum; acc += it where acc is given.
template <TensorType T, int NT, int R, Epilogue E>
__device__ void matvec_rows(const MatvecParts& parts, const RowSet<R>& rs, const RowSet<R>& next, int64_t units,
                            const StagedX& s, int n, int lane, Unit<T> (&w)[2][R], bool ahead, const Fused& f) {
  float acc[R][NT];
#pragma unroll
  for (int r = 0; r < R; ++r) {
#pragma unroll
    for (int t = 0; t < NT; ++t) acc[r][t] = 0.0f;
  }
  for (int64_t it0 = 0; it0 < s.iters; it0 += 2) {
    const bool last = it0 + 2 >= s.iters;
    Unit<T> later[2][R];
    if (ahead) load_units<T, R>(later, last ? next : rs, last ? 0 : it0 + 2, units, lane);
    add_units<T, NT, R>(acc, w, it0, units, s, n, lane);
    if (!ahead) load_units<T, R>(later, last ? next : rs, last ? 0 : it0 + 2, units, lane);
#pragma unroll
    for (int k = 0; k < 2; ++k) {
#pragma unroll
      for (int r = 0; r < R; ++r) w[k][r] = later[k][r];
    }
  }
#pragma unroll
  for (int r = 0; r < R; ++r) {
#pragma unroll
    for (int t = 0; t < NT; ++t) {
#pragma unroll
      for (int off = 16; off > 0; off /= 2) acc[r][t] += __shfl_xor_sync(0xffffffffu, acc[r][t], off);
    }
  }
  if (lane != 0) return;
  if constexpr (E != Epilogue::kStore) {
    static_assert(R == 2 && NT == 1, "a warp's two rows are a pair of one token");
    if (rs.row[0] == nullptr) return;
    if constexpr (E == Epilogue::kRope) {
      rope_store_pair(parts, rs.part[0], rs.local[0], acc[0][0], acc[1][0], f.rope, f.batch);
    } else {
      parts.y[0][rs.local[0]] = swiglu_value(acc[0][0], acc[1][0]);
    }
  } else {
#pragma unroll
    for (int r = 0; r < R; ++r) {
#pragma unroll
      for (int t = 0; t < NT; ++t) {
        if (rs.row[r] == nullptr || t >= n) continue;
        const int64_t at = t * pick(parts.n_out, rs.part[r]) + rs.local[r];
        pick(parts.y, rs.part[r])[at] = acc[r][t];
        if (float* acc_out = pick(parts.acc, rs.part[r])) acc_out[at] += acc[r][t];
      }
    }
  }
}

// A block takes groups of W * R rows, a warp R rows of each, x staged once a block for all its
// groups: the blocks stride over the groups, as many blocks as the GPU holds at once, so that a
// wide product does not stage x again for every few rows. Block `block` of `blocks` (the launch's
// blocks, or those of its share of a split launch); write_norm: the block that writes the norm's
// output.
template <TensorType T, int NT, int R, int W, Epilogue E, bool kNorm>
__device__ void matvec_blocks(const MatvecParts& parts, size_t row_stride, int64_t n_in, const float* __restrict__ x,
                              int n, int64_t groups, bool preload, bool ahead, const Fused& f, int64_t block,
                              int64_t blocks, bool write_norm) {
  extern __shared__ float4 staged[];
  const int64_t units = n_in / 32;
  const StagedX s = staged_at<T>(staged, n_in, n);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  // While the op before runs (weights are written by no op): the first group's rows asked of L2,
  // and their first two lane iterations loaded.
  RowSet<R> rs = rows_at<R, E>(parts, row_stride, (block * W + warp) * R);
#pragma unroll
  for (int r = 0; r < R; ++r) {
    if (rs.row[r] != nullptr) prefetch_l2(rs.row[r], static_cast<int64_t>(row_stride), lane);
  }
  Unit<T> w[2][R];
  if (preload) load_units<T, R>(w, rs, 0, units, lane);
  pdl_start();
  if constexpr (kNorm) {
    stage_normed_x<T>(f.norm, n_in, s, write_norm);
  } else {
    stage_x<T>(x, n_in, n, s);
  }
  __syncthreads();
  if (!preload) load_units<T, R>(w, rs, 0, units, lane);
  for (int64_t g = block; g < groups; g += blocks) {
    const RowSet<R> next = rows_at<R, E>(parts, row_stride, ((g + blocks) * W + warp) * R);
    matvec_rows<T, NT, R, E>(parts, rs, next, units, s, n, lane, w, ahead, f);
    rs = next;
  }
}

template <TensorType T, int NT, int R, int W, Epilogue E, bool kNorm>
__global__ void __launch_bounds__(32 * W) matvec_kernel(MatvecParts parts, size_t row_stride, int64_t n_in,
                                                        const float* __restrict__ x, int n, int64_t groups,
                                                        bool preload, bool ahead, Fused f) {
  matvec_blocks<T, NT, R, W, E, kNorm>(parts, row_stride, n_in, x, n, groups, preload, ahead, f, blockIdx.x, gridDim.x,
                                       blockIdx.x == 0);
}

// One token's q and k of type T and v of type TV in one launch (a Q4_K_M layer whose V is Q6_K):
// blocks [0, qk_blocks) take the q and k rows as matvec_kernel<T> would, the others the v rows as
// matvec_kernel<TV> would (each row's sums the same as in a launch of its own type); the rows keep
// their parts, so the epilogue rotates and stores them as in a launch of one type.
template <TensorType T, TensorType TV, int R, int W, bool kNorm>
__global__ void __launch_bounds__(32 * W) matvec_split_kernel(MatvecParts parts, size_t row_stride, size_t v_stride,
                                                              int64_t n_in, const float* __restrict__ x,
                                                              int64_t qk_groups, int64_t v_groups, int64_t qk_blocks,
                                                              bool preload, bool ahead, Fused f) {
  const int64_t b = blockIdx.x;
  if (b < qk_blocks) {
    MatvecParts qk = parts;
    qk.count = 2;
    matvec_blocks<T, 1, R, W, Epilogue::kRope, kNorm>(qk, row_stride, n_in, x, 1, qk_groups, preload, ahead, f, b,
                                                       qk_blocks, b == 0);
  } else {
    MatvecParts v = parts;
    v.n_out[0] = v.n_out[1] = 0;  // its rows are part 2's from the first
    matvec_blocks<TV, 1, R, W, Epilogue::kRope, kNorm>(v, v_stride, n_in, x, 1, v_groups, preload, ahead, f,
                                                        b - qk_blocks, gridDim.x - qk_blocks, false);
  }
}

// Blocks of one kernel a multiprocessor holds at once, per dynamic shared size: asked of the
// runtime once per size (a forward that is not recorded, a server's batch say, would otherwise
// pay a runtime call on every launch); 0 where it cannot be asked.
class ResidentBlocks {
 public:
  template <class Kernel>
  int per_sm(Kernel kernel, int threads, size_t shared) {
    const std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [bytes, blocks] : known_) {
      if (bytes == shared) return blocks;
    }
    int blocks = 0;
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kernel, threads, shared) != cudaSuccess) blocks = 0;
    known_.emplace_back(shared, blocks);
    return blocks;
  }

 private:
  std::mutex mutex_;
  std::vector<std::pair<size_t, int>> known_;
};

// When the register kernels load their weights, read once for every launch: PLUMB_MV_PRELOAD=0,
// the first weights only asked of L2 before the op before has finished; PLUMB_MV_AHEAD=0, a
// warp's next loads issued after the units before are summed (both for measuring).
const struct LoadOrder {
  bool preload = switched_on("PLUMB_MV_PRELOAD");
  bool ahead = switched_on("PLUMB_MV_AHEAD");
} load_order;

template <TensorType T, int NT, int R, int W, Epilogue E = Epilogue::kStore, bool kNorm = false>
cudaError_t launch_unit(const MatvecParts& parts, size_t row_stride, int64_t n_in, const float* x, int n, int64_t rows,
                        cudaStream_t stream, const Fused& f = {}) {
  const auto kernel = matvec_kernel<T, NT, R, W, E, kNorm>;
  // Above 48 KiB of shared memory a kernel must say so, once.
  static const cudaError_t allowed = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 200 * 1024);
  if (allowed != cudaSuccess) return allowed;
  const size_t shared = staged_bytes(n_in, n, Unit<T>::kInt);
  const int64_t groups = (rows + W * R - 1) / (W * R);
  // As many blocks as the GPU holds at once (one a group where that is not known, or with
  // PLUMB_MV_STRIDE=0, for measuring).
  static ResidentBlocks resident_blocks;  // this kernel's
  const int per_sm = resident_blocks.per_sm(kernel, 32 * W, shared);
  static const bool stride = switched_on("PLUMB_MV_STRIDE");
  const int64_t resident = static_cast<int64_t>(multiprocessors()) * per_sm;
  const auto blocks = static_cast<unsigned>(stride && resident > 0 ? std::min(groups, resident) : groups);
  return launch(kernel, blocks, 32 * W, shared, stream, parts, row_stride, n_in, x, n, groups, load_order.preload,
                load_order.ahead, f);
}

// Rows a warp: 1, the fastest measured (H100, TinyLlama Q4_K_M tg128 610-615 t/s against
// 590-597 with 2 rows and 516 with 4; Q8_0 577 against 562, Q4_0 655 against 661); PLUMB_MV=2
// or 4 picks the others, for measuring. Warps a block: 16 (PLUMB_MV_WARPS=4 or 8 for measuring);
// H100, tg128, blocks striding with 4 / 8 / 16 warps against one block of 4 warps a group:
// Llama-3-8B Q4_K_M 209.0 / 224.5 / 236.5 against 187.8; TinyLlama Q4_K_M 848.6 / - / 839.5
// against 852.5, Q8_0 772.1 / - / 802.3 against 757.0, Q4_0 974.2 / - / 958.2 against 947.4, F16
// 674.2 / - / 662.7 against 700.1.
template <TensorType T, int NT>
cudaError_t launch_rows(const MatvecParts& parts, size_t row_stride, int64_t n_in, const float* x, int n, int64_t rows,
                        cudaStream_t stream) {
  static const int variant = getenv("PLUMB_MV") ? atoi(getenv("PLUMB_MV")) : 1;
  static const int warps = getenv("PLUMB_MV_WARPS") ? atoi(getenv("PLUMB_MV_WARPS")) : 16;
  if (variant == 2) return launch_unit<T, NT, 2, 4>(parts, row_stride, n_in, x, n, rows, stream);
  if (variant == 4) return launch_unit<T, NT, 4, 4>(parts, row_stride, n_in, x, n, rows, stream);
  switch (warps) {
    case 4: return launch_unit<T, NT, 1, 4>(parts, row_stride, n_in, x, n, rows, stream);
    case 8: return launch_unit<T, NT, 1, 8>(parts, row_stride, n_in, x, n, rows, stream);
    default: return launch_unit<T, NT, 1, 16>(parts, row_stride, n_in, x, n, rows, stream);
  }
}

}  // namespace

// A token's bits must not depend on the tokens launched beside it (a batch of sequences runs its
// tokens together: docs/EXACTNESS.md, "Batch invariance"), and the register and staged kernels
// sum in different orders: so a row that the register kernel takes for one token takes every
// token through it, two a launch where two tokens' x fit its shared memory, else one; the staged
// kernel's tokens never interact.
cudaError_t matvec(TensorType type, const MatvecParts& parts, size_t row_stride, int64_t n_in, const float* x, int n,
                   cudaStream_t stream) {
  int64_t rows = 0;
  for (int i = 0; i < parts.count; ++i) rows += parts.n_out[i];
  if (rows == 0 || n == 0) return cudaSuccess;
  bool unit = false;
  dispatch_type(type, [&](auto tag) { unit = Unit<decltype(tag)::value>::kExists; });
  if (!unit || staged_bytes(type, n_in, 1) > kMaxStagedBytes) {
    return matvec_staged(type, parts, row_stride, n_in, x, n, stream);
  }
  const int per_launch = staged_bytes(type, n_in, kMaxUnitTokens) <= kMaxStagedBytes ? kMaxUnitTokens : 1;
  cudaError_t e = cudaSuccess;
  for (int t0 = 0; t0 < n && e == cudaSuccess; t0 += per_launch) {
    const int k = std::min(per_launch, n - t0);
    MatvecParts at = parts;
    for (int i = 0; i < at.count; ++i) {
      at.y[i] += t0 * at.n_out[i];
      if (at.acc[i] != nullptr) at.acc[i] += t0 * at.n_out[i];
    }
    const float* xt = x + t0 * n_in;
    dispatch_type(type, [&](auto tag) {
      constexpr TensorType T = decltype(tag)::value;
      if constexpr (Unit<T>::kExists) {
        e = k == 1 ? launch_rows<T, 1>(at, row_stride, n_in, xt, k, rows, stream)
                   : launch_rows<T, 2>(at, row_stride, n_in, xt, k, rows, stream);
      }
    });
  }
  return e;
}

// Not F16: its units hold 16 registers of weights each, and its generation steps ran slower with
// the fused launches than with the separate ones (H100, TinyLlama F16 tg128: 554 t/s against 717).
bool matvec_one_covers(TensorType type, int64_t n_in) {
  if (type == TensorType::F16) return false;
  bool unit = false;
  dispatch_type(type, [&](auto tag) { unit = Unit<decltype(tag)::value>::kExists; });
  return unit && staged_bytes(type, n_in, 1) <= kMaxStagedBytes;
}

namespace {

// One token through the register kernel's default shape with epilogue E, its input normalized
// where norm.raw is set.
template <Epilogue E, int R>
cudaError_t launch_one(TensorType type, const MatvecParts& parts, size_t row_stride, int64_t n_in, const float* x,
                       int64_t rows, const Fused& f, cudaStream_t stream) {
  cudaError_t e = cudaErrorInvalidValue;
  dispatch_type(type, [&](auto tag) {
    constexpr TensorType T = decltype(tag)::value;
    if constexpr (Unit<T>::kExists) {
      e = f.norm.raw != nullptr ? launch_unit<T, 1, R, 16, E, true>(parts, row_stride, n_in, x, 1, rows, stream, f)
                                : launch_unit<T, 1, R, 16, E, false>(parts, row_stride, n_in, x, 1, rows, stream, f);
    }
  });
  return e;
}

// One token's q and k (Q4_K) and v (Q6_K) through matvec_split_kernel: a block for each group of
// rows where the GPU holds that many at once, else the blocks it holds shared by the two types'
// bytes.
template <bool kNorm>
cudaError_t launch_q4k_q6k(const MatvecParts& parts, size_t row_stride, size_t v_stride, int64_t n_in, const float* x,
                           const Fused& f, cudaStream_t stream) {
  constexpr int R = 2, W = 16;
  const auto kernel = matvec_split_kernel<TensorType::Q4_K, TensorType::Q6_K, R, W, kNorm>;
  static const cudaError_t allowed = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 200 * 1024);
  if (allowed != cudaSuccess) return allowed;
  static_assert(Unit<TensorType::Q4_K>::kInt && Unit<TensorType::Q6_K>::kInt, "one staged layout for both types");
  const size_t shared = staged_bytes(n_in, 1, true);
  const int64_t qk_rows = parts.n_out[0] + parts.n_out[1], v_rows = parts.n_out[2];
  const int64_t qk_groups = (qk_rows + W * R - 1) / (W * R), v_groups = (v_rows + W * R - 1) / (W * R);
  static ResidentBlocks resident_blocks;
  const int64_t resident = static_cast<int64_t>(multiprocessors()) * resident_blocks.per_sm(kernel, 32 * W, shared);
  int64_t qk_blocks = qk_groups, v_blocks = v_groups;
  if (resident > 1 && qk_blocks + v_blocks > resident) {
    const double qk_bytes = static_cast<double>(qk_rows) * static_cast<double>(row_stride);
    const double v_bytes = static_cast<double>(v_rows) * static_cast<double>(v_stride);
    qk_blocks = std::clamp<int64_t>(std::llround(static_cast<double>(resident) * qk_bytes / (qk_bytes + v_bytes)), 1,
                                    resident - 1);
    v_blocks = std::min(v_groups, resident - qk_blocks);
    qk_blocks = std::min(qk_groups, qk_blocks);
  }
  return launch(kernel, static_cast<unsigned>(qk_blocks + v_blocks), 32 * W, shared, stream, parts, row_stride, v_stride,
                n_in, x, qk_groups, v_groups, qk_blocks, load_order.preload, load_order.ahead, f);
}

}  // namespace

cudaError_t matvec_one(TensorType type, const MatvecParts& parts, size_t row_stride, int64_t n_in, const float* x,
                       const InputNorm& norm, cudaStream_t stream) {
  int64_t rows = 0;
  for (int i = 0; i < parts.count; ++i) rows += parts.n_out[i];
  Fused f;
  f.norm = norm;
  return launch_one<Epilogue::kStore, 1>(type, parts, row_stride, n_in, x, rows, f, stream);
}

bool matvec_rope_store_covers(const MatvecParts& parts, int64_t head_dim, TensorType type, TensorType v_type) {
  if (v_type != type && !(type == TensorType::Q4_K && v_type == TensorType::Q6_K)) return false;
  if (parts.count != 3 || head_dim <= 0 || head_dim % 2 != 0) return false;
  for (int i = 0; i < 3; ++i) {
    if (parts.n_out[i] % 2 != 0 || parts.acc[i] != nullptr) return false;
  }
  return true;
}

cudaError_t matvec_rope_store(TensorType type, TensorType v_type, const MatvecParts& parts, size_t row_stride,
                              size_t v_stride, int64_t n_in, const float* x, const InputNorm& norm,
                              const RopeStoreArgs& rope, const int32_t* batch, cudaStream_t stream) {
  Fused f;
  f.rope = rope, f.batch = batch, f.norm = norm;
  if (v_type != type) {
    if (type != TensorType::Q4_K || v_type != TensorType::Q6_K) return cudaErrorInvalidValue;
    return norm.raw != nullptr ? launch_q4k_q6k<true>(parts, row_stride, v_stride, n_in, x, f, stream)
                               : launch_q4k_q6k<false>(parts, row_stride, v_stride, n_in, x, f, stream);
  }
  const int64_t rows = parts.n_out[0] + parts.n_out[1] + parts.n_out[2];
  return launch_one<Epilogue::kRope, 2>(type, parts, row_stride, n_in, x, rows, f, stream);
}

bool matvec_swiglu_covers(const MatvecParts& parts) {
  return parts.count == 2 && parts.n_out[0] == parts.n_out[1] && parts.acc[0] == nullptr && parts.acc[1] == nullptr;
}

cudaError_t matvec_swiglu(TensorType type, const MatvecParts& parts, size_t row_stride, int64_t n_in, const float* x,
                          const InputNorm& norm, cudaStream_t stream) {
  Fused f;
  f.norm = norm;
  return launch_one<Epilogue::kSwiglu, 2>(type, parts, row_stride, n_in, x, 2 * parts.n_out[0], f, stream);
}

}  // namespace plumb::cuda
