// Whole-file quantization: llama-quantize's job. Reads a GGUF model (F32/F16/BF16 or already
// quantized), chooses each tensor's type (quant/mix.h), converts tensor by tensor with the
// scalar reference quantizers over a thread pool, and writes a GGUF with every metadata entry
// carried over, general.file_type and general.quantization_version set, and the tensors in
// llama-quantize's order, so that the output equals llama-quantize's byte for byte.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "util/status.h"

namespace plumb {

struct QuantizeProgress {
  int tensors_done = 0;
  int tensors_total = 0;
  uint64_t input_bytes_done = 0;   // tensor data of the input converted so far
  uint64_t input_bytes_total = 0;
  const char* tensor_name = "";    // the tensor just finished
};

struct QuantizeOptions {
  std::string target;   // a mix ("Q4_K_M") or a plain tensor type ("q4_k"): see quant/mix.h
  int n_threads = 0;    // 0: all hardware threads
  // Called after each tensor is written (from the calling thread).
  std::function<void(const QuantizeProgress&)> on_progress;
  // Called once per tensor whose type had to fall back (row length not a multiple of the
  // block size), with a one-line description.
  std::function<void(const std::string&)> on_warning;
};

struct QuantizeSummary {
  uint64_t input_file_bytes = 0;
  uint64_t output_file_bytes = 0;
  int tensors = 0;
  int tensors_converted = 0;   // the others were copied unchanged
  int tensors_fell_back = 0;
  uint32_t file_type = 0;      // general.file_type written
};

Result<QuantizeSummary> quantize_model(const std::string& input_path,
                                       const std::string& output_path,
                                       const QuantizeOptions& options);

}  // namespace plumb
