// The prompts' attention (attention_tiled.cu): many query rows, their chunks as tiled products.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "backend/cuda/kernels.h"

namespace plumb::cuda {

// Whether attention() gives a launch of n tokens to tiled_attention: many rows (heads x tokens over
// twice the multiprocessors) of head dims it takes (PLUMB_CUDA_ATTENTION_TILED=0: never, for
// measuring); a.n_kv_max set.
bool tiled_attention_takes(const AttentionArgs& a, int64_t n);
// Bytes of AttentionArgs::split it needs for n tokens (it takes them in launches of a bounded scratch).
size_t tiled_attention_scratch(const AttentionArgs& a, int64_t n);
// attention() of n tokens, AttentionArgs::split of tiled_attention_scratch bytes.
cudaError_t tiled_attention(const AttentionArgs& a, const float* q, int64_t n, const int32_t* batch, float* out,
                            cudaStream_t stream);

}  // namespace plumb::cuda
