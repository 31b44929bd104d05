#include "util/status.h"

#include <cstdio>

namespace plumb {

std::string vstrprintf(const char* fmt, va_list args) {
  va_list copy;
  va_copy(copy, args);
  const int n = std::vsnprintf(nullptr, 0, fmt, copy);
  va_end(copy);
  if (n <= 0) return std::string();
  std::string out(static_cast<size_t>(n) + 1, '\0');
  std::vsnprintf(out.data(), out.size(), fmt, args);
  out.resize(static_cast<size_t>(n));
  return out;
}

std::string strprintf(const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  std::string out = vstrprintf(fmt, args);
  va_end(args);
  return out;
}

Status Status::errorf(const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  Status s = error(vstrprintf(fmt, args));
  va_end(args);
  return s;
}

}  // namespace plumb
