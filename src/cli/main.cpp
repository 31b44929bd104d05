// plumb: run GGUF language models on CPU and NVIDIA GPUs, and prove the numbers.
#include <algorithm>
#include <cstdio>
#include <cstring>

#include "cli/command.h"

namespace plumb::cli {

namespace {
std::vector<Command>& registry() {
  static std::vector<Command> commands;
  return commands;
}
}  // namespace

bool register_command(Command command) {
  registry().push_back(command);
  return true;
}

const std::vector<Command>& commands() { return registry(); }

}  // namespace plumb::cli

namespace {

void print_usage(FILE* out) {
  std::vector<plumb::cli::Command> sorted = plumb::cli::commands();
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& a, const auto& b) { return std::strcmp(a.name, b.name) < 0; });
  std::fprintf(out, "usage: plumb COMMAND [ARGS...]   (plumb COMMAND --help for its options)\n\n");
  std::fprintf(out, "commands:\n");
  for (const auto& c : sorted) std::fprintf(out, "  %-10s %s\n", c.name, c.summary);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0 ||
      std::strcmp(argv[1], "help") == 0) {
    print_usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  for (const auto& c : plumb::cli::commands()) {
    if (std::strcmp(c.name, argv[1]) == 0) return c.run(argc - 1, argv + 1);
  }
  std::fprintf(stderr, "plumb: unknown command '%s'\n\n", argv[1]);
  print_usage(stderr);
  return 2;
}
