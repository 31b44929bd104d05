// SessionGroup: sequences stepped together in one forward pass get, bit for bit, the logits each
// gets alone (prompt chunks and generated tokens alike), whatever the other sequences of the
// pass are doing; and bad inputs are errors that change nothing.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "model/model.h"
#include "model_ref.h"
#include "test_models.h"
#include "test_util.h"

namespace plumb::test {
namespace {

// Prompt chunks of 5 tokens (contract S, and a 1-4 token tail); 10 takes a CUDA run's prompt
// tokens past the matvec's 8 into cuBLAS.
constexpr size_t kChunk = 5;
constexpr size_t kLongChunk = 10;

struct Script {
  std::vector<int32_t> prompt;
  int n_generate = 0;
  int start_step = 0;  // the group step at which it joins
};

// Greedy: the first largest logit.
int32_t argmax(const float* row, int64_t n) { return static_cast<int32_t>(std::max_element(row, row + n) - row); }

// Runs the scripts in one group, each from its start_step (start_step < 0: only script `only`,
// from step 0); returns every script's logits of its last prompt token and of every generated
// token (greedy), and the most sequences that decoded in one step.
struct GroupRun {
  std::vector<std::vector<std::vector<float>>> rows;
  int max_together = 0;
};

GroupRun run_group(const Model& model, const std::vector<Script>& scripts, int only, size_t chunk) {
  const int64_t n_vocab = model.config().n_vocab;
  SessionOptions o;
  o.n_ctx = 256;
  o.backend = test_backend();
  GroupRun out;
  out.rows.resize(scripts.size());
  auto group = SessionGroup::create(model, o, static_cast<int>(scripts.size()), 64);
  EXPECT_TRUE(group.ok()) << group.status().message();
  if (!group.ok()) return out;
  SessionGroup& g = **group;
  struct State {
    size_t fed = 0;
    int generated = 0;
    int32_t last = -1;
  };
  std::vector<State> st(scripts.size());
  for (int step = 0; step < 100; ++step) {
    std::vector<SessionGroup::Input> inputs;
    std::vector<size_t> who;
    for (size_t i = 0; i < scripts.size(); ++i) {
      const Script& s = scripts[i];
      if (only >= 0 ? static_cast<int>(i) != only : step < s.start_step) continue;
      if (st[i].generated >= s.n_generate) continue;
      if (st[i].fed < s.prompt.size()) {
        const size_t n = std::min(chunk, s.prompt.size() - st[i].fed);
        inputs.push_back({static_cast<int>(i), std::span(s.prompt).subspan(st[i].fed, n), false,
                          st[i].fed + n == s.prompt.size()});
      } else {
        inputs.push_back({static_cast<int>(i), std::span(&st[i].last, 1), true, true});
      }
      who.push_back(i);
    }
    if (inputs.empty()) break;
    EXPECT_TRUE(g.step(inputs).ok());
    out.max_together = std::max<int>(out.max_together, static_cast<int>(std::count_if(
        inputs.begin(), inputs.end(), [](const SessionGroup::Input& in) { return in.generated; })));
    for (size_t k = 0; k < inputs.size(); ++k) {
      const size_t i = who[k];
      if (!inputs[k].generated) {
        st[i].fed += inputs[k].tokens.size();
        if (st[i].fed < scripts[i].prompt.size()) {
          EXPECT_EQ(g.logits(k), nullptr);
          continue;
        }
      }
      const float* row = g.logits(k);
      EXPECT_NE(row, nullptr);
      if (row == nullptr) return out;
      out.rows[i].emplace_back(row, row + n_vocab);
      st[i].last = argmax(row, n_vocab);
      ++st[i].generated;
    }
  }
  return out;
}

void expect_group_matches_alone(const Model& model, size_t chunk = kChunk) {
  const int64_t n_vocab = model.config().n_vocab;
  const std::vector<Script> scripts = {
      {{1, 739, 338, 263, 8760, 21103, 635, 24084, 3192, 29892, 393, 263}, 9, 0},  // chunks of 5, 5, 2
      {{1, 450, 4996, 17354, 1701, 29916, 432, 17204}, 12, 0},                    // 5, 3
      {{1, 306, 763}, 7, 2},                                                      // 3: one short chunk
      {{1, 1576, 338, 263, 1781, 2462, 322, 278, 6575, 338, 12003, 29889, 13, 450, 767, 29892, 1058}, 6, 1},
      {{1, 739}, 10, 4},
      {{1, 29871, 13, 450, 4996}, 8, 3},  // exactly one chunk
  };
  const GroupRun together = run_group(model, scripts, -1, chunk);
  EXPECT_GE(together.max_together, 4) << "the steps should decode several sequences at once";
  for (size_t i = 0; i < scripts.size(); ++i) {
    const GroupRun alone = run_group(model, scripts, static_cast<int>(i), chunk);
    EXPECT_EQ(alone.max_together, 1);
    ASSERT_EQ(together.rows[i].size(), static_cast<size_t>(scripts[i].n_generate)) << "sequence " << i;
    ASSERT_EQ(alone.rows[i].size(), together.rows[i].size()) << "sequence " << i;
    for (size_t t = 0; t < alone.rows[i].size(); ++t) {
      EXPECT_EQ(std::memcmp(alone.rows[i][t].data(), together.rows[i][t].data(), n_vocab * sizeof(float)), 0)
          << "sequence " << i << ", generated token " << t;
    }
  }
}

TEST(SessionGroup, EachSequenceGetsTheBitsItGetsAloneAustenQ4KM) {
  const std::string path = shared_path("models/austen-21m-q4_k_m.gguf");
  if (path.empty()) GTEST_SKIP() << "missing shared data: models/austen-21m-q4_k_m.gguf";
  auto m = Model::load(path, without_tokenizer());
  ASSERT_TRUE(m.ok()) << m.status().message();
  expect_group_matches_alone(**m);
}

TEST(SessionGroup, EachSequenceGetsTheBitsItGetsAloneWithChunksOverEight) {
  const std::string path = shared_path("models/austen-21m-q4_k_m.gguf");
  if (path.empty()) GTEST_SKIP() << "missing shared data: models/austen-21m-q4_k_m.gguf";
  auto m = Model::load(path, without_tokenizer());
  ASSERT_TRUE(m.ok()) << m.status().message();
  expect_group_matches_alone(**m, kLongChunk);
}

TEST(SessionGroup, EachSequenceGetsTheBitsItGetsAloneSmolLM2) {
  PLUMB_REQUIRE_SMOLLM2(path);
  auto m = Model::load(path, without_tokenizer());
  ASSERT_TRUE(m.ok()) << m.status().message();
  expect_group_matches_alone(**m);
}

TEST(SessionGroup, BadInputsAreErrorsThatChangeNothing) {
  const std::string path = shared_path("models/austen-21m-q4_k_m.gguf");
  if (path.empty()) GTEST_SKIP() << "missing shared data: models/austen-21m-q4_k_m.gguf";
  auto m = Model::load(path, without_tokenizer());
  ASSERT_TRUE(m.ok()) << m.status().message();
  SessionOptions o;
  o.n_ctx = 8;
  auto group = SessionGroup::create(**m, o, 2, 16);
  ASSERT_TRUE(group.ok());
  SessionGroup& g = **group;
  const std::vector<int32_t> ok = {1, 739, 338};
  const std::vector<int32_t> bad_id = {1, -5};
  const std::vector<int32_t> too_long(9, 1);
  const std::vector<int32_t> too_many(8, 1);
  using In = SessionGroup::Input;
  EXPECT_FALSE(g.check(In{2, ok, false, true}).ok());        // no sequence 2
  EXPECT_FALSE(g.check(In{0, bad_id, false, true}).ok());    // outside the vocabulary
  EXPECT_FALSE(g.check(In{0, too_long, false, true}).ok());  // past the context
  EXPECT_FALSE(g.check(In{0, ok, true, true}).ok());         // three "generated" tokens
  const In both[] = {In{0, ok, false, true}, In{0, ok, false, true}};
  EXPECT_FALSE(g.step(both).ok());  // one sequence twice
  const In over[] = {In{0, std::span(too_many).subspan(0, 8), false, true},
                     In{1, std::span(too_many).subspan(0, 8), false, true}, In{1, ok, false, true}};
  EXPECT_FALSE(g.step(over).ok());  // 19 tokens in a group made for 16 (and sequence 1 twice)
  auto small = SessionGroup::create(**m, o, 2, 4);
  ASSERT_TRUE(small.ok());
  const In six[] = {In{0, ok, false, true}, In{1, ok, false, true}};
  EXPECT_FALSE((*small)->step(six).ok());  // 6 tokens in a group made for 4
  EXPECT_EQ(g.n_past(0), 0);
  EXPECT_EQ(g.n_past(1), 0);
  const In one[] = {In{1, ok, false, true}};
  ASSERT_TRUE(g.step(one).ok());
  EXPECT_EQ(g.n_past(1), 3);
  EXPECT_NE(g.logits(0), nullptr);
  g.truncate(1, 0);
  EXPECT_EQ(g.n_past(1), 0);
}

}  // namespace
}  // namespace plumb::test
