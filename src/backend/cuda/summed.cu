// The prompt product under the CPU's contract S with int8 tensor cores: the activation
// preparation and the product kernel. The arithmetic and the tile layout are in summed.h (shared
// with the host-side tests); this file adds the instructions (cp.async, ldmatrix, mma.sync) and
// the block's schedule.
#include <cstdlib>

#include "backend/cuda/async_copy.cuh"
#include "backend/cuda/kernels.h"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/summed.h"

namespace plumb::cuda {

namespace {

using namespace summed;

// ---- Instructions ----

// Four 8x8 matrices of 16-bit elements (here: 8 rows of 16 bytes each); lanes 8m..8m+7 give
// matrix m's row addresses (summed.h: a_ldm_*, b_ldm_*).
__device__ __forceinline__ void ldmatrix_x4(uint32_t r[4], const uint8_t* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}

// d = A B + d, int32 exact (no .satfinite: the sums never come near 2^31).
__device__ __forceinline__ void mma_k32_s8s8(int32_t d[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
  asm("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ void mma_k32_s8u8(int32_t d[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
  asm("mma.sync.aligned.m16n8k32.row.col.s32.s8.u8.s32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ void mma_k16_s8s8(int32_t d[4], uint32_t a0, uint32_t a1, uint32_t b) {
  asm("mma.sync.aligned.m16n8k16.row.col.s32.s8.s8.s32 {%0, %1, %2, %3}, {%4, %5}, {%6}, {%0, %1, %2, %3};\n"
      : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
      : "r"(a0), "r"(a1), "r"(b));
}
__device__ __forceinline__ void mma_k16_s8u8(int32_t d[4], uint32_t a0, uint32_t a1, uint32_t b) {
  asm("mma.sync.aligned.m16n8k16.row.col.s32.s8.u8.s32 {%0, %1, %2, %3}, {%4, %5}, {%6}, {%0, %1, %2, %3};\n"
      : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
      : "r"(a0), "r"(a1), "r"(b));
}

// a[i] for i < 3 by selects.
template <class V>
__device__ __forceinline__ V pick(const V (&a)[3], int i) {
  return i == 0 ? a[0] : i == 1 ? a[1] : a[2];
}

// Row tile `tile` of the parts' tiles of `bm` rows one after another: its part, the part's rows,
// the tile's first row and its rows (the part selected without indexing the parameter arrays by
// a variable, which would copy them to local memory).
struct PartTile {
  int part;
  int64_t n_out, r0;
  int rows;
};
__device__ __forceinline__ PartTile part_tile(const MatvecParts& parts, int64_t tile, int bm) {
  int part = 0;
  for (; part + 1 < parts.count; ++part) {
    const int64_t tiles = (pick(parts.n_out, part) + bm - 1) / bm;
    if (tile < tiles) break;
    tile -= tiles;
  }
  const int64_t n_out = pick(parts.n_out, part), r0 = tile * bm;
  return {part, n_out, r0, static_cast<int>(n_out - r0 < bm ? n_out - r0 : bm)};
}

// ---- Activation preparation: a thread per (token, 32-value block) ----

__global__ void prepare_kernel(const float* __restrict__ x, ActPlanes p) {
  pdl_start();
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= p.n * p.ld) return;
  const int64_t t = i / p.ld, b = i % p.ld;
  if (b >= p.n_in / 32) {  // the rows' padding: zeros
    p.d[t * p.ld + b] = 0.0f;
    p.sx32[t * p.ld + b] = 0.0f;
    p.sx16[2 * (t * p.ld + b)] = 0.0f;
    p.sx16[2 * (t * p.ld + b) + 1] = 0.0f;
    return;
  }
  float xb[32];
  const float4* src = reinterpret_cast<const float4*>(x + t * p.n_in + 32 * b);
#pragma unroll
  for (int k = 0; k < 8; ++k) {
    const float4 v = src[k];
    xb[4 * k] = v.x, xb[4 * k + 1] = v.y, xb[4 * k + 2] = v.z, xb[4 * k + 3] = v.w;
  }
  ActBlock a;
  prepare_block(xb, &a);
  uint32_t hw[8], lw[8];
#pragma unroll
  for (int w = 0; w < 8; ++w) {
    hw[w] = lw[w] = 0;
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      hw[w] |= static_cast<uint32_t>(static_cast<uint8_t>(split_hi(a.q[4 * w + k]))) << (8 * k);
      lw[w] |= static_cast<uint32_t>(split_lo(a.q[4 * w + k])) << (8 * k);
    }
  }
  uint4* hi = reinterpret_cast<uint4*>(p.hi + t * p.n_in + 32 * b);
  uint4* lo = reinterpret_cast<uint4*>(p.lo + t * p.n_in + 32 * b);
  hi[0] = make_uint4(hw[0], hw[1], hw[2], hw[3]);
  hi[1] = make_uint4(hw[4], hw[5], hw[6], hw[7]);
  lo[0] = make_uint4(lw[0], lw[1], lw[2], lw[3]);
  lo[1] = make_uint4(lw[4], lw[5], lw[6], lw[7]);
  p.d[t * p.ld + b] = a.d;
  p.sx32[t * p.ld + b] = a.sx32;
  p.sx16[2 * (t * p.ld + b)] = a.sx16[0];
  p.sx16[2 * (t * p.ld + b) + 1] = a.sx16[1];
}

// ---- The min term of the types with a min (Q4_K, Q5_K) ----
//
// For output (t, r): hsum8(macc) with macc[c] the fma chain, in order, of mc[r][j] * sx32[t][j]
// over the row's 32-value sub-blocks j = c, c + 8, ... (summed.h); stored in y, to which
// summed_kernel adds its sums last. Apart from summed_kernel so that its 8 chains an output do
// not take that kernel's registers. A block takes kMinBM rows and kMinTiles tiles of kMinBN
// tokens: it decodes its rows' mc once (every thread, kMinBatch headers loaded before any is
// decoded), then for each token tile stages the tokens' sx32 and each thread runs the chains of
// 4 rows x 2 tokens out of shared memory. Rows of more than kMinMaxSubs sub-blocks are taken in
// chunks of that many, their mc decoded again for each token tile.
constexpr int kMinBM = kBM, kMinBN = 32, kMinThreads = 256, kMinTiles = 4, kMinBatch = 4, kMinMaxSubs = 448;

// Sub-blocks of a chunk, and floats between rows (or tokens) of mc_s and sx_s: a chunk's
// sub-blocks rounded up to 32, plus 4, so that the 8 consecutive tokens of a quarter-warp's
// 16-byte loads fall in different banks.
__host__ __device__ inline int64_t min_chunk_subs(int64_t n_in) { return n_in / 32 < kMinMaxSubs ? n_in / 32 : kMinMaxSubs; }
__host__ __device__ inline int64_t min_stride(int64_t n_in) { return (min_chunk_subs(n_in) + 31) / 32 * 32 + 4; }
inline size_t min_smem_bytes(int64_t n_in) {
  return static_cast<size_t>(kMinBM + kMinBN) * static_cast<size_t>(min_stride(n_in)) * sizeof(float);
}

template <TensorType T>
__global__ void __launch_bounds__(kMinThreads, 2) min_kernel(MatvecParts parts, size_t row_stride, ActPlanes x) {
  using K = Kind<T>;
  static_assert(K::kHasMin && K::kSub == 32 && K::kBlockVals == 256 && K::kAligned16,
                "a block's 8 sub-blocks are the 8 chains; its header is its first 16 bytes");
  static_assert(kMinThreads == 16 * (kMinBM / 4) && kMinBN == 2 * 16, "thread (ty, tx): rows 4 ty + i, tokens tx + 16 e");
  static_assert(kMinMaxSubs % 8 == 0, "chunks of whole blocks");
  extern __shared__ __align__(16) float min_smem[];
  const int64_t stride = min_stride(x.n_in), n_blocks = x.n_in / K::kBlockVals;
  const int64_t chunk_blocks = min_chunk_subs(x.n_in) / 8, n_chunks = (n_blocks + chunk_blocks - 1) / chunk_blocks;
  float* mc_s = min_smem;                   // [kMinBM][stride]: the chunk's mc
  float* sx_s = min_smem + kMinBM * stride;  // [kMinBN][stride]: the tile's sx32 of the chunk
  pdl_start();
  const PartTile pt = part_tile(parts, blockIdx.x, kMinBM);
  const int tid = threadIdx.x, ty = tid / 16, tx = tid % 16;
  const uint8_t* w = static_cast<const uint8_t*>(pick(parts.w, pt.part)) + pt.r0 * static_cast<int64_t>(row_stride);

  // Chunk c's mc: header h = (row h % kMinBM, block h / kMinBM of the chunk); rows past the matrix
  // decode zeros.
  const auto decode = [&](int64_t c) {
    const int64_t b0 = c * chunk_blocks, nb = n_blocks - b0 < chunk_blocks ? n_blocks - b0 : chunk_blocks;
    for (int64_t h0 = 0; h0 < kMinBM * nb; h0 += kMinBatch * kMinThreads) {
      uint4 hdr[kMinBatch];
#pragma unroll
      for (int k = 0; k < kMinBatch; ++k) {
        const int64_t h = h0 + k * kMinThreads + tid;
        const int r = static_cast<int>(h % kMinBM);
        const bool ok = h < kMinBM * nb && r < pt.rows;
        hdr[k] = ok ? *reinterpret_cast<const uint4*>(w + r * static_cast<int64_t>(row_stride) +
                                                       (b0 + h / kMinBM) * K::kBlockBytes)
                    : make_uint4(0, 0, 0, 0);
      }
#pragma unroll
      for (int k = 0; k < kMinBatch; ++k) {
        const int64_t h = h0 + k * kMinThreads + tid;
        if (h >= kMinBM * nb) break;
        float* dst = mc_s + (h % kMinBM) * stride + 8 * (h / kMinBM);
#pragma unroll
        for (int j = 0; j < 8; ++j) {
          float dw, mc;
          K::scale(reinterpret_cast<const uint8_t*>(&hdr[k]), j, &dw, &mc);
          dst[j] = mc;
        }
      }
    }
  };
  if (n_chunks == 1) decode(0);

  float* y = pick(parts.y, pt.part);
  for (int tile = 0; tile < kMinTiles; ++tile) {
    const int64_t t0 = (static_cast<int64_t>(blockIdx.y) * kMinTiles + tile) * kMinBN;
    if (t0 >= x.n) break;
    const int toks = static_cast<int>(x.n - t0 < kMinBN ? x.n - t0 : kMinBN);
    float macc[4][2][8];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
#pragma unroll
        for (int c = 0; c < 8; ++c) macc[i][e][c] = 0.0f;
      }
    }
    for (int64_t c = 0; c < n_chunks; ++c) {
      const int64_t b0 = c * chunk_blocks, nb = n_blocks - b0 < chunk_blocks ? n_blocks - b0 : chunk_blocks;
      const int64_t quads = 2 * nb;  // float4 of a token's sx32 in the chunk
      __syncthreads();  // the decoding, or the sums of the chunk before, done
      if (n_chunks > 1) decode(c);
      for (int64_t q0 = 0; q0 < kMinBN * quads; q0 += kMinBatch * kMinThreads) {
        float4 v[kMinBatch];
#pragma unroll
        for (int k = 0; k < kMinBatch; ++k) {
          const int64_t q = q0 + k * kMinThreads + tid;
          const int tk = static_cast<int>(q / quads);
          const bool ok = q < kMinBN * quads && tk < toks;
          v[k] = ok ? reinterpret_cast<const float4*>(x.sx32 + (t0 + tk) * x.ld + 8 * b0)[q % quads]
                    : make_float4(0, 0, 0, 0);
        }
#pragma unroll
        for (int k = 0; k < kMinBatch; ++k) {
          const int64_t q = q0 + k * kMinThreads + tid;
          if (q >= kMinBN * quads) break;
          reinterpret_cast<float4*>(sx_s + (q / quads) * stride)[q % quads] = v[k];
        }
      }
      __syncthreads();
      const float4* sxp = reinterpret_cast<const float4*>(sx_s + tx * stride);
      const float4* mcp = reinterpret_cast<const float4*>(mc_s + 4 * ty * stride);
      const int q_stride = static_cast<int>(stride / 4);  // float4 between rows
      for (int b = 0; b < static_cast<int>(nb); ++b, sxp += 2, mcp += 2) {
        float sxv[2][8];
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const float4 lo = sxp[16 * e * q_stride], hi = sxp[16 * e * q_stride + 1];
          sxv[e][0] = lo.x, sxv[e][1] = lo.y, sxv[e][2] = lo.z, sxv[e][3] = lo.w;
          sxv[e][4] = hi.x, sxv[e][5] = hi.y, sxv[e][6] = hi.z, sxv[e][7] = hi.w;
        }
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const float4 lo = mcp[i * q_stride], hi = mcp[i * q_stride + 1];
          const float mcv[8] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};
#pragma unroll
          for (int e = 0; e < 2; ++e) {
#pragma unroll
            for (int cc = 0; cc < 8; ++cc) macc[i][e][cc] = fma_rn(mcv[cc], sxv[e][cc], macc[i][e][cc]);
          }
        }
      }
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int r = 4 * ty + i, tk = tx + 16 * e;
        if (r < pt.rows && tk < toks) y[(t0 + tk) * pt.n_out + pt.r0 + r] = hsum8(macc[i][e]);
      }
    }
  }
}

// ---- The product ----
//
// Block (blockIdx.x: a tile of kBM rows of one part; blockIdx.y: kBN tokens), per step of 256
// values:
//   wait for this step's copies; sync (every warp is done with the last step's tiles);
//   issue the next step's copies (raw weight bytes, hi/lo bytes and d_a) into the other
//   buffers; decode the raw bytes into the int8 tile and dw; sync (with one raw buffer,
//   summed.h's Smem, the copies are issued here, once the raw bytes are decoded);
//   each warp: for each 32-value chunk of the step, ldmatrix A (2 x 16 rows) and B (2 x 8
//   tokens, hi and lo), the mma, and the epilogue of every sub-block in order.
// A thread owns 16 outputs (2 m tiles x 2 n tiles x 4 accumulators) from the first step to the
// store: their acc[2] chains run in sub-block order, as the contract orders them. For types with a
// min, min_kernel has stored each output's min term in y already; the store adds it last.
// Two blocks a multiprocessor where their shared memory fits (summed.h, Smem), which asks ptxas
// for at most 128 registers a thread.
template <TensorType T>
constexpr int kBlocksPerSm = Smem<Kind<T>>::total <= kTwoBlockSmem ? 2 : 1;

template <TensorType T>
__global__ void __launch_bounds__(kThreads, kBlocksPerSm<T>)
    summed_kernel(MatvecParts parts, size_t row_stride, ActPlanes x) {
  using K = Kind<T>;
  using L = Smem<K>;
  static_assert(!K::kAligned16 || (K::kBlockBytes % 16 == 0 && L::kStepBytes % 16 == 0),
                "16-byte loads need every block at a 16-byte boundary of the raw tile");
  constexpr int kSubs = L::kSubs;
  extern __shared__ __align__(16) uint8_t smem[];
  uint8_t* raw = smem + L::raw;
  uint8_t* a_tile = smem + L::a;
  uint8_t* b_tiles = smem + L::b;
  float* dw_s = reinterpret_cast<float*>(smem + L::dw);
  float* da_s = reinterpret_cast<float*>(smem + L::da);
  pdl_start();

  const PartTile pt = part_tile(parts, blockIdx.x, kBM);
  const int part = pt.part;
  const int64_t n_out = pt.n_out, r0 = pt.r0;
  const int rows = pt.rows;
  const int64_t t0 = static_cast<int64_t>(blockIdx.y) * kBN;
  const int toks = static_cast<int>(x.n - t0 < kBN ? x.n - t0 : kBN);
  const uint8_t* w = static_cast<const uint8_t*>(pick(parts.w, part)) + r0 * static_cast<int64_t>(row_stride);
  const int64_t n_steps = (x.n_in + kStep - 1) / kStep;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const auto valid_k = [&](int64_t step) {
    return static_cast<int>(x.n_in - step * kStep < kStep ? x.n_in - step * kStep : kStep);
  };

  // Each thread's copies are the same chunks at every step, so their addresses are set up once:
  // raw bytes, 4 threads a row (chunks q, q + 4, ... of its window); hi / lo bytes, 16 threads a
  // token row of 256 bytes (chunk tid % 16 of tokens tid / 16 + 16 k, both planes); d_a, 2
  // threads a token. Chunks past the step's bytes, rows past the matrix and tokens past the end
  // are zeroed, not read.
  static_assert(kThreads == 4 * kBM && kThreads == 16 * (kBN / 4) && kThreads >= 2 * kBN, "copy assignment");
  constexpr int kRawChunks = L::kRawStride / 16;
  const int raw_row = tid >> 2, raw_q = tid & 3;
  const bool raw_row_ok = raw_row < rows;
  const uint8_t* raw_src = w + raw_row * static_cast<int64_t>(row_stride) + 16 * raw_q;
  const int b_c = tid & 15, b_tk = tid >> 4;
  const uint8_t* b_src = reinterpret_cast<const uint8_t*>(x.hi) + (t0 + b_tk) * x.n_in + 16 * b_c;
  const int64_t b_plane = static_cast<int64_t>(x.n) * x.n_in;  // lo - hi
  const int64_t b_rows4 = 16 * x.n_in;                          // 16 token rows
  const bool co_copies = tid < 2 * kBN;
  const int co_tk = tid / 2, co_c = tid & 1;
  const float* co_src = x.d + (t0 + co_tk) * x.ld + 4 * co_c;
  const auto issue = [&](int64_t step, int buf) {
    const int kv = valid_k(step);
    const RawWindow win = raw_window<K>(step, kv);
    const int chunks = win.window / 16;
    uint8_t* rdst = raw + (L::raw_buf(buf) * kBM + raw_row) * L::kRawStride + 16 * raw_q;
#pragma unroll
    for (int m = 0; m < (kRawChunks + 3) / 4; ++m) {
      const int c = raw_q + 4 * m;
      if (c >= kRawChunks) break;
      const bool ok = raw_row_ok && c < chunks;
      cp_async16(rdst + 64 * m, ok ? raw_src + win.start + 64 * m : w, ok);
    }
    uint8_t* bdst = b_tiles + buf * L::b_buf + b_tk * kTileStride + 16 * b_c;
    const uint8_t* bsrc = b_src + step * kStep;
    const bool b_c_ok = 16 * b_c < kv;
#pragma unroll
    for (int k = 0; k < 8; ++k) {
      const int plane = k >> 2, q = k & 3;
      const bool ok = b_c_ok && b_tk + 16 * q < toks;
      cp_async16(bdst + (plane * kBN + 16 * q) * kTileStride, ok ? bsrc + plane * b_plane + q * b_rows4 : x.lo, ok);
    }
    if (co_copies) {
      const bool ok = co_tk < toks;
      cp_async16(da_s + (buf * kBN + co_tk) * kCoefStride + 4 * co_c, ok ? co_src + step * (kStep / 32) : x.d, ok);
    }
    cp_async_commit();
  };

  const auto decode = [&](int64_t step, int buf) {
    constexpr int kBlocks = kStep / K::kBlockVals;
    constexpr int kUnitsStep = kBlocks * K::kUnits;
    const int kv = valid_k(step);
    const RawWindow win = raw_window<K>(step, kv);
    const uint8_t* rsrc = raw + L::raw_buf(buf) * kBM * L::kRawStride + win.offset;
    const int blocks = kv / K::kBlockVals;
    for (int i = tid; i < kBM * kUnitsStep; i += kThreads) {
      const int r = i / kUnitsStep, u = i % kUnitsStep, blk = u / K::kUnits;
      if (blk < blocks) {
        K::unit(rsrc + r * L::kRawStride + blk * K::kBlockBytes, u % K::kUnits,
                a_tile + r * kTileStride + blk * K::kBlockVals);
      }
    }
    const int subs = kv / K::kSub;
    for (int i = tid; i < kBM * kSubs; i += kThreads) {
      const int j = i / kBM, r = i % kBM;
      if (j < subs) {
        const int e = j * K::kSub;
        float mc;  // min_kernel's
        K::scale(rsrc + r * L::kRawStride + e / K::kBlockVals * K::kBlockBytes, e % K::kBlockVals / K::kSub,
                 &dw_s[j * kBM + r], &mc);
      }
    }
  };

  const int wm = warp & 1, wn = warp >> 1;
  const bool active = wn * kWN < toks;  // a warp whose tokens are all past the end only copies and decodes
  const int g = lane >> 2, tq = lane & 3;
  float acc[kMTiles][kNTiles][4][2];
#pragma unroll
  for (int mi = 0; mi < kMTiles; ++mi) {
#pragma unroll
    for (int ni = 0; ni < kNTiles; ++ni) {
#pragma unroll
      for (int c = 0; c < 4; ++c) acc[mi][ni][c][0] = acc[mi][ni][c][1] = 0.0f;
    }
  }
  const uint8_t* a_frag = a_tile + (wm * kWM + a_ldm_row(lane)) * kTileStride + a_ldm_k(lane);
  const int b_frag = (b_ldm_plane(lane) * kBN + wn * kWN + b_ldm_token(lane)) * kTileStride + b_ldm_k(lane);

  // Sub-block j of the step (j is a constant after unrolling, so the chains' indices are too):
  // the two products of each (m tile, n tile) and the epilogue of its 4 accumulators.
  const auto sub_block = [&](auto jc, const auto& af, const auto& bf, const float* da) {
    constexpr int j = decltype(jc)::value;
    constexpr int jb = j * K::kSub / 32;  // the 32-value activation block
    float dwv[kMTiles][2], dav[kNTiles][2];
#pragma unroll
    for (int mi = 0; mi < kMTiles; ++mi) {
#pragma unroll
      for (int h = 0; h < 2; ++h) dwv[mi][h] = dw_s[j * kBM + wm * kWM + mi * 16 + g + 8 * h];
    }
#pragma unroll
    for (int ni = 0; ni < kNTiles; ++ni) {
#pragma unroll
      for (int e = 0; e < 2; ++e) dav[ni][e] = da[(wn * kWN + ni * 8 + 2 * tq + e) * kCoefStride + jb];
    }
#pragma unroll
    for (int mi = 0; mi < kMTiles; ++mi) {
#pragma unroll
      for (int ni = 0; ni < kNTiles; ++ni) {
        int32_t dh[4] = {int32_t(kMagicBits), int32_t(kMagicBits), int32_t(kMagicBits), int32_t(kMagicBits)};
        int32_t dl[4] = {int32_t(kMagicBits), int32_t(kMagicBits), int32_t(kMagicBits), int32_t(kMagicBits)};
        if constexpr (K::kSub == 32) {
          mma_k32_s8s8(dh, af[mi], bf[ni][0], bf[ni][1]);
          mma_k32_s8u8(dl, af[mi], bf[ni][2], bf[ni][3]);
        } else {
          constexpr int h = j & 1;  // the chunk's first or second 16 values
          mma_k16_s8s8(dh, af[mi][2 * h], af[mi][2 * h + 1], bf[ni][h]);
          mma_k16_s8u8(dl, af[mi][2 * h], af[mi][2 * h + 1], bf[ni][2 + h]);
        }
#pragma unroll
        for (int c = 0; c < 4; ++c) {
          const float p = combine_sums(dh[c], dl[c]);
          const float coef = mul_rn(dwv[mi][c >> 1], dav[ni][c & 1]);
          acc[mi][ni][c][j & 1] = fma_rn(p, coef, acc[mi][ni][c][j & 1]);
        }
      }
    }
  };

  const auto compute = [&](int buf, int kv) {
    const uint8_t* bt = b_tiles + buf * L::b_buf + b_frag;
    const float* da = da_s + buf * kBN * kCoefStride;
    const auto chunk = [&](auto kcc) {
      constexpr int kc = decltype(kcc)::value;
      if (kc * 32 >= kv) return;  // a last step shorter than 256 values (32-value block types)
      uint32_t af[kMTiles][4], bf[kNTiles][4];
#pragma unroll
      for (int mi = 0; mi < kMTiles; ++mi) ldmatrix_x4(af[mi], a_frag + mi * 16 * kTileStride + kc * 32);
#pragma unroll
      for (int ni = 0; ni < kNTiles; ++ni) ldmatrix_x4(bf[ni], bt + ni * 8 * kTileStride + kc * 32);
      if constexpr (K::kSub == 32) {
        sub_block(std::integral_constant<int, kc>{}, af, bf, da);
      } else {
        sub_block(std::integral_constant<int, 2 * kc>{}, af, bf, da);
        sub_block(std::integral_constant<int, 2 * kc + 1>{}, af, bf, da);
      }
    };
    chunk(std::integral_constant<int, 0>{});
    chunk(std::integral_constant<int, 1>{});
    chunk(std::integral_constant<int, 2>{});
    chunk(std::integral_constant<int, 3>{});
    chunk(std::integral_constant<int, 4>{});
    chunk(std::integral_constant<int, 5>{});
    chunk(std::integral_constant<int, 6>{});
    chunk(std::integral_constant<int, 7>{});
  };

  issue(0, 0);
  for (int64_t step = 0; step < n_steps; ++step) {
    const int buf = static_cast<int>(step & 1);
    cp_async_wait_all();
    __syncthreads();
    if (K::kRawBufs == 2 && step + 1 < n_steps) issue(step + 1, buf ^ 1);
    decode(step, buf);
    __syncthreads();
    if (K::kRawBufs == 1 && step + 1 < n_steps) issue(step + 1, buf ^ 1);  // the raw bytes are decoded
    if (active) compute(buf, valid_k(step));
  }
  if (!active) return;

  float* y = pick(parts.y, part);
  float* acc_out = pick(parts.acc, part);
#pragma unroll
  for (int mi = 0; mi < kMTiles; ++mi) {
#pragma unroll
    for (int ni = 0; ni < kNTiles; ++ni) {
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const int r = wm * kWM + mi * 16 + c_row(lane, c);
        const int tk = wn * kWN + ni * 8 + c_col(lane, c);
        if (r >= rows || tk >= toks) continue;
        const int64_t at = (t0 + tk) * n_out + r0 + r;
        float v = add_rn(acc[mi][ni][c][0], acc[mi][ni][c][1]);
        if constexpr (K::kHasMin) v = add_rn(v, y[at]);
        y[at] = v;
        if (acc_out != nullptr) acc_out[at] = add_rn(acc_out[at], v);
      }
    }
  }
}

template <TensorType T>
cudaError_t launch_summed(const MatvecParts& parts, size_t row_stride, const ActPlanes& x, cudaStream_t stream) {
  using L = Smem<Kind<T>>;
  // Above 48 KiB of shared memory a kernel must say so, once.
  static const cudaError_t allowed =
      cudaFuncSetAttribute(summed_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(L::total));
  if (allowed != cudaSuccess) return allowed;
  if (x.n_in % Kind<T>::kBlockVals != 0) return cudaErrorInvalidValue;
  int64_t tiles = 0;
  for (int i = 0; i < parts.count; ++i) tiles += (parts.n_out[i] + kBM - 1) / kBM;
  const int64_t token_tiles = (x.n + kBN - 1) / kBN;
  const int64_t min_token_groups = (x.n + kMinTiles * kMinBN - 1) / (kMinTiles * kMinBN);
  if (tiles > 0x7fffffff || token_tiles > 65535 || min_token_groups > 65535) return cudaErrorInvalidValue;
  if constexpr (Kind<T>::kHasMin) {
    static_assert(kMinBM == kBM, "the same row tiles");
    const size_t min_smem = min_smem_bytes(x.n_in);  // at most 96 x 452 floats: 173,568 bytes
    static const cudaError_t min_allowed =
        cudaFuncSetAttribute(min_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize, 227 * 1024);
    if (min_allowed != cudaSuccess) return min_allowed;
    const dim3 min_grid(static_cast<unsigned>(tiles), static_cast<unsigned>(min_token_groups));
    if (const cudaError_t e = launch(min_kernel<T>, min_grid, kMinThreads, min_smem, stream, parts, row_stride, x);
        e != cudaSuccess) {
      return e;
    }
  }
  const dim3 grid(static_cast<unsigned>(tiles), static_cast<unsigned>(token_tiles));
  return launch(summed_kernel<T>, grid, kThreads, L::total, stream, parts, row_stride, x);
}

}  // namespace

// PLUMB_CUDA_SUMMED=0 sends every prompt product through cuBLAS (for measuring the kernel).
bool summed_covers(TensorType type) {
  static const bool enabled = switched_on("PLUMB_CUDA_SUMMED");
  return enabled && summed::covers(type);
}

size_t summed_act_bytes(int64_t n_in, int64_t n) { return summed::act_bytes(n_in, n); }

cudaError_t summed_prepare(const float* x, int64_t n, int64_t n_in, void* act, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  if (n_in % 32 != 0) return cudaErrorInvalidValue;
  const ActPlanes p = act_planes(act, n_in, n);
  const int64_t threads = n * p.ld;
  return launch(prepare_kernel, static_cast<unsigned>((threads + 127) / 128), 128, 0, stream, x, p);
}

cudaError_t summed_matmul(TensorType type, const MatvecParts& parts, size_t row_stride, int64_t n_in, const void* act,
                          int64_t n, cudaStream_t stream) {
  if (n <= 0 || parts.count <= 0) return cudaSuccess;
  if (row_stride % 16 != 0 || parts.count > 3) return cudaErrorInvalidValue;
  const ActPlanes x = act_planes(const_cast<void*>(act), n_in, n);
  switch (type) {
    case TensorType::Q4_0: return launch_summed<TensorType::Q4_0>(parts, row_stride, x, stream);
    case TensorType::Q8_0: return launch_summed<TensorType::Q8_0>(parts, row_stride, x, stream);
    case TensorType::Q4_K: return launch_summed<TensorType::Q4_K>(parts, row_stride, x, stream);
    case TensorType::Q5_K: return launch_summed<TensorType::Q5_K>(parts, row_stride, x, stream);
    case TensorType::Q6_K: return launch_summed<TensorType::Q6_K>(parts, row_stride, x, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace plumb::cuda
