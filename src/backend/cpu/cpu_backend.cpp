#include "backend/cpu/cpu_backend.h"

#include <algorithm>
#include <cstring>

#include "quant/blocks.h"
#include "quant/ref.h"

namespace plumb::cpu {

CpuBackend::CpuBackend(int n_threads) : pool_(n_threads) {
  attention_scratch_.resize(static_cast<size_t>(pool_.size()));
}

float* CpuBackend::alloc(int64_t n) {
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

Result<std::unique_ptr<BoundMatrix>> CpuBackend::bind_matrix(const gguf::TensorInfo& t, PlantedFault fault) {
  auto m = std::make_unique<CpuMatrix>();
  m->n_in = t.ne[0];
  m->n_out = t.n_rows();
  const size_t row_bytes = row_size(t.type, m->n_in);
  if (row_bytes * static_cast<size_t>(m->n_out) != t.nbytes) {
    return Status::errorf("%s: %llu bytes for %s %s, expected %zu", t.name.c_str(), (unsigned long long)t.nbytes,
                          type_name(t.type), t.shape_string().c_str(), row_bytes * static_cast<size_t>(m->n_out));
  }
  m->w = WeightMatrix{t.type, m->n_in, m->n_out, t.data, row_bytes};
  if (fault == PlantedFault::Q4KScalesSwapped && t.type == TensorType::Q4_K) {
    // Tests only: a slow owned F32 copy, so the hot kernels stay free of the fault.
    m->owned.resize(static_cast<size_t>(m->n_in * m->n_out) * sizeof(float));
    float* dst = reinterpret_cast<float*>(m->owned.data());
    for (int64_t r = 0; r < m->n_out; ++r) {
      dequantize_q4_k_scales_swapped(t.data + static_cast<size_t>(r) * row_bytes, dst + r * m->n_in, m->n_in);
    }
    m->w = WeightMatrix{TensorType::F32, m->n_in, m->n_out, m->owned.data(), static_cast<size_t>(m->n_in) * sizeof(float)};
  }
  return std::unique_ptr<BoundMatrix>(std::move(m));
}

Result<const float*> CpuBackend::bind_vector(const gguf::TensorInfo& t) {
  if (t.type == TensorType::F32) return reinterpret_cast<const float*>(t.data);
  vectors_.emplace_back(static_cast<size_t>(t.n_elements()));
  dequantize_row(t.type, t.data, vectors_.back().data(), t.n_elements());
  return static_cast<const float*>(vectors_.back().data());
}

std::unique_ptr<KvCache> CpuBackend::make_kv_cache(int64_t n_layer, int64_t n_ctx, int64_t k_width, int64_t v_width,
                                                   CacheType type) {
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
  return c;
}

void CpuBackend::get_rows(const BoundMatrix& table, const int32_t* ids, int64_t n, float* out) {
  const auto& m = static_cast<const CpuMatrix&>(table);
  for (int64_t t = 0; t < n; ++t) {
    dequantize_row(m.w.type, m.w.data + static_cast<size_t>(ids[t]) * m.w.row_bytes, out + t * m.n_in, m.n_in);
  }
}

void CpuBackend::matmul(const BoundMatrix& w, const float* x, int64_t n, float* y) {
  cpu::matmul(pool_, static_cast<const CpuMatrix&>(w).w, x, n, y, scratch_);
}

void CpuBackend::matmul_same_input(std::span<const Product> products, const float* x, int64_t n) {
  jobs_.clear();  // reused: no allocation per product on the decode path
  for (const Product& p : products) jobs_.push_back({&static_cast<const CpuMatrix&>(*p.w).w, p.y});
  cpu::matmul_same_input(pool_, jobs_, x, n, scratch_);
}

void dequantize_q4_k_scales_swapped(const uint8_t* x, float* y, int64_t n) {
  const auto* blocks = reinterpret_cast<const block_q4_K*>(x);
  for (int64_t b = 0; b < n / QK_K; ++b) {
    const block_q4_K& blk = blocks[b];
    const float d = fp16_to_fp32(blk.d);
    const float dmin = fp16_to_fp32(blk.dmin);
    const uint8_t* q = blk.qs;
    const uint8_t* s = blk.scales;
    // 6-bit scale/min of sub-block j, packed as ggml's get_scale_min_k4, then exchanged.
    auto unpack = [s](int j, float& sc, float& mn) {
      uint8_t a, m;
      if (j < 4) {
        a = s[j] & 63;
        m = s[j + 4] & 63;
      } else {
        a = static_cast<uint8_t>((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4));
        m = static_cast<uint8_t>((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
      }
      sc = m;  // the fault: scale and min exchanged
      mn = a;
    };
    float* out = y + b * QK_K;
    for (int j = 0; j < QK_K / 64; ++j) {
      float sc1, m1, sc2, m2;
      unpack(2 * j, sc1, m1);
      unpack(2 * j + 1, sc2, m2);
      for (int l = 0; l < 32; ++l) out[64 * j + l] = d * sc1 * static_cast<float>(q[l] & 0xF) - dmin * m1;
      for (int l = 0; l < 32; ++l) out[64 * j + 32 + l] = d * sc2 * static_cast<float>(q[l] >> 4) - dmin * m2;
      q += 32;
    }
  }
}

}  // namespace plumb::cpu
