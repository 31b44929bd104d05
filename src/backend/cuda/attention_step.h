// A generation step's attention deep in a context (attention_step.cu): a block per KV head and
// chunk of positions, a warp per query head that shares it.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "backend/cuda/kernels.h"

namespace plumb::cuda {

// Whether attention() gives a split launch of n tokens (few rows over several chunks: a
// generation step) to step_attention: an F16 cache, head dim 64 (keys and values alike),
// at most 8 query heads a KV head, 16-byte aligned cache rows, and a context whose chunk results
// fit the kernel's room for folding them (PLUMB_CUDA_STEP_ATTENTION=0: never, for measuring).
bool step_attention_takes(const AttentionArgs& a);
// Allows step_attention its shared memory; prepare_attention() calls it, before any capture.
cudaError_t prepare_step_attention();
// attention() of n tokens with a.split and a.split_done as the split launch has them
// (attention_split_bytes, attention_split_counters).
cudaError_t step_attention(const AttentionArgs& a, const float* q, int64_t n, const int32_t* batch, float* out,
                           cudaStream_t stream);

}  // namespace plumb::cuda
