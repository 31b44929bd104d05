// The random stream behind synth_fill_*: shared by the portable and the AVX2 implementation,
// which must give identical values (internal to src/synth).
#pragma once

#include <cmath>
#include <cstdint>

namespace plumb::synth_detail {

// Two 32-bit hash keys per stream: one for each half of the four uniforms.
struct StreamKeys {
  uint32_t a1, a2, b1, b2;
};

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

inline StreamKeys stream_keys(uint64_t key) {
  const uint64_t a = splitmix64(key);
  const uint64_t b = splitmix64(a);
  return {static_cast<uint32_t>(a), static_cast<uint32_t>(a >> 32), static_cast<uint32_t>(b),
          static_cast<uint32_t>(b >> 32)};
}

// A counter-based hash: murmur3's finalizer, keyed before and after.
inline uint32_t hash32(uint32_t counter, uint32_t k1, uint32_t k2) {
  uint32_t x = counter + k1;
  x ^= x >> 16;
  x *= 0x85EBCA6Bu;
  x ^= x >> 13;
  x *= 0xC2B2AE35u;
  x ^= x >> 16;
  x ^= k2;
  x *= 0x9E3779B1u;
  x ^= x >> 16;
  return x;
}

// The sum of four uniform 16-bit integers has mean 2·65535 and standard deviation
// sqrt(4·(65536²-1)/12); its distribution is close to normal within ±3.46 sd.
constexpr float kSumMean = 131070.0f;
inline float sum_sd() { return static_cast<float>(std::sqrt((65536.0 * 65536.0 - 1.0) / 3.0)); }

// Element value: mean + (s - kSumMean) * scale, scale = std / sum_sd(); no FMA.
inline float element(uint32_t i, const StreamKeys& k, float scale, float mean) {
  const uint32_t h1 = hash32(i, k.a1, k.a2);
  const uint32_t h2 = hash32(i, k.b1, k.b2);
  const int32_t s = static_cast<int32_t>((h1 & 0xFFFF) + (h1 >> 16) + (h2 & 0xFFFF) + (h2 >> 16));
  const float centered = static_cast<float>(s) - kSumMean;
  const float scaled = centered * scale;
  return scaled + mean;
}

// AVX2 + F16C versions; call only when cpu_has_avx2_fma_f16c().
void fill_f32_avx2(float* dst, int64_t n, const StreamKeys& k, uint32_t first, float scale, float mean);
void fill_f16_avx2(uint16_t* dst, int64_t n, const StreamKeys& k, uint32_t first, float scale, float mean);

}  // namespace plumb::synth_detail
