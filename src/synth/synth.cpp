#include "synth/synth.h"

#include <filesystem>
#include <memory>

#include "gguf/gguf.h"
#include "util/thread_pool.h"

namespace plumb {

namespace {

constexpr float kWeightStd = 0.02f;
constexpr int64_t kFillChunk = 1 << 16;  // elements per parallel work item

struct SynthTensor {
  std::string name;
  std::vector<int64_t> ne;
  bool is_norm;  // F32, values 1 + N(0, 0.02)
};

// llama.cpp's tensor names and shapes (ne[0] is the input dimension of a matrix).
std::vector<SynthTensor> llama_tensors(const SynthPreset& p, int64_t n_vocab) {
  const int64_t n_embd_kv = p.n_embd / p.n_head * p.n_head_kv;
  std::vector<SynthTensor> out;
  out.push_back({"token_embd.weight", {p.n_embd, n_vocab}, false});
  for (int64_t i = 0; i < p.n_layer; ++i) {
    const std::string b = "blk." + std::to_string(i) + ".";
    out.push_back({b + "attn_norm.weight", {p.n_embd}, true});
    out.push_back({b + "attn_q.weight", {p.n_embd, p.n_embd}, false});
    out.push_back({b + "attn_k.weight", {p.n_embd, n_embd_kv}, false});
    out.push_back({b + "attn_v.weight", {p.n_embd, n_embd_kv}, false});
    out.push_back({b + "attn_output.weight", {p.n_embd, p.n_embd}, false});
    out.push_back({b + "ffn_norm.weight", {p.n_embd}, true});
    out.push_back({b + "ffn_gate.weight", {p.n_embd, p.n_ff}, false});
    out.push_back({b + "ffn_up.weight", {p.n_embd, p.n_ff}, false});
    out.push_back({b + "ffn_down.weight", {p.n_ff, p.n_embd}, false});
  }
  out.push_back({"output_norm.weight", {p.n_embd}, true});
  out.push_back({"output.weight", {p.n_embd, n_vocab}, false});
  return out;
}

}  // namespace

const std::vector<SynthPreset>& synth_presets() {
  static const std::vector<SynthPreset> presets = {
      {"tiny", 64, 2, 4, 2, 128, 0, 256, 10000.0f, 1e-5f, "ggml-vocab-llama-spm.gguf"},
      {"tinyllama-1.1b", 2048, 22, 32, 4, 5632, 32000, 2048, 10000.0f, 1e-5f,
       "ggml-vocab-llama-spm.gguf"},
      {"llama-2-7b", 4096, 32, 32, 32, 11008, 32000, 4096, 10000.0f, 1e-5f,
       "ggml-vocab-llama-spm.gguf"},
      {"llama-3-8b", 4096, 32, 32, 8, 14336, 128256, 8192, 500000.0f, 1e-5f,
       "ggml-vocab-llama-bpe.gguf"},
  };
  return presets;
}

const SynthPreset* find_synth_preset(const std::string& name) {
  for (const SynthPreset& p : synth_presets()) {
    if (name == p.name) return &p;
  }
  return nullptr;
}

Result<SynthSummary> synth_model(const SynthOptions& options, const std::string& output_path) {
  const SynthPreset* preset = find_synth_preset(options.preset);
  if (preset == nullptr) {
    std::string names;
    for (const SynthPreset& p : synth_presets()) names += std::string(names.empty() ? "" : ", ") + p.name;
    return Status::errorf("unknown preset '%s' (have: %s)", options.preset.c_str(), names.c_str());
  }
  if (options.type != TensorType::F16 && options.type != TensorType::F32) {
    return Status::errorf("synth writes F16 or F32 weights, not %s", type_name(options.type));
  }
  PLUMB_ASSIGN_OR_RETURN(std::unique_ptr<gguf::File> vocab, gguf::File::open(options.vocab_path));
  Result<std::vector<std::string>> tokens = vocab->get_string_array("tokenizer.ggml.tokens");
  if (!tokens.ok()) return tokens.status().with_context("vocabulary");
  const int64_t n_vocab = static_cast<int64_t>(tokens->size());
  if (preset->n_vocab != 0 && preset->n_vocab != n_vocab) {
    return Status::errorf("%s: %lld tokens, but preset %s has a vocabulary of %lld",
                          options.vocab_path.c_str(), static_cast<long long>(n_vocab), preset->name,
                          static_cast<long long>(preset->n_vocab));
  }

  gguf::Writer writer;
  // The keys and order of llama.cpp's convert_hf_to_gguf.py for a Llama.
  writer.set("general.architecture", gguf::Value::make_string("llama"));
  writer.set("general.type", gguf::Value::make_string("model"));
  writer.set("general.name", gguf::Value::make_string(std::string("synthetic ") + preset->name));
  writer.set("llama.block_count", gguf::Value::make_u32(static_cast<uint32_t>(preset->n_layer)));
  writer.set("llama.context_length", gguf::Value::make_u32(static_cast<uint32_t>(preset->n_ctx)));
  writer.set("llama.embedding_length", gguf::Value::make_u32(static_cast<uint32_t>(preset->n_embd)));
  writer.set("llama.feed_forward_length", gguf::Value::make_u32(static_cast<uint32_t>(preset->n_ff)));
  writer.set("llama.attention.head_count", gguf::Value::make_u32(static_cast<uint32_t>(preset->n_head)));
  writer.set("llama.attention.head_count_kv",
             gguf::Value::make_u32(static_cast<uint32_t>(preset->n_head_kv)));
  writer.set("llama.rope.freq_base", gguf::Value::make_f32(preset->rope_base));
  writer.set("llama.attention.layer_norm_rms_epsilon", gguf::Value::make_f32(preset->rms_eps));
  writer.set("general.file_type", gguf::Value::make_u32(options.type == TensorType::F16 ? 1 : 0));
  writer.set("llama.vocab_size", gguf::Value::make_u32(static_cast<uint32_t>(n_vocab)));
  writer.set("llama.rope.dimension_count",
             gguf::Value::make_u32(static_cast<uint32_t>(preset->n_embd / preset->n_head)));
  for (const auto& [key, value] : vocab->metadata()) {
    if (key.rfind("tokenizer.", 0) == 0) writer.set(key, value);
  }
  writer.set("general.quantization_version", gguf::Value::make_u32(2));

  const std::vector<SynthTensor> tensors = llama_tensors(*preset, n_vocab);
  ThreadPool pool(options.n_threads);
  SynthSummary summary;
  summary.tensors = static_cast<int>(tensors.size());
  int done = 0;
  for (size_t index = 0; index < tensors.size(); ++index) {
    const SynthTensor& t = tensors[index];
    int64_t n = 1;
    for (int64_t d : t.ne) n *= d;
    if (n >= (int64_t{1} << 32)) {
      return Status::errorf("tensor '%s' has %lld elements, more than synth's 2^32 per tensor",
                            t.name.c_str(), static_cast<long long>(n));
    }
    summary.parameters += static_cast<uint64_t>(n);
    const TensorType type = t.is_norm ? TensorType::F32 : options.type;
    const uint64_t key = options.seed * 0x100000001B3ull + index;
    const float mean = t.is_norm ? 1.0f : 0.0f;
    PLUMB_RETURN_IF_ERROR(writer.add_tensor_deferred(
        t.name, type, t.ne, [&pool, &options, &done, &summary, n, type, key, mean](uint8_t* dst, size_t) {
          const int64_t n_chunks = (n + kFillChunk - 1) / kFillChunk;
          pool.parallel_for(n_chunks, [&](int64_t begin, int64_t end) {
            for (int64_t c = begin; c < end; ++c) {
              const int64_t first = c * kFillChunk;
              const int64_t count = std::min(kFillChunk, n - first);
              if (type == TensorType::F16) {
                synth_fill_f16(reinterpret_cast<uint16_t*>(dst) + first, count, key, first, mean,
                               kWeightStd);
              } else {
                synth_fill_f32(reinterpret_cast<float*>(dst) + first, count, key, first, mean,
                               kWeightStd);
              }
            }
          });
          ++done;
          if (options.on_progress) options.on_progress(done, summary.tensors);
          return Status();
        }));
  }
  PLUMB_RETURN_IF_ERROR(writer.write(output_path));
  std::error_code ec;
  const auto size = std::filesystem::file_size(output_path, ec);
  summary.file_bytes = ec ? 0 : static_cast<uint64_t>(size);
  return summary;
}

}  // namespace plumb
