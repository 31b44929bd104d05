// Pre-tokenization of byte-level BPE: the regex chain llama.cpp applies for each
// tokenizer.ggml.pre (llm_tokenizer_bpe's regex_exprs + unicode_regex_split), through PCRE2.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/vocab.h"
#include "util/status.h"

namespace plumb::tok {

class PreTokenizer {
 public:
  static Result<std::unique_ptr<PreTokenizer>> create(PreType type);
  ~PreTokenizer();
  PreTokenizer(const PreTokenizer&) = delete;
  PreTokenizer& operator=(const PreTokenizer&) = delete;

  // Splits `text` into words exactly as llama.cpp does: each regex of the chain splits every
  // piece left by the previous one into its matches and the unmatched stretches between them.
  // `*storage` receives the text re-encoded as llama.cpp re-encodes it (invalid UTF-8 became
  // U+FFFD); the words are views into it, in order, covering it completely.
  void split(std::string_view text, std::string* storage,
             std::vector<std::string_view>* words) const;

 private:
  struct Compiled;
  PreTokenizer() = default;
  std::vector<std::unique_ptr<Compiled>> regexes_;
};

}  // namespace plumb::tok
