#include "tokenizer/unicode.h"

#include <algorithm>
#include <array>

namespace plumb::tok {

uint32_t decode_utf8_at(std::string_view s, size_t* offset) {
  const size_t i = *offset;
  const size_t n = s.size();
  auto byte = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  auto cont = [&](size_t k) { return k < n && (byte(k) & 0xC0) == 0x80; };
  const uint8_t b0 = byte(i);
  if (!(b0 & 0x80)) {
    *offset = i + 1;
    return b0;
  }
  if ((b0 & 0x40) && !(b0 & 0x20)) {
    if (cont(i + 1)) {
      *offset = i + 2;
      return ((b0 & 0x1Fu) << 6) | (byte(i + 1) & 0x3Fu);
    }
  } else if ((b0 & 0x40) && !(b0 & 0x10)) {
    if (cont(i + 1) && cont(i + 2)) {
      *offset = i + 3;
      return ((b0 & 0x0Fu) << 12) | ((byte(i + 1) & 0x3Fu) << 6) | (byte(i + 2) & 0x3Fu);
    }
  } else if ((b0 & 0x40) && !(b0 & 0x08)) {
    if (cont(i + 1) && cont(i + 2) && cont(i + 3)) {
      *offset = i + 4;
      return ((b0 & 0x07u) << 18) | ((byte(i + 1) & 0x3Fu) << 12) |
             ((byte(i + 2) & 0x3Fu) << 6) | (byte(i + 3) & 0x3Fu);
    }
  }
  *offset = i + 1;
  return kReplacementChar;
}

std::vector<uint32_t> decode_utf8(std::string_view text) {
  std::vector<uint32_t> out;
  out.reserve(text.size());
  size_t offset = 0;
  while (offset < text.size()) out.push_back(decode_utf8_at(text, &offset));
  return out;
}

void append_utf8(uint32_t cpt, std::string* out) {
  if (cpt <= 0x7F) {
    out->push_back(static_cast<char>(cpt));
  } else if (cpt <= 0x7FF) {
    out->push_back(static_cast<char>(0xC0 | (cpt >> 6)));
    out->push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  } else if (cpt <= 0xFFFF) {
    out->push_back(static_cast<char>(0xE0 | (cpt >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cpt >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  } else if (cpt <= 0x10FFFF) {
    out->push_back(static_cast<char>(0xF0 | (cpt >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cpt >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cpt >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  } else {
    append_utf8(kReplacementChar, out);
  }
}

std::string utf8_of(uint32_t cpt) {
  std::string s;
  append_utf8(cpt, &s);
  return s;
}

uint8_t category_bits(uint32_t cpt) {
  // Codepoints below 0x10000 go through a flat table built once (the hot path of WordPiece).
  static const std::vector<uint8_t> bmp = [] {
    std::vector<uint8_t> t(0x10000);
    for (size_t r = 0; r < kCategoryRangeCount; ++r) {
      const uint32_t end = r + 1 < kCategoryRangeCount ? kCategoryRanges[r + 1].start : 0x110000;
      for (uint32_t c = kCategoryRanges[r].start; c < end && c < 0x10000; ++c) {
        t[c] = kCategoryRanges[r].bits;
      }
    }
    return t;
  }();
  if (cpt < 0x10000) return bmp[cpt];
  if (cpt >= 0x110000) return kControl;
  const CategoryRange* begin = kCategoryRanges;
  const CategoryRange* end = kCategoryRanges + kCategoryRangeCount;
  const CategoryRange* it = std::upper_bound(
      begin, end, cpt, [](uint32_t c, const CategoryRange& r) { return c < r.start; });
  return (it - 1)->bits;
}

bool is_whitespace(uint32_t cpt) {
  return std::binary_search(kWhiteSpace, kWhiteSpace + kWhiteSpaceCount, cpt);
}

uint32_t to_lower(uint32_t cpt) {
  const CodepointPair* end = kLowercase + kLowercaseCount;
  const CodepointPair* it = std::lower_bound(
      kLowercase, end, cpt, [](const CodepointPair& p, uint32_t c) { return p.from < c; });
  return it != end && it->from == cpt ? it->to : cpt;
}

uint32_t nfd_first(uint32_t cpt) {
  const NfdRange* end = kNfdFirst + kNfdFirstCount;
  const NfdRange* it = std::upper_bound(
      kNfdFirst, end, cpt, [](uint32_t c, const NfdRange& r) { return c < r.first; });
  if (it == kNfdFirst) return cpt;
  --it;
  return cpt <= it->last ? it->target : cpt;
}

namespace {

// GPT-2: printable Latin-1 bytes map to themselves, the other 68 to U+0100.. in byte order.
struct ByteTables {
  std::array<uint32_t, 256> to_cpt{};
  std::array<std::string, 256> to_utf8;
  ByteTables() {
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      to_cpt[b] = printable ? static_cast<uint32_t>(b) : next++;
      to_utf8[b] = utf8_of(to_cpt[b]);
    }
  }
};

const ByteTables& byte_tables() {
  static const ByteTables tables;
  return tables;
}

}  // namespace

uint32_t byte_to_codepoint(uint8_t byte) { return byte_tables().to_cpt[byte]; }

const std::string& byte_to_utf8(uint8_t byte) { return byte_tables().to_utf8[byte]; }

int codepoint_to_byte(uint32_t cpt) {
  if (cpt < 256) {
    const bool printable =
        (cpt >= 0x21 && cpt <= 0x7E) || (cpt >= 0xA1 && cpt <= 0xAC) || cpt >= 0xAE;
    return printable ? static_cast<int>(cpt) : -1;
  }
  if (cpt < 256 + 68) {
    for (int b = 0; b < 256; ++b) {
      if (byte_tables().to_cpt[b] == cpt) return b;
    }
  }
  return -1;
}

}  // namespace plumb::tok
