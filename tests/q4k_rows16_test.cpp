// The rows-along-lanes Q4_K kernel (q4k_rows16.h) against the contract-S reference, bit for bit,
// and its speed beside the lane kernel's (printed, not asserted).
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "backend/cpu/matmul_internal.h"
#include "backend/cpu/q4k_rows16.h"
#include "quant/ref.h"
#include "quant/types.h"
#include "util/cpu_features.h"
#include "util/thread_pool.h"

namespace plumb::cpu {
namespace {

struct Case {
  int64_t n_rows, n_in;
};

std::vector<uint8_t> q4k_rows(int64_t n_rows, int64_t n_in, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 0.5f);
  std::vector<float> x(static_cast<size_t>(n_in));
  const size_t row_bytes = row_size(TensorType::Q4_K, n_in);
  std::vector<uint8_t> w(row_bytes * static_cast<size_t>(n_rows));
  for (int64_t r = 0; r < n_rows; ++r) {
    for (float& v : x) v = dist(rng);
    quantize_row(TensorType::Q4_K, x.data(), w.data() + static_cast<size_t>(r) * row_bytes, n_in);
  }
  return w;
}

std::vector<float> activations(int64_t n_in, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n_in));
  for (size_t k = 0; k < x.size(); ++k) x[k] = k % 97 == 5 ? 20.0f * dist(rng) : dist(rng);
  return x;
}

TEST(Q4KRows16, GivesTheContractSBitsOfOneToken) {
  if (!cpu_has_avx512_vnni()) GTEST_SKIP() << "this CPU has no AVX-512 VNNI";
  for (const Case c : {Case{37, 768}, Case{16, 2048}, Case{5, 256}, Case{130, 5632}}) {
    const std::vector<uint8_t> w = q4k_rows(c.n_rows, c.n_in, 7);
    std::vector<float> x = activations(c.n_in, 8);
    for (int poison = 0; poison < 2; ++poison) {
      if (poison == 1) x[40] = std::numeric_limits<float>::quiet_NaN();
      ThreadPool pool(1);
      ActivationBuffer act;
      act.prepare(TensorType::Q4_K, x.data(), 1, c.n_in, pool, Contract::kSummed);
      const WeightMatrix m{TensorType::Q4_K, c.n_in, c.n_rows, w.data(), row_size(TensorType::Q4_K, c.n_in)};
      std::vector<float> ref(static_cast<size_t>(c.n_rows));
      detail::scalar_summed_kernel(TensorType::Q4_K)(m, act, ref.data(), c.n_rows, 0, c.n_rows);

      std::vector<uint8_t> packed(detail::q4k_rows16_bytes(c.n_rows, c.n_in));
      detail::q4k_rows16_repack(w.data(), m.row_bytes, c.n_rows, c.n_in, packed.data());
      const detail::ActRow a = detail::act_row(act, detail::ActLayout::for_n_in(c.n_in), 0);
      std::vector<int8_t> hi(static_cast<size_t>(c.n_in));
      std::vector<uint8_t> lo(static_cast<size_t>(c.n_in));
      std::vector<int32_t> corr(static_cast<size_t>(c.n_in / 32));
      const detail::Rows16Act split{hi.data(), lo.data(), corr.data()};
      detail::q4k_rows16_prepare(a, c.n_in, split);
      std::vector<float> y(static_cast<size_t>(c.n_rows), -1.0f);
      detail::q4k_rows16_avx512(packed.data(), c.n_rows, c.n_in, a, split, y.data(), 0,
                                (c.n_rows + detail::kRows16 - 1) / detail::kRows16);
      for (int64_t r = 0; r < c.n_rows; ++r) {
        if (poison == 1) {
          EXPECT_TRUE(std::isnan(y[r]) && std::isnan(ref[r])) << "row " << r;
          continue;
        }
        EXPECT_EQ(std::memcmp(&y[r], &ref[r], 4), 0) << c.n_rows << "x" << c.n_in << " row " << r << ": " << y[r]
                                                      << " vs " << ref[r];
      }
    }
  }
}

// Speed beside the lane kernel (one token, one thread, a 2048 x 512 matrix in L2): printed.
TEST(Q4KRows16, SpeedBesideTheLaneKernel) {
  if (!cpu_has_avx512_vnni()) GTEST_SKIP() << "this CPU has no AVX-512 VNNI";
  const int64_t n_rows = 512, n_in = 2048;
  const std::vector<uint8_t> w = q4k_rows(n_rows, n_in, 9);
  const std::vector<float> x = activations(n_in, 10);
  ThreadPool pool(1);
  ActivationBuffer lane, summed;
  lane.prepare(TensorType::Q4_K, x.data(), 1, n_in, pool, Contract::kLane);
  summed.prepare(TensorType::Q4_K, x.data(), 1, n_in, pool, Contract::kSummed);
  const WeightMatrix m{TensorType::Q4_K, n_in, n_rows, w.data(), row_size(TensorType::Q4_K, n_in)};
  std::vector<uint8_t> packed(detail::q4k_rows16_bytes(n_rows, n_in));
  detail::q4k_rows16_repack(w.data(), m.row_bytes, n_rows, n_in, packed.data());
  const detail::ActRow a = detail::act_row(summed, detail::ActLayout::for_n_in(n_in), 0);
  std::vector<int8_t> hi(n_in);
  std::vector<uint8_t> lo(n_in);
  std::vector<int32_t> corr(n_in / 32);
  const detail::Rows16Act split{hi.data(), lo.data(), corr.data()};
  std::vector<float> y(n_rows);
  const auto best = [](auto&& run) {
    double t = 1e9;
    for (int rep = 0; rep < 300; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      run();
      t = std::min(t, std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    }
    return t;
  };
  const detail::RowsKernel lane_kernel = detail::select_kernel(TensorType::Q4_K, detail::SimdLevel::kAvx512);
  const double t_lane = best([&] { lane_kernel(m, lane, y.data(), n_rows, 0, n_rows); });
  const double t_rows = best([&] {
    detail::q4k_rows16_prepare(a, n_in, split);
    detail::q4k_rows16_avx512(packed.data(), n_rows, n_in, a, split, y.data(), 0, n_rows / detail::kRows16);
  });
  std::printf("[ rows16 ] 512 x 2048 Q4_K, one token: lane kernel %.1f us, rows along lanes %.1f us (%.2fx)\n", t_lane,
              t_rows, t_lane / t_rows);
}

}  // namespace
}  // namespace plumb::cpu
