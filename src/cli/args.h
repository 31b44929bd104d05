// A small declarative option parser shared by every subcommand, so each one gets --help,
// "unknown option" and "missing value" errors the same way.
//
//   ArgParser p("inspect", "FILE.gguf [--json]", "Show a GGUF file's metadata and tensors.");
//   bool json = false;
//   p.flag("--json", "machine-readable output", &json);
//   if (auto code = p.parse(argc, argv)) return *code;   // --help or a usage error
//   p.positional()  // the remaining arguments
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace plumb::cli {

class ArgParser {
 public:
  ArgParser(std::string command, std::string synopsis, std::string description);

  // `names` is a comma-separated list: "-m,--model".
  void flag(const std::string& names, const std::string& help, bool* out);
  void option(const std::string& names, const std::string& metavar, const std::string& help,
              std::string* out);
  void option(const std::string& names, const std::string& metavar, const std::string& help,
              int* out);
  void option(const std::string& names, const std::string& metavar, const std::string& help,
              int64_t* out);
  void option(const std::string& names, const std::string& metavar, const std::string& help,
              float* out);
  // Repeatable option: each occurrence is appended.
  void option(const std::string& names, const std::string& metavar, const std::string& help,
              std::vector<std::string>* out);

  // Positional arguments: at least min_count and at most max_count (-1: unlimited).
  void positionals(const std::string& metavar, int min_count, int max_count);

  // Returns an exit code when the command should stop now (0 after --help, 2 after a usage
  // error, which is printed to stderr), or nullopt to go on.
  std::optional<int> parse(int argc, char** argv);

  const std::vector<std::string>& positional() const { return positional_; }
  void print_help(FILE* out) const;
  // "plumb inspect: <message>" on stderr; returns 2 (usage error).
  int usage_error(const std::string& message) const;

 private:
  struct Option {
    std::vector<std::string> names;
    std::string metavar;  // empty for flags
    std::string help;
    std::function<bool(const std::string&)> set;  // false: the value does not parse
  };
  void add(const std::string& names, const std::string& metavar, const std::string& help,
           std::function<bool(const std::string&)> set);
  const Option* find(const std::string& name) const;

  std::string command_;
  std::string synopsis_;
  std::string description_;
  std::vector<Option> options_;
  std::string positional_metavar_;
  int min_positional_ = 0;
  int max_positional_ = 0;
  std::vector<std::string> positional_;
};

// Prints "plumb <command>: error: <message>" to stderr and returns 1 (runtime failure).
int fail(const char* command, const std::string& message);

}  // namespace plumb::cli
