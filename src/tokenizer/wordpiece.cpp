#include <algorithm>
#include <string>

#include "tokenizer/models.h"
#include "tokenizer/unicode.h"

namespace plumb::tok {

namespace {

// CJK ideographs that BERT's basic tokenizer splits one by one (llama.cpp keeps the Hugging
// Face range 0x2B920 where 0x2B820 was meant).
bool is_chinese_char(uint32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
         (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

// BERT's normaliser and basic tokenizer: accents stripped (NFD, first code point, marks
// dropped), lowercase, control characters dropped, split on whitespace, punctuation, ASCII
// symbols and CJK ideographs standing alone.
std::vector<std::string> basic_split(const Vocab& vocab, std::string_view text) {
  std::vector<std::string> words(1);
  size_t offset = 0;
  while (offset < text.size()) {
    uint32_t cpt = decode_utf8_at(text, &offset);
    if (vocab.strip_accents) cpt = nfd_first(cpt);
    const uint8_t cat = category_bits(cpt);
    if (is_whitespace(cpt)) {
      if (!words.back().empty()) words.emplace_back();
      continue;
    }
    if (cpt == 0 || cpt == kReplacementChar || (cat & kControl)) continue;
    if (vocab.strip_accents && (cat & kMark)) continue;
    const std::string s = utf8_of(vocab.lowercase ? to_lower(cpt) : cpt);
    if ((cat & kPunctuation) || (cpt < 0x7F && (cat & kSymbol)) || is_chinese_char(cpt)) {
      if (!words.back().empty()) words.emplace_back();
      words.back() = s;
      words.emplace_back();
    } else {
      words.back() += s;
    }
  }
  if (words.back().empty()) words.pop_back();
  return words;
}

}  // namespace

void wpm_tokenize(const Vocab& vocab, std::string_view text, std::vector<int32_t>* out) {
  for (const std::string& word : basic_split(vocab, text)) {
    if (word.empty()) continue;
    const std::string marked = "\xE2\x96\x81" + word;  // the phantom space of a word start
    const int n = static_cast<int>(marked.size());
    const size_t before = out->size();
    // Greedy longest match from each position; one position without a match voids the word.
    for (int i = 0; i < n; ++i) {
      bool matched = false;
      for (int j = std::min(n, i + vocab.max_token_len + 1); j > i; --j) {
        const int32_t id = vocab.find(std::string_view(marked).substr(i, j - i));
        if (id >= 0) {
          out->push_back(id);
          matched = true;
          i = j - 1;
          break;
        }
      }
      if (!matched) {
        out->resize(before);
        break;
      }
    }
    if (out->size() == before && vocab.unk >= 0) out->push_back(vocab.unk);
  }
}

}  // namespace plumb::tok
