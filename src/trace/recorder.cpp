#include "trace/recorder.h"

namespace plumb::trace {

void TraceRecorder::tap(const std::string& name, const float* data, int64_t width, int64_t n_tokens) {
  if (!select_.matches(name) || width <= 0 || n_tokens <= 0) return;
  Tap* t = nullptr;
  for (auto& existing : taps_) {
    if (existing.name == name) t = &existing;
  }
  if (t == nullptr) {
    taps_.push_back(Tap{name, width, 0, {}});
    t = &taps_.back();
  } else if (t->width != width) {
    if (status_.ok()) {
      status_ = Status::errorf("tap '%s' was recorded with width %lld, then with width %lld",
                               name.c_str(), static_cast<long long>(t->width),
                               static_cast<long long>(width));
    }
    return;
  }
  t->data.insert(t->data.end(), data, data + width * n_tokens);
  t->n_tokens += n_tokens;
}

const TraceRecorder::Tap* TraceRecorder::find(const std::string& name) const {
  for (const auto& t : taps_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

void TraceRecorder::clear() {
  taps_.clear();
  status_ = Status();
}

Result<gguf::Writer> make_trace_writer(const TraceContents& c) {
  const auto n = static_cast<int64_t>(c.tokens.size());
  if (n == 0) return Status::error("trace: no tokens to write");
  gguf::Writer w;
  w.set("general.architecture", gguf::Value::make_string("plumb-trace"));
  w.set("trace.n_prompts", gguf::Value::make_u32(1));
  for (const auto& [key, value] : c.metadata) w.set(key, value);
  PLUMB_RETURN_IF_ERROR(w.add_tensor("p0.tokens", TensorType::I32, {n}, c.tokens.data(),
                                     c.tokens.size() * sizeof(int32_t)));
  if (!c.logits.empty()) {
    if (c.n_vocab <= 0 || static_cast<int64_t>(c.logits.size()) != c.n_vocab * n) {
      return Status::errorf("trace: %zu logits for %lld tokens of a %lld-token vocabulary",
                            c.logits.size(), static_cast<long long>(n),
                            static_cast<long long>(c.n_vocab));
    }
    PLUMB_RETURN_IF_ERROR(w.add_tensor("p0.logits", TensorType::F32, {c.n_vocab, n},
                                       c.logits.data(), c.logits.size() * sizeof(float)));
  }
  if (c.recorder != nullptr) {
    PLUMB_RETURN_IF_ERROR(c.recorder->status());
    for (const auto& t : c.recorder->taps()) {
      if (t.n_tokens != n) {
        return Status::errorf("trace: tap '%s' covers %lld tokens, the prompt has %lld",
                              t.name.c_str(), static_cast<long long>(t.n_tokens),
                              static_cast<long long>(n));
      }
      PLUMB_RETURN_IF_ERROR(w.add_tensor("p0.trace." + t.name, TensorType::F32,
                                         {t.width, t.n_tokens}, t.data.data(),
                                         t.data.size() * sizeof(float)));
    }
  }
  return w;
}

Status write_trace_file(const std::string& path, const TraceContents& contents) {
  PLUMB_ASSIGN_OR_RETURN(gguf::Writer w, make_trace_writer(contents));
  return w.write(path).with_context("writing trace " + path);
}

}  // namespace plumb::trace
