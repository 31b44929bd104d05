#include <string>

#include "tokenizer/bigram_queue.h"
#include "tokenizer/models.h"
#include "tokenizer/unicode.h"

namespace plumb::tok {

namespace {

struct Symbol {
  int32_t prev;
  int32_t next;
  uint32_t start;  // byte offset into the byte-level text of the word
  uint32_t n;      // its bytes there; 0 once merged into the left neighbour
  int32_t part;    // merge-part id of its text, -1 when none
};

struct Bigram {
  int32_t rank;
  int32_t left;
  int32_t right;
  uint32_t left_n;
  uint32_t right_n;
  int32_t joined;
};

// Lowest rank on top; among equal ranks the leftmost pair.
struct BigramOrder {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

}  // namespace

void bpe_tokenize_word(const Vocab& vocab, const int32_t* byte_parts, std::string_view word,
                       std::vector<int32_t>* out) {
  if (word.empty()) return;
  // Every byte of the word becomes one code point of GPT-2's printable byte alphabet.
  std::string text;
  text.reserve(word.size() * 2);
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  for (size_t i = 0; i < word.size(); ++i) {
    const uint8_t b = static_cast<uint8_t>(word[i]);
    const std::string& mapped = byte_to_utf8(b);
    const int32_t index = static_cast<int32_t>(i);
    symbols.push_back({index - 1, i + 1 == word.size() ? -1 : index + 1,
                       static_cast<uint32_t>(text.size()), static_cast<uint32_t>(mapped.size()),
                       byte_parts[b]});
    text += mapped;
  }

  if (vocab.ignore_merges) {
    const int32_t id = vocab.find(text);
    if (id >= 0) {
      out->push_back(id);
      return;
    }
  }

  auto make_bigram = [&](int32_t left, int32_t right, Bigram* bigram) {
    if (left < 0 || right < 0) return false;
    const Symbol& l = symbols[left];
    const Symbol& r = symbols[right];
    if (l.part < 0 || r.part < 0) return false;
    const Vocab::Merge* merge = vocab.find_merge(l.part, r.part);
    if (merge == nullptr) return false;
    *bigram = {merge->rank, left, right, l.n, r.n, merge->joined};
    return true;
  };
  BigramQueue<Bigram, BigramOrder, decltype(make_bigram)> queue(static_cast<int32_t>(symbols.size()), make_bigram);
  while (!queue.empty()) {
    const Bigram bigram = queue.pop();
    Symbol& left = symbols[bigram.left];
    Symbol& right = symbols[bigram.right];
    // Stale: a side was merged away or has grown since the pair was queued (symbols only
    // grow, so equal lengths mean equal texts).
    if (left.n == 0 || right.n == 0 || left.n != bigram.left_n || right.n != bigram.right_n) {
      continue;
    }
    left.n += right.n;
    left.part = bigram.joined;
    right.n = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = bigram.left;
    queue.try_add(left.prev, bigram.left);
    queue.try_add(bigram.left, left.next);
  }

  for (int32_t i = 0; i != -1; i = symbols[i].next) {
    const std::string_view piece(text.data() + symbols[i].start, symbols[i].n);
    const int32_t id = vocab.find(piece);
    if (id >= 0) {
      out->push_back(id);
      continue;
    }
    // As llama.cpp: each single byte of the byte-level text, where that one byte is a token.
    for (char c : piece) {
      const int32_t byte_id = vocab.find(std::string_view(&c, 1));
      if (byte_id >= 0) out->push_back(byte_id);
    }
  }
}

}  // namespace plumb::tok
