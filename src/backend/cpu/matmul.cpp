// Dispatch, activation preparation and threading of the CPU matrix products.
#include "backend/cpu/matmul.h"
#include "util/cpu_features.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "backend/cpu/float_blocks.h"
#include "backend/cpu/matmul_internal.h"
#include "backend/cpu/op_profile.h"
#include "backend/cpu/rows16.h"

namespace plumb::cpu {
namespace detail {

ActLayout ActLayout::for_n_in(int64_t n_in) {
  ActLayout l;
  l.n_in = n_in;
  l.n_blocks = n_in / kActBlock;
  const size_t nb = static_cast<size_t>(l.n_blocks);
  l.q_off = 0;
  l.d_off = (static_cast<size_t>(n_in) * sizeof(int16_t) + 63) / 64 * 64;
  l.sx32_off = l.d_off + nb * sizeof(float);
  l.sx16_off = l.sx32_off + nb * sizeof(float);
  l.stride = (l.sx16_off + 2 * nb * sizeof(float) + 63) / 64 * 64;
  return l;
}

bool uses_quantized_activations(TensorType type) {
  return type != TensorType::F32 && type != TensorType::F16 && type != TensorType::BF16;
}

namespace {

bool simd_disabled_by_env() {
  const char* v = std::getenv("PLUMB_NO_SIMD");
  return v != nullptr && v[0] != '\0' && std::strcmp(v, "0") != 0;
}

// PLUMB_SIMD=scalar|avx2|avx512|amx caps the level (to compare the paths on one machine).
SimdLevel simd_cap_from_env() {
  const char* v = std::getenv("PLUMB_SIMD");
  if (v == nullptr || v[0] == '\0' || std::strcmp(v, "amx") == 0) return SimdLevel::kAmx;
  if (std::strcmp(v, "avx512") == 0) return SimdLevel::kAvx512;
  if (std::strcmp(v, "avx2") == 0) return SimdLevel::kAvx2;
  if (std::strcmp(v, "scalar") == 0) return SimdLevel::kScalar;
  std::fprintf(stderr, "plumb: ignoring PLUMB_SIMD=%s (expected scalar, avx2, avx512 or amx)\n", v);
  return SimdLevel::kAmx;
}

}  // namespace

void quantize_token(const float* x, const ActLayout& lay, uint8_t* out) {
  auto* q = reinterpret_cast<int16_t*>(out + lay.q_off);
  auto* d = reinterpret_cast<float*>(out + lay.d_off);
  auto* sx32 = reinterpret_cast<float*>(out + lay.sx32_off);
  auto* sx16 = reinterpret_cast<float*>(out + lay.sx16_off);
  for (int64_t b = 0; b < lay.n_blocks; ++b) {
    const float* xb = x + b * kActBlock;
    float amax = 0.0f;
    bool has_nan = false;
    for (int k = 0; k < kActBlock; ++k) {
      amax = std::max(amax, std::fabs(xb[k]));
      has_nan = has_nan || std::isnan(xb[k]);
    }
    double half[2];
    for (int h = 0; h < 2; ++h) {
      const float* xh = xb + 16 * h;
      double v[4];
      for (int j = 0; j < 4; ++j) {
        v[j] = (double{xh[j]} + double{xh[4 + j]}) + (double{xh[8 + j]} + double{xh[12 + j]});
      }
      half[h] = (v[0] + v[2]) + (v[1] + v[3]);
    }
    int16_t* qb = q + b * kActBlock;
    if (has_nan || !(amax <= std::numeric_limits<float>::max())) {
      // NaN or Inf: keep it visible in every output instead of producing plausible numbers.
      d[b] = std::numeric_limits<float>::quiet_NaN();
      std::fill(qb, qb + kActBlock, int16_t{0});
    } else {
      float db = amax / kActQMax;
      float id = db != 0.0f ? 1.0f / db : 0.0f;
      if (!(id <= std::numeric_limits<float>::max())) db = id = 0.0f;  // amax below ~1e-34: zero block
      d[b] = db;
      // |x * id| <= 32767 + a few ulp, so the nearest integer never leaves the int16 range.
      for (int k = 0; k < kActBlock; ++k) qb[k] = static_cast<int16_t>(std::lrint(xb[k] * id));
    }
    sx16[2 * b] = static_cast<float>(half[0]);
    sx16[2 * b + 1] = static_cast<float>(half[1]);
    sx32[b] = static_cast<float>(half[0] + half[1]);
  }
}

SimdLevel cpu_simd_level() {
  static const SimdLevel level = cpu_has_amx_int8() && amx_kernel(TensorType::Q8_0) != nullptr ? SimdLevel::kAmx
                                 : cpu_has_avx512_vnni()                                       ? SimdLevel::kAvx512
                                 : cpu_has_avx2_fma_f16c() ? SimdLevel::kAvx2
                                                           : SimdLevel::kScalar;
  return level;
}

SimdLevel simd_level() {
  static const SimdLevel level =
      simd_disabled_by_env() ? SimdLevel::kScalar : std::min(cpu_simd_level(), simd_cap_from_env());
  return level;
}

const char* simd_level_name(SimdLevel level) {
  switch (level) {
    case SimdLevel::kAmx: return "amx-int8";
    case SimdLevel::kAvx512: return "avx512-vnni";
    case SimdLevel::kAvx2: return "avx2";
    default: return "scalar";
  }
}

bool simd_enabled() { return simd_level() >= SimdLevel::kAvx2; }

namespace {
std::atomic<OneTokenRows> one_token_rows{OneTokenRows::kByVendor};
}  // namespace

void set_one_token_rows(OneTokenRows rows) { one_token_rows.store(rows, std::memory_order_relaxed); }

bool one_token_rows_one_at_a_time() {
  switch (one_token_rows.load(std::memory_order_relaxed)) {
    case OneTokenRows::kOneAtATime: return true;
    case OneTokenRows::kInterleaved: return false;
    default: {
      // PLUMB_ONE_TOKEN_ROWS=one or =interleaved overrides the vendor (for measuring).
      static const int by_env = [] {
        const char* v = std::getenv("PLUMB_ONE_TOKEN_ROWS");
        return v == nullptr ? -1 : std::strcmp(v, "one") == 0 ? 1 : std::strcmp(v, "interleaved") == 0 ? 0 : -1;
      }();
      return by_env >= 0 ? by_env == 1 : cpu_is_amd();
    }
  }
}

namespace {
std::atomic<int64_t> stream_ahead_set{-1}, stream_ahead_l2_set{-1};

bool is_zen4() { return cpu_is_amd() && cpu_family() == 25 && cpu_has_avx512_vnni(); }

// The environment's distance in bytes where `env` is set (for measuring), else the CPU's.
size_t env_or(const char* env, size_t cpu) {
  const char* v = std::getenv(env);
  return v != nullptr ? static_cast<size_t>(std::strtoull(v, nullptr, 10)) : cpu;
}

// The tests' setting where there is one (set >= 0), else `chosen`.
size_t set_or(const std::atomic<int64_t>& set, size_t chosen) {
  const int64_t v = set.load(std::memory_order_relaxed);
  return v >= 0 ? static_cast<size_t>(v) : chosen;
}
}  // namespace

void set_stream_ahead(int64_t bytes) { stream_ahead_set.store(bytes, std::memory_order_relaxed); }
void set_stream_ahead_l2(int64_t bytes) { stream_ahead_l2_set.store(bytes, std::memory_order_relaxed); }

size_t stream_ahead_bytes() {
  static const size_t chosen = env_or("PLUMB_STREAM_AHEAD", cpu_is_amd() && !is_zen4() ? 8192 : 0);
  return set_or(stream_ahead_set, chosen);
}

size_t stream_ahead_l2_bytes() {
  static const size_t chosen = env_or("PLUMB_STREAM_AHEAD_L2", is_zen4() ? 8192 : 0);
  return set_or(stream_ahead_l2_set, chosen);
}

RowsKernel select_kernel(TensorType type, SimdLevel level) {
  level = std::min(level, cpu_simd_level());  // never an instruction set the CPU lacks
  if (level >= SimdLevel::kAmx) {
    if (RowsKernel k = amx_kernel(type)) return k;
  }
  if (level >= SimdLevel::kAvx512) {
    if (RowsKernel k = avx512_kernel(type)) return k;
  }
  if (level >= SimdLevel::kAvx2) {
    if (RowsKernel k = avx2_kernel(type)) return k;
  }
  return scalar_kernel(type);
}

}  // namespace detail

using detail::ActLayout;

size_t generation_copy_bytes(const WeightMatrix& w) {
  if (detail::has_rows16(w.type)) {
    return detail::simd_level() >= detail::kRows16Level ? detail::rows16_bytes(w.type, w.n_out, w.n_in) : 0;
  }
  const bool blocks_read = detail::simd_level() >= detail::kFloatBlocksLevel && detail::one_token_rows_one_at_a_time();
  return blocks_read ? detail::float_blocks_bytes(w.type, w.n_out, w.n_in) : 0;
}

void make_generation_copy(ThreadPool& pool, WeightMatrix& w, uint8_t* out) {
  if (detail::has_rows16(w.type)) {
    pool.parallel_for(detail::rows16_groups(w.n_out), [&](int64_t g0, int64_t g1) {
      detail::rows16_repack(w.type, w.data, w.row_bytes, w.n_out, w.n_in, out, g0, g1);
    });
    w.rows16 = out;
    return;
  }
  pool.parallel_for(w.n_out, [&](int64_t r0, int64_t r1) {
    detail::float_blocks_repack(w.type, w.data, w.row_bytes, w.n_out, w.n_in, out, r0, r1);
  });
  w.blocks = out;
}

Contract prompt_contract(int64_t n_tokens) {
  return n_tokens >= detail::kSummedMinTokens ? Contract::kSummed : Contract::kLane;
}

const char* simd_name() { return detail::simd_level_name(detail::simd_level()); }

void ActivationBuffer::prepare(TensorType weight_type, const float* x, int64_t n_tokens, int64_t n_in,
                               ThreadPool& pool, Contract contract) {
  static std::atomic<uint64_t> preparations{0};
  preparation_ = ++preparations;
  contract_ = contract;
  weight_type_ = weight_type;
  n_tokens_ = n_tokens;
  n_in_ = n_in;
  f32_ = x;
  if (!detail::uses_quantized_activations(weight_type)) {
    token_stride_ = static_cast<size_t>(n_in) * sizeof(float);
    return;
  }
  const ActLayout lay = ActLayout::for_n_in(n_in);
  token_stride_ = lay.stride;
  // 64 spare bytes so the start can be aligned for vector loads.
  const size_t need = lay.stride * static_cast<size_t>(n_tokens) + 64;
  if (storage_.size() < need) storage_.assign(need, 0);
  align_offset_ = (64 - reinterpret_cast<uintptr_t>(storage_.data()) % 64) % 64;
  uint8_t* base = storage_.data() + align_offset_;
  const auto quantize = detail::simd_enabled() ? detail::quantize_token_avx2 : detail::quantize_token;
  split_stride_ = 0;
  if (n_tokens >= 4 && pool.size() > 1) {
    pool.parallel_for(n_tokens, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) quantize(x + t * n_in, lay, base + t * lay.stride);
    });
    return;
  }
  for (int64_t t = 0; t < n_tokens; ++t) quantize(x + t * n_in, lay, base + t * lay.stride);
  if (n_tokens >= detail::kSummedMinTokens || !detail::simd_enabled() || !detail::has_rows16(weight_type)) return;
  split_stride_ = detail::rows16_split_bytes(n_in);
  const size_t split_need = split_stride_ * static_cast<size_t>(n_tokens) + 64;
  if (split_.size() < split_need) split_.assign(split_need, 0);
  split_align_ = (64 - reinterpret_cast<uintptr_t>(split_.data()) % 64) % 64;
  for (int64_t t = 0; t < n_tokens; ++t) {
    detail::rows16_prepare_avx2(detail::act_row(*this, lay, t), n_in, split_.data() + split_align_ + t * split_stride_);
  }
}

void matmul_rows(const WeightMatrix& w, const ActivationBuffer& x, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  detail::RowsKernel k = detail::select_kernel(w.type, detail::simd_level());
  if (k != nullptr && r0 < r1) k(w, x, y, ldy, r0, r1);
}

namespace {

// Rows per dynamically claimed chunk: about 8 chunks per thread keeps both cores busy when the
// other is slowed by a neighbour; a multiple of 8 rows keeps the AVX-512 and AMX prompt kernels'
// groups of 8 whole, of 16 the groups of repacked rows (rows16.h).
// A chunk reads at least kMinChunkBytes of weights per token: each claim moves the shared
// counter's cache line between cores, which in a product of a small model's generation step
// (austen-21m: 72-256 KB of weights, a few microseconds) cost more than the split saved.
constexpr int64_t kMinChunkBytes = 32 << 10;

int64_t rows_per_chunk(const WeightMatrix& w, int64_t n_tokens, int nth) {
  const int64_t by_threads = (w.n_out + 8 * nth - 1) / (8 * nth);
  const int64_t bytes_per_row = static_cast<int64_t>(w.row_bytes) * n_tokens;
  const int64_t by_bytes = (kMinChunkBytes + bytes_per_row - 1) / bytes_per_row;
  const int64_t chunk = std::max(by_threads, by_bytes);
  const int64_t tile = w.rows16 != nullptr ? detail::kRows16 : 8;
  return std::max<int64_t>(tile, (chunk + tile - 1) / tile * tile);
}

// Row ranges of one or more products, claimed by the threads of one region.
struct RowChunk {
  detail::RowsKernel kernel;
  const WeightMatrix* w;
  const ActivationBuffer* x;
  float* y;
  int64_t r0, r1;
};

void run_chunks(ThreadPool& pool, const std::vector<RowChunk>& chunks) {
  auto run_one = [](const RowChunk& c) {
    BusyTimer busy;
    c.kernel(*c.w, *c.x, c.y, c.w->n_out, c.r0, c.r1);
  };
  if (pool.size() == 1 || chunks.size() == 1) {
    for (const RowChunk& c : chunks) run_one(c);
    return;
  }
  std::atomic<size_t> next{0};
  pool.run([&](int, int) {
    for (size_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < chunks.size();) run_one(chunks[i]);
  });
}

void add_chunks(const WeightMatrix& w, const ActivationBuffer& x, float* y, int nth, std::vector<RowChunk>* chunks) {
  detail::RowsKernel k = detail::select_kernel(w.type, detail::simd_level());
  if (k == nullptr) return;
  const int64_t chunk = nth == 1 ? w.n_out : rows_per_chunk(w, x.n_tokens(), nth);
  for (int64_t r0 = 0; r0 < w.n_out; r0 += chunk) chunks->push_back({k, &w, &x, y, r0, std::min(w.n_out, r0 + chunk)});
}

// The products of one region for a few tokens (generation): chunks that shrink as the region's
// bytes are used up, each about 1 / (kGuidedShare x threads) of what is left (at least
// kMinChunkBytes), so the threads start on long streams and end within a small chunk of each
// other; equal chunks of 1/8 a thread's share left one thread waiting on the other's last chunk
// (11-16 % of the gate+up and output products' thread time on 2 Zen 4 cores). Only for the
// repacked Q4_K/Q6_K rows (rows16.h): F16 and Q8_0 generation measured no faster with it.
constexpr int64_t kGuidedShare = 2;

void add_guided_chunks(std::span<const MatmulJob> jobs, const ActivationBuffer& x, int64_t y_offset, int nth,
                       std::vector<RowChunk>* chunks) {
  int64_t left = 0;
  for (const MatmulJob& j : jobs) left += static_cast<int64_t>(j.w->row_bytes) * j.w->n_out * x.n_tokens();
  for (const MatmulJob& j : jobs) {
    const WeightMatrix& w = *j.w;
    detail::RowsKernel k = detail::select_kernel(w.type, detail::simd_level());
    if (k == nullptr) continue;
    const int64_t bytes_per_row = static_cast<int64_t>(w.row_bytes) * x.n_tokens();
    const int64_t tile = w.rows16 != nullptr ? detail::kRows16 : 4;
    for (int64_t r0 = 0; r0 < w.n_out;) {
      const int64_t bytes = std::max(kMinChunkBytes, left / (kGuidedShare * nth));
      const int64_t rows = ((bytes + bytes_per_row - 1) / bytes_per_row + tile - 1) / tile * tile;
      const int64_t r1 = std::min(w.n_out, r0 + rows);
      chunks->push_back({k, &w, &x, j.y + y_offset * w.n_out, r0, r1});
      left -= (r1 - r0) * bytes_per_row;
      r0 = r1;
    }
  }
}

void add_all_chunks(std::span<const MatmulJob> jobs, const ActivationBuffer& x, int64_t y_offset, int nth,
                    std::vector<RowChunk>* chunks) {
  const bool all_rows16 = std::all_of(jobs.begin(), jobs.end(), [](const MatmulJob& j) { return j.w->rows16 != nullptr; });
  if (nth > 1 && x.n_tokens() < detail::kSummedMinTokens && all_rows16) {
    add_guided_chunks(jobs, x, y_offset, nth, chunks);
    return;
  }
  for (const MatmulJob& j : jobs) add_chunks(*j.w, x, j.y + y_offset * j.w->n_out, nth, chunks);
}

}  // namespace

void matmul(ThreadPool& pool, const WeightMatrix& w, const ActivationBuffer& x, float* y) {
  thread_local std::vector<RowChunk> chunks;
  chunks.clear();
  const MatmulJob job{&w, y};
  add_all_chunks(std::span<const MatmulJob>(&job, 1), x, 0, pool.size(), &chunks);
  run_chunks(pool, chunks);
}

namespace {

// Tokens [t0, t0 + n) of x (rows of n_in floats) under one contract: y rows likewise offset.
void same_input_part(ThreadPool& pool, std::span<const MatmulJob> jobs, const float* x, int64_t t0, int64_t n,
                     Contract contract, ActivationBuffer& scratch, MatrixRole role) {
  const int64_t n_in = jobs[0].w->n_in;
  // One preparation serves every job; one with repacked rows needs the byte split too.
  TensorType prep_type = jobs[0].w->type;
  for (const MatmulJob& j : jobs) {
    if (j.w->rows16 != nullptr) prep_type = j.w->type;
  }
  {
    OpTimer timer(OpKind::kPrep, pool.size(), role);
    scratch.prepare(prep_type, x + t0 * n_in, n, n_in, pool, contract);
  }
  OpTimer timer(OpKind::kProduct, pool.size(), role);
  thread_local std::vector<RowChunk> chunks;
  chunks.clear();
  add_all_chunks(jobs, scratch, t0, pool.size(), &chunks);
  run_chunks(pool, chunks);
}

}  // namespace

void matmul_same_input(ThreadPool& pool, std::span<const MatmulJob> jobs, const float* x, int64_t n_tokens,
                       int64_t n_lane, ActivationBuffer& scratch, MatrixRole role) {
  const auto same_form = [&](const MatmulJob& j) {
    return j.w->n_in == jobs[0].w->n_in &&
           detail::uses_quantized_activations(j.w->type) == detail::uses_quantized_activations(jobs[0].w->type);
  };
  if (jobs.empty()) return;
  if (!std::all_of(jobs.begin(), jobs.end(), same_form)) {
    for (const MatmulJob& j : jobs) matmul(pool, *j.w, x, n_tokens, n_lane, j.y, scratch, role);
    return;
  }
  n_lane = std::clamp<int64_t>(n_lane, 0, n_tokens);
  if (n_lane > 0) same_input_part(pool, jobs, x, 0, n_lane, Contract::kLane, scratch, role);
  if (n_lane < n_tokens) same_input_part(pool, jobs, x, n_lane, n_tokens - n_lane, Contract::kSummed, scratch, role);
}

void matmul(ThreadPool& pool, const WeightMatrix& w, const float* x, int64_t n_tokens, int64_t n_lane, float* y,
            ActivationBuffer& scratch, MatrixRole role) {
  const MatmulJob job{&w, y};
  matmul_same_input(pool, std::span<const MatmulJob>(&job, 1), x, n_tokens, n_lane, scratch, role);
}

void matmul(ThreadPool& pool, const WeightMatrix& w, const float* x, int64_t n_tokens, float* y,
            ActivationBuffer& scratch) {
  scratch.prepare(w.type, x, n_tokens, w.n_in, pool);
  matmul(pool, w, scratch, y);
}

}  // namespace plumb::cpu
