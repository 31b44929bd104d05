#include "tokenizer/piece.h"

#include <cstdio>

#include "tokenizer/unicode.h"

namespace plumb::tok {

namespace {

constexpr std::string_view kSpaceMark = "\xE2\x96\x81";  // ▁

std::string unescape_spaces(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    if (text.compare(i, kSpaceMark.size(), kSpaceMark) == 0) {
      out.push_back(' ');
      i += kSpaceMark.size();
    } else {
      out.push_back(text[i++]);
    }
  }
  return out;
}

// Byte-level BPE text back to bytes (llama_decode_text). A code point outside the GPT-2 byte
// table is written the way llama.cpp writes it: "[UNK_BYTE_0x<its utf-8 hex>" + the whole
// token text + "]".
std::string decode_byte_level(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  size_t offset = 0;
  while (offset < text.size()) {
    const uint32_t cpt = decode_utf8_at(text, &offset);
    const int byte = codepoint_to_byte(cpt);
    if (byte >= 0) {
      out.push_back(static_cast<char>(byte));
      continue;
    }
    out += "[UNK_BYTE_0x";
    for (unsigned char c : utf8_of(cpt)) {
      char hex[3];
      std::snprintf(hex, sizeof(hex), "%02x", c);
      out += hex;
    }
    out += text;
    out += "]";
  }
  return out;
}

uint8_t byte_of_token(const std::string& text) {
  // "<0xNN>": llama.cpp parses the two characters after "<0x" with strtol.
  if (text.size() <= 3) return 0;
  return static_cast<uint8_t>(std::strtol(text.substr(3, 2).c_str(), nullptr, 16));
}

}  // namespace

std::string render_piece(const Vocab& vocab, int32_t id) {
  const TokenData& t = vocab.tokens[id];
  if (t.attr & (kAttrUnknown | kAttrControl | kAttrUserDefined)) return t.text;
  if (t.attr & kAttrNormal) {
    if (vocab.type == VocabType::kBpe && !vocab.escape_whitespaces) {
      return decode_byte_level(t.text);
    }
    return unescape_spaces(t.text);
  }
  if (t.attr & kAttrByte) return std::string(1, static_cast<char>(byte_of_token(t.text)));
  return std::string();
}

std::string detokenize(const Vocab& vocab, const std::vector<int32_t>& ids, bool render_special,
                       bool clean_spaces) {
  std::string text;
  bool remove_space = vocab.add_space_prefix;
  for (int32_t id : ids) {
    if (id < 0 || id >= static_cast<int32_t>(vocab.tokens.size())) {
      remove_space = false;
      continue;
    }
    const bool hidden = !render_special && (vocab.tokens[id].attr & (kAttrUnknown | kAttrControl));
    if (!hidden) {
      const std::string& piece = vocab.pieces[id];
      const size_t skip = remove_space && !piece.empty() && piece[0] == ' ' ? 1 : 0;
      text.append(piece, skip, std::string::npos);
    }
    remove_space = false;
  }
  if (!clean_spaces || text.empty()) return text;

  // Pass 1: drop the space before ? ! . ,
  std::string a;
  a.reserve(text.size());
  a.push_back(text[0]);
  for (size_t i = 1; i < text.size(); ++i) {
    const char x = text[i];
    if (text[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) a.pop_back();
    a.push_back(x);
  }
  // Pass 2: " ' " -> "'" (llama.cpp overwrites the following space with a NUL in its buffer
  // and skips it).
  std::string b;
  b.reserve(a.size());
  b.push_back(a[0]);
  for (size_t i = 1; i < a.size(); ++i) {
    const char x = a[i];
    if (x == '\'' && i + 1 < a.size() && a[i - 1] == ' ' && a[i + 1] == ' ') {
      b.pop_back();
      a[i + 1] = '\0';
      b.push_back(x);
      ++i;
      continue;
    }
    b.push_back(x);
  }
  // Pass 3: contractions " 's" " 'm" " 're" " 've" lose their space.
  std::string c;
  c.reserve(b.size());
  c.push_back(b[0]);
  for (size_t i = 1; i < b.size(); ++i) {
    const char x = b[i];
    if (b[i - 1] == ' ' && x == '\'' && i + 1 < b.size()) {
      const char x1 = b[i + 1];
      if (x1 == 's' || x1 == 'm') {
        c.pop_back();
      } else if (i + 2 < b.size()) {
        const char x2 = b[i + 2];
        if ((x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e')) c.pop_back();
      }
    }
    c.push_back(x);
  }
  return c;
}

}  // namespace plumb::tok
