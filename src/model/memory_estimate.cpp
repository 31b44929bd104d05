#include "model/memory_estimate.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace plumb {

int64_t resolved_context(const ModelConfig& config, int64_t requested) {
  return requested > 0 ? requested : std::min<int64_t>(config.n_ctx_train, 4096);
}

MemoryEstimate estimate_session_memory(const ModelConfig& c, int64_t n_ctx, int64_t n_batch, CacheType cache_type,
                                       int64_t logit_rows, int n_threads) {
  const double ctx = static_cast<double>(n_ctx);
  const double batch = static_cast<double>(std::min(std::max<int64_t>(n_batch, 1), std::max<int64_t>(n_ctx, 1)));
  const double f32 = 4.0;
  const double kv_width = static_cast<double>(c.n_head_kv) * static_cast<double>(c.head_dim_k + c.head_dim_v);
  MemoryEstimate e;
  e.kv_cache = static_cast<double>(c.n_layer) * ctx * kv_width * (cache_type == CacheType::F16 ? 2.0 : 4.0);
  // x, xb, proj [n_embd]; q [n_head*hdk]; k, v; att [n_head*hdv]; gate, up [n_ff]: per token.
  const double per_token = 3.0 * static_cast<double>(c.n_embd) +
                           static_cast<double>(c.n_head) * static_cast<double>(c.head_dim_k + c.head_dim_v) +
                           kv_width + 2.0 * static_cast<double>(c.n_ff);
  e.activations = batch * per_token * f32;
  const double rows = static_cast<double>(std::max<int64_t>(logit_rows, 1));
  e.logits = (std::min(rows, batch) + rows) * static_cast<double>(c.n_vocab) * f32;
  // RoPE cos/sin for every position; per thread the keys and values of one KV head as f32
  // and the scores of a tile of rows.
  e.other = ctx * static_cast<double>(c.n_rot) * f32 +
            static_cast<double>(std::max(n_threads, 1)) * ctx *
                (static_cast<double>(c.head_dim_k + c.head_dim_v) + std::min(batch, 64.0)) * f32;
  return e;
}

Result<uint64_t> available_memory() {
  std::ifstream in("/proc/meminfo");
  if (!in) return Status::error("cannot read /proc/meminfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("MemAvailable:", 0) != 0) continue;
    std::istringstream fields(line.substr(13));
    uint64_t kib = 0;
    if (fields >> kib) return kib * 1024;
  }
  return Status::error("/proc/meminfo has no MemAvailable line");
}

std::string format_bytes(double bytes) {
  char buf[32];
  if (bytes >= 1e9) {
    std::snprintf(buf, sizeof buf, "%.1f GB", bytes / 1e9);
  } else if (bytes >= 1e6) {
    std::snprintf(buf, sizeof buf, "%.1f MB", bytes / 1e6);
  } else {
    std::snprintf(buf, sizeof buf, "%.0f KB", bytes / 1e3);
  }
  return buf;
}

}  // namespace plumb
