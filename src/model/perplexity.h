// Perplexity and KL-divergence with llama-perplexity's method, so plumb's figures are
// comparable with llama.cpp's on the same file and text:
//   - the whole text is tokenized once (BOS per the model) and cut into chunks of n_ctx tokens;
//   - the first token of each chunk becomes BOS when the model adds BOS;
//   - each chunk is evaluated independently (empty KV cache);
//   - only positions n_ctx/2 .. n_ctx-2 are scored, each predicting the next token;
//   - PPL = exp(mean NLL), error = PPL * sqrt((mean(NLL^2) - mean(NLL)^2) / (count - 1)).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "model/kl_divergence.h"
#include "model/model.h"
#include "util/status.h"

namespace plumb {

struct PerplexityOptions {
  int n_ctx = 512;
  int n_chunks = -1;       // -1: as many as the text holds
  int n_threads = 0;       // total threads, shared by the parallel sessions
  int n_parallel = 1;      // chunks evaluated at the same time, each in its own session
  CacheType cache_type = CacheType::F16;
  std::string backend = "cpu";
  // Called after each chunk (in chunk order) with the running estimate.
  std::function<void(int chunk_index, int n_chunks, double running_ppl)> on_chunk;
};

struct PerplexityResult {
  double ppl = 0.0;
  double ppl_err = 0.0;
  double mean_nll = 0.0;
  int64_t n_scored = 0;
  int n_chunks = 0;
  int n_tokens = 0;  // tokens in the text
  double seconds = 0.0;
};

// Scores `tokens` (already tokenized with BOS per the model). With `base_out`, the base
// model's log-probabilities of every scored row are written to it; with `base_in`, the
// tokens must equal the base file's and KL-divergence statistics go into `kld`.
Result<PerplexityResult> compute_perplexity(const Model& model, std::vector<int32_t> tokens,
                                            const PerplexityOptions& options,
                                            KldBaseWriter* base_out = nullptr,
                                            const KldBaseReader* base_in = nullptr,
                                            KldStats* kld = nullptr);

// -log p(next) and the top token of one row of logits: the sum of exp() in double, like
// llama.cpp's log_softmax, its terms exp_f32 (model/logit_stats.h: NLL within 1.5e-7 of a
// float64 log-softmax of the same logits).
struct RowScore {
  double nll;
  int32_t top;
};
RowScore score_row(const float* logits, int64_t n_vocab, int32_t next_token);

}  // namespace plumb
