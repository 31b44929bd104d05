#include "tokenizer/special.h"

namespace plumb::tok {

namespace {

bool is_ascii_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

}  // namespace

std::vector<Fragment> partition_special(const Vocab& vocab, std::string_view text,
                                        bool parse_special) {
  std::vector<Fragment> fragments;
  if (text.empty()) return fragments;
  fragments.push_back({-1, 0, text.size()});

  // One token at a time over all raw fragments, as llama.cpp does; each pass is linear in the
  // text (llama.cpp's list surgery is quadratic in the number of occurrences).
  std::vector<Fragment> next;
  for (const int32_t id : vocab.special_tokens) {
    const TokenData& token = vocab.tokens[id];
    if (!parse_special && (token.attr & (kAttrControl | kAttrUnknown))) continue;
    const std::string_view needle = token.text;
    bool any = false;
    next.clear();
    for (const Fragment& f : fragments) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      const size_t end = f.offset + f.length;
      const std::string_view window = text.substr(0, end);
      size_t pos = f.offset;
      while (pos < end) {
        const size_t match = window.find(needle, pos);
        if (match == std::string_view::npos) {
          next.push_back({-1, pos, end - pos});
          break;
        }
        any = true;
        size_t left_end = match;
        if (token.attr & kAttrLstrip) {
          while (left_end > pos && is_ascii_space(text[left_end - 1])) --left_end;
        }
        if (left_end > pos) next.push_back({-1, pos, left_end - pos});
        next.push_back({id, 0, 0});
        pos = match + needle.size();
        if (token.attr & kAttrRstrip) {
          while (pos < end && is_ascii_space(text[pos])) ++pos;
        }
      }
    }
    if (any) fragments.swap(next);
  }
  return fragments;
}

}  // namespace plumb::tok
