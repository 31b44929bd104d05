// Tap selection by shell-style globs ("blk.3.*", "*.attn_out", "inp_embd,logits").
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace plumb::trace {

// A comma-separated list of fnmatch(3) patterns ('*', '?', '[...]'; '*' also matches '.').
// A name is selected when any pattern matches it. The empty list and "*" select everything.
class GlobList {
 public:
  explicit GlobList(std::string_view comma_separated = "*");
  bool matches(std::string_view name) const;
  bool selects_all() const { return select_all_; }
  const std::vector<std::string>& patterns() const { return patterns_; }

 private:
  std::vector<std::string> patterns_;
  bool select_all_ = false;
};

bool glob_match(const std::string& pattern, const std::string& name);

}  // namespace plumb::trace
