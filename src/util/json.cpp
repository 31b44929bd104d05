#include "util/json.h"

#include <cmath>

namespace plumb::json {

namespace {

// Length of the valid UTF-8 sequence starting at s[i], or 0 when s[i] does not start one
// (bad lead byte, missing continuation, overlong form, surrogate, or above U+10FFFF).
size_t utf8_sequence_length(std::string_view s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  size_t len = 0;
  uint32_t cp = 0;
  if (c >= 0xc2 && c <= 0xdf) {
    len = 2;
    cp = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    len = 3;
    cp = c & 0x0f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (s.size() - i < len) return 0;
  for (size_t k = 1; k < len; ++k) {
    if ((byte(i + k) & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3f);
  }
  if (len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) return 0;
  if (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) return 0;
  return len;
}

}  // namespace

void append_quoted(std::string* out, std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f) {
      if (c == '"' || c == '\\') out->push_back('\\');
      out->push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    if (c >= 0x80) {
      const size_t len = utf8_sequence_length(s, i);
      if (len > 0) {
        out->append(s.data() + i, len);
        i += len;
        continue;
      }
    }
    switch (c) {
      case '\n': out->append("\\n"); break;
      case '\t': out->append("\\t"); break;
      case '\r': out->append("\\r"); break;
      case '\b': out->append("\\b"); break;
      case '\f': out->append("\\f"); break;
      default:
        out->append("\\u00");
        out->push_back(kHex[c >> 4]);
        out->push_back(kHex[c & 15]);
    }
    ++i;
  }
  out->push_back('"');
}

std::string quote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  append_quoted(&out, s);
  return out;
}

std::string format_float(float v) {
  if (!std::isfinite(v)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(v));
  return buf;
}

std::string format_double(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

Writer::Writer(int indent) : indent_(indent) {}
Writer::Writer(std::FILE* out, int indent) : out_(out), indent_(indent) {}
Writer::~Writer() { finish(); }

void Writer::newline_indent() {
  if (indent_ <= 0) return;
  buf_.push_back('\n');
  buf_.append(stack_.size() * static_cast<size_t>(indent_), ' ');
}

void Writer::flush_if_large() {
  if (out_ != nullptr && buf_.size() >= (1u << 16)) {
    std::fwrite(buf_.data(), 1, buf_.size(), out_);
    buf_.clear();
  }
}

void Writer::before_value() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (!stack_.empty()) {
    if (stack_.back().count++ > 0) buf_.push_back(',');
    newline_indent();
  }
}

Writer& Writer::begin_object() {
  before_value();
  buf_.push_back('{');
  stack_.push_back({true});
  return *this;
}

Writer& Writer::end_object() {
  const bool had_items = !stack_.empty() && stack_.back().count > 0;
  if (!stack_.empty()) stack_.pop_back();
  if (had_items) newline_indent();
  buf_.push_back('}');
  flush_if_large();
  return *this;
}

Writer& Writer::begin_array() {
  before_value();
  buf_.push_back('[');
  stack_.push_back({false});
  return *this;
}

Writer& Writer::end_array() {
  const bool had_items = !stack_.empty() && stack_.back().count > 0;
  if (!stack_.empty()) stack_.pop_back();
  if (had_items) newline_indent();
  buf_.push_back(']');
  flush_if_large();
  return *this;
}

Writer& Writer::key(std::string_view k) {
  before_value();
  append_quoted(&buf_, k);
  buf_.append(indent_ > 0 ? ": " : ":");
  after_key_ = true;
  return *this;
}

Writer& Writer::value(std::string_view s) {
  before_value();
  append_quoted(&buf_, s);
  flush_if_large();
  return *this;
}

Writer& Writer::value(bool b) {
  before_value();
  buf_.append(b ? "true" : "false");
  return *this;
}

Writer& Writer::value(int64_t v) {
  before_value();
  buf_.append(std::to_string(v));
  flush_if_large();
  return *this;
}

Writer& Writer::value(uint64_t v) {
  before_value();
  buf_.append(std::to_string(v));
  flush_if_large();
  return *this;
}

Writer& Writer::value(float v) {
  before_value();
  buf_.append(format_float(v));
  flush_if_large();
  return *this;
}

Writer& Writer::value(double v) {
  before_value();
  buf_.append(format_double(v));
  flush_if_large();
  return *this;
}

Writer& Writer::null() {
  before_value();
  buf_.append("null");
  return *this;
}

void Writer::finish() {
  if (finished_) return;
  finished_ = true;
  if (stack_.empty()) buf_.push_back('\n');
  if (out_ != nullptr) {
    std::fwrite(buf_.data(), 1, buf_.size(), out_);
    buf_.clear();
    std::fflush(out_);
  }
}

}  // namespace plumb::json
