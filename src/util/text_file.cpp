#include "util/text_file.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace plumb {

Result<std::string> read_text_file(const std::string& path, const std::string& what) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    return Status::errorf("%s %s: cannot read: %s", what.c_str(), path.c_str(), std::strerror(errno));
  }
  if (S_ISDIR(st.st_mode)) {
    return Status::errorf("%s %s: is a directory; name a text file", what.c_str(), path.c_str());
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::errorf("%s %s: cannot open: %s", what.c_str(), path.c_str(), std::strerror(errno));
  std::stringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return Status::errorf("%s %s: read failed", what.c_str(), path.c_str());
  return buffer.str();
}

std::string process_escapes(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\' || i + 1 == text.size()) {
      out.push_back(text[i]);
      continue;
    }
    const char c = text[i + 1];
    switch (c) {
      case 'n': out.push_back('\n'); ++i; break;
      case 'r': out.push_back('\r'); ++i; break;
      case 't': out.push_back('\t'); ++i; break;
      case '\'': out.push_back('\''); ++i; break;
      case '"': out.push_back('"'); ++i; break;
      case '\\': out.push_back('\\'); ++i; break;
      case 'x':
        if (i + 3 < text.size() + 0 && hex(text[i + 2]) >= 0 && hex(text[i + 3]) >= 0) {
          out.push_back(static_cast<char>(hex(text[i + 2]) * 16 + hex(text[i + 3])));
          i += 3;
          break;
        }
        out.push_back('\\');
        break;
      default: out.push_back('\\'); break;
    }
  }
  return out;
}

}  // namespace plumb
