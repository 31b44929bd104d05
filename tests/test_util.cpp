#include "test_util.h"

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

namespace plumb::test {

std::string shared_dir() {
  if (const char* env = std::getenv("PLUMB_SHARED"); env != nullptr && *env != '\0') return env;
  return std::string(PLUMB_SOURCE_DIR) + "/../shared";
}

std::string shared_path(const std::string& relative) {
  std::string p = shared_dir() + "/" + relative;
  return std::filesystem::exists(p) ? p : std::string();
}

std::string temp_dir(const std::string& name) {
  const char* base = std::getenv("TMPDIR");
  std::filesystem::path p = std::filesystem::path(base ? base : "/tmp") /
                            ("plumb-test-" + std::to_string(getpid()) + "-" + name);
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p.string();
}

int run_plumb(const std::string& args, std::string* output) {
  return run_shell(std::string(PLUMB_BINARY) + " " + args, output);
}

int run_shell(const std::string& command, std::string* output) {
  const std::string cmd = command + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) return -1;
  std::array<char, 4096> buf{};
  std::string out;
  size_t n = 0;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
  const int status = pclose(pipe);
  if (output != nullptr) *output = out;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace plumb::test
