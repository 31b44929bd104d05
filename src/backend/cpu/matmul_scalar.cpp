// The portable reference kernels: the arithmetic contract of matmul_internal.h in plain C++.
// Every fast path is tested against these bit for bit.
#include <cmath>
#include <cstring>
#include <vector>

#include "backend/cpu/matmul_internal.h"
#include "backend/cpu/weight_unpack.h"
#include "quant/ref.h"

namespace plumb::cpu::detail {
namespace {

// The min term of one output: hsum8 of macc[s % 8] = fma(mc[s], sx[s], macc[s % 8]).
template <int kSub>
float min_term(const float* mcs, const ActRow& a, int64_t n_sub) {
  const float* sx = kSub == 32 ? a.sx32 : a.sx16;
  float macc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int64_t s = 0; s < n_sub; ++s) macc[s % 8] = std::fma(mcs[s], sx[s], macc[s % 8]);
  return hsum8(macc);
}

// Contract S (one exact integer sum per sub-block, a float per accumulator set) for activations
// prepared for it, or always with kAlwaysSummed; otherwise the lane contract (8 lane partials per
// sub-block, 8 floats per set).
template <class Tr, bool kAlwaysSummed>
void scalar_quant_rows(const WeightMatrix& w, const ActivationBuffer& x, float* y, int64_t ldy, int64_t r0,
                       int64_t r1) {
  constexpr int kSubs = Tr::kBlock / Tr::kSub;
  const int64_t n_tokens = x.n_tokens();
  const bool summed = kAlwaysSummed || x.summed_for(w.type);
  const int kLanes = summed ? 1 : 8;
  const ActLayout lay = ActLayout::for_n_in(w.n_in);
  const int64_t n_blocks = w.n_in / Tr::kBlock;
  const int64_t n_sub = w.n_in / Tr::kSub;
  std::vector<ActRow> acts(static_cast<size_t>(n_tokens));
  for (int64_t t = 0; t < n_tokens; ++t) acts[t] = act_row(x, lay, t);
  std::vector<float> acc(static_cast<size_t>(n_tokens) * 2 * kLanes);  // [token][set s % 2][lane]
  std::vector<float> mcs(Tr::kHasMin ? static_cast<size_t>(n_sub) : 0);
  alignas(32) int16_t wq[Tr::kBlock];
  float dw[kSubs];
  float mc[kSubs];

  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = w.data + static_cast<size_t>(r) * w.row_bytes;
    std::fill(acc.begin(), acc.end(), 0.0f);
    for (int64_t blk = 0; blk < n_blocks; ++blk) {
      Tr::unpack(row + static_cast<size_t>(blk) * sizeof(typename Tr::Block), wq, dw, mc);
      if constexpr (Tr::kHasMin) std::memcpy(&mcs[static_cast<size_t>(blk) * kSubs], mc, sizeof(mc));
      for (int64_t t = 0; t < n_tokens; ++t) {
        const ActRow& a = acts[t];
        for (int s = 0; s < kSubs; ++s) {
          const int64_t e0 = blk * Tr::kBlock + static_cast<int64_t>(s) * Tr::kSub;
          float* at = &acc[(static_cast<size_t>(t) * 2 + (blk * kSubs + s) % 2) * kLanes];
          const float coef = dw[s] * a.d[e0 / kActBlock];
          const int16_t* ws = wq + s * Tr::kSub;
          const int16_t* as = a.q + e0;
          if (summed) {
            int32_t p = 0;
            for (int k = 0; k < Tr::kSub; ++k) p += int32_t{ws[k]} * as[k];
            at[0] = std::fma(static_cast<float>(p), coef, at[0]);
            continue;
          }
          for (int l = 0; l < 8; ++l) {
            int32_t p = int32_t{ws[2 * l]} * as[2 * l] + int32_t{ws[2 * l + 1]} * as[2 * l + 1];
            if constexpr (Tr::kSub == 32) {
              p += int32_t{ws[16 + 2 * l]} * as[16 + 2 * l] + int32_t{ws[17 + 2 * l]} * as[17 + 2 * l];
            }
            at[l] = std::fma(static_cast<float>(p), coef, at[l]);
          }
        }
      }
    }
    for (int64_t t = 0; t < n_tokens; ++t) {
      const float* at = &acc[static_cast<size_t>(t) * 2 * kLanes];
      float out;
      if (summed) {
        out = at[0] + at[1];
      } else {
        float lanes[8];
        for (int l = 0; l < 8; ++l) lanes[l] = at[l] + at[8 + l];
        out = hsum8(lanes);
      }
      if constexpr (Tr::kHasMin) out += min_term<Tr::kSub>(mcs.data(), acts[t], n_sub);
      y[t * ldy + r] = out;
    }
  }
}

template <class Load>
void scalar_float_rows(const WeightMatrix& w, const ActivationBuffer& x, float* y, int64_t ldy, int64_t r0,
                       int64_t r1) {
  const int64_t n_in = w.n_in;
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = w.data + static_cast<size_t>(r) * w.row_bytes;
    for (int64_t t = 0; t < x.n_tokens(); ++t) {
      const float* xt = x.f32() + t * n_in;
      float acc[16] = {};
      for (int64_t k = 0; k < n_in; ++k) acc[k % 16] = std::fma(Load::at(row, k), xt[k], acc[k % 16]);
      float lanes[8];
      for (int l = 0; l < 8; ++l) lanes[l] = acc[l] + acc[8 + l];
      y[t * ldy + r] = hsum8(lanes);
    }
  }
}

struct LoadF32 {
  static float at(const uint8_t* row, int64_t k) {
    float v;
    std::memcpy(&v, row + 4 * k, 4);
    return v;
  }
};
struct LoadF16 {
  static float at(const uint8_t* row, int64_t k) {
    uint16_t h;
    std::memcpy(&h, row + 2 * k, 2);
    return fp16_to_fp32(h);
  }
};
struct LoadBF16 {
  static float at(const uint8_t* row, int64_t k) {
    uint16_t h;
    std::memcpy(&h, row + 2 * k, 2);
    return bf16_to_fp32(h);
  }
};

template <class Tr>
void effective_row(const uint8_t* row, int64_t n_in, float* eff) {
  constexpr int kSubs = Tr::kBlock / Tr::kSub;
  alignas(32) int16_t wq[Tr::kBlock];
  float dw[kSubs], mc[kSubs];
  for (int64_t blk = 0; blk < n_in / Tr::kBlock; ++blk) {
    Tr::unpack(row + static_cast<size_t>(blk) * sizeof(typename Tr::Block), wq, dw, mc);
    for (int k = 0; k < Tr::kBlock; ++k) eff[blk * Tr::kBlock + k] = dw[k / Tr::kSub] * wq[k];
  }
}

template <bool kAlwaysSummed>
RowsKernel quant_kernel(TensorType type) {
  switch (type) {
    case TensorType::Q4_0: return scalar_quant_rows<UnpackQ4_0, kAlwaysSummed>;
    case TensorType::Q4_1: return scalar_quant_rows<UnpackQ4_1, kAlwaysSummed>;
    case TensorType::Q5_0: return scalar_quant_rows<UnpackQ5_0, kAlwaysSummed>;
    case TensorType::Q5_1: return scalar_quant_rows<UnpackQ5_1, kAlwaysSummed>;
    case TensorType::Q8_0: return scalar_quant_rows<UnpackQ8_0, kAlwaysSummed>;
    case TensorType::Q2_K: return scalar_quant_rows<UnpackQ2_K, kAlwaysSummed>;
    case TensorType::Q3_K: return scalar_quant_rows<UnpackQ3_K, kAlwaysSummed>;
    case TensorType::Q4_K: return scalar_quant_rows<UnpackQ4_K, kAlwaysSummed>;
    case TensorType::Q5_K: return scalar_quant_rows<UnpackQ5_K, kAlwaysSummed>;
    case TensorType::Q6_K: return scalar_quant_rows<UnpackQ6_K, kAlwaysSummed>;
    case TensorType::Q8_K: return scalar_quant_rows<UnpackQ8_K, kAlwaysSummed>;
    case TensorType::IQ4_NL: return scalar_quant_rows<UnpackIQ4_NL, kAlwaysSummed>;
    case TensorType::IQ4_XS: return scalar_quant_rows<UnpackIQ4_XS, kAlwaysSummed>;
    default: return nullptr;
  }
}
}  // namespace

RowsKernel scalar_summed_kernel(TensorType type) { return quant_kernel<true>(type); }

bool effective_weights(TensorType type, const uint8_t* row, int64_t n_in, float* eff) {
  switch (type) {
    case TensorType::Q4_0: effective_row<UnpackQ4_0>(row, n_in, eff); return true;
    case TensorType::Q4_1: effective_row<UnpackQ4_1>(row, n_in, eff); return true;
    case TensorType::Q5_0: effective_row<UnpackQ5_0>(row, n_in, eff); return true;
    case TensorType::Q5_1: effective_row<UnpackQ5_1>(row, n_in, eff); return true;
    case TensorType::Q8_0: effective_row<UnpackQ8_0>(row, n_in, eff); return true;
    case TensorType::Q2_K: effective_row<UnpackQ2_K>(row, n_in, eff); return true;
    case TensorType::Q3_K: effective_row<UnpackQ3_K>(row, n_in, eff); return true;
    case TensorType::Q4_K: effective_row<UnpackQ4_K>(row, n_in, eff); return true;
    case TensorType::Q5_K: effective_row<UnpackQ5_K>(row, n_in, eff); return true;
    case TensorType::Q6_K: effective_row<UnpackQ6_K>(row, n_in, eff); return true;
    case TensorType::Q8_K: effective_row<UnpackQ8_K>(row, n_in, eff); return true;
    case TensorType::IQ4_NL: effective_row<UnpackIQ4_NL>(row, n_in, eff); return true;
    case TensorType::IQ4_XS: effective_row<UnpackIQ4_XS>(row, n_in, eff); return true;
    default: return false;
  }
}

RowsKernel scalar_kernel(TensorType type) {
  switch (type) {
    case TensorType::F32: return scalar_float_rows<LoadF32>;
    case TensorType::F16: return scalar_float_rows<LoadF16>;
    case TensorType::BF16: return scalar_float_rows<LoadBF16>;
    default: return quant_kernel<false>(type);
  }
}

}  // namespace plumb::cpu::detail
