#include "tokenizer/llama_tokenizer.h"

#include <mutex>
#include <string>
#include <unordered_map>

#include "tokenizer/models.h"
#include "tokenizer/piece.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/special.h"
#include "tokenizer/unicode.h"

namespace plumb::tok {

namespace {

class LlamaTokenizer final : public Tokenizer {
 public:
  LlamaTokenizer(Vocab vocab, std::unique_ptr<PreTokenizer> pre)
      : vocab_(std::move(vocab)), pre_(std::move(pre)) {
    for (int b = 0; b < 256; ++b) {
      const std::string& mapped = byte_to_utf8(static_cast<uint8_t>(b));
      auto it = vocab_.part_ids.find(mapped);
      byte_parts_[b] = it == vocab_.part_ids.end() ? -1 : it->second;
    }
  }

  std::vector<TokenId> encode(std::string_view text, bool add_special,
                              bool parse_special) const override {
    std::vector<TokenId> out;
    const std::vector<Fragment> fragments = partition_special(vocab_, text, parse_special);
    switch (vocab_.type) {
      case VocabType::kSpm: encode_spm(text, fragments, add_special, &out); break;
      case VocabType::kBpe: encode_bpe(text, fragments, add_special, &out); break;
      case VocabType::kWpm: encode_wpm(text, fragments, add_special, &out); break;
    }
    return out;
  }

  std::string token_to_piece(TokenId id, bool render_special) const override {
    if (id < 0 || id >= n_vocab()) return std::string();
    if (!render_special && (vocab_.tokens[id].attr & (kAttrUnknown | kAttrControl))) return {};
    return vocab_.pieces[id];
  }

  std::string decode(const std::vector<TokenId>& ids, bool render_special,
                     bool clean_spaces) const override {
    return detokenize(vocab_, ids, render_special, clean_spaces && vocab_.clean_spaces);
  }

  int32_t n_vocab() const override { return static_cast<int32_t>(vocab_.tokens.size()); }
  std::string_view token_text(TokenId id) const override {
    if (id < 0 || id >= n_vocab()) return {};
    return vocab_.tokens[id].text;
  }
  TokenId bos() const override { return vocab_.bos; }
  TokenId eos() const override { return vocab_.eos; }
  bool add_bos() const override { return vocab_.add_bos; }
  bool add_eos() const override { return vocab_.add_eos; }
  bool is_eog(TokenId id) const override { return vocab_.is_eog(id); }
  std::string_view model_name() const override { return vocab_.model_name; }

  const Vocab& vocab() const { return vocab_; }

 private:
  void encode_spm(std::string_view text, const std::vector<Fragment>& fragments,
                  bool add_special, std::vector<TokenId>* out) const {
    bool prev_special = true;  // a leading space goes before the first text
    if (add_special && vocab_.add_bos) out->push_back(vocab_.bos);
    std::string escaped;
    std::vector<std::string_view> segments;
    for (const Fragment& f : fragments) {
      if (f.token >= 0) {
        out->push_back(f.token);
        prev_special = true;
        continue;
      }
      escaped.clear();
      if (vocab_.add_space_prefix && prev_special) escaped = "\xE2\x96\x81";
      for (char c : text.substr(f.offset, f.length)) {
        if (c == ' ') {
          escaped += "\xE2\x96\x81";
        } else {
          escaped.push_back(c);
        }
      }
      if (vocab_.spm_independent_words) {
        spm_segments(escaped, &segments);
        for (std::string_view segment : segments) encode_cached(segment, out);
      } else {
        spm_tokenize(vocab_, escaped, out);
      }
      prev_special = false;
    }
    if (add_special && vocab_.add_eos) out->push_back(vocab_.eos);
  }

  void encode_bpe(std::string_view text, const std::vector<Fragment>& fragments,
                  bool add_special, std::vector<TokenId>* out) const {
    if (add_special && vocab_.add_bos) out->push_back(vocab_.bos);
    std::string storage;
    std::vector<std::string_view> words;
    for (const Fragment& f : fragments) {
      if (f.token >= 0) {
        out->push_back(f.token);
        continue;
      }
      pre_->split(text.substr(f.offset, f.length), &storage, &words);
      for (std::string_view word : words) encode_cached(word, out);
    }
    if (add_special && vocab_.add_eos) out->push_back(vocab_.eos);
  }

  // One BPE word or SPM segment. Words repeat a lot in real text; their ids are cached
  // (short words only, bounded).
  void encode_uncached(std::string_view word, std::vector<TokenId>* out) const {
    if (vocab_.type == VocabType::kSpm) {
      spm_tokenize(vocab_, word, out);
    } else {
      bpe_tokenize_word(vocab_, byte_parts_, word, out);
    }
  }

  void encode_cached(std::string_view word, std::vector<TokenId>* out) const {
    constexpr size_t kMaxCachedWord = 64;
    constexpr size_t kMaxCacheEntries = 1 << 16;
    if (word.size() > kMaxCachedWord) {
      encode_uncached(word, out);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(cache_mutex_);
      auto it = cache_.find(word);
      if (it != cache_.end()) {
        out->insert(out->end(), it->second.begin(), it->second.end());
        return;
      }
    }
    const size_t before = out->size();
    encode_uncached(word, out);
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (cache_.size() >= kMaxCacheEntries) cache_.clear();
    cache_.emplace(std::string(word), std::vector<TokenId>(out->begin() + before, out->end()));
  }

  void encode_wpm(std::string_view text, const std::vector<Fragment>& fragments,
                  bool add_special, std::vector<TokenId>* out) const {
    if (add_special && vocab_.bos >= 0) out->push_back(vocab_.bos);
    for (const Fragment& f : fragments) {
      if (f.token >= 0) {
        out->push_back(f.token);
      } else {
        wpm_tokenize(vocab_, text.substr(f.offset, f.length), out);
      }
    }
    if (add_special && vocab_.sep >= 0) out->push_back(vocab_.sep);
  }

  Vocab vocab_;
  std::unique_ptr<PreTokenizer> pre_;
  int32_t byte_parts_[256];
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<TokenId>, StringHash, StringEq> cache_;
};

}  // namespace

Result<std::unique_ptr<Tokenizer>> make_tokenizer(VocabSpec spec) {
  PLUMB_ASSIGN_OR_RETURN(Vocab vocab, build_vocab(std::move(spec)));
  std::unique_ptr<PreTokenizer> pre;
  if (vocab.type == VocabType::kBpe) {
    PLUMB_ASSIGN_OR_RETURN(pre, PreTokenizer::create(vocab.pre));
  }
  return std::unique_ptr<Tokenizer>(new LlamaTokenizer(std::move(vocab), std::move(pre)));
}

const Vocab& vocab_of(const Tokenizer& tokenizer) {
  return static_cast<const LlamaTokenizer&>(tokenizer).vocab();
}

}  // namespace plumb::tok
