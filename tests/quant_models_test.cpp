// Real-model check of the reference quantizers: every quantized tensor of llama.cpp's
// austen-21m Q4_K_M and Q4_0 files (llama-quantize output, no imatrix) must be what
// quantize_row makes of the same tensor of the F16 file, byte for byte. This tests the
// quantizers alone; the per-tensor type choice is `plumb quantize`'s business.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "gguf/gguf.h"
#include "quant/ref.h"
#include "test_util.h"

namespace plumb {
namespace {

void expect_tensors_requantize_identically(const std::string& f16_path, const std::string& quant_path) {
  auto f16 = gguf::File::open(f16_path);
  ASSERT_TRUE(f16.ok()) << f16.status().message();
  auto quant = gguf::File::open(quant_path);
  ASSERT_TRUE(quant.ok()) << quant.status().message();
  int checked = 0;
  for (const gguf::TensorInfo& want : (*quant)->tensors()) {
    const gguf::TensorInfo* src = (*f16)->find_tensor(want.name);
    ASSERT_NE(src, nullptr) << want.name << " missing from " << f16_path;
    if (want.type == src->type || want.type == TensorType::F32) continue;
    ASSERT_EQ(src->ne[0], want.ne[0]) << want.name;
    const int64_t n = want.ne[0];
    const size_t src_rs = row_size(src->type, n);
    const size_t rs = row_size(want.type, n);
    std::vector<float> row(static_cast<size_t>(n));
    std::vector<uint8_t> out(rs);
    int64_t bad_rows = 0, first_bad = -1;
    for (int64_t r = 0; r < want.n_rows(); ++r) {
      dequantize_row(src->type, src->data + r * src_rs, row.data(), n);
      quantize_row(want.type, row.data(), out.data(), n);
      if (std::memcmp(out.data(), want.data + r * rs, rs) != 0) {
        if (first_bad < 0) first_bad = r;
        ++bad_rows;
      }
    }
    EXPECT_EQ(bad_rows, 0) << want.name << " (" << type_name(want.type) << "): " << bad_rows
                           << " rows differ from llama-quantize, first row " << first_bad;
    ++checked;
  }
  EXPECT_GT(checked, 0) << "no quantized tensors in " << quant_path;
}

TEST(QuantModels, AustenQ4KMTensorsMatchLlamaQuantize) {
  PLUMB_REQUIRE_SHARED(f16, "models/austen-21m-f16.gguf");
  PLUMB_REQUIRE_SHARED(q4_k_m, "models/austen-21m-q4_k_m.gguf");
  expect_tensors_requantize_identically(f16, q4_k_m);
}

TEST(QuantModels, AustenQ40TensorsMatchLlamaQuantize) {
  PLUMB_REQUIRE_SHARED(f16, "models/austen-21m-f16.gguf");
  PLUMB_REQUIRE_SHARED(q4_0, "models/austen-21m-q4_0.gguf");
  expect_tensors_requantize_identically(f16, q4_0);
}

}  // namespace
}  // namespace plumb
