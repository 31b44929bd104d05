#include "backend/cpu/cpu_backend.h"

#include <algorithm>
#include <cstring>
#include <new>

#include "backend/cpu/matmul_internal.h"
#include "quant/ref.h"

namespace plumb::cpu {

CpuBackend::CpuBackend(int n_threads) : pool_(n_threads) {
  attention_scratch_.resize(static_cast<size_t>(pool_.size()));
}

Result<float*> CpuBackend::alloc(int64_t n) {
  auto* p = static_cast<float*>(::operator new[](static_cast<size_t>(n) * sizeof(float), std::align_val_t{64}));
  std::fill_n(p, n, 0.0f);
  buffers_.emplace_back(p);
  return buffers_.back().get();
}

void CpuBackend::release(float* buf) {
  buffers_.remove_if([buf](const auto& b) { return b.get() == buf; });
}

void CpuBackend::upload(const float* host, int64_t n, float* buf) {
  std::memcpy(buf, host, static_cast<size_t>(n) * sizeof(float));
}

void CpuBackend::copy(const float* src, int64_t n, float* dst) {
  std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}

Result<std::unique_ptr<BoundMatrix>> CpuBackend::bind_matrix(const gguf::TensorInfo& t) {
  auto m = std::make_unique<CpuMatrix>();
  m->n_in = t.ne[0];
  m->n_out = t.n_rows();
  const size_t row_bytes = row_size(t.type, m->n_in);
  if (row_bytes * static_cast<size_t>(m->n_out) != t.nbytes) {
    return Status::errorf("%s: %llu bytes for %s %s, expected %zu", t.name.c_str(), (unsigned long long)t.nbytes,
                          type_name(t.type), t.shape_string().c_str(), row_bytes * static_cast<size_t>(m->n_out));
  }
  m->w = WeightMatrix{t.type, m->n_in, m->n_out, t.data, row_bytes};
  m->role = matrix_role(t.name);
  m->copy = copies_.reserve(generation_copy_bytes(m->w));
  return std::unique_ptr<BoundMatrix>(std::move(m));
}

Result<const float*> CpuBackend::bind_vector(const gguf::TensorInfo& t) {
  if (t.type == TensorType::F32) return reinterpret_cast<const float*>(t.data);
  vectors_.emplace_back(static_cast<size_t>(t.n_elements()));
  dequantize_row(t.type, t.data, vectors_.back().data(), t.n_elements());
  return static_cast<const float*>(vectors_.back().data());
}

Status CpuBackend::bind_rope(const RopeTable& table) {
  rope_ = table;
  return Status();
}

Result<std::unique_ptr<KvCache>> CpuBackend::make_kv_cache(int64_t n_layer, int64_t n_ctx, int64_t k_width,
                                                           int64_t v_width, CacheType type) {
  auto c = std::make_unique<CpuKvCache>();
  c->type = type;
  c->n_ctx = n_ctx;
  c->k_width = k_width;
  c->v_width = v_width;
  const auto L = static_cast<size_t>(n_layer);
  if (type == CacheType::F16) {
    c->k16.assign(L, std::vector<uint16_t>(static_cast<size_t>(n_ctx * k_width)));
    c->v16.assign(L, std::vector<uint16_t>(static_cast<size_t>(n_ctx * v_width)));
  } else {
    c->k32.assign(L, std::vector<float>(static_cast<size_t>(n_ctx * k_width)));
    c->v32.assign(L, std::vector<float>(static_cast<size_t>(n_ctx * v_width)));
  }
  return std::unique_ptr<KvCache>(std::move(c));
}

void CpuBackend::set_batch(const int32_t* ids, int64_t n, std::span<const SeqRun> runs) {
  ids_.assign(ids, ids + n);
  runs_.assign(runs.begin(), runs.end());
  pos_.resize(static_cast<size_t>(n));
  for (const SeqRun& r : runs_) {
    for (int64_t i = 0; i < r.n; ++i) pos_[static_cast<size_t>(r.begin + i)] = r.pos0 + i;
  }
}

void CpuBackend::get_rows(const BoundMatrix& table, int64_t n, float* out) {
  OpTimer timer(OpKind::kEmbed, 1);
  const auto& m = static_cast<const CpuMatrix&>(table);
  for (int64_t t = 0; t < n; ++t) {
    dequantize_row(m.w.type, m.w.data + static_cast<size_t>(ids_[t]) * m.w.row_bytes, out + t * m.n_in, m.n_in);
  }
}

size_t generation_copy_bytes(const gguf::TensorInfo& t) {
  return generation_copy_bytes(WeightMatrix{t.type, t.ne[0], t.n_rows()});
}

void CpuBackend::repack_if_used(const CpuMatrix& m, int64_t n, int64_t n_lane) {
  const auto few = [](int64_t k) { return k > 0 && k < detail::kSummedMinTokens; };
  n_lane = std::clamp<int64_t>(n_lane, 0, n);
  if (m.w.rows16 != nullptr || m.w.blocks != nullptr || !(few(n_lane) || few(n - n_lane))) return;
  // Without the memory the products read the file's layout: the same bits, more slowly.
  uint8_t* copy = copies_.at(m.copy);
  if (copy != nullptr) make_generation_copy(pool_, m.w, copy);
}

void CpuBackend::matmul(const BoundMatrix& w, const float* x, int64_t n, int64_t n_lane, float* y) {
  const auto& m = static_cast<const CpuMatrix&>(w);
  repack_if_used(m, n, n_lane);
  cpu::matmul(pool_, m.w, x, n, n_lane, y, scratch_, m.role);
}

void CpuBackend::matmul_same_input(std::span<const Product> products, const float* x, int64_t n, int64_t n_lane) {
  if (products.empty()) return;
  jobs_.clear();  // reused: no allocation per product on the decode path
  for (const Product& p : products) {
    const auto& m = static_cast<const CpuMatrix&>(*p.w);
    repack_if_used(m, n, n_lane);
    jobs_.push_back({&m.w, p.y});
  }
  cpu::matmul_same_input(pool_, jobs_, x, n, n_lane, scratch_, static_cast<const CpuMatrix&>(*products[0].w).role);
}

}  // namespace plumb::cpu
