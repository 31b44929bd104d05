// One line of chat input at a time. On a terminal, with libedit (BSD licence; Debian's
// libedit-dev), the line can be edited (arrow keys, Ctrl-A/E, ...) and earlier lines come
// back with up/down; elsewhere (a pipe, a file, a build without libedit) it is a plain read,
// so that scripted input is taken as it is, escape codes and all.
#pragma once

#include <string>

namespace plumb::cli {

class LineReader {
 public:
  // interactive: stdin is a terminal. `history_path`: where history is kept between runs
  // ("" for none).
  LineReader(bool interactive, std::string history_path);
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // Shows `prompt` (interactive only) and reads a line without its newline; false at end of
  // input (or when the read is interrupted by a signal).
  bool read(const std::string& prompt, std::string* line);
  // Whether line editing is in use (terminal and libedit).
  bool editing() const { return editing_; }

 private:
  bool interactive_;
  bool editing_;
  std::string history_path_;
};

// $HOME/.plumb_history, or "" when HOME is not set.
std::string default_history_path();

}  // namespace plumb::cli
