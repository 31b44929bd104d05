// Checks the scalar reference (de)quantizers against ggml's own output, for every GGUF file in
// ../shared/quant (one parametrized test per file, so a new file is tested without code
// changes). Per file: dequantize(q) == deq bit for bit (signed zeros included), quantize(src)
// == q byte for byte, and the reference activation quantizer reproduces act_ref.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "quant/ref.h"
#include "quant/types.h"
#include "test_util.h"

namespace plumb {
namespace {

constexpr const char* kMissing = "missing";  // the one parameter when ../shared/quant is absent
constexpr int kMaxReported = 8;              // mismatches printed per check

std::vector<std::string> vector_files() {
  std::vector<std::string> names;
  const std::string dir = test::shared_path("quant");
  if (!dir.empty()) {
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
      if (e.is_regular_file() && e.path().extension() == ".gguf") names.push_back(e.path().stem().string());
    }
  }
  std::sort(names.begin(), names.end());
  if (names.empty()) names.push_back(kMissing);
  return names;
}

uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

class QuantVectors : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == kMissing) {
      GTEST_SKIP() << "missing shared data: quant/*.gguf under " << test::shared_dir();
    }
    path_ = test::shared_path("quant/" + GetParam() + ".gguf");
    ASSERT_FALSE(path_.empty());
    auto file = gguf::File::open(path_);
    ASSERT_TRUE(file.ok()) << file.status().message();
    file_ = std::move(file).value();
  }

  // A tensor that must exist, with n_per_row x n_rows elements and the size its type implies.
  const gguf::TensorInfo* tensor(const char* name) {
    const gguf::TensorInfo* t = file_->find_tensor(name);
    if (t == nullptr) {
      ADD_FAILURE() << path_ << ": no tensor '" << name << "'";
      return nullptr;
    }
    if (t->nbytes != static_cast<uint64_t>(t->n_rows()) * row_size(t->type, t->ne[0])) {
      ADD_FAILURE() << path_ << ": tensor '" << name << "' has " << t->nbytes << " bytes, expected "
                    << t->n_rows() * row_size(t->type, t->ne[0]);
      return nullptr;
    }
    return t;
  }

  // Quantizes each row of `input` (F32) to `expected`'s type into a buffer prefilled with
  // 0xA5 (the output must not depend on it), and compares byte for byte.
  using QuantizeFn = void (*)(TensorType, const float*, void*, int64_t);
  void expect_quantize_matches(const gguf::TensorInfo& input, const gguf::TensorInfo& expected,
                               const char* what, QuantizeFn quantize = quantize_row) {
    ASSERT_EQ(input.type, TensorType::F32);
    ASSERT_EQ(input.ne[0], expected.ne[0]);
    ASSERT_EQ(input.n_rows(), expected.n_rows());
    const TensorType type = expected.type;
    ASSERT_TRUE(can_quantize(type)) << type_name(type);
    const int64_t n = input.ne[0];
    const size_t rs = row_size(type, n);
    const TypeTraits& tt = type_traits(type);
    std::vector<float> row(static_cast<size_t>(n));
    std::vector<uint8_t> out(rs);
    int mismatches = 0;
    for (int64_t r = 0; r < input.n_rows(); ++r) {
      std::memcpy(row.data(), input.data + r * n * 4, static_cast<size_t>(n) * 4);
      std::fill(out.begin(), out.end(), 0xA5);
      quantize(type, row.data(), out.data(), n);
      const uint8_t* want = expected.data + r * rs;
      for (size_t b = 0; b < rs; ++b) {
        if (out[b] == want[b]) continue;
        if (++mismatches <= kMaxReported) {
          ADD_FAILURE() << what << " (" << type_name(type) << "): row " << r << ", block "
                        << b / tt.type_size << ", byte " << b % tt.type_size << ": got 0x" << std::hex
                        << int(out[b]) << ", ggml 0x" << int(want[b]) << std::dec;
        }
      }
    }
    EXPECT_EQ(mismatches, 0) << what << ": bytes differing from ggml in " << path_;
  }

  std::string path_;
  std::unique_ptr<gguf::File> file_;
};

TEST_P(QuantVectors, DequantizeMatchesGgmlBitForBit) {
  const gguf::TensorInfo* q = tensor("q");
  const gguf::TensorInfo* deq = tensor("deq");
  ASSERT_TRUE(q != nullptr && deq != nullptr);
  ASSERT_EQ(deq->type, TensorType::F32);
  ASSERT_EQ(q->ne[0], deq->ne[0]);
  ASSERT_EQ(q->n_rows(), deq->n_rows());
  EXPECT_EQ(static_cast<uint32_t>(q->type), file_->get_u32("quant.type_id").value());
  const int64_t n = q->ne[0];
  const size_t rs = row_size(q->type, n);
  const int64_t block = type_traits(q->type).block_size;
  std::vector<float> got(static_cast<size_t>(n));
  int mismatches = 0;
  for (int64_t r = 0; r < q->n_rows(); ++r) {
    dequantize_row(q->type, q->data + r * rs, got.data(), n);
    for (int64_t j = 0; j < n; ++j) {
      float want;
      std::memcpy(&want, deq->data + (r * n + j) * 4, 4);
      if (float_bits(got[j]) == float_bits(want)) continue;
      if (++mismatches <= kMaxReported) {
        ADD_FAILURE() << type_name(q->type) << ": row " << r << ", block " << j / block << ", element "
                      << j % block << ": got " << got[j] << " (0x" << std::hex << float_bits(got[j])
                      << "), ggml " << want << " (0x" << float_bits(want) << ")" << std::dec;
      }
    }
  }
  EXPECT_EQ(mismatches, 0) << "elements differing from ggml in " << path_;
}

TEST_P(QuantVectors, QuantizeMatchesGgmlByteForByte) {
  const gguf::TensorInfo* src = tensor("src");
  const gguf::TensorInfo* q = tensor("q");
  ASSERT_TRUE(src != nullptr && q != nullptr);
  expect_quantize_matches(*src, *q, "quantize_row(src) vs q");
  expect_quantize_matches(*src, *q, "quantize_row_scalar(src) vs q", quantize_row_scalar);
}

TEST_P(QuantVectors, ReferenceActivationQuantizerMatchesActRef) {
  if (file_->find_tensor("act_ref") == nullptr) {
    GTEST_SKIP() << path_ << " has no act_ref (quant.act_type = "
                 << file_->get_string_or("quant.act_type", "?").value() << ")";
  }
  const gguf::TensorInfo* act_src = tensor("act_src");
  const gguf::TensorInfo* act_ref = tensor("act_ref");
  ASSERT_TRUE(act_src != nullptr && act_ref != nullptr);
  expect_quantize_matches(*act_src, *act_ref, "quantize_row(act_src) vs act_ref");
  expect_quantize_matches(*act_src, *act_ref, "quantize_row_scalar(act_src) vs act_ref", quantize_row_scalar);
}

INSTANTIATE_TEST_SUITE_P(SharedQuant, QuantVectors, ::testing::ValuesIn(vector_files()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           for (char& c : name) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace plumb
