// Subcommands register themselves; main() dispatches `plumb NAME ARGS...` to them.
#pragma once

#include <string>
#include <vector>

namespace plumb::cli {

// argv[0] is the subcommand name. Returns the process exit code.
using CommandFn = int (*)(int argc, char** argv);

struct Command {
  const char* name;
  const char* summary;  // one line for `plumb --help`
  CommandFn run;
};

// Called from static initializers in each src/cli/<name>.cpp:
//   static const bool registered = register_command({"inspect", "show a GGUF file", run_inspect});
bool register_command(Command command);
const std::vector<Command>& commands();

}  // namespace plumb::cli
