// The AVX2 attention kernels against the scalar reference: F16 stores bit for bit, dot products
// and weighted sums within f32 rounding, on lengths with and without a tail.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "backend/cpu/attention_kernels.h"
#include "quant/ref.h"

namespace plumb::cpu {
namespace {

bool has_avx2() {
#if defined(__x86_64__)
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
#else
  return false;
#endif
}

TEST(AttentionKernels, Avx2MatchesScalar) {
  if (!has_avx2()) GTEST_SKIP() << "CPU without AVX2/FMA/F16C: only the scalar kernels run here";
  const AttentionKernels& ref = attention_kernels_scalar();
  const AttentionKernels& fast = attention_kernels_avx2();
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0.0f, 2.0f);
  for (int64_t n : {1, 7, 8, 31, 32, 64, 100, 128}) {
    std::vector<float> q(n), kf(n);
    for (auto& x : q) x = dist(rng);
    for (auto& x : kf) x = dist(rng);
    std::vector<uint16_t> k_ref(n), k_fast(n);
    ref.to_f16(kf.data(), k_ref.data(), n);
    fast.to_f16(kf.data(), k_fast.data(), n);
    EXPECT_EQ(k_ref, k_fast) << "n = " << n;

    double mag = 0;
    for (int64_t i = 0; i < n; ++i) mag += std::fabs(q[i] * kf[i]);
    const double tol = 1e-6 * mag + 1e-30;
    EXPECT_NEAR(ref.dot_f32(q.data(), kf.data(), n), fast.dot_f32(q.data(), kf.data(), n), tol) << n;
    EXPECT_NEAR(ref.dot_f16(q.data(), k_ref.data(), n), fast.dot_f16(q.data(), k_ref.data(), n), tol) << n;

    std::vector<float> acc_ref(q), acc_fast(q);
    ref.axpy_f32(0.37f, kf.data(), acc_ref.data(), n);
    fast.axpy_f32(0.37f, kf.data(), acc_fast.data(), n);
    for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(acc_ref[i], acc_fast[i], 1e-6f * (1 + std::fabs(acc_ref[i])));
    acc_ref = q;
    acc_fast = q;
    ref.axpy_f16(-1.5f, k_ref.data(), acc_ref.data(), n);
    fast.axpy_f16(-1.5f, k_ref.data(), acc_fast.data(), n);
    for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(acc_ref[i], acc_fast[i], 1e-6f * (1 + std::fabs(acc_ref[i])));
  }
}

}  // namespace
}  // namespace plumb::cpu
