#include "model/weights.h"

#include <string>

namespace plumb {

namespace {

std::string shape_text(const std::vector<int64_t>& ne) {
  std::string s = "[";
  for (size_t i = 0; i < ne.size(); ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
  return s + "]";
}

// The tensor `name` with ggml shape `ne`; float types only for vectors (norms, rope factors),
// any type plumb can multiply by for matrices.
Result<const gguf::TensorInfo*> find_tensor(const gguf::File& file, const std::string& name,
                                            const std::vector<int64_t>& ne) {
  const gguf::TensorInfo* t = file.find_tensor(name);
  if (t == nullptr) {
    return Status::errorf("%s: missing tensor %s (expected shape %s)", file.path().c_str(), name.c_str(),
                          shape_text(ne).c_str());
  }
  bool same = t->n_dims == static_cast<int>(ne.size());
  for (size_t i = 0; same && i < ne.size(); ++i) same = t->ne[i] == ne[i];
  if (!same) {
    return Status::errorf("%s: %s: expected shape %s, found %s", file.path().c_str(), name.c_str(),
                          shape_text(ne).c_str(), t->shape_string().c_str());
  }
  const TypeTraits& traits = type_traits(t->type);
  if (ne.size() == 1 && t->type != TensorType::F32 && t->type != TensorType::F16 && t->type != TensorType::BF16) {
    return Status::errorf("%s: %s: type %s, expected F32, F16 or BF16 for a vector", file.path().c_str(),
                          name.c_str(), traits.name);
  }
  if (!can_hold_weights(t->type)) {
    return Status::errorf("%s: %s: type %s cannot hold model weights", file.path().c_str(), name.c_str(), traits.name);
  }
  if (t->ne[0] % traits.block_size != 0) {
    return Status::errorf("%s: %s: row length %lld is not a multiple of the %s block size %lld", file.path().c_str(),
                          name.c_str(), (long long)t->ne[0], traits.name, (long long)traits.block_size);
  }
  return t;
}

}  // namespace

bool can_hold_weights(TensorType type) {
  switch (type) {
    case TensorType::I8:
    case TensorType::I16:
    case TensorType::I32:
    case TensorType::I64:
    case TensorType::F64:
    case TensorType::Q8_1:  // Q8_1 and Q8_K are llama.cpp's activation formats
    case TensorType::Q8_K:
      return false;
    default:
      return true;
  }
}

Result<ModelWeights> find_model_weights(const gguf::File& file, const ModelConfig& c) {
  ModelWeights w;
  const int64_t q_width = c.n_head * c.head_dim_k;
  const int64_t k_width = c.n_head_kv * c.head_dim_k;
  const int64_t v_width = c.n_head_kv * c.head_dim_v;
  const int64_t attn_width = c.n_head * c.head_dim_v;
  PLUMB_ASSIGN_OR_RETURN(w.token_embd, find_tensor(file, "token_embd.weight", {c.n_embd, c.n_vocab}));
  PLUMB_ASSIGN_OR_RETURN(w.output_norm, find_tensor(file, "output_norm.weight", {c.n_embd}));
  if (c.tied_output) {
    w.output = w.token_embd;
  } else {
    PLUMB_ASSIGN_OR_RETURN(w.output, find_tensor(file, "output.weight", {c.n_embd, c.n_vocab}));
  }
  if (c.has_rope_freqs) {
    PLUMB_ASSIGN_OR_RETURN(w.rope_freqs, find_tensor(file, "rope_freqs.weight", {c.n_rot / 2}));
  }
  w.layers.resize(static_cast<size_t>(c.n_layer));
  for (int64_t i = 0; i < c.n_layer; ++i) {
    LayerWeights& l = w.layers[static_cast<size_t>(i)];
    const std::string p = "blk." + std::to_string(i) + ".";
    PLUMB_ASSIGN_OR_RETURN(l.attn_norm, find_tensor(file, p + "attn_norm.weight", {c.n_embd}));
    PLUMB_ASSIGN_OR_RETURN(l.wq, find_tensor(file, p + "attn_q.weight", {c.n_embd, q_width}));
    PLUMB_ASSIGN_OR_RETURN(l.wk, find_tensor(file, p + "attn_k.weight", {c.n_embd, k_width}));
    PLUMB_ASSIGN_OR_RETURN(l.wv, find_tensor(file, p + "attn_v.weight", {c.n_embd, v_width}));
    PLUMB_ASSIGN_OR_RETURN(l.wo, find_tensor(file, p + "attn_output.weight", {attn_width, c.n_embd}));
    PLUMB_ASSIGN_OR_RETURN(l.ffn_norm, find_tensor(file, p + "ffn_norm.weight", {c.n_embd}));
    PLUMB_ASSIGN_OR_RETURN(l.w_gate, find_tensor(file, p + "ffn_gate.weight", {c.n_embd, c.n_ff}));
    PLUMB_ASSIGN_OR_RETURN(l.w_up, find_tensor(file, p + "ffn_up.weight", {c.n_embd, c.n_ff}));
    PLUMB_ASSIGN_OR_RETURN(l.w_down, find_tensor(file, p + "ffn_down.weight", {c.n_ff, c.n_embd}));
  }
  return w;
}

}  // namespace plumb
