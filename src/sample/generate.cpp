#include "sample/generate.h"

#include <chrono>

#include "sample/text_stream.h"
#include "model/nonfinite.h"

namespace plumb {

namespace {

double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

}  // namespace

const char* stop_reason_name(StopReason r) {
  switch (r) {
    case StopReason::EndOfGeneration:
      return "eog";
    case StopReason::Length:
      return "length";
    case StopReason::StopString:
      return "stop";
    case StopReason::ContextFull:
      return "context";
    case StopReason::Interrupted:
      return "interrupted";
  }
  return "?";
}

Generator::Generator(Session& session, const Tokenizer& tokenizer, Sampler& sampler)
    : session_(session), tokenizer_(tokenizer), sampler_(sampler) {}

void Generator::clear() {
  session_.truncate(0);
  cached_.clear();
}

Status Generator::feed(std::span<const TokenId> tokens, GenerateTimings* timings) {
  const auto start = std::chrono::steady_clock::now();
  PLUMB_RETURN_IF_ERROR(session_.decode(tokens, /*all_logits=*/false));
  timings->prompt_ms += ms_since(start);
  timings->n_prompt += static_cast<int>(tokens.size());
  cached_.insert(cached_.end(), tokens.begin(), tokens.end());
  for (TokenId id : tokens) sampler_.accept(id);
  return Status();
}

Status Generator::generate(std::span<const TokenId> prompt, const GenerateOptions& options,
                           const std::function<void(std::string_view)>& on_text,
                           GenerateResult* result) {
  *result = GenerateResult();
  if (prompt.empty()) return Status::error("the prompt is empty: nothing to continue from");
  if (static_cast<int>(prompt.size()) > session_.n_ctx()) {
    return Status::errorf("the prompt has %zu tokens, more than the context of %d (use -c N)",
                          prompt.size(), session_.n_ctx());
  }

  // Keep the common prefix; at least the last prompt token is decoded again so that its
  // logits are fresh.
  size_t keep = 0;
  while (keep < cached_.size() && keep < prompt.size() && cached_[keep] == prompt[keep]) ++keep;
  if (keep == prompt.size()) --keep;
  if (keep < cached_.size()) {
    session_.truncate(static_cast<int>(keep));
    cached_.resize(keep);
  }
  PLUMB_RETURN_IF_ERROR(feed(prompt.subspan(keep), &result->timings));

  TextStream stream(options.stop_strings);
  auto emit = [&](const std::string& text) {
    if (!text.empty() && on_text) on_text(text);
  };
  const int n_vocab = tokenizer_.n_vocab();
  for (int i = 0; options.n_predict < 0 || i < options.n_predict; ++i) {
    if (options.interrupt != nullptr && options.interrupt->load()) {
      result->reason = StopReason::Interrupted;
      break;
    }
    const auto sample_start = std::chrono::steady_clock::now();
    const float* row = session_.logits(session_.n_logit_rows() - 1);
    if (trace::first_nonfinite(row, n_vocab) >= 0) {
      // NaN is never an answer (sampling it gave token 0 forever): say where it starts.
      result->timings.sample_ms += ms_since(sample_start);
      return trace::explain_nonfinite_logits(session_, cached_,
                                             strprintf("after %zu tokens", cached_.size()));
    }
    const TokenId id = sampler_.sample(std::span<const float>(row, static_cast<size_t>(n_vocab)));
    result->timings.sample_ms += ms_since(sample_start);
    result->tokens.push_back(id);
    if (tokenizer_.is_eog(id)) {
      result->reason = StopReason::EndOfGeneration;
      break;
    }
    emit(stream.push(tokenizer_.token_to_piece(id, options.render_special)));
    if (stream.stopped()) {
      result->reason = StopReason::StopString;
      break;
    }
    if (options.n_predict >= 0 && i + 1 >= options.n_predict) {
      result->reason = StopReason::Length;
      break;
    }
    if (session_.n_past() >= session_.n_ctx()) {
      result->reason = StopReason::ContextFull;
      break;
    }
    const auto decode_start = std::chrono::steady_clock::now();
    const TokenId one[1] = {id};
    PLUMB_RETURN_IF_ERROR(session_.decode(one, /*all_logits=*/false));
    result->timings.generate_ms += ms_since(decode_start);
    ++result->timings.n_decoded;
    cached_.push_back(id);
  }
  emit(stream.flush());
  result->text = stream.text();
  return Status();
}

}  // namespace plumb
