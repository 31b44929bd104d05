// The name -> tensor table of a llama model: every tensor the forward pass reads, checked for
// presence, shape and type once at load time. The entries point into the mapped file.
#pragma once

#include <vector>

#include "gguf/gguf.h"
#include "model/model.h"
#include "util/status.h"

namespace plumb {

struct LayerWeights {
  const gguf::TensorInfo* attn_norm = nullptr;  // [n_embd]
  const gguf::TensorInfo* wq = nullptr;         // [n_embd, n_head * head_dim_k]
  const gguf::TensorInfo* wk = nullptr;         // [n_embd, n_head_kv * head_dim_k]
  const gguf::TensorInfo* wv = nullptr;         // [n_embd, n_head_kv * head_dim_v]
  const gguf::TensorInfo* wo = nullptr;         // [n_head * head_dim_v, n_embd]
  const gguf::TensorInfo* ffn_norm = nullptr;   // [n_embd]
  const gguf::TensorInfo* w_gate = nullptr;     // [n_embd, n_ff]
  const gguf::TensorInfo* w_up = nullptr;       // [n_embd, n_ff]
  const gguf::TensorInfo* w_down = nullptr;     // [n_ff, n_embd]
};

struct ModelWeights {
  const gguf::TensorInfo* token_embd = nullptr;   // [n_embd, n_vocab]
  const gguf::TensorInfo* output_norm = nullptr;  // [n_embd]
  const gguf::TensorInfo* output = nullptr;       // [n_embd, n_vocab]; token_embd when tied
  const gguf::TensorInfo* rope_freqs = nullptr;   // [n_rot / 2], Llama 3 only
  std::vector<LayerWeights> layers;
};

// Whether a matrix of the model may be stored in `type`: the one list of weight types, checked
// at load (find_model_weights); every backend multiplies by each of them. Quantized types have
// blocks of 32 or 256 elements, so a row of whole blocks is also whole 32-element activation
// blocks, as the CPU kernels need.
bool can_hold_weights(TensorType type);

// Looks up every tensor; a missing or mis-shaped one gives an error naming it with the
// expected and found shapes ("blk.3.attn_k.weight: expected shape [256, 128], found [256, 256]").
Result<ModelWeights> find_model_weights(const gguf::File& file, const ModelConfig& config);

}  // namespace plumb
