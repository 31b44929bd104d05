// The fast K-quant path of plumb quantize must equal the scalar reference byte for byte.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "gguf/gguf.h"
#include "quant/blocks.h"
#include "quant/kquant_fast.h"
#include "quant/ref.h"
#include "test_util.h"

namespace plumb {
namespace {

void expect_same_as_reference(TensorType type, const std::vector<float>& x, const std::string& what) {
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<uint8_t> ref(row_size(type, n)), fast(row_size(type, n), 0xAB);
  quantize_row(type, x.data(), ref.data(), n);
  quantize_row_fast(type, x.data(), fast.data(), n);
  const size_t block = type_traits(type).type_size;
  for (size_t b = 0; b < ref.size() / block; ++b) {
    ASSERT_EQ(std::memcmp(ref.data() + b * block, fast.data() + b * block, block), 0)
        << type_name(type) << " " << what << ": block " << b << " differs";
  }
}

TEST(KQuantFast, EqualsReferenceOnRandomData) {
  std::mt19937 rng(1234);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  for (TensorType type : {TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K}) {
    for (int trial = 0; trial < 6; ++trial) {
      std::vector<float> x(QK_K * 64);
      for (float& v : x) {
        switch (trial) {
          case 0: v = normal(rng) * 0.02f; break;
          case 1: v = uniform(rng); break;
          case 2: v = std::abs(normal(rng)) + 0.5f; break;   // all positive: min clamps to 0
          case 3: v = -std::abs(normal(rng)) * 3.0f; break;  // all negative
          case 4: v = std::round(uniform(rng) * 4.0f); break; // few distinct values, ties
          default: v = normal(rng) * std::pow(10.0f, uniform(rng) * 6.0f); break;  // wide range
        }
      }
      // Some constant and zero sub-blocks.
      std::fill(x.begin() + 64, x.begin() + 96, 0.0f);
      std::fill(x.begin() + 512, x.begin() + 544, 0.25f);
      std::fill(x.begin() + 1024, x.begin() + 1024 + QK_K, 0.0f);
      expect_same_as_reference(type, x, "trial " + std::to_string(trial));
    }
  }
}

TEST(KQuantFast, EqualsReferenceOnAustenWeights) {
  PLUMB_REQUIRE_SHARED(path, "models/austen-21m-f16.gguf");
  Result<std::unique_ptr<gguf::File>> f = gguf::File::open(path);
  ASSERT_TRUE(f.ok()) << f.status().message();
  for (const char* name : {"blk.0.ffn_down.weight", "blk.5.attn_v.weight", "blk.7.ffn_gate.weight"}) {
    const gguf::TensorInfo* t = (*f)->find_tensor(name);
    ASSERT_NE(t, nullptr) << name;
    std::vector<float> x(static_cast<size_t>(t->n_elements()));
    dequantize_row(t->type, t->data, x.data(), t->n_elements());
    for (TensorType type : {TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K}) {
      expect_same_as_reference(type, x, name);
    }
  }
}

}  // namespace
}  // namespace plumb
