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
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace plumb::cli {

// The values a numeric option accepts, checked as it is parsed, so that every command refuses
// a bad number the same way: "--top-p must be in 0..1, not 2" (exit 2). A float is always
// refused when it is not finite (nan, inf), whatever the range.
struct Range {
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
  bool min_exclusive = false;  // "> min" instead of ">= min"

  static Range at_least(double lo) { return Range{lo}; }
  static Range above(double lo) { return Range{lo, std::numeric_limits<double>::infinity(), true}; }
  static Range between(double lo, double hi) { return Range{lo, hi}; }
  bool contains(double v) const;
  // "in 0..1", ">= 0", "> 0"; "" when unbounded.
  std::string describe() const;
};

class ArgParser {
 public:
  ArgParser(std::string command, std::string synopsis, std::string description);

  // `names` is a comma-separated list: "-m,--model".
  void flag(const std::string& names, const std::string& help, bool* out);
  // The --json flag: when given, every error (usage_error, fail) is also printed as one JSON
  // object on stdout, {"error": ..., "command": ..., "exit_code": ...}, so that a script reading
  // stdout always gets JSON. Found before the other options are parsed, wherever it stands.
  void json_flag(const std::string& names, const std::string& help, bool* out);
  // A flag that may be followed by one of `choices` ("on|off|auto"), as llama.cpp's -fa:
  // alone it sets *out to the first choice; "-fa off" or "--flash-attn=off" sets "off".
  void flag_with_value(const std::string& names, const std::string& choices, const std::string& help,
                       std::string* out);
  void option(const std::string& names, const std::string& metavar, const std::string& help,
              std::string* out);
  void option(const std::string& names, const std::string& metavar, const std::string& help,
              int* out, Range range = {});
  void option(const std::string& names, const std::string& metavar, const std::string& help,
              int64_t* out, Range range = {});
  void option(const std::string& names, const std::string& metavar, const std::string& help,
              float* out, Range range = {});
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
  // "plumb inspect: error: <message>" on stderr; returns 1 (runtime failure).
  int fail(const std::string& message) const;

 private:
  struct Option {
    std::vector<std::string> names;
    std::string metavar;  // empty for flags
    std::string help;
    std::vector<std::string> choices;  // flag_with_value: the values it may take
    // "" when the value was taken, else why not ("must be in 0..1").
    std::function<std::string(const std::string&)> set;
  };
  void add(const std::string& names, const std::string& metavar, const std::string& help,
           std::function<std::string(const std::string&)> set);
  const Option* find(const std::string& name) const;

  std::string command_;
  std::string synopsis_;
  std::string description_;
  std::vector<Option> options_;
  std::string positional_metavar_;
  int min_positional_ = 0;
  int max_positional_ = 0;
  std::vector<std::string> positional_;
  std::vector<std::string> json_names_;
  bool json_mode_ = false;
};

// {"error": message, "command": command, "exit_code": code} on one line of stdout.
void print_json_error(const std::string& command, const std::string& message, int exit_code);

// Prints "plumb <command>: error: <message>" to stderr and returns 1 (runtime failure).
int fail(const char* command, const std::string& message);

}  // namespace plumb::cli
