// The CPU backend: host buffers, weights as views into the mapped file, matrix products through
// matmul.h, the other ops in plain C++ (ops.cpp, attention.cpp), all spread over a ThreadPool.
#pragma once

#include <list>
#include <new>
#include <memory>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/attention_kernels.h"
#include "backend/cpu/copy_arena.h"
#include "backend/cpu/matmul.h"
#include "backend/cpu/op_profile.h"
#include "util/thread_pool.h"

namespace plumb::cpu {

class CpuMatrix : public BoundMatrix {
 public:
  // mutable: w.rows16 or w.blocks is set by the first product that reads it
  // (CpuBackend::repack_if_used).
  mutable WeightMatrix w;
  MatrixRole role = MatrixRole::kOutput;  // for the op profile
  // Where w.rows16 or w.blocks will point (generation_copy_bytes, reserved at bind): the copy is
  // made by the first product of 1 to 3 tokens, so a use by prompts alone (plumb ppl) never
  // holds it.
  CopyArena::Slot copy;
};

// The bytes a CpuBackend copies of matrix t when generation first multiplies by it (Q4_K's and
// Q6_K's rows repacked, rows16.h; wide float rows cut into blocks, float_blocks.h; 0 where
// products read no copy).
size_t generation_copy_bytes(const gguf::TensorInfo& t);

class CpuKvCache : public KvCache {
 public:
  CacheType type = CacheType::F16;
  int64_t n_ctx = 0;
  int64_t k_width = 0;
  int64_t v_width = 0;
  // Per layer: K [n_ctx][k_width] and V [n_ctx][v_width], F16 bits or F32.
  std::vector<std::vector<uint16_t>> k16, v16;
  std::vector<std::vector<float>> k32, v32;
};

class CpuBackend : public Backend {
 public:
  explicit CpuBackend(int n_threads);

  std::string name() const override { return "cpu"; }
  Result<float*> alloc(int64_t n) override;
  void release(float* buf) override;
  const float* host_view(const float* buf, int64_t n, std::vector<float>& scratch) override { return buf; }
  void upload(const float* host, int64_t n, float* buf) override;

  Result<std::unique_ptr<BoundMatrix>> bind_matrix(const gguf::TensorInfo& t) override;
  Result<const float*> bind_vector(const gguf::TensorInfo& t) override;
  Status bind_rope(const RopeTable& table) override;
  Result<std::unique_ptr<KvCache>> make_kv_cache(int64_t n_layer, int64_t n_ctx, int64_t k_width, int64_t v_width,
                                                 CacheType type) override;

  using Backend::set_batch;
  void set_batch(const int32_t* ids, int64_t n, std::span<const SeqRun> runs) override;
  void get_rows(const BoundMatrix& table, int64_t n, float* out) override;
  void rms_norm(const float* x, const float* w, float eps, int64_t width, int64_t n, float* y) override;
  void matmul(const BoundMatrix& w, const float* x, int64_t n, int64_t n_lane, float* y) override;
  void matmul_same_input(std::span<const Product> products, const float* x, int64_t n, int64_t n_lane) override;
  void rope(float* x, int64_t n, int64_t n_heads, int64_t head_dim) override;
  void kv_store(KvCache& cache, int64_t layer, int64_t run, const float* k, const float* v) override;
  void attention(const KvCache& cache, int64_t layer, int64_t run, const float* q, const AttentionShape& shape,
                 float* out) override;
  void swiglu(const float* gate, const float* up, int64_t n, float* out) override;
  void add(const float* a, const float* b, int64_t n, float* out) override;
  void copy(const float* src, int64_t n, float* dst) override;

  ThreadPool& pool() { return pool_; }

 private:
  // Makes m.copy when a product of n tokens, n_lane of them under the lane contract, will
  // read it (generation_copy_bytes).
  void repack_if_used(const CpuMatrix& m, int64_t n, int64_t n_lane);

  ThreadPool pool_;
  CopyArena copies_;
  ActivationBuffer scratch_;
  RopeTable rope_;
  std::vector<int32_t> ids_;  // the batch's token ids (set_batch)
  std::vector<SeqRun> runs_;  // its sequences
  std::vector<int64_t> pos_;  // and each token's position
  // 64-byte aligned (a cache line): the float kernels read rows of these buffers with 32-byte
  // loads, and malloc's 16-byte alignment would split every other load across two lines.
  struct AlignedFree {
    void operator()(float* p) const { ::operator delete[](p, std::align_val_t{64}); }
  };
  std::vector<cpu::MatmulJob> jobs_;  // matmul_same_input's products
  std::list<std::unique_ptr<float[], AlignedFree>> buffers_;
  std::list<std::vector<float>> vectors_;               // converted norm weights
  std::vector<AttentionScratch> attention_scratch_;  // per thread
  // A generation step's attention by chunks: [KV head][chunk][query head of the group] each
  // chunk's m_c, sum_c and a_c (folded with the calling thread's AttentionScratch).
  ChunkParts parts_view(int64_t at, int64_t width);
  std::vector<float> part_max_, part_chains_;
  std::vector<double> part_sum_;
};

}  // namespace plumb::cpu
