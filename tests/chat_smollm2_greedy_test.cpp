// SmolLM2-135M-Instruct's greedy chat replies against llama.cpp's (chat-smollm2.json): equal up
// to the first step whose margin is below tau = 0.90, and teacher-forced arg-max equal at every
// step whose margin exceeds tau. Skipped, saying why, when the model cannot be fetched.
#include <gtest/gtest.h>

#include "chat_smollm2_util.h"
#include "model/model.h"
#include "reference_file.h"
#include "sample/generate.h"

namespace plumb {
namespace {

constexpr float kTau = 0.90f;  // ../shared/ref/README.md, smollm2-135m-q4_1

struct Loaded {
  std::unique_ptr<Model> model;
  std::unique_ptr<Session> session;
};

// Loads the model at `path` with a 512-token context on 2 threads; empty with *why set when it
// fails.
Loaded load_smollm2(const std::string& path, std::string* why) {
  Loaded out;
  Result<std::unique_ptr<Model>> model = Model::load(path);
  if (!model.ok()) {
    *why = model.status().message();
    return out;
  }
  SessionOptions options;
  options.n_ctx = 512;
  options.n_threads = 1;  // ctest runs tests side by side: one thread each
  Result<std::unique_ptr<Session>> session = Session::create(**model, options);
  if (!session.ok()) {
    *why = session.status().message();
    return out;
  }
  out.model = std::move(*model);
  out.session = std::move(*session);
  return out;
}

TEST(ChatSmolLM2, GreedyReplyMatchesLlamaCppUpToTheFirstNearTie) {
  PLUMB_REQUIRE_SHARED(ref_path, "ref/chat-smollm2.json");
  PLUMB_REQUIRE_SMOLLM2(model_path);
  std::string why;
  Loaded m = load_smollm2(model_path, &why);
  ASSERT_TRUE(m.session) << why;
  const Result<json::Value> ref_doc = json::Value::parse_file(ref_path);
  ASSERT_TRUE(ref_doc.ok()) << ref_doc.status().message();
  const json::Value& ref = *ref_doc;
  int conversation = 0;
  for (const json::Value& c : ref["conversations"].items()) {
    SCOPED_TRACE("conversation " + std::to_string(conversation++));
    const std::vector<int32_t> prompt = test::json_ints(c["prompt_tokens"]);
    const std::vector<int32_t> greedy = test::json_ints(c["greedy_tokens"]);
    const size_t n = test::steps_above_margin(test::json_floats(c["greedy_margin"]), kTau);
    if (n == 0) continue;  // the first step is already a near-tie: nothing is required
    SamplingParams params;
    params.temperature = 0.0f;
    Sampler sampler(params);
    Generator generator(*m.session, m.model->tokenizer(), sampler);
    generator.clear();
    GenerateOptions options;
    options.n_predict = static_cast<int>(n);
    GenerateResult result;
    ASSERT_TRUE(generator.generate(prompt, options, nullptr, &result).ok());
    ASSERT_GE(result.tokens.size(), n);
    EXPECT_EQ(std::vector<int32_t>(result.tokens.begin(),
                                   result.tokens.begin() + static_cast<ptrdiff_t>(n)),
              std::vector<int32_t>(greedy.begin(), greedy.begin() + static_cast<ptrdiff_t>(n)))
        << "first " << n << " greedy steps (margin >= " << kTau << ")";
  }
}

TEST(ChatSmolLM2, TeacherForcedArgmaxMatchesWhereTheMarginIsClear) {
  PLUMB_REQUIRE_SHARED(ref_path, "ref/chat-smollm2.json");
  PLUMB_REQUIRE_SMOLLM2(model_path);
  std::string why;
  Loaded m = load_smollm2(model_path, &why);
  ASSERT_TRUE(m.session) << why;
  const Result<json::Value> ref_doc = json::Value::parse_file(ref_path);
  ASSERT_TRUE(ref_doc.ok()) << ref_doc.status().message();
  const json::Value& ref = *ref_doc;
  const int64_t n_vocab = m.model->config().n_vocab;
  for (const json::Value& c : ref["conversations"].items()) {
    const std::vector<int32_t> prompt = test::json_ints(c["prompt_tokens"]);
    const std::vector<int32_t> greedy = test::json_ints(c["greedy_tokens"]);
    const std::vector<float> margins = test::json_floats(c["greedy_margin"]);
    // prompt + the reference reply in one batch: row prompt.size() - 1 + s predicts step s.
    std::vector<int32_t> all = prompt;
    all.insert(all.end(), greedy.begin(), greedy.end() - 1);
    m.session->truncate(0);
    ASSERT_TRUE(m.session->decode(all, /*all_logits=*/true).ok());
    ASSERT_EQ(m.session->n_logit_rows(), static_cast<int64_t>(all.size()));
    int checked = 0;
    for (size_t step = 0; step < greedy.size(); ++step) {
      if (margins[step] < kTau) continue;
      const float* row = m.session->logits(static_cast<int64_t>(prompt.size() - 1 + step));
      int32_t best = 0;
      for (int64_t v = 1; v < n_vocab; ++v) {
        if (row[v] > row[best]) best = static_cast<int32_t>(v);
      }
      EXPECT_EQ(best, greedy[step]) << "step " << step << ", margin " << margins[step];
      ++checked;
    }
    EXPECT_GT(checked, 0);
  }
}

}  // namespace
}  // namespace plumb
