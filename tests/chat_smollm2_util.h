// Helpers of the SmolLM2 chat tests: the model (test_models.h) and reading chat-smollm2.json.
#pragma once

#include <string>
#include <vector>

#include "model/chat_template.h"
#include "test_models.h"
#include "test_util.h"
#include "util/json_value.h"

namespace plumb::test {

inline std::vector<ChatMessage> chat_messages(const json::Value& list) {
  std::vector<ChatMessage> out;
  for (const json::Value& m : list.items()) {
    out.push_back({m["role"].as_string(), m["content"].as_string()});
  }
  return out;
}

inline std::vector<int32_t> json_ints(const json::Value& array) {
  std::vector<int32_t> out;
  for (const json::Value& v : array.items()) out.push_back(static_cast<int32_t>(v.as_number()));
  return out;
}

inline std::vector<float> json_floats(const json::Value& array) {
  std::vector<float> out;
  for (const json::Value& v : array.items()) out.push_back(static_cast<float>(v.as_number()));
  return out;
}

}  // namespace plumb::test
