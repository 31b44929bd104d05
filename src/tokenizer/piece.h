// Token -> text, as llama.cpp's token_to_piece and detokenize render it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer/vocab.h"

namespace plumb::tok {

// The piece of `id` with special tokens rendered (llama.cpp's cached token_to_piece(id, true)):
// SPM/WPM normal tokens with ▁ turned into spaces, byte-level BPE tokens mapped back to
// bytes, byte tokens as their byte, control/user-defined/unknown tokens as their text,
// anything else (unused, undefined) empty.
std::string render_piece(const Vocab& vocab, int32_t id);

// llama.cpp's detokenize with remove_special = false: pieces joined; with add_space_prefix,
// one leading space of the first token's piece is dropped; then, when `clean_spaces`, the
// three clean-up passes (" ?" " !" " ." " ," -> no space; " ' " -> "'"; " 's" " 'm" " 're"
// " 've" -> no space).
std::string detokenize(const Vocab& vocab, const std::vector<int32_t>& ids, bool render_special,
                       bool clean_spaces);

}  // namespace plumb::tok
