// The PCRE2 pre-tokenizers against an independent reference: llama.cpp hand-codes the GPT-2 and
// Llama 3 splitters (unicode_regex_split_custom_gpt2 / _llama3) over its own category tables.
// Those two walkers are re-stated here over plumb's tables and compared with PCRE2 on random
// strings from an alphabet of the characters where the two could part ways.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "tokenizer/pretokenize.h"
#include "tokenizer/unicode.h"

namespace plumb {
namespace {

using tok::category_bits;

struct Flags {
  bool in_range = false, letter = false, number = false, space = false;
};

// Reference walkers: words as code-point lengths, following llama.cpp's control flow.
class Walker {
 public:
  explicit Walker(const std::vector<uint32_t>& cpts) : c_(cpts) {}
  uint32_t cpt(size_t i) const { return i < c_.size() ? c_[i] : 0xFFFFFFFFu; }
  Flags flags(size_t i) const {
    Flags f;
    if (i >= c_.size()) return f;
    f.in_range = true;
    f.letter = category_bits(c_[i]) & tok::kLetter;
    f.number = category_bits(c_[i]) & tok::kNumber;
    f.space = tok::is_whitespace(c_[i]);
    return f;
  }
  size_t size() const { return c_.size(); }

 private:
  const std::vector<uint32_t>& c_;
};

std::vector<size_t> reference_gpt2(const std::vector<uint32_t>& cpts) {
  Walker w(cpts);
  std::vector<size_t> words;
  size_t prev = 0, pos = 0;
  auto add = [&](size_t end) {
    if (end > prev) words.push_back(end - prev);
    const size_t len = end - prev;
    prev = end;
    return len;
  };
  const size_t end = w.size();
  while (pos < end) {
    const uint32_t c = w.cpt(pos);
    const Flags f = w.flags(pos);
    if (c == '\'' && pos + 1 < end) {
      const uint32_t n = w.cpt(pos + 1);
      if (n == 's' || n == 't' || n == 'm' || n == 'd') {
        pos += add(pos + 2);
        continue;
      }
      if (pos + 2 < end) {
        const uint32_t nn = w.cpt(pos + 2);
        if ((n == 'r' && nn == 'e') || (n == 'v' && nn == 'e') || (n == 'l' && nn == 'l')) {
          pos += add(pos + 3);
          continue;
        }
      }
    }
    Flags f2 = c == ' ' ? w.flags(pos + 1) : f;
    if (f2.letter || f2.number) {
      const bool letter = f2.letter;
      pos += c == ' ';
      while (letter ? f2.letter : f2.number) f2 = w.flags(++pos);
      add(pos);
      continue;
    }
    if (!(f2.space || f2.letter || f2.number) && f2.in_range) {
      pos += c == ' ';
      while (!(f2.space || f2.letter || f2.number) && f2.in_range) f2 = w.flags(++pos);
      add(pos);
      continue;
    }
    size_t n_ws = 0;
    while (w.flags(pos + n_ws).space) ++n_ws;
    if (n_ws > 1 && pos + n_ws < end) {
      pos += n_ws - 1;
      add(pos);
      continue;
    }
    if (n_ws > 0) {
      pos += n_ws;
      add(pos);
      continue;
    }
    add(++pos);
  }
  return words;
}

std::vector<size_t> reference_llama3(const std::vector<uint32_t>& cpts) {
  Walker w(cpts);
  std::vector<size_t> words;
  size_t prev = 0, pos = 0;
  auto add = [&](size_t end) {
    if (end > prev) words.push_back(end - prev);
    const size_t len = end - prev;
    prev = end;
    return len;
  };
  auto lower = [](uint32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : tok::to_lower(c); };
  const size_t end = w.size();
  while (pos < end) {
    const uint32_t c = w.cpt(pos);
    const Flags f = w.flags(pos);
    if (c == '\'' && pos + 1 < end) {
      const uint32_t n = lower(w.cpt(pos + 1));
      if (n == 's' || n == 't' || n == 'm' || n == 'd') {
        pos += add(pos + 2);
        continue;
      }
      if (pos + 2 < end) {
        const uint32_t nn = lower(w.cpt(pos + 2));
        if ((n == 'r' && nn == 'e') || (n == 'v' && nn == 'e') || (n == 'l' && nn == 'l')) {
          pos += add(pos + 3);
          continue;
        }
      }
    }
    if (!(c == '\r' || c == '\n' || f.number)) {
      if (f.letter || w.flags(pos + 1).letter) {
        ++pos;
        while (w.flags(pos).letter) ++pos;
        add(pos);
        continue;
      }
    }
    if (f.number) {
      size_t start = pos;
      while (w.flags(pos).number) {
        if (++pos - start >= 3) {
          add(pos);
          start = pos;
        }
      }
      add(pos);
      continue;
    }
    Flags f2 = c == ' ' ? w.flags(pos + 1) : f;
    if (!(f2.space || f2.letter || f2.number) && f.in_range) {
      pos += c == ' ';
      while (!(f2.space || f2.letter || f2.number) && f2.in_range) f2 = w.flags(++pos);
      uint32_t c2 = w.cpt(pos);
      while (c2 == '\r' || c2 == '\n') c2 = w.cpt(++pos);
      add(pos);
      continue;
    }
    size_t n_ws = 0, last_rn = 0;
    while (w.flags(pos + n_ws).space) {
      const uint32_t c2 = w.cpt(pos + n_ws);
      if (c2 == '\r' || c2 == '\n') last_rn = pos + n_ws + 1;
      ++n_ws;
    }
    if (last_rn > 0) {
      pos = last_rn;
      add(pos);
      continue;
    }
    if (n_ws > 1 && pos + n_ws < end) {
      pos += n_ws - 1;
      add(pos);
      continue;
    }
    if (n_ws > 0) {
      pos += n_ws;
      add(pos);
      continue;
    }
    add(++pos);
  }
  return words;
}

// Code-point lengths of PCRE2's words.
std::vector<size_t> pcre2_words(const tok::PreTokenizer& pre, const std::string& text) {
  std::string storage;
  std::vector<std::string_view> words;
  pre.split(text, &storage, &words);
  std::vector<size_t> lengths;
  for (std::string_view w : words) lengths.push_back(tok::decode_utf8(w).size());
  return lengths;
}

TEST(TokenizerPretokenize, PcreMatchesLlamaCppHandCodedSplitters) {
  const std::vector<std::string> alphabet = {
      "a", "Z", "é", "ß", "Ж", "中", "ก", "\xE0\xB8\xB1" /* Thai mark */, "\xCC\x81" /* combining */,
      "1", "٣", "½", "Ⅻ", " ", "  ", "\t", "\n", "\r", "\v", "\xC2\xA0", "\xC2\x85", "\xE2\x80\xA8",
      "\xE3\x80\x80", "'", "'s", "'S", "'ll", "'LL", "'re", "'ve", "'d", "'m", "'t", "!", ".", ",",
      "(", "$", "+", "~", "-", "🦙", "😀", "\xE2\x80\x8D", "\xEF\xBF\xBD", "\xFF", "\xE2\x96",
      "\x1C", std::string(1, '\0'), "_", "/"};
  auto gpt2 = tok::PreTokenizer::create(tok::PreType::kGpt2);
  auto llama3 = tok::PreTokenizer::create(tok::PreType::kLlama3);
  ASSERT_TRUE(gpt2.ok());
  ASSERT_TRUE(llama3.ok());
  std::mt19937 rng(42);
  for (int iter = 0; iter < 8000; ++iter) {
    std::string text;
    const int n = 1 + static_cast<int>(rng() % 12);
    for (int i = 0; i < n; ++i) text += alphabet[rng() % alphabet.size()];
    const std::vector<uint32_t> cpts = tok::decode_utf8(text);
    ASSERT_EQ(pcre2_words(*gpt2.value(), text), reference_gpt2(cpts)) << "gpt2: '" << text << "'";
    ASSERT_EQ(pcre2_words(*llama3.value(), text), reference_llama3(cpts)) << "llama3: '" << text << "'";
  }
}

}  // namespace
}  // namespace plumb
