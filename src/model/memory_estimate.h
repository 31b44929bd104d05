// What a Session will allocate for a context and batch, worked out from the hyperparameters
// before anything is allocated, so that a command can refuse a context that does not fit with
// both numbers instead of dying in std::bad_alloc (or swapping for minutes).
#pragma once

#include <cstdint>
#include <string>

#include "model/model.h"
#include "util/status.h"

namespace plumb {

struct MemoryEstimate {
  // Bytes, as doubles: the products of hostile hyperparameters must not wrap around.
  double kv_cache = 0;     // K and V of every layer for n_ctx positions
  double activations = 0;  // the run state of one batch (x, q, k, v, attention, FFN)
  double logits = 0;       // the output rows of one batch and the kept copy
  double other = 0;        // RoPE table, per-thread attention scratch
  double weight_copies = 0;  // weights the backend copies out of the mapped file (set by the caller)
  double total() const { return kv_cache + activations + logits + other + weight_copies; }
};

// The context Session::create gives for `requested` (0: the model's, at most 4096).
int64_t resolved_context(const ModelConfig& config, int64_t requested);

// One session's allocations for a context of n_ctx positions, batches of n_batch tokens,
// logits kept for up to logit_rows positions per decode, and n_threads attention workers.
MemoryEstimate estimate_session_memory(const ModelConfig& config, int64_t n_ctx, int64_t n_batch,
                                       CacheType cache_type, int64_t logit_rows, int n_threads);

// MemAvailable of /proc/meminfo in bytes; an error where it cannot be read.
Result<uint64_t> available_memory();

// "17.5 GB", "86.0 MB".
std::string format_bytes(double bytes);

}  // namespace plumb
