// The trace recorder and writer, and plumb diff on real traces: llama.cpp's reference files
// against the float64 oracle (ref64.py --out) must pass with the default thresholds, and
// float64 traces with a planted bug (tests/tools/ref64_faults.py) must be caught at the tap
// where the bug happens.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "gguf/gguf.h"
#include "test_models.h"
#include "test_util.h"
#include "trace/diff.h"
#include "trace/recorder.h"
#include "model/run_trace.h"
#include "trace/trace_file.h"

namespace plumb::trace {
namespace {

TEST(TraceRecorder, SelectsByGlobAndAppendsBatches) {
  TraceRecorder rec("blk.0.*,logits");
  EXPECT_TRUE(rec.wants("blk.0.q"));
  EXPECT_TRUE(rec.wants("logits"));
  EXPECT_FALSE(rec.wants("blk.1.q"));
  EXPECT_FALSE(rec.wants("inp_embd"));
  const float first[6] = {1, 2, 3, 4, 5, 6};
  const float second[3] = {7, 8, 9};
  rec.tap("blk.0.q", first, 3, 2);
  rec.tap("blk.1.q", first, 3, 2);  // not wanted: dropped
  rec.tap("blk.0.q", second, 3, 1);
  ASSERT_EQ(rec.taps().size(), 1u);
  const auto* t = rec.find("blk.0.q");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->n_tokens, 3);
  EXPECT_EQ(t->data, (std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_TRUE(rec.status().ok());
  rec.tap("blk.0.q", first, 2, 3);
  EXPECT_FALSE(rec.status().ok());
  EXPECT_NE(rec.status().message().find("width 3, then with width 2"), std::string::npos);
}

TEST(TraceRecorder, WritesTheReferenceLayout) {
  TraceRecorder rec;
  const std::vector<float> embd = {1, 2, 3, 4, 5, 6, 7, 8};  // [2 tokens][4]
  const std::vector<float> q = {0.5f, -1, 2, 3, 4, 5};       // [2 tokens][3]
  rec.tap("inp_embd", embd.data(), 4, 2);
  rec.tap("blk.0.q", q.data(), 3, 2);
  TraceContents c;
  c.tokens = {1, 450};
  c.logits = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f};  // [2 tokens][3 vocab]
  c.n_vocab = 3;
  c.recorder = &rec;
  c.metadata.emplace_back("trace.model", gguf::Value::make_string("m.gguf"));
  auto writer = make_trace_writer(c);
  ASSERT_TRUE(writer.ok()) << writer.status().message();
  auto bytes = writer->serialize();
  ASSERT_TRUE(bytes.ok()) << bytes.status().message();
  auto file = gguf::File::parse(bytes->data(), bytes->size(), "trace");
  ASSERT_TRUE(file.ok()) << file.status().message();
  const auto* tokens = (*file)->find_tensor("p0.tokens");
  ASSERT_NE(tokens, nullptr);
  EXPECT_EQ(tokens->type, TensorType::I32);
  const auto* logits = (*file)->find_tensor("p0.logits");
  ASSERT_NE(logits, nullptr);
  EXPECT_EQ(logits->shape_string(), "[3, 2]");
  const auto* tq = (*file)->find_tensor("p0.trace.blk.0.q");
  ASSERT_NE(tq, nullptr);
  EXPECT_EQ(tq->type, TensorType::F32);
  EXPECT_EQ(tq->shape_string(), "[3, 2]");
  EXPECT_EQ((*file)->get_string("trace.model").value(), "m.gguf");

  auto trace = read_trace(**file);
  ASSERT_TRUE(trace.ok()) << trace.status().message();
  EXPECT_EQ(trace->tokens.at(0), (std::vector<int32_t>{1, 450}));
  ASSERT_EQ(trace->tensors.size(), 3u);
  EXPECT_EQ(trace->tensors[0].name.display, "inp_embd");
  EXPECT_EQ(trace->tensors[1].name.display, "blk.0.q");
  EXPECT_EQ(trace->tensors[1].data, q);
  EXPECT_EQ(trace->tensors[2].name.display, "p0.logits");

  // A tap that does not cover every token is refused.
  const float one[3] = {1, 2, 3};
  rec.tap("blk.0.k", one, 3, 1);
  auto bad = make_trace_writer(c);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("'blk.0.k' covers 1 tokens, the prompt has 2"), std::string::npos);
}

using test::run_command;

bool have_python_gguf() {
  std::string out;
  return run_command("python3 -c 'import numpy, gguf'", &out) == 0;
}

std::string first_line(const std::string& path) {
  std::ifstream f(path);
  std::string line;
  std::getline(f, line);
  return line;
}

#define PLUMB_REQUIRE_PYTHON_GGUF()                                                   \
  if (!have_python_gguf())                                                            \
  GTEST_SKIP() << "python3 with numpy and gguf (gguf-py) is needed to run ref64.py; " \
                  "pip install numpy gguf"

// Without a CUDA backend plumb check compares nothing and says so, with its own exit code.
TEST(PlumbCheck, SaysWhenThereIsNothingToCompare) {
  std::string why;
  if (cuda_available(&why)) GTEST_SKIP() << "this machine can run CUDA: plumb check really compares here";
  std::string out;
  EXPECT_EQ(test::run_plumb("check -m model-not-needed.gguf", &out), 77) << out;
  EXPECT_NE(out.find("nothing to compare"), std::string::npos) << out;
  EXPECT_NE(out.find(why), std::string::npos) << out;
  EXPECT_EQ(test::run_plumb("check", &out), 2) << out;  // -m is required
}

class LlamaCppVsFloat64 : public ::testing::TestWithParam<const char*> {};

// llama.cpp is a correct engine: its reference file against the float64 oracle on the same
// tokens must be within the default thresholds at every tap.
TEST_P(LlamaCppVsFloat64, PassesDefaultThresholds) {
  const std::string type = GetParam();
  const std::string model_name = "austen-21m-" + type;
  PLUMB_REQUIRE_SHARED(ref, "ref/" + model_name + ".gguf");
  std::string why;
  const std::string model = test::austen_model(type, &why);
  if (model.empty()) GTEST_SKIP() << why;
  PLUMB_REQUIRE_SHARED(tokens, "ref64/austen-21m.tokens.txt");
  PLUMB_REQUIRE_SHARED(ref64, "tools/ref64.py");
  PLUMB_REQUIRE_PYTHON_GGUF();
  const std::string out_path = test::temp_dir("ref64-" + model_name) + "/exact.gguf";
  // The three reference prompts (prompt 0 traced); the held-out fourth line is not needed.
  std::string out;
  ASSERT_EQ(run_command("head -n 3 '" + tokens + "' > '" + out_path + ".tokens' && python3 '" + ref64 + "' -m '" +
                          model + "' --tokens-file '" + out_path + ".tokens' --out '" + out_path + "' > /dev/null",
                      &out),
            0)
      << out;
  auto r = diff_trace_files(ref, out_path, {});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_FALSE(r->diverged()) << r->verdict() << "\n" << format_table(*r);
  EXPECT_EQ(r->prompts, (std::vector<int>{0, 1, 2}));
  EXPECT_GE(r->taps.size(), 3u);  // at least the logits of the three prompts
  EXPECT_EQ(test::run_plumb("diff '" + ref + "' '" + out_path + "'", &out), 0) << out;
}

INSTANTIATE_TEST_SUITE_P(Austen, LlamaCppVsFloat64,
                         ::testing::Values("f16", "q8_0", "q6_k", "q4_k_m", "q4_0"));

// Float64 traces of prompt 0 with one planted bug each: the diff against llama.cpp's trace and
// against the clean float64 trace names the tap where the bug is.
TEST(PlantedFaultsInFloat64, DiffNamesTheBrokenTap) {
  PLUMB_REQUIRE_SHARED(ref, "ref/austen-21m-q4_k_m.gguf");
  PLUMB_REQUIRE_SHARED(model, "models/austen-21m-q4_k_m.gguf");
  PLUMB_REQUIRE_SHARED(tokens, "ref64/austen-21m.tokens.txt");
  PLUMB_REQUIRE_SHARED(ref64, "tools/ref64.py");
  PLUMB_REQUIRE_PYTHON_GGUF();
  const std::string dir = test::temp_dir("ref64-faults");
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"neox", "blk.0.q_rope"},   {"noscale", "blk.0.attn_out"}, {"gqa", "blk.0.attn_out"},
      {"skip3", "blk.3.ffn_inp"}, {"q4k", "inp_embd"},  // token_embd is Q4_K in this file
  };
  std::string faults = "none";
  for (const auto& [fault, tap] : expected) faults += " " + fault;
  std::string out;
  ASSERT_EQ(run_command("python3 '" + std::string(PLUMB_SOURCE_DIR) + "/tests/tools/ref64_faults.py' '" +
                          test::shared_dir() + "' '" + model + "' '" + first_line(tokens) + "' '" + dir + "' " +
                          faults,
                      &out),
            0)
      << out;
  auto clean = diff_trace_files(dir + "/none.gguf", ref, {});
  ASSERT_TRUE(clean.ok()) << clean.status().message();
  EXPECT_FALSE(clean->diverged()) << clean->verdict();
  for (const auto& [fault, tap] : expected) {
    for (const std::string& against : {ref, dir + "/none.gguf"}) {
      auto r = diff_trace_files(dir + "/" + fault + ".gguf", against, {});
      ASSERT_TRUE(r.ok()) << r.status().message();
      ASSERT_TRUE(r->diverged()) << fault << " vs " << against;
      EXPECT_EQ(r->taps[static_cast<size_t>(r->divergence)].name.display, tap)
          << fault << " vs " << against << ": " << r->verdict();
    }
  }
}

}  // namespace
}  // namespace plumb::trace
