// logit_stats (model/logit_stats.h): the AVX2 version gives the scalar version's bits, and
// log(sum exp(x - max)) is within the stated 1.5e-7 of float64, on rows of the vocabulary's size
// with narrow and very wide logit ranges, ties for the top, and lengths with a tail of 8.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <random>
#include <vector>

#include "model/logit_stats.h"
#include "util/cpu_features.h"

namespace plumb {
namespace {

std::vector<std::vector<float>> rows() {
  std::vector<std::vector<float>> all;
  std::mt19937 rng(11);
  for (float spread : {0.01f, 1.0f, 4.0f, 15.0f, 60.0f}) {
    for (int64_t n : {1, 7, 8, 100, 32000, 32003}) {
      std::normal_distribution<float> dist(-3.0f, spread);
      std::vector<float> x(static_cast<size_t>(n));
      for (auto& v : x) v = dist(rng);
      all.push_back(x);
    }
  }
  std::vector<float> ties(1000, 2.5f);  // every logit the max: top is the first
  ties[0] = 1.0f;
  all.push_back(ties);
  return all;
}

TEST(LogitStats, Avx2MatchesScalarBitForBit) {
  if (!cpu_has_avx2_fma_f16c()) GTEST_SKIP() << "CPU without AVX2/FMA: only the scalar code runs here";
  for (const auto& x : rows()) {
    const auto n = static_cast<int64_t>(x.size());
    const LogitStats a = logit_stats_scalar(x.data(), n);
    const LogitStats b = logit_stats_avx2(x.data(), n);
    EXPECT_EQ(a.max, b.max) << n;
    EXPECT_EQ(a.top, b.top) << n;
    EXPECT_EQ(std::bit_cast<uint64_t>(a.sum_exp), std::bit_cast<uint64_t>(b.sum_exp)) << n;
  }
}

TEST(LogitStats, LogSumExpWithinBoundOfFloat64) {
  double worst = 0;
  for (const auto& x : rows()) {
    const auto n = static_cast<int64_t>(x.size());
    const LogitStats s = logit_stats(x.data(), n);
    double m = x[0];
    int32_t top = 0;
    for (int64_t i = 1; i < n; ++i) {
      if (x[static_cast<size_t>(i)] > m) {
        m = x[static_cast<size_t>(i)];
        top = static_cast<int32_t>(i);
      }
    }
    double sum = 0;
    for (float v : x) sum += std::exp(static_cast<double>(v) - m);
    EXPECT_EQ(s.max, static_cast<float>(m));
    EXPECT_EQ(s.top, top);
    worst = std::max(worst, std::fabs(std::log(s.sum_exp) - std::log(sum)));
  }
  std::printf("[ logit_stats ] max |log S - log S_f64| = %.3g\n", worst);
  EXPECT_LE(worst, 1.5e-7);
}

}  // namespace
}  // namespace plumb
