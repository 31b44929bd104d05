// The llama forward pass (Llama 1/2/3, TinyLlama, Mistral-style, SmolLM2), one op per line.
// Each step is handed to the tracer under its tap name (docs/TRACE.md).
#include "model/llama.h"

#include <cmath>
#include <cstring>

#include "quant/ref.h"

namespace plumb {

Result<std::unique_ptr<LlamaForward>> LlamaForward::create(const ModelConfig& c, const ModelWeights& w,
                                                           std::unique_ptr<Backend> backend,
                                                           const SessionOptions& options, int64_t n_ctx,
                                                           int64_t max_batch, int64_t n_seq) {
  std::unique_ptr<LlamaForward> f(new LlamaForward(c, std::move(backend)));
  Backend& b = *f->backend_;
  f->max_batch_ = max_batch;
  PLUMB_ASSIGN_OR_RETURN(f->token_embd_, b.bind_matrix(*w.token_embd));
  PLUMB_ASSIGN_OR_RETURN(f->output_norm_, b.bind_vector(*w.output_norm));
  if (w.output == w.token_embd) {
    f->output_ = f->token_embd_;  // tied: bound (and on a GPU uploaded) once
  } else {
    PLUMB_ASSIGN_OR_RETURN(f->output_, b.bind_matrix(*w.output));
  }
  f->layers_.resize(w.layers.size());
  for (size_t i = 0; i < w.layers.size(); ++i) {
    const LayerWeights& lw = w.layers[i];
    Layer& l = f->layers_[i];
    PLUMB_ASSIGN_OR_RETURN(l.attn_norm, b.bind_vector(*lw.attn_norm));
    PLUMB_ASSIGN_OR_RETURN(l.wq, b.bind_matrix(*lw.wq));
    PLUMB_ASSIGN_OR_RETURN(l.wk, b.bind_matrix(*lw.wk));
    PLUMB_ASSIGN_OR_RETURN(l.wv, b.bind_matrix(*lw.wv));
    PLUMB_ASSIGN_OR_RETURN(l.wo, b.bind_matrix(*lw.wo));
    PLUMB_ASSIGN_OR_RETURN(l.ffn_norm, b.bind_vector(*lw.ffn_norm));
    PLUMB_ASSIGN_OR_RETURN(l.w_gate, b.bind_matrix(*lw.w_gate));
    PLUMB_ASSIGN_OR_RETURN(l.w_up, b.bind_matrix(*lw.w_up));
    PLUMB_ASSIGN_OR_RETURN(l.w_down, b.bind_matrix(*lw.w_down));
  }

  std::vector<float> freq_factors;
  if (w.rope_freqs != nullptr) {
    freq_factors.resize(static_cast<size_t>(w.rope_freqs->n_elements()));
    dequantize_row(w.rope_freqs->type, w.rope_freqs->data, freq_factors.data(), w.rope_freqs->n_elements());
  }
  PLUMB_RETURN_IF_ERROR(b.bind_rope(RopeTable::make(n_ctx, c.n_rot, c.rope_freq_base, c.rope_freq_scale, freq_factors)));
  f->attn_shape_ = AttentionShape{c.n_head, c.n_head_kv, c.head_dim_k, c.head_dim_v,
                                  1.0f / std::sqrt(static_cast<float>(c.head_dim_k))};
  f->kv_.resize(static_cast<size_t>(n_seq));
  for (auto& kv : f->kv_) {
    PLUMB_ASSIGN_OR_RETURN(kv, b.make_kv_cache(c.n_layer, n_ctx, c.n_head_kv * c.head_dim_k,
                                               c.n_head_kv * c.head_dim_v, options.cache_type));
  }

  RunState& s = f->s_;
  PLUMB_ASSIGN_OR_RETURN(s.x, b.alloc(max_batch * c.n_embd));
  PLUMB_ASSIGN_OR_RETURN(s.xb, b.alloc(max_batch * c.n_embd));
  PLUMB_ASSIGN_OR_RETURN(s.q, b.alloc(max_batch * c.n_head * c.head_dim_k));
  PLUMB_ASSIGN_OR_RETURN(s.k, b.alloc(max_batch * c.n_head_kv * c.head_dim_k));
  PLUMB_ASSIGN_OR_RETURN(s.v, b.alloc(max_batch * c.n_head_kv * c.head_dim_v));
  PLUMB_ASSIGN_OR_RETURN(s.att, b.alloc(max_batch * c.n_head * c.head_dim_v));
  PLUMB_ASSIGN_OR_RETURN(s.proj, b.alloc(max_batch * c.n_embd));
  PLUMB_ASSIGN_OR_RETURN(s.gate, b.alloc(max_batch * c.n_ff));
  PLUMB_ASSIGN_OR_RETURN(s.up, b.alloc(max_batch * c.n_ff));
  PLUMB_ASSIGN_OR_RETURN(s.logits, b.alloc(c.n_vocab));  // one row: a generation step allocates nothing
  s.logit_rows = 1;
  return f;
}

void LlamaForward::tap(Tracer& tracer, int64_t layer, const char* name, const float* buf, int64_t width, int64_t n) {
  const std::string full = layer < 0 ? std::string(name) : "blk." + std::to_string(layer) + "." + name;
  if (!tracer.wants(full)) return;
  tracer.tap(full, backend_->host_view(buf, width * n, tap_scratch_), width, n);
}

Status LlamaForward::reserve_logits(int64_t rows) {
  if (rows <= s_.logit_rows) return Status();
  backend_->release(s_.logits);
  s_.logit_rows = 0;
  PLUMB_ASSIGN_OR_RETURN(s_.logits, backend_->alloc(rows * c_.n_vocab));
  s_.logit_rows = rows;
  return Status();
}

namespace {
// Tokens of a prompt run that follow the generation contract: all or none (backend.h).
int64_t prompt_run_lane(int64_t n) { return n < kPromptContractMinTokens ? n : 0; }
}  // namespace

Status LlamaForward::forward(const int32_t* ids, int64_t n, int64_t pos0, int64_t first_row, float* logits,
                             Tracer* tracer) {
  Backend& b = *backend_;
  // Logits: only the rows that are wanted (every row when tracing).
  const int64_t r0 = tracer != nullptr ? 0 : first_row;
  const int64_t rows = n - r0;
  PLUMB_RETURN_IF_ERROR(reserve_logits(rows));
  b.set_batch(ids, n, pos0);
  KvCache* const cache = kv_[0].get();
  const OutputRows out{r0, nullptr, prompt_run_lane(rows)};
  const auto ops = [&] { layers(n, prompt_run_lane(n), std::span<KvCache* const>(&cache, 1), out, tracer); };
  // A generation step (one token, its logits, no taps) may be recorded once and replayed.
  if (tracer == nullptr && n == 1 && first_row == 0) {
    PLUMB_RETURN_IF_ERROR(b.run_step(/*key=*/1, ops));
  } else {
    ops();
    PLUMB_RETURN_IF_ERROR(b.take_error());
  }
  const int64_t kept = n - first_row;
  if (kept > 0) {
    const float* host = b.host_view(s_.logits, rows * c_.n_vocab, logits_host_);
    PLUMB_RETURN_IF_ERROR(b.take_error());
    std::memcpy(logits, host + (first_row - r0) * c_.n_vocab, static_cast<size_t>(kept * c_.n_vocab) * sizeof(float));
  }
  return Status();
}

Status LlamaForward::forward_batch(std::span<const SeqInput> inputs) {
  Backend& b = *backend_;
  // Inputs under the generation contract first (prompt runs of 1-3 tokens, as forward() runs
  // them), then those under the prompt contract (longer prompt runs, and generated tokens: many
  // sequences' tokens share a pass, where contract S, tokens along the vector lanes or tile
  // columns, costs 2-3x less per token than the single-token kernels; docs/EXACTNESS.md). Each
  // product is then two contiguous parts at most. A backend whose prompt contract is not per
  // token keeps generated tokens and logits rows under the generation contract.
  const bool generated_in_lanes = !b.prompt_contract_per_token();
  const auto lane = [&](size_t i) {
    if (inputs[i].generated) return generated_in_lanes;
    return prompt_run_lane(static_cast<int64_t>(inputs[i].tokens.size())) > 0;
  };
  order_.clear();
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (lane(i)) order_.push_back(i);
  }
  const size_t n_lane_inputs = order_.size();
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!lane(i)) order_.push_back(i);
  }
  batch_ids_.clear();
  batch_runs_.clear();
  batch_caches_.clear();
  out_rows_.clear();
  out_dest_.clear();
  int64_t n_lane = 0;
  for (size_t k = 0; k < order_.size(); ++k) {
    const SeqInput& in = inputs[order_[k]];
    const auto begin = static_cast<int64_t>(batch_ids_.size());
    const auto n = static_cast<int64_t>(in.tokens.size());
    batch_ids_.insert(batch_ids_.end(), in.tokens.begin(), in.tokens.end());
    batch_runs_.push_back({begin, n, in.pos0});
    batch_caches_.push_back(kv_[static_cast<size_t>(in.seq)].get());
    if (k < n_lane_inputs) n_lane += n;
    if (in.logits != nullptr) {
      out_rows_.push_back(begin + n - 1);
      out_dest_.push_back(in.logits);
    }
  }
  const auto n = static_cast<int64_t>(batch_ids_.size());
  if (n == 0) return Status();
  const auto rows = static_cast<int64_t>(out_rows_.size());
  PLUMB_RETURN_IF_ERROR(reserve_logits(rows));
  b.set_batch(batch_ids_.data(), n, batch_runs_);
  // The output rows, one per sequence at most, under the generated tokens' contract (they are
  // mostly theirs).
  layers(n, n_lane, batch_caches_, OutputRows{0, &out_rows_, generated_in_lanes ? rows : 0}, nullptr);
  PLUMB_RETURN_IF_ERROR(b.take_error());
  if (rows == 0) return Status();
  const float* host = b.host_view(s_.logits, rows * c_.n_vocab, logits_host_);
  PLUMB_RETURN_IF_ERROR(b.take_error());
  for (int64_t r = 0; r < rows; ++r) {
    std::memcpy(out_dest_[static_cast<size_t>(r)], host + r * c_.n_vocab, static_cast<size_t>(c_.n_vocab) * sizeof(float));
  }
  return Status();
}

void LlamaForward::layers(int64_t n, int64_t n_lane, std::span<KvCache* const> caches, const OutputRows& out,
                          Tracer* tracer) {
  Backend& b = *backend_;
  RunState& s = s_;
  const int64_t n_embd = c_.n_embd;
  const int64_t q_width = c_.n_head * c_.head_dim_k;
  const int64_t k_width = c_.n_head_kv * c_.head_dim_k;
  const int64_t v_width = c_.n_head_kv * c_.head_dim_v;
  const int64_t att_width = c_.n_head * c_.head_dim_v;
  const auto n_runs = static_cast<int64_t>(caches.size());

  b.get_rows(*token_embd_, n, s.x);                               // x [n][n_embd]
  trace(tracer, -1, "inp_embd", s.x, n_embd, n);

  for (int64_t il = 0; il < c_.n_layer; ++il) {
    const Layer& l = layers_[static_cast<size_t>(il)];
    // Attention.
    b.rms_norm(s.x, l.attn_norm, c_.rms_eps, n_embd, n, s.xb);    // xb [n][n_embd]
    trace(tracer, il, "attn_norm", s.xb, n_embd, n);
    const Backend::Product qkv[] = {{l.wq.get(), s.q},              // q [n][n_head * head_dim_k]
                                    {l.wk.get(), s.k},              // k [n][n_head_kv * head_dim_k]
                                    {l.wv.get(), s.v}};             // v [n][n_head_kv * head_dim_v]
    if (tracer == nullptr) {
      b.matmul_rope_store(qkv, s.xb, n, n_lane, caches, il, attn_shape_);  // the two below, in one pass where it can
    } else {
      b.matmul_same_input(qkv, s.xb, n, n_lane);
      trace(tracer, il, "q", s.q, q_width, n);
      trace(tracer, il, "k", s.k, k_width, n);
      trace(tracer, il, "v", s.v, v_width, n);
      b.rope_store(caches, il, n, s.q, s.k, s.v, attn_shape_);      // q, k rotated; each sequence's cache = its k, v
    }
    trace(tracer, il, "q_rope", s.q, q_width, n);
    trace(tracer, il, "k_rope", s.k, k_width, n);
    for (int64_t r = 0; r < n_runs; ++r) {                          // each sequence over its own cache:
      b.attention(*caches[r], il, r, s.q, attn_shape_, s.att);      //   att [n_r][n_head * head_dim_v]
    }
    trace(tracer, il, "attn_out", s.att, att_width, n);
    b.matmul_add(*l.wo, s.att, n, n_lane, s.proj, s.x);             // proj [n][n_embd]; x += proj
    trace(tracer, il, "attn_proj", s.proj, n_embd, n);
    trace(tracer, il, "ffn_inp", s.x, n_embd, n);

    // Feed-forward (SwiGLU).
    b.rms_norm(s.x, l.ffn_norm, c_.rms_eps, n_embd, n, s.xb);     // xb [n][n_embd]
    trace(tracer, il, "ffn_norm", s.xb, n_embd, n);
    const Backend::Product gate_up[] = {{l.w_gate.get(), s.gate},   // gate [n][n_ff]
                                        {l.w_up.get(), s.up}};      // up [n][n_ff]
    if (tracer == nullptr) {
      b.matmul_swiglu(gate_up, s.xb, n, n_lane, s.gate);            // the two below, in one pass where it can
    } else {
      b.matmul_same_input(gate_up, s.xb, n, n_lane);
      trace(tracer, il, "ffn_gate", s.gate, c_.n_ff, n);
      trace(tracer, il, "ffn_up", s.up, c_.n_ff, n);
      b.swiglu(s.gate, s.up, n * c_.n_ff, s.gate);                  // gate = silu(gate) * up
    }
    trace(tracer, il, "ffn_act", s.gate, c_.n_ff, n);
    b.matmul_add(*l.w_down, s.gate, n, n_lane, s.proj, s.x);        // proj [n][n_embd]; x += proj
    trace(tracer, il, "ffn_out", s.proj, n_embd, n);
    trace(tracer, il, "out", s.x, n_embd, n);
  }

  // Output: rows r0 .. n-1, or the gathered rows (into proj, free by now).
  const float* x_out = s.x + out.r0 * n_embd;
  int64_t rows = n - out.r0;
  if (out.gather != nullptr) {
    rows = static_cast<int64_t>(out.gather->size());
    for (int64_t j = 0; j < rows; ++j) b.copy(s.x + (*out.gather)[static_cast<size_t>(j)] * n_embd, n_embd, s.proj + j * n_embd);
    x_out = s.proj;
  }
  if (rows <= 0) return;
  b.rms_norm(x_out, output_norm_, c_.rms_eps, n_embd, rows, s.xb);                // xb [rows][n_embd]
  trace(tracer, -1, "result_norm", s.xb, n_embd, rows);
  b.matmul(*output_, s.xb, rows, out.n_lane, s.logits);                          // logits [rows][n_vocab]
  trace(tracer, -1, "logits", s.logits, c_.n_vocab, rows);
}

}  // namespace plumb
