// The generation loop shared by `plumb run` and `plumb chat`: bring the Session's KV cache to
// a given token sequence (re-using the longest common prefix it already holds), then sample
// one token at a time, streaming text, until an end-of-generation token, the token limit, a
// stop string, a full context or an interrupt.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "model/model.h"
#include "sample/sampler.h"
#include "tokenizer/tokenizer.h"
#include "util/status.h"

namespace plumb {

struct GenerateOptions {
  int n_predict = -1;                            // < 0: until end of generation or a full context
  std::vector<std::string> stop_strings;         // the text stops before the first one found
  bool render_special = false;                   // print control tokens' text
  const std::atomic<bool>* interrupt = nullptr;  // checked before each new token
};

struct GenerateTimings {
  int n_prompt = 0;  // tokens decoded to bring the cache to the prompt
  double prompt_ms = 0.0;
  int n_decoded = 0;  // single-token decodes of generated tokens
  double generate_ms = 0.0;
  double sample_ms = 0.0;
};

enum class StopReason { EndOfGeneration, Length, StopString, ContextFull, Interrupted };
const char* stop_reason_name(StopReason r);

struct GenerateResult {
  std::vector<TokenId> tokens;  // sampled tokens, including a final end-of-generation token
  std::string text;             // their text (without end-of-generation / stop string)
  StopReason reason = StopReason::Length;
  GenerateTimings timings;
};

class Generator {
 public:
  Generator(Session& session, const Tokenizer& tokenizer, Sampler& sampler);

  // Makes the cache hold exactly `prompt` (keeping the common prefix with what it holds),
  // then generates. `on_text` receives printable text as it is produced.
  Status generate(std::span<const TokenId> prompt, const GenerateOptions& options,
                  const std::function<void(std::string_view)>& on_text, GenerateResult* result);

  // Token ids currently in the session's cache, in order.
  const std::vector<TokenId>& cached() const { return cached_; }
  // Forget everything (the session is truncated to 0).
  void clear();

 private:
  Status feed(std::span<const TokenId> tokens, GenerateTimings* timings);

  Session& session_;
  const Tokenizer& tokenizer_;
  Sampler& sampler_;
  std::vector<TokenId> cached_;
};

}  // namespace plumb
