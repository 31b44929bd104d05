#include "cli/line_reader.h"

#include <cstdio>
#include <cstdlib>
#include <iostream>

#ifdef PLUMB_HAVE_LIBEDIT
#include <editline/readline.h>
#endif

namespace plumb::cli {

namespace {
constexpr int kHistoryLines = 500;
}  // namespace

std::string default_history_path() {
  const char* home = std::getenv("HOME");
  if (home == nullptr || *home == '\0') return "";
  return std::string(home) + "/.plumb_history";
}

LineReader::LineReader(bool interactive, std::string history_path)
    : interactive_(interactive), editing_(false), history_path_(std::move(history_path)) {
#ifdef PLUMB_HAVE_LIBEDIT
  editing_ = interactive_;
  if (editing_) {
    using_history();
    stifle_history(kHistoryLines);
    if (!history_path_.empty()) read_history(history_path_.c_str());  // absent the first time
  }
#endif
}

LineReader::~LineReader() {
#ifdef PLUMB_HAVE_LIBEDIT
  if (editing_ && !history_path_.empty()) write_history(history_path_.c_str());
#endif
}

bool LineReader::read(const std::string& prompt, std::string* line) {
#ifdef PLUMB_HAVE_LIBEDIT
  if (editing_) {
    char* text = readline(prompt.c_str());
    if (text == nullptr) return false;
    *line = text;
    std::free(text);
    if (!line->empty()) add_history(line->c_str());
    return true;
  }
#endif
  if (interactive_) {
    std::fputs(prompt.c_str(), stdout);
    std::fflush(stdout);
  }
  return static_cast<bool>(std::getline(std::cin, *line));
}

}  // namespace plumb::cli
