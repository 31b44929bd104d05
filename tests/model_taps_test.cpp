// Every tap of plumb's forward pass against llama.cpp's trace of the same prompt
// (p0.trace.<tap> in ../shared/ref): same names, same layout [n_tokens][width], and values within
// a few times the per-op distance of llama.cpp to float64 (../shared/ref/README.md).
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "model/model.h"
#include "model_ref.h"
#include "test_util.h"

namespace plumb::test {
namespace {

class CompareTracer : public Tracer {
 public:
  explicit CompareTracer(const gguf::File& ref) : ref_(ref) {}
  bool wants(const std::string&) const override { return true; }
  void tap(const std::string& name, const float* data, int64_t width, int64_t n_tokens) override {
    const gguf::TensorInfo* t = ref_.find_tensor("p0.trace." + name);
    ++seen;
    if (t == nullptr) {
      missing.push_back(name);
      return;
    }
    ASSERT_EQ(t->type, TensorType::F32) << name;
    ASSERT_EQ(t->ne[0], width) << name;
    ASSERT_EQ(t->ne[1], n_tokens) << name;
    const auto* b = reinterpret_cast<const float*>(t->data);
    double e = 0, r = 0;
    for (int64_t i = 0; i < width * n_tokens; ++i) {
      e += (double(data[i]) - b[i]) * (double(data[i]) - b[i]);
      r += double(b[i]) * b[i];
    }
    worst = std::max(worst, e / r);
    if (e / r > bound) bad.push_back(name + " NMSE " + std::to_string(e / r));
  }
  const gguf::File& ref_;
  double bound = 1e-5;
  double worst = 0;
  int seen = 0;
  std::vector<std::string> missing, bad;
};

TEST(ModelTaps, Austen21mF16MatchesLlamaCppTrace) {
  PLUMB_REQUIRE_SHARED(model_path, "models/austen-21m-f16.gguf");
  PLUMB_REQUIRE_SHARED(ref_path, "ref/austen-21m-f16.gguf");
  auto model = Model::load(model_path, without_tokenizer());
  ASSERT_TRUE(model.ok()) << model.status().message();
  auto ref = gguf::File::open(ref_path);
  ASSERT_TRUE(ref.ok()) << ref.status().message();
  const gguf::TensorInfo* tokens = (*ref)->find_tensor("p0.tokens");
  ASSERT_NE(tokens, nullptr);
  std::vector<int32_t> ids(static_cast<size_t>(tokens->n_elements()));
  std::memcpy(ids.data(), tokens->data, ids.size() * sizeof(int32_t));

  CompareTracer tracer(**ref);
  auto s = Session::create(**model, {});
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE((*s)->decode(ids, true, &tracer).ok());
  EXPECT_EQ(tracer.seen, 123);
  EXPECT_TRUE(tracer.missing.empty()) << "first tap missing from the reference: " << tracer.missing.front();
  EXPECT_TRUE(tracer.bad.empty()) << tracer.bad.front();
  std::printf("[ taps ] austen-21m-f16: worst per-tap NMSE vs llama.cpp %.3g\n", tracer.worst);
}

}  // namespace
}  // namespace plumb::test
