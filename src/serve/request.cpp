#include "serve/request.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "util/utf8.h"

namespace plumb::serve {

using nlohmann::json;

ApiError ApiError::bad_field(std::string param, std::string message) {
  ApiError e;
  e.message = std::move(message);
  e.param = std::move(param);
  e.code = "invalid_value";
  return e;
}

std::string ApiError::to_json() const {
  json j = {{"error",
             {{"message", message},
              {"type", type},
              {"param", param.empty() ? json(nullptr) : json(param)},
              {"code", code.empty() ? json(nullptr) : json(code)}}}};
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

namespace {

const char* type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::string: return "a string";
    case json::value_t::array: return "an array";
    case json::value_t::object: return "an object";
    case json::value_t::binary: return "binary";
    case json::value_t::discarded: return "nothing";
    default: return "a number";
  }
}

// Field readers: absent or null leaves *out as it is; a value of the wrong type or outside
// [lo, hi] is an error naming the field.
class Fields {
 public:
  Fields(const json& obj, ApiError* error) : obj_(obj), error_(error) {}
  bool failed() const { return failed_; }

  const json* get(const char* key) {
    auto it = obj_.find(key);
    if (it == obj_.end() || it->is_null()) return nullptr;
    return &*it;
  }
  void fail(const std::string& param, const std::string& message) {
    if (failed_) return;
    failed_ = true;
    *error_ = ApiError::bad_field(param, message);
  }
  void wrong_type(const std::string& param, const json& v, const char* expected) {
    fail(param, param + " must be " + expected + ", not " + type_name(v));
  }

  void number(const char* key, double lo, double hi, double* out) {
    const json* v = get(key);
    if (v == nullptr) return;
    if (!v->is_number()) return wrong_type(key, *v, "a number");
    const double d = v->get<double>();
    if (!std::isfinite(d) || d < lo || d > hi) {
      return fail(key, std::string(key) + " must be between " + fmt(lo) + " and " + fmt(hi) + ", not " + v->dump());
    }
    *out = d;
  }
  void integer(const char* key, int64_t lo, int64_t hi, int64_t* out) {
    const json* v = get(key);
    if (v == nullptr) return;
    // 1e9 is a whole number written as a float: accept whole floats, as Python clients send them.
    const bool whole = v->is_number_integer() ||
                       (v->is_number_float() && std::isfinite(v->get<double>()) &&
                        std::floor(v->get<double>()) == v->get<double>());
    if (!whole) return wrong_type(key, *v, "an integer");
    const double d = v->get<double>();
    if (d < static_cast<double>(lo) || d > static_cast<double>(hi)) {
      return fail(key, std::string(key) + " must be between " + std::to_string(lo) + " and " +
                           std::to_string(hi) + ", not " + v->dump());
    }
    *out = v->is_number_unsigned() ? static_cast<int64_t>(v->get<uint64_t>())
           : v->is_number_integer() ? v->get<int64_t>()
                                    : static_cast<int64_t>(d);
  }
  void boolean(const char* key, bool* out) {
    const json* v = get(key);
    if (v == nullptr) return;
    if (!v->is_boolean()) return wrong_type(key, *v, "a boolean");
    *out = v->get<bool>();
  }
  void string(const char* key, std::string* out) {
    const json* v = get(key);
    if (v == nullptr) return;
    if (!v->is_string()) return wrong_type(key, *v, "a string");
    *out = v->get<std::string>();
  }

 private:
  static std::string fmt(double d) {
    json j = d;
    return j.dump();
  }
  const json& obj_;
  ApiError* error_;
  bool failed_ = false;
};

// Everything but the messages / prompt: sampling, limits, stop strings, logprobs, streaming.
// `chat_logprobs`: chat's logprobs is a boolean with top_logprobs beside it; the legacy
// completions' logprobs is the number of top alternatives (0..5).
void parse_generation(Fields& f, bool chat_logprobs, GenerationParams* p) {
  SamplingParams& s = p->sampling;
  // llama-server's defaults; penalties off.
  s.temperature = 0.8f, s.top_k = 40, s.top_p = 0.95f, s.min_p = 0.05f;
  s.repeat_last_n = 64, s.repeat_penalty = 1.0f;
  double d = s.temperature;
  f.number("temperature", 0.0, 2.0, &d), s.temperature = static_cast<float>(d);
  d = s.top_p, f.number("top_p", 0.0, 1.0, &d), s.top_p = static_cast<float>(d);
  d = s.min_p, f.number("min_p", 0.0, 1.0, &d), s.min_p = static_cast<float>(d);
  d = 0, f.number("frequency_penalty", -2.0, 2.0, &d), s.frequency_penalty = static_cast<float>(d);
  d = 0, f.number("presence_penalty", -2.0, 2.0, &d), s.presence_penalty = static_cast<float>(d);
  int64_t i = s.top_k;
  f.integer("top_k", 0, 1 << 30, &i), s.top_k = static_cast<int>(i);
  int64_t seed = -1;
  f.integer("seed", INT64_MIN, INT64_MAX, &seed);
  if (f.get("seed") != nullptr) {
    p->seeded = true;
    s.seed = static_cast<uint32_t>(seed);  // the low 32 bits, as llama-server keeps
    if (s.seed == kRandomSeed) s.seed = 0xFFFFFFFEu;
  }
  int64_t n = 1;
  f.integer("n", 1, 1, &n);

  // max_completion_tokens is the newer name; either may be given. Values past the context are
  // clamped to what is left of it when the request runs (README).
  f.integer("max_tokens", 1, INT64_MAX, &p->max_tokens);
  f.integer("max_completion_tokens", 1, INT64_MAX, &p->max_tokens);

  if (const json* stop = f.get("stop")) {
    if (stop->is_string()) {
      p->stop.push_back(stop->get<std::string>());
    } else if (stop->is_array()) {
      if (stop->size() > 4) f.fail("stop", "stop holds at most 4 strings, not " + std::to_string(stop->size()));
      for (size_t k = 0; k < stop->size() && !f.failed(); ++k) {
        const json& v = (*stop)[k];
        const std::string name = "stop[" + std::to_string(k) + "]";
        if (!v.is_string()) {
          f.wrong_type(name, v, "a string");
        } else if (v.get<std::string>().empty()) {
          f.fail(name, name + " must not be empty");
        } else {
          p->stop.push_back(v.get<std::string>());
        }
      }
    } else {
      f.wrong_type("stop", *stop, "a string or an array of strings");
    }
  }

  if (chat_logprobs) {
    f.boolean("logprobs", &p->logprobs);
    int64_t top = 0;
    f.integer("top_logprobs", 0, 20, &top);
    p->top_logprobs = static_cast<int>(top);
    if (top > 0 && !p->logprobs && !f.failed()) f.fail("top_logprobs", "top_logprobs needs logprobs: true");
  } else if (f.get("logprobs") != nullptr) {
    int64_t top = 0;
    f.integer("logprobs", 0, 5, &top);
    p->logprobs = true;
    p->top_logprobs = static_cast<int>(top);
  }

  f.boolean("stream", &p->stream);
  if (const json* opts = f.get("stream_options")) {
    if (!opts->is_object()) return f.wrong_type("stream_options", *opts, "an object");
    auto it = opts->find("include_usage");
    if (it != opts->end() && !it->is_null()) {
      if (!it->is_boolean()) return f.wrong_type("stream_options.include_usage", *it, "a boolean");
      p->include_usage = it->get<bool>();
    }
  }
  for (const char* unsupported : {"tools", "functions", "tool_choice", "response_format", "suffix"}) {
    if (const json* v = f.get(unsupported); v != nullptr && !f.failed()) {
      if (std::string_view(unsupported) == "response_format" && v->is_object() &&
          v->value("type", "") == "text") {
        continue;  // the default
      }
      f.fail(unsupported, std::string(unsupported) + " is not supported by plumb serve");
    }
  }
}

// Parses the body as a JSON object; the error for invalid UTF-8 names the byte's offset.
std::optional<json> parse_object(std::string_view body, ApiError* error) {
  if (const size_t bad = find_invalid_utf8(body); bad != std::string_view::npos) {
    error->http_status = 400;
    error->code = "invalid_utf8";
    error->message = "the request body is not valid UTF-8 (byte " + std::to_string(bad) + ")";
    return std::nullopt;
  }
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    error->http_status = 400;
    error->code = "invalid_json";
    // Re-parse with exceptions on for the position and reason.
    try {
      const json again = json::parse(body);
      (void)again;
      error->message = "the request body is not valid JSON";
    } catch (const json::exception& e) {  // a parse error, or a number out of range (1e900)
      error->message = std::string("the request body is not valid JSON: ") + e.what();
    }
    return std::nullopt;
  }
  if (!j.is_object()) {
    *error = ApiError::bad_field("", std::string("the request body must be a JSON object, not ") + type_name(j));
    return std::nullopt;
  }
  return j;
}

// A message's content: a string, or an array of {"type": "text", "text": ...} parts.
bool message_content(const json& v, const std::string& name, Fields& f, std::string* out) {
  if (v.is_string()) {
    *out = v.get<std::string>();
    return true;
  }
  if (!v.is_array()) {
    f.wrong_type(name, v, "a string or an array of text parts");
    return false;
  }
  for (size_t k = 0; k < v.size(); ++k) {
    const json& part = v[k];
    const std::string pname = name + "[" + std::to_string(k) + "]";
    if (!part.is_object() || part.value("type", json()) != "text") {
      f.fail(pname, pname + " must be a {\"type\": \"text\"} part (plumb reads text only)");
      return false;
    }
    auto text = part.find("text");
    if (text == part.end() || !text->is_string()) {
      f.fail(pname + ".text", pname + ".text must be a string");
      return false;
    }
    *out += text->get<std::string>();
  }
  return true;
}

}  // namespace

std::optional<ChatRequest> parse_chat_request(std::string_view body, ApiError* error) {
  std::optional<json> j = parse_object(body, error);
  if (!j) return std::nullopt;
  Fields f(*j, error);
  ChatRequest r;
  f.string("model", &r.model);
  const json* messages = f.get("messages");
  if (messages == nullptr) {
    f.fail("messages", "messages is required");
  } else if (!messages->is_array()) {
    f.wrong_type("messages", *messages, "an array");
  } else if (messages->empty()) {
    f.fail("messages", "messages must not be empty");
  }
  for (size_t k = 0; !f.failed() && k < messages->size(); ++k) {
    const json& m = (*messages)[k];
    const std::string name = "messages[" + std::to_string(k) + "]";
    if (!m.is_object()) {
      f.wrong_type(name, m, "an object");
      break;
    }
    ChatMessage msg;
    auto role = m.find("role");
    if (role == m.end() || !role->is_string()) {
      f.fail(name + ".role", name + ".role must be a string");
      break;
    }
    msg.role = role->get<std::string>();
    if (msg.role == "developer") msg.role = "system";  // OpenAI's newer name for it
    if (msg.role != "system" && msg.role != "user" && msg.role != "assistant") {
      f.fail(name + ".role", name + ".role must be system, developer, user or assistant, not \"" + msg.role + "\"");
      break;
    }
    auto content = m.find("content");
    if (content == m.end() || content->is_null()) {
      f.fail(name + ".content", name + ".content is required");
      break;
    }
    if (!message_content(*content, name + ".content", f, &msg.content)) break;
    r.messages.push_back(std::move(msg));
  }
  if (!f.failed()) parse_generation(f, /*chat_logprobs=*/true, &r.params);
  if (f.failed()) return std::nullopt;
  return r;
}

std::optional<CompletionRequest> parse_completion_request(std::string_view body, ApiError* error) {
  std::optional<json> j = parse_object(body, error);
  if (!j) return std::nullopt;
  Fields f(*j, error);
  CompletionRequest r;
  f.string("model", &r.model);
  const json* prompt = f.get("prompt");
  if (prompt == nullptr) {
    f.fail("prompt", "prompt is required");
  } else if (prompt->is_string()) {
    r.prompt = prompt->get<std::string>();
  } else if (prompt->is_array() && prompt->size() == 1 && (*prompt)[0].is_string()) {
    r.prompt = (*prompt)[0].get<std::string>();
  } else {
    f.wrong_type("prompt", *prompt, "a string (or an array of one string)");
  }
  if (!f.failed() && r.prompt.empty()) f.fail("prompt", "prompt must not be empty");
  if (!f.failed()) {
    bool echo = false;
    f.boolean("echo", &echo);
    if (echo) f.fail("echo", "echo is not supported by plumb serve");
  }
  if (!f.failed()) parse_generation(f, /*chat_logprobs=*/false, &r.params);
  if (f.failed()) return std::nullopt;
  return r;
}

}  // namespace plumb::serve
