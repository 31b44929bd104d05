// Codepoint-level helpers with llama.cpp's exact semantics (src/unicode.cpp there): how bytes
// become codepoints (an invalid byte becomes U+FFFD and consumes one byte), the GPT-2
// byte<->unicode table, category flags, White_Space, lowercase and the first codepoint of NFD.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace plumb::tok {

// Category classes, one per codepoint (unassigned codepoints count as C).
enum CategoryBit : uint8_t {
  kNumber = 0x02,       // \p{N}
  kLetter = 0x04,       // \p{L}
  kSeparator = 0x08,    // \p{Z}
  kMark = 0x10,         // \p{M}
  kPunctuation = 0x20,  // \p{P}
  kSymbol = 0x40,       // \p{S}
  kControl = 0x80,      // \p{C}
};

struct CategoryRange {
  uint32_t start;  // the range runs to the next entry's start - 1
  uint8_t bits;
};
struct CodepointPair {
  uint32_t from, to;
};
struct NfdRange {
  uint32_t first, last, target;
};

// Generated tables (unicode_tables.cpp).
extern const CategoryRange kCategoryRanges[];
extern const size_t kCategoryRangeCount;
extern const uint32_t kWhiteSpace[];
extern const size_t kWhiteSpaceCount;
extern const CodepointPair kLowercase[];
extern const size_t kLowercaseCount;
extern const NfdRange kNfdFirst[];
extern const size_t kNfdFirstCount;

constexpr uint32_t kReplacementChar = 0xFFFD;

// Bytes in the UTF-8 sequence a lead byte announces (1 for continuation and invalid bytes), as
// llama.cpp's unicode_len_utf8.
inline size_t utf8_len(uint8_t lead) {
  static constexpr uint8_t kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLen[lead >> 4];
}

// Decodes like llama.cpp's unicode_cpts_from_utf8: a malformed sequence yields U+FFFD and
// advances one byte. Overlong forms and surrogates decode to their (invalid) values as there.
std::vector<uint32_t> decode_utf8(std::string_view text);
// Decodes one codepoint at `*offset` and advances it, same rules.
uint32_t decode_utf8_at(std::string_view text, size_t* offset);

// Appends the UTF-8 encoding of `cpt`. Codepoints above U+10FFFF (which llama.cpp refuses with
// an exception) are written as U+FFFD.
void append_utf8(uint32_t cpt, std::string* out);
std::string utf8_of(uint32_t cpt);

uint8_t category_bits(uint32_t cpt);
bool is_whitespace(uint32_t cpt);  // Unicode White_Space
uint32_t to_lower(uint32_t cpt);   // first codepoint of the lowercase mapping
uint32_t nfd_first(uint32_t cpt);  // first codepoint of the NFD decomposition

// GPT-2's reversible byte -> printable codepoint mapping and its inverse (-1: not a mapped cpt).
uint32_t byte_to_codepoint(uint8_t byte);
int codepoint_to_byte(uint32_t cpt);
// The UTF-8 text of byte_to_codepoint(b), precomputed.
const std::string& byte_to_utf8(uint8_t byte);

}  // namespace plumb::tok
