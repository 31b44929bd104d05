#include "cli/args.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "util/json.h"

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

bool Range::contains(double v) const {
  if (!std::isfinite(v)) return false;
  return (min_exclusive ? v > min : v >= min) && v <= max;
}

std::string Range::describe() const {
  auto num = [](double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.10g", v);
    return std::string(buf);
  };
  const bool has_min = std::isfinite(min);
  const bool has_max = std::isfinite(max);
  if (has_min && has_max) {
    return min_exclusive ? "in (" + num(min) + ", " + num(max) + "]" : "in " + num(min) + ".." + num(max);
  }
  if (has_min) return (min_exclusive ? "> " : ">= ") + num(min);
  if (has_max) return "<= " + num(max);
  return "";
}

ArgParser::ArgParser(std::string command, std::string synopsis, std::string description)
    : command_(std::move(command)), synopsis_(std::move(synopsis)), description_(std::move(description)) {}

void ArgParser::add(const std::string& names, const std::string& metavar, const std::string& help,
                    std::function<std::string(const std::string&)> set) {
  options_.push_back(Option{split_names(names), metavar, help, {}, std::move(set)});
}

void ArgParser::flag(const std::string& names, const std::string& help, bool* out) {
  add(names, "", help, [out](const std::string&) {
    *out = true;
    return std::string();
  });
}

void ArgParser::json_flag(const std::string& names, const std::string& help, bool* out) {
  flag(names, help, out);
  json_names_ = split_names(names);
}

void ArgParser::flag_with_value(const std::string& names, const std::string& choices, const std::string& help,
                                std::string* out) {
  std::vector<std::string> values;
  std::stringstream ss(choices);
  std::string item;
  while (std::getline(ss, item, '|')) values.push_back(item);
  add(names, "", help, [out, values](const std::string& v) {
    if (v.empty()) {
      *out = values.front();
      return std::string();
    }
    for (const std::string& c : values) {
      if (c == v) {
        *out = v;
        return std::string();
      }
    }
    return std::string("takes no value or one of ") + [&] {
      std::string list;
      for (const std::string& c : values) list += (list.empty() ? "" : ", ") + c;
      return list;
    }();
  });
  options_.back().choices = values;
}

void ArgParser::option(const std::string& names, const std::string& metavar, const std::string& help,
                       std::string* out) {
  add(names, metavar, help, [out](const std::string& v) {
    *out = v;
    return std::string();
  });
}

namespace {

// The range check shared by every numeric option.
std::string out_of_range(const Range& range, bool is_integer) {
  const std::string bounds = range.describe();
  return std::string("must be a ") + (is_integer ? "whole" : "finite") + " number" +
         (bounds.empty() ? "" : " " + bounds);
}

}  // namespace

void ArgParser::option(const std::string& names, const std::string& metavar, const std::string& help,
                       int* out, Range range) {
  range.min = std::max<double>(range.min, INT32_MIN);
  range.max = std::min<double>(range.max, INT32_MAX);
  add(names, metavar, help, [out, range](const std::string& v) {
    int64_t x = 0;
    if (!parse_int64(v, &x) || !range.contains(static_cast<double>(x))) return out_of_range(range, true);
    *out = static_cast<int>(x);
    return std::string();
  });
}

void ArgParser::option(const std::string& names, const std::string& metavar, const std::string& help,
                       int64_t* out, Range range) {
  add(names, metavar, help, [out, range](const std::string& v) {
    int64_t x = 0;
    if (!parse_int64(v, &x) || !range.contains(static_cast<double>(x))) return out_of_range(range, true);
    *out = x;
    return std::string();
  });
}

void ArgParser::option(const std::string& names, const std::string& metavar, const std::string& help,
                       float* out, Range range) {
  add(names, metavar, help, [out, range](const std::string& v) {
    errno = 0;
    char* end = nullptr;
    const float x = v.empty() ? 0.0f : std::strtof(v.c_str(), &end);
    if (v.empty() || errno != 0 || *end != '\0' || !range.contains(x)) {
      return out_of_range(range, false);
    }
    *out = x;
    return std::string();
  });
}

void ArgParser::option(const std::string& names, const std::string& metavar, const std::string& help,
                       std::vector<std::string>* out) {
  add(names, metavar, help, [out](const std::string& v) {
    out->push_back(v);
    return std::string();
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
  for (int i = 1; i < argc && std::strcmp(argv[i], "--") != 0; ++i) {
    for (const std::string& n : json_names_) json_mode_ = json_mode_ || n == argv[i];
  }
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
        if (!o->choices.empty()) {
          // An optional value: inline, or the next argument when it is one of the choices.
          if (!has_inline_value && i + 1 < argc &&
              std::find(o->choices.begin(), o->choices.end(), argv[i + 1]) != o->choices.end()) {
            value = argv[++i];
          }
          if (const std::string why = o->set(value); !why.empty()) {
            return usage_error(arg + " " + why + ", not '" + value + "'");
          }
          continue;
        }
        if (has_inline_value) return usage_error("option '" + arg + "' takes no value");
        o->set("");
        continue;
      }
      if (!has_inline_value) {
        if (i + 1 >= argc) return usage_error("option '" + arg + "' needs a value (" + o->metavar + ")");
        value = argv[++i];
      }
      if (const std::string why = o->set(value); !why.empty()) {
        return usage_error(arg + " " + why + ", not '" + value + "'");
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
    for (size_t k = 0; k < o.choices.size(); ++k) {
      left += (k ? "|" : " [") + o.choices[k] + (k + 1 == o.choices.size() ? "]" : "");
    }
    std::fprintf(out, "  %-28s %s\n", left.c_str(), o.help.c_str());
  }
  std::fprintf(out, "  %-28s %s\n", "-h, --help", "show this help");
}

int ArgParser::usage_error(const std::string& message) const {
  std::fprintf(stderr, "plumb %s: %s\nusage: plumb %s %s\n(plumb %s --help for details)\n", command_.c_str(),
               message.c_str(), command_.c_str(), synopsis_.c_str(), command_.c_str());
  if (json_mode_) print_json_error(command_, message, 2);
  return 2;
}

int ArgParser::fail(const std::string& message) const {
  if (json_mode_) print_json_error(command_, message, 1);
  return cli::fail(command_.c_str(), message);
}

void print_json_error(const std::string& command, const std::string& message, int exit_code) {
  std::fflush(stdout);
  json::Writer w(stdout, 0);
  w.begin_object();
  w.key("error").value(message);
  w.key("command").value(command);
  w.key("exit_code").value(exit_code);
  w.end_object();
  w.finish();
  std::fflush(stdout);
}

int fail(const char* command, const std::string& message) {
  std::fprintf(stderr, "plumb %s: error: %s\n", command, message.c_str());
  return 1;
}

}  // namespace plumb::cli
