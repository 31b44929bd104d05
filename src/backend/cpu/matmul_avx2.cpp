// AVX2/FMA/F16C kernels (this file is compiled with -mavx2 -mfma -mf16c; matmul.cpp picks it at
// run time). They follow the contract of matmul_internal.h to the bit: integer lane partials from
// _mm256_madd_epi16 (exact), the same f32 multiply and fma per lane as the scalar kernels, and
// the same reduction tree.
//
// Quantized weights: each row is first unpacked into an L1-resident int16 buffer (plus its
// per-sub-block multipliers), then dotted with the tokens in tiles of up to 4, so a weight row
// is read from memory and unpacked once however many tokens there are.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "backend/cpu/matmul_internal.h"
#include "backend/cpu/weight_unpack.h"

namespace plumb::cpu::detail {
namespace {

// hsum8 of matmul_internal.h on a vector: (lo + hi), then pairs (0+2, 1+3), then 0+1.
inline float hsum8_ps(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}

inline float f16(const void* p) { return _cvtsh_ss(load_u16(p)); }

// ---- SIMD unpackers of one block into int16 weights (same values as weight_unpack.h) ----

// 16 bytes of nibbles (byte j: element j low, element j+16 high) -> 32 int16 minus `offset`.
inline void unpack_nibbles16(const uint8_t* qs, int16_t* w, int offset) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i m4 = _mm_set1_epi8(0x0F);
  const __m128i off = _mm_set1_epi8(static_cast<char>(offset));
  const __m128i lo = _mm_sub_epi8(_mm_and_si128(v, m4), off);
  const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(v, 4), m4), off);
  _mm256_store_si256(reinterpret_cast<__m256i*>(w), _mm256_cvtepi8_epi16(lo));
  _mm256_store_si256(reinterpret_cast<__m256i*>(w + 16), _mm256_cvtepi8_epi16(hi));
}

// 32 signed bytes -> 32 int16.
inline void widen32(__m256i b, int16_t* w) {
  _mm256_store_si256(reinterpret_cast<__m256i*>(w), _mm256_cvtepi8_epi16(_mm256_castsi256_si128(b)));
  _mm256_store_si256(reinterpret_cast<__m256i*>(w + 16), _mm256_cvtepi8_epi16(_mm256_extracti128_si256(b, 1)));
}

struct SimdQ4_0 : UnpackQ4_0 {
  static void unpack(const uint8_t* p, int16_t* w, float* dw, float*) {
    const auto* b = reinterpret_cast<const Block*>(p);
    unpack_nibbles16(b->qs, w, 8);
    dw[0] = f16(&b->d);
  }
};

struct SimdQ4_1 : UnpackQ4_1 {
  static void unpack(const uint8_t* p, int16_t* w, float* dw, float* mc) {
    const auto* b = reinterpret_cast<const Block*>(p);
    unpack_nibbles16(b->qs, w, 8);
    dw[0] = f16(&b->d);
    mc[0] = f16(&b->m) + 8.0f * dw[0];
  }
};

struct SimdQ8_0 : UnpackQ8_0 {
  static void unpack(const uint8_t* p, int16_t* w, float* dw, float*) {
    const auto* b = reinterpret_cast<const Block*>(p);
    widen32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b->qs)), w);
    dw[0] = f16(&b->d);
  }
};

struct SimdIQ4_NL : UnpackIQ4_NL {
  static void unpack(const uint8_t* p, int16_t* w, float* dw, float*) {
    const auto* b = reinterpret_cast<const Block*>(p);
    const __m128i table = _mm_loadu_si128(reinterpret_cast<const __m128i*>(kIQ4NLValues));
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b->qs));
    const __m128i m4 = _mm_set1_epi8(0x0F);
    const __m128i lo = _mm_shuffle_epi8(table, _mm_and_si128(v, m4));
    const __m128i hi = _mm_shuffle_epi8(table, _mm_and_si128(_mm_srli_epi16(v, 4), m4));
    _mm256_store_si256(reinterpret_cast<__m256i*>(w), _mm256_cvtepi8_epi16(lo));
    _mm256_store_si256(reinterpret_cast<__m256i*>(w + 16), _mm256_cvtepi8_epi16(hi));
    dw[0] = f16(&b->d);
  }
};

struct SimdQ4_K : UnpackQ4_K {
  static void unpack(const uint8_t* p, int16_t* w, float* dw, float* mc) {
    const auto* b = reinterpret_cast<const Block*>(p);
    const float d = f16(&b->d);
    const float dmin = f16(&b->dmin);
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      k4_scale_min(j, b->scales, &sc, &m);
      dw[j] = d * static_cast<float>(sc);
      mc[j] = -(dmin * static_cast<float>(m)) + 8.0f * dw[j];
    }
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i off = _mm256_set1_epi8(8);
    for (int i = 0; i < 4; ++i) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b->qs + 32 * i));
      widen32(_mm256_sub_epi8(_mm256_and_si256(v, m4), off), w + 64 * i);
      widen32(_mm256_sub_epi8(_mm256_and_si256(_mm256_srli_epi16(v, 4), m4), off), w + 64 * i + 32);
    }
  }
};

struct SimdQ6_K : UnpackQ6_K {
  static void unpack(const uint8_t* p, int16_t* w, float* dw, float*) {
    const auto* b = reinterpret_cast<const Block*>(p);
    const float d = f16(&b->d);
    for (int s = 0; s < 16; ++s) dw[s] = d * static_cast<float>(b->scales[s]);
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i m2 = _mm256_set1_epi8(0x03);
    const __m256i off = _mm256_set1_epi8(32);
    for (int n = 0; n < 2; ++n) {
      const __m256i ql0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b->ql + 64 * n));
      const __m256i ql1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b->ql + 64 * n + 32));
      const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b->qh + 32 * n));
      const __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(qh, m2), 4);
      const __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m2), 4);
      const __m256i h2 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m2), 4);
      const __m256i h3 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m2), 4);
      int16_t* o = w + 128 * n;
      widen32(_mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(ql0, m4), h0), off), o);
      widen32(_mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(ql1, m4), h1), off), o + 32);
      widen32(_mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4), h2), off), o + 64);
      widen32(_mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4), h3), off), o + 96);
    }
  }
};

// ---- the generic dot of an unpacked row with up to 4 tokens ----

// Per-thread scratch for one unpacked row.
struct RowScratch {
  std::vector<int16_t, std::allocator<int16_t>> w;
  std::vector<float> dw, mc;
  int16_t* w_aligned = nullptr;
  void reserve(int64_t n_in, int64_t n_sub) {
    if (static_cast<int64_t>(w.size()) < n_in + 32) w.assign(static_cast<size_t>(n_in + 32), 0);
    const uintptr_t a = (reinterpret_cast<uintptr_t>(w.data()) + 63) & ~uintptr_t{63};
    w_aligned = reinterpret_cast<int16_t*>(a);
    if (static_cast<int64_t>(dw.size()) < n_sub) {
      dw.assign(static_cast<size_t>(n_sub), 0.0f);
      mc.assign(static_cast<size_t>(n_sub), 0.0f);
    }
  }
};

template <int kSub, int kT>
inline void dot_tile(const int16_t* w, const float* dw, int64_t n_sub, const ActRow* a, __m256 acc[kT]) {
  for (int t = 0; t < kT; ++t) acc[t] = _mm256_setzero_ps();
  for (int64_t s = 0; s < n_sub; ++s) {
    const int64_t e0 = s * kSub;
    const __m256 dws = _mm256_broadcast_ss(dw + s);
    const __m256i w0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(w + e0));
    if constexpr (kSub == 32) {
      const __m256i w1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(w + e0 + 16));
      for (int t = 0; t < kT; ++t) {
        const __m256i p0 = _mm256_madd_epi16(w0, _mm256_load_si256(reinterpret_cast<const __m256i*>(a[t].q + e0)));
        const __m256i p1 =
            _mm256_madd_epi16(w1, _mm256_load_si256(reinterpret_cast<const __m256i*>(a[t].q + e0 + 16)));
        const __m256 coef = _mm256_mul_ps(dws, _mm256_broadcast_ss(a[t].d + s));
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(p0, p1)), coef, acc[t]);
      }
    } else {
      for (int t = 0; t < kT; ++t) {
        const __m256i p0 = _mm256_madd_epi16(w0, _mm256_load_si256(reinterpret_cast<const __m256i*>(a[t].q + e0)));
        const __m256 coef = _mm256_mul_ps(dws, _mm256_broadcast_ss(a[t].d + s / 2));
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), coef, acc[t]);
      }
    }
  }
}

// macc[s % 8] = fma(mc[s], sx[s], macc[s % 8]) over s, as a vector plus a scalar tail.
inline float min_term(const float* mc, const float* sx, int64_t n_sub) {
  __m256 macc = _mm256_setzero_ps();
  int64_t s = 0;
  for (; s + 8 <= n_sub; s += 8) macc = _mm256_fmadd_ps(_mm256_loadu_ps(mc + s), _mm256_loadu_ps(sx + s), macc);
  if (s < n_sub) {
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, macc);
    for (int l = 0; s < n_sub; ++s, ++l) lanes[l] = std::fma(mc[s], sx[s], lanes[l]);
    macc = _mm256_load_ps(lanes);
  }
  return hsum8_ps(macc);
}

template <class U>
void avx2_quant_rows(const WeightMatrix& w, const ActivationBuffer& x, float* y, int64_t ldy, int64_t r0,
                     int64_t r1) {
  constexpr int kSubs = U::kBlock / U::kSub;
  constexpr size_t kBlockBytes = sizeof(typename U::Block);
  const ActLayout lay = ActLayout::for_n_in(w.n_in);
  const int64_t n_tokens = x.n_tokens();
  const int64_t n_blocks = w.n_in / U::kBlock;
  const int64_t n_sub = w.n_in / U::kSub;
  thread_local RowScratch scratch;
  scratch.reserve(w.n_in, n_sub);
  int16_t* wq = scratch.w_aligned;
  float* dw = scratch.dw.data();
  float* mc = scratch.mc.data();

  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = w.data + static_cast<size_t>(r) * w.row_bytes;
    for (int64_t blk = 0; blk < n_blocks; ++blk) {
      U::unpack(row + blk * kBlockBytes, wq + blk * U::kBlock, dw + blk * kSubs, mc + blk * kSubs);
    }
    int64_t t = 0;
    for (; t + 4 <= n_tokens; t += 4) {
      ActRow a[4] = {act_row(x, lay, t), act_row(x, lay, t + 1), act_row(x, lay, t + 2), act_row(x, lay, t + 3)};
      __m256 acc[4];
      dot_tile<U::kSub, 4>(wq, dw, n_sub, a, acc);
      for (int i = 0; i < 4; ++i) {
        float out = hsum8_ps(acc[i]);
        if constexpr (U::kHasMin) out += min_term(mc, U::kSub == 32 ? a[i].sx32 : a[i].sx16, n_sub);
        y[(t + i) * ldy + r] = out;
      }
    }
    for (; t < n_tokens; ++t) {
      ActRow a[1] = {act_row(x, lay, t)};
      __m256 acc[1];
      dot_tile<U::kSub, 1>(wq, dw, n_sub, a, acc);
      float out = hsum8_ps(acc[0]);
      if constexpr (U::kHasMin) out += min_term(mc, U::kSub == 32 ? a[0].sx32 : a[0].sx16, n_sub);
      y[t * ldy + r] = out;
    }
  }
}

// ---- float weights: acc lanes k % 16 in two vectors ----

struct RowF32 {
  static __m256 load8(const uint8_t* row, int64_t k) { return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + k); }
  static float at(const uint8_t* row, int64_t k) {
    float v;
    std::memcpy(&v, row + 4 * k, 4);
    return v;
  }
};
struct RowF16 {
  static __m256 load8(const uint8_t* row, int64_t k) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * k)));
  }
  static float at(const uint8_t* row, int64_t k) { return f16(row + 2 * k); }
};
struct RowBF16 {
  static __m256 load8(const uint8_t* row, int64_t k) {
    const __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * k)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(h, 16));
  }
  static float at(const uint8_t* row, int64_t k) { return bfloat_to_float(load_u16(row + 2 * k)); }
};

template <class R, int kT>
inline void float_tile(const uint8_t* row, const float* const* xs, int64_t n_in, float* out) {
  __m256 a0[kT], a1[kT];
  for (int t = 0; t < kT; ++t) a0[t] = a1[t] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= n_in; k += 16) {
    const __m256 w0 = R::load8(row, k);
    const __m256 w1 = R::load8(row, k + 8);
    for (int t = 0; t < kT; ++t) {
      a0[t] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(xs[t] + k), a0[t]);
      a1[t] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(xs[t] + k + 8), a1[t]);
    }
  }
  for (int t = 0; t < kT; ++t) {
    __m256 sum;
    if (k < n_in) {
      alignas(32) float lanes[16];
      _mm256_store_ps(lanes, a0[t]);
      _mm256_store_ps(lanes + 8, a1[t]);
      for (int64_t j = k; j < n_in; ++j) lanes[j - k] = std::fma(R::at(row, j), xs[t][j], lanes[j - k]);
      sum = _mm256_add_ps(_mm256_load_ps(lanes), _mm256_load_ps(lanes + 8));
    } else {
      sum = _mm256_add_ps(a0[t], a1[t]);
    }
    out[t] = hsum8_ps(sum);
  }
}

template <class R>
void avx2_float_rows(const WeightMatrix& w, const ActivationBuffer& x, float* y, int64_t ldy, int64_t r0,
                     int64_t r1) {
  const int64_t n_in = w.n_in;
  const int64_t n_tokens = x.n_tokens();
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = w.data + static_cast<size_t>(r) * w.row_bytes;
    int64_t t = 0;
    for (; t + 4 <= n_tokens; t += 4) {
      const float* xs[4] = {x.f32() + t * n_in, x.f32() + (t + 1) * n_in, x.f32() + (t + 2) * n_in,
                            x.f32() + (t + 3) * n_in};
      float out[4];
      float_tile<R, 4>(row, xs, n_in, out);
      for (int i = 0; i < 4; ++i) y[(t + i) * ldy + r] = out[i];
    }
    for (; t < n_tokens; ++t) {
      const float* xs[1] = {x.f32() + t * n_in};
      float out[1];
      float_tile<R, 1>(row, xs, n_in, out);
      y[t * ldy + r] = out[0];
    }
  }
}

}  // namespace

RowsKernel avx2_kernel(TensorType type) {
  switch (type) {
    case TensorType::F32: return avx2_float_rows<RowF32>;
    case TensorType::F16: return avx2_float_rows<RowF16>;
    case TensorType::BF16: return avx2_float_rows<RowBF16>;
    case TensorType::Q4_0: return avx2_quant_rows<SimdQ4_0>;
    case TensorType::Q4_1: return avx2_quant_rows<SimdQ4_1>;
    case TensorType::Q5_0: return avx2_quant_rows<UnpackQ5_0>;
    case TensorType::Q5_1: return avx2_quant_rows<UnpackQ5_1>;
    case TensorType::Q8_0: return avx2_quant_rows<SimdQ8_0>;
    case TensorType::Q2_K: return avx2_quant_rows<UnpackQ2_K>;
    case TensorType::Q3_K: return avx2_quant_rows<UnpackQ3_K>;
    case TensorType::Q4_K: return avx2_quant_rows<SimdQ4_K>;
    case TensorType::Q5_K: return avx2_quant_rows<UnpackQ5_K>;
    case TensorType::Q6_K: return avx2_quant_rows<SimdQ6_K>;
    case TensorType::Q8_K: return avx2_quant_rows<UnpackQ8_K>;
    case TensorType::IQ4_NL: return avx2_quant_rows<SimdIQ4_NL>;
    case TensorType::IQ4_XS: return avx2_quant_rows<UnpackIQ4_XS>;
    default: return nullptr;
  }
}

}  // namespace plumb::cpu::detail
