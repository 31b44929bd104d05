// Session: the KV cache position, batching of decode calls, and the kept logits.
#include <algorithm>
#include <memory>

#include "backend/backend.h"
#include "backend/planted_fault.h"
#include "model/llama.h"
#include "model/llama_model.h"

namespace plumb {

namespace {

class LlamaSession : public Session {
 public:
  LlamaSession(const ModelConfig& config, std::unique_ptr<LlamaForward> forward, int n_ctx, int n_batch)
      : config_(config), forward_(std::move(forward)), n_ctx_(n_ctx), n_batch_(n_batch) {}

  Status decode_keeping(std::span<const int32_t> tokens, int64_t keep_from, Tracer* tracer) override {
    const auto n = static_cast<int64_t>(tokens.size());
    if (n == 0) return Status::error("decode: no tokens");
    if (keep_from < 0 || keep_from >= n) {
      return Status::errorf("decode: logits kept from position %lld of a batch of %lld tokens", (long long)keep_from,
                            (long long)n);
    }
    if (n_past_ + n > n_ctx_) {
      return Status::errorf("context overflow: %lld tokens at position %d exceed the context of %d tokens "
                            "(raise it with -c, up to the model's %lld)",
                            (long long)n, n_past_, n_ctx_, (long long)config_.n_ctx_train);
    }
    for (int64_t i = 0; i < n; ++i) {
      if (tokens[i] < 0 || tokens[i] >= config_.n_vocab) {
        return Status::errorf("decode: token %lld has id %d, outside the vocabulary [0, %lld)", (long long)i,
                              tokens[i], (long long)config_.n_vocab);
      }
    }
    n_rows_ = n - keep_from;
    logits_.resize(static_cast<size_t>(n_rows_ * config_.n_vocab));
    for (int64_t b0 = 0; b0 < n; b0 += n_batch_) {
      const int64_t nb = std::min<int64_t>(n_batch_, n - b0);
      // Rows of this batch whose logits are kept (first_row == nb: none), and where they go.
      const int64_t first_row = std::clamp<int64_t>(keep_from - b0, 0, nb);
      float* out = logits_.data() + std::max<int64_t>(0, b0 - keep_from) * config_.n_vocab;
      Status st = forward_->forward(tokens.data() + b0, nb, n_past_ + b0, first_row, out, tracer);
      if (!st.ok()) {
        n_rows_ = 0;
        return st;
      }
    }
    n_past_ += static_cast<int>(n);
    return Status();
  }

  const float* logits(int64_t i) const override { return logits_.data() + i * config_.n_vocab; }
  int64_t n_logit_rows() const override { return n_rows_; }
  int n_past() const override { return n_past_; }
  int n_ctx() const override { return n_ctx_; }
  void truncate(int n) override { n_past_ = std::clamp(n, 0, n_past_); }
  DeviceMemory device_memory() const override { return forward_->device_memory(); }

 private:
  ModelConfig config_;
  std::unique_ptr<LlamaForward> forward_;
  int n_ctx_;
  int n_batch_;
  int n_past_ = 0;
  int64_t n_rows_ = 0;
  std::vector<float> logits_;  // [n_rows][n_vocab]
};

}  // namespace

Result<std::unique_ptr<Session>> Session::create(const Model& model, const SessionOptions& options) {
  const auto* llama = dynamic_cast<const LlamaModel*>(&model);
  if (llama == nullptr) return Status::error("Session::create: not a model loaded by Model::load");
  const ModelConfig& c = llama->config();
  if (options.n_ctx < 0) return Status::errorf("invalid context size %d (must be > 0)", options.n_ctx);
  if (options.n_batch < 0) return Status::errorf("invalid batch size %d (must be > 0)", options.n_batch);
  const int n_ctx = options.n_ctx > 0 ? options.n_ctx : static_cast<int>(std::min<int64_t>(c.n_ctx_train, 4096));
  const int n_batch = std::min(options.n_batch > 0 ? options.n_batch : 512, n_ctx);
  PLUMB_ASSIGN_OR_RETURN(std::unique_ptr<Backend> backend, make_backend(options.backend, options.n_threads));
  backend = with_planted_fault(std::move(backend), FaultSpec{options.fault, options.fault_layer, c.n_head_kv});
  PLUMB_ASSIGN_OR_RETURN(std::unique_ptr<LlamaForward> forward,
                         LlamaForward::create(c, llama->weights(), std::move(backend), options, n_ctx, n_batch));
  return std::unique_ptr<Session>(std::make_unique<LlamaSession>(c, std::move(forward), n_ctx, n_batch));
}

}  // namespace plumb
