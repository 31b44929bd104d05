// Matrix products of a weight matrix in any GGUF tensor type with F32 activations, computed
// directly on the stored blocks (no dequantized copy of the weights).
//
// Precision policy (see docs/EXACTNESS.md): llama.cpp rounds activations to 8 bits (Q8_0/Q8_1/
// Q8_K) before every product. plumb keeps them far more exact: the kernels consume activations
// prepared once per product by ActivationBuffer (e.g. 16-bit integer blocks with an f32 scale,
// or plain F32/F16), with integer dot products inside a block and f32 accumulation across blocks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "backend/cpu/op_profile.h"
#include "quant/types.h"
#include "util/thread_pool.h"

namespace plumb::cpu {

// A 2-D weight: n_out rows of n_in elements (GGUF ne = [n_in, n_out]), a view into the file.
// The kernels assume a type they have (every type model/weights.cpp admits for a matrix) and
// rows of whole blocks (so of whole 32-element activation blocks for quantized types), which
// the model's loader checks.
struct WeightMatrix {
  TensorType type = TensorType::F32;
  int64_t n_in = 0;
  int64_t n_out = 0;
  const uint8_t* data = nullptr;
  size_t row_bytes = 0;
  // Q4_K, Q6_K: the same rows repacked for the kernels of 1 to 3 tokens (rows16.h), or nullptr
  // (those kernels are then not used).
  const uint8_t* rows16 = nullptr;
  // F32, F16, BF16 rows longer than 4096 values: the same rows cut into blocks stored block after
  // block, for single tokens (float_blocks.h), or nullptr.
  const uint8_t* blocks = nullptr;
};

// The copy of w that generation reads (rows16 or blocks): its bytes at this process's SIMD level
// and on this CPU (0 where products read none), and the copy made over the pool into `out`
// (64-byte aligned, generation_copy_bytes long), w's field pointed at it.
size_t generation_copy_bytes(const WeightMatrix& w);
void make_generation_copy(ThreadPool& pool, WeightMatrix& w, uint8_t* out);

// The two arithmetic contracts of quantized products (matmul_internal.h, docs/EXACTNESS.md):
// kLane (eight lane partials per sub-block: what the single-token kernels compute) and kSummed
// (contract S: one exact integer sum per sub-block, tokens along the vector lanes). A token's
// result depends only on its activations and its contract, never on the other tokens of the
// product; float weights have one contract, whichever is asked, and Q4_K and Q6_K weights follow
// contract S whichever is asked (ActivationBuffer::summed_for).
enum class Contract { kLane, kSummed };

// The contract of a run of n_tokens prompt tokens of one sequence: contract S from
// kSummedMinTokens tokens on, the lane contract for fewer (and for every generated token).
Contract prompt_contract(int64_t n_tokens);

// Activations converted into the form the weight type's kernel consumes; filled once per
// product and shared by all threads.
class ActivationBuffer {
 public:
  // x: row-major [n_tokens][n_in]; x must stay valid while the buffer is used (F32/F16/BF16
  // weights read it directly). Quantized weight types all share one prepared form, so one
  // preparation serves every quantized weight applied to the same x. Every token of the
  // product follows `contract`.
  void prepare(TensorType weight_type, const float* x, int64_t n_tokens, int64_t n_in, ThreadPool& pool,
               Contract contract);
  // The same with the contract of a prompt run of n_tokens (prompt_contract).
  void prepare(TensorType weight_type, const float* x, int64_t n_tokens, int64_t n_in, ThreadPool& pool) {
    prepare(weight_type, x, n_tokens, n_in, pool, prompt_contract(n_tokens));
  }

  Contract contract() const { return contract_; }
  // Whether products of these activations with weights of `type` follow contract S: asked for,
  // or Q4_K and Q6_K weights, whose kernels of 1 to 3 tokens (rows16.h) are faster under
  // contract S than the lane kernels (no horizontal sums with 16 rows along the lanes).
  bool summed_for(TensorType type) const {
    return contract_ == Contract::kSummed || type == TensorType::Q4_K || type == TensorType::Q6_K;
  }
  TensorType weight_type() const { return weight_type_; }
  int64_t n_tokens() const { return n_tokens_; }
  int64_t n_in() const { return n_in_; }
  const float* f32() const { return f32_; }               // the original activations
  const uint8_t* data() const { return storage_.data() + align_offset_; }  // the prepared form (64-byte aligned)
  size_t token_stride() const { return token_stride_; }   // bytes per token in data()
  // A number no other preparation in this process had: kernels that rearrange the prepared form
  // for their own use (prompt tiles) keep their copy while it matches, instead of redoing it for
  // every chunk of rows a thread takes.
  uint64_t preparation() const { return preparation_; }
  // Token t's 16-bit activations split into bytes for the kernels of 1 to 3 tokens of rows16.h
  // (rows16_act); filled for products of that many tokens at AVX2 and above, when prepared for
  // a type those kernels take.
  const uint8_t* split(int64_t t) const { return split_.data() + split_align_ + static_cast<size_t>(t) * split_stride_; }
  bool has_split() const { return split_stride_ != 0; }

 private:
  uint64_t preparation_ = 0;
  Contract contract_ = Contract::kLane;
  TensorType weight_type_ = TensorType::F32;
  int64_t n_tokens_ = 0;
  int64_t n_in_ = 0;
  const float* f32_ = nullptr;
  size_t token_stride_ = 0;
  std::vector<uint8_t> storage_;
  size_t align_offset_ = 0;
  std::vector<uint8_t> split_;
  size_t split_align_ = 0;
  size_t split_stride_ = 0;  // 0: no split prepared
};

// y[t * ldy + r] = sum_k W[r][k] * x[t][k] for rows r in [r0, r1) and every token.
void matmul_rows(const WeightMatrix& w, const ActivationBuffer& x, float* y, int64_t ldy, int64_t r0, int64_t r1);

// The whole product from activations already prepared (one preparation can serve several
// weights of the same input, e.g. Q/K/V): y row-major [n_tokens][n_out], parallel over rows.
void matmul(ThreadPool& pool, const WeightMatrix& w, const ActivationBuffer& x, float* y);

// The instruction set the kernels use in this process: "amx-int8", "avx512-vnni", "avx2" or
// "scalar" (the best the CPU has, capped by PLUMB_SIMD=avx512|avx2|scalar or PLUMB_NO_SIMD=1).
const char* simd_name();

// The whole product y = x W^T (y row-major [n_tokens][n_out]), parallel over rows: tokens
// [0, n_lane) follow the lane contract, the others contract S (one product each).
void matmul(ThreadPool& pool, const WeightMatrix& w, const float* x, int64_t n_tokens, int64_t n_lane, float* y,
            ActivationBuffer& scratch, MatrixRole role = MatrixRole::kCount);
// The same with the contract of a prompt run of n_tokens (prompt_contract) for every token.
void matmul(ThreadPool& pool, const WeightMatrix& w, const float* x, int64_t n_tokens, float* y,
            ActivationBuffer& scratch);

// One of several products of one x: y row-major [n_tokens][w->n_out].
struct MatmulJob {
  const WeightMatrix* w;
  float* y;
};

// Several products of the same x in one parallel region, each bit-identical to its own matmul:
// x is prepared once when the weights share a prepared form (all quantized, or all float), and
// the rows of all products are handed out together, so small matrices (K and V beside Q) keep
// every thread busy. Tokens [0, n_lane) follow the lane contract, the others contract S (one
// region each).
void matmul_same_input(ThreadPool& pool, std::span<const MatmulJob> jobs, const float* x, int64_t n_tokens,
                       int64_t n_lane, ActivationBuffer& scratch, MatrixRole role = MatrixRole::kCount);

}  // namespace plumb::cpu
