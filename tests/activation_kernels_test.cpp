// SwiGLU's kernel (activation_kernels.h): AVX2 bit for bit against the scalar contract, and
// within a few ulp of silu(g) * up computed in double, from tiny to very large |g|.
#include <gtest/gtest.h>

#include <bit>
#include <cfloat>
#include <cmath>
#include <random>
#include <vector>

#include "backend/cpu/activation_kernels.h"
#include "util/cpu_features.h"

namespace plumb::cpu {
namespace {

std::vector<float> gates() {
  std::vector<float> g;
  std::mt19937 rng(3);
  std::normal_distribution<float> dist(0.0f, 3.0f);
  for (int i = 0; i < 100000; ++i) g.push_back(dist(rng));
  for (float x = -120.0f; x <= 120.0f; x += 0.37f) g.push_back(x);
  for (float x : {0.0f, -0.0f, 1e-30f, -1e-30f, 1e-8f, -1e-8f, 87.0f, -87.0f, 88.7f, -88.7f, 1e6f, -1e6f, 3e38f, -3e38f}) {
    g.push_back(x);
  }
  return g;
}

TEST(ActivationKernels, SwigluAvx2MatchesScalarBitForBit) {
  if (!cpu_has_avx2_fma_f16c()) GTEST_SKIP() << "CPU without AVX2/FMA: only the scalar kernel runs here";
  const std::vector<float> g = gates();
  std::vector<float> up(g.size());
  for (size_t i = 0; i < up.size(); ++i) up[i] = 0.5f + static_cast<float>(i % 7);
  std::vector<float> ref(g.size()), fast(g.size());
  swiglu_scalar(g.data(), up.data(), ref.data(), static_cast<int64_t>(g.size()));
  swiglu_avx2(g.data(), up.data(), fast.data(), static_cast<int64_t>(g.size()));
  for (size_t i = 0; i < g.size(); ++i) {
    ASSERT_EQ(std::bit_cast<uint32_t>(ref[i]), std::bit_cast<uint32_t>(fast[i])) << "gate " << g[i];
  }
}

TEST(ActivationKernels, SwigluWithinFewUlpOfDouble) {
  const std::vector<float> g = gates();
  const std::vector<float> up(g.size(), 1.0f);
  std::vector<float> out(g.size());
  swiglu_kernel(g.data(), up.data(), out.data(), static_cast<int64_t>(g.size()));
  double worst = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    const double x = g[i];
    const double exact = x / (1.0 + std::exp(-x));
    if (std::fabs(exact) < 1e-36) {  // exp(-g) overflows f32 for g < -88.7: -0 instead
      EXPECT_LE(std::fabs(out[i]), 1e-36) << x;
      continue;
    }
    int ex = 0;
    std::frexp(exact, &ex);
    const double ulp = std::ldexp(1.0, std::max(ex - 24, -149));
    worst = std::max(worst, std::fabs(out[i] - exact) / ulp);
  }
  std::printf("[ swiglu ] max error %.3f ulp\n", worst);
  EXPECT_LE(worst, 3.0);
}

}  // namespace
}  // namespace plumb::cpu
