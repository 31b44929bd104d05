// Planted faults: each one makes the forward pass go wrong first at the tap where the bug sits
// (what `plumb diff` must then name), and nowhere before it.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "model/model.h"
#include "model_ref.h"
#include "test_util.h"

namespace plumb::test {
namespace {

class RecordingTracer : public Tracer {
 public:
  bool wants(const std::string&) const override { return true; }
  void tap(const std::string& name, const float* data, int64_t width, int64_t n_tokens) override {
    order.push_back(name);
    taps[name].assign(data, data + width * n_tokens);
  }
  std::vector<std::string> order;
  std::map<std::string, std::vector<float>> taps;
};

const std::vector<int32_t> kTokens = {1, 739, 338, 263, 8760, 21103, 635, 24084, 3192, 29892, 393, 263};

RecordingTracer run_traced(const Model& model, PlantedFault fault, int fault_layer) {
  SessionOptions opts;
  opts.fault = fault;
  opts.fault_layer = fault_layer;
  RecordingTracer tracer;
  auto s = Session::create(model, opts);
  EXPECT_TRUE(s.ok()) << s.status().message();
  if (s.ok()) {
    EXPECT_TRUE((*s)->decode(kTokens, true, &tracer).ok());
  }
  return tracer;
}

// The first tap (in forward order) whose NMSE against the clean run exceeds 1e-6.
std::string first_divergence(const RecordingTracer& clean, const RecordingTracer& faulty) {
  for (const std::string& name : clean.order) {
    const auto& a = clean.taps.at(name);
    const auto it = faulty.taps.find(name);
    if (it == faulty.taps.end() || it->second.size() != a.size()) return name + " (missing or resized)";
    double e = 0, r = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      e += (double(it->second[i]) - a[i]) * (double(it->second[i]) - a[i]);
      r += double(a[i]) * a[i];
    }
    if (e > 1e-6 * r) return name;
  }
  return "(none)";
}

TEST(ModelFaults, EachFaultFirstDivergesAtItsTap) {
  PLUMB_REQUIRE_SHARED(path, "models/austen-21m-q4_k_m.gguf");
  auto model = Model::load(path, without_tokenizer());
  ASSERT_TRUE(model.ok()) << model.status().message();
  const RecordingTracer clean = run_traced(**model, PlantedFault::None, 0);
  ASSERT_EQ(clean.order.front(), "inp_embd");
  ASSERT_EQ(clean.order.back(), "logits");
  EXPECT_EQ(clean.order.size(), 1u + 15u * 8u + 2u);  // inp_embd, 15 per layer, result_norm, logits
  EXPECT_EQ(clean.taps.at("logits").size(), kTokens.size() * 32000u);

  struct Expect {
    PlantedFault fault;
    int layer;
    const char* tap;
  };
  const Expect cases[] = {
      {PlantedFault::RopeNeoxPairs, 0, "blk.0.q_rope"},
      {PlantedFault::Q4KScalesSwapped, 0, "blk.0.q"},  // attn_q is Q4_K in this file
      {PlantedFault::SoftmaxNoScale, 0, "blk.0.attn_out"},
      {PlantedFault::SkipResidual, 3, "blk.3.ffn_inp"},
      {PlantedFault::GqaOffByOne, 0, "blk.0.attn_out"},
  };
  for (const Expect& e : cases) {
    EXPECT_EQ(first_divergence(clean, run_traced(**model, e.fault, e.layer)), e.tap)
        << "fault " << static_cast<int>(e.fault);
  }
  EXPECT_EQ(first_divergence(clean, run_traced(**model, PlantedFault::None, 0)), "(none)");
}

}  // namespace
}  // namespace plumb::test
