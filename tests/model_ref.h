// Helpers for the model acceptance tests: reading llama.cpp / float64 reference files and
// comparing plumb's logits with them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "model/model.h"

namespace plumb::test {

// One prompt of a reference file (../shared/ref/*.gguf or a ref64.py output).
struct RefPrompt {
  std::string text;                  // ref.p{k}.prompt (empty in ref64 files)
  std::vector<int32_t> tokens;       // p{k}.tokens
  std::vector<float> logits;         // p{k}.logits [n_tokens][n_vocab]
  std::vector<int32_t> greedy;       // p{k}.greedy (empty in ref64 files)
  std::vector<float> greedy_margin;  // p{k}.greedy_margin
};

// Every p{k} of a reference file; an empty vector plus a gtest failure when unreadable.
std::vector<RefPrompt> read_ref_prompts(const std::string& path, int64_t n_vocab);

// Logits for every position of `tokens` from a fresh session: [n_tokens][n_vocab].
// The backend the model-level tests run on: $PLUMB_TEST_BACKEND (cuda on a GPU machine), else cpu.
std::string test_backend();

// Logits of every position of `tokens` in a fresh session on test_backend().
std::vector<float> plumb_logits(const Model& model, const std::vector<int32_t>& tokens,
                                const SessionOptions& options = {});

int64_t argmax(const float* row, int64_t n);
// Best minus second-best logit.
float top_margin(const float* row, int64_t n);

// Pooled comparison of logits against a reference over many positions.
struct LogitsAgreement {
  double sq_err = 0.0;   // Σ (a - b)^2
  double sq_ref = 0.0;   // Σ b^2
  int64_t positions = 0;
  int64_t top1_equal = 0;
  // Positions where the reference margin exceeds tau, and those where the arg-max differs there.
  int64_t confident = 0;
  int64_t confident_mismatch = 0;
  std::string first_mismatch;  // description of the first confident mismatch

  void add(const float* plumb, const float* ref, int64_t n_vocab, float tau, const std::string& where);
  double nmse() const { return sq_ref > 0 ? sq_err / sq_ref : 0.0; }
  double top1_rate() const { return positions ? static_cast<double>(top1_equal) / positions : 0.0; }
};

// Model options that skip the tokenizer (tests that feed token ids).
inline ModelOptions without_tokenizer() {
  ModelOptions o;
  o.load_tokenizer = false;
  return o;
}

}  // namespace plumb::test
