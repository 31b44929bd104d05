// Shared by the tokenizer tests: vocabularies from ../shared/vocab, loaded once per process,
// and llama.cpp's .inp / .out test pairs.
#pragma once

#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace plumb::test {

// "llama-spm" -> the tokenizer of shared/vocab/ggml-vocab-llama-spm.gguf; nullptr when the
// file is missing. A file that does not load fails the calling test (with the message).
const Tokenizer* vocab_tokenizer(const std::string& name);
// The tokenizer of any GGUF file (cached by path); nullptr and a test failure when it fails.
const Tokenizer* file_tokenizer(const std::string& path);

// Names ("llama-spm", ...) of every shared/vocab/ggml-vocab-*.gguf, sorted.
std::vector<std::string> vocab_names();

std::string read_file_bytes(const std::string& path);
// Inputs of a .inp file: each ends with a line "__ggml_vocab_test__".
std::vector<std::string> parse_vocab_inputs(const std::string& text);
// One line of ids per input.
std::vector<std::vector<TokenId>> parse_vocab_outputs(const std::string& text);

}  // namespace plumb::test
