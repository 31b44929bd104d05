#include "cli/args.h"

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace plumb::cli {

namespace {

std::vector<std::string> split_names(const std::string& names) {
  std::vector<std::string> out;
  std::stringstream ss(names);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(item);
  return out;
}

bool parse_int64(const std::string& text, int64_t* out) {
  if (text.empty()) return false;
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (errno != 0 || *end != '\0') return false;
  *out = v;
  return true;
}

}  // namespace

ArgParser::ArgParser(std::string command, std::string synopsis, std::string description)
    : command_(std::move(command)), synopsis_(std::move(synopsis)), description_(std::move(description)) {}

void ArgParser::add(const std::string& names, const std::string& metavar, const std::string& help,
                    std::function<bool(const std::string&)> set) {
  options_.push_back(Option{split_names(names), metavar, help, std::move(set)});
}

void ArgParser::flag(const std::string& names, const std::string& help, bool* out) {
  add(names, "", help, [out](const std::string&) {
    *out = true;
    return true;
  });
}

void ArgParser::option(const std::string& names, const std::string& metavar, const std::string& help,
                       std::string* out) {
  add(names, metavar, help, [out](const std::string& v) {
    *out = v;
    return true;
  });
}

void ArgParser::option(const std::string& names, const std::string& metavar, const std::string& help,
                       int* out) {
  add(names, metavar, help, [out](const std::string& v) {
    int64_t x = 0;
    if (!parse_int64(v, &x) || x < INT32_MIN || x > INT32_MAX) return false;
    *out = static_cast<int>(x);
    return true;
  });
}

void ArgParser::option(const std::string& names, const std::string& metavar, const std::string& help,
                       int64_t* out) {
  add(names, metavar, help, [out](const std::string& v) { return parse_int64(v, out); });
}

void ArgParser::option(const std::string& names, const std::string& metavar, const std::string& help,
                       float* out) {
  add(names, metavar, help, [out](const std::string& v) {
    if (v.empty()) return false;
    errno = 0;
    char* end = nullptr;
    const float x = std::strtof(v.c_str(), &end);
    if (errno != 0 || *end != '\0') return false;
    *out = x;
    return true;
  });
}

void ArgParser::option(const std::string& names, const std::string& metavar, const std::string& help,
                       std::vector<std::string>* out) {
  add(names, metavar, help, [out](const std::string& v) {
    out->push_back(v);
    return true;
  });
}

void ArgParser::positionals(const std::string& metavar, int min_count, int max_count) {
  positional_metavar_ = metavar;
  min_positional_ = min_count;
  max_positional_ = max_count;
}

const ArgParser::Option* ArgParser::find(const std::string& name) const {
  for (const Option& o : options_) {
    for (const std::string& n : o.names) {
      if (n == name) return &o;
    }
  }
  return nullptr;
}

std::optional<int> ArgParser::parse(int argc, char** argv) {
  bool only_positional = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (!only_positional && arg == "--") {
      only_positional = true;
      continue;
    }
    if (!only_positional && (arg == "-h" || arg == "--help")) {
      print_help(stdout);
      return 0;
    }
    if (!only_positional && arg.size() > 1 && arg[0] == '-' &&
        !(arg.size() > 1 && (std::isdigit(static_cast<unsigned char>(arg[1])) || arg[1] == '.'))) {
      std::string value;
      bool has_inline_value = false;
      const size_t eq = arg.find('=');
      if (arg.rfind("--", 0) == 0 && eq != std::string::npos) {
        value = arg.substr(eq + 1);
        arg = arg.substr(0, eq);
        has_inline_value = true;
      }
      const Option* o = find(arg);
      if (o == nullptr) return usage_error("unknown option '" + arg + "'");
      if (o->metavar.empty()) {
        if (has_inline_value) return usage_error("option '" + arg + "' takes no value");
        o->set("");
        continue;
      }
      if (!has_inline_value) {
        if (i + 1 >= argc) return usage_error("option '" + arg + "' needs a value (" + o->metavar + ")");
        value = argv[++i];
      }
      if (!o->set(value)) {
        return usage_error("invalid value '" + value + "' for " + arg + " (" + o->metavar + ")");
      }
      continue;
    }
    positional_.push_back(arg);
  }
  const int n = static_cast<int>(positional_.size());
  if (n < min_positional_) {
    return usage_error(positional_metavar_.empty() ? "missing arguments"
                                                   : "missing " + positional_metavar_);
  }
  if (max_positional_ >= 0 && n > max_positional_) {
    return usage_error("unexpected argument '" + positional_[static_cast<size_t>(max_positional_)] + "'");
  }
  return std::nullopt;
}

void ArgParser::print_help(FILE* out) const {
  std::fprintf(out, "usage: plumb %s %s\n\n%s\n", command_.c_str(), synopsis_.c_str(), description_.c_str());
  if (options_.empty()) return;
  std::fprintf(out, "\noptions:\n");
  for (const Option& o : options_) {
    std::string left;
    for (size_t k = 0; k < o.names.size(); ++k) left += (k ? ", " : "") + o.names[k];
    if (!o.metavar.empty()) left += " " + o.metavar;
    std::fprintf(out, "  %-28s %s\n", left.c_str(), o.help.c_str());
  }
  std::fprintf(out, "  %-28s %s\n", "-h, --help", "show this help");
}

int ArgParser::usage_error(const std::string& message) const {
  std::fprintf(stderr, "plumb %s: %s\nusage: plumb %s %s\n(plumb %s --help for details)\n", command_.c_str(),
               message.c_str(), command_.c_str(), synopsis_.c_str(), command_.c_str());
  return 2;
}

int fail(const char* command, const std::string& message) {
  std::fprintf(stderr, "plumb %s: error: %s\n", command, message.c_str());
  return 1;
}

}  // namespace plumb::cli
