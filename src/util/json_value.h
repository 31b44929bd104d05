// A small JSON reader for the reference files in ../shared (ppl.json, chat-*.json) and for
// tests that check our own --json output. Not for untrusted multi-megabyte input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace plumb::json {

class Value {
 public:
  enum class Kind { Null, Bool, Number, String, Array, Object };

  Kind kind() const { return kind_; }
  bool is_null() const { return kind_ == Kind::Null; }
  bool is_number() const { return kind_ == Kind::Number; }
  bool is_string() const { return kind_ == Kind::String; }
  bool is_array() const { return kind_ == Kind::Array; }
  bool is_object() const { return kind_ == Kind::Object; }

  bool as_bool() const { return bool_; }
  double as_number() const { return number_; }
  // The number truncated toward zero (token ids, counts).
  int64_t as_int() const { return static_cast<int64_t>(number_); }
  const std::string& as_string() const { return string_; }
  const std::vector<Value>& items() const { return items_; }
  // Object members in file order.
  const std::vector<std::pair<std::string, Value>>& members() const { return members_; }
  // Member by key; nullptr when absent or not an object.
  const Value* find(std::string_view key) const;
  bool has(std::string_view key) const { return find(key) != nullptr; }
  // Member by key / item by index, or a null Value when absent, so lookups chain
  // (doc["timings"]["prompt_ms"]) and a missing member reads as null rather than crashing.
  const Value& operator[](std::string_view key) const;
  const Value& operator[](size_t index) const;
  // Items of an array or members of an object; 0 otherwise.
  size_t size() const { return kind_ == Kind::Array ? items_.size() : members_.size(); }

  static Result<Value> parse(std::string_view text);
  static Result<Value> parse_file(const std::string& path);

 private:
  friend class Parser;
  Kind kind_ = Kind::Null;
  bool bool_ = false;
  double number_ = 0.0;
  std::string string_;
  std::vector<Value> items_;
  std::vector<std::pair<std::string, Value>> members_;
};

}  // namespace plumb::json
