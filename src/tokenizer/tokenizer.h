// Tokenizers that GGUF Llama-family models carry in their tokenizer.* metadata, applied exactly
// as llama.cpp applies them: `llama` (SentencePiece BPE), `gpt2` (byte-level BPE with the
// pre-tokenizer named by tokenizer.ggml.pre), `bert` (WordPiece).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/gguf.h"
#include "util/status.h"

namespace plumb {

using TokenId = int32_t;

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Reads the vocabulary of a model or vocab-only file. An unknown tokenizer.ggml.model gives
  // "unsupported tokenizer model: X"; an unknown tokenizer.ggml.pre names the pre-tokenizer.
  static Result<std::unique_ptr<Tokenizer>> from_gguf(const gguf::File& file);

  // add_special: prepend BOS / append EOS as the model's add_bos_token / add_eos_token say.
  // parse_special: recognise control and user-defined token texts ("<|im_end|>") in `text`.
  virtual std::vector<TokenId> encode(std::string_view text, bool add_special,
                                      bool parse_special) const = 0;

  // The text of one token as llama.cpp's token_to_piece renders it (byte tokens as raw bytes,
  // SPM's ▁ as a space). Control tokens are rendered only when `render_special`.
  virtual std::string token_to_piece(TokenId id, bool render_special) const = 0;

  // llama.cpp's detokenize: pieces joined, the SPM leading space removed when the first
  // token's piece starts with one (remove_leading_space), and the clean-up of spaces before
  // punctuation when `clean_spaces` (BPE default in llama.cpp). The clean-up only happens
  // where llama.cpp's vocabulary enables it (not SPM, not qwen2/smollm/deepseek/command-r...):
  // clean_spaces = true gives llama.cpp's text, false never cleans (exact round trips).
  virtual std::string decode(const std::vector<TokenId>& ids, bool render_special,
                             bool clean_spaces) const = 0;

  virtual int32_t n_vocab() const = 0;
  virtual std::string_view token_text(TokenId id) const = 0;  // raw vocabulary entry
  virtual TokenId bos() const = 0;  // -1 when none
  virtual TokenId eos() const = 0;  // -1 when none
  virtual bool add_bos() const = 0;
  virtual bool add_eos() const = 0;
  // End of generation: EOS, EOT, <|im_end|>, <|eot_id|> and the like (llama.cpp's is_eog).
  virtual bool is_eog(TokenId id) const = 0;
  virtual std::string_view model_name() const = 0;  // "llama", "gpt2", "bert"
};

}  // namespace plumb
