// Helpers of the SmolLM2 chat tests: fetching the model through scripts/fetch-model (cached in
// models/ or $PLUMB_MODELS) and reading chat-smollm2.json.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "json_lite.h"
#include "model/chat_template.h"
#include "test_util.h"

namespace plumb::test {

// Runs scripts/fetch-model NAME; returns the model path, or empty with the reason in *why.
// Fast when the file is cached (one checksum).
inline std::string fetch_model(const std::string& name, std::string* why) {
  const std::string cmd = std::string(PLUMB_SOURCE_DIR) + "/scripts/fetch-model " + name + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) {
    *why = "cannot run scripts/fetch-model";
    return {};
  }
  std::string out;
  char buf[4096];
  size_t n = 0;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  const int status = pclose(pipe);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  if (status != 0) {
    *why = "scripts/fetch-model " + name + " failed: " + out;
    return {};
  }
  // The path is the last line (progress messages, merged in here, come before it).
  const size_t nl = out.rfind('\n');
  return nl == std::string::npos ? out : out.substr(nl + 1);
}

inline std::vector<ChatMessage> chat_messages(const Json& list) {
  std::vector<ChatMessage> out;
  for (const Json& m : list.array) out.push_back({m["role"].string, m["content"].string});
  return out;
}

inline std::vector<int32_t> json_ints(const Json& array) {
  std::vector<int32_t> out;
  for (const Json& v : array.array) out.push_back(static_cast<int32_t>(v.number));
  return out;
}

inline std::vector<float> json_floats(const Json& array) {
  std::vector<float> out;
  for (const Json& v : array.array) out.push_back(static_cast<float>(v.number));
  return out;
}

}  // namespace plumb::test
