// Helpers of the tests that run the plumb binary.
#pragma once

#include <stdexcept>
#include <string>

#include "util/json_value.h"

namespace plumb::test {

// Single-quoted for the shell.
inline std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out.append("'\\''");
    } else {
      out.push_back(c);
    }
  }
  out.push_back('\'');
  return out;
}

// The last line of a command's output that starts with '{' (stderr, merged in, carries the
// timings). Throws when that line is not JSON, which fails the test with the output shown.
inline json::Value json_line(const std::string& output) {
  size_t start = output.rfind("\n{");
  start = start == std::string::npos ? 0 : start + 1;
  const size_t end = output.find('\n', start);
  Result<json::Value> parsed = json::Value::parse(output.substr(start, end - start));
  if (!parsed.ok()) throw std::runtime_error(parsed.status().message() + " in:\n" + output);
  return std::move(parsed).value();
}

}  // namespace plumb::test
