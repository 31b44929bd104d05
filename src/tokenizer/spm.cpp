#include "tokenizer/bigram_queue.h"
#include "tokenizer/models.h"
#include "tokenizer/unicode.h"

namespace plumb::tok {

namespace {

struct Symbol {
  int32_t prev;
  int32_t next;
  uint32_t start;  // byte offset into the text
  uint32_t n;      // bytes; 0 once merged into its left neighbour
};

struct Bigram {
  float score;
  int32_t left;
  int32_t right;
  uint32_t size;
};

// Highest score on top; among equal scores the leftmost pair.
struct BigramOrder {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

}  // namespace

namespace {

constexpr std::string_view kSpaceMark = "\xE2\x96\x81";

// A whole, well-formed UTF-8 character (its lead byte's length, continuation bytes after).
bool is_whole_char(std::string_view s) {
  const uint8_t lead = static_cast<uint8_t>(s[0]);
  if ((lead & 0xC0) == 0x80 || lead >= 0xF8 || s.size() != utf8_len(lead)) return false;
  for (size_t i = 1; i < s.size(); ++i) {
    if ((static_cast<uint8_t>(s[i]) & 0xC0) != 0x80) return false;
  }
  return true;
}

}  // namespace

void spm_segments(std::string_view text, std::vector<std::string_view>* segments) {
  segments->clear();
  size_t segment_start = 0;
  size_t prev_start = 0, prev_len = 0;
  for (size_t offset = 0; offset < text.size();) {
    const size_t len =
        std::min(utf8_len(static_cast<uint8_t>(text[offset])), text.size() - offset);
    const std::string_view symbol = text.substr(offset, len);
    if (symbol == kSpaceMark && prev_len > 0 && offset > segment_start) {
      const std::string_view prev = text.substr(prev_start, prev_len);
      if (prev != kSpaceMark && is_whole_char(prev)) {
        segments->push_back(text.substr(segment_start, offset - segment_start));
        segment_start = offset;
      }
    }
    prev_start = offset;
    prev_len = len;
    offset += len;
  }
  if (segment_start < text.size()) segments->push_back(text.substr(segment_start));
}

void spm_tokenize(const Vocab& vocab, std::string_view text, std::vector<int32_t>* out) {
  if (text.empty()) return;
  std::vector<Symbol> symbols;
  symbols.reserve(text.size());
  for (size_t offset = 0; offset < text.size();) {
    const size_t len =
        std::min(utf8_len(static_cast<uint8_t>(text[offset])), text.size() - offset);
    const int32_t index = static_cast<int32_t>(symbols.size());
    offset += len;
    symbols.push_back({index - 1, offset == text.size() ? -1 : index + 1,
                       static_cast<uint32_t>(offset - len), static_cast<uint32_t>(len)});
  }

  auto make_bigram = [&](int32_t left, int32_t right, Bigram* bigram) {
    if (left < 0 || right < 0) return false;
    const uint32_t size = symbols[left].n + symbols[right].n;
    const int32_t id = vocab.find(text.substr(symbols[left].start, size));
    if (id < 0) return false;
    *bigram = {vocab.tokens[id].score, left, right, size};
    return true;
  };
  BigramQueue<Bigram, BigramOrder, decltype(make_bigram)> queue(static_cast<int32_t>(symbols.size()), make_bigram);
  while (!queue.empty()) {
    const Bigram bigram = queue.pop();
    Symbol& left = symbols[bigram.left];
    Symbol& right = symbols[bigram.right];
    // Stale: one side was merged away or has grown since the pair was queued.
    if (left.n == 0 || right.n == 0 || left.n + right.n != bigram.size) continue;
    left.n += right.n;
    right.n = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = bigram.left;
    queue.try_add(left.prev, bigram.left);
    queue.try_add(bigram.left, left.next);
  }

  // A symbol that is no token is spelled in byte tokens. (llama.cpp would look it up in its
  // table of queued pairs first, but a symbol that never merged is one character, which no
  // queued pair spells.) Without a byte token llama.cpp throws; the unknown token stands in.
  for (int32_t i = 0; i != -1; i = symbols[i].next) {
    const Symbol& s = symbols[i];
    const std::string_view piece = text.substr(s.start, s.n);
    const int32_t id = vocab.find(piece);
    if (id >= 0) {
      out->push_back(id);
      continue;
    }
    for (char c : piece) {
      const int32_t byte_id = vocab.byte_token(static_cast<uint8_t>(c));
      if (byte_id >= 0) {
        out->push_back(byte_id);
      } else if (vocab.unk >= 0) {
        out->push_back(vocab.unk);
      }
    }
  }
}

}  // namespace plumb::tok
