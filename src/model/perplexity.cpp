#include "model/perplexity.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <thread>

#include "model/logit_stats.h"
#include "model/nonfinite.h"
#include "util/thread_pool.h"

namespace plumb {

RowScore score_row(const float* logits, int64_t n_vocab, int32_t next_token) {
  const LogitStats st = logit_stats(logits, n_vocab);
  const double log_prob = static_cast<double>(logits[next_token]) - st.max - std::log(st.sum_exp);
  return RowScore{-log_prob, st.top};
}

namespace {

// Log-probabilities of a whole row, float64 (the sum as logit_stats.h).
void log_softmax_row(const float* logits, int64_t n_vocab, std::vector<double>* out) {
  out->resize(static_cast<size_t>(n_vocab));
  const LogitStats st = logit_stats(logits, n_vocab);
  const double log_sum = std::log(st.sum_exp);
  for (int64_t i = 0; i < n_vocab; ++i) (*out)[static_cast<size_t>(i)] = logits[i] - st.max - log_sum;
}

}  // namespace

Result<PerplexityResult> compute_perplexity(const Model& model, std::vector<int32_t> tokens,
                                            const PerplexityOptions& options, KldBaseWriter* base_out,
                                            const KldBaseReader* base_in, KldStats* kld) {
  const auto t0 = std::chrono::steady_clock::now();
  const int n_ctx = options.n_ctx;
  if (n_ctx < 4) return Status::errorf("context %d is too small for perplexity (need at least 4)", n_ctx);
  const int64_t n_tokens = static_cast<int64_t>(tokens.size());
  if (n_tokens < 2LL * n_ctx) {
    return Status::errorf("the text has %lld tokens; perplexity with -c %d needs at least %d (2 x context)",
                          static_cast<long long>(n_tokens), n_ctx, 2 * n_ctx);
  }
  int n_chunks = static_cast<int>(n_tokens / n_ctx);
  if (options.n_chunks > 0) n_chunks = std::min(n_chunks, options.n_chunks);
  const int64_t n_vocab = model.config().n_vocab;
  const int first = n_ctx / 2;
  const int n_scored_per_chunk = n_ctx - 1 - first;

  if (base_in != nullptr) {
    if (base_in->n_vocab() != n_vocab) {
      return Status::errorf("KL-divergence base has a vocabulary of %lld tokens, the model %lld",
                            static_cast<long long>(base_in->n_vocab()), static_cast<long long>(n_vocab));
    }
    if (base_in->n_ctx() != n_ctx) {
      return Status::errorf("KL-divergence base was made with -c %d, this run uses -c %d", base_in->n_ctx(), n_ctx);
    }
    if (base_in->tokens() != tokens) {
      return Status::error("KL-divergence base was made from different tokens (another text or vocabulary)");
    }
    n_chunks = std::min(n_chunks, base_in->n_chunks());
  }

  const bool add_bos = model.tokenizer().add_bos();
  const int32_t bos = model.tokenizer().bos();

  const int hw_threads = options.n_threads > 0 ? options.n_threads : ThreadPool::hardware_threads();
  const int n_parallel = std::max(1, std::min({options.n_parallel, n_chunks, hw_threads}));
  SessionOptions session_options;
  session_options.n_ctx = n_ctx;
  session_options.n_threads = std::max(1, hw_threads / n_parallel);
  session_options.cache_type = options.cache_type;
  session_options.backend = options.backend;
  session_options.n_batch = n_ctx;

  std::vector<std::unique_ptr<Session>> sessions;
  for (int s = 0; s < n_parallel; ++s) {
    PLUMB_ASSIGN_OR_RETURN(auto session, Session::create(model, session_options));
    sessions.push_back(std::move(session));
  }

  PerplexityResult result;
  result.n_tokens = static_cast<int>(n_tokens);
  double sum_nll = 0.0;
  double sum_nll2 = 0.0;
  int64_t count = 0;
  std::vector<double> base_logprobs;
  std::vector<double> logprobs;

  // Chunks run in waves of n_parallel sessions, each scored by the thread that evaluated it;
  // statistics are accumulated in chunk order, so the result does not depend on n_parallel.
  // KL-divergence reads and writes its file in order, so it keeps the wave's logits for it.
  const bool keep_logits = base_out != nullptr || base_in != nullptr;
  std::vector<std::vector<RowScore>> wave_scores(static_cast<size_t>(n_parallel));
  std::vector<std::vector<float>> wave_logits(static_cast<size_t>(n_parallel));
  for (int wave_start = 0; wave_start < n_chunks; wave_start += n_parallel) {
    const int wave_size = std::min(n_parallel, n_chunks - wave_start);
    std::vector<Status> statuses(static_cast<size_t>(wave_size));
    auto run_chunk = [&](int s) {
      const int chunk = wave_start + s;
      const int64_t chunk_start = static_cast<int64_t>(chunk) * n_ctx;
      std::vector<int32_t> input(tokens.begin() + chunk_start, tokens.begin() + chunk_start + n_ctx);
      if (add_bos && bos >= 0) input[0] = bos;
      Session& session = *sessions[static_cast<size_t>(s)];
      session.truncate(0);
      Status st = session.decode_keeping(input, first);  // only the scored rows' logits
      for (int j = 0; st.ok() && j < n_scored_per_chunk; ++j) {
        if (trace::first_nonfinite(session.logits(j), n_vocab) >= 0) {
          st = trace::explain_nonfinite_logits(session, input, strprintf("at position %d", first + j));
        }
      }
      if (st.ok()) {
        auto& scores = wave_scores[static_cast<size_t>(s)];
        scores.resize(static_cast<size_t>(n_scored_per_chunk));
        for (int j = 0; j < n_scored_per_chunk; ++j) {
          const int32_t next = tokens[static_cast<size_t>(chunk_start + first + j + 1)];
          scores[static_cast<size_t>(j)] = score_row(session.logits(j), n_vocab, next);
        }
        if (keep_logits) {
          auto& out = wave_logits[static_cast<size_t>(s)];
          out.resize(static_cast<size_t>(n_scored_per_chunk) * static_cast<size_t>(n_vocab));
          for (int j = 0; j < n_scored_per_chunk; ++j) {
            const float* row = session.logits(j);
            std::copy(row, row + n_vocab, out.begin() + static_cast<int64_t>(j) * n_vocab);
          }
        }
      }
      statuses[static_cast<size_t>(s)] = st;
    };
    if (wave_size == 1) {
      run_chunk(0);
    } else {
      std::vector<std::thread> workers;
      for (int s = 0; s < wave_size; ++s) workers.emplace_back(run_chunk, s);
      for (auto& w : workers) w.join();
    }
    for (int s = 0; s < wave_size; ++s) {
      const int chunk = wave_start + s;
      if (!statuses[static_cast<size_t>(s)].ok()) {
        return statuses[static_cast<size_t>(s)].with_context(strprintf("chunk %d", chunk + 1));
      }
      for (int j = 0; j < n_scored_per_chunk; ++j) {
        const RowScore& score = wave_scores[static_cast<size_t>(s)][static_cast<size_t>(j)];
        sum_nll += score.nll;
        sum_nll2 += score.nll * score.nll;
        ++count;
        if (!keep_logits) continue;
        const float* row = wave_logits[static_cast<size_t>(s)].data() + static_cast<int64_t>(j) * n_vocab;
        log_softmax_row(row, n_vocab, &logprobs);
        if (base_out != nullptr) PLUMB_RETURN_IF_ERROR(base_out->write_row(logprobs.data()));
        if (base_in != nullptr && kld != nullptr) {
          const int64_t row_index = static_cast<int64_t>(chunk) * n_scored_per_chunk + j;
          const int32_t next = tokens[static_cast<size_t>(static_cast<int64_t>(chunk) * n_ctx + first + j + 1)];
          PLUMB_RETURN_IF_ERROR(base_in->read_row(row_index, &base_logprobs));
          round_trip_logprobs(&logprobs);
          kld->add(base_logprobs.data(), logprobs.data(), n_vocab, next);
        }
      }
      if (options.on_chunk) options.on_chunk(chunk, n_chunks, std::exp(sum_nll / static_cast<double>(count)));
    }
  }
  if (base_out != nullptr) PLUMB_RETURN_IF_ERROR(base_out->finish());

  const double mean = sum_nll / static_cast<double>(count);
  const double mean2 = sum_nll2 / static_cast<double>(count);
  result.mean_nll = mean;
  result.ppl = std::exp(mean);
  const double var = mean2 - mean * mean;
  result.ppl_err = var > 0 && count > 1 ? result.ppl * std::sqrt(var / static_cast<double>(count - 1)) : 0.0;
  result.n_scored = count;
  result.n_chunks = n_chunks;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return result;
}

}  // namespace plumb
