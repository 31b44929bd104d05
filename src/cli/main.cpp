// plumb: run GGUF language models on CPU and NVIDIA GPUs, and prove the numbers.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>
#include <string>
#include <system_error>

#include "cli/args.h"
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

// The last resort: the library reports errors as values, but an allocation or a thread the
// system refuses throws. It ends the command with a message (and, with --json, a JSON error on
// stdout) and exit 1, never an abort. The known sources (-c, -t too large) are refused before.
int run_guarded(const plumb::cli::Command& c, int argc, char** argv) {
  std::string what;
  try {
    return c.run(argc, argv);
  } catch (const std::bad_alloc&) {
    what = "out of memory (a context -c, batch -b or model too large for this machine?)";
  } catch (const std::system_error& e) {
    what = std::string("the system refused a resource: ") + e.what() + " (too many threads -t?)";
  } catch (const std::exception& e) {
    what = std::string("unexpected failure: ") + e.what();
  }
  std::fprintf(stderr, "plumb %s: error: %s\n", c.name, what.c_str());
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--json") == 0) {
      plumb::cli::print_json_error(c.name, what, 1);
      break;
    }
  }
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0 ||
      std::strcmp(argv[1], "help") == 0) {
    print_usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  for (const auto& c : plumb::cli::commands()) {
    if (std::strcmp(c.name, argv[1]) == 0) return run_guarded(c, argc - 1, argv + 1);
  }
  std::fprintf(stderr, "plumb: unknown command '%s'\n\n", argv[1]);
  print_usage(stderr);
  return 2;
}
