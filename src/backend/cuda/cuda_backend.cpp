// The CUDA backend: weights uploaded once at bind time, activations and the KV cache in device
// memory, every op a kernel of kernels.h on one stream, no host synchronization between ops
// (only host_view waits), prompt products of the types summed_covers names through the int8
// tensor-core kernel of contract S (any token count), other products of more than
// kMaxMatvecTokens tokens through cuBLAS SGEMM (pedantic math: no TF32) over rows dequantized
// into a scratch buffer, and a generation step recorded once as a CUDA graph and replayed
// (run_step).
#include "backend/cuda/cuda_backend.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>

#include "backend/cuda/kernels.h"
#include "quant/ref.h"
#include "quant/types.h"

namespace plumb::cuda {

namespace {

constexpr double kMiB = 1024.0 * 1024.0;
// Rows dequantized at a time for the cuBLAS path: 64 MiB of F32.
constexpr int64_t kScratchFloats = 16 << 20;

class CudaMatrix : public BoundMatrix {
 public:
  TensorType type = TensorType::F32;
  size_t row_bytes = 0;   // bytes of a row's blocks
  size_t row_stride = 0;  // row_bytes rounded up to 16: every row starts 16-byte aligned
  void* data = nullptr;   // device copy of the tensor, rows row_stride apart
};

class CudaKvCache : public KvCache {
 public:
  bool f16 = true;
  int64_t n_ctx = 0, k_width = 0, v_width = 0;
  size_t elem = 2;
  void* k = nullptr;  // [n_layer][n_ctx][k_width]
  void* v = nullptr;  // [n_layer][n_ctx][v_width]
  void* k_layer(int64_t l) const { return static_cast<char*>(k) + static_cast<size_t>(l * n_ctx * k_width) * elem; }
  void* v_layer(int64_t l) const { return static_cast<char*>(v) + static_cast<size_t>(l * n_ctx * v_width) * elem; }
};

std::string supported_types() {
  std::string s;
  for (TensorType t : {TensorType::F32, TensorType::F16, TensorType::BF16, TensorType::Q4_0, TensorType::Q4_1,
                       TensorType::Q5_0, TensorType::Q5_1, TensorType::Q8_0, TensorType::Q2_K, TensorType::Q3_K,
                       TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K, TensorType::IQ4_NL, TensorType::IQ4_XS}) {
    s += (s.empty() ? "" : ", ") + std::string(type_name(t));
  }
  return s;
}

class CudaBackend : public Backend {
 public:
  CudaBackend() = default;
  ~CudaBackend() override {
    cudaStreamSynchronize(stream_);
    for (auto& [key, exec] : graphs_) cudaGraphExecDestroy(exec);
    for (auto& [p, held] : device_) cudaFree(p);
    if (staging_ != nullptr) cudaFreeHost(staging_);
    if (batch_copied_ != nullptr) cudaEventDestroy(batch_copied_);
    if (cublas_ != nullptr) cublasDestroy(cublas_);
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }

  Status init() {
    int n = 0;
    if (cudaError_t e = cudaGetDeviceCount(&n); e != cudaSuccess || n == 0) {
      return Status::errorf("CUDA requested but no CUDA device is usable (%s): check the NVIDIA driver "
                            "(nvidia-smi), or run with --backend cpu",
                            e != cudaSuccess ? cudaGetErrorString(e) : "no device found");
    }
    PLUMB_RETURN_IF_ERROR(check(cudaSetDevice(0), "cudaSetDevice"));
    cudaDeviceProp prop{};
    PLUMB_RETURN_IF_ERROR(check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties"));
    device_name_ = prop.name;
    PLUMB_RETURN_IF_ERROR(check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate"));
    PLUMB_RETURN_IF_ERROR(check(cudaEventCreateWithFlags(&batch_copied_, cudaEventDisableTiming), "cudaEventCreate"));
    if (cublasCreate(&cublas_) != CUBLAS_STATUS_SUCCESS) return Status::error("cuBLAS could not be initialized");
    cublasSetStream(cublas_, stream_);
    cublasSetMathMode(cublas_, CUBLAS_PEDANTIC_MATH);
    graphs_enabled_ = switched_on("PLUMB_CUDA_GRAPHS");
    return Status();
  }

  std::string name() const override { return "cuda"; }
  DeviceMemory device_memory() const override { return memory_; }

  Result<float*> alloc(int64_t n) override {
    flush_norm();
    PLUMB_ASSIGN_OR_RETURN(void* p, device_alloc(static_cast<size_t>(n) * sizeof(float), "an activation buffer"));
    PLUMB_RETURN_IF_ERROR(check(cudaMemsetAsync(p, 0, static_cast<size_t>(n) * sizeof(float), stream_), "cudaMemset"));
    return static_cast<float*>(p);
  }
  void release(float* buf) override {
    flush_norm();
    if (forget(buf)) {
      cudaStreamSynchronize(stream_);
      cudaFree(buf);
      graphs_invalid();  // a recorded step may use the buffer
    }
  }
  const float* host_view(const float* buf, int64_t n, std::vector<float>& scratch) override {
    flush_norm();
    scratch.resize(static_cast<size_t>(n));
    note(cudaMemcpyAsync(scratch.data(), buf, static_cast<size_t>(n) * sizeof(float), cudaMemcpyDeviceToHost, stream_),
         "copy to host");
    note(cudaStreamSynchronize(stream_), "the ops before a copy to host");
    return scratch.data();
  }
  void upload(const float* host, int64_t n, float* buf) override {
    flush_norm();
    note(cudaMemcpyAsync(buf, host, static_cast<size_t>(n) * sizeof(float), cudaMemcpyHostToDevice, stream_),
         "copy to device");
    note(cudaStreamSynchronize(stream_), "copy to device");
  }

  Result<std::unique_ptr<BoundMatrix>> bind_matrix(const gguf::TensorInfo& t) override {
    if (!has_matrix_kernel(t.type)) {
      return Status::errorf("%s: tensor type %s has no CUDA kernel (the CUDA backend reads %s); run with --backend cpu",
                            t.name.c_str(), type_name(t.type), supported_types().c_str());
    }
    auto m = std::make_unique<CudaMatrix>();
    m->n_in = t.ne[0];
    m->n_out = t.n_rows();
    m->type = t.type;
    m->row_bytes = row_size(t.type, m->n_in);
    if (m->n_in % 32 != 0) {
      return Status::errorf("%s: rows of %lld values: the CUDA kernels need a multiple of 32; run with --backend cpu",
                            t.name.c_str(), static_cast<long long>(m->n_in));
    }
    if (m->row_bytes * static_cast<size_t>(m->n_out) != t.nbytes) {
      return Status::errorf("%s: %llu bytes for %s %s, expected %zu", t.name.c_str(), (unsigned long long)t.nbytes,
                            type_name(t.type), t.shape_string().c_str(), m->row_bytes * static_cast<size_t>(m->n_out));
    }
    m->row_stride = (m->row_bytes + 15) / 16 * 16;
    if (!summed_covers(m->type)) ++uncovered_matrices_;
    PLUMB_ASSIGN_OR_RETURN(m->data, device_alloc(m->row_stride * static_cast<size_t>(m->n_out), t.name.c_str(),
                                                 DeviceMemory::kWeights));
    PLUMB_RETURN_IF_ERROR(check(cudaMemset(m->data, 0, m->row_stride * static_cast<size_t>(m->n_out)), "cudaMemset"));
    PLUMB_RETURN_IF_ERROR(check(cudaMemcpy2D(m->data, m->row_stride, t.data, m->row_bytes, m->row_bytes,
                                             static_cast<size_t>(m->n_out), cudaMemcpyHostToDevice),
                                "weight upload"));
    return std::unique_ptr<BoundMatrix>(std::move(m));
  }

  Result<const float*> bind_vector(const gguf::TensorInfo& t) override {
    if (t.type != TensorType::F32 && t.type != TensorType::F16 && t.type != TensorType::BF16) {
      return Status::errorf("%s: a norm vector of type %s (F32, F16 or BF16 expected)", t.name.c_str(),
                            type_name(t.type));
    }
    std::vector<float> host(static_cast<size_t>(t.n_elements()));
    dequantize_row(t.type, t.data, host.data(), t.n_elements());
    PLUMB_ASSIGN_OR_RETURN(void* d, device_alloc(host.size() * sizeof(float), t.name.c_str(), DeviceMemory::kWeights));
    PLUMB_RETURN_IF_ERROR(
        check(cudaMemcpy(d, host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice), "vector upload"));
    return static_cast<const float*>(d);
  }

  Status bind_rope(const RopeTable& table) override {
    const int64_t n = table.n_pos * (table.n_rot / 2);
    PLUMB_ASSIGN_OR_RETURN(rope_cos_, alloc(n));
    PLUMB_ASSIGN_OR_RETURN(rope_sin_, alloc(n));
    PLUMB_RETURN_IF_ERROR(check(cudaMemcpy(rope_cos_, table.cos.data(), static_cast<size_t>(n) * sizeof(float),
                                           cudaMemcpyHostToDevice), "RoPE table upload"));
    PLUMB_RETURN_IF_ERROR(check(cudaMemcpy(rope_sin_, table.sin.data(), static_cast<size_t>(n) * sizeof(float),
                                           cudaMemcpyHostToDevice), "RoPE table upload"));
    rope_n_rot_ = table.n_rot;
    return Status();
  }

  Result<std::unique_ptr<KvCache>> make_kv_cache(int64_t n_layer, int64_t n_ctx, int64_t k_width, int64_t v_width,
                                                 CacheType type) override {
    flush_norm();
    if (n_ctx > max_attention_context()) {
      return Status::errorf("context of %lld tokens: the CUDA attention kernel takes at most %lld (use a smaller -c)",
                            static_cast<long long>(n_ctx), static_cast<long long>(max_attention_context()));
    }
    PLUMB_RETURN_IF_ERROR(check(prepare_attention(), "attention setup"));
    auto c = std::make_unique<CudaKvCache>();
    c->f16 = type == CacheType::F16;
    c->elem = c->f16 ? sizeof(uint16_t) : sizeof(float);
    c->n_ctx = n_ctx;
    c->k_width = k_width;
    c->v_width = v_width;
    const size_t k_bytes = static_cast<size_t>(n_layer * n_ctx * k_width) * c->elem;
    const size_t v_bytes = static_cast<size_t>(n_layer * n_ctx * v_width) * c->elem;
    PLUMB_ASSIGN_OR_RETURN(c->k, device_alloc(k_bytes, "the KV cache (K)", DeviceMemory::kKvCache));
    PLUMB_ASSIGN_OR_RETURN(c->v, device_alloc(v_bytes, "the KV cache (V)", DeviceMemory::kKvCache));
    PLUMB_RETURN_IF_ERROR(check(cudaMemsetAsync(c->k, 0, k_bytes, stream_), "cudaMemset"));
    PLUMB_RETURN_IF_ERROR(check(cudaMemsetAsync(c->v, 0, v_bytes, stream_), "cudaMemset"));
    return std::unique_ptr<KvCache>(std::move(c));
  }

  // The device copy is [pos0 of run 0, id_0 .. id_{n-1}, pos0 of run 0 .. pos0 of run R-1]: the
  // kernels read ids at batch[1 + t] and a position at batch[0], so an op on run r passes
  // run_batch(r), whose first word is that run's position.
  using Backend::set_batch;
  void set_batch(const int32_t* ids, int64_t n, std::span<const SeqRun> runs) override {
    flush_norm();
    runs_.assign(runs.begin(), runs.end());
    batch_n_ = n;
    const int64_t words = n + 1 + static_cast<int64_t>(runs.size());
    if (words > batch_capacity_) {
      note(cudaStreamSynchronize(stream_), "batch setup");
      if (staging_ != nullptr) cudaFreeHost(staging_);
      if (batch_ != nullptr) release_raw(batch_);
      staging_ = nullptr;
      batch_ = nullptr;
      batch_capacity_ = 0;
      if (!note(cudaMallocHost(&staging_, static_cast<size_t>(words) * sizeof(int32_t)), "pinned batch buffer")) return;
      auto d = device_alloc(static_cast<size_t>(words) * sizeof(int32_t), "the batch inputs");
      if (!d.ok()) return (void)keep(d.status());
      batch_ = static_cast<int32_t*>(*d);
      batch_capacity_ = words;
      graphs_invalid();  // recorded steps read the old buffer
    }
    // The staging buffer may still be in flight from the last batch's copy.
    note(cudaEventSynchronize(batch_copied_), "batch setup");
    staging_[0] = runs.empty() ? 0 : static_cast<int32_t>(runs[0].pos0);
    std::memcpy(staging_ + 1, ids, static_cast<size_t>(n) * sizeof(int32_t));
    for (size_t r = 0; r < runs.size(); ++r) staging_[1 + n + static_cast<int64_t>(r)] = static_cast<int32_t>(runs[r].pos0);
    note(cudaMemcpyAsync(batch_, staging_, static_cast<size_t>(words) * sizeof(int32_t), cudaMemcpyHostToDevice,
                         stream_),
         "batch upload");
    note(cudaEventRecord(batch_copied_, stream_), "batch upload");
  }

  void get_rows(const BoundMatrix& table, int64_t n, float* out) override {
    flush_norm();
    const auto& m = static_cast<const CudaMatrix&>(table);
    note(cuda::get_rows(m.type, m.data, m.row_stride, m.n_in, batch_, n, out, stream_), "get_rows");
  }
  // A one-token norm waits for the op after it: a one-token product of its output normalizes its
  // input itself as it stages it (InputNorm), one launch fewer; any other op launches it first
  // (flush_norm). PLUMB_CUDA_NORM_FUSE=0: always its own launch, for measuring.
  void rms_norm(const float* x, const float* w, float eps, int64_t width, int64_t n, float* y) override {
    flush_norm();
    static const bool fuse = switched_on("PLUMB_CUDA_NORM_FUSE");
    if (fuse && n == 1 && x != y) {
      pending_norm_ = InputNorm{x, w, eps, y};
      pending_width_ = width;
      return;
    }
    note(cuda::rms_norm(x, w, eps, width, n, y, stream_), "rms_norm");
  }
  void matmul(const BoundMatrix& w, const float* x, int64_t n, int64_t n_lane, float* y) override {
    const auto& m = static_cast<const CudaMatrix&>(w);
    if (const MatvecParts parts = add_part(m, y, nullptr, 0); n == 1 && n_lane == 1 && normalizes(x, m, parts)) {
      return (void)note(matvec_one(m.type, parts, m.row_stride, m.n_in, x, take_norm(), stream_), "matvec");
    }
    const Product p{&w, y};
    matmul_same_input(std::span<const Product>(&p, 1), x, n, n_lane);
  }
  // Per token when every product of the model follows contract S under the prompt contract
  // (every bound matrix of a type summed_covers names: Q4_K_M files, Q4_0, Q8_0), not when one
  // goes through cuBLAS, whose rounding may follow the call's shape (a tensor of another type, or
  // a float one: F16 output or embeddings, counted even when only get_rows reads them).
  bool prompt_contract_per_token() const override { return uncovered_matrices_ == 0; }
  // The generation contract is matvec's, whose tokens do not interact: tokens [0, n_lane) go
  // through it kMaxMatvecTokens at a time. The prompt tokens [n_lane, n): for the covered types
  // one call of the contract-S kernel, whose tokens do not interact either; for the others
  // matvec when they are few, else cuBLAS, whose rounding may depend on the call's shape: so
  // when x holds the batch's rows, each run's prompt tokens are a call of their own, whose tokens
  // and count are its sequence's alone (cuBLAS gives the same bits for the same call; the other
  // inputs, logits rows, are one call: docs/EXACTNESS.md, "Batch invariance").
  void matmul_same_input(std::span<const Product> products, const float* x, int64_t n, int64_t n_lane) override {
    flush_norm();
    n_lane = std::clamp<int64_t>(n_lane, 0, n);
    for (int64_t t0 = 0; t0 < n_lane; t0 += kMaxMatvecTokens) {
      products_at(products, x, t0, std::min<int64_t>(kMaxMatvecTokens, n_lane - t0));
    }
    if (n_lane == n) return;
    summed_products(products, x, n_lane, n - n_lane);
    rest_.clear();
    for (const Product& p : products) {
      if (!summed_covers(static_cast<const CudaMatrix&>(*p.w).type)) rest_.push_back(p);
    }
    if (rest_.empty()) return;
    const std::span<const Product> rest(rest_);
    if (n != batch_n_) return products_at(rest, x, n_lane, n - n_lane);
    for (const SeqRun& r : runs_) {
      const int64_t begin = std::max(r.begin, n_lane), end = r.begin + r.n;
      if (begin < end) products_at(rest, x, begin, end - begin);
    }
  }
  // The residual add in the product's epilogue: the contract-S kernel's for the prompt tokens of
  // a covered type (the generation tokens in the matvec's, kMaxMatvecTokens at a time); for the
  // other types, a few tokens in one matvec launch (its tokens do not interact, so the split by
  // role changes nothing), more as matmul then add.
  void matmul_add(const BoundMatrix& w, const float* x, int64_t n, int64_t n_lane, float* y, float* acc) override {
    flush_norm();
    const auto& m = static_cast<const CudaMatrix&>(w);
    n_lane = std::clamp<int64_t>(n_lane, 0, n);
    if (summed_covers(m.type) && n_lane < n) {
      for (int64_t t0 = 0; t0 < n_lane; t0 += kMaxMatvecTokens) {
        const int64_t k = std::min<int64_t>(kMaxMatvecTokens, n_lane - t0);
        note(matvec(m.type, add_part(m, y, acc, t0), m.row_stride, m.n_in, x + t0 * m.n_in, static_cast<int>(k), stream_),
             "matvec");
      }
      if (!prepare_summed(x + n_lane * m.n_in, n - n_lane, m.n_in)) return;
      note(summed_matmul(m.type, add_part(m, y, acc, n_lane), m.row_stride, m.n_in, summed_act_, n - n_lane, stream_),
           "summed_matmul");
      return;
    }
    if (n > kMaxMatvecTokens) return Backend::matmul_add(w, x, n, n_lane, y, acc);
    note(matvec(m.type, add_part(m, y, acc, 0), m.row_stride, m.n_in, x, static_cast<int>(n), stream_), "matvec");
  }
  // One matrix as the parts of a launch whose outputs y and residual acc start at token t0.
  static MatvecParts add_part(const CudaMatrix& m, float* y, float* acc, int64_t t0) {
    MatvecParts parts;
    parts.count = 1;
    parts.w[0] = m.data;
    parts.n_out[0] = m.n_out;
    parts.y[0] = y + t0 * m.n_out;
    parts.acc[0] = acc != nullptr ? acc + t0 * m.n_out : nullptr;
    return parts;
  }
  // One launch a run: its rows of q and k rotated, its k and v stored in its sequence's cache.
  void rope_store(std::span<KvCache* const> caches, int64_t layer, int64_t n, float* q, float* k, const float* v,
                  const AttentionShape& s) override {
    flush_norm();
    for (size_t r = 0; r < runs_.size() && r < caches.size(); ++r) {
      const auto& c = static_cast<const CudaKvCache&>(*caches[r]);
      const SeqRun& run = runs_[r];
      RopeStoreArgs a;
      a.q = q + run.begin * s.n_head * s.head_dim_k;
      a.k = k + run.begin * c.k_width;
      a.v = v + run.begin * c.v_width;
      a.n_head = s.n_head, a.n_head_kv = s.n_head_kv, a.head_dim = s.head_dim_k, a.v_width = c.v_width;
      a.cos = rope_cos_, a.sin = rope_sin_, a.n_rot = rope_n_rot_;
      a.f16 = c.f16, a.k_cache = c.k_layer(layer), a.v_cache = c.v_layer(layer);
      note(cuda::rope_store(a, run.n, run_batch(static_cast<int64_t>(r)), stream_), "rope_store");
    }
  }
  // One token of one sequence, q, k and v in the register matvec (q and k of one type, v of it or,
  // beside Q4_K, Q6_K): one launch whose warps rotate and store the pairs of rows they compute
  // (PLUMB_CUDA_ROPE_FUSE=0: two launches, for measuring).
  void matmul_rope_store(std::span<const Product> qkv, const float* x, int64_t n, int64_t n_lane,
                         std::span<KvCache* const> caches, int64_t layer, const AttentionShape& s) override {
    static const bool fuse = switched_on("PLUMB_CUDA_ROPE_FUSE");
    MatvecParts parts;
    const auto& m = static_cast<const CudaMatrix&>(*qkv[0].w);
    const CudaMatrix* v = qkv.size() == 3 ? &static_cast<const CudaMatrix&>(*qkv[2].w) : nullptr;
    const bool one = fuse && v != nullptr && n == 1 && n_lane == 1 && runs_.size() == 1 && caches.size() == 1 &&
                     runs_[0].n == 1 && gather_qkv(qkv, &parts) && matvec_one_covers(m.type, m.n_in) &&
                     matvec_one_covers(v->type, v->n_in) && matvec_rope_store_covers(parts, s.head_dim_k, m.type, v->type);
    if (!one) return Backend::matmul_rope_store(qkv, x, n, n_lane, caches, layer, s);
    const InputNorm norm = normalizes(x, m, parts) ? take_norm() : InputNorm{};
    flush_norm();
    const auto& c = static_cast<const CudaKvCache&>(*caches[0]);
    RopeStoreArgs a;
    a.n_head = s.n_head, a.n_head_kv = s.n_head_kv, a.head_dim = s.head_dim_k, a.v_width = c.v_width;
    a.cos = rope_cos_, a.sin = rope_sin_, a.n_rot = rope_n_rot_;
    a.f16 = c.f16, a.k_cache = c.k_layer(layer), a.v_cache = c.v_layer(layer);
    note(cuda::matvec_rope_store(m.type, v->type, parts, m.row_stride, v->row_stride, m.n_in, x, norm, a, run_batch(0),
                                 stream_),
         "matvec_rope_store");
  }
  // One token of one sequence, gate and up of one type in the register matvec, out = gate's y:
  // one launch whose warps each take a gate row and its up row (PLUMB_CUDA_SWIGLU_FUSE=0: two
  // launches, for measuring).
  void matmul_swiglu(std::span<const Product> gate_up, const float* x, int64_t n, int64_t n_lane, float* out) override {
    static const bool fuse = switched_on("PLUMB_CUDA_SWIGLU_FUSE");
    MatvecParts parts;
    const auto& m = static_cast<const CudaMatrix&>(*gate_up[0].w);
    const bool one = fuse && gate_up.size() == 2 && n == 1 && n_lane == 1 && out == gate_up[0].y &&
                     gather_parts(gate_up, 0, 0, &parts) == 2 && matvec_one_covers(m.type, m.n_in) &&
                     matvec_swiglu_covers(parts);
    if (!one) return Backend::matmul_swiglu(gate_up, x, n, n_lane, out);
    const InputNorm norm = normalizes(x, m, parts) ? take_norm() : InputNorm{};
    flush_norm();
    note(cuda::matvec_swiglu(m.type, parts, m.row_stride, m.n_in, x, norm, stream_), "matvec_swiglu");
  }
  void rope(float* x, int64_t n, int64_t n_heads, int64_t head_dim) override {
    flush_norm();
    for (size_t r = 0; r < runs_.size(); ++r) {
      note(cuda::rope(x + runs_[r].begin * n_heads * head_dim, runs_[r].n, n_heads, head_dim, rope_cos_, rope_sin_,
                      rope_n_rot_, run_batch(static_cast<int64_t>(r)), stream_),
           "rope");
    }
  }
  void kv_store(KvCache& cache, int64_t layer, int64_t run, const float* k, const float* v) override {
    flush_norm();
    const auto& c = static_cast<const CudaKvCache&>(cache);
    const SeqRun& r = runs_[static_cast<size_t>(run)];
    note(cuda::kv_store(c.f16, c.k_layer(layer), c.v_layer(layer), c.k_width, c.v_width, k + r.begin * c.k_width,
                        v + r.begin * c.v_width, r.n, run_batch(run), stream_),
         "kv_store");
  }
  void attention(const KvCache& cache, int64_t layer, int64_t run, const float* q, const AttentionShape& s,
                 float* out) override {
    flush_norm();
    const auto& c = static_cast<const CudaKvCache&>(cache);
    const SeqRun& r = runs_[static_cast<size_t>(run)];
    AttentionArgs a;
    a.f16 = c.f16;
    a.k_cache = c.k_layer(layer);
    a.v_cache = c.v_layer(layer);
    a.k_width = c.k_width;
    a.v_width = c.v_width;
    a.n_ctx = c.n_ctx;
    a.n_kv_max = recording_ ? c.n_ctx : r.pos0 + r.n;  // a recorded step is replayed at other positions
    a.n_head = s.n_head;
    a.n_head_kv = s.n_head_kv;
    a.head_dim_k = s.head_dim_k;
    a.head_dim_v = s.head_dim_v;
    a.scale = s.scale;
    attention_split(a, r.n);
    note(cuda::attention(a, q + r.begin * s.n_head * s.head_dim_k, r.n, run_batch(run),
                         out + r.begin * s.n_head * s.head_dim_v, stream_),
         "attention");
  }
  void swiglu(const float* gate, const float* up, int64_t n, float* out) override {
    flush_norm();
    note(cuda::swiglu(gate, up, n, out, stream_), "swiglu");
  }
  void add(const float* a, const float* b, int64_t n, float* out) override {
    flush_norm();
    note(cuda::add(a, b, n, out, stream_), "add");
  }
  void copy(const float* src, int64_t n, float* dst) override {
    flush_norm();
    note(cudaMemcpyAsync(dst, src, static_cast<size_t>(n) * sizeof(float), cudaMemcpyDeviceToDevice, stream_), "copy");
  }

  Status run_step(int64_t key, const std::function<void()>& ops) override {
    flush_norm();
    if (!graphs_enabled_) {
      ops();
      return take_error();
    }
    auto it = graphs_.find(key);
    if (it == graphs_.end()) {
      PLUMB_RETURN_IF_ERROR(take_error());
      PLUMB_RETURN_IF_ERROR(check(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), "graph capture"));
      recording_ = true;
      ops();
      flush_norm();  // into the record
      recording_ = false;
      cudaGraph_t graph = nullptr;
      const cudaError_t end = cudaStreamEndCapture(stream_, &graph);
      PLUMB_RETURN_IF_ERROR(take_error());
      PLUMB_RETURN_IF_ERROR(check(end, "graph capture"));
      cudaGraphExec_t exec = nullptr;
      const cudaError_t inst = cudaGraphInstantiate(&exec, graph, 0);
      cudaGraphDestroy(graph);
      PLUMB_RETURN_IF_ERROR(check(inst, "graph instantiation"));
      it = graphs_.emplace(key, exec).first;
    }
    note(cudaGraphLaunch(it->second, stream_), "graph launch");
    return take_error();
  }

  Status take_error() override {
    flush_norm();
    Status s = std::move(error_);
    error_ = Status();
    return s;
  }

 private:
  // Whether x is the output of the norm waiting (rms_norm) and m's one-token register kernel can
  // normalize its input: not where the launch writes over the norm's input, which its blocks read.
  bool normalizes(const float* x, const CudaMatrix& m, const MatvecParts& parts) const {
    if (pending_norm_.raw == nullptr || pending_norm_.y != x || pending_width_ != m.n_in ||
        !matvec_one_covers(m.type, m.n_in)) {
      return false;
    }
    const float* raw = pending_norm_.raw;
    for (int i = 0; i < parts.count; ++i) {
      if (parts.y[i] < raw + pending_width_ && raw < parts.y[i] + parts.n_out[i]) return false;
    }
    return true;
  }
  // The norm waiting, handed to the product that does it.
  InputNorm take_norm() {
    const InputNorm norm = pending_norm_;
    pending_norm_ = InputNorm{};
    return norm;
  }
  // Launches the norm waiting, if any.
  void flush_norm() {
    if (pending_norm_.raw == nullptr) return;
    const InputNorm p = take_norm();
    note(cuda::rms_norm(p.raw, p.w, p.eps, pending_width_, 1, p.y, stream_), "rms_norm");
  }

  // The batch word run r's ops read their position from (set_batch).
  const int32_t* run_batch(int64_t r) const { return batch_ + 1 + batch_n_ + r; }

  // AttentionArgs::split and split_done for a launch of n tokens (left null when it takes no block
  // per chunk). A call outside a record makes room for the recorded generation steps to come as
  // well (one token over the whole context), so that their scratch is allocated before them.
  void attention_split(AttentionArgs& a, int64_t n) {
    const size_t need = attention_split_bytes(a, n);
    size_t want = need;
    int64_t counters = attention_split_counters(a, n);
    if (!recording_) {
      AttentionArgs step = a;
      step.n_kv_max = a.n_ctx;
      want = std::max(want, attention_split_bytes(step, 1));
      counters = std::max(counters, attention_split_counters(step, 1));
    }
    if (want > split_bytes_ && !grow(&split_, &split_bytes_, want, "the scratch of attention's chunks")) return;
    const size_t counter_bytes = static_cast<size_t>(counters) * sizeof(unsigned);
    if (counter_bytes > split_done_bytes_ &&
        !grow(&split_done_, &split_done_bytes_, counter_bytes, "the counters of attention's chunks")) {
      return;
    }
    if (need == 0) return;
    a.split = split_;
    a.split_done = static_cast<unsigned*>(split_done_);
  }
  // Grows a buffer of the attention's chunks to `bytes`, zeroed. While a step is being recorded
  // the new one is allocated beside the record (relaxed capture mode: a cudaMalloc is no stream
  // operation), its zeroing is recorded with the step, and the old one stays until the backend
  // goes (a step recorded before may read it); otherwise the old one goes, and the recorded steps
  // with it.
  bool grow(void** buf, size_t* size, size_t bytes, const char* what) {
    cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
    if (recording_) cudaThreadExchangeStreamCaptureMode(&mode);
    auto d = device_alloc(bytes, what);
    if (recording_) cudaThreadExchangeStreamCaptureMode(&mode);
    if (!d.ok()) return keep(d.status());
    if (*buf != nullptr && !recording_) {
      note(cudaStreamSynchronize(stream_), "the attention before a larger buffer");
      release_raw(*buf);
      graphs_invalid();
    }
    *buf = *d;
    *size = bytes;
    return note(cudaMemsetAsync(*buf, 0, bytes, stream_), what);
  }

  // Prepares x [n][n_in] for the contract-S kernel into summed_act_ (grown as needed); false
  // when that failed (the error is kept).
  bool prepare_summed(const float* x, int64_t n, int64_t n_in) {
    const size_t bytes = summed_act_bytes(n_in, n);
    if (bytes > summed_act_bytes_) {
      note(cudaStreamSynchronize(stream_), "the products before a larger activation buffer");
      if (summed_act_ != nullptr) release_raw(summed_act_);
      summed_act_ = nullptr;
      summed_act_bytes_ = 0;
      const size_t want = (bytes + (size_t{1} << 20) - 1) / (size_t{1} << 20) * (size_t{1} << 20);
      auto d = device_alloc(want, "the prepared activations of a prompt product");
      if (!d.ok()) return keep(d.status());
      summed_act_ = *d;
      summed_act_bytes_ = want;
      graphs_invalid();  // in case a recorded step used the old buffer
    }
    return note(summed_prepare(x, n, n_in, summed_act_, stream_), "summed_prepare");
  }

  // Tokens [t0, t0 + n) of x through the products of covered types (the others are left out):
  // x prepared once, then one launch for each run of up to three consecutive products of one
  // type.
  void summed_products(std::span<const Product> products, const float* x, int64_t t0, int64_t n) {
    bool prepared = false;
    for (size_t i = 0; i < products.size();) {
      const auto& first = static_cast<const CudaMatrix&>(*products[i].w);
      if (!summed_covers(first.type)) {
        ++i;
        continue;
      }
      if (!prepared) {
        if (!prepare_summed(x + t0 * first.n_in, n, first.n_in)) return;
        prepared = true;
      }
      MatvecParts parts;
      i = gather_parts(products, i, t0, &parts);
      note(summed_matmul(first.type, parts, first.row_stride, first.n_in, summed_act_, n, stream_), "summed_matmul");
    }
  }

  // The products from i on that share products[i]'s type and width, three at most, into parts
  // (their outputs from token t0); returns the index after them.
  static size_t gather_parts(std::span<const Product> products, size_t i, int64_t t0, MatvecParts* parts) {
    const auto& first = static_cast<const CudaMatrix&>(*products[i].w);
    for (; i < products.size() && parts->count < 3; ++i) {
      const auto& m = static_cast<const CudaMatrix&>(*products[i].w);
      if (m.type != first.type || m.n_in != first.n_in) break;
      append_part(products[i], t0, parts);
    }
    return i;
  }
  // Product p as the next part, its output from token t0.
  static void append_part(const Product& p, int64_t t0, MatvecParts* parts) {
    const auto& m = static_cast<const CudaMatrix&>(*p.w);
    parts->w[parts->count] = m.data;
    parts->n_out[parts->count] = m.n_out;
    parts->y[parts->count] = p.y + t0 * m.n_out;
    ++parts->count;
  }

  // q, k and v of one token as the parts of one launch: q and k of one type and width (gather_parts),
  // v of the same width, of their type or another; false where q and k differ.
  static bool gather_qkv(std::span<const Product> qkv, MatvecParts* parts) {
    const size_t after = gather_parts(qkv, 0, 0, parts);
    if (after == 3) return true;
    const auto& v = static_cast<const CudaMatrix&>(*qkv[2].w);
    if (after != 2 || v.n_in != static_cast<const CudaMatrix&>(*qkv[0].w).n_in) return false;
    append_part(qkv[2], 0, parts);
    return true;
  }

  // Tokens [t0, t0 + n) of x through every product: one matvec launch for each run of
  // consecutive products of one type and width when n is small, else cuBLAS per product.
  void products_at(std::span<const Product> products, const float* x, int64_t t0, int64_t n) {
    for (size_t i = 0; i < products.size();) {
      const auto& first = static_cast<const CudaMatrix&>(*products[i].w);
      const float* xt = x + t0 * first.n_in;
      if (n > kMaxMatvecTokens) {
        gemm(first, xt, n, products[i].y + t0 * first.n_out);
        ++i;
        continue;
      }
      MatvecParts parts;
      i = gather_parts(products, i, t0, &parts);
      note(matvec(first.type, parts, first.row_stride, first.n_in, xt, static_cast<int>(n), stream_), "matvec");
    }
  }

  // scratch_ (kScratchFloats), allocated on first use; false (the error kept) when it cannot be.
  bool have_scratch() {
    if (scratch_ != nullptr) return true;
    auto s = alloc(kScratchFloats);
    if (!s.ok()) return keep(s.status());
    scratch_ = *s;
    return true;
  }

  // The cuBLAS path: rows dequantized in chunks into scratch_, y^T = W x^T per chunk; F16
  // weights as they are, against the activations' exact f16 planes (gemm_f16).
  void gemm(const CudaMatrix& m, const float* x, int64_t n, float* y) {
    static const bool f16_planes = switched_on("PLUMB_CUDA_F16_PLANES");
    if (m.type == TensorType::F16 && f16_planes) return gemm_f16(m, x, n, y);
    const int64_t chunk = m.type == TensorType::F32 ? m.n_out : std::max<int64_t>(1, kScratchFloats / m.n_in);
    const int64_t lda = m.type == TensorType::F32 ? static_cast<int64_t>(m.row_stride / sizeof(float)) : m.n_in;
    if (m.type != TensorType::F32 && !have_scratch()) return;
    const float alpha = 1.0f, beta = 0.0f;
    for (int64_t r0 = 0; r0 < m.n_out; r0 += chunk) {
      const int64_t rows = std::min(chunk, m.n_out - r0);
      const float* a = static_cast<const float*>(m.data) + r0 * lda;
      if (m.type != TensorType::F32) {
        if (!note(dequantize_rows(m.type, m.data, m.row_stride, m.n_in, r0, rows, scratch_, stream_), "dequantize"))
          return;
        a = scratch_;
      }
      // Column-major view: A = rows of W (n_in x rows, lda), B = x (n_in x n), C = y
      // (n_out x n, ldc n_out) offset by r0: C = A^T B.
      const cublasStatus_t st =
          cublasSgemm(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(rows), static_cast<int>(n),
                      static_cast<int>(m.n_in), &alpha, a, static_cast<int>(lda), x, static_cast<int>(m.n_in), &beta,
                      y + r0, static_cast<int>(m.n_out));
      if (st != CUBLAS_STATUS_SUCCESS) {
        return (void)keep(Status::errorf("cuBLAS SGEMM failed (status %d) for a %lld x %lld product of %lld tokens",
                                         static_cast<int>(st), static_cast<long long>(m.n_out),
                                         static_cast<long long>(m.n_in), static_cast<long long>(n)));
      }
    }
  }

  // F16 weights: per chunk of tokens, x scaled and split into three f16 planes in scratch_
  // (split_f16_planes: exact), y^T = W hi^T + W mid^T + W lo^T by three f16 GEMMs on the tensor
  // cores with f32 accumulation (each f16 product exact in f32), then the tokens' scales undone.
  // PLUMB_CUDA_F16_PLANES=0: dequantized rows and SGEMM, for measuring.
  void gemm_f16(const CudaMatrix& m, const float* x, int64_t n, float* y) {
    if (!have_scratch()) return;
    const int64_t per_token = 3 * m.n_in * 2 + static_cast<int64_t>(sizeof(float));  // planes and scale
    const int64_t chunk = std::min<int64_t>({n, kScratchFloats * 4 / per_token, 65535});
    const int64_t lda = static_cast<int64_t>(m.row_stride / 2);
    cublasSetMathMode(cublas_, CUBLAS_DEFAULT_MATH);  // tensor cores for f16 inputs (f32 stays SGEMM)
    for (int64_t t0 = 0; t0 < n; t0 += chunk) {
      const int64_t tc = std::min(chunk, n - t0);
      void* planes = scratch_;
      float* inv = reinterpret_cast<float*>(reinterpret_cast<uint8_t*>(scratch_) + 3 * tc * m.n_in * 2);
      if (!note(split_f16_planes(x + t0 * m.n_in, tc, m.n_in, planes, inv, stream_), "split_f16_planes")) break;
      for (int p = 0; p < 3; ++p) {
        const float alpha = 1.0f, beta = p == 0 ? 0.0f : 1.0f;
        const void* b = reinterpret_cast<const uint8_t*>(planes) + p * tc * m.n_in * 2;
        const cublasStatus_t st = cublasGemmEx(
            cublas_, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(m.n_out), static_cast<int>(tc),
            static_cast<int>(m.n_in), &alpha, m.data, CUDA_R_16F, static_cast<int>(lda), b, CUDA_R_16F,
            static_cast<int>(m.n_in), &beta, y + t0 * m.n_out, CUDA_R_32F, static_cast<int>(m.n_out),
            CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
        if (st != CUBLAS_STATUS_SUCCESS) {
          cublasSetMathMode(cublas_, CUBLAS_PEDANTIC_MATH);
          return (void)keep(Status::errorf("cuBLAS f16 GEMM failed (status %d) for a %lld x %lld product of %lld tokens",
                                           static_cast<int>(st), static_cast<long long>(m.n_out),
                                           static_cast<long long>(m.n_in), static_cast<long long>(tc)));
        }
      }
      if (!note(scale_tokens(y + t0 * m.n_out, tc, m.n_out, inv, stream_), "scale_tokens")) break;
    }
    cublasSetMathMode(cublas_, CUBLAS_PEDANTIC_MATH);
  }

  Result<void*> device_alloc(size_t bytes, const char* what, int kind = DeviceMemory::kOther) {
    void* p = nullptr;
    const cudaError_t e = cudaMalloc(&p, std::max<size_t>(bytes, 1));
    if (e != cudaSuccess) {
      cudaGetLastError();  // clear it
      size_t free_b = 0, total_b = 0;
      cudaMemGetInfo(&free_b, &total_b);
      return Status::errorf("CUDA out of memory allocating %s (%.1f MiB): %.1f MiB free of %.1f MiB on %s; the "
                            "model and KV cache do not fit: use a smaller -c, or --backend cpu",
                            what, static_cast<double>(bytes) / kMiB, static_cast<double>(free_b) / kMiB,
                            static_cast<double>(total_b) / kMiB, device_name_.c_str());
    }
    device_.emplace(p, std::pair<size_t, int>(bytes, kind));
    memory_.held[kind] += static_cast<int64_t>(bytes);
    int64_t total = 0;
    for (int64_t h : memory_.held) total += h;
    memory_.peak = std::max(memory_.peak, total);
    return p;
  }
  void release_raw(void* p) {
    if (forget(p)) cudaFree(p);
  }
  // Whether p was this backend's; it no longer counts as held.
  bool forget(void* p) {
    const auto it = device_.find(p);
    if (it == device_.end()) return false;
    memory_.held[it->second.second] -= static_cast<int64_t>(it->second.first);
    device_.erase(it);
    return true;
  }
  void graphs_invalid() {
    for (auto& [key, exec] : graphs_) cudaGraphExecDestroy(exec);
    graphs_.clear();
  }

  Status check(cudaError_t e, const char* what) {
    if (e == cudaSuccess) return Status();
    return Status::errorf("CUDA error in %s: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
  }
  // Keeps the first error for take_error(); returns whether e was a success.
  bool note(cudaError_t e, const char* what) {
    if (e == cudaSuccess) return true;
    keep(check(e, what));
    return false;
  }
  bool keep(Status s) {
    if (!s.ok() && error_.ok()) error_ = std::move(s);
    return false;
  }

  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  std::string device_name_;
  Status error_;
  std::map<void*, std::pair<size_t, int>> device_;  // every cudaMalloc of this backend (bytes, kind), freed with it
  DeviceMemory memory_;
  float* scratch_ = nullptr;
  void* summed_act_ = nullptr;  // prepared activations of the contract-S products
  size_t summed_act_bytes_ = 0;
  void* split_ = nullptr;  // attention's chunks, a block each (AttentionArgs::split, split_done)
  size_t split_bytes_ = 0;
  void* split_done_ = nullptr;
  size_t split_done_bytes_ = 0;
  InputNorm pending_norm_;  // a one-token rms_norm not launched yet (raw set), and its width
  int64_t pending_width_ = 0;
  int64_t uncovered_matrices_ = 0;  // bound matrices of types the contract-S kernel does not read
  std::vector<Product> rest_;       // matmul_same_input's products of those types
  float* rope_cos_ = nullptr;
  float* rope_sin_ = nullptr;
  int64_t rope_n_rot_ = 0;
  int32_t* staging_ = nullptr;  // pinned: [pos0, ids..., each run's pos0] (set_batch)
  int32_t* batch_ = nullptr;    // its device copy, read by the kernels
  int64_t batch_capacity_ = 0;
  int64_t batch_n_ = 0;        // tokens of the last set_batch
  std::vector<SeqRun> runs_;  // and its sequences
  cudaEvent_t batch_copied_ = nullptr;
  bool graphs_enabled_ = true;
  bool recording_ = false;  // ops are being recorded into a graph (run_step)
  std::map<int64_t, cudaGraphExec_t> graphs_;
};

}  // namespace

Result<std::unique_ptr<Backend>> make_cuda_backend() {
  auto b = std::make_unique<CudaBackend>();
  PLUMB_RETURN_IF_ERROR(b->init());
  return std::unique_ptr<Backend>(std::move(b));
}

}  // namespace plumb::cuda
