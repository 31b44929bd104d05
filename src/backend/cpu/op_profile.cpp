#include "backend/cpu/op_profile.h"

#include <array>
#include <utility>

namespace plumb::cpu {

namespace {

constexpr size_t kOps = static_cast<size_t>(OpKind::kCount);
constexpr size_t kRoles = static_cast<size_t>(MatrixRole::kCount) + 1;  // + "no matrix"

const char* op_name(OpKind op) {
  switch (op) {
    case OpKind::kEmbed: return "embedding rows";
    case OpKind::kNorm: return "rms_norm";
    case OpKind::kPrep: return "prep";
    case OpKind::kProduct: return "product";
    case OpKind::kRope: return "rope";
    case OpKind::kKvStore: return "kv_store";
    case OpKind::kAttention: return "attention";
    case OpKind::kSwiglu: return "swiglu";
    case OpKind::kAdd: return "add";
    default: return "?";
  }
}

const char* role_name(MatrixRole role) {
  switch (role) {
    case MatrixRole::kQkv: return "qkv";
    case MatrixRole::kAttnOut: return "attn_output";
    case MatrixRole::kGateUp: return "gate+up";
    case MatrixRole::kDown: return "down";
    case MatrixRole::kOutput: return "output";
    default: return "";
  }
}

// Written by the thread that runs the forward pass only (ops are issued one after another).
std::array<std::array<OpProfile::Row, kRoles>, kOps> g_rows;

}  // namespace

std::atomic<bool> OpProfile::enabled_{false};
std::atomic<uint64_t> OpProfile::busy_ns_{0};

MatrixRole matrix_role(const std::string& name) {
  auto has = [&](const char* part) { return name.find(part) != std::string::npos; };
  if (has("attn_q") || has("attn_k") || has("attn_v")) return MatrixRole::kQkv;
  if (has("attn_output")) return MatrixRole::kAttnOut;
  if (has("ffn_gate") || has("ffn_up")) return MatrixRole::kGateUp;
  if (has("ffn_down")) return MatrixRole::kDown;
  return MatrixRole::kOutput;  // output.weight, or the embedding table as tied output
}

void OpProfile::reset() {
  for (auto& per_role : g_rows) per_role.fill(Row{});
  busy_ns_.store(0, std::memory_order_relaxed);
}

void OpProfile::add(OpKind op, MatrixRole role, uint64_t wall_ns, uint64_t busy_ns, int threads) {
  Row& r = g_rows[static_cast<size_t>(op)][static_cast<size_t>(role)];
  ++r.calls;
  r.wall_ns += wall_ns;
  r.busy_ns += busy_ns;
  r.capacity_ns += wall_ns * static_cast<uint64_t>(threads);
}

std::vector<OpProfile::Row> OpProfile::rows() {
  // Each matrix's preparation beside its product; the other ops by kind.
  std::vector<std::pair<OpKind, size_t>> order;
  const size_t none = kRoles - 1;
  order.push_back({OpKind::kEmbed, none});
  order.push_back({OpKind::kNorm, none});
  for (size_t role = 0; role < none; ++role) {
    order.push_back({OpKind::kPrep, role});
    order.push_back({OpKind::kProduct, role});
  }
  for (OpKind op : {OpKind::kRope, OpKind::kKvStore, OpKind::kAttention, OpKind::kSwiglu, OpKind::kAdd}) {
    order.push_back({op, none});
  }
  std::vector<Row> out;
  for (const auto& [op, role] : order) {
    Row r = g_rows[static_cast<size_t>(op)][role];
    if (r.calls == 0) continue;
    r.name = op_name(op);
    if (role != none) r.name += std::string(" ") + role_name(static_cast<MatrixRole>(role));
    out.push_back(r);
  }
  return out;
}

}  // namespace plumb::cpu
