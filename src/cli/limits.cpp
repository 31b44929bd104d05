#include "cli/limits.h"

#include <algorithm>
#include <cstdio>

#include "backend/cpu/cpu_backend.h"
#include "model/memory_estimate.h"
#include "model/weights.h"
#include "model/run_trace.h"
#include "util/thread_pool.h"

namespace plumb::cli {

int cap_threads(const std::string& command, int requested) {
  if (requested < 0) return 0;  // -1: all hardware threads, as llama.cpp
  const int hardware = ThreadPool::hardware_threads();
  if (requested <= hardware) return requested;
  std::fprintf(stderr, "plumb %s: note: -t %d is more than the %d hardware threads; using %d\n", command.c_str(),
               requested, hardware, hardware);
  return hardware;
}

Status check_backend_available(const std::string& backend) {
  std::string why;
  if (backend == "cuda" && !cuda_available(&why)) return Status::error("--backend cuda: " + why);
  return Status();
}

std::string resolve_backend(const std::string& backend) {
  if (backend != "auto") return backend;
  std::string why;
  return cuda_available(&why) ? "cuda" : "cpu";
}

namespace {

// What the CPU backend copies of the model's matrices for generation (scoring a text, plumb
// ppl, never makes the copies); nothing where the weights are not read on the CPU.
double generation_copies(const Model& model, const std::string& backend) {
  if (resolve_backend(backend) != "cpu") return 0;
  Result<ModelWeights> w = find_model_weights(model.file(), model.config());
  if (!w.ok()) return 0;  // the session's creation reports it
  double bytes = static_cast<double>(cpu::generation_copy_bytes(*w->output));
  for (const LayerWeights& l : w->layers) {
    for (const gguf::TensorInfo* t : {l.wq, l.wk, l.wv, l.wo, l.w_gate, l.w_up, l.w_down}) {
      bytes += static_cast<double>(cpu::generation_copy_bytes(*t));
    }
  }
  return bytes;
}

}  // namespace

Status check_session_fits(const std::string& command, const Model& model, const SessionOptions& options,
                          int n_sessions, int64_t logit_rows) {
  const ModelConfig& c = model.config();
  const int64_t n_ctx = resolved_context(c, options.n_ctx);
  if (c.n_ctx_train > 0 && n_ctx > c.n_ctx_train) {
    std::fprintf(stderr,
                 "plumb %s: warning: a context of %lld tokens is more than the %lld the model was trained on; "
                 "positions past %lld were never seen in training, so expect the output to degrade there "
                 "(perplexity rises, text loses coherence)\n",
                 command.c_str(), (long long)n_ctx, (long long)c.n_ctx_train, (long long)c.n_ctx_train);
  }
  const int threads = options.n_threads > 0 ? options.n_threads : ThreadPool::hardware_threads();
  const double copies = command == "ppl" ? 0.0 : generation_copies(model, options.backend);
  auto need = [&](int64_t ctx) {
    MemoryEstimate e = estimate_session_memory(c, ctx, options.n_batch, options.cache_type, logit_rows,
                                               std::max(1, threads / std::max(n_sessions, 1)));
    e.weight_copies = copies;
    return e;
  };
  const MemoryEstimate e = need(n_ctx);
  const double total = e.total() * std::max(n_sessions, 1);
  Result<uint64_t> available = available_memory();
  if (!available.ok()) return Status();  // nothing to compare with: let the allocation decide
  const double have = static_cast<double>(*available);
  if (total <= have) {
    if (total > have / 4) {
      std::fprintf(stderr, "plumb %s: note: the context of %lld tokens takes about %s of the %s available\n",
                   command.c_str(), (long long)n_ctx, format_bytes(total).c_str(), format_bytes(have).c_str());
    }
    return Status();
  }
  // The estimate grows linearly with the context: the largest one that would fit.
  const double per_token = (need(2).total() - need(1).total()) * std::max(n_sessions, 1);
  const double fixed = need(1).total() * std::max(n_sessions, 1) - per_token;
  const double fits = per_token > 0 ? (have - fixed) / per_token : 0;
  std::string hint = fits >= 1 ? strprintf("; at most about %lld tokens fit", (long long)fits)
                               : "; not even one token fits";
  return Status::errorf(
      "a context of %lld tokens%s needs about %s (KV cache %s, activations %s, logits %s, other %s, weights "
      "repacked for generation %s), more than the %s of memory available (MemAvailable in /proc/meminfo)%s: lower -c",
      (long long)n_ctx, n_sessions > 1 ? strprintf(" in %d sessions", n_sessions).c_str() : "",
      format_bytes(total).c_str(), format_bytes(e.kv_cache * n_sessions).c_str(),
      format_bytes(e.activations * n_sessions).c_str(), format_bytes(e.logits * n_sessions).c_str(),
      format_bytes(e.other * n_sessions).c_str(), format_bytes(e.weight_copies * n_sessions).c_str(),
      format_bytes(have).c_str(), hint.c_str());
}

}  // namespace plumb::cli
