// The PCRE2 pre-tokenizers against an independent reference: llama.cpp hand-codes the GPT-2 and
// Llama 3 splitters (unicode_regex_split_custom_gpt2 / _llama3) over its own category tables.
// Those two walkers are re-stated here over plumb's tables and compared with PCRE2 on random
// strings from an alphabet of the characters where the two could part ways.
#include <gtest/gtest.h>

#include <random>
#include <regex>
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
      "a", "Z", "é", "ß", "Ж", "中", "ก", "\xE0\xB8\xB1" /* Thai mark */,
      "\xCC\x81" /* combining */, "1", "٣", "½", "Ⅻ", " ", "  ", "\t", "\n", "\r", "\v",
      "\xC2\xA0", "\xC2\x85", "\xE2\x80\xA8",
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
    ASSERT_EQ(pcre2_words(*llama3.value(), text), reference_llama3(cpts))
        << "llama3: '" << text << "'";
  }
}


// llama.cpp's general path (unicode_regex_split without a hand-coded splitter): std::regex on a
// "collapsed" text (one byte per code point: ASCII kept, non-ASCII White_Space -> \v, other
// code points -> one byte per category) when the regex uses \p{..}, else std::wregex on the
// code points (non-ASCII White_Space -> \v). Re-stated here as the oracle for the chains.
std::vector<size_t> std_regex_split(const std::vector<uint32_t>& cpts, const std::string& regex,
                                    const std::vector<size_t>& pieces) {
  const bool collapsed = regex.find("\\p{") != std::string::npos;
  std::vector<size_t> out;
  size_t start = 0;
  auto emit = [&](auto begin, auto end, const auto& expr) {
    using It = decltype(begin);
    for (size_t piece : pieces) {
      std::regex_iterator<It> it(begin + start, begin + start + piece, expr), last;
      size_t done = 0;
      for (; it != last; ++it) {
        const size_t pos = static_cast<size_t>(it->position()), len = static_cast<size_t>(it->length());
        if (pos > done) out.push_back(pos - done);
        if (len > 0) out.push_back(len);
        done = pos + len;
      }
      if (done < piece) out.push_back(piece - done);
      start += piece;
    }
    (void)end;
  };
  if (collapsed) {
    std::string text(cpts.size(), '\0');
    for (size_t i = 0; i < cpts.size(); ++i) {
      const uint32_t c = cpts[i];
      const uint8_t cat = category_bits(c);
      if (c < 128) text[i] = static_cast<char>(c);
      else if (tok::is_whitespace(c)) text[i] = '\v';
      else if (cat & tok::kNumber) text[i] = '\xD1';
      else if (cat & tok::kLetter) text[i] = '\xD2';
      else if (cat & tok::kPunctuation) text[i] = '\xD3';
      else if (cat & tok::kMark) text[i] = '\xD4';
      else if (cat & tok::kSymbol) text[i] = '\xD5';
      else text[i] = '\xD0';
    }
    struct Cat {
      const char* name;
      const char* replacement;
    };
    const Cat cats[] = {{"\\p{N}", "\xD1\x30-\x39"},
                        {"\\p{L}", "\xD2\x41-\x5A\x61-\x7A"},
                        {"\\p{P}", "\xD3\x21-\x23\x25-\x2A\x2C-\x2F\x3A-\x3B\x3F-\x40\\\x5B-\\\x5D\x5F\\\x7B\\\x7D"}};
    std::string expr;
    bool inside = false;
    for (size_t i = 0; i < regex.size(); ++i) {
      if (regex[i] == '[' && (i == 0 || regex[i - 1] != '\\')) inside = true;
      if (inside && regex[i] == ']' && regex[i - 1] != '\\') inside = false;
      bool replaced = false;
      for (const Cat& cat : cats) {
        if (regex.compare(i, 5, cat.name) == 0) {
          expr += inside ? cat.replacement : std::string("[") + cat.replacement + "]";
          i += 4;
          replaced = true;
          break;
        }
      }
      if (!replaced) expr += regex[i];
    }
    const std::regex re(expr, std::regex_constants::optimize | std::regex_constants::nosubs);
    emit(text.cbegin(), text.cend(), re);
  } else {
    std::wstring text(cpts.begin(), cpts.end());
    for (wchar_t& c : text) {
      if (c > 0x7F && tok::is_whitespace(static_cast<uint32_t>(c))) c = 0x0B;
    }
    const std::vector<uint32_t> wide_regex = tok::decode_utf8(regex);
    const std::wregex re(std::wstring(wide_regex.begin(), wide_regex.end()),
                         std::regex_constants::optimize | std::regex_constants::nosubs);
    emit(text.cbegin(), text.cend(), re);
  }
  return out;
}

constexpr const char* kGpt2Regex =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";

// A chain as llama.cpp runs it: the GPT-2 regex through its hand-coded walker, the rest
// through std::regex.
std::vector<size_t> oracle_chain(const std::vector<uint32_t>& cpts,
                                 const std::vector<std::string>& chain) {
  std::vector<size_t> pieces;
  if (!cpts.empty()) pieces.push_back(cpts.size());
  for (const std::string& regex : chain) {
    if (regex == kGpt2Regex) {
      std::vector<size_t> next;
      size_t start = 0;
      for (size_t piece : pieces) {
        const std::vector<uint32_t> sub(cpts.begin() + start, cpts.begin() + start + piece);
        for (size_t len : reference_gpt2(sub)) next.push_back(len);
        start += piece;
      }
      pieces = next;
    } else {
      pieces = std_regex_split(cpts, regex, pieces);
    }
  }
  return pieces;
}

TEST(TokenizerPretokenize, PcreChainsMatchLlamaCppStdRegexPath) {
  // The regex lists of llama.cpp's llm_tokenizer_bpe for these pre-tokenizers (as UTF-8, the
  // way its source spells them).
  const std::string qwen2 =
      "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
      "\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
  const std::string cjk = "[\xE4\xB8\x80-\xE9\xBE\xA5\xE0\xA0\x80-\xE4\xB8\x80\xEA\xB0\x80-\xED\x9F\xBF]+";
  const struct {
    tok::PreType type;
    std::vector<std::string> chain;
  } cases[] = {
      {tok::PreType::kQwen2, {qwen2}},
      {tok::PreType::kStarcoder, {"\\p{N}", kGpt2Regex}},
      {tok::PreType::kFalcon, {"[\\p{P}\\$\\+<=>\\^~\\|`]+", kGpt2Regex, "[0-9][0-9][0-9]"}},
      {tok::PreType::kDefault,
       {"[\\p{P}\\$\\+<=>\\^~\\|]+", kGpt2Regex, "\\p{N}+", "[0-9][0-9][0-9]"}},
      {tok::PreType::kDeepseekCoder, {"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", cjk, "\\p{N}"}},
      {tok::PreType::kDeepseekLlm,
       {"[\r\n]", "\\s?["
        "A-Za-z\xC2\xB5\xC3\x80-\xC3\x96\xC3\x98-\xC3\xB6\xC3\xB8-\xC6\xBA\xC6\xBC-\xC6\xBF"
        "\xC7\x84-\xCA\x93\xCA\x95-\xCA\xAF\xCD\xB0-\xCD\xB3\xCD\xB6\xCD\xB7\xCD\xBB-\xCD\xBD"
        "\xCD\xBF\xCE\x86\xCE\x88-\xCE\x8A\xCE\x8C\xCE\x8E-\xCE\xA1\xCE\xA3-\xCF\xB5\xCF\xB7-"
        "\xD2\x81\xD2\x8A-\xD4\xAF\xD4\xB1-\xD5\x96\xE1\x82\xA0-\xE1\x83\x85\xE1\x8E\xA0-\xE1"
        "\x8F\xB5\xE1\x8F\xB8-\xE1\x8F\xBD\xE1\xB2\x90-\xE1\xB2\xBA\xE1\xB2\xBD-\xE1\xB2\xBF"
        "\xE1\xB4\x80-\xE1\xB4\xAB\xE1\xB5\xAB-\xE1\xB5\xB7\xE1\xB5\xB9-\xE1\xB6\x9A\xE1\xB8"
        "\x80-\xE1\xBC\x95\xE1\xBC\x98-\xE1\xBC\x9D\xE1\xBC\xA0-\xE1\xBD\x85\xE1\xBD\x88-\xE1"
        "\xBD\x8D\xE1\xBD\x90-\xE1\xBD\x97\xE1\xBD\x99\xE1\xBD\x9B\xE1\xBD\x9D\xE1\xBD\x9F-"
        "\xE1\xBD\xBD\xE1\xBE\x80-\xE1\xBE\xB4\xE1\xBE\xB6-\xE1\xBE\xBC\xE1\xBE\xBE\xE1\xBF"
        "\x82-\xE1\xBF\x84\xE1\xBF\x86-\xE1\xBF\x8C\xE1\xBF\x90-\xE1\xBF\x93\xE1\xBF\x96-\xE1"
        "\xBF\x9B\xE1\xBF\xA0-\xE1\xBF\xAC\xE1\xBF\xB2-\xE1\xBF\xB4\xE1\xBF\xB6-\xE1\xBF\xBC"
        "\xE2\x84\x82\xE2\x84\x87\xE2\x84\x8A-\xE2\x84\x93\xE2\x84\x95\xE2\x84\x99-\xE2\x84"
        "\x9D\xE2\x84\xA4\xE2\x84\xA6\xE2\x84\xA8\xE2\x84\xAA-\xE2\x84\xAD\xE2\x84\xAF-\xE2"
        "\x84\xB4\xE2\x84\xB9\xE2\x84\xBC-\xE2\x84\xBF\xE2\x85\x85-\xE2\x85\x89\xE2\x85\x8E"
        "\xE2\x86\x83\xE2\x86\x84\xE2\xB0\x80-\xE2\xB1\xBB\xE2\xB1\xBE-\xE2\xB3\xA4\xE2\xB3"
        "\xAB-\xE2\xB3\xAE\xE2\xB3\xB2\xE2\xB3\xB3\xEA\x99\x80-\xEA\x99\xAD\xEA\x9A\x80-\xEA"
        "\x9A\x9B\xEA\x9C\xA2-\xEA\x9D\xAF\xEA\x9D\xB1-\xEA\x9E\x87\xEA\x9E\x8B-\xEA\x9E\x8E"
        "\xEA\xAD\xB0-\xEA\xAE\xBF\xEF\xAC\x80-\xEF\xAC\x86\xEF\xAC\x93-\xEF\xAC\x97\xEF\xBC"
        "\xA1-\xEF\xBC\xBA\xEF\xBD\x81-\xEF\xBD\x9A\xF0\x90\x90\x80-\xF0\x90\x91\x8F\xF0\x90"
        "\x92\xB0-\xF0\x90\x93\x93\xF0\x90\x93\x98-\xF0\x90\x93\xBB\xF0\x90\xB2\x80-\xF0\x90"
        "\xB2\xB2\xF0\x90\xB3\x80-\xF0\x90\xB3\xB2\xF0\x91\xA2\xA0-\xF0\x91\xA3\x9F\xF0\x9E"
        "\xA4\x80-\xF0\x9E\xA5\x83"
        "]+",
        "\\s?[!-/:-~\xEF\xBC\x81-\xEF\xBC\x8F\xEF\xBC\x9A-\xEF\xBD\x9E\xE2\x80\x98-\xE2\x80\x9F\xE3\x80\x80-\xE3\x80\x82]+",
        "\\s+$", cjk, "\\p{N}+"}},
  };
  const std::vector<std::string> alphabet = {
      "a", "Z", "\xC3\xA9", "\xC3\x9F", "\xD0\x96", "\xE4\xB8\xAD", "\xEA\xB0\x80", "1", "7",
      "\xD9\xA3", "\xC2\xBD", " ", "  ", "\t", "\n", "\r", "\xC2\xA0", "\xE3\x80\x80",
      "\xE3\x80\x81", "'", "'s", "'ll", "!", ".", ",", "(", "$", "+", "~", "`", "|", "-",
      "\xEF\xBC\x81", "\xE2\x80\x9C", "\xF0\x9F\xA6\x99", "\xCC\x81", "_", "123", "4567"};
  std::mt19937 rng(7);
  for (const auto& c : cases) {
    auto pre = tok::PreTokenizer::create(c.type);
    ASSERT_TRUE(pre.ok());
    for (int iter = 0; iter < 500; ++iter) {
      std::string text;
      const int n = 1 + static_cast<int>(rng() % 10);
      for (int i = 0; i < n; ++i) text += alphabet[rng() % alphabet.size()];
      ASSERT_EQ(pcre2_words(*pre.value(), text), oracle_chain(tok::decode_utf8(text), c.chain))
          << static_cast<int>(c.type) << ": '" << text << "' " << ::testing::PrintToString(text);
    }
  }
}

}  // namespace
}  // namespace plumb
