// Request bodies of plumb serve's OpenAI endpoints, parsed and checked before anything runs.
//
// Every value is checked for its JSON type and range; a wrong one is an ApiError (HTTP 400)
// that names the field ("messages[2].content must be a string"). Fields plumb does not use
// are ignored, as OpenAI's own server ignores unknown ones; fields whose other values it
// cannot honour (n > 1, tools) are refused by name. Parsing never throws and never crashes on
// any input (fuzz/fuzz_serve_request.cpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/chat_template.h"
#include "sample/sampler.h"

namespace plumb::serve {

// An error in OpenAI's shape: {"error": {"message", "type", "param", "code"}}.
struct ApiError {
  int http_status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string code;   // machine-readable: "invalid_json", "context_length_exceeded", ...
  std::string param;  // the field at fault, may be empty

  static ApiError bad_field(std::string param, std::string message);
  // {"error": {...}} as JSON text.
  std::string to_json() const;
};

// What both endpoints ask of the generator.
struct GenerationParams {
  SamplingParams sampling;         // llama-server's defaults where the request says nothing
  bool seeded = false;             // the request gave a seed
  int64_t max_tokens = -1;         // < 0: until end of generation or the context is full
  std::vector<std::string> stop;   // up to 4 strings, as OpenAI allows
  bool logprobs = false;
  int top_logprobs = 0;            // 0 .. 20
  bool stream = false;
  bool include_usage = false;      // stream_options.include_usage
};

struct ChatRequest {
  std::string model;
  std::vector<ChatMessage> messages;
  GenerationParams params;
};

struct CompletionRequest {
  std::string model;
  std::string prompt;
  GenerationParams params;
};

// Parse `body` (checked for UTF-8 first). On failure *error is filled and nullopt returned.
std::optional<ChatRequest> parse_chat_request(std::string_view body, ApiError* error);
std::optional<CompletionRequest> parse_completion_request(std::string_view body, ApiError* error);

}  // namespace plumb::serve
