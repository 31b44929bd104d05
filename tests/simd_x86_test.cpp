// The helpers the SIMD kernel files share (src/backend/cpu/simd_x86.h) against the scalar
// reference. This file is compiled with the AVX2 flags (CMakeLists.txt), as those helpers need;
// the checks below only run SSE2 code.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>

#include "backend/cpu/simd_x86.h"
#include "backend/cpu/weight_unpack.h"

namespace plumb::cpu {
namespace {

// The SIMD kernels take a K-quant super-block's scales and mins all at once; the scalar kernels
// take them one by one. Every packed byte pattern must give the same values.
TEST(SimdX86, KQuantScalesAllAtOnceEqualOneByOne) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 1000; ++trial) {
    uint8_t packed[12];
    for (uint8_t& b : packed) b = static_cast<uint8_t>(rng());
    alignas(16) uint8_t all[16];
    _mm_store_si128(reinterpret_cast<__m128i*>(all), k4_scales_mins(packed));
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      detail::k4_scale_min(j, packed, &sc, &m);
      ASSERT_EQ(all[j], sc) << "scale " << j;
      ASSERT_EQ(all[8 + j], m) << "min " << j;
    }
  }
}

}  // namespace
}  // namespace plumb::cpu
