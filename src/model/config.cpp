#include "model/config.h"

#include <cmath>
#include <string>

namespace plumb {

namespace {

// An integer hyperparameter "llama.<key>"; per-layer arrays are refused.
Result<int64_t> read_int(const gguf::File& file, const std::string& key, int64_t fallback, bool required) {
  const gguf::Value* v = file.find(key);
  if (v == nullptr) {
    if (required) return Status::errorf("%s: missing metadata key '%s'", file.path().c_str(), key.c_str());
    return fallback;
  }
  if (!v->is_integer()) {
    return Status::errorf("%s: metadata key '%s' has type %s, expected an integer (per-layer arrays are not supported)",
                          file.path().c_str(), key.c_str(), gguf::value_type_name(v->type));
  }
  return v->as_int();
}

// A float hyperparameter: FLOAT32 (or FLOAT64), as llama.cpp requires; any other type, an
// integer included (a float's bits read as an integer are no value at all), is an error naming
// the key and both types, never a silent default. The value must be finite and at least `min`
// (above it when min_exclusive).
Result<float> read_float(const gguf::File& file, const std::string& key, float fallback, double min,
                         bool min_exclusive) {
  const gguf::Value* v = file.find(key);
  if (v == nullptr) return fallback;
  if (!v->is_float()) {
    std::string found = gguf::value_type_name(v->type);
    if (v->type == gguf::ValueType::ARRAY) found += std::string(" of ") + gguf::value_type_name(v->array_type);
    return Status::errorf("%s: metadata key '%s' has type %s, expected FLOAT32", file.path().c_str(), key.c_str(),
                          found.c_str());
  }
  const double x = v->as_double();
  if (!std::isfinite(x) || (min_exclusive ? x <= min : x < min)) {
    return Status::errorf("%s: metadata key '%s' = %g is out of range (must be finite and %s %g)",
                          file.path().c_str(), key.c_str(), x, min_exclusive ? ">" : ">=", min);
  }
  return static_cast<float>(x);
}

}  // namespace

Result<ModelConfig> read_model_config(const gguf::File& file) {
  ModelConfig c;
  PLUMB_ASSIGN_OR_RETURN(c.architecture, file.get_string("general.architecture"));
  if (c.architecture != "llama") {
    return Status::errorf("%s: unsupported architecture '%s' (plumb runs llama-family models)", file.path().c_str(),
                          c.architecture.c_str());
  }
  PLUMB_ASSIGN_OR_RETURN(c.name, file.get_string_or("general.name", ""));
  const std::string p = "llama.";
  PLUMB_ASSIGN_OR_RETURN(int64_t n_expert, read_int(file, p + "expert_count", 0, false));
  if (n_expert > 0) return Status::errorf("%s: mixture-of-experts llama models are not supported", file.path().c_str());

  PLUMB_ASSIGN_OR_RETURN(c.n_embd, read_int(file, p + "embedding_length", 0, true));
  PLUMB_ASSIGN_OR_RETURN(c.n_layer, read_int(file, p + "block_count", 0, true));
  PLUMB_ASSIGN_OR_RETURN(c.n_ff, read_int(file, p + "feed_forward_length", 0, true));
  PLUMB_ASSIGN_OR_RETURN(c.n_head, read_int(file, p + "attention.head_count", 0, true));
  PLUMB_ASSIGN_OR_RETURN(c.n_head_kv, read_int(file, p + "attention.head_count_kv", c.n_head, false));
  PLUMB_ASSIGN_OR_RETURN(c.n_ctx_train, read_int(file, p + "context_length", 2048, false));
  if (c.n_ctx_train <= 0) {
    return Status::errorf("%s: metadata key '%scontext_length' = %lld (must be > 0)", file.path().c_str(), p.c_str(),
                          (long long)c.n_ctx_train);
  }
  if (c.n_embd <= 0 || c.n_layer <= 0 || c.n_ff <= 0 || c.n_head <= 0 || c.n_head_kv <= 0) {
    return Status::errorf("%s: invalid hyperparameters: embedding_length %lld, block_count %lld, "
                          "feed_forward_length %lld, head_count %lld, head_count_kv %lld (all must be > 0)",
                          file.path().c_str(), (long long)c.n_embd, (long long)c.n_layer, (long long)c.n_ff,
                          (long long)c.n_head, (long long)c.n_head_kv);
  }
  if (c.n_head % c.n_head_kv != 0) {
    return Status::errorf("%s: head_count %lld is not a multiple of head_count_kv %lld", file.path().c_str(),
                          (long long)c.n_head, (long long)c.n_head_kv);
  }
  if (c.n_embd % c.n_head != 0 && (file.find(p + "attention.key_length") == nullptr ||
                                   file.find(p + "attention.value_length") == nullptr)) {
    return Status::errorf("%s: embedding_length %lld is not a multiple of head_count %lld and no key_length/value_length is given",
                          file.path().c_str(), (long long)c.n_embd, (long long)c.n_head);
  }
  PLUMB_ASSIGN_OR_RETURN(c.head_dim_k, read_int(file, p + "attention.key_length", c.n_embd / c.n_head, false));
  PLUMB_ASSIGN_OR_RETURN(c.head_dim_v, read_int(file, p + "attention.value_length", c.n_embd / c.n_head, false));
  PLUMB_ASSIGN_OR_RETURN(c.n_rot, read_int(file, p + "rope.dimension_count", c.head_dim_k, false));
  if (c.head_dim_k <= 0 || c.head_dim_v <= 0 || c.n_rot <= 0 || c.n_rot > c.head_dim_k || c.n_rot % 2 != 0) {
    return Status::errorf("%s: invalid head sizes: key_length %lld, value_length %lld, rope.dimension_count %lld "
                          "(rope dimensions must be even and at most key_length)",
                          file.path().c_str(), (long long)c.head_dim_k, (long long)c.head_dim_v, (long long)c.n_rot);
  }

  PLUMB_ASSIGN_OR_RETURN(c.rope_freq_base, read_float(file, p + "rope.freq_base", 10000.0f, 0.0, true));
  PLUMB_ASSIGN_OR_RETURN(c.rms_eps, read_float(file, p + "attention.layer_norm_rms_epsilon", 1e-5f, 0.0, true));
  // Linear rope scaling, as llama.cpp: rope.scaling.factor (or the older rope.scale_linear),
  // applied when rope.scaling.type is "linear" or absent; "none" disables it.
  PLUMB_ASSIGN_OR_RETURN(std::string scaling, file.get_string_or(p + "rope.scaling.type", "linear"));
  PLUMB_ASSIGN_OR_RETURN(float scale_linear, read_float(file, p + "rope.scale_linear", 0.0f, 0.0, false));
  PLUMB_ASSIGN_OR_RETURN(float factor, read_float(file, p + "rope.scaling.factor", scale_linear, 0.0, false));
  if (scaling == "none") {
    factor = 0.0f;
  } else if (scaling != "linear") {
    return Status::errorf("%s: rope scaling type '%s' is not supported (plumb supports none and linear)",
                          file.path().c_str(), scaling.c_str());
  }
  c.rope_freq_scale = factor == 0.0f ? 1.0f : 1.0f / factor;

  // Vocabulary size: llama.vocab_size, else the tokenizer's token list, else token_embd's rows.
  PLUMB_ASSIGN_OR_RETURN(c.n_vocab, read_int(file, p + "vocab_size", 0, false));
  if (c.n_vocab == 0) {
    const gguf::Value* tokens = file.find("tokenizer.ggml.tokens");
    const gguf::TensorInfo* embd = file.find_tensor("token_embd.weight");
    if (tokens != nullptr && tokens->type == gguf::ValueType::ARRAY) {
      c.n_vocab = static_cast<int64_t>(tokens->array.size());
    } else if (embd != nullptr) {
      c.n_vocab = embd->ne[1];
    } else {
      return Status::errorf("%s: cannot tell the vocabulary size (no llama.vocab_size, tokenizer.ggml.tokens or token_embd.weight)",
                            file.path().c_str());
    }
  }
  c.tied_output = file.find_tensor("output.weight") == nullptr;
  c.has_rope_freqs = file.find_tensor("rope_freqs.weight") != nullptr;
  return c;
}

}  // namespace plumb
