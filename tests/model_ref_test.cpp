// Acceptance of the forward pass against llama.cpp's reference outputs (../shared/ref):
// prompt tokens, arg-max wherever the reference is confident, greedy continuations (free and
// teacher-forced), pooled logits NMSE. Tolerances: ../shared/ref/README.md.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "model/model.h"
#include "model_ref.h"
#include "test_models.h"
#include "test_util.h"

namespace plumb::test {
namespace {

struct RefCase {
  const char* name;
  float tau;          // reference margin above which the arg-max must agree
  double nmse_bound;  // pooled logits NMSE against the reference file
};

void check_against_reference(const std::string& model_path, const std::string& ref_path, const RefCase& rc) {
  auto model = Model::load(model_path);
  ASSERT_TRUE(model.ok()) << model.status().message();
  const Model& m = **model;
  const int64_t n_vocab = m.config().n_vocab;
  const std::vector<RefPrompt> prompts = read_ref_prompts(ref_path, n_vocab);
  ASSERT_FALSE(prompts.empty()) << ref_path;

  LogitsAgreement prompt_agreement;
  for (size_t k = 0; k < prompts.size(); ++k) {
    const RefPrompt& p = prompts[k];
    const std::string where = std::string(rc.name) + " p" + std::to_string(k);
    EXPECT_EQ(m.tokenizer().encode(p.text, true, false), p.tokens) << where << ": prompt tokens";

    const std::vector<float> logits = plumb_logits(m, p.tokens);
    ASSERT_EQ(logits.size(), p.logits.size()) << where;
    for (size_t t = 0; t < p.tokens.size(); ++t) {
      prompt_agreement.add(logits.data() + t * n_vocab, p.logits.data() + t * n_vocab, n_vocab, rc.tau,
                           where + " position " + std::to_string(t));
    }

    // Greedy continuation, token by token, up to the first near-tie of the reference.
    SessionOptions opts;
    opts.backend = test_backend();
    auto session = Session::create(m, opts);
    ASSERT_TRUE(session.ok()) << session.status().message();
    Session& s = **session;
    ASSERT_TRUE(s.decode(p.tokens, false).ok());
    for (size_t j = 0; j < p.greedy.size() && p.greedy_margin[j] >= rc.tau; ++j) {
      const int32_t next = static_cast<int32_t>(argmax(s.logits(0), n_vocab));
      ASSERT_EQ(next, p.greedy[j]) << where << ": greedy step " << j;
      const int32_t tok[1] = {next};
      ASSERT_TRUE(s.decode(tok, false).ok());
    }

    // Teacher-forced: prompt + the reference's greedy tokens in one batch.
    std::vector<int32_t> forced = p.tokens;
    forced.insert(forced.end(), p.greedy.begin(), p.greedy.end());
    if (!p.greedy.empty()) forced.pop_back();
    const std::vector<float> forced_logits = plumb_logits(m, forced);
    ASSERT_EQ(forced_logits.size(), forced.size() * static_cast<size_t>(n_vocab));
    for (size_t j = 0; j < p.greedy.size(); ++j) {
      if (p.greedy_margin[j] <= rc.tau) continue;
      const size_t row = p.tokens.size() - 1 + j;
      EXPECT_EQ(argmax(forced_logits.data() + row * n_vocab, n_vocab), p.greedy[j])
          << where << ": teacher-forced step " << j << " (reference margin " << p.greedy_margin[j] << ")";
    }
  }
  EXPECT_EQ(prompt_agreement.confident_mismatch, 0) << prompt_agreement.first_mismatch;
  EXPECT_LE(prompt_agreement.nmse(), rc.nmse_bound) << rc.name << ": pooled logits NMSE vs llama.cpp";
  std::printf("[ model ] %s (%s) vs llama.cpp: NMSE %.3g (bound %.3g), top-1 %lld/%lld, confident %lld\n", rc.name,
              test_backend().c_str(), prompt_agreement.nmse(), rc.nmse_bound, (long long)prompt_agreement.top1_equal,
              (long long)prompt_agreement.positions, (long long)prompt_agreement.confident);
}

void check_austen(const RefCase& rc) {
  PLUMB_REQUIRE_SHARED(ref, std::string("ref/austen-21m-") + rc.name + ".gguf");
  PLUMB_REQUIRE_AUSTEN(model, rc.name);
  check_against_reference(model, ref, rc);
}

TEST(ModelRef, Austen21mF16) { check_austen({"f16", 0.01f, 1e-6}); }
TEST(ModelRef, Austen21mQ8_0) { check_austen({"q8_0", 0.15f, 3e-5}); }
TEST(ModelRef, Austen21mQ6K) { check_austen({"q6_k", 0.30f, 8e-5}); }
TEST(ModelRef, Austen21mQ4KM) { check_austen({"q4_k_m", 0.30f, 9e-5}); }
TEST(ModelRef, Austen21mQ4_0) { check_austen({"q4_0", 0.25f, 4.5e-5}); }

TEST(ModelRef, SmolLM2Q4_1) {
  PLUMB_REQUIRE_SMOLLM2(model);
  PLUMB_REQUIRE_SHARED(ref, "ref/smollm2-135m-q4_1.gguf");
  check_against_reference(model, ref, {"smollm2-135m-q4_1", 0.90f, 3.3e-3});
}

}  // namespace
}  // namespace plumb::test
