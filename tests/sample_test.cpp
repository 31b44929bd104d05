#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <vector>

#include "sample/sampler.h"

namespace plumb {
namespace {

std::vector<TokenId> ids_of(const Candidates& c) {
  std::vector<TokenId> ids;
  for (const Candidate& x : c.items) ids.push_back(x.id);
  return ids;
}

// Logits whose softmax is exactly `probs` (up to rounding).
std::vector<float> logits_for(const std::vector<double>& probs) {
  std::vector<float> logits;
  for (double p : probs) logits.push_back(static_cast<float>(std::log(p)));
  return logits;
}

TEST(Sample, GreedyPicksTheFirstHighestLogit) {
  SamplingParams params;
  params.temperature = 0.0f;
  Sampler sampler(params);
  const std::vector<float> logits = {0.5f, 3.0f, -1.0f, 3.0f, 2.9f};
  EXPECT_EQ(sampler.sample(logits), 1);
  EXPECT_EQ(sampler.sample(logits), 1);  // no penalty by default: same answer again
}

TEST(Sample, TopKKeepsTheKBestSorted) {
  Candidates c = Candidates::from_logits(std::vector<float>{1.0f, 5.0f, 3.0f, 4.0f, 2.0f});
  apply_top_k(c, 3);
  EXPECT_EQ(ids_of(c), (std::vector<TokenId>{1, 3, 2}));
  EXPECT_TRUE(c.sorted);
  apply_top_k(c, 0);  // off
  EXPECT_EQ(c.items.size(), 3u);
  apply_top_k(c, 10);  // more than there are
  EXPECT_EQ(c.items.size(), 3u);
}

TEST(Sample, TopPKeepsTheSmallestPrefixReachingP) {
  // probabilities 0.5, 0.3, 0.15, 0.05 (token ids shuffled)
  const std::vector<float> logits = logits_for({0.15, 0.5, 0.05, 0.3});
  Candidates c = Candidates::from_logits(logits);
  apply_top_p(c, 0.79f, 0);
  EXPECT_EQ(ids_of(c), (std::vector<TokenId>{1, 3}));
  c = Candidates::from_logits(logits);
  apply_top_p(c, 0.81f, 0);
  EXPECT_EQ(ids_of(c), (std::vector<TokenId>{1, 3, 0}));
  c = Candidates::from_logits(logits);
  apply_top_p(c, 0.4f, 0);
  EXPECT_EQ(ids_of(c), (std::vector<TokenId>{1}));
  c = Candidates::from_logits(logits);
  apply_top_p(c, 0.4f, 3);  // min_keep
  EXPECT_EQ(ids_of(c), (std::vector<TokenId>{1, 3, 0}));
  c = Candidates::from_logits(logits);
  apply_top_p(c, 1.0f, 0);  // off
  EXPECT_EQ(c.items.size(), 4u);
}

TEST(Sample, MinPKeepsTokensWithinAFactorOfTheBest) {
  // probabilities 0.5, 0.3, 0.15, 0.05: p_max = 0.5
  const std::vector<float> logits = logits_for({0.15, 0.5, 0.05, 0.3});
  Candidates c = Candidates::from_logits(logits);
  apply_min_p(c, 0.2f, 0);                                // threshold 0.1: drops 0.05
  EXPECT_EQ(ids_of(c), (std::vector<TokenId>{0, 1, 3}));  // order kept, unsorted
  c = Candidates::from_logits(logits);
  apply_min_p(c, 0.5f, 0);  // threshold 0.25
  EXPECT_EQ(ids_of(c), (std::vector<TokenId>{1, 3}));
  c = Candidates::from_logits(logits);
  apply_min_p(c, 0.9f, 2);  // only the best passes, min_keep asks for two
  EXPECT_EQ(ids_of(c), (std::vector<TokenId>{1, 3}));
  c = Candidates::from_logits(logits);
  apply_min_p(c, 0.0f, 0);  // off
  EXPECT_EQ(c.items.size(), 4u);
}

TEST(Sample, TemperatureScalesLogitsAndZeroKeepsTheBest) {
  Candidates c = Candidates::from_logits(std::vector<float>{1.0f, -2.0f, 4.0f});
  apply_temperature(c, 0.5f);
  EXPECT_FLOAT_EQ(c.items[0].logit, 2.0f);
  EXPECT_FLOAT_EQ(c.items[1].logit, -4.0f);
  EXPECT_FLOAT_EQ(c.items[2].logit, 8.0f);
  apply_temperature(c, 0.0f);
  EXPECT_EQ(ids_of(c), (std::vector<TokenId>{2}));
}

TEST(Sample, SoftmaxSumsToOne) {
  Candidates c = Candidates::from_logits(std::vector<float>{1000.0f, 999.0f, -1000.0f});
  softmax(c);
  EXPECT_NEAR(c.items[0].p + c.items[1].p + c.items[2].p, 1.0, 1e-6);
  EXPECT_NEAR(c.items[0].p / c.items[1].p, std::exp(1.0), 1e-4);
  EXPECT_EQ(c.items[2].p, 0.0f);
}

TEST(Sample, PenaltiesFollowLlamaCpp) {
  RecentTokens recent(3);
  for (TokenId id : {7, 1, 1, 2}) recent.push(id);  // window of 3: 1, 1, 2 (7 fell out)
  EXPECT_EQ(recent.count(7), 0);
  EXPECT_EQ(recent.count(1), 2);
  EXPECT_EQ(recent.count(2), 1);

  Candidates c =
      Candidates::from_logits(std::vector<float>{1.0f, 2.0f, -2.0f, 3.0f, 4.0f, 5.0f, 6.0f, 7.0f});
  apply_penalties(c, recent, 2.0f, 0.0f, 0.0f);
  EXPECT_FLOAT_EQ(c.items[1].logit, 1.0f);   // positive: divided
  EXPECT_FLOAT_EQ(c.items[2].logit, -4.0f);  // negative: multiplied
  EXPECT_FLOAT_EQ(c.items[7].logit, 7.0f);   // outside the window: untouched
  EXPECT_FLOAT_EQ(c.items[0].logit, 1.0f);

  c = Candidates::from_logits(std::vector<float>{1.0f, 2.0f, -2.0f});
  apply_penalties(c, recent, 1.0f, 0.5f, 0.25f);
  EXPECT_FLOAT_EQ(c.items[1].logit, 2.0f - 2 * 0.5f - 0.25f);   // seen twice
  EXPECT_FLOAT_EQ(c.items[2].logit, -2.0f - 1 * 0.5f - 0.25f);  // seen once
  EXPECT_FLOAT_EQ(c.items[0].logit, 1.0f);
}

TEST(Sample, RepeatPenaltyChangesTheGreedyChoice) {
  SamplingParams params;
  params.temperature = 0.0f;
  params.repeat_penalty = 2.0f;
  params.repeat_last_n = 4;
  Sampler sampler(params);
  const std::vector<float> logits = {3.0f, 2.0f, 0.0f};
  EXPECT_EQ(sampler.sample(logits), 0);  // 0 now in the window: 3/2 < 2
  EXPECT_EQ(sampler.sample(logits), 1);  // both in the window: 1.5 vs 1
  EXPECT_EQ(sampler.sample(logits), 0);
  sampler.reset();
  EXPECT_EQ(sampler.sample(logits), 0);
}

TEST(Sample, PromptTokensCountForPenalties) {
  SamplingParams params;
  params.temperature = 0.0f;
  params.presence_penalty = 10.0f;
  Sampler sampler(params);
  sampler.accept(0);
  EXPECT_EQ(sampler.sample(std::vector<float>{3.0f, 2.0f}), 1);
}

TEST(Sample, SameSeedSameTokens) {
  std::vector<float> logits(200);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = std::sin(static_cast<float>(i)) * 3.0f;
  SamplingParams params;
  params.seed = 1234;
  params.top_k = 0;
  params.top_p = 1.0f;
  params.min_p = 0.0f;
  params.temperature = 1.5f;
  auto run = [&](const SamplingParams& p) {
    Sampler sampler(p);
    std::vector<TokenId> out;
    for (int i = 0; i < 50; ++i) out.push_back(sampler.sample(logits));
    return out;
  };
  const std::vector<TokenId> a = run(params);
  EXPECT_EQ(a, run(params));
  EXPECT_EQ(Sampler(params).seed(), 1234u);
  params.seed = 1235;
  EXPECT_NE(a, run(params));
  // A flat-ish distribution over 200 tokens: 50 draws are not all the same token.
  std::map<TokenId, int> seen;
  for (TokenId id : a) ++seen[id];
  EXPECT_GT(seen.size(), 5u);
}

TEST(Sample, DrawFollowsTheProbabilities) {
  // p = 0.7 / 0.2 / 0.1: frequencies over many draws.
  const std::vector<float> logits = logits_for({0.7, 0.2, 0.1});
  std::mt19937 rng(42);
  int counts[3] = {0, 0, 0};
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    Candidates c = Candidates::from_logits(logits);
    ++counts[c.items[draw(c, rng)].id];
  }
  EXPECT_NEAR(counts[0] / double(n), 0.7, 0.02);
  EXPECT_NEAR(counts[1] / double(n), 0.2, 0.02);
  EXPECT_NEAR(counts[2] / double(n), 0.1, 0.02);
}

TEST(Sample, DefaultChainOnlyDrawsFromSurvivors) {
  // Defaults: top-k 40, top-p 0.95, min-p 0.05. With one dominant token (p ~ 0.9) and many
  // small ones below 5% of it, min-p leaves only tokens within a factor 20 of the best.
  std::vector<float> logits(100, 0.0f);
  logits[17] = 10.0f;
  logits[3] = 8.0f;  // e^-2 = 0.135 of the best: survives min-p
  SamplingParams params;
  params.seed = 7;
  Sampler sampler(params);
  for (int i = 0; i < 200; ++i) {
    const TokenId id = sampler.sample(logits);
    EXPECT_TRUE(id == 17 || id == 3) << id;
  }
}

}  // namespace
}  // namespace plumb
