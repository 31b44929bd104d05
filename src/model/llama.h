// The llama forward pass over a batch of tokens, written once against backend.h.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "model/model.h"
#include "model/weights.h"
#include "trace/tracer.h"

namespace plumb {

class LlamaForward {
 public:
  // Binds the weights to `backend` and allocates every activation buffer for batches of up
  // to max_batch tokens, plus n_seq KV caches (one per sequence) of n_ctx positions.
  static Result<std::unique_ptr<LlamaForward>> create(const ModelConfig& config, const ModelWeights& weights,
                                                      std::unique_ptr<Backend> backend, const SessionOptions& options,
                                                      int64_t n_ctx, int64_t max_batch, int64_t n_seq = 1);

  // Runs tokens ids[0..n) of sequence 0 at positions pos0 .. pos0+n-1 (n <= max_batch,
  // pos0 + n <= n_ctx; the caller checks), as a run of prompt tokens. Writes the logits of rows
  // first_row .. n-1 into logits [n - first_row][n_vocab]; rows before first_row get no output
  // projection unless a tracer is attached.
  Status forward(const int32_t* ids, int64_t n, int64_t pos0, int64_t first_row, float* logits, Tracer* tracer);

  // One sequence's share of a batched pass.
  struct SeqInput {
    int64_t seq = 0;                  // its KV cache, 0 .. n_seq-1 (one input per sequence)
    std::span<const int32_t> tokens;  // at positions pos0 ..
    int64_t pos0 = 0;
    bool generated = false;           // one generated token, else a run of prompt tokens
    float* logits = nullptr;          // receives the last token's logits [n_vocab]; nullptr: none
  };
  // Runs every input's tokens in one forward pass (their total <= max_batch, each pos0 + size
  // <= n_ctx; the caller checks). Each token's arithmetic follows its role, never the other
  // inputs: a prompt run as forward() runs it (the generation contract below 4 tokens, else the
  // prompt contract), a generated token and the output rows under the prompt contract. So an
  // input gets the bits it gets alone in forward_batch, and a prompt run's cache entries are
  // forward()'s.
  Status forward_batch(std::span<const SeqInput> inputs);

  DeviceMemory device_memory() const { return backend_->device_memory(); }

 private:
  struct Layer {
    const float* attn_norm = nullptr;
    std::unique_ptr<BoundMatrix> wq, wk, wv, wo;
    const float* ffn_norm = nullptr;
    std::unique_ptr<BoundMatrix> w_gate, w_up, w_down;
  };
  // Activations for a batch of up to max_batch tokens, allocated once.
  struct RunState {
    float* x = nullptr;       // [n][n_embd] residual stream
    float* xb = nullptr;      // [n][n_embd] normed input of attention / FFN / output
    float* q = nullptr;       // [n][n_head * head_dim_k]
    float* k = nullptr;       // [n][n_head_kv * head_dim_k]
    float* v = nullptr;       // [n][n_head_kv * head_dim_v]
    float* att = nullptr;     // [n][n_head * head_dim_v] heads merged
    float* proj = nullptr;    // [n][n_embd] attention or FFN output projection
    float* gate = nullptr;    // [n][n_ff], then silu(gate) * up in place
    float* up = nullptr;      // [n][n_ff]
    float* logits = nullptr;  // [logit_rows][n_vocab]: one row, grown for prompts that keep more
    int64_t logit_rows = 0;
  };

  LlamaForward(const ModelConfig& config, std::unique_ptr<Backend> backend)
      : c_(config), backend_(std::move(backend)) {}

  // Where a batch's logits come from: rows r0 .. n-1 in place, or (gather) the listed rows.
  struct OutputRows {
    int64_t r0 = 0;
    const std::vector<int64_t>* gather = nullptr;
    int64_t n_lane = 0;  // of the output rows, how many follow the generation contract
  };
  // The ops of one batch, set_batch done: every layer (tokens [0, n_lane) under the generation
  // contract; run r's attention over caches[r]), then the logits of the output rows.
  void layers(int64_t n, int64_t n_lane, std::span<KvCache* const> caches, const OutputRows& out, Tracer* tracer);
  // Makes the logits buffer hold `rows` rows.
  Status reserve_logits(int64_t rows);

  // Hands a buffer to the tracer; costs one branch when there is none.
  void trace(Tracer* tracer, int64_t layer, const char* name, const float* buf, int64_t width, int64_t n) {
    if (tracer != nullptr) tap(*tracer, layer, name, buf, width, n);
  }
  void tap(Tracer& tracer, int64_t layer, const char* name, const float* buf, int64_t width, int64_t n);

  ModelConfig c_;
  std::unique_ptr<Backend> backend_;
  int64_t max_batch_ = 0;
  std::shared_ptr<BoundMatrix> token_embd_;
  const float* output_norm_ = nullptr;
  std::shared_ptr<BoundMatrix> output_;  // token_embd_ itself when the model ties them
  std::vector<Layer> layers_;
  AttentionShape attn_shape_;
  std::vector<std::unique_ptr<KvCache>> kv_;  // one per sequence
  // forward_batch's batch, reused: inputs in contract order, their ids, runs, caches, output rows.
  std::vector<size_t> order_;
  std::vector<int32_t> batch_ids_;
  std::vector<SeqRun> batch_runs_;
  std::vector<KvCache*> batch_caches_;
  std::vector<int64_t> out_rows_;
  std::vector<float*> out_dest_;
  RunState s_;
  std::vector<float> tap_scratch_;
  std::vector<float> logits_host_;
};

}  // namespace plumb
