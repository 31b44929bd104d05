// KL-divergence between a base model and another model over the same tokens.
//
// The base run stores, for every scored position, the base model's log-probabilities over the
// whole vocabulary in a compact file (format below); the second run reads them back row by
// row and accumulates llama-perplexity's statistics.
//
// File format (little-endian), "plumb KLD base" v1:
//   char magic[8] = "PLUMBKLD"; u32 version = 1; u32 n_ctx; u32 n_vocab; u32 n_chunks;
//   u32 n_tokens; i32 tokens[n_tokens];
//   then per chunk, per scored position (n_ctx/2 .. n_ctx-2), one row:
//     f32 max_logprob; f32 step; u16 q[n_vocab]
//   where logprob_i ≈ max_logprob - q_i * step, q = round((max_logprob - logprob_i) / step)
//   with step = kKldRange / 65535 (log-probabilities more than kKldRange below the best are
//   stored as the floor; their probabilities are below e^-kKldRange). Resolution 3.8e-4 nats:
//   llama.cpp's format has the same size (2 bytes per logit) and a similar floor.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "util/output_file.h"
#include "util/status.h"

namespace plumb {

constexpr float kKldRange = 25.0f;

class KldBaseWriter {
 public:
  static Result<std::unique_ptr<KldBaseWriter>> create(const std::string& path, int n_ctx, int64_t n_vocab,
                                                       int n_chunks, const std::vector<int32_t>& tokens);
  // logprobs: n_vocab log-probabilities of one scored position.
  Status write_row(const double* logprobs);
  // Renames the finished file into place; without it (an error, an interrupt) `path` is left
  // as it was (util/output_file.h).
  Status finish();

 private:
  KldBaseWriter() = default;
  std::unique_ptr<OutputFile> out_;
  int64_t n_vocab_ = 0;
  std::vector<uint16_t> row_;
};

class KldBaseReader {
 public:
  static Result<std::unique_ptr<KldBaseReader>> open(const std::string& path);
  ~KldBaseReader();
  int n_ctx() const { return n_ctx_; }
  int64_t n_vocab() const { return n_vocab_; }
  int n_chunks() const { return n_chunks_; }
  const std::vector<int32_t>& tokens() const { return tokens_; }
  int64_t n_rows() const { return n_rows_; }
  // Decodes row `index` into n_vocab log-probabilities.
  Status read_row(int64_t index, std::vector<double>* logprobs) const;

 private:
  KldBaseReader() = default;
  std::string path_;
  FILE* file_ = nullptr;      // rows are read one at a time: the file can be GBs
  uint64_t rows_offset_ = 0;
  mutable std::vector<uint16_t> row_;
  int n_ctx_ = 0;
  int64_t n_vocab_ = 0;
  int n_chunks_ = 0;
  int64_t n_rows_ = 0;
  std::vector<int32_t> tokens_;
};

// Rounds log-probabilities through the file's 16-bit form, in place. The second run passes its
// own rows through it before comparing, so both sides carry the same rounding and a model
// compared with itself gives exactly KLD 0 and 100 % same top token.
void round_trip_logprobs(std::vector<double>* logprobs);

// Accumulated over every scored position, as llama-perplexity reports them.
struct KldStats {
  std::vector<double> kld;        // per position
  std::vector<double> dp;         // p_q(next) - p_base(next), per position
  int64_t same_top = 0;
  double sum_nll_base = 0, sum_nll_base2 = 0;
  double sum_nll = 0, sum_nll2 = 0;
  double sum_nll_cross = 0;       // Σ nll_base * nll
  int64_t count = 0;

  void add(const double* base_logprobs, const double* logprobs, int64_t n_vocab, int32_t next_token);

  struct Summary {
    double mean_kld, mean_kld_err, median_kld, max_kld, min_kld, kld_99, kld_999, kld_90, kld_10, kld_5, kld_1;
    double same_top_pct, same_top_err;
    double mean_ln_ppl_ratio, mean_ln_ppl_ratio_err;
    double ppl_base, ppl;
    double cor_ln_ppl;
    double rms_dp_pct, rms_dp_err;
    double mean_dp_pct;
  };
  Summary summarize() const;
};

}  // namespace plumb
