// Attention walks a query's cached positions in chunks of this many: each chunk its own softmax
// maximum, sum and value chains, the chunks then combined in order (the contract:
// src/backend/cpu/attention_kernels.h). Both backends follow it, so that a GPU can give each
// chunk of a long context to a block of its own and still give the CPU's bits. A context of at
// most this many positions is one chunk: the single-chain order.
#pragma once

#include <cstdint>

namespace plumb {

inline constexpr int64_t kAttentionChunk = 256;

}  // namespace plumb
