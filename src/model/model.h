// A loaded model (hyperparameters, weights as views into the mapped file, tokenizer) and a
// Session (KV cache + run state) that runs the forward pass over batches of tokens.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/cache_type.h"
#include "backend/planted_fault.h"
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"
#include "trace/tracer.h"
#include "util/status.h"

namespace plumb {

// Hyperparameters read from GGUF metadata (architecture "llama").
struct ModelConfig {
  std::string architecture;  // "llama"
  std::string name;          // general.name, may be empty
  int64_t n_vocab = 0;
  int64_t n_embd = 0;
  int64_t n_layer = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t n_ff = 0;
  int64_t head_dim_k = 0;    // attention.key_length, default n_embd / n_head
  int64_t head_dim_v = 0;    // attention.value_length, default n_embd / n_head
  int64_t n_rot = 0;         // rope.dimension_count, default head_dim_k
  int64_t n_ctx_train = 0;
  float rope_freq_base = 10000.0f;
  float rope_freq_scale = 1.0f;  // 1 / rope.scaling.factor (linear scaling)
  float rms_eps = 1e-5f;
  bool tied_output = false;      // no output.weight: logits use token_embd.weight
  bool has_rope_freqs = false;   // Llama 3 frequency factors (rope_freqs.weight)
};

struct ModelOptions {
  bool load_tokenizer = true;
  // Read the file into memory instead of mapping it (gguf::OpenOptions::read_into_memory).
  bool read_into_memory = false;
  // Called with (bytes done, bytes total) while weights are touched/prepared; may be empty.
  std::function<void(uint64_t, uint64_t)> progress;
};

class Model {
 public:
  virtual ~Model() = default;
  static Result<std::unique_ptr<Model>> load(const std::string& path, const ModelOptions& options = {});

  virtual const ModelConfig& config() const = 0;
  virtual const gguf::File& file() const = 0;
  virtual const Tokenizer& tokenizer() const = 0;  // only when options.load_tokenizer
};

struct SessionOptions {
  int n_ctx = 0;           // 0: the model's context_length, capped at 4096
  int n_threads = 0;       // 0: all hardware threads
  CacheType cache_type = CacheType::F16;
  std::string backend = "cpu";  // "cpu" or "cuda"
  int n_batch = 512;       // prompt tokens per forward pass; longer inputs are split
  PlantedFault fault = PlantedFault::None;  // tests and `plumb trace/check --fault` only
  int fault_layer = 0;
};

class Session {
 public:
  virtual ~Session() = default;
  static Result<std::unique_ptr<Session>> create(const Model& model, const SessionOptions& options);

  // Appends `tokens` at positions n_past() .. and runs the forward pass over them as one batch
  // (split by n_batch). Logits are kept for every new position when all_logits, else for the
  // last one only (the output projection is skipped for the others). A context overflow or a
  // token id outside the vocabulary is an error that leaves the session unchanged. A tracer
  // sees every tap once per batch of up to n_batch tokens, with all rows (result_norm and
  // logits included, whatever all_logits says).
  Status decode(std::span<const int32_t> tokens, bool all_logits, Tracer* tracer = nullptr) {
    return decode_keeping(tokens, all_logits ? 0 : static_cast<int64_t>(tokens.size()) - 1, tracer);
  }
  // The same, keeping the logits of positions keep_from .. size-1 of `tokens` (logits(0) is
  // position keep_from): perplexity scores only the second half of a chunk, so the output
  // projection of the first half is skipped, as llama-perplexity does.
  virtual Status decode_keeping(std::span<const int32_t> tokens, int64_t keep_from, Tracer* tracer = nullptr) = 0;

  // Logits of the i-th kept position of the last decode (n_vocab floats).
  virtual const float* logits(int64_t i) const = 0;
  virtual int64_t n_logit_rows() const = 0;

  virtual int n_past() const = 0;
  virtual int n_ctx() const = 0;
  // Forgets positions >= n (n = 0 empties the cache).
  virtual void truncate(int n) = 0;
  // What the backend holds in device memory (all zero on the CPU).
  virtual DeviceMemory device_memory() const { return {}; }
};

// Several sequences, each with its own KV cache and position, stepped together: one forward pass
// over the new tokens of all of them (plumb serve's step). Each token's arithmetic follows its
// role, a prompt token or a generated one, never the number of sequences in the pass, so a
// sequence's logits are the bits it gets alone in a group (docs/EXACTNESS.md, "Batch
// invariance"). Generated tokens follow the prompt contract here (cheaper when many share a
// pass), so they differ in the last bits from a Session's one-token decode (in the products of
// weights other than Q4_K and Q6_K, which follow the prompt contract in both).
class SessionGroup {
 public:
  virtual ~SessionGroup() = default;
  // n_seq sequences of options.n_ctx positions each (0: the model's, capped at 4096), and
  // passes of up to max_tokens tokens.
  static Result<std::unique_ptr<SessionGroup>> create(const Model& model, const SessionOptions& options, int n_seq,
                                                      int max_tokens);

  // One sequence's share of a step: a run of its prompt, or the one token it generated last.
  struct Input {
    int seq = 0;
    std::span<const int32_t> tokens;
    bool generated = false;
    bool want_logits = false;  // keep the logits of its last token (logits(i) for input i)
  };
  // Whether the input can run: the sequence exists and is not in the step already (checked by
  // step), the tokens are in the vocabulary and fit the context, a generated input is one token.
  // The error says which and by how much.
  virtual Status check(const Input& input) const = 0;
  // Appends every input's tokens to its sequence (at most one input per sequence, max_tokens in
  // all) and runs them as one pass. An invalid input fails the step and changes nothing.
  virtual Status step(std::span<const Input> inputs) = 0;
  // The logits kept by input i of the last step (n_vocab floats); nullptr when it kept none.
  virtual const float* logits(size_t i) const = 0;

  virtual int n_past(int seq) const = 0;
  virtual int n_ctx() const = 0;
  virtual int n_seq() const = 0;
  virtual int max_tokens() const = 0;
  // Forgets positions >= n of one sequence (n = 0 empties it).
  virtual void truncate(int seq, int n) = 0;
};

}  // namespace plumb
