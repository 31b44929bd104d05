#include "serve/response.h"

#include <nlohmann/json.hpp>

namespace plumb::serve {

using nlohmann::json;

namespace {

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

json bytes_of(std::string_view s) {
  json a = json::array();
  for (char c : s) a.push_back(static_cast<uint8_t>(c));
  return a;
}

// Token text for logprobs: the piece as llama.cpp renders it.
std::string piece(const ResponseContext& ctx, TokenId id) {
  return ctx.tokenizer->token_to_piece(id, /*render_special=*/false);
}

// The logprobs of `events` in the endpoint's shape; null when not asked for.
json logprobs(ResponseContext& ctx, std::span<const TokenEvent> events) {
  if (!ctx.params->logprobs) return nullptr;
  if (ctx.chat) {
    json content = json::array();
    for (const TokenEvent& e : events) {
      if (e.id < 0) continue;  // held-back text released at the end: no token of its own
      json top = json::array();
      for (const auto& [id, lp] : e.top) {
        const std::string p = piece(ctx, id);
        top.push_back({{"token", p}, {"logprob", lp}, {"bytes", bytes_of(p)}});
      }
      content.push_back({{"token", e.piece}, {"logprob", e.logprob}, {"bytes", bytes_of(e.piece)}, {"top_logprobs", top}});
    }
    return {{"content", content}, {"refusal", nullptr}};
  }
  json tokens = json::array(), token_logprobs = json::array(), top_logprobs = json::array(), offsets = json::array();
  for (const TokenEvent& e : events) {
    if (e.id < 0) continue;
    tokens.push_back(e.piece);
    token_logprobs.push_back(e.logprob);
    json top = json::object();
    for (const auto& [id, lp] : e.top) top[piece(ctx, id)] = lp;
    top_logprobs.push_back(top);
    offsets.push_back(ctx.text_offset);
    ctx.text_offset += e.piece.size();
  }
  return {{"tokens", tokens}, {"token_logprobs", token_logprobs}, {"top_logprobs", top_logprobs}, {"text_offset", offsets}};
}

json usage_json(const Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens}};
}

json head(const ResponseContext& ctx, const char* object) {
  return {{"id", ctx.id}, {"object", object}, {"created", ctx.created}, {"model", ctx.model}, {"system_fingerprint", "plumb"}};
}

}  // namespace

std::string full_response(ResponseContext& ctx, std::string_view text, std::span<const TokenEvent> events,
                          std::string_view finish_reason, const Usage& usage) {
  json choice = {{"index", 0}, {"logprobs", logprobs(ctx, events)}, {"finish_reason", finish_reason}};
  json j = head(ctx, ctx.chat ? "chat.completion" : "text_completion");
  if (ctx.chat) {
    choice["message"] = {{"role", "assistant"}, {"content", text}, {"refusal", nullptr}};
  } else {
    choice["text"] = text;
  }
  j["choices"] = json::array({choice});
  j["usage"] = usage_json(usage);
  return dump(j);
}

std::string stream_chunk(ResponseContext& ctx, std::string_view text, std::span<const TokenEvent> events,
                         bool first, std::optional<std::string_view> finish_reason,
                         const std::optional<Usage>& usage) {
  json choice = {{"index", 0},
                 {"logprobs", logprobs(ctx, events)},
                 {"finish_reason", finish_reason ? json(*finish_reason) : json(nullptr)}};
  json j = head(ctx, ctx.chat ? "chat.completion.chunk" : "text_completion");
  if (ctx.chat) {
    json delta = json::object();
    if (first) delta["role"] = "assistant";
    if (!text.empty() || first) delta["content"] = text;
    choice["delta"] = delta;
  } else {
    choice["text"] = text;
  }
  j["choices"] = json::array({choice});
  if (usage) j["usage"] = usage_json(*usage);
  return dump(j);
}

std::string usage_chunk(const ResponseContext& ctx, const Usage& usage) {
  json j = head(ctx, ctx.chat ? "chat.completion.chunk" : "text_completion");
  j["choices"] = json::array();
  j["usage"] = usage_json(usage);
  return dump(j);
}

std::string models_response(const std::string& id, int64_t created) {
  json j = {{"object", "list"},
            {"data", json::array({{{"id", id}, {"object", "model"}, {"created", created}, {"owned_by", "plumb"}}})}};
  return dump(j);
}

}  // namespace plumb::serve
