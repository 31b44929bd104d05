// The one interface the forward pass (src/model/llama.cpp) calls. A backend owns its
// activation buffers, bound weights, RoPE table and KV cache; the forward pass only names them.
//
// Activation buffers are row-major [n_tokens][width] F32 arrays allocated by the backend
// (host memory on the CPU, device memory on a GPU); `host_view` makes one readable for taps.
//
// A forward pass is: set_batch (the token ids and positions, copied into buffers the backend
// owns), then the ops, each reading its inputs from earlier ops' buffers, then host_view of the
// logits. A batch holds one or more sequences, each a run of consecutive tokens with its own KV
// cache and positions: the row-wise ops and the matrix products see every token of the batch at
// once, kv_store and attention one run at a time.
//
// Matrix products take each token's contract from the caller, who chooses it by the token's role
// (docs/EXACTNESS.md): tokens [0, n_lane) of a product follow the generation contract, the
// others the prompt contract, and under either a token's bits do not depend on the other tokens
// of the product. Never by the number of tokens that share the product: so a sequence computes
// the same bits alone or batched with others. Ops do not return errors: a backend whose op fails (a CUDA launch, say) keeps the
// first error, and take_error() hands it to the forward pass, which returns it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "backend/cache_type.h"
#include "gguf/gguf.h"
#include "util/status.h"

namespace plumb {

// A weight matrix bound to a backend (format resolved once, when bound): maps rows of n_in
// values to rows of n_out values. ggml ne = [n_in, n_out].
class BoundMatrix {
 public:
  virtual ~BoundMatrix() = default;
  int64_t n_in = 0;
  int64_t n_out = 0;
};

// A per-layer cache of rotated keys and values for positions 0 .. n_ctx-1.
class KvCache {
 public:
  virtual ~KvCache() = default;
};

// cos/sin of every rotation angle the session can need: [n_pos][n_rot / 2] each, computed in
// double from theta_i = pos * freq_scale * freq_base^(-2i/n_rot) / freq_factor[i] (the angles of
// ggml's "normal" RoPE) and then rounded to float.
struct RopeTable {
  int64_t n_pos = 0;
  int64_t n_rot = 0;
  std::vector<float> cos;
  std::vector<float> sin;
  static RopeTable make(int64_t n_pos, int64_t n_rot, float freq_base, float freq_scale,
                        const std::vector<float>& freq_factors);
};

struct AttentionShape {
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim_k = 0;
  int64_t head_dim_v = 0;
  float scale = 1.0f;  // applied to q·k before the softmax
};

// Device memory a backend has allocated (bytes; none for a backend in host memory): held now by
// kind, and the most held at once. The device's own context and libraries are not counted.
struct DeviceMemory {
  static constexpr int kWeights = 0, kKvCache = 1, kOther = 2;  // activations, scratch, tables
  int64_t held[3] = {};
  int64_t peak = 0;
};

// A run of a sequence's prompt tokens shorter than this follows the generation contract (what
// the single-token kernels compute; the prompt contract would not be faster for so few), a
// longer one the prompt contract. (Generated tokens: the generation contract one sequence at a
// time, the prompt contract when several sequences share passes; model/llama.h.)
constexpr int64_t kPromptContractMinTokens = 4;

// One sequence's tokens in a batch: rows [begin, begin + n) at positions pos0 .. pos0 + n - 1.
struct SeqRun {
  int64_t begin = 0;
  int64_t n = 0;
  int64_t pos0 = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  virtual DeviceMemory device_memory() const { return {}; }
  // Whether a token's result under the prompt contract depends on its own activations alone,
  // whatever else the product holds (the CPU's kernels). When not (CUDA: cuBLAS may round by the
  // call's shape), a batch of several sequences keeps its generated tokens and logits rows under
  // the generation contract, and matmul runs each run's prompt tokens as a call of their own.
  virtual bool prompt_contract_per_token() const { return true; }

  // An activation buffer of n floats, zeroed, valid as long as the backend.
  virtual Result<float*> alloc(int64_t n) = 0;
  // Frees a buffer from alloc().
  virtual void release(float* buf) = 0;
  // The data of a buffer as host floats (the buffer itself on the CPU; otherwise a copy into
  // `scratch`, after the ops before it have finished).
  virtual const float* host_view(const float* buf, int64_t n, std::vector<float>& scratch) = 0;
  // Copies host floats into the first n floats of a buffer.
  virtual void upload(const float* host, int64_t n, float* buf) = 0;

  // A matrix view of a tensor of the mapped file (no copy on the CPU; uploaded once on a GPU).
  // A type the backend has no kernel for is an error naming the tensor and the type.
  virtual Result<std::unique_ptr<BoundMatrix>> bind_matrix(const gguf::TensorInfo& t) = 0;
  // A vector (norm weights) as F32 on the backend.
  virtual Result<const float*> bind_vector(const gguf::TensorInfo& t) = 0;
  // The RoPE table that rope() reads (one per backend; bound again, it replaces the last).
  virtual Status bind_rope(const RopeTable& table) = 0;
  virtual Result<std::unique_ptr<KvCache>> make_kv_cache(int64_t n_layer, int64_t n_ctx, int64_t k_width,
                                                         int64_t v_width, CacheType type) = 0;

  // The tokens of the next forward pass: token t is ids[t]; `runs` cover rows 0 .. n-1 in order,
  // one per sequence, and give their positions. The backend keeps its own copy (on a GPU, in
  // device memory), so the ops below read them from there and a recorded step (run_step) replays
  // with new ones.
  virtual void set_batch(const int32_t* ids, int64_t n, std::span<const SeqRun> runs) = 0;
  // One sequence: token t at position pos0 + t.
  void set_batch(const int32_t* ids, int64_t n, int64_t pos0) {
    const SeqRun run{0, n, pos0};
    set_batch(ids, n, std::span<const SeqRun>(&run, 1));
  }

  // out[t] = row ids[t] of the table, dequantized: [n][table.n_in].
  virtual void get_rows(const BoundMatrix& table, int64_t n, float* out) = 0;
  // y[t] = x[t] / sqrt(mean(x[t]^2) + eps) * w, rows of `width`.
  virtual void rms_norm(const float* x, const float* w, float eps, int64_t width, int64_t n, float* y) = 0;
  // y[t] = W x[t]: x [n][w.n_in] -> y [n][w.n_out]; tokens [0, n_lane) under the generation
  // contract, [n_lane, n) under the prompt contract.
  virtual void matmul(const BoundMatrix& w, const float* x, int64_t n, int64_t n_lane, float* y) = 0;
  // Several products of one input (Q, K and V; gate and up): products[i].y = W_i x, each
  // exactly as matmul gives it. A backend may prepare x once and run them as one parallel job.
  struct Product {
    const BoundMatrix* w;
    float* y;
  };
  virtual void matmul_same_input(std::span<const Product> products, const float* x, int64_t n, int64_t n_lane) {
    for (const Product& p : products) matmul(*p.w, x, n, n_lane, p.y);
  }
  // y = W x, then acc += y (the residual stream; both written: y is a tap of its own), with
  // the bits of matmul and add. A backend may do both in one pass.
  virtual void matmul_add(const BoundMatrix& w, const float* x, int64_t n, int64_t n_lane, float* y, float* acc) {
    matmul(w, x, n, n_lane, y);
    add(acc, y, n * w.n_out, acc);
  }
  // Rotates, in place, pairs (2i, 2i+1) of the first n_rot dims of every head of
  // x [n][n_heads * head_dim], token t by the angles of its position (set_batch).
  virtual void rope(float* x, int64_t n, int64_t n_heads, int64_t head_dim) = 0;
  // Stores rows of run `run` (set_batch) of k [.][k_width] and v [.][v_width], the whole batch's
  // buffers, at the run's positions of layer `layer` of `cache` (the run's sequence's cache).
  virtual void kv_store(KvCache& cache, int64_t layer, int64_t run, const float* k, const float* v) = 0;
  // rope of q [n][n_head * head_dim_k] and k [n][n_head_kv * head_dim_k], then kv_store of each
  // run's k and v into its sequence's cache (caches[r] for run r), with the bits of those ops. A
  // backend may do them in one pass.
  virtual void rope_store(std::span<KvCache* const> caches, int64_t layer, int64_t n, float* q, float* k,
                          const float* v, const AttentionShape& shape) {
    rope(q, n, shape.n_head, shape.head_dim_k);
    rope(k, n, shape.n_head_kv, shape.head_dim_k);
    for (size_t r = 0; r < caches.size(); ++r) kv_store(*caches[r], layer, static_cast<int64_t>(r), k, v);
  }
  // matmul_same_input of qkv = {q, k, v} (their y: q [n][n_head * head_dim_k], k, v), then
  // rope_store of them, with the bits of those ops (q and k are left rotated). A backend may do
  // both in one pass; the forward pass calls this where it taps no value in between.
  virtual void matmul_rope_store(std::span<const Product> qkv, const float* x, int64_t n, int64_t n_lane,
                                 std::span<KvCache* const> caches, int64_t layer, const AttentionShape& shape) {
    matmul_same_input(qkv, x, n, n_lane);
    rope_store(caches, layer, n, qkv[0].y, qkv[1].y, qkv[2].y, shape);
  }
  // matmul_same_input of gate_up = {gate, up} (their y [n][n_ff]), then out = swiglu of them
  // ([n][n_ff]; out may be gate's y), with the bits of those ops; up's y is not left to read. A
  // backend may do both in one pass; the forward pass calls this where it taps no value in between.
  virtual void matmul_swiglu(std::span<const Product> gate_up, const float* x, int64_t n, int64_t n_lane, float* out) {
    matmul_same_input(gate_up, x, n, n_lane);
    swiglu(gate_up[0].y, gate_up[1].y, n * gate_up[0].w->n_out, out);
  }
  // Causal attention of the rows of run `run` of q [.][n_head * head_dim_k] (a token at position
  // p over the cached positions 0 .. p) into the same rows of out [.][n_head * head_dim_v], heads
  // merged; q and out are the whole batch's buffers.
  virtual void attention(const KvCache& cache, int64_t layer, int64_t run, const float* q, const AttentionShape& shape,
                         float* out) = 0;
  // out = silu(gate) * up, elementwise over n values.
  virtual void swiglu(const float* gate, const float* up, int64_t n, float* out) = 0;
  // out = a + b, elementwise over n values (out may alias a or b).
  virtual void add(const float* a, const float* b, int64_t n, float* out) = 0;
  // Copies n floats (dst and src may live in different buffers).
  virtual void copy(const float* src, int64_t n, float* dst) = 0;

  // Runs `ops`, the ops of one forward pass between set_batch and reading the results. A GPU
  // backend may record them the first time it sees `key` (a CUDA graph) and replay the record
  // afterwards instead of calling `ops` again: so `ops` must issue the same ops on the same
  // buffers for every call with that key, with everything that changes read from set_batch's
  // copy. Returns take_error().
  virtual Status run_step(int64_t key, const std::function<void()>& ops) {
    ops();
    return take_error();
  }
  // The first error an op met since the last call (then cleared); OK when none did.
  virtual Status take_error() { return Status(); }
};

// "cpu" (or "cuda" when built with it); an unknown name is an error that lists the choices.
Result<std::unique_ptr<Backend>> make_backend(const std::string& name, int n_threads);

}  // namespace plumb
