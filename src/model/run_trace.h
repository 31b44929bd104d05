// One traced forward pass of a prompt through the Session API, and the CPU-vs-CUDA check built
// on it; the shared logic of `plumb trace` and `plumb check`. It sits in src/model, above
// src/trace (taps, trace files, diff), which knows nothing of models.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/model.h"
#include "trace/diff.h"
#include "trace/recorder.h"
#include "util/status.h"

namespace plumb {

struct TraceRun {
  std::vector<int32_t> tokens;
  std::vector<float> logits;  // [n_tokens][n_vocab]
  int64_t n_vocab = 0;
  std::unique_ptr<trace::TraceRecorder> recorder;
  std::string backend;
};

// Runs `tokens` as one prompt in a fresh session (logits of every position), recording the taps
// that `taps` selects.
Result<TraceRun> trace_tokens(const Model& model, const std::vector<int32_t>& tokens,
                              const SessionOptions& session_options, const std::string& taps);

// Writes the run with its provenance (trace.model, trace.backend, trace.fault).
Status write_trace_run(const std::string& path, const TraceRun& run, const std::string& model_path,
                       const SessionOptions& session_options);

// Diffs two runs in memory, A against reference B, as plumb diff would their files.
Result<trace::DiffReport> diff_runs(const TraceRun& a, const std::string& name_a, const TraceRun& b,
                             const std::string& name_b, const trace::DiffOptions& options);

// Tokens of `text` with the model's tokenizer (BOS as the model says, special tokens not parsed,
// as in ../shared/ref), or ids parsed from "1,450,..." (commas or spaces).
Result<std::vector<int32_t>> parse_token_list(const std::string& list);
Result<std::vector<int32_t>> tokenize_prompt(const Model& model, const std::string& text);

// Whether this build and machine can run the CUDA backend; when not, *why says so.
bool cuda_available(std::string* why);

}  // namespace plumb
