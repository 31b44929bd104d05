// plumb's own traces: prompt 0 of every reference model, traced on the CPU, passes plumb diff
// against llama.cpp's file with the default thresholds; each planted fault (src/model/model.h)
// is named at the tap where it happens, against the clean run and against the reference.
#include <gtest/gtest.h>

#include <filesystem>

#include "model/model.h"
#include "model_ref.h"
#include "test_models.h"
#include "test_util.h"
#include "trace/diff.h"
#include "model/run_trace.h"
#include "trace/trace_file.h"

namespace plumb::trace {
namespace {

struct RefModel {
  const char* ref;    // ../shared/ref/<ref>.gguf
  const char* model;  // "austen-21m-<type>" (made by test::austen_model) or a downloaded file name
  bool traced;        // the reference holds p0.trace.* (else tokens and logits only)
};

constexpr RefModel kModels[] = {
    {"austen-21m-f16", "austen-21m-f16", true},
    {"austen-21m-q8_0", "austen-21m-q8_0", false},
    {"austen-21m-q6_k", "austen-21m-q6_k", false},
    {"austen-21m-q4_k_m", "austen-21m-q4_k_m", true},
    {"austen-21m-q4_0", "austen-21m-q4_0", false},
    {"smollm2-135m-q4_1", "SmolLM2-135M-Instruct.Q4_1.gguf", true},
};

// austen-21m-<type>: the shipped file, or q8_0/q6_k made by plumb quantize and checked against
// llama.cpp's manifest; SmolLM2 through scripts/fetch-model (test::smollm2_model).
// "" when it cannot be had, with *why set.
std::string find_model(const std::string& name, std::string* why) {
  constexpr std::string_view kAusten = "austen-21m-";
  if (name.rfind(kAusten, 0) == 0) return test::austen_model(name.substr(kAusten.size()), why);
  if (name == "SmolLM2-135M-Instruct.Q4_1.gguf") return test::smollm2_model(why);
  *why = "unknown model " + name;
  return "";
}

#define PLUMB_REQUIRE_MODEL(var, name)               \
  std::string var##_why;                             \
  const std::string var = find_model(name, &var##_why); \
  if (var.empty()) GTEST_SKIP() << var##_why

std::unique_ptr<Model> load_model(const std::string& path) {
  ModelOptions options;
  options.load_tokenizer = false;
  auto model = Model::load(path, options);
  EXPECT_TRUE(model.ok()) << model.status().message();
  return model.ok() ? std::move(model).value() : nullptr;
}

Result<TraceRun> run(const Model& model, const std::vector<int32_t>& tokens, PlantedFault fault = PlantedFault::None,
                     int fault_layer = 0) {
  SessionOptions options;
  options.n_ctx = static_cast<int>(tokens.size());
  options.n_batch = static_cast<int>(tokens.size());
  options.fault = fault;
  options.fault_layer = fault_layer;
  return trace_tokens(model, tokens, options, "*");
}

std::string first_divergence(const Result<DiffReport>& r) {
  if (!r.ok()) return "error: " + r.status().message();
  if (!r->diverged()) return "(none: " + r->verdict() + ")";
  return r->taps[static_cast<size_t>(r->divergence)].name.display;
}

class TraceAgainstReference : public ::testing::TestWithParam<RefModel> {};

TEST_P(TraceAgainstReference, PromptZeroPassesDefaultThresholds) {
  const RefModel& m = GetParam();
  PLUMB_REQUIRE_SHARED(ref_path, std::string("ref/") + m.ref + ".gguf");
  PLUMB_REQUIRE_MODEL(model_path, m.model);
  auto ref = read_trace_file(ref_path);
  ASSERT_TRUE(ref.ok()) << ref.status().message();
  const std::vector<int32_t>& tokens = ref->tokens.at(0);

  // End to end through the command line: plumb trace --tokens, then plumb diff.
  std::string ids;
  for (int32_t t : tokens) ids += (ids.empty() ? "" : ",") + std::to_string(t);
  const std::string out_path = test::temp_dir(std::string("trace-") + m.ref) + "/plumb.gguf";
  std::string out;
  ASSERT_EQ(test::run_plumb("trace -m '" + model_path + "' --tokens " + ids + " -o '" + out_path + "'", &out), 0)
      << out;
  auto report = diff_trace_files(out_path, ref_path, {});
  ASSERT_TRUE(report.ok()) << report.status().message();
  EXPECT_FALSE(report->diverged()) << report->verdict() << "\n" << format_table(*report);
  // Every tensor of prompt 0 the reference holds was compared (all taps, or the logits only).
  size_t ref_prompt0 = 0;
  for (const auto& t : ref->tensors) ref_prompt0 += t.name.prompt == 0 ? 1 : 0;
  EXPECT_EQ(report->taps.size(), ref_prompt0);
  EXPECT_EQ(ref_prompt0 > 1, m.traced);
  EXPECT_TRUE(report->only_in_a.empty() || !m.traced) << format_table(*report);
  EXPECT_EQ(test::run_plumb("diff '" + out_path + "' '" + ref_path + "'", &out), 0) << out;
}

INSTANTIATE_TEST_SUITE_P(RefModels, TraceAgainstReference, ::testing::ValuesIn(kModels),
                         [](const auto& info) {
                           std::string name = info.param.ref;
                           for (char& c : name) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                           return name;
                         });

// Text in, through the model's tokenizer: the same tokens as llama.cpp (the diff checks them)
// and the same numbers.
TEST(TraceFromText, MatchesTheReference) {
  PLUMB_REQUIRE_SHARED(ref_path, "ref/austen-21m-q4_k_m.gguf");
  PLUMB_REQUIRE_MODEL(model_path, "austen-21m-q4_k_m");
  const std::string out_path = test::temp_dir("trace-text") + "/plumb.gguf";
  std::string out;
  ASSERT_EQ(test::run_plumb("trace -m '" + model_path +
                                "' -p 'It is a truth universally acknowledged, that a single man' -o '" + out_path +
                                "' --taps 'blk.0.*,blk.7.out,logits'",
                            &out),
            0)
      << out;
  EXPECT_EQ(test::run_plumb("diff '" + out_path + "' '" + ref_path + "'", &out), 0) << out;
  EXPECT_NE(out.find("all 18 taps within thresholds"), std::string::npos) << out;  // 15 + out + logits + p0.logits
}

// The first tap computed with a Q4_K weight (the embedding lookup is not a matrix product and
// the planted fault leaves it alone).
std::string first_q4k_tap(const gguf::File& file, int64_t n_layer) {
  const std::pair<const char*, const char*> kTapWeights[] = {
      {"q", "attn_q"},         {"k", "attn_k"},     {"v", "attn_v"},      {"attn_proj", "attn_output"},
      {"ffn_gate", "ffn_gate"}, {"ffn_up", "ffn_up"}, {"ffn_out", "ffn_down"}};
  for (int64_t il = 0; il < n_layer; ++il) {
    for (const auto& [tap, weight] : kTapWeights) {
      const auto* t = file.find_tensor("blk." + std::to_string(il) + "." + weight + ".weight");
      if (t != nullptr && t->type == TensorType::Q4_K) return "blk." + std::to_string(il) + "." + tap;
    }
  }
  return "logits";
}

class PlantedFaults : public ::testing::TestWithParam<RefModel> {};

TEST_P(PlantedFaults, DiffNamesTheTapWhereTheBugIs) {
  const RefModel& m = GetParam();
  PLUMB_REQUIRE_SHARED(ref_path, std::string("ref/") + m.ref + ".gguf");
  PLUMB_REQUIRE_MODEL(model_path, m.model);
  auto ref = read_trace_file(ref_path);
  ASSERT_TRUE(ref.ok()) << ref.status().message();
  auto model = load_model(model_path);
  ASSERT_NE(model, nullptr);
  const std::vector<int32_t>& tokens = ref->tokens.at(0);
  const int last_layer = static_cast<int>(model->config().n_layer) - 1;

  struct Case {
    PlantedFault fault;
    int layer;
    std::string expected;
  };
  std::vector<Case> cases = {
      {PlantedFault::RopeNeoxPairs, 0, "blk.0.q_rope"},
      {PlantedFault::SoftmaxNoScale, 0, "blk.0.attn_out"},
      {PlantedFault::GqaOffByOne, 0, "blk.0.attn_out"},
      {PlantedFault::SkipResidual, 0, "blk.0.ffn_inp"},
      {PlantedFault::SkipResidual, 3, "blk.3.ffn_inp"},
      {PlantedFault::SkipResidual, last_layer, "blk." + std::to_string(last_layer) + ".ffn_inp"},
  };
  bool has_q4k = false;
  for (const auto& t : model->file().tensors()) has_q4k = has_q4k || t.type == TensorType::Q4_K;
  if (has_q4k) cases.push_back({PlantedFault::Q4KScalesSwapped, 0, first_q4k_tap(model->file(), last_layer + 1)});

  auto clean = run(*model, tokens);
  ASSERT_TRUE(clean.ok()) << clean.status().message();
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(fault_name(c.fault)) + " layer " + std::to_string(c.layer));
    auto broken = run(*model, tokens, c.fault, c.layer);
    ASSERT_TRUE(broken.ok()) << broken.status().message();
    EXPECT_EQ(first_divergence(diff_runs(*broken, "faulty", *clean, "clean", {})), c.expected);
    auto faulty_file = make_trace_writer(TraceContents{broken->tokens, broken->logits, broken->n_vocab,
                                                       broken->recorder.get(), {}});
    ASSERT_TRUE(faulty_file.ok()) << faulty_file.status().message();
    auto bytes = faulty_file->serialize();
    ASSERT_TRUE(bytes.ok());
    auto parsed = gguf::File::parse(bytes->data(), bytes->size(), "faulty");
    ASSERT_TRUE(parsed.ok());
    auto faulty = read_trace(**parsed);
    ASSERT_TRUE(faulty.ok());
    EXPECT_EQ(first_divergence(diff_traces(*faulty, *ref, {})), c.expected);
  }
}

constexpr RefModel kTracedModels[] = {kModels[0], kModels[3], kModels[5]};
INSTANTIATE_TEST_SUITE_P(RefModels, PlantedFaults, ::testing::ValuesIn(kTracedModels),
                         [](const auto& info) {
                           std::string name = info.param.ref;
                           for (char& c : name) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                           return name;
                         });

}  // namespace
}  // namespace plumb::trace
