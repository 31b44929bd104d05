// Special-token partitioning (llama.cpp's tokenizer_st_partition): the text is cut at every
// occurrence of a control / user-defined / unknown token text, longest texts first, before the
// tokenizer proper sees the pieces in between.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "tokenizer/vocab.h"

namespace plumb::tok {

struct Fragment {
  int32_t token = -1;  // >= 0: this fragment is that special token
  size_t offset = 0;   // otherwise: a stretch of raw text
  size_t length = 0;
};

// Without `parse_special`, only user-defined tokens are cut out (as in llama.cpp, and as
// Hugging Face does for added tokens); with it, control and unknown tokens too. Tokens with
// the lstrip / rstrip attribute swallow ASCII whitespace on that side.
std::vector<Fragment> partition_special(const Vocab& vocab, std::string_view text,
                                        bool parse_special);

}  // namespace plumb::tok
