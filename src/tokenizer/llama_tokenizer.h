// The Tokenizer implementation over a Vocab, and its construction from raw metadata.
#pragma once

#include <memory>

#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"
#include "util/status.h"

namespace plumb::tok {

// Builds a tokenizer from metadata that need not come from a GGUF file (tests, fuzzing).
Result<std::unique_ptr<Tokenizer>> make_tokenizer(VocabSpec spec);

// Reads tokenizer.* (and general.name / general.architecture) from a GGUF file.
Result<VocabSpec> spec_from_gguf(const gguf::File& file);

// The Vocab behind a tokenizer made here (for tools and tests that need attributes).
const Vocab& vocab_of(const Tokenizer& tokenizer);

}  // namespace plumb::tok
