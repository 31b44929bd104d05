// The CUDA prompt product under contract S (src/backend/cuda/summed.h, summed.cu).
//
// Host tests (run everywhere, no GPU needed): the shared arithmetic of summed.h compiled for the
// host against the CPU backend: the weight decoding against weight_unpack.h at every 2-byte
// alignment, the activation preparation against quantize_token, the exact combination of the
// high- and low-byte sums, and an emulation of the kernel's whole schedule (the copies it makes,
// the decoding, ldmatrix and mma.sync as the PTX ISA defines their fragments, the epilogue in
// sub-block order) against scalar_summed_kernel, bit for bit.
//
// GPU tests (skipped, saying so, without a CUDA device): the device preparation against
// quantize_token, and the backend's prompt products against the CPU backend's contract-S
// products, bit for bit (memcmp; NaN outputs compared as NaN: the GPU's NaN payload differs).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/matmul.h"
#include "backend/cpu/matmul_internal.h"
#include "backend/cpu/weight_unpack.h"
#include "backend/cuda/summed.h"
#include "quant/ref.h"
#include "quant/types.h"
#include "util/thread_pool.h"
#include "cuda_test_util.h"

#if defined(PLUMB_HAVE_CUDA)
#include <cuda_runtime.h>

#include "backend/cuda/kernels.h"
#endif

namespace plumb::test {
namespace {

namespace su = plumb::cuda::summed;
using cpu::detail::ActLayout;

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// Same bits, or both NaN (NaN payloads are not part of the contract: the GPU's arithmetic makes
// its own).
::testing::AssertionResult same_bits_or_nan(const float* a, const float* b, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (std::isnan(a[i]) && std::isnan(b[i])) continue;
    if (bits(a[i]) != bits(b[i])) {
      return ::testing::AssertionFailure() << "element " << i << ": " << a[i] << " vs " << b[i] << " (bits "
                                           << std::hex << bits(a[i]) << " vs " << bits(b[i]) << ")";
    }
  }
  return ::testing::AssertionSuccess();
}

// ---------------------------------------------------------------------------------------------
// Host: the arithmetic pieces

TEST(CudaSummedHost, HalfToFloatIsTheReference) {
  for (uint32_t h = 0; h < 65536; ++h) {
    ASSERT_EQ(bits(su::half_to_float(static_cast<uint16_t>(h))), bits(fp16_to_fp32(static_cast<uint16_t>(h)))) << h;
  }
}

TEST(CudaSummedHost, HighAndLowBytesRecombineExactly) {
  for (int q = -32768; q <= 32767; ++q) {
    const int hi = su::split_hi(q), lo = su::split_lo(q);
    ASSERT_TRUE(hi >= -128 && hi <= 127 && lo >= 0 && lo <= 255) << q;
    ASSERT_EQ(256 * hi + lo, q);
  }
}

// combine_sums(magic + C_hi, magic + C_lo) is float(256 C_hi + C_lo) rounded once, over the
// whole range the products can reach (|C_hi| <= 2^19, |C_lo| < 2^20) and beyond it to 2^22.
TEST(CudaSummedHost, CombinedSumsRoundOnceToNearestEven) {
  std::mt19937 rng(7);
  const auto check = [](int32_t ch, int32_t cl) {
    const float got = su::combine_sums(static_cast<int32_t>(su::kMagicBits) + ch, static_cast<int32_t>(su::kMagicBits) + cl);
    const float want = static_cast<float>(256 * int64_t{ch} + cl);  // one rounding, to nearest even
    return bits(got) == bits(want);
  };
  const int32_t edges[] = {0, 1, -1, 255, -256, (1 << 19), -(1 << 19), (1 << 20) - 1, -(1 << 20), (1 << 22) - 1, -(1 << 22)};
  for (int32_t ch : edges)
    for (int32_t cl : edges) ASSERT_TRUE(check(ch, cl)) << ch << " " << cl;
  std::uniform_int_distribution<int32_t> dh(-(1 << 22), (1 << 22) - 1), dl(-(1 << 22), (1 << 22) - 1);
  for (int i = 0; i < 2000000; ++i) {
    const int32_t ch = dh(rng), cl = dl(rng);
    ASSERT_TRUE(check(ch, cl)) << ch << " " << cl;
  }
  // Sums that need rounding (|P| >= 2^24), ties included: P = 2^25 + 1 and 2^25 + 2 (ulp 4).
  ASSERT_TRUE(check(1 << 17, 1));
  ASSERT_TRUE(check(1 << 17, 2));
  ASSERT_TRUE(check(1 << 17, 6));
  ASSERT_TRUE(check(-(1 << 17), -2));
}

TEST(CudaSummedHost, FragmentCoordinatesAreThePtxOnes) {
  for (int lane = 0; lane < 32; ++lane) {
    for (int i = 0; i < 4; ++i) {
      // PTX ISA, "Matrix Fragments for mma.m16n8k32", accumulators: row = groupID (+8 for i >= 2),
      // col = threadID_in_group * 2 + (i & 1).
      EXPECT_EQ(su::c_row(lane, i), (lane >> 2) + (i >= 2 ? 8 : 0));
      EXPECT_EQ(su::c_col(lane, i), (lane % 4) * 2 + (i & 1));
    }
  }
}

// ---- Weight decoding ----

template <TensorType T, class U>
void check_decode(uint32_t seed) {
  using K = su::Kind<T>;
  static_assert(K::kBlockVals == U::kBlock && K::kSub == U::kSub && K::kHasMin == U::kHasMin &&
                K::kBlockBytes == static_cast<int>(sizeof(typename U::Block)));
  constexpr int kSubs = K::kBlockVals / K::kSub;
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> byte(0, 255);
  std::vector<float> vals(K::kBlockVals);
  std::vector<uint8_t> block(K::kBlockBytes);
  for (int trial = 0; trial < 300; ++trial) {
    if (trial % 3 != 2) {  // what the quantizer makes (scales of every size)
      const float scale = std::ldexp(1.0f, trial % 40 - 20);
      for (float& v : vals) v = normal(rng) * scale;
      quantize_row(T, vals.data(), block.data(), K::kBlockVals);
    } else {  // any bytes: every bit pattern of the quants, scales and mins
      for (uint8_t& b : block) b = static_cast<uint8_t>(byte(rng));
    }
    alignas(64) int16_t wq[K::kBlockVals];
    float dw[kSubs], mc[kSubs] = {};
    U::unpack(block.data(), wq, dw, mc);
    // The kernel reads blocks at any 2-byte alignment (16-byte aligned for kAligned16 types).
    for (int off = 0; off < 16; off += K::kAligned16 ? 16 : 2) {
      alignas(16) uint8_t in[K::kBlockBytes + 32] = {};
      std::memcpy(in + off, block.data(), block.size());
      for (uint8_t sentinel : {uint8_t{0xA5}, uint8_t{0x5A}}) {
        alignas(16) uint8_t out[K::kBlockVals];
        std::memset(out, sentinel, sizeof(out));
        for (int u = 0; u < K::kUnits; ++u) K::unit(in + off, u, out);
        for (int e = 0; e < K::kBlockVals; ++e) {
          ASSERT_EQ(static_cast<int8_t>(out[e]), wq[e]) << type_name(T) << " trial " << trial << " offset " << off
                                                        << " element " << e;
        }
      }
      for (int j = 0; j < kSubs; ++j) {
        float d2 = 0.0f, m2 = 0.0f;
        K::scale(in + off, j, &d2, &m2);
        ASSERT_EQ(bits(d2), bits(dw[j])) << type_name(T) << " trial " << trial << " sub-block " << j;
        if (K::kHasMin) {
          ASSERT_EQ(bits(m2), bits(mc[j])) << type_name(T) << " trial " << trial << " sub-block " << j;
        }
      }
    }
  }
}

TEST(CudaSummedHost, DecodeIsTheCpuUnpackQ4_0) { check_decode<TensorType::Q4_0, cpu::detail::UnpackQ4_0>(1); }
TEST(CudaSummedHost, DecodeIsTheCpuUnpackQ8_0) { check_decode<TensorType::Q8_0, cpu::detail::UnpackQ8_0>(2); }
TEST(CudaSummedHost, DecodeIsTheCpuUnpackQ4_K) { check_decode<TensorType::Q4_K, cpu::detail::UnpackQ4_K>(3); }
TEST(CudaSummedHost, DecodeIsTheCpuUnpackQ5_K) { check_decode<TensorType::Q5_K, cpu::detail::UnpackQ5_K>(4); }
TEST(CudaSummedHost, DecodeIsTheCpuUnpackQ6_K) { check_decode<TensorType::Q6_K, cpu::detail::UnpackQ6_K>(5); }

// ---- Activations ----

// Tokens whose blocks exercise every branch of the preparation: ordinary values, a large outlier,
// ties at .5 (amax 32767: id 1), all zeros, -0, amounts small enough that 1/d overflows (a zero
// block) or d is subnormal, huge values, and in tokens 1, 6, 11, ... (whose outputs are then all
// NaN) NaN / +Inf / -Inf at some positions.
std::vector<float> awkward_activations(int64_t n, int64_t n_in, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> pick(0, 31);
  std::vector<float> x(static_cast<size_t>(n * n_in));
  for (float& v : x) v = normal(rng);
  const int64_t n_blocks = n_in / 32;
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t b = 0; b < n_blocks; ++b) {
      float* xb = x.data() + t * n_in + 32 * b;
      int64_t kind = (t * 7 + b * 3) % 23;
      if (kind >= 8 && kind <= 11 && t % 5 != 1) kind = 0;
      switch (kind) {
        case 1: xb[pick(rng)] *= 30.0f; break;
        case 2:
          xb[0] = 32767.0f;
          for (int k = 1; k < 32; ++k) xb[k] = std::floor(xb[k] * 1000.0f) + 0.5f;
          break;
        case 3: std::fill(xb, xb + 32, 0.0f); break;
        case 4: std::fill(xb, xb + 32, -0.0f); break;
        case 5: for (int k = 0; k < 32; ++k) xb[k] *= 1e-36f; break;
        case 6: for (int k = 0; k < 32; ++k) xb[k] *= 1e-30f; break;
        case 7: for (int k = 0; k < 32; ++k) xb[k] *= 1e36f; break;
        case 8: xb[pick(rng)] = std::numeric_limits<float>::quiet_NaN(); break;
        case 9: xb[pick(rng)] = std::numeric_limits<float>::infinity(); break;
        case 10: xb[pick(rng)] = -std::numeric_limits<float>::infinity(); break;
        case 11:
          xb[3] = std::numeric_limits<float>::infinity();
          xb[17] = -std::numeric_limits<float>::infinity();
          break;
        case 12: for (int k = 0; k < 32; ++k) xb[k] = std::ldexp(xb[k], -140); break;  // subnormal x
        case 13:
        case 14:  // magnitudes 2^-40 .. 2^40: the sums' order shows in their rounding
          for (int k = 0; k < 32; ++k) xb[k] = std::ldexp(xb[k], pick(rng) * 5 / 2 - 40);
          break;
        case 15:
        case 16: {  // +-2^60 that cancel: whether the small values survive depends on the sums' tree
          const int p1 = pick(rng), p2 = (p1 + 1 + pick(rng) % 31) % 32;
          xb[p1] = 0x1p60f;
          xb[p2] = -0x1p60f;
          break;
        }
        default: break;
      }
    }
  }
  return x;
}

// The CPU's prepared form of one token.
struct CpuToken {
  std::vector<uint8_t> bytes;
  ActLayout lay;
  const int16_t* q() const { return reinterpret_cast<const int16_t*>(bytes.data() + lay.q_off); }
  const float* d() const { return reinterpret_cast<const float*>(bytes.data() + lay.d_off); }
  const float* sx32() const { return reinterpret_cast<const float*>(bytes.data() + lay.sx32_off); }
  const float* sx16() const { return reinterpret_cast<const float*>(bytes.data() + lay.sx16_off); }
};
CpuToken cpu_token(const float* x, int64_t n_in) {
  CpuToken c;
  c.lay = ActLayout::for_n_in(n_in);
  c.bytes.assign(c.lay.stride, 0);
  cpu::detail::quantize_token(x, c.lay, c.bytes.data());
  return c;
}

TEST(CudaSummedHost, PreparedBlocksAreQuantizeTokens) {
  const int64_t n_in = 32 * 23 * 3, n = 41;
  const std::vector<float> x = awkward_activations(n, n_in, 3);
  for (int64_t t = 0; t < n; ++t) {
    const CpuToken c = cpu_token(x.data() + t * n_in, n_in);
    for (int64_t b = 0; b < n_in / 32; ++b) {
      su::ActBlock a;
      su::prepare_block(x.data() + t * n_in + 32 * b, &a);
      ASSERT_EQ(bits(a.d), bits(c.d()[b])) << "token " << t << " block " << b;
      for (int k = 0; k < 32; ++k) ASSERT_EQ(a.q[k], c.q()[32 * b + k]) << "token " << t << " block " << b << " k " << k;
      ASSERT_TRUE(same_bits_or_nan(&a.sx32, &c.sx32()[b], 1)) << "token " << t << " block " << b;
      ASSERT_TRUE(same_bits_or_nan(a.sx16, &c.sx16()[2 * b], 2)) << "token " << t << " block " << b;
    }
  }
}

// ---- The kernel's schedule, emulated ----

// Host copies of what the device holds: prepared activations in the ActPlanes layout, made with
// prepare_block (the host build of the device's code, checked above against quantize_token).
struct HostPlanes {
  std::vector<uint8_t> mem;
  su::ActPlanes p;
};
HostPlanes host_planes(const std::vector<float>& x, int64_t n, int64_t n_in) {
  HostPlanes h;
  h.mem.assign(su::act_bytes(n_in, n) + 64, 0);
  h.p = su::act_planes(h.mem.data(), n_in, n);
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t b = 0; b < n_in / 32; ++b) {
      su::ActBlock a;
      su::prepare_block(x.data() + t * n_in + 32 * b, &a);
      for (int k = 0; k < 32; ++k) {
        h.p.hi[t * n_in + 32 * b + k] = su::split_hi(a.q[k]);
        h.p.lo[t * n_in + 32 * b + k] = su::split_lo(a.q[k]);
      }
      h.p.d[t * h.p.ld + b] = a.d;
      h.p.sx32[t * h.p.ld + b] = a.sx32;
      h.p.sx16[2 * (t * h.p.ld + b)] = a.sx16[0];
      h.p.sx16[2 * (t * h.p.ld + b) + 1] = a.sx16[1];
    }
  }
  return h;
}

// ldmatrix.sync.aligned.m8n8.x4.b16 (PTX ISA, "Warp-level matrix load instruction: ldmatrix"):
// lanes 8m .. 8m+7 hold matrix m's row addresses; lane l receives, in register m, the 4 bytes at
// byte 4 (l % 4) of row l / 4 of matrix m.
void ldmatrix_x4(const uint8_t* const addr[32], uint32_t out[32][4]) {
  for (int m = 0; m < 4; ++m)
    for (int l = 0; l < 32; ++l) std::memcpy(&out[l][m], addr[8 * m + l / 4] + 4 * (l % 4), 4);
}

int byte_of(uint32_t reg, int i, bool is_unsigned) {
  const uint8_t v = static_cast<uint8_t>(reg >> (8 * i));
  return is_unsigned ? int{v} : int{static_cast<int8_t>(v)};
}

// d += A B, mma.sync.aligned.m16n8k32.row.col.s32.s8.{s8,u8}.s32 (PTX ISA, "Matrix Fragments for
// mma.m16n8k32"): A a[lane][4] (a_i in register i / 4, byte i % 4; row groupID for i < 4 and 8 <=
// i < 12, else groupID + 8; column 4 threadID_in_group + (i & 3), + 16 for i >= 8), B b[lane][2]
// (b_i: row 4 threadID_in_group + (i & 3), + 16 for i >= 4; column groupID), D d[lane][4] (row
// groupID, + 8 for i >= 2; column 2 threadID_in_group + (i & 1)).
void mma_k32(const uint32_t a[32][4], const uint32_t b[32][2], bool b_unsigned, int32_t d[32][4]) {
  int am[16][32], bm[32][8];
  for (int l = 0; l < 32; ++l) {
    const int g = l >> 2, t = l & 3;
    for (int i = 0; i < 16; ++i) {
      const int row = (i < 4 || (i >= 8 && i < 12)) ? g : g + 8;
      am[row][4 * t + (i & 3) + (i >= 8 ? 16 : 0)] = byte_of(a[l][i / 4], i % 4, false);
    }
    for (int i = 0; i < 8; ++i) bm[4 * t + (i & 3) + (i >= 4 ? 16 : 0)][g] = byte_of(b[l][i / 4], i % 4, b_unsigned);
  }
  for (int l = 0; l < 32; ++l) {
    const int g = l >> 2, t = l & 3;
    for (int i = 0; i < 4; ++i) {
      const int row = g + (i >= 2 ? 8 : 0), col = 2 * t + (i & 1);
      int64_t s = 0;
      for (int k = 0; k < 32; ++k) s += am[row][k] * bm[k][col];
      d[l][i] = static_cast<int32_t>(static_cast<uint32_t>(d[l][i]) + static_cast<uint32_t>(s));
    }
  }
}
// The same for m16n8k16 ("Matrix Fragments for mma.m16n8k16 with integer type"): A in two
// registers (a_i: row groupID for i < 4, else groupID + 8; column 4 threadID_in_group + (i & 3)),
// B in one (b_i: row 4 threadID_in_group + i, column groupID), D as above.
void mma_k16(const uint32_t a0[32], const uint32_t a1[32], const uint32_t b[32], bool b_unsigned, int32_t d[32][4]) {
  int am[16][16], bm[16][8];
  for (int l = 0; l < 32; ++l) {
    const int g = l >> 2, t = l & 3;
    for (int i = 0; i < 8; ++i) am[i < 4 ? g : g + 8][4 * t + (i & 3)] = byte_of(i < 4 ? a0[l] : a1[l], i % 4, false);
    for (int i = 0; i < 4; ++i) bm[4 * t + i][g] = byte_of(b[l], i, b_unsigned);
  }
  for (int l = 0; l < 32; ++l) {
    const int g = l >> 2, t = l & 3;
    for (int i = 0; i < 4; ++i) {
      const int row = g + (i >= 2 ? 8 : 0), col = 2 * t + (i & 1);
      int64_t s = 0;
      for (int k = 0; k < 16; ++k) s += am[row][k] * bm[k][col];
      d[l][i] = static_cast<int32_t>(static_cast<uint32_t>(d[l][i]) + static_cast<uint32_t>(s));
    }
  }
}

// min_kernel<T> (types with a min), then summed_kernel<T>'s blocks one after another: the shared
// memory each step holds (the cp.async copies' effect: the step's 16-byte aligned window of each
// row, rows past the matrix zeroed, the hi / lo bytes and the d_a of each token, tokens past the
// end zeroed), the decoding, and each warp's ldmatrix, mma and epilogue as the kernel issues
// them. w: rows row_stride bytes apart.
template <TensorType T>
void emulate_product(const uint8_t* w, size_t row_stride, int64_t n_out, const su::ActPlanes& x, float* y,
                     float* acc_out) {
  using K = su::Kind<T>;
  using L = su::Smem<K>;
  constexpr int kWarps = su::kThreads / 32;
  std::vector<uint8_t> smem(L::total + 16, 0);
  uint8_t* raw = smem.data() + L::raw;
  uint8_t* a_tile = smem.data() + L::a;
  uint8_t* b_tiles = smem.data() + L::b;
  float* dw_s = reinterpret_cast<float*>(smem.data() + L::dw);
  float* da_s = reinterpret_cast<float*>(smem.data() + L::da);
  const int64_t n_steps = (x.n_in + su::kStep - 1) / su::kStep;
  struct Lane {
    float acc[su::kMTiles][su::kNTiles][4][2];
  };
  // min_kernel first: each output's min term, its 8 chains over the 256-value blocks in order.
  if constexpr (K::kHasMin) {
    for (int64_t r = 0; r < n_out; ++r) {
      for (int64_t t = 0; t < x.n; ++t) {
        float macc[8] = {};
        for (int64_t b = 0; b < x.n_in / K::kBlockVals; ++b) {
          for (int j = 0; j < 8; ++j) {
            float dw, mc;
            K::scale(w + r * row_stride + b * K::kBlockBytes, j, &dw, &mc);
            macc[j] = su::fma_rn(mc, x.sx32[t * x.ld + 8 * b + j], macc[j]);
          }
        }
        y[t * n_out + r] = su::hsum8(macc);
      }
    }
  }
  std::vector<Lane> lanes(kWarps * 32);
  for (int64_t r0 = 0; r0 < n_out; r0 += su::kBM) {
    for (int64_t t0 = 0; t0 < x.n; t0 += su::kBN) {
      const int rows = static_cast<int>(std::min<int64_t>(su::kBM, n_out - r0));
      const int toks = static_cast<int>(std::min<int64_t>(su::kBN, x.n - t0));
      for (Lane& l : lanes) std::memset(&l, 0, sizeof(l));
      for (int64_t step = 0; step < n_steps; ++step) {
        const int buf = static_cast<int>(step & 1);
        const int kv = static_cast<int>(std::min<int64_t>(su::kStep, x.n_in - step * su::kStep));
        const su::RawWindow win = su::raw_window<K>(step, kv);
        // The copies.
        ASSERT_LE(win.window, L::kRawStride);
        ASSERT_LE(static_cast<size_t>(win.start + win.window), row_stride);
        for (int r = 0; r < su::kBM; ++r) {
          uint8_t* dst = raw + (L::raw_buf(buf) * su::kBM + r) * L::kRawStride;
          if (r < rows) std::memcpy(dst, w + (r0 + r) * row_stride + win.start, win.window);
          else std::memset(dst, 0, win.window);
        }
        for (int plane = 0; plane < 2; ++plane) {
          for (int tk = 0; tk < su::kBN; ++tk) {
            uint8_t* dst = b_tiles + buf * L::b_buf + (plane * su::kBN + tk) * su::kTileStride;
            const uint8_t* src = (plane == 0 ? reinterpret_cast<const uint8_t*>(x.hi) : x.lo) + (t0 + tk) * x.n_in +
                                 step * su::kStep;
            if (tk < toks) std::memcpy(dst, src, kv);
            else std::memset(dst, 0, kv);
          }
        }
        for (int tk = 0; tk < su::kBN; ++tk) {
          for (int c = 0; c < 8; ++c) {
            const int64_t at = (t0 + tk) * x.ld + step * 8 + c;
            da_s[(buf * su::kBN + tk) * su::kCoefStride + c] = tk < toks ? x.d[at] : 0.0f;
          }
        }
        // The decoding.
        const uint8_t* rsrc = raw + L::raw_buf(buf) * su::kBM * L::kRawStride + win.offset;
        for (int r = 0; r < su::kBM; ++r) {
          for (int blk = 0; blk < kv / K::kBlockVals; ++blk) {
            for (int u = 0; u < K::kUnits; ++u) {
              K::unit(rsrc + r * L::kRawStride + blk * K::kBlockBytes, u, a_tile + r * su::kTileStride + blk * K::kBlockVals);
            }
          }
          for (int j = 0; j < kv / K::kSub; ++j) {
            const int e = j * K::kSub;
            float mc;  // min_kernel's
            K::scale(rsrc + r * L::kRawStride + e / K::kBlockVals * K::kBlockBytes, e % K::kBlockVals / K::kSub,
                     &dw_s[j * su::kBM + r], &mc);
          }
        }
        // The warps.
        for (int warp = 0; warp < kWarps; ++warp) {
          const int wm = warp & 1, wn = warp >> 1;
          if (wn * su::kWN >= toks) continue;
          for (int kc = 0; kc < su::kStep / 32 && kc * 32 < kv; ++kc) {
            uint32_t af[su::kMTiles][32][4], bf[su::kNTiles][32][4];
            const uint8_t* addr[32];
            for (int mi = 0; mi < su::kMTiles; ++mi) {
              for (int l = 0; l < 32; ++l) {
                addr[l] = a_tile + (wm * su::kWM + su::a_ldm_row(l)) * su::kTileStride + su::a_ldm_k(l) +
                          mi * 16 * su::kTileStride + kc * 32;
              }
              ldmatrix_x4(addr, af[mi]);
            }
            for (int ni = 0; ni < su::kNTiles; ++ni) {
              for (int l = 0; l < 32; ++l) {
                addr[l] = b_tiles + buf * L::b_buf +
                          (su::b_ldm_plane(l) * su::kBN + su::kWN * wn + su::b_ldm_token(l)) * su::kTileStride +
                          su::b_ldm_k(l) + ni * 8 * su::kTileStride + kc * 32;
              }
              ldmatrix_x4(addr, bf[ni]);
            }
            for (int h = 0; h < (K::kSub == 32 ? 1 : 2); ++h) {
              const int j = K::kSub == 32 ? kc : 2 * kc + h;
              const int jb = j * K::kSub / 32;
              for (int mi = 0; mi < su::kMTiles; ++mi) {
                for (int ni = 0; ni < su::kNTiles; ++ni) {
                  int32_t dh[32][4], dl[32][4];
                  for (int l = 0; l < 32; ++l)
                    for (int c = 0; c < 4; ++c) dh[l][c] = dl[l][c] = static_cast<int32_t>(su::kMagicBits);
                  if (K::kSub == 32) {
                    uint32_t bh[32][2], bl[32][2];
                    for (int l = 0; l < 32; ++l) {
                      bh[l][0] = bf[ni][l][0], bh[l][1] = bf[ni][l][1];
                      bl[l][0] = bf[ni][l][2], bl[l][1] = bf[ni][l][3];
                    }
                    mma_k32(af[mi], bh, false, dh);
                    mma_k32(af[mi], bl, true, dl);
                  } else {
                    uint32_t a0[32], a1[32], bh[32], bl[32];
                    for (int l = 0; l < 32; ++l) {
                      a0[l] = af[mi][l][2 * h], a1[l] = af[mi][l][2 * h + 1];
                      bh[l] = bf[ni][l][h], bl[l] = bf[ni][l][2 + h];
                    }
                    mma_k16(a0, a1, bh, false, dh);
                    mma_k16(a0, a1, bl, true, dl);
                  }
                  for (int l = 0; l < 32; ++l) {
                    Lane& ln = lanes[warp * 32 + l];
                    for (int c = 0; c < 4; ++c) {
                      const int r = wm * su::kWM + mi * 16 + su::c_row(l, c);
                      const int tk = wn * su::kWN + ni * 8 + su::c_col(l, c);
                      const float p = su::combine_sums(dh[l][c], dl[l][c]);
                      const float coef =
                          su::mul_rn(dw_s[j * su::kBM + r], da_s[(buf * su::kBN + tk) * su::kCoefStride + jb]);
                      ln.acc[mi][ni][c][j & 1] = su::fma_rn(p, coef, ln.acc[mi][ni][c][j & 1]);
                    }
                  }
                }
              }
            }
          }
        }
      }
      // The stores.
      for (int warp = 0; warp < kWarps; ++warp) {
        const int wm = warp & 1, wn = warp >> 1;
        for (int l = 0; l < 32; ++l) {
          const Lane& ln = lanes[warp * 32 + l];
          for (int mi = 0; mi < su::kMTiles; ++mi)
            for (int ni = 0; ni < su::kNTiles; ++ni)
              for (int c = 0; c < 4; ++c) {
                const int r = wm * su::kWM + mi * 16 + su::c_row(l, c);
                const int tk = wn * su::kWN + ni * 8 + su::c_col(l, c);
                if (r >= rows || tk >= toks) continue;
                const int64_t at = (t0 + tk) * n_out + r0 + r;
                float v = su::add_rn(ln.acc[mi][ni][c][0], ln.acc[mi][ni][c][1]);
                if (K::kHasMin) v = su::add_rn(v, y[at]);
                y[at] = v;
                if (acc_out != nullptr) acc_out[at] = su::add_rn(acc_out[at], v);
              }
        }
      }
    }
  }
}

// Weights as the backend holds them: rows padded to 16 bytes, made by the reference quantizer
// from normals with a few outliers (or, with `large`, positive values near the block maximum so
// that sub-block sums reach past 2^24).
struct PaddedWeights {
  std::vector<uint8_t> packed;  // [n_out][row_bytes], the file's layout
  std::vector<uint8_t> padded;  // [n_out][row_stride] + slack
  size_t row_bytes = 0, row_stride = 0;
};
PaddedWeights make_padded(TensorType type, int64_t n_in, int64_t n_out, uint32_t seed, bool large = false) {
  PaddedWeights p;
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> uni(0.0f, 1.0f);
  p.row_bytes = row_size(type, n_in);
  p.row_stride = (p.row_bytes + 15) / 16 * 16;
  p.packed.resize(p.row_bytes * static_cast<size_t>(n_out));
  p.padded.assign(p.row_stride * static_cast<size_t>(n_out) + 64, 0);
  std::vector<float> row(static_cast<size_t>(n_in));
  for (int64_t r = 0; r < n_out; ++r) {
    const float scale = 0.02f * (0.5f + uni(rng));
    for (float& v : row) v = large ? 1.0f - 0.01f * uni(rng) : normal(rng) * scale * (uni(rng) < 0.01f ? 8.0f : 1.0f);
    quantize_row(type, row.data(), p.packed.data() + r * p.row_bytes, n_in);
    std::memcpy(p.padded.data() + r * p.row_stride, p.packed.data() + r * p.row_bytes, p.row_bytes);
  }
  return p;
}

// scalar_summed_kernel (the CPU's reference for contract S) over all rows.
std::vector<float> cpu_contract_s(TensorType type, const PaddedWeights& w, int64_t n_in, int64_t n_out,
                                  const std::vector<float>& x, int64_t n) {
  ThreadPool pool(1);
  cpu::ActivationBuffer act;
  act.prepare(type, x.data(), n, n_in, pool, cpu::Contract::kSummed);
  const cpu::WeightMatrix wm{type, n_in, n_out, w.packed.data(), w.row_bytes};
  std::vector<float> y(static_cast<size_t>(n * n_out), std::numeric_limits<float>::quiet_NaN());
  cpu::detail::scalar_summed_kernel(type)(wm, act, y.data(), n_out, 0, n_out);
  return y;
}

template <TensorType T>
void check_emulation(int64_t n_in, int64_t n_out, int64_t n, uint32_t seed, bool large = false) {
  const PaddedWeights w = make_padded(T, n_in, n_out, seed, large);
  std::vector<float> x = awkward_activations(n, n_in, seed + 1);
  if (large) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> uni(0.9f, 1.0f);
    for (float& v : x) v = uni(rng);  // every q near 32767: sums near 32 * 127 * 32767 for Q8_0
  }
  const HostPlanes planes = host_planes(x, n, n_in);
  std::vector<float> y(static_cast<size_t>(n * n_out), std::numeric_limits<float>::quiet_NaN());
  std::vector<float> acc0(y.size());
  std::mt19937 rng(seed + 2);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float& v : acc0) v = normal(rng);
  std::vector<float> acc = acc0;
  emulate_product<T>(w.padded.data(), w.row_stride, n_out, planes.p, y.data(), acc.data());
  const std::vector<float> want = cpu_contract_s(T, w, n_in, n_out, x, n);
  size_t finite = 0;
  for (float v : want) finite += std::isfinite(v) ? 1 : 0;
  EXPECT_GE(finite, want.size() * 3 / 5) << "most outputs must be numbers for the comparison to mean anything";
  EXPECT_TRUE(same_bits_or_nan(y.data(), want.data(), y.size()))
      << type_name(T) << " n_in " << n_in << " n_out " << n_out << " tokens " << n;
  std::vector<float> want_acc(acc0.size());
  for (size_t i = 0; i < acc0.size(); ++i) want_acc[i] = acc0[i] + want[i];
  EXPECT_TRUE(same_bits_or_nan(acc.data(), want_acc.data(), acc.size())) << type_name(T) << " acc";
}

template <TensorType T>
void check_emulation_shapes(uint32_t seed) {
  const bool blocks_of_32 = su::Kind<T>::kBlockVals == 32;
  for (int64_t n_in : {int64_t{256}, int64_t{768}, blocks_of_32 ? int64_t{800} : int64_t{512}}) {
    for (int64_t n_out : {int64_t{37}, int64_t{70}}) {
      for (int64_t n : {int64_t{4}, int64_t{9}, int64_t{17}, int64_t{67}}) {
        if (n_out == 70 && n == 67 && n_in > 256) continue;  // enough: keep the test a few seconds
        check_emulation<T>(n_in, n_out, n, seed++);
      }
    }
  }
}

TEST(CudaSummedHost, EmulatedKernelIsContractSQ4_0) { check_emulation_shapes<TensorType::Q4_0>(100); }
TEST(CudaSummedHost, EmulatedKernelIsContractSQ8_0) { check_emulation_shapes<TensorType::Q8_0>(200); }
TEST(CudaSummedHost, EmulatedKernelIsContractSQ4_K) { check_emulation_shapes<TensorType::Q4_K>(300); }
TEST(CudaSummedHost, EmulatedKernelIsContractSQ5_K) { check_emulation_shapes<TensorType::Q5_K>(400); }
TEST(CudaSummedHost, EmulatedKernelIsContractSQ6_K) { check_emulation_shapes<TensorType::Q6_K>(500); }

// Q8_0 is the one type whose sub-block sums pass 2^24, where float(P_s) rounds.
TEST(CudaSummedHost, EmulatedKernelRoundsLargeSumsAsTheCpu) {
  const PaddedWeights w = make_padded(TensorType::Q8_0, 256, 5, 9, /*large=*/true);
  int64_t max_p = 0;
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> uni(0.9f, 1.0f);
  std::vector<float> x(256 * 3);
  for (float& v : x) v = uni(rng);
  const HostPlanes planes = host_planes(x, 3, 256);
  for (int64_t r = 0; r < 5; ++r) {
    const auto* b = reinterpret_cast<const block_q8_0*>(w.packed.data() + r * w.row_bytes);
    int64_t p = 0;
    for (int k = 0; k < 32; ++k) p += int64_t{b->qs[k]} * (256 * planes.p.hi[k] + planes.p.lo[k]);
    max_p = std::max<int64_t>(max_p, p < 0 ? -p : p);
  }
  EXPECT_GT(max_p, int64_t{1} << 24);
  check_emulation<TensorType::Q8_0>(256, 5, 3, 9, /*large=*/true);
  check_emulation<TensorType::Q8_0>(2048, 70, 9, 10, /*large=*/true);
}

// ---------------------------------------------------------------------------------------------
// GPU

gguf::TensorInfo tensor_info(const PaddedWeights& w, TensorType type, int64_t n_in, int64_t n_out, const char* name) {
  gguf::TensorInfo t;
  t.name = name;
  t.type = type;
  t.n_dims = 2;
  t.ne[0] = n_in;
  t.ne[1] = n_out;
  t.nbytes = w.packed.size();
  t.data = w.packed.data();
  return t;
}

#if defined(PLUMB_HAVE_CUDA)
// The device preparation against quantize_token: q (from the high and low bytes), d_a, sx32 and
// sx16 of every block, the padding of each row zeroed.
TEST(CudaSummedDevice, PreparationGivesTheCpuBits) {
  PLUMB_REQUIRE_CUDA(gpu);  // a usable device (the backend itself is not used)
  for (int64_t n_in : {256, 800, 2048, 5632}) {
    for (int64_t n : {1, 5, 300}) {
      const std::vector<float> x = awkward_activations(n, n_in, static_cast<uint32_t>(n_in + n));
      float* dx = nullptr;
      void* act = nullptr;
      const size_t bytes = cuda::summed_act_bytes(n_in, n);
      ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&dx), x.size() * sizeof(float)), cudaSuccess);
      ASSERT_EQ(cudaMalloc(&act, bytes), cudaSuccess);
      ASSERT_EQ(cudaMemset(act, 0xA5, bytes), cudaSuccess);  // the padding must be written
      ASSERT_EQ(cudaMemcpy(dx, x.data(), x.size() * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
      ASSERT_EQ(cuda::summed_prepare(dx, n, n_in, act, nullptr), cudaSuccess);
      std::vector<uint8_t> host(bytes);
      ASSERT_EQ(cudaMemcpy(host.data(), act, bytes, cudaMemcpyDeviceToHost), cudaSuccess);
      cudaFree(dx);
      cudaFree(act);
      const su::ActPlanes p = su::act_planes(host.data(), n_in, n);
      for (int64_t t = 0; t < n; ++t) {
        const CpuToken c = cpu_token(x.data() + t * n_in, n_in);
        for (int64_t k = 0; k < n_in; ++k) {
          ASSERT_EQ(256 * p.hi[t * n_in + k] + p.lo[t * n_in + k], c.q()[k]) << n_in << " token " << t << " k " << k;
        }
        for (int64_t b = 0; b < p.ld; ++b) {
          if (b >= n_in / 32) {
            ASSERT_EQ(bits(p.d[t * p.ld + b]), 0u);
            ASSERT_EQ(bits(p.sx32[t * p.ld + b]), 0u);
            continue;
          }
          ASSERT_EQ(bits(p.d[t * p.ld + b]), bits(c.d()[b])) << n_in << " token " << t << " block " << b;
          ASSERT_TRUE(same_bits_or_nan(&p.sx32[t * p.ld + b], &c.sx32()[b], 1)) << n_in << " token " << t << " block " << b;
          ASSERT_TRUE(same_bits_or_nan(&p.sx16[2 * (t * p.ld + b)], &c.sx16()[2 * b], 2))
              << n_in << " token " << t << " block " << b;
        }
      }
    }
  }
}
#endif

const TensorType kCovered[] = {TensorType::Q4_0, TensorType::Q8_0, TensorType::Q4_K, TensorType::Q5_K,
                               TensorType::Q6_K};

class CudaSummed : public ::testing::TestWithParam<TensorType> {};

// The prompt product (every token under the prompt contract) on CUDA and on the CPU backend,
// bit for bit, at token counts across the tile size (64), row widths up to 5632 (and 800 for the
// 32-value types: a last step of 32 values), row counts that leave partial tiles, with NaN and
// Inf in some activation blocks (their tokens' outputs are NaN on both).
TEST_P(CudaSummed, PromptProductGivesTheCpuContractSBits) {
  PLUMB_REQUIRE_CUDA(gpu);
  auto cpu = make_backend("cpu", 4);
  ASSERT_TRUE(cpu.ok());
  const TensorType type = GetParam();
  std::vector<int64_t> widths = {256, 2048, 5632};
  if (type_traits(type).block_size == 32) widths.push_back(800);
  uint32_t seed = 1000;
  for (int64_t n_in : widths) {
    for (int64_t n_out : {int64_t{37}, int64_t{333}}) {
      if (n_out == 333 && n_in == 5632) continue;
      const PaddedWeights w = make_padded(type, n_in, n_out, seed++);
      const gguf::TensorInfo info = tensor_info(w, type, n_in, n_out, "test.summed");
      auto gm = gpu->bind_matrix(info);
      auto cm = (*cpu)->bind_matrix(info);
      ASSERT_TRUE(gm.ok()) << gm.status().message();
      ASSERT_TRUE(cm.ok());
      for (int64_t n : {4, 9, 17, 64, 300}) {
        const std::vector<float> x = awkward_activations(n, n_in, seed++);
        std::vector<float> cy(static_cast<size_t>(n * n_out));
        (*cpu)->matmul(**cm, x.data(), n, /*n_lane=*/0, cy.data());
        float* gx = put(*gpu, x);
        float* gy = put(*gpu, std::vector<float>(cy.size(), std::numeric_limits<float>::quiet_NaN()));
        gpu->matmul(**gm, gx, n, /*n_lane=*/0, gy);
        const std::vector<float> y = get(*gpu, gy, cy.size());
        EXPECT_TRUE(same_bits_or_nan(y.data(), cy.data(), y.size()))
            << type_name(type) << " n_in " << n_in << " n_out " << n_out << " tokens " << n;
        gpu->release(gx);
        gpu->release(gy);
      }
    }
  }
}

// Each token's result is its own: a product of 70 tokens gives, token by token, the bits of
// products of that token alone (batch invariance by construction); and several products of one
// input with a generation part (matvec) and a prompt part, through matmul_same_input and
// matmul_add, give the bits of single products (an uncovered type among them keeps its path).
TEST_P(CudaSummed, TokensAreIndependentAndFusedCallsGiveSingleBits) {
  PLUMB_REQUIRE_CUDA(gpu);
  const TensorType type = GetParam();
  const int64_t n_in = 768, n = 70;
  const int64_t rows[] = {37, 5, 11};
  const TensorType types[] = {type, TensorType::Q6_K, TensorType::Q5_0};  // Q5_0: not covered
  std::vector<PaddedWeights> ws;
  std::vector<std::unique_ptr<BoundMatrix>> ms;
  for (int i = 0; i < 3; ++i) {
    ws.push_back(make_padded(types[i], n_in, rows[i], 60 + static_cast<uint32_t>(i)));
    auto m = gpu->bind_matrix(tensor_info(ws.back(), types[i], n_in, rows[i], "test.fused"));
    ASSERT_TRUE(m.ok()) << m.status().message();
    ms.push_back(std::move(*m));
  }
  const std::vector<float> x = awkward_activations(n, n_in, 61);
  float* gx = put(*gpu, x);
  // All tokens at once vs one at a time.
  float* all = put(*gpu, std::vector<float>(static_cast<size_t>(n * rows[0]), std::numeric_limits<float>::quiet_NaN()));
  gpu->matmul(*ms[0], gx, n, 0, all);
  const std::vector<float> y_all = get(*gpu, all, static_cast<size_t>(n * rows[0]));
  for (int64_t t = 0; t < n; ++t) {
    float* one = put(*gpu, std::vector<float>(static_cast<size_t>(rows[0]), std::numeric_limits<float>::quiet_NaN()));
    gpu->matmul(*ms[0], gx + t * n_in, 1, 0, one);
    const std::vector<float> y_one = get(*gpu, one, static_cast<size_t>(rows[0]));
    ASSERT_TRUE(same_bits_or_nan(y_one.data(), y_all.data() + t * rows[0], static_cast<size_t>(rows[0])))
        << type_name(type) << " token " << t;
    gpu->release(one);
  }
  // matmul_same_input and matmul_add with tokens [0, 5) under the generation contract.
  const int64_t n_lane = 5;
  std::vector<float*> fused, single;
  std::vector<Backend::Product> products;
  for (int i = 0; i < 3; ++i) {
    const std::vector<float> nan(static_cast<size_t>(n * rows[i]), std::numeric_limits<float>::quiet_NaN());
    fused.push_back(put(*gpu, nan));
    single.push_back(put(*gpu, nan));
    products.push_back({ms[static_cast<size_t>(i)].get(), fused.back()});
    gpu->matmul(*ms[static_cast<size_t>(i)], gx, n, n_lane, single.back());
  }
  gpu->matmul_same_input(products, gx, n, n_lane);
  for (int i = 0; i < 3; ++i) {
    const size_t len = static_cast<size_t>(n * rows[i]);
    const std::vector<float> a = get(*gpu, fused[static_cast<size_t>(i)], len), b = get(*gpu, single[static_cast<size_t>(i)], len);
    EXPECT_TRUE(same_bits_or_nan(a.data(), b.data(), len)) << type_name(type) << " product " << i;
  }
  std::mt19937 rng(62);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> acc0(static_cast<size_t>(n * rows[0]));
  for (float& v : acc0) v = normal(rng);
  float* acc = put(*gpu, acc0);
  float* y = put(*gpu, std::vector<float>(acc0.size(), std::numeric_limits<float>::quiet_NaN()));
  gpu->matmul_add(*ms[0], gx, n, n_lane, y, acc);
  const std::vector<float> want_y = get(*gpu, single[0], acc0.size());
  std::vector<float> want_acc(acc0.size());
  for (size_t i = 0; i < acc0.size(); ++i) want_acc[i] = acc0[i] + want_y[i];
  const std::vector<float> got_y = get(*gpu, y, acc0.size()), got_acc = get(*gpu, acc, acc0.size());
  EXPECT_TRUE(same_bits_or_nan(got_y.data(), want_y.data(), want_y.size())) << type_name(type) << " matmul_add y";
  EXPECT_TRUE(same_bits_or_nan(got_acc.data(), want_acc.data(), want_acc.size())) << type_name(type) << " matmul_add acc";
}

INSTANTIATE_TEST_SUITE_P(Types, CudaSummed, ::testing::ValuesIn(kCovered),
                         [](const auto& info) { return std::string(type_name(info.param)); });

// The prompt contract is per token while every bound matrix is of a covered type.
TEST(CudaSummedBackend, PromptContractPerTokenFollowsTheBoundTypes) {
  PLUMB_REQUIRE_CUDA(gpu);
  const PaddedWeights a = make_padded(TensorType::Q4_K, 256, 4, 1);
  ASSERT_TRUE(gpu->bind_matrix(tensor_info(a, TensorType::Q4_K, 256, 4, "a")).ok());
  EXPECT_TRUE(gpu->prompt_contract_per_token());
  const PaddedWeights b = make_padded(TensorType::F16, 256, 4, 2);
  ASSERT_TRUE(gpu->bind_matrix(tensor_info(b, TensorType::F16, 256, 4, "b")).ok());
  EXPECT_FALSE(gpu->prompt_contract_per_token());
}

}  // namespace
}  // namespace plumb::test
