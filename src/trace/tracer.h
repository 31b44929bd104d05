// Taps: the forward pass hands every intermediate result to a Tracer under a stable name
// (inp_embd, blk.<i>.attn_norm, ..., result_norm, logits; see docs/TRACE.md and
// trace/tap_names.h). With no tracer the call is one branch on a null pointer.
// trace::TraceRecorder (trace/recorder.h) is the implementation that keeps and writes them.
#pragma once

#include <cstdint>
#include <string>

namespace plumb {

class Tracer {
 public:
  virtual ~Tracer() = default;
  // Whether a tap is wanted (lets the forward pass skip work for filtered-out taps).
  virtual bool wants(const std::string& name) const = 0;
  // `data` is row-major [n_tokens][width] F32, valid only during the call.
  virtual void tap(const std::string& name, const float* data, int64_t width, int64_t n_tokens) = 0;
};

}  // namespace plumb
