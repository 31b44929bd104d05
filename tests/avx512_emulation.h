// Plain C++ stand-ins for the AVX-512 intrinsics matmul_avx512.cpp uses, so that file can be
// compiled a second time (tests/matmul_avx512_emulated.cpp) and checked against the scalar
// kernels on a CPU without AVX-512. They are declared in the namespace the kernels are built into
// for that copy, where they hide the real intrinsics. Each follows Intel's description of the
// instruction lane by lane; aligned loads and stores check their alignment as the hardware does.
// This checks the kernels' data layout and arithmetic order, not the silicon: the real kernels
// still run on an AVX-512 machine (docs/GPU-TESTS.md).
#pragma once

#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace plumb::cpu::detail::avx512_emulated {

template <class T, int N>
struct Lanes {
  T v[N];
  T& operator[](int i) { return v[i]; }
  const T& operator[](int i) const { return v[i]; }
};

template <class T, class V>
inline Lanes<T, sizeof(V) / sizeof(T)> lanes(V v) {
  Lanes<T, sizeof(V) / sizeof(T)> out;
  std::memcpy(out.v, &v, sizeof(V));
  return out;
}

template <class V, class T, int N>
inline V pack(const Lanes<T, N>& l) {
  static_assert(sizeof(T) * N == sizeof(V));
  V v;
  std::memcpy(&v, l.v, sizeof(V));
  return v;
}

inline void check_aligned(const void* p, const char* what) {
  if (reinterpret_cast<uintptr_t>(p) % 64 != 0) {
    std::fprintf(stderr, "%s: address %p is not 64-byte aligned (a fault on AVX-512 hardware)\n", what, p);
    std::abort();
  }
}

// ---- 512-bit loads, stores, constants, casts ----

inline __m512 _mm512_loadu_ps(const void* p) {
  Lanes<float, 16> l;
  std::memcpy(l.v, p, 64);
  return pack<__m512>(l);
}
inline __m512 _mm512_load_ps(const void* p) {
  check_aligned(p, "_mm512_load_ps");
  return _mm512_loadu_ps(p);
}
inline __m512i _mm512_loadu_si512(const void* p) {
  Lanes<int32_t, 16> l;
  std::memcpy(l.v, p, 64);
  return pack<__m512i>(l);
}
inline __m512i _mm512_load_si512(const void* p) {
  check_aligned(p, "_mm512_load_si512");
  return _mm512_loadu_si512(p);
}
inline void _mm512_store_ps(void* p, __m512 v) {
  check_aligned(p, "_mm512_store_ps");
  std::memcpy(p, &v, 64);
}
inline void _mm512_store_si512(void* p, __m512i v) {
  check_aligned(p, "_mm512_store_si512");
  std::memcpy(p, &v, 64);
}

inline __m512 _mm512_setzero_ps() { return pack<__m512>(Lanes<float, 16>{}); }
inline __m512i _mm512_setzero_si512() { return pack<__m512i>(Lanes<int32_t, 16>{}); }
inline __m512 _mm512_set1_ps(float x) {
  Lanes<float, 16> l;
  for (int i = 0; i < 16; ++i) l[i] = x;
  return pack<__m512>(l);
}
inline __m512i _mm512_set1_epi32(int x) {
  Lanes<int32_t, 16> l;
  for (int i = 0; i < 16; ++i) l[i] = x;
  return pack<__m512i>(l);
}
inline __m512i _mm512_set1_epi16(short x) {
  Lanes<int16_t, 32> l;
  for (int i = 0; i < 32; ++i) l[i] = x;
  return pack<__m512i>(l);
}
inline __m512i _mm512_set_epi32(int e15, int e14, int e13, int e12, int e11, int e10, int e9, int e8, int e7, int e6,
                                int e5, int e4, int e3, int e2, int e1, int e0) {
  const Lanes<int32_t, 16> l{{e0, e1, e2, e3, e4, e5, e6, e7, e8, e9, e10, e11, e12, e13, e14, e15}};
  return pack<__m512i>(l);
}

// The cast intrinsics leave the upper lanes undefined; zeros are one valid choice.
inline __m512 _mm512_castps128_ps512(__m128 v) {
  Lanes<float, 16> l{};
  std::memcpy(l.v, &v, 16);
  return pack<__m512>(l);
}
inline __m512 _mm512_castps256_ps512(__m256 v) {
  Lanes<float, 16> l{};
  std::memcpy(l.v, &v, 32);
  return pack<__m512>(l);
}
inline __m256 _mm512_castps512_ps256(__m512 v) {
  __m256 r;
  std::memcpy(&r, &v, 32);
  return r;
}
inline __m512 _mm512_castsi512_ps(__m512i v) {
  __m512 r;
  std::memcpy(&r, &v, 64);
  return r;
}
inline __m256 _mm512_extractf32x8_ps(__m512 v, int imm) {
  __m256 r;
  std::memcpy(&r, reinterpret_cast<const char*>(&v) + 32 * (imm & 1), 32);
  return r;
}

// ---- 512-bit arithmetic ----

inline __m512i _mm512_madd_epi16(__m512i a, __m512i b) {
  const auto x = lanes<int16_t>(a), y = lanes<int16_t>(b);
  Lanes<int32_t, 16> r;
  for (int i = 0; i < 16; ++i) {
    const uint32_t s = static_cast<uint32_t>(int32_t{x[2 * i]} * y[2 * i]) +
                       static_cast<uint32_t>(int32_t{x[2 * i + 1]} * y[2 * i + 1]);
    r[i] = static_cast<int32_t>(s);
  }
  return pack<__m512i>(r);
}
inline __m512i _mm512_dpwssd_epi32(__m512i src, __m512i a, __m512i b) {
  const auto s = lanes<int32_t>(src);
  const auto p = lanes<int32_t>(_mm512_madd_epi16(a, b));  // both products are exact in int32
  Lanes<int32_t, 16> r;
  for (int i = 0; i < 16; ++i) r[i] = static_cast<int32_t>(static_cast<uint32_t>(s[i]) + static_cast<uint32_t>(p[i]));
  return pack<__m512i>(r);
}
inline __m512i _mm512_sub_epi16(__m512i a, __m512i b) {
  const auto x = lanes<uint16_t>(a), y = lanes<uint16_t>(b);
  Lanes<uint16_t, 32> r;
  for (int i = 0; i < 32; ++i) r[i] = static_cast<uint16_t>(x[i] - y[i]);
  return pack<__m512i>(r);
}
inline __m512 _mm512_cvtepi32_ps(__m512i a) {
  const auto x = lanes<int32_t>(a);
  Lanes<float, 16> r;
  for (int i = 0; i < 16; ++i) r[i] = static_cast<float>(x[i]);
  return pack<__m512>(r);
}
inline __m512 _mm512_add_ps(__m512 a, __m512 b) {
  const auto x = lanes<float>(a), y = lanes<float>(b);
  Lanes<float, 16> r;
  for (int i = 0; i < 16; ++i) r[i] = x[i] + y[i];
  return pack<__m512>(r);
}
inline __m512 _mm512_mul_ps(__m512 a, __m512 b) {
  const auto x = lanes<float>(a), y = lanes<float>(b);
  Lanes<float, 16> r;
  for (int i = 0; i < 16; ++i) r[i] = x[i] * y[i];
  return pack<__m512>(r);
}
inline __m512 _mm512_fmadd_ps(__m512 a, __m512 b, __m512 c) {
  const auto x = lanes<float>(a), y = lanes<float>(b), z = lanes<float>(c);
  Lanes<float, 16> r;
  for (int i = 0; i < 16; ++i) r[i] = std::fma(x[i], y[i], z[i]);
  return pack<__m512>(r);
}
inline __m512 _mm512_mask3_fmadd_ps(__m512 a, __m512 b, __m512 c, __mmask16 k) {
  const auto f = lanes<float>(_mm512_fmadd_ps(a, b, c)), z = lanes<float>(c);
  Lanes<float, 16> r;
  for (int i = 0; i < 16; ++i) r[i] = (k >> i) & 1 ? f[i] : z[i];
  return pack<__m512>(r);
}
inline __m512i _mm512_add_epi32(__m512i a, __m512i b) {  // wraps, as the hardware
  const auto x = lanes<uint32_t>(a), y = lanes<uint32_t>(b);
  Lanes<uint32_t, 16> r;
  for (int i = 0; i < 16; ++i) r[i] = x[i] + y[i];
  return pack<__m512i>(r);
}
inline __m512i _mm512_slli_epi32(__m512i a, unsigned n) {
  const auto x = lanes<uint32_t>(a);
  Lanes<uint32_t, 16> r;
  for (int i = 0; i < 16; ++i) r[i] = n > 31 ? 0 : x[i] << n;
  return pack<__m512i>(r);
}

// ---- 512-bit conversions and permutes ----

// Sign- or zero-extension of N narrow lanes of `a` into a zmm of wider lanes.
template <class From, class To, int N, class V>
inline __m512i widen(V a) {
  const auto x = lanes<From>(a);
  Lanes<To, N> r;
  for (int i = 0; i < N; ++i) r[i] = x[i];
  return pack<__m512i>(r);
}
inline __m512i _mm512_cvtepi8_epi16(__m256i a) { return widen<int8_t, int16_t, 32>(a); }
inline __m512i _mm512_cvtepu8_epi16(__m256i a) { return widen<uint8_t, int16_t, 32>(a); }
inline __m512i _mm512_cvtepi8_epi32(__m128i a) { return widen<int8_t, int32_t, 16>(a); }
inline __m512i _mm512_cvtepu8_epi32(__m128i a) { return widen<uint8_t, int32_t, 16>(a); }
inline __m512i _mm512_cvtepu16_epi32(__m256i a) { return widen<uint16_t, uint32_t, 16>(a); }
inline __m512 _mm512_cvtph_ps(__m256i a) {
  const auto x = lanes<uint16_t>(a);
  Lanes<float, 16> r;
  for (int i = 0; i < 16; ++i) r[i] = _cvtsh_ss(x[i]);
  return pack<__m512>(r);
}
inline __m512 _mm512_permutexvar_ps(__m512i idx, __m512 a) {
  const auto j = lanes<int32_t>(idx);
  const auto x = lanes<float>(a);
  Lanes<float, 16> r;
  for (int i = 0; i < 16; ++i) r[i] = x[j[i] & 15];
  return pack<__m512>(r);
}
// 128-bit lanes: q < 2 from a, q >= 2 from b, each picked by two bits of imm (as shuffle_i64x2).
inline __m512i _mm512_shuffle_i32x4(__m512i a, __m512i b, int imm) {
  const auto x = lanes<int32_t>(a), y = lanes<int32_t>(b);
  Lanes<int32_t, 16> r;
  for (int q = 0; q < 4; ++q) {
    const auto& src = q < 2 ? x : y;
    const int sel = (imm >> (2 * q)) & 3;
    for (int i = 0; i < 4; ++i) r[4 * q + i] = src[4 * sel + i];
  }
  return pack<__m512i>(r);
}
// Interleave within each 128-bit lane: dwords (lo: 0, 1; hi: 2, 3) or qwords (lo: 0; hi: 1).
template <class T, bool kHigh>
inline __m512i unpack_lanes(__m512i a, __m512i b) {
  constexpr int kPer = 16 / sizeof(T);  // elements per 128-bit lane
  const auto x = lanes<T>(a), y = lanes<T>(b);
  Lanes<T, 4 * kPer> r;
  for (int q = 0; q < 4; ++q) {
    for (int i = 0; i < kPer / 2; ++i) {
      const int src = q * kPer + (kHigh ? kPer / 2 : 0) + i;
      r[q * kPer + 2 * i] = x[src];
      r[q * kPer + 2 * i + 1] = y[src];
    }
  }
  return pack<__m512i>(r);
}
inline __m512i _mm512_unpacklo_epi32(__m512i a, __m512i b) { return unpack_lanes<int32_t, false>(a, b); }
inline __m512i _mm512_unpackhi_epi32(__m512i a, __m512i b) { return unpack_lanes<int32_t, true>(a, b); }
inline __m512i _mm512_unpacklo_epi64(__m512i a, __m512i b) { return unpack_lanes<int64_t, false>(a, b); }
inline __m512i _mm512_unpackhi_epi64(__m512i a, __m512i b) { return unpack_lanes<int64_t, true>(a, b); }
inline __m512 _mm512_unpacklo_ps(__m512 a, __m512 b) {
  const __m512i r = unpack_lanes<int32_t, false>(pack<__m512i>(lanes<int32_t>(a)), pack<__m512i>(lanes<int32_t>(b)));
  return pack<__m512>(lanes<float>(r));
}
inline __m512 _mm512_unpackhi_ps(__m512 a, __m512 b) {
  const __m512i r = unpack_lanes<int32_t, true>(pack<__m512i>(lanes<int32_t>(a)), pack<__m512i>(lanes<int32_t>(b)));
  return pack<__m512>(lanes<float>(r));
}
// Within each 128-bit lane: elements 0, 1 from a and 2, 3 from b, each picked by two bits of imm.
inline __m512 _mm512_shuffle_ps(__m512 a, __m512 b, int imm) {
  const auto x = lanes<float>(a), y = lanes<float>(b);
  Lanes<float, 16> r;
  for (int q = 0; q < 4; ++q) {
    for (int i = 0; i < 4; ++i) r[4 * q + i] = (i < 2 ? x : y)[4 * q + ((imm >> (2 * i)) & 3)];
  }
  return pack<__m512>(r);
}
// Element i: index bits 0-3 pick the element, bit 4 picks b over a.
inline __m512 _mm512_permutex2var_ps(__m512 a, __m512i idx, __m512 b) {
  const auto x = lanes<float>(a), y = lanes<float>(b);
  const auto j = lanes<int32_t>(idx);
  Lanes<float, 16> r;
  for (int i = 0; i < 16; ++i) r[i] = (j[i] & 16 ? y : x)[j[i] & 15];
  return pack<__m512>(r);
}
// The same selection of 128-bit lanes.
inline __m512i _mm512_shuffle_i64x2(__m512i a, __m512i b, int imm) { return _mm512_shuffle_i32x4(a, b, imm); }
inline __m512i _mm512_maskz_mov_epi16(__mmask32 k, __m512i a) {
  const auto x = lanes<int16_t>(a);
  Lanes<int16_t, 32> r;
  for (int i = 0; i < 32; ++i) r[i] = (k >> i) & 1 ? x[i] : 0;
  return pack<__m512i>(r);
}

// ---- AVX-512 VL/BW forms of 256-bit operations ----

inline __m256 _mm256_mask3_fmadd_ps(__m256 a, __m256 b, __m256 c, __mmask8 k) {
  const auto x = lanes<float>(a), y = lanes<float>(b), z = lanes<float>(c);
  Lanes<float, 8> r;
  for (int i = 0; i < 8; ++i) r[i] = (k >> i) & 1 ? std::fma(x[i], y[i], z[i]) : z[i];
  return pack<__m256>(r);
}
inline __m256 _mm256_mask_permutexvar_ps(__m256 src, __mmask8 k, __m256i idx, __m256 a) {
  const auto s = lanes<float>(src), x = lanes<float>(a);
  const auto j = lanes<int32_t>(idx);
  Lanes<float, 8> r;
  for (int i = 0; i < 8; ++i) r[i] = (k >> i) & 1 ? x[j[i] & 7] : s[i];
  return pack<__m256>(r);
}
inline __m256i _mm256_mask_sub_epi8(__m256i src, __mmask32 k, __m256i a, __m256i b) {
  const auto s = lanes<uint8_t>(src), x = lanes<uint8_t>(a), y = lanes<uint8_t>(b);
  Lanes<uint8_t, 32> r;
  for (int i = 0; i < 32; ++i) r[i] = (k >> i) & 1 ? static_cast<uint8_t>(x[i] - y[i]) : s[i];
  return pack<__m256i>(r);
}
inline __m256 _mm256_maskz_loadu_ps(__mmask8 k, const void* p) {
  Lanes<float, 8> r;
  for (int i = 0; i < 8; ++i) {
    r[i] = 0.0f;
    if ((k >> i) & 1) std::memcpy(&r[i], static_cast<const char*>(p) + 4 * i, 4);  // masked lanes are not read
  }
  return pack<__m256>(r);
}
inline void _mm256_mask_storeu_ps(void* p, __mmask8 k, __m256 a) {
  const auto x = lanes<float>(a);
  for (int i = 0; i < 8; ++i) {
    if ((k >> i) & 1) std::memcpy(static_cast<char*>(p) + 4 * i, &x[i], 4);  // masked lanes are not written
  }
}
inline __m256i _mm256_srlv_epi16(__m256i a, __m256i count) {
  const auto x = lanes<uint16_t>(a), c = lanes<uint16_t>(count);
  Lanes<uint16_t, 16> r;
  for (int i = 0; i < 16; ++i) r[i] = c[i] > 15 ? 0 : static_cast<uint16_t>(x[i] >> c[i]);
  return pack<__m256i>(r);
}
inline __mmask32 _mm256_testn_epi8_mask(__m256i a, __m256i b) {
  const auto x = lanes<uint8_t>(a), y = lanes<uint8_t>(b);
  __mmask32 k = 0;
  for (int i = 0; i < 32; ++i) k |= static_cast<__mmask32>((x[i] & y[i]) == 0) << i;
  return k;
}

}  // namespace plumb::cpu::detail::avx512_emulated
