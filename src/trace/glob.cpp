#include "trace/glob.h"

#include <fnmatch.h>

namespace plumb::trace {

bool glob_match(const std::string& pattern, const std::string& name) {
  return fnmatch(pattern.c_str(), name.c_str(), 0) == 0;
}

GlobList::GlobList(std::string_view comma_separated) {
  size_t start = 0;
  while (start <= comma_separated.size()) {
    size_t end = comma_separated.find(',', start);
    if (end == std::string_view::npos) end = comma_separated.size();
    if (end > start) patterns_.emplace_back(comma_separated.substr(start, end - start));
    start = end + 1;
  }
  select_all_ = patterns_.empty();
  for (const auto& p : patterns_) select_all_ = select_all_ || p == "*";
}

bool GlobList::matches(std::string_view name) const {
  if (select_all_) return true;
  const std::string n(name);
  for (const auto& p : patterns_) {
    if (glob_match(p, n)) return true;
  }
  return false;
}

}  // namespace plumb::trace
