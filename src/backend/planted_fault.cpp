#include "backend/planted_fault.h"

#include <cstring>
#include <list>
#include <utility>

#include "quant/blocks.h"
#include "quant/ref.h"
#include "quant/ref_kquants_detail.h"

namespace plumb {

const char* fault_name(PlantedFault fault) {
  switch (fault) {
    case PlantedFault::None: return "none";
    case PlantedFault::RopeNeoxPairs: return "rope-neox-pairs";
    case PlantedFault::Q4KScalesSwapped: return "q4k-scales-swapped";
    case PlantedFault::SoftmaxNoScale: return "softmax-no-scale";
    case PlantedFault::SkipResidual: return "skip-residual";
    case PlantedFault::GqaOffByOne: return "gqa-off-by-one";
  }
  return "?";
}

Result<PlantedFault> parse_fault(const std::string& name) {
  for (PlantedFault f : {PlantedFault::None, PlantedFault::RopeNeoxPairs, PlantedFault::Q4KScalesSwapped,
                         PlantedFault::SoftmaxNoScale, PlantedFault::SkipResidual, PlantedFault::GqaOffByOne}) {
    if (name == fault_name(f)) return f;
  }
  return Status::error("unknown fault '" + name +
                       "' (choices: rope-neox-pairs, q4k-scales-swapped, softmax-no-scale, skip-residual, "
                       "gqa-off-by-one)");
}

void dequantize_q4_k_scales_swapped(const uint8_t* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / QK_K; ++b) {
    block_q4_K blk;
    std::memcpy(&blk, x + static_cast<size_t>(b) * sizeof(block_q4_K), sizeof blk);
    uint8_t swapped[K_SCALE_SIZE] = {};
    for (int j = 0; j < QK_K / 32; ++j) {
      uint8_t sc, mn;
      kquant_detail::get_scale_min_k4(j, blk.scales, &sc, &mn);
      kquant_detail::set_scale_min_k4(j, mn, sc, swapped);
    }
    std::memcpy(blk.scales, swapped, sizeof swapped);
    dequantize_row(TensorType::Q4_K, &blk, y + b * QK_K, QK_K);
  }
}

namespace {

// Every op goes to `inner_` except the one the fault is in, which is done here on host copies.
class FaultyBackend : public Backend {
 public:
  FaultyBackend(std::unique_ptr<Backend> inner, const FaultSpec& spec) : inner_(std::move(inner)), spec_(spec) {}

  std::string name() const override { return inner_->name(); }
  DeviceMemory device_memory() const override { return inner_->device_memory(); }
  Result<float*> alloc(int64_t n) override { return inner_->alloc(n); }
  void release(float* buf) override { inner_->release(buf); }
  const float* host_view(const float* buf, int64_t n, std::vector<float>& scratch) override {
    return inner_->host_view(buf, n, scratch);
  }
  void upload(const float* host, int64_t n, float* buf) override { inner_->upload(host, n, buf); }

  // Q4_K: every Q4_K matrix but the embedding table (the fault is in the products) is bound as
  // the F32 rows of the faulty dequantization.
  Result<std::unique_ptr<BoundMatrix>> bind_matrix(const gguf::TensorInfo& t) override {
    if (spec_.fault != PlantedFault::Q4KScalesSwapped || t.type != TensorType::Q4_K || t.name == "token_embd.weight") {
      return inner_->bind_matrix(t);
    }
    std::vector<float>& rows = owned_.emplace_back(static_cast<size_t>(t.n_elements()));
    const size_t row_bytes = t.nbytes / static_cast<size_t>(t.n_rows());
    for (int64_t r = 0; r < t.n_rows(); ++r) {
      dequantize_q4_k_scales_swapped(t.data + static_cast<size_t>(r) * row_bytes, rows.data() + r * t.ne[0], t.ne[0]);
    }
    gguf::TensorInfo f32 = t;
    f32.type = TensorType::F32;
    f32.data = reinterpret_cast<const uint8_t*>(rows.data());
    f32.nbytes = rows.size() * sizeof(float);
    return inner_->bind_matrix(f32);
  }
  Result<const float*> bind_vector(const gguf::TensorInfo& t) override { return inner_->bind_vector(t); }
  Status bind_rope(const RopeTable& table) override {
    rope_ = table;
    return inner_->bind_rope(table);
  }
  Result<std::unique_ptr<KvCache>> make_kv_cache(int64_t n_layer, int64_t n_ctx, int64_t k_width, int64_t v_width,
                                                 CacheType type) override {
    k_width_ = k_width;
    v_width_ = v_width;
    return inner_->make_kv_cache(n_layer, n_ctx, k_width, v_width, type);
  }

  using Backend::set_batch;
  void set_batch(const int32_t* ids, int64_t n, std::span<const SeqRun> runs) override {
    runs_.assign(runs.begin(), runs.end());
    pos_.resize(static_cast<size_t>(n));
    for (const SeqRun& r : runs_) {
      for (int64_t i = 0; i < r.n; ++i) pos_[static_cast<size_t>(r.begin + i)] = r.pos0 + i;
    }
    inner_->set_batch(ids, n, runs);
  }
  void get_rows(const BoundMatrix& table, int64_t n, float* out) override { inner_->get_rows(table, n, out); }
  void rms_norm(const float* x, const float* w, float eps, int64_t width, int64_t n, float* y) override {
    inner_->rms_norm(x, w, eps, width, n, y);
  }
  void matmul(const BoundMatrix& w, const float* x, int64_t n, int64_t n_lane, float* y) override {
    inner_->matmul(w, x, n, n_lane, y);
  }
  void matmul_same_input(std::span<const Product> products, const float* x, int64_t n, int64_t n_lane) override {
    inner_->matmul_same_input(products, x, n, n_lane);
  }

  // RopeNeoxPairs: pairs (i, i + n_rot/2) rotated on the host.
  void rope(float* x, int64_t n, int64_t n_heads, int64_t head_dim) override {
    if (spec_.fault != PlantedFault::RopeNeoxPairs) return inner_->rope(x, n, n_heads, head_dim);
    const int64_t count = n * n_heads * head_dim;
    const float* src = inner_->host_view(x, count, scratch_);
    std::vector<float> h(src, src + count);
    const int64_t half = rope_.n_rot / 2;
    for (int64_t t = 0; t < n; ++t) {
      const float* cs = rope_.cos.data() + pos_[static_cast<size_t>(t)] * half;
      const float* sn = rope_.sin.data() + pos_[static_cast<size_t>(t)] * half;
      for (int64_t hd = 0; hd < n_heads; ++hd) {
        float* v = h.data() + (t * n_heads + hd) * head_dim;
        for (int64_t i = 0; i < half; ++i) {
          const float x0 = v[i];
          const float x1 = v[i + half];
          v[i] = x0 * cs[i] - x1 * sn[i];
          v[i + half] = x0 * sn[i] + x1 * cs[i];
        }
      }
    }
    inner_->upload(h.data(), count, x);
  }

  // GqaOffByOne: cache head j holds KV head (j + 1) mod n_head_kv, so query head h, which reads
  // cache head h / group, gets KV head (h / group + 1) mod n_head_kv.
  // (Rows 0 .. the run's last are rotated, so the run's rows keep their offsets.)
  void kv_store(KvCache& cache, int64_t layer, int64_t run, const float* k, const float* v) override {
    if (spec_.fault != PlantedFault::GqaOffByOne) return inner_->kv_store(cache, layer, run, k, v);
    const SeqRun& r = runs_[static_cast<size_t>(run)];
    float* k_rot = rotated_heads(k, r.begin + r.n, k_width_, k_buf_);
    float* v_rot = rotated_heads(v, r.begin + r.n, v_width_, v_buf_);
    inner_->kv_store(cache, layer, run, k_rot, v_rot);
  }

  void attention(const KvCache& cache, int64_t layer, int64_t run, const float* q, const AttentionShape& shape,
                 float* out) override {
    AttentionShape s = shape;
    if (spec_.fault == PlantedFault::SoftmaxNoScale) s.scale = 1.0f;
    inner_->attention(cache, layer, run, q, s, out);
    attention_layer_ = layer;
    residual_pending_ = true;
  }
  void swiglu(const float* gate, const float* up, int64_t n, float* out) override { inner_->swiglu(gate, up, n, out); }

  // SkipResidual: the first add after layer L's attention (its residual) keeps only the output.
  void add(const float* a, const float* b, int64_t n, float* out) override {
    const bool skip = spec_.fault == PlantedFault::SkipResidual && residual_pending_ && attention_layer_ == spec_.layer;
    residual_pending_ = false;
    if (skip) return inner_->copy(b, n, out);
    inner_->add(a, b, n, out);
  }
  void copy(const float* src, int64_t n, float* dst) override { inner_->copy(src, n, dst); }

  Status take_error() override { return inner_->take_error(); }

 private:
  // x [n][width] with its heads (width / n_head_kv values each) moved down by one, in a buffer
  // of the inner backend.
  float* rotated_heads(const float* x, int64_t n, int64_t width, std::pair<float*, int64_t>& buf) {
    const float* h = inner_->host_view(x, n * width, scratch_);
    const int64_t hd = width / spec_.n_head_kv;
    std::vector<float> r(static_cast<size_t>(n * width));
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t j = 0; j < spec_.n_head_kv; ++j) {
        const int64_t src = (j + 1) % spec_.n_head_kv;
        std::memcpy(r.data() + t * width + j * hd, h + t * width + src * hd, static_cast<size_t>(hd) * sizeof(float));
      }
    }
    if (buf.second < n * width) {
      if (buf.first != nullptr) inner_->release(buf.first);
      auto p = inner_->alloc(n * width);
      buf = {p.ok() ? *p : nullptr, p.ok() ? n * width : 0};
      if (buf.first == nullptr) return const_cast<float*>(x);  // the inner backend reports the failure
    }
    inner_->upload(r.data(), n * width, buf.first);
    return buf.first;
  }

  std::unique_ptr<Backend> inner_;
  FaultSpec spec_;
  RopeTable rope_;
  std::vector<SeqRun> runs_;  // the batch's sequences (set_batch)
  std::vector<int64_t> pos_;  // and each token's position
  int64_t k_width_ = 0, v_width_ = 0;
  int64_t attention_layer_ = -1;
  bool residual_pending_ = false;
  std::list<std::vector<float>> owned_;  // faulty F32 copies of Q4_K matrices
  std::vector<float> scratch_;
  std::pair<float*, int64_t> k_buf_{nullptr, 0}, v_buf_{nullptr, 0};
};

}  // namespace

std::unique_ptr<Backend> with_planted_fault(std::unique_ptr<Backend> inner, const FaultSpec& spec) {
  if (spec.fault == PlantedFault::None) return inner;
  return std::make_unique<FaultyBackend>(std::move(inner), spec);
}

}  // namespace plumb
