// SessionGroup: the positions of several sequences, the checks of their inputs, and one
// LlamaForward with a KV cache per sequence that runs their tokens together.
#include <algorithm>
#include <memory>

#include "backend/backend.h"
#include "model/llama.h"
#include "model/llama_model.h"

namespace plumb {

namespace {

class LlamaSessionGroup : public SessionGroup {
 public:
  LlamaSessionGroup(const ModelConfig& config, std::unique_ptr<LlamaForward> forward, int n_seq, int n_ctx,
                    int max_tokens)
      : config_(config), forward_(std::move(forward)), n_ctx_(n_ctx), max_tokens_(max_tokens),
        n_past_(static_cast<size_t>(n_seq), 0) {}

  Status check(const Input& in) const override {
    if (in.seq < 0 || in.seq >= n_seq()) return Status::errorf("sequence %d does not exist (0 .. %d)", in.seq, n_seq() - 1);
    const auto n = static_cast<int64_t>(in.tokens.size());
    if (n == 0) return Status::errorf("sequence %d: no tokens", in.seq);
    if (in.generated && n != 1) return Status::errorf("sequence %d: %lld generated tokens in one step, not 1", in.seq, (long long)n);
    const int past = n_past_[static_cast<size_t>(in.seq)];
    if (past + n > n_ctx_) {
      return Status::errorf("context overflow: %lld tokens at position %d exceed the context of %d tokens", (long long)n,
                            past, n_ctx_);
    }
    for (int64_t i = 0; i < n; ++i) {
      if (in.tokens[i] < 0 || in.tokens[i] >= config_.n_vocab) {
        return Status::errorf("token %lld has id %d, outside the vocabulary [0, %lld)", (long long)i, in.tokens[i],
                              (long long)config_.n_vocab);
      }
    }
    return Status();
  }

  Status step(std::span<const Input> inputs) override {
    int64_t total = 0;
    std::vector<bool> seen(n_past_.size(), false);
    for (const Input& in : inputs) {
      PLUMB_RETURN_IF_ERROR(check(in));
      if (seen[static_cast<size_t>(in.seq)]) return Status::errorf("sequence %d has two inputs in one step", in.seq);
      seen[static_cast<size_t>(in.seq)] = true;
      total += static_cast<int64_t>(in.tokens.size());
    }
    if (total > max_tokens_) {
      return Status::errorf("a step of %lld tokens exceeds the %d this group was made for", (long long)total, max_tokens_);
    }
    const auto n_vocab = static_cast<size_t>(config_.n_vocab);
    logits_.resize(inputs.size() * n_vocab);
    kept_.assign(inputs.size(), false);
    fwd_.clear();
    for (size_t i = 0; i < inputs.size(); ++i) {
      const Input& in = inputs[i];
      kept_[i] = in.want_logits;
      fwd_.push_back({in.seq, in.tokens, n_past_[static_cast<size_t>(in.seq)], in.generated,
                      in.want_logits ? logits_.data() + i * n_vocab : nullptr});
    }
    Status st = forward_->forward_batch(fwd_);
    if (!st.ok()) {
      kept_.assign(inputs.size(), false);
      return st;
    }
    for (const Input& in : inputs) n_past_[static_cast<size_t>(in.seq)] += static_cast<int>(in.tokens.size());
    return Status();
  }

  const float* logits(size_t i) const override {
    return i < kept_.size() && kept_[i] ? logits_.data() + i * static_cast<size_t>(config_.n_vocab) : nullptr;
  }
  int n_past(int seq) const override { return n_past_[static_cast<size_t>(seq)]; }
  int n_ctx() const override { return n_ctx_; }
  int n_seq() const override { return static_cast<int>(n_past_.size()); }
  int max_tokens() const override { return max_tokens_; }
  void truncate(int seq, int n) override {
    int& past = n_past_[static_cast<size_t>(seq)];
    past = std::clamp(n, 0, past);
  }

 private:
  ModelConfig config_;
  std::unique_ptr<LlamaForward> forward_;
  int n_ctx_;
  int max_tokens_;
  std::vector<int> n_past_;
  std::vector<float> logits_;  // [inputs of the last step][n_vocab]
  std::vector<bool> kept_;
  std::vector<LlamaForward::SeqInput> fwd_;
};

}  // namespace

Result<std::unique_ptr<SessionGroup>> SessionGroup::create(const Model& model, const SessionOptions& options, int n_seq,
                                                           int max_tokens) {
  const auto* llama = dynamic_cast<const LlamaModel*>(&model);
  if (llama == nullptr) return Status::error("SessionGroup::create: not a model loaded by Model::load");
  const ModelConfig& c = llama->config();
  if (n_seq < 1) return Status::errorf("a group needs at least one sequence, not %d", n_seq);
  if (max_tokens < 1) return Status::errorf("a step needs room for at least one token, not %d", max_tokens);
  if (options.n_ctx < 0) return Status::errorf("invalid context size %d (must be > 0)", options.n_ctx);
  const int n_ctx = options.n_ctx > 0 ? options.n_ctx : static_cast<int>(std::min<int64_t>(c.n_ctx_train, 4096));
  PLUMB_ASSIGN_OR_RETURN(std::unique_ptr<Backend> backend, make_backend(options.backend, options.n_threads));
  PLUMB_ASSIGN_OR_RETURN(std::unique_ptr<LlamaForward> forward,
                         LlamaForward::create(c, llama->weights(), std::move(backend), options, n_ctx, max_tokens, n_seq));
  return std::unique_ptr<SessionGroup>(std::make_unique<LlamaSessionGroup>(c, std::move(forward), n_seq, n_ctx, max_tokens));
}

}  // namespace plumb
