// TraceRecorder: the Tracer that keeps the taps a glob list selects, and the writer that stores
// them with the prompt's tokens and logits as a trace GGUF (the layout of ../shared/ref/*.gguf):
//   p0.tokens I32 [n]   p0.logits F32 [n_vocab, n]   p0.trace.<tap> F32 [width, n]
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "gguf/gguf.h"
#include "trace/glob.h"
#include "trace/tracer.h"
#include "util/status.h"

namespace plumb::trace {

class TraceRecorder : public Tracer {
 public:
  // `taps`: comma-separated globs over tap names ("*", "blk.0.*,logits").
  explicit TraceRecorder(std::string_view taps = "*") : select_(taps) {}

  bool wants(const std::string& name) const override { return select_.matches(name); }
  // A tap seen again (the prompt split into several batches) gets the new rows appended.
  void tap(const std::string& name, const float* data, int64_t width, int64_t n_tokens) override;

  struct Tap {
    std::string name;
    int64_t width = 0;
    int64_t n_tokens = 0;
    std::vector<float> data;  // row-major [n_tokens][width]
  };
  const std::vector<Tap>& taps() const { return taps_; }
  const Tap* find(const std::string& name) const;
  // The first inconsistency seen (a tap repeated with another width), or ok.
  const Status& status() const { return status_; }
  void clear();

 private:
  GlobList select_;
  std::vector<Tap> taps_;  // in the order first seen, i.e. forward order
  Status status_;
};

struct TraceContents {
  std::vector<int32_t> tokens;          // the prompt
  std::vector<float> logits;            // row-major [n_tokens][n_vocab]; may be empty
  int64_t n_vocab = 0;
  const TraceRecorder* recorder = nullptr;
  std::vector<std::pair<std::string, gguf::Value>> metadata;  // e.g. trace.model, trace.backend
};

// Builds the GGUF (general.architecture "plumb-trace"); every tap must cover every token.
Result<gguf::Writer> make_trace_writer(const TraceContents& contents);
Status write_trace_file(const std::string& path, const TraceContents& contents);

}  // namespace plumb::trace
