#include "util/json_value.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace plumb::json {

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  Result<Value> parse_document() {
    Value v;
    PLUMB_RETURN_IF_ERROR(parse_value(&v, 0));
    skip_space();
    if (pos_ != text_.size()) return error("trailing characters after the JSON value");
    return v;
  }

 private:
  static constexpr int kMaxDepth = 256;

  Status error(const char* what) const { return Status::errorf("JSON: %s at byte %zu", what, pos_); }

  void skip_space() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\n' || text_[pos_] == '\r' || text_[pos_] == '\t')) ++pos_;
  }

  bool consume(std::string_view word) {
    if (text_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  Status parse_value(Value* out, int depth) {
    if (depth > kMaxDepth) return error("nesting too deep");
    skip_space();
    if (pos_ >= text_.size()) return error("unexpected end of input");
    const char c = text_[pos_];
    if (c == '{') return parse_object(out, depth);
    if (c == '[') return parse_array(out, depth);
    if (c == '"') {
      out->kind_ = Value::Kind::String;
      return parse_string(&out->string_);
    }
    if (consume("true")) {
      out->kind_ = Value::Kind::Bool;
      out->bool_ = true;
      return Status();
    }
    if (consume("false")) {
      out->kind_ = Value::Kind::Bool;
      return Status();
    }
    if (consume("null")) return Status();
    return parse_number(out);
  }

  Status parse_number(Value* out) {
    const size_t start = pos_;
    while (pos_ < text_.size() && std::string_view("+-0123456789.eE").find(text_[pos_]) != std::string_view::npos) ++pos_;
    if (start == pos_) return error("unexpected character");
    const std::string token(text_.substr(start, pos_ - start));
    char* end = nullptr;
    out->number_ = std::strtod(token.c_str(), &end);
    if (end != token.c_str() + token.size()) return error("malformed number");
    out->kind_ = Value::Kind::Number;
    return Status();
  }

  static void append_utf8(std::string* s, uint32_t cp) {
    if (cp < 0x80) {
      s->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      s->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      s->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      s->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      s->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      s->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      s->push_back(static_cast<char>(0xF0 | (cp >> 18)));
      s->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      s->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      s->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  Status parse_hex4(uint32_t* out) {
    if (pos_ + 4 > text_.size()) return error("truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const char h = text_[pos_++];
      v <<= 4;
      if (h >= '0' && h <= '9') v |= static_cast<uint32_t>(h - '0');
      else if (h >= 'a' && h <= 'f') v |= static_cast<uint32_t>(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F') v |= static_cast<uint32_t>(h - 'A' + 10);
      else return error("bad hex digit in \\u escape");
    }
    *out = v;
    return Status();
  }

  Status parse_string(std::string* out) {
    ++pos_;  // opening quote
    for (;;) {
      if (pos_ >= text_.size()) return error("unterminated string");
      const char c = text_[pos_++];
      if (c == '"') return Status();
      if (c != '\\') {
        out->push_back(c);
        continue;
      }
      if (pos_ >= text_.size()) return error("unterminated escape");
      const char e = text_[pos_++];
      switch (e) {
        case '"': out->push_back('"'); break;
        case '\\': out->push_back('\\'); break;
        case '/': out->push_back('/'); break;
        case 'b': out->push_back('\b'); break;
        case 'f': out->push_back('\f'); break;
        case 'n': out->push_back('\n'); break;
        case 'r': out->push_back('\r'); break;
        case 't': out->push_back('\t'); break;
        case 'u': {
          uint32_t cp = 0;
          PLUMB_RETURN_IF_ERROR(parse_hex4(&cp));
          if (cp >= 0xD800 && cp < 0xDC00 && consume("\\u")) {
            uint32_t low = 0;
            PLUMB_RETURN_IF_ERROR(parse_hex4(&low));
            if (low < 0xDC00 || low > 0xDFFF) return error("unpaired surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          append_utf8(out, cp);
          break;
        }
        default: return error("unknown escape");
      }
    }
  }

  Status parse_array(Value* out, int depth) {
    ++pos_;
    out->kind_ = Value::Kind::Array;
    skip_space();
    if (consume("]")) return Status();
    for (;;) {
      Value item;
      PLUMB_RETURN_IF_ERROR(parse_value(&item, depth + 1));
      out->items_.push_back(std::move(item));
      skip_space();
      if (consume("]")) return Status();
      if (!consume(",")) return error("expected ',' or ']'");
    }
  }

  Status parse_object(Value* out, int depth) {
    ++pos_;
    out->kind_ = Value::Kind::Object;
    skip_space();
    if (consume("}")) return Status();
    for (;;) {
      skip_space();
      if (pos_ >= text_.size() || text_[pos_] != '"') return error("expected a string key");
      std::string key;
      PLUMB_RETURN_IF_ERROR(parse_string(&key));
      skip_space();
      if (!consume(":")) return error("expected ':'");
      Value v;
      PLUMB_RETURN_IF_ERROR(parse_value(&v, depth + 1));
      out->members_.emplace_back(std::move(key), std::move(v));
      skip_space();
      if (consume("}")) return Status();
      if (!consume(",")) return error("expected ',' or '}'");
    }
  }

  std::string_view text_;
  size_t pos_ = 0;
};

const Value* Value::find(std::string_view key) const {
  for (const auto& [k, v] : members_) {
    if (k == key) return &v;
  }
  return nullptr;
}

const Value& Value::operator[](std::string_view key) const {
  static const Value kNull;
  const Value* v = find(key);
  return v != nullptr ? *v : kNull;
}

const Value& Value::operator[](size_t index) const {
  static const Value kNull;
  return index < items_.size() ? items_[index] : kNull;
}

Result<Value> Value::parse(std::string_view text) { return Parser(text).parse_document(); }

Result<Value> Value::parse_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::errorf("%s: cannot open", path.c_str());
  std::stringstream ss;
  ss << in.rdbuf();
  auto v = parse(ss.str());
  if (!v.ok()) return v.status().with_context(path);
  return v;
}

}  // namespace plumb::json
