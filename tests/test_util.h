// Shared helpers for tests: where ../shared is, running the plumb binary.
#pragma once

#include <string>

namespace plumb::test {

// PLUMB_SHARED, or ../shared next to the repository root.
std::string shared_dir();
// Path under shared_dir(); empty string when it does not exist.
std::string shared_path(const std::string& relative);
// A fresh empty directory under the build's temporary area.
std::string temp_dir(const std::string& name);
// Runs `plumb ARGS` (ARGS already shell-quoted), captures stdout+stderr; returns the exit code.
int run_plumb(const std::string& args, std::string* output);
// Runs a shell command, captures stdout+stderr into *output; returns the exit code.
int run_shell(const std::string& command, std::string* output);

}  // namespace plumb::test

// Skips the current test, visibly, when a shared file is missing.
#define PLUMB_REQUIRE_SHARED(var, relative)                                          \
  std::string var = ::plumb::test::shared_path(relative);                             \
  if (var.empty()) GTEST_SKIP() << "missing shared data: " << (relative)
