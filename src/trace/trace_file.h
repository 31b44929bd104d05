// A trace file read into memory: prompt tokens and every comparable F32 tensor
// (p<k>.logits, p<k>.trace.<tap>), in the layout of ../shared/ref/*.gguf and ref64.py --out.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "trace/tap_names.h"
#include "util/status.h"

namespace plumb::trace {

struct TraceTensor {
  TapName name;
  std::string shape;     // as stored, "[256, 14]"
  int64_t width = 0;     // ne[0]
  int64_t n_tokens = 0;  // ne[1] * ne[2] * ne[3]
  std::vector<float> data;  // row-major [n_tokens][width]
};

struct TraceFile {
  std::string path;
  std::map<int, std::vector<int32_t>> tokens;  // prompt k -> p<k>.tokens
  std::vector<TraceTensor> tensors;            // in forward order
  // String-valued metadata (trace.engine, trace.backend, trace.model, ref.engine, ref.model,
  // ref64.model, general.architecture, ...): what made the file, for the diff's noise model.
  std::map<std::string, std::string> metadata;

  const TraceTensor* find(const std::string& tensor_name) const;
  // metadata[key], or "" when absent.
  std::string meta(const std::string& key) const;
};

// Reads the tensors of an open GGUF file. A p<k>.tokens that is not I32, or a tap that is not
// F32, is an error naming the tensor.
Result<TraceFile> read_trace(const gguf::File& file);
Result<TraceFile> read_trace_file(const std::string& path);

}  // namespace plumb::trace
