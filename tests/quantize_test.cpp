// plumb quantize against llama-quantize: austen-21m F16 -> Q4_K_M / Q6_K / Q8_0 / Q4_0 must give
// llama.cpp's tensors byte for byte (the manifests; the shipped files for Q4_K_M and Q4_0).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>

#include "gguf/gguf.h"
#include "model/quantize_model.h"
#include "quant/ref.h"
#include "test_models.h"
#include "test_util.h"

namespace plumb {
namespace {

std::unique_ptr<gguf::File> open_or_fail(const std::string& path) {
  Result<std::unique_ptr<gguf::File>> f = gguf::File::open(path);
  EXPECT_TRUE(f.ok()) << f.status().message();
  return f.ok() ? std::move(f).value() : nullptr;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

bool same_value(const gguf::Value& a, const gguf::Value& b) {
  if (a.type != b.type || a.u64 != b.u64 || a.i64 != b.i64 || a.str != b.str ||
      a.array.size() != b.array.size()) {
    return false;
  }
  if (!(a.f64 == b.f64 || (std::isnan(a.f64) && std::isnan(b.f64)))) return false;
  for (size_t i = 0; i < a.array.size(); ++i) {
    if (!same_value(a.array[i], b.array[i])) return false;
  }
  return true;
}

class QuantizeAusten : public ::testing::TestWithParam<const char*> {};

TEST_P(QuantizeAusten, MatchesLlamaQuantize) {
  const std::string mix = GetParam();
  std::string lower = mix;
  for (char& c : lower) c = static_cast<char>(std::tolower(c));
  PLUMB_REQUIRE_SHARED(f16, "models/austen-21m-f16.gguf");
  PLUMB_REQUIRE_SHARED(manifest_path, "models/austen-21m-" + lower + ".manifest.json");
  test::Manifest manifest;
  std::string error;
  ASSERT_TRUE(test::load_manifest(manifest_path, &manifest, &error)) << error;

  const std::string out = test::temp_dir("quantize-" + lower) + "/out.gguf";
  std::string log;
  ASSERT_EQ(test::run_plumb("quantize " + f16 + " " + out + " " + mix + " -t 2", &log), 0) << log;
  EXPECT_NE(log.find("MB/s"), std::string::npos) << log;

  // Tensor by tensor: names, order, types, shapes and sha256 of the data.
  EXPECT_EQ(test::compare_with_manifest(out, manifest), "");

  auto input = open_or_fail(f16);
  auto output = open_or_fail(out);
  ASSERT_TRUE(input && output);
  Result<int64_t> file_type = output->get_int("general.file_type");
  ASSERT_TRUE(file_type.ok()) << file_type.status().message();
  EXPECT_EQ(*file_type, manifest.file_type);
  Result<int64_t> qv = output->get_int("general.quantization_version");
  ASSERT_TRUE(qv.ok()) << qv.status().message();
  EXPECT_EQ(*qv, 2);
  for (const auto& [key, value] : input->metadata()) {
    if (key == "general.file_type") continue;
    const gguf::Value* copied = output->find(key);
    ASSERT_NE(copied, nullptr) << key;
    EXPECT_TRUE(same_value(value, *copied)) << key;
  }
  EXPECT_EQ(output->file_size(), manifest.file_bytes);

  // llama-quantize's own output ships for two of them: the whole file is the same.
  if (lower == "q4_k_m" || lower == "q4_0") {
    PLUMB_REQUIRE_SHARED(shipped, "models/austen-21m-" + lower + ".gguf");
    auto theirs = open_or_fail(shipped);
    ASSERT_TRUE(theirs);
    ASSERT_EQ(theirs->tensors().size(), output->tensors().size());
    for (const gguf::TensorInfo& t : theirs->tensors()) {
      const gguf::TensorInfo* ours = output->find_tensor(t.name);
      ASSERT_NE(ours, nullptr) << t.name;
      ASSERT_EQ(ours->type, t.type) << t.name;
      ASSERT_EQ(ours->nbytes, t.nbytes) << t.name;
      EXPECT_EQ(std::memcmp(ours->data, t.data, t.nbytes), 0) << t.name;
    }
    EXPECT_TRUE(read_all(out) == read_all(shipped)) << "file bytes differ from " << shipped;
  }
}

INSTANTIATE_TEST_SUITE_P(Mixes, QuantizeAusten, ::testing::Values("Q4_K_M", "Q6_K", "Q8_0", "Q4_0"));

TEST(Quantize, ThreadCountDoesNotChangeBytes) {
  PLUMB_REQUIRE_SHARED(f16, "models/austen-21m-f16.gguf");
  const std::string dir = test::temp_dir("quantize-threads");
  for (int threads : {1, 3}) {
    QuantizeOptions options;
    options.target = "q4_0";
    options.n_threads = threads;
    Result<QuantizeSummary> s =
        quantize_model(f16, dir + "/t" + std::to_string(threads) + ".gguf", options);
    ASSERT_TRUE(s.ok()) << s.status().message();
    EXPECT_EQ(s->tensors_fell_back, 0);
  }
  EXPECT_TRUE(read_all(dir + "/t1.gguf") == read_all(dir + "/t3.gguf"));
}

TEST(Quantize, RequantizesFromAQuantizedFile) {
  // Q4_0 -> f32: every 2-D weight is dequantized; llama.cpp's output.weight was Q6_K.
  PLUMB_REQUIRE_SHARED(q4_0, "models/austen-21m-q4_0.gguf");
  const std::string out = test::temp_dir("quantize-requant") + "/f32.gguf";
  QuantizeOptions options;
  options.target = "F32";
  Result<QuantizeSummary> s = quantize_model(q4_0, out, options);
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->file_type, 0u);
  auto in = open_or_fail(q4_0);
  auto f32 = open_or_fail(out);
  ASSERT_TRUE(in && f32);
  for (const char* name : {"output.weight", "blk.2.ffn_down.weight"}) {
    const gguf::TensorInfo* src = in->find_tensor(name);
    const gguf::TensorInfo* dst = f32->find_tensor(name);
    ASSERT_TRUE(src && dst) << name;
    ASSERT_EQ(dst->type, TensorType::F32);
    std::vector<float> expected(static_cast<size_t>(src->n_elements()));
    dequantize_row(src->type, src->data, expected.data(), src->n_elements());
    EXPECT_EQ(std::memcmp(dst->data, expected.data(), dst->nbytes), 0) << name;
  }
}

TEST(Quantize, AustenModelHelperGivesCheckedFiles) {
  for (const char* type : {"q8_0", "q6_k"}) {
    std::string why;
    const std::string path = test::austen_model(type, &why);
    if (path.empty()) GTEST_SKIP() << "austen-21m " << type << ": " << why;
    PLUMB_REQUIRE_SHARED(manifest_path, std::string("models/austen-21m-") + type + ".manifest.json");
    test::Manifest manifest;
    std::string error;
    ASSERT_TRUE(test::load_manifest(manifest_path, &manifest, &error)) << error;
    EXPECT_EQ(test::compare_with_manifest(path, manifest), "") << path;
  }
}

TEST(QuantizeCli, UnknownTypeListsValidNames) {
  std::string log;
  EXPECT_EQ(test::run_plumb("quantize in.gguf out.gguf Q4_K_Q", &log), 2);
  EXPECT_NE(log.find("Q4_K_M"), std::string::npos) << log;
  EXPECT_NE(log.find("iq4_xs"), std::string::npos) << log;
}

TEST(QuantizeCli, InputErrorsNameTheFile) {
  const std::string dir = test::temp_dir("quantize-errors");
  std::string log;
  EXPECT_EQ(test::run_plumb("quantize " + dir + "/missing.gguf " + dir + "/o.gguf Q8_0", &log), 1);
  EXPECT_NE(log.find(dir + "/missing.gguf"), std::string::npos) << log;
  const std::string junk = dir + "/junk.gguf";
  std::ofstream(junk) << "this is not a GGUF file at all";
  EXPECT_EQ(test::run_plumb("quantize " + junk + " " + dir + "/o.gguf Q8_0", &log), 1);
  EXPECT_NE(log.find(junk), std::string::npos) << log;
  EXPECT_EQ(test::run_plumb("quantize a b", &log), 2);
}

}  // namespace
}  // namespace plumb
