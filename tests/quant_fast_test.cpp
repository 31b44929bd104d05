// The SIMD quantizers behind quantize_row must give the scalar reference's bytes exactly, on
// every kind of data: random rows of many shapes, zeros, constants, ties, outliers, tiny and
// huge values, mixed per block. (The shared ggml vectors check the scalar reference itself.)
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "quant/ref.h"
#include "quant/types.h"

namespace plumb {
namespace {

constexpr int64_t kRowLength = 1024;  // 4 super-blocks
constexpr int kRowsPerKind = 24;

// Fills one row with data of the given kind (0..kKinds-1).
constexpr int kKinds = 14;
void fill_row(int kind, std::mt19937& rng, float* x) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  std::uniform_int_distribution<int> small_int(-16, 15);
  for (int64_t j = 0; j < kRowLength; ++j) {
    float v = 0.0f;
    switch (kind) {
      case 0: v = 0.02f * normal(rng); break;
      case 1: v = normal(rng); break;
      case 2: v = 0.0f; break;
      case 3: v = 0.7f; break;
      case 4: v = -0.05f - 3.0f * uniform(rng); break;
      case 5: v = 0.05f + 3.0f * uniform(rng); break;
      case 6: v = 1e-30f * normal(rng); break;
      case 7: v = (j % 2 ? -1.0f : 1.0f) * 30000.0f; break;
      case 8: v = static_cast<float>(small_int(rng)) * 0.5f; break;   // ties
      case 9: v = static_cast<float>(small_int(rng)) * 0.25f; break;
      case 10: v = uniform(rng) < 0.9f ? 0.0f : normal(rng); break;  // sparse
      case 11: v = normal(rng) * std::pow(10.0f, 5.0f * uniform(rng) - 3.0f); break;
      case 12: v = (j / 32) % 3 == 0 ? 0.0f : normal(rng) * ((j / 16) % 2 ? 1e-3f : 10.0f); break;
      case 13: v = 1e-16f * normal(rng) + (j % 97 == 0 ? 5.0f : 0.0f); break;
    }
    x[j] = v;
  }
  if (kind == 1) x[100] = 60.0f;  // an outlier
}

class QuantFastMatchesScalar : public ::testing::TestWithParam<TensorType> {};

TEST_P(QuantFastMatchesScalar, OnVariedRows) {
  const TensorType type = GetParam();
  const size_t rs = row_size(type, kRowLength);
  std::vector<float> x(kRowLength);
  std::vector<uint8_t> fast(rs), scalar(rs);
  std::mt19937 rng(1234);
  int mismatched_rows = 0;
  for (int kind = 0; kind < kKinds; ++kind) {
    for (int r = 0; r < kRowsPerKind; ++r) {
      fill_row(kind, rng, x.data());
      quantize_row(type, x.data(), fast.data(), kRowLength);
      quantize_row_scalar(type, x.data(), scalar.data(), kRowLength);
      if (std::memcmp(fast.data(), scalar.data(), rs) == 0) continue;
      size_t b = 0;
      while (fast[b] == scalar[b]) ++b;
      if (++mismatched_rows <= 5) {
        ADD_FAILURE() << type_name(type) << ": row kind " << kind << " #" << r << ": first difference at block "
                      << b / type_traits(type).type_size << ", byte " << b % type_traits(type).type_size;
      }
    }
  }
  EXPECT_EQ(mismatched_rows, 0);
}

INSTANTIATE_TEST_SUITE_P(Types, QuantFastMatchesScalar,
                         ::testing::Values(TensorType::Q2_K, TensorType::Q3_K, TensorType::Q4_K,
                                           TensorType::Q5_K, TensorType::Q6_K, TensorType::Q8_K,
                                           TensorType::IQ4_NL, TensorType::IQ4_XS, TensorType::Q4_0,
                                           TensorType::Q8_0),
                         [](const ::testing::TestParamInfo<TensorType>& info) {
                           return std::string(type_name(info.param));
                         });

}  // namespace
}  // namespace plumb
