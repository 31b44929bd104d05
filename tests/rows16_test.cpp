// Q4_K and Q6_K products of 1 to 3 tokens: contract S whatever the contract asked, the same bits at
// every SIMD level, and the kernels of repacked rows (rows16.h) giving the reference's bits on
// any range of rows.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "backend/cpu/matmul_internal.h"
#include "backend/cpu/rows16.h"
#include "quant/blocks.h"
#include "quant/ref.h"
#include "quant/types.h"
#include "util/thread_pool.h"

namespace plumb::cpu {
namespace {

struct Case {
  int64_t n_rows, n_in;
};

std::vector<uint8_t> quantized_rows(TensorType type, int64_t n_rows, int64_t n_in, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 0.5f);
  std::vector<float> x(static_cast<size_t>(n_in));
  const size_t row_bytes = row_size(type, n_in);
  std::vector<uint8_t> w(row_bytes * static_cast<size_t>(n_rows));
  for (int64_t r = 0; r < n_rows; ++r) {
    for (float& v : x) v = dist(rng);
    quantize_row(type, x.data(), w.data() + static_cast<size_t>(r) * row_bytes, n_in);
  }
  return w;
}

std::vector<float> activations(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (size_t k = 0; k < x.size(); ++k) x[k] = k % 97 == 5 ? 20.0f * dist(rng) : dist(rng);
  return x;
}

bool same_bits(float a, float b) { return std::memcmp(&a, &b, 4) == 0 || (std::isnan(a) && std::isnan(b)); }

// Every level, with and without the repacked rows, asked for either contract, against contract S
// in scalar C++: rows not a multiple of 16, ranges that cut groups, 1 to 3 tokens, a NaN block.
class Rows16 : public ::testing::TestWithParam<TensorType> {};

TEST_P(Rows16, FollowContractSAtEveryLevelOnAnyRows) {
  const TensorType type = GetParam();
  // 29 x 512: a last group whose second half of 8 rows is partly filled.
  for (const Case c : {Case{37, 768}, Case{16, 2048}, Case{5, 256}, Case{130, 5632}, Case{29, 512}}) {
    const std::vector<uint8_t> w = quantized_rows(type, c.n_rows, c.n_in, 7);
    const size_t row_bytes = row_size(type, c.n_in);
    std::vector<uint8_t> packed(detail::rows16_bytes(type, c.n_rows, c.n_in));
    detail::rows16_repack(type, w.data(), row_bytes, c.n_rows, c.n_in, packed.data(), 0, detail::rows16_groups(c.n_rows));
    for (int64_t n = 1; n <= 3; ++n) {
      std::vector<float> x = activations(n * c.n_in, 8 + static_cast<uint32_t>(n));
      if (n == 2) x[c.n_in + 40] = std::numeric_limits<float>::quiet_NaN();  // the second token's second block
      ThreadPool pool(1);
      ActivationBuffer summed, lane;
      summed.prepare(type, x.data(), n, c.n_in, pool, Contract::kSummed);
      lane.prepare(type, x.data(), n, c.n_in, pool, Contract::kLane);
      WeightMatrix m{type, c.n_in, c.n_rows, w.data(), row_bytes};
      std::vector<float> ref(static_cast<size_t>(n * c.n_rows));
      detail::scalar_summed_kernel(type)(m, summed, ref.data(), c.n_rows, 0, c.n_rows);
      for (const detail::SimdLevel level : {detail::SimdLevel::kScalar, detail::SimdLevel::kAvx2,
                                            detail::SimdLevel::kAvx512, detail::SimdLevel::kAmx}) {
        if (level > detail::cpu_simd_level()) continue;
        for (const bool repacked : {false, true}) {
          // The copy only where the backend would make it: its kernels exist from kRows16Level.
          if (repacked && level < detail::kRows16Level) continue;
          m.rows16 = repacked ? packed.data() : nullptr;
          const detail::RowsKernel k = detail::select_kernel(type, level);
          // Without and with the lines asked ahead into L2 (Zen 4's choice for Q4_K): the same bits.
          for (const int64_t ahead_l2 : {int64_t{0}, int64_t{8192}}) {
            detail::set_stream_ahead_l2(ahead_l2);
            for (const ActivationBuffer* act : {&lane, &summed}) {
              // Whole, then in ranges of 7 rows (groups of 16 cut on both sides).
              for (const int64_t step : {c.n_rows, int64_t{7}}) {
                std::vector<float> y(ref.size(), -1.0f);
                for (int64_t r0 = 0; r0 < c.n_rows; r0 += step) k(m, *act, y.data(), c.n_rows, r0, std::min(c.n_rows, r0 + step));
                for (size_t i = 0; i < y.size(); ++i) {
                  ASSERT_TRUE(same_bits(y[i], ref[i]))
                      << type_name(type) << " " << c.n_rows << "x" << c.n_in << " tokens " << n << " level "
                      << detail::simd_level_name(level) << (repacked ? " repacked" : "")
                      << (act == &lane ? " lane asked" : "") << " step " << step << " L2 ahead " << ahead_l2
                      << " output " << i << ": " << y[i] << " vs " << ref[i];
                }
              }
            }
          }
          detail::set_stream_ahead_l2(-1);
        }
      }
      for (size_t i = 0; i < ref.size(); ++i) {
        const bool nan_token = n == 2 && i >= static_cast<size_t>(c.n_rows) && i < static_cast<size_t>(2 * c.n_rows);
        EXPECT_EQ(std::isnan(ref[i]), nan_token) << "output " << i;
      }
    }
  }
}

// The integer sums at their bounds: every weight at its largest (nibbles 15, Q6_K's 63) against
// activations whose high bytes are all -128 (q = -32767), or whose low bytes are 255 (q = -1 and
// q = 255 next to a block maximum of 32767), where a kernel that sums 8-bit products in int16 over
// one step too many saturates or wraps.
TEST_P(Rows16, ExactAtTheIntegerBounds) {
  const TensorType type = GetParam();
  const int64_t n_rows = 48, n_in = 512, n = 3;
  const size_t row_bytes = row_size(type, n_in);
  std::vector<uint8_t> w(row_bytes * n_rows, 0xFF);
  for (int64_t b = 0; b < n_rows * n_in / 256; ++b) {
    constexpr fp16_t kD = 0x1400;  // 2^-10
    if (type == TensorType::Q4_K) {
      auto* blk = reinterpret_cast<block_q4_K*>(w.data()) + b;
      blk->d = blk->dmin = kD;
    } else {
      reinterpret_cast<block_q6_K*>(w.data())[b].d = kD;
    }
  }
  std::vector<float> x(n * n_in, -1.0f);  // token 0: q = -32767 throughout
  for (int64_t t = 1; t < n; ++t) {
    for (int64_t k = 0; k < n_in; ++k) x[t * n_in + k] = k % 32 == 0 ? 32767.0f : t == 1 ? -1.0f : 255.0f;
  }
  std::vector<uint8_t> packed(detail::rows16_bytes(type, n_rows, n_in));
  detail::rows16_repack(type, w.data(), row_bytes, n_rows, n_in, packed.data(), 0, detail::rows16_groups(n_rows));
  ThreadPool pool(1);
  ActivationBuffer summed;
  summed.prepare(type, x.data(), n, n_in, pool, Contract::kSummed);
  WeightMatrix m{type, n_in, n_rows, w.data(), row_bytes};
  std::vector<float> ref(static_cast<size_t>(n * n_rows));
  detail::scalar_summed_kernel(type)(m, summed, ref.data(), n_rows, 0, n_rows);
  for (const detail::SimdLevel level :
       {detail::SimdLevel::kAvx2, detail::SimdLevel::kAvx512, detail::SimdLevel::kAmx}) {
    if (level > detail::cpu_simd_level() || level < detail::kRows16Level) continue;
    m.rows16 = packed.data();
    std::vector<float> y(ref.size(), -1.0f);
    detail::select_kernel(type, level)(m, summed, y.data(), n_rows, 0, n_rows);
    for (size_t i = 0; i < y.size(); ++i) {
      ASSERT_TRUE(same_bits(y[i], ref[i])) << type_name(type) << " level " << detail::simd_level_name(level)
                                           << " output " << i << ": " << y[i] << " vs " << ref[i];
    }
  }
}

// The AVX2 split of one token's activations (rows16_prepare_avx2, what the backend runs) against
// the scalar one, byte for byte: q at its bounds and at random, widths with and without a tail
// of fewer than 128 values.
TEST(Rows16Split, Avx2GivesTheScalarBytes) {
  if (detail::cpu_simd_level() < detail::kRows16Level) GTEST_SKIP() << "no AVX2";
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> any(-32767, 32767);
  for (const int64_t n_in : {int64_t{32}, int64_t{160}, int64_t{256}, int64_t{2048}, int64_t{5632}, int64_t{5664}}) {
    std::vector<int16_t> q(static_cast<size_t>(n_in));
    for (size_t k = 0; k < q.size(); ++k) {
      q[k] = static_cast<int16_t>(k % 7 == 0 ? -32767 : k % 11 == 0 ? 32767 : k % 13 == 0 ? -1 : k % 17 == 0 ? 255 : any(rng));
    }
    if (n_in == 256) std::fill(q.begin(), q.end(), int16_t{-32767});  // the sums' extremes
    const detail::ActRow a{q.data(), nullptr, nullptr, nullptr};
    const size_t bytes = detail::rows16_split_bytes(n_in);
    std::vector<uint8_t> ref(bytes, 0xA5), got(bytes, 0xA5);
    detail::rows16_prepare(a, n_in, ref.data());
    detail::rows16_prepare_avx2(a, n_in, got.data());
    ASSERT_EQ(std::memcmp(ref.data(), got.data(), bytes), 0) << "n_in " << n_in;
  }
}

INSTANTIATE_TEST_SUITE_P(Types, Rows16, ::testing::Values(TensorType::Q4_K, TensorType::Q6_K),
                         [](const testing::TestParamInfo<TensorType>& i) { return std::string(type_name(i.param)); });

}  // namespace
}  // namespace plumb::cpu
