// Device dequantization of one group of 32 consecutive values of a weight row, for every type
// the CUDA backend reads. Each is the scalar reference of src/quant (ref_legacy.cpp,
// ref_kquants.cpp, ref_iq4.cpp, half.cpp) operation for operation: built with -fmad=false, so
// products and sums are rounded as written and the values are the reference's bits.
#pragma once

#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "quant/blocks.h"
#include "quant/types.h"

namespace plumb::cuda {

__device__ __forceinline__ float f16(uint16_t h) { return __half2float(__ushort_as_half(h)); }
__device__ __forceinline__ float bf16(uint16_t h) { return __uint_as_float(static_cast<uint32_t>(h) << 16); }

__constant__ const int8_t kIQ4NLDevice[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                              1,    13,   25,  38,  53,  69,  89,  113};

// Block geometry of a type: values per block and the struct.
template <TensorType T> struct Block;
template <> struct Block<TensorType::F32> { using type = float; static constexpr int values = 1; };
template <> struct Block<TensorType::F16> { using type = uint16_t; static constexpr int values = 1; };
template <> struct Block<TensorType::BF16> { using type = uint16_t; static constexpr int values = 1; };
template <> struct Block<TensorType::Q4_0> { using type = block_q4_0; static constexpr int values = QK4_0; };
template <> struct Block<TensorType::Q4_1> { using type = block_q4_1; static constexpr int values = QK4_1; };
template <> struct Block<TensorType::Q5_0> { using type = block_q5_0; static constexpr int values = QK5_0; };
template <> struct Block<TensorType::Q5_1> { using type = block_q5_1; static constexpr int values = QK5_1; };
template <> struct Block<TensorType::Q8_0> { using type = block_q8_0; static constexpr int values = QK8_0; };
template <> struct Block<TensorType::Q2_K> { using type = block_q2_K; static constexpr int values = QK_K; };
template <> struct Block<TensorType::Q3_K> { using type = block_q3_K; static constexpr int values = QK_K; };
template <> struct Block<TensorType::Q4_K> { using type = block_q4_K; static constexpr int values = QK_K; };
template <> struct Block<TensorType::Q5_K> { using type = block_q5_K; static constexpr int values = QK_K; };
template <> struct Block<TensorType::Q6_K> { using type = block_q6_K; static constexpr int values = QK_K; };
template <> struct Block<TensorType::IQ4_NL> { using type = block_iq4_nl; static constexpr int values = QK4_NL; };
template <> struct Block<TensorType::IQ4_XS> { using type = block_iq4_xs; static constexpr int values = QK_K; };

__device__ __forceinline__ void scale_min_k4(int j, const uint8_t* q, int& sc, int& mn) {
  if (j < 4) {
    sc = q[j] & 63;
    mn = q[j + 4] & 63;
  } else {
    sc = (q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4);
    mn = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// w[0..32) = values 32 g .. 32 g + 31 of a row.
template <TensorType T>
__device__ __forceinline__ void dequant_group(const uint8_t* row, int64_t g, float* w) {
  using B = typename Block<T>::type;
  constexpr int kGroups = Block<T>::values >= 32 ? Block<T>::values / 32 : 1;
  if constexpr (T == TensorType::F32) {
    const float4* p = reinterpret_cast<const float4*>(row) + g * 8;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const float4 v = p[j];
      w[4 * j] = v.x, w[4 * j + 1] = v.y, w[4 * j + 2] = v.z, w[4 * j + 3] = v.w;
    }
  } else if constexpr (T == TensorType::F16 || T == TensorType::BF16) {
    const uint4* p = reinterpret_cast<const uint4*>(row) + g * 4;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const uint4 v = p[j];
      const uint32_t u[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        const uint16_t lo = static_cast<uint16_t>(u[k] & 0xffff), hi = static_cast<uint16_t>(u[k] >> 16);
        w[8 * j + 2 * k] = T == TensorType::F16 ? f16(lo) : bf16(lo);
        w[8 * j + 2 * k + 1] = T == TensorType::F16 ? f16(hi) : bf16(hi);
      }
    }
  } else {
    const B& b = reinterpret_cast<const B*>(row)[g / kGroups];
    const int s = static_cast<int>(g % kGroups);  // 32-value group inside a 256-value block
    if constexpr (T == TensorType::Q4_0) {
      const float d = f16(b.d);
#pragma unroll
      for (int j = 0; j < 16; ++j) {
        w[j] = static_cast<float>((b.qs[j] & 0x0f) - 8) * d;
        w[j + 16] = static_cast<float>((b.qs[j] >> 4) - 8) * d;
      }
    } else if constexpr (T == TensorType::Q4_1) {
      const float d = f16(b.d), m = f16(b.m);
#pragma unroll
      for (int j = 0; j < 16; ++j) {
        w[j] = static_cast<float>(b.qs[j] & 0x0f) * d + m;
        w[j + 16] = static_cast<float>(b.qs[j] >> 4) * d + m;
      }
    } else if constexpr (T == TensorType::Q5_0 || T == TensorType::Q5_1) {
      const float d = f16(b.d);
      const uint32_t qh = b.qh[0] | (b.qh[1] << 8) | (b.qh[2] << 16) | (static_cast<uint32_t>(b.qh[3]) << 24);
#pragma unroll
      for (int j = 0; j < 16; ++j) {
        const int q0 = (b.qs[j] & 0x0f) | static_cast<int>(((qh >> j) & 1) << 4);
        const int q1 = (b.qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1) << 4);
        if constexpr (T == TensorType::Q5_0) {
          w[j] = static_cast<float>(q0 - 16) * d;
          w[j + 16] = static_cast<float>(q1 - 16) * d;
        } else {
          const float m = f16(b.m);
          w[j] = static_cast<float>(q0) * d + m;
          w[j + 16] = static_cast<float>(q1) * d + m;
        }
      }
    } else if constexpr (T == TensorType::Q8_0) {
      const float d = f16(b.d);
#pragma unroll
      for (int j = 0; j < 32; ++j) w[j] = static_cast<float>(b.qs[j]) * d;
    } else if constexpr (T == TensorType::Q2_K) {
      const float d = f16(b.d), dmin = f16(b.dmin);
      const int h = s / 4, j = s % 4;  // element e = 32 s + l: h = e / 128, j = (e / 32) % 4
#pragma unroll
      for (int l = 0; l < 32; ++l) {
        const uint8_t sc = b.scales[(32 * s + l) / 16];
        const float dl = d * static_cast<float>(sc & 0xf);
        const float ml = dmin * static_cast<float>(sc >> 4);
        const int q = (b.qs[32 * h + l] >> (2 * j)) & 3;
        w[l] = dl * static_cast<float>(q) - ml;
      }
    } else if constexpr (T == TensorType::Q3_K) {
      const float d_all = f16(b.d);
      const int h = s / 4, j = s % 4;
#pragma unroll
      for (int l = 0; l < 32; ++l) {
        const int sj = (32 * s + l) / 16;
        const int low4 = sj < 8 ? (b.scales[sj] & 0xf) : (b.scales[sj - 8] >> 4);
        const int high2 = (b.scales[8 + sj % 4] >> (2 * (sj / 4))) & 3;
        const float dl = d_all * static_cast<float>((low4 | (high2 << 4)) - 32);
        const int low = (b.qs[32 * h + l] >> (2 * j)) & 3;
        const bool high = (b.hmask[l] >> (4 * h + j)) & 1;
        w[l] = dl * static_cast<float>(low - (high ? 0 : 4));
      }
    } else if constexpr (T == TensorType::Q4_K || T == TensorType::Q5_K) {
      const float d = f16(b.d), dmin = f16(b.dmin);
      int sc, mn;
      scale_min_k4(s, b.scales, sc, mn);
      const float dl = d * static_cast<float>(sc);
      const float ml = dmin * static_cast<float>(mn);
      const uint8_t* q = b.qs + 32 * (s / 2);
      const int shift = 4 * (s % 2);
#pragma unroll
      for (int l = 0; l < 32; ++l) {
        int v = (q[l] >> shift) & 0xf;
        if constexpr (T == TensorType::Q5_K) v |= ((b.qh[l] >> s) & 1) << 4;
        w[l] = dl * static_cast<float>(v) - ml;
      }
    } else if constexpr (T == TensorType::Q6_K) {
      const float d = f16(b.d);
      const int h = s / 4, c = s % 4;
#pragma unroll
      for (int l = 0; l < 32; ++l) {
        const int low = (b.ql[64 * h + 32 * (c % 2) + l] >> (4 * (c / 2))) & 0xf;
        const int high = (b.qh[32 * h + l] >> (2 * c)) & 3;
        const int q = (low | (high << 4)) - 32;
        w[l] = d * static_cast<float>(b.scales[(32 * s + l) / 16]) * static_cast<float>(q);
      }
    } else if constexpr (T == TensorType::IQ4_NL) {
      const float d = f16(b.d);
#pragma unroll
      for (int j = 0; j < 16; ++j) {
        w[j] = d * static_cast<float>(kIQ4NLDevice[b.qs[j] & 0xf]);
        w[j + 16] = d * static_cast<float>(kIQ4NLDevice[b.qs[j] >> 4]);
      }
    } else if constexpr (T == TensorType::IQ4_XS) {
      const float d = f16(b.d);
      const int ls = ((b.scales_l[s / 2] >> (4 * (s % 2))) & 0xf) | (((b.scales_h >> (2 * s)) & 3) << 4);
      const float dl = d * static_cast<float>(ls - 32);
      const uint8_t* qs = b.qs + 16 * s;
#pragma unroll
      for (int j = 0; j < 16; ++j) {
        w[j] = dl * static_cast<float>(kIQ4NLDevice[qs[j] & 0xf]);
        w[j + 16] = dl * static_cast<float>(kIQ4NLDevice[qs[j] >> 4]);
      }
    }
  }
}

// Calls f(std::integral_constant<TensorType, T>{}) with T equal to `type`; false for a type
// without kernels. (A generic lambda reads the type as decltype(tag)::value.)
template <typename F>
bool dispatch_type(TensorType type, F&& f) {
  switch (type) {
#define PLUMB_CUDA_TYPE(T) \
  case TensorType::T: f(std::integral_constant<TensorType, TensorType::T>{}); return true;
    PLUMB_CUDA_TYPE(F32) PLUMB_CUDA_TYPE(F16) PLUMB_CUDA_TYPE(BF16)
    PLUMB_CUDA_TYPE(Q4_0) PLUMB_CUDA_TYPE(Q4_1) PLUMB_CUDA_TYPE(Q5_0) PLUMB_CUDA_TYPE(Q5_1) PLUMB_CUDA_TYPE(Q8_0)
    PLUMB_CUDA_TYPE(Q2_K) PLUMB_CUDA_TYPE(Q3_K) PLUMB_CUDA_TYPE(Q4_K) PLUMB_CUDA_TYPE(Q5_K) PLUMB_CUDA_TYPE(Q6_K)
    PLUMB_CUDA_TYPE(IQ4_NL) PLUMB_CUDA_TYPE(IQ4_XS)
#undef PLUMB_CUDA_TYPE
    default: return false;
  }
}

}  // namespace plumb::cuda
