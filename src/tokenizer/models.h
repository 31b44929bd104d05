// The three tokenizer models, each applied to one raw-text fragment.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "tokenizer/vocab.h"

namespace plumb::tok {

// SentencePiece BPE (llama.cpp's llm_tokenizer_spm_session): `text` already has its spaces
// replaced by ▁. Symbols start as UTF-8 characters and the adjacent pair whose concatenation
// is the highest-scoring token is merged first (ties: leftmost); symbols that end up not
// being tokens fall back to byte tokens.
void spm_tokenize(const Vocab& vocab, std::string_view text, std::vector<int32_t>* out);

// Cuts ▁-escaped text before each ▁ that follows a complete UTF-8 character other than ▁.
// When vocab.spm_independent_words holds, no token spans such a cut, so no pair is ever queued
// across it: each piece evolves alone and tokenizing the pieces one by one gives exactly the
// ids of the whole text (in llama.cpp's one global queue the pieces' merges merely
// interleave).
void spm_segments(std::string_view text, std::vector<std::string_view>* segments);

// Byte-level BPE of one pre-tokenized word (llama.cpp's llm_tokenizer_bpe_session): the
// word's bytes through the GPT-2 byte table, then merges by rank (lowest first, ties:
// leftmost). `byte_parts[b]` is the merge-part id of byte b's symbol (-1: none).
void bpe_tokenize_word(const Vocab& vocab, const int32_t* byte_parts, std::string_view word,
                       std::vector<int32_t>* out);

// WordPiece (llama.cpp's llm_tokenizer_wpm_session): normalise and split into words, then
// greedy longest match of "▁word"; a word with an unmatched position becomes [UNK].
void wpm_tokenize(const Vocab& vocab, std::string_view text, std::vector<int32_t>* out);

}  // namespace plumb::tok
