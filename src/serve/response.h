// OpenAI's response shapes for plumb serve: chat.completion and its stream chunks,
// text_completion (legacy completions) and its chunks, the model list. JSON text out; strings
// that are not valid UTF-8 (a token that is part of a character) have their bad bytes replaced
// by U+FFFD, with the exact bytes kept in logprobs' "bytes".
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "serve/request.h"
#include "serve/scheduler.h"
#include "tokenizer/tokenizer.h"

namespace plumb::serve {

struct Usage {
  int prompt_tokens = 0;
  int completion_tokens = 0;
};

// What every response of one request shares.
struct ResponseContext {
  bool chat = true;         // chat.completion, else text_completion
  std::string id;           // "chatcmpl-..." / "cmpl-..."
  std::string model;
  int64_t created = 0;      // Unix seconds
  const GenerationParams* params = nullptr;
  const Tokenizer* tokenizer = nullptr;
  size_t text_offset = 0;   // completions' logprobs.text_offset: bytes of text so far
};

// The whole answer (stream = false).
std::string full_response(ResponseContext& ctx, std::string_view text, std::span<const TokenEvent> events,
                          std::string_view finish_reason, const Usage& usage);
// One "data:" payload of a stream: `text` and its tokens' logprobs; the first chunk of a chat
// also carries role = assistant; the last one a finish_reason (and usage when given).
std::string stream_chunk(ResponseContext& ctx, std::string_view text, std::span<const TokenEvent> events,
                         bool first, std::optional<std::string_view> finish_reason,
                         const std::optional<Usage>& usage);
// stream_options.include_usage: the extra chunk with no choices and the usage.
std::string usage_chunk(const ResponseContext& ctx, const Usage& usage);
// GET /v1/models.
std::string models_response(const std::string& id, int64_t created);

}  // namespace plumb::serve
