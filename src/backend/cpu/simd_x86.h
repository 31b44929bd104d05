// Small x86 helpers shared by the SIMD kernel files (matmul_avx2.cpp, matmul_avx512.cpp,
// rows16_avx2.cpp, rows16_avx512.cpp).
//
// Everything here has internal linkage (an unnamed namespace), on purpose: each including file
// gets its own copy compiled with its own instruction set, and no copy can be chosen by the linker
// for another file (an inline function with external linkage compiled for AVX-512 could otherwise
// run on a CPU without it; ctest SimdLinkage checks that the SIMD files define no weak symbols).
// Include only from files compiled with at least AVX2 + F16C.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "backend/cpu/matmul_internal.h"

namespace plumb::cpu {
namespace {

// hsum8 of matmul_internal.h on a vector: (lo + hi), then pairs (0+2, 1+3), then 0+1.
inline float hsum8_ps(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}

// The contract's hsum8 of four vectors, one result per lane: (l + l+4), then (0+2, 1+3), then
// their sum, exactly as hsum8_ps does per vector.
inline __m128 hsum8x4(__m256 v0, __m256 v1, __m256 v2, __m256 v3) {
  const auto halves = [](__m256 v) { return _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1)); };
  const __m128 s0 = halves(v0), s1 = halves(v1), s2 = halves(v2), s3 = halves(v3);
  // u01 = [s0_0 + s0_2, s1_0 + s1_2, s0_1 + s0_3, s1_1 + s1_3], u23 likewise for rows 2 and 3.
  const __m128 u01 = _mm_add_ps(_mm_unpacklo_ps(s0, s1), _mm_unpackhi_ps(s0, s1));
  const __m128 u23 = _mm_add_ps(_mm_unpacklo_ps(s2, s3), _mm_unpackhi_ps(s2, s3));
  return _mm_add_ps(_mm_movelh_ps(u01, u23), _mm_movehl_ps(u23, u01));
}

// The f16 at p as a float.
inline float f16(const void* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return _cvtsh_ss(v);
}

// The two halves at p (e.g. a block's d and m) as floats in lanes 0 and 1: one 32-bit load and
// one conversion. Only for fields followed by at least 2 more bytes of the same block.
inline __m128 f16x2(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(v)));
}

// The 8 six-bit scales (bytes 0-7) and mins (bytes 8-15) of a Q4_K / Q5_K super-block, as
// weight_unpack.h's k4_scale_min gives them one by one (get_scale_min_k4 for all j at once).
inline __m128i k4_scales_mins(const uint8_t* packed) {
  constexpr uint32_t kmask1 = 0x3f3f3f3f, kmask2 = 0x0f0f0f0f, kmask3 = 0x03030303;
  uint32_t u[4];
  std::memcpy(u, packed, 12);
  u[3] = ((u[2] >> 4) & kmask2) | (((u[1] >> 6) & kmask3) << 4);
  const uint32_t mins_lo = u[1] & kmask1;
  u[1] = (u[2] & kmask2) | (((u[0] >> 6) & kmask3) << 4);
  u[2] = mins_lo;
  u[0] &= kmask1;
  return _mm_set_epi32(static_cast<int>(u[3]), static_cast<int>(u[2]), static_cast<int>(u[1]), static_cast<int>(u[0]));
}

// ---- software prefetch of weights ----
// Generation reads every weight once per token, straight from memory. On the 2-core development
// VM the hardware prefetchers alone left the single-token products at a third of the memory
// bandwidth (TinyLlama Q4_K_M: 15 tokens/s, 9.5 GB/s of 33). Asking for the lines ahead of the
// reads doubles that: 4 KB ahead into L2 and 1 KB ahead into L1 measured best (34 tokens/s;
// one stream 2 KB ahead into L1: 32; leads of 0.5-16 KB and the other hints were tried). A
// prefetch never faults, so a lead may run past the end of the weights.

inline void prefetch_l1(uintptr_t a) { _mm_prefetch(reinterpret_cast<const char*>(a), _MM_HINT_T0); }
inline void prefetch_l2(uintptr_t a) { _mm_prefetch(reinterpret_cast<const char*>(a), _MM_HINT_T1); }

// The lines of [base + offset, base + offset + n_bytes) into L1 (or, with _MM_HINT_T1, L2) at
// once (before a short computation that will read them).
template <decltype(_MM_HINT_T0) kHint = _MM_HINT_T0>
inline void prefetch_range(const void* base, size_t offset, size_t n_bytes) {
  const uintptr_t begin = reinterpret_cast<uintptr_t>(base) + offset;
  for (uintptr_t a = begin; a < begin + n_bytes; a += 64) _mm_prefetch(reinterpret_cast<const char*>(a), kHint);
}

// The repacked-rows kernels (rows16.h), at super-block i of n_sb: the next super-block's
// activation bytes (256 of the high plane, 256 of the low; after the last, the first, which the
// next group reads) into L1. A group's weights streaming through L1 (27 KB a group at 2048
// values, 75 KB at 5632) push the activations out between their uses, and a step's broadcasts
// then wait on L2 (Zen 4, TinyLlama Q4_K_M generation: docs/PERFORMANCE.md).
inline void prefetch_next_block(const void* hi, const void* lo, int64_t i, int64_t n_sb) {
  const size_t next = i + 1 < n_sb ? static_cast<size_t>(256 * (i + 1)) : 0;
  prefetch_range(hi, next, 256);
  prefetch_range(lo, next, 256);
}

// A single token's products that read each thread's weights as one stream (the rows16 groups,
// the float rows one at a time or their blocks), at the pace of the arithmetic between the
// loads, ask before each piece (a group block, a row or two, a row's block) for the lines of the
// piece `ahead` = stream_ahead() bytes on, where the CPU gains by it (detail::stream_ahead_bytes;
// read once a call, not on every piece).
inline size_t stream_ahead() { return detail::stream_ahead_bytes(); }
inline void prefetch_stream(const void* piece, size_t ahead, size_t n_bytes) {
  if (ahead != 0) prefetch_range(piece, ahead, n_bytes);
}
// The same into L2 (detail::stream_ahead_l2_bytes): the Q4_K groups of repacked rows.
inline size_t stream_ahead_l2() { return detail::stream_ahead_l2_bytes(); }
inline void prefetch_stream_l2(const void* piece, size_t ahead, size_t n_bytes) {
  if (ahead != 0) prefetch_range<_MM_HINT_T1>(piece, ahead, n_bytes);
}

// Prefetch for a sequential read of [begin, begin + n_bytes) in n_steps steps of about equal
// size: each step() asks for the lines of the next share, kLeadL2 and kLeadL1 bytes ahead, so the
// requests trickle out between the computations instead of in bursts.
class PrefetchStream {
 public:
  static constexpr uintptr_t kLeadL1 = 1024, kLeadL2 = 4096;
  PrefetchStream(const void* begin, size_t n_bytes, int64_t n_steps)
      : l1_(reinterpret_cast<uintptr_t>(begin) + kLeadL1),
        l2_(reinterpret_cast<uintptr_t>(begin) + kLeadL2),
        pos_(reinterpret_cast<uintptr_t>(begin)),
        end_(pos_ + n_bytes),
        share_(n_steps > 1 ? (n_bytes + static_cast<size_t>(n_steps) - 1) / static_cast<size_t>(n_steps) : n_bytes) {}
  void step() {
    pos_ = pos_ + share_ < end_ ? pos_ + share_ : end_;
    for (; l2_ < pos_ + kLeadL2; l2_ += 64) prefetch_l2(l2_);
    for (; l1_ < pos_ + kLeadL1; l1_ += 64) prefetch_l1(l1_);
  }

 private:
  uintptr_t l1_, l2_, pos_, end_, share_;
};

// The lines of [begin, begin + n_bytes) into L2 in n_steps equal shares, one a step(): a group of
// rows that a product will read next, asked for while it works on the current one.
class PrefetchAhead {
 public:
  PrefetchAhead(const void* begin, size_t n_bytes, int64_t n_steps)
      : pos_(reinterpret_cast<uintptr_t>(begin)),
        end_(pos_ + n_bytes),
        share_(n_steps > 1 ? (n_bytes + static_cast<size_t>(n_steps) - 1) / static_cast<size_t>(n_steps) : n_bytes) {}
  void step() {
    const uintptr_t e = pos_ + share_ < end_ ? pos_ + share_ : end_;
    for (; pos_ < e; pos_ += 64) prefetch_l2(pos_);
  }

 private:
  uintptr_t pos_, end_, share_;
};

// A growable 64-byte aligned buffer (no std::vector: its members instantiated in a SIMD file
// would be weak symbols, see the top of this file).
class Buffer {
 public:
  Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { std::free(p_); }
  template <class T>
  T* get(size_t count) {
    const size_t bytes = (count * sizeof(T) + 64) / 64 * 64;  // never 0
    if (bytes > cap_) {
      std::free(p_);
      p_ = std::aligned_alloc(64, bytes);
      if (p_ == nullptr) std::abort();
      cap_ = bytes;
    }
    return static_cast<T*>(p_);
  }

 private:
  void* p_ = nullptr;
  size_t cap_ = 0;
};

}  // namespace
}  // namespace plumb::cpu
