// Reading a whole file the user named as text (a prompt, a text to score), with the messages
// the commands share: a directory, a missing or unreadable file each said as such.
#pragma once

#include <string>

#include "util/status.h"

namespace plumb {

// The bytes of `path`; `what` names the option in the error ("-f").
Result<std::string> read_text_file(const std::string& path, const std::string& what);

// llama.cpp's -e: \n \r \t \' \" \\ and \xHH in `text` turned into the characters they stand
// for; any other backslash is kept as it is.
std::string process_escapes(const std::string& text);

}  // namespace plumb
