// Token sampling with llama.cpp's default chain and default values:
//
//   penalties (last repeat_last_n tokens) -> top-k -> top-p -> min-p -> temperature -> draw
//
// Each step is a plain function over a candidate list so tests can check it on hand-made
// logits; Sampler strings them together and owns the only state: the random generator
// (std::mt19937 seeded by `seed`, so the same seed gives the same tokens) and the window of
// recent tokens the penalties look at. temperature <= 0 keeps only the best candidate, so
// `--temp 0` is greedy decoding (after penalties).
#pragma once

#include <cstdint>
#include <deque>
#include <random>
#include <span>
#include <unordered_map>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace plumb {

// Seed value meaning "draw a fresh seed from the system" (llama.cpp's LLAMA_DEFAULT_SEED).
constexpr uint32_t kRandomSeed = 0xFFFFFFFFu;

struct SamplingParams {
  uint32_t seed = kRandomSeed;
  float temperature = 0.8f;        // <= 0: greedy
  int top_k = 40;                  // <= 0: off
  float top_p = 0.95f;             // >= 1: off
  float min_p = 0.05f;             // <= 0: off
  int repeat_last_n = 64;          // 0: penalties off
  float repeat_penalty = 1.0f;     // 1: off
  float frequency_penalty = 0.0f;  // 0: off
  float presence_penalty = 0.0f;   // 0: off
  size_t min_keep = 0;             // top-p and min-p keep at least this many candidates
};

struct Candidate {
  TokenId id;
  float logit;
  float p;  // probability, valid after softmax()
};

// The tokens still in play. `sorted` = ordered by logit, best first.
struct Candidates {
  std::vector<Candidate> items;
  bool sorted = false;

  static Candidates from_logits(std::span<const float> logits);
};

// Counts of each token among the last `window` tokens accepted.
class RecentTokens {
 public:
  explicit RecentTokens(int window) : window_(window) {}
  void push(TokenId id);
  int count(TokenId id) const;
  void clear();

 private:
  int window_;
  std::deque<TokenId> order_;
  std::unordered_map<TokenId, int> counts_;
};

// Repeat penalty divides a positive logit (multiplies a negative one) of every token seen in
// the window; frequency subtracts count * penalty, presence subtracts the penalty once.
void apply_penalties(Candidates& c, const RecentTokens& recent, float repeat_penalty,
                     float frequency_penalty, float presence_penalty);
// Keeps the k best (sorts them).
void apply_top_k(Candidates& c, int k);
// Keeps the smallest best-first prefix whose probability mass reaches p.
void apply_top_p(Candidates& c, float p, size_t min_keep);
// Keeps candidates whose probability is at least p times the best one's.
void apply_min_p(Candidates& c, float p, size_t min_keep);
// Divides logits by t; t <= 0 leaves only the best candidate.
void apply_temperature(Candidates& c, float t);
// Fills p with the softmax of the logits.
void softmax(Candidates& c);
// Draws one candidate with probability proportional to exp(logit); returns its index.
size_t draw(Candidates& c, std::mt19937& rng);
// Index of the highest logit (the first one on ties).
size_t argmax(const Candidates& c);

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);

  // Runs the chain on one row of logits, accepts the chosen token and returns it.
  TokenId sample(std::span<const float> logits);
  // Adds a token to the penalty window without sampling (prompt tokens, forced tokens).
  void accept(TokenId id);
  // Empties the penalty window and reseeds the generator.
  void reset();

  const SamplingParams& params() const { return params_; }
  uint32_t seed() const { return seed_; }  // the seed actually used (resolved when random)

 private:
  SamplingParams params_;
  uint32_t seed_;
  std::mt19937 rng_;
  RecentTokens recent_;
};

}  // namespace plumb
