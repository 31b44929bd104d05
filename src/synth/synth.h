// Llama models with real shapes and random weights, for benchmarks where real weights cannot
// be downloaded. Weights ~ normal(0, 0.02), norm weights ~ 1 + normal(0, 0.02) (a cheap
// normal approximation: the sum of four 16-bit uniforms); tokenizer metadata copied from a
// vocabulary GGUF. Metadata keys and tensor names are those llama.cpp's converter writes.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "quant/types.h"
#include "util/status.h"

namespace plumb {

struct SynthPreset {
  const char* name;
  int64_t n_embd;
  int64_t n_layer;
  int64_t n_head;
  int64_t n_head_kv;
  int64_t n_ff;
  int64_t n_vocab;     // 0: whatever the vocabulary file has
  int64_t n_ctx;
  float rope_base;
  float rms_eps;
  const char* vocab;   // default vocabulary file name under <shared>/vocab/
};

const SynthPreset* find_synth_preset(const std::string& name);
const std::vector<SynthPreset>& synth_presets();

struct SynthOptions {
  std::string preset;
  std::string vocab_path;           // a GGUF with tokenizer.* metadata
  TensorType type = TensorType::F16;  // of the 2-D weights: F16 or F32 (norms are F32)
  uint64_t seed = 42;
  int n_threads = 0;                // 0: all hardware threads
  // After each tensor: (tensors done, tensors total).
  std::function<void(int done, int total)> on_progress;
};

struct SynthSummary {
  uint64_t parameters = 0;
  uint64_t file_bytes = 0;
  int tensors = 0;
};

Result<SynthSummary> synth_model(const SynthOptions& options, const std::string& output_path);

// Fills dst[0..n) with values mean + std·N(0,1) for elements first..first+n of the stream
// `key`: element i's value depends only on (key, i), so any split over threads gives the same
// tensor. F16 and F32 destinations.
void synth_fill_f32(float* dst, int64_t n, uint64_t key, int64_t first, float mean, float std);
void synth_fill_f16(uint16_t* dst, int64_t n, uint64_t key, int64_t first, float mean, float std);

}  // namespace plumb
