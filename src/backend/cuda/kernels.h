// The CUDA kernels of the CUDA backend behind plain launch functions: the .cu files that define
// them are C++17 (nvcc), the backend that calls them is C++20 (cuda_backend.cpp). Every
// function enqueues its work on `stream` and returns the launch's error (cudaSuccess or not).
//
// Batch inputs live in device memory as `batch` = [pos0, id_0, id_1, ...] (int32): token t of
// the batch is id_t at position pos0 + t. Kernels read them there, so a recorded step replays
// with the values of the last set_batch. A batch of several sequences calls rope, kv_store and
// attention once per sequence, with a `batch` pointer whose first word is that sequence's pos0
// (cuda_backend.cpp's set_batch lays them out after the ids).
//
// Arithmetic contract (docs/EXACTNESS.md, "CUDA backend"): weights are dequantized exactly as
// the scalar reference does (quant/ref.h; nvcc's -fmad=false keeps every product and sum
// rounded as written); the prompt products of the types summed_covers names follow the CPU's
// contract S bit for bit (summed.h); RMSNorm, RoPE, SwiGLU, the KV store and attention follow
// the CPU backend's contract operation for operation.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "quant/types.h"

namespace plumb::cuda {

// Whether the measuring switch `name` (an environment variable, PLUMB_CUDA_GRAPHS say) is on:
// unset or anything but 0. Switching one off gives the code path before an optimization, for
// measuring it; the bits do not change.
inline bool switched_on(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr || std::atoi(v) != 0;
}

// Whether the matrix kernels read `type`.
bool has_matrix_kernel(TensorType type);

// Token counts up to this many go through matvec (weights read once for all of them); more
// through cuBLAS (F16 weights: three f16 GEMMs over split_f16_planes; the other types:
// dequantize_rows + SGEMM), or for the types summed_covers names, every prompt token (any count)
// through summed_matmul.
constexpr int kMaxMatvecTokens = 8;

// Up to three matrices of one type and row width that multiply the same input (Q, K and V;
// gate and up), run by one launch.
struct MatvecParts {
  int count = 0;
  const void* w[3] = {};
  int64_t n_out[3] = {};
  float* y[3] = {};
  float* acc[3] = {};  // when set: acc_i += y_i as well (the residual stream; [n][n_out])
};

// y_i[t][r] = sum_k W_i[r][k] x[t][k] for t < n (n <= kMaxMatvecTokens), rows of each W_i in
// `type`, row_stride bytes apart (a multiple of 16, rows padded by the backend), x 16-byte
// aligned. Sums in f32 with fma in a fixed order (matvec.cu; Q4_K and Q6_K: the CPU's 16-bit
// activations and each 16-value run's products exact in int32, units.cuh), a token's bits the same
// whatever tokens share the call: F16, Q4_0, Q4_1, Q8_0, Q4_K and Q6_K through the register
// kernel where one token's x fits its 100 KiB of shared memory (n_in up to 23,552; Q4_K and Q6_K
// 36,864), two tokens a launch where two fit (n_in up to 11,264; 18,432), else one; the other
// types and longer rows through matvec_staged.
cudaError_t matvec(TensorType type, const MatvecParts& parts, size_t row_stride, int64_t n_in, const float* x, int n,
                   cudaStream_t stream);
// The register matvec's layout of a row of `type` (units.cuh), checked on the host: every value
// w = a * q + b of every unit equals reference[position], and the units cover each position once.
// Returns the number of mismatches; *first describes the first. No GPU needed.
int64_t check_unit_layout(TensorType type, const uint8_t* row, int64_t n_in, const float* reference,
                          std::string* first);
// The integer units' activations (units.cuh, run_acts) of both halves of one 32-value block
// against summed.h's prepare_block (the CPU's quantize_token): the mismatches, on the host.
int64_t check_run_acts(const float* block, std::string* first);
// One row and one token of the register matvec of an integer type (Q4_K, Q6_K: units.cuh),
// emulated on the host in the kernel's order (lanes, units, runs, the butterfly): *y gets the
// GPU's bits. False for the other types.
bool emulate_matvec_row(TensorType type, const uint8_t* row, int64_t n_in, const float* x, float* y);
// The same product, one warp per row: each lane dequantizes 32-value groups of a staged chunk as
// the reference does and sums them with fma in f32; the lanes' sums are combined by a fixed
// butterfly.
cudaError_t matvec_staged(TensorType type, const MatvecParts& parts, size_t row_stride, int64_t n_in, const float* x,
                          int n, cudaStream_t stream);

// The prompt contract's product for Q4_0, Q8_0, Q4_K, Q5_K and Q6_K: the CPU's contract S
// (src/backend/cpu/matmul_internal.h) bit for bit, with int8 tensor cores (summed.h, summed.cu).
// Each token's outputs depend on that token's activations alone, whatever the other tokens.
bool summed_covers(TensorType type);
// Bytes of the prepared activations of n tokens of n_in values (n_in a multiple of 32).
size_t summed_act_bytes(int64_t n_in, int64_t n);
// Prepares x [n][n_in] (16-byte aligned) into `act` (summed_act_bytes, 16-byte aligned) as the
// CPU's quantize_token does: per 32-value block d_a, the int16 q split into high and low bytes,
// and the sums of the original values.
cudaError_t summed_prepare(const float* x, int64_t n, int64_t n_in, void* act, cudaStream_t stream);
// y_i[t][r] (t < n) = contract S of row r of W_i and token t of the prepared `act`; rows of each
// W_i in `type` (summed_covers), row_stride bytes apart (a multiple of 16, rows padded by the
// backend), n_in a multiple of the type's block. acc_i, when set: acc_i += y_i as well, with the
// bits of add().
cudaError_t summed_matmul(TensorType type, const MatvecParts& parts, size_t row_stride, int64_t n_in, const void* act,
                          int64_t n, cudaStream_t stream);

// out[r - r0][i] = W[r][i] for rows r0 .. r0 + rows - 1 (row_stride bytes apart), dequantized.
cudaError_t dequantize_rows(TensorType type, const void* w, size_t row_stride, int64_t n_in, int64_t r0, int64_t rows,
                            float* out, cudaStream_t stream);

// The exact f16 planes of a prompt's activations, for F16 weights' products on the tensor cores:
// per token t (row of x [n][n_in]) a power of two s_t puts its largest |x| in [2^13, 2^14), and
// x s_t = hi + mid + lo, each plane [n][n_in] f16 (hi = f16(x s_t), mid = f16 of the rest, lo of
// the rest after it): exact for every value down to 2^-24 of the scaled range, so that
// W (x s_t) = W hi + W mid + W lo with f16 products exact in f32. inv[t] = 1 / s_t.
cudaError_t split_f16_planes(const float* x, int64_t n, int64_t n_in, void* planes, float* inv, cudaStream_t stream);
// y[t][i] *= inv[t] for y [n][n_out] (inv powers of two: exact unless y underflows).
cudaError_t scale_tokens(float* y, int64_t n, int64_t n_out, const float* inv, cudaStream_t stream);

// out[t] = row id_t of the table, dequantized: [n][n_in].
cudaError_t get_rows(TensorType type, const void* table, size_t row_stride, int64_t n_in, const int32_t* batch,
                     int64_t n, float* out, cudaStream_t stream);

// y[t] = x[t] * float(1 / sqrt(sum(x[t]^2) / width + eps)) * w, the sum in double.
cudaError_t rms_norm(const float* x, const float* w, float eps, int64_t width, int64_t n, float* y,
                     cudaStream_t stream);

// RoPE "normal" pairs (2i, 2i+1), i < n_rot / 2, with cos/sin [n_pos][n_rot / 2].
cudaError_t rope(float* x, int64_t n, int64_t n_heads, int64_t head_dim, const float* cos, const float* sin,
                 int64_t n_rot, const int32_t* batch, cudaStream_t stream);

// Stores k [n][k_width], v [n][v_width] at the batch's positions of one layer's cache
// ([n_ctx][width] each, F16 bits rounded to nearest even, or F32).
cudaError_t kv_store(bool f16, void* k_cache, void* v_cache, int64_t k_width, int64_t v_width, const float* k,
                     const float* v, int64_t n, const int32_t* batch, cudaStream_t stream);

struct RopeStoreArgs {
  float* q = nullptr;  // [n][n_head * head_dim]
  float* k = nullptr;  // [n][n_head_kv * head_dim]
  const float* v = nullptr;
  int64_t n_head = 0, n_head_kv = 0, head_dim = 0, v_width = 0;
  const float* cos = nullptr;  // [n_pos][n_rot / 2]
  const float* sin = nullptr;
  int64_t n_rot = 0;
  bool f16 = true;
  void* k_cache = nullptr;  // one layer
  void* v_cache = nullptr;
};
// rope(q), rope(k), then kv_store(k, v): one launch, the same bits as the three.
cudaError_t rope_store(const RopeStoreArgs& a, int64_t n, const int32_t* batch, cudaStream_t stream);
// One-token products that do more than matvec in the same launch, through its register kernel:
// the input normalized on the way in (InputNorm), and the rows rotated and cached or SwiGLU'd
// on the way out; each with the bits of the ops it replaces (kernels below and ops.cu).
//
// x = rms_norm(raw, w, eps) of one token ([n_in]), written to y by the launch too; raw unset:
// x is the launch's input as given.
struct InputNorm {
  const float* raw = nullptr;
  const float* w = nullptr;
  float eps = 0.0f;
  float* y = nullptr;
};
// Whether the launches below take rows of n_in values of `type` (the register matvec's types but
// F16, for which they were measured slower).
bool matvec_one_covers(TensorType type, int64_t n_in);
// matvec of one token, its input normalized as `norm` says.
cudaError_t matvec_one(TensorType type, const MatvecParts& parts, size_t row_stride, int64_t n_in, const float* x,
                       const InputNorm& norm, cudaStream_t stream);
// Whether matvec_rope_store takes these parts: q, k and v, rows in pairs, heads of head_dim; q and
// k of `type`, v of v_type: the same type, or Q4_K with a Q6_K v (a Q4_K_M file's layers where
// llama.cpp's quantizer gives V more bits).
bool matvec_rope_store_covers(const MatvecParts& parts, int64_t head_dim, TensorType type, TensorType v_type);
// matvec of one token whose parts are q, k and v, then rope_store of them (a.q, a.k, a.v are
// ignored: the parts' y): each warp takes a pair of rows (2i, 2i + 1), rotates and stores it.
// v's rows v_stride bytes apart; each row's sums as in a launch of its own type.
cudaError_t matvec_rope_store(TensorType type, TensorType v_type, const MatvecParts& parts, size_t row_stride,
                              size_t v_stride, int64_t n_in, const float* x, const InputNorm& norm,
                              const RopeStoreArgs& a, const int32_t* batch, cudaStream_t stream);
// Whether matvec_swiglu takes these parts: gate and up, as many rows each.
bool matvec_swiglu_covers(const MatvecParts& parts);
// matvec of one token whose parts are gate and up, then swiglu of them into parts.y[0]
// (parts.y[1] is not written): each warp takes a gate row and its up row.
cudaError_t matvec_swiglu(TensorType type, const MatvecParts& parts, size_t row_stride, int64_t n_in, const float* x,
                          const InputNorm& norm, cudaStream_t stream);

struct AttentionArgs {
  bool f16 = true;
  const void* k_cache = nullptr;  // one layer: [n_ctx][k_width]
  const void* v_cache = nullptr;  // [n_ctx][v_width]
  int64_t k_width = 0, v_width = 0;
  int64_t n_ctx = 0;
  int64_t n_kv_max = 0;  // the most positions a query of the launch sees (n_ctx where unknown: a recorded step)
  int64_t n_head = 0, n_head_kv = 0, head_dim_k = 0, head_dim_v = 0;
  float scale = 1.0f;
  // A launch of a block per chunk (attention_split_bytes) needs both, else neither: `split`, device
  // memory of attention_split_bytes(*this, n) bytes; `split_done`, n * n_head counters that are
  // zero before the launch (the kernel leaves them at zero again).
  void* split = nullptr;
  unsigned* split_done = nullptr;
};
// The largest context attention() takes (its scores live in shared memory).
int64_t max_attention_context();
// Allows attention() its shared memory (up to max_attention_context()); call before capturing.
cudaError_t prepare_attention();
// Bytes of AttentionArgs::split for a launch of n query tokens: a launch of few blocks over more
// than one chunk of positions (backend/attention_chunk.h: a generation step deep in a context)
// gives each chunk a block of its own, combined by the last to finish; a prompt's many rows go
// through tiled products a chunk at a time (attention_tiled.cu), folded by a second launch; 0
// when attention() does neither (it then needs no split_done either).
size_t attention_split_bytes(const AttentionArgs& a, int64_t n);
// AttentionArgs::split_done counters such a launch needs: n * n_head for a block per chunk, none
// for the tiled products (their fold is a launch of its own) or a launch that splits nothing.
int64_t attention_split_counters(const AttentionArgs& a, int64_t n);
// Causal attention of q [n][n_head * head_dim_k] over the cache: out [n][n_head * head_dim_v]
// (head dims even, at most 256; n at most 65,535).
cudaError_t attention(const AttentionArgs& a, const float* q, int64_t n, const int32_t* batch, float* out,
                      cudaStream_t stream);

// out = gate / (1 + exp(-gate)) * up, elementwise.
cudaError_t swiglu(const float* gate, const float* up, int64_t n, float* out, cudaStream_t stream);
// out = a + b, elementwise.
cudaError_t add(const float* a, const float* b, int64_t n, float* out, cudaStream_t stream);

}  // namespace plumb::cuda
