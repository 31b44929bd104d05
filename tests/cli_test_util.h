// Helpers of the tests that run the plumb binary.
#pragma once

#include <string>

#include "json_lite.h"

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
// timings).
inline Json json_line(const std::string& output) {
  size_t start = output.rfind("\n{");
  start = start == std::string::npos ? 0 : start + 1;
  const size_t end = output.find('\n', start);
  return JsonParser(output.substr(start, end - start)).parse();
}

}  // namespace plumb::test
