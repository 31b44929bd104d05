// The KV cache and causal attention of the CPU backend: exact softmax attention (f32 scores and
// probabilities, the softmax sum in double, f32 accumulation of V; attention_kernels.h has the
// arithmetic). Not flash attention: no F16 rounding of queries or probabilities (llama.cpp
// rounds both to F16 when the cache is F16) and no online rescaling.
#include <algorithm>
#include <atomic>

#include "backend/cpu/attention_kernels.h"
#include "backend/cpu/cpu_backend.h"

namespace plumb::cpu {

namespace {

constexpr int64_t kMinParallelMacs = 1 << 17;
// Query rows (tokens x query heads of one KV head) per task: each cached K/V row is converted
// once per task and used by all of them; more rows per task means fewer conversions but a
// larger score buffer (rows x context floats) and coarser load balancing.
constexpr int64_t kRowsPerTask = 64;

}  // namespace

void CpuBackend::kv_store(KvCache& cache, int64_t layer, int64_t run, const float* k, const float* v) {
  OpTimer timer(OpKind::kKvStore, 1);
  const SeqRun& r = runs_[static_cast<size_t>(run)];
  const int64_t pos0 = r.pos0;
  const int64_t n = r.n;
  auto& c = static_cast<CpuKvCache&>(cache);
  k += r.begin * c.k_width;
  v += r.begin * c.v_width;
  const auto L = static_cast<size_t>(layer);
  if (c.type == CacheType::F32) {
    std::copy(k, k + n * c.k_width, c.k32[L].data() + pos0 * c.k_width);
    std::copy(v, v + n * c.v_width, c.v32[L].data() + pos0 * c.v_width);
    return;
  }
  const AttentionKernels& kern = attention_kernels();
  kern.to_f16(k, c.k16[L].data() + pos0 * c.k_width, n * c.k_width);
  kern.to_f16(v, c.v16[L].data() + pos0 * c.v_width, n * c.v_width);
}

void CpuBackend::attention(const KvCache& cache, int64_t layer, int64_t run, const float* q, const AttentionShape& s,
                           float* out) {
  OpTimer timer(OpKind::kAttention, pool_.size());
  const SeqRun& r = runs_[static_cast<size_t>(run)];
  const int64_t pos0 = r.pos0;
  const int64_t n = r.n;
  q += r.begin * s.n_head * s.head_dim_k;
  out += r.begin * s.n_head * s.head_dim_v;
  const auto& c = static_cast<const CpuKvCache&>(cache);
  const auto L = static_cast<size_t>(layer);
  const AttentionKernels& kern = attention_kernels();
  const int64_t group = s.n_head / s.n_head_kv;
  const bool f16 = c.type == CacheType::F16;
  const void* k_cache = f16 ? static_cast<const void*>(c.k16[L].data()) : c.k32[L].data();
  const void* v_cache = f16 ? static_cast<const void*>(c.v16[L].data()) : c.v32[L].data();
  const size_t elem = f16 ? sizeof(uint16_t) : sizeof(float);

  // Tasks: (KV head, run of tokens), head by head, and within a head the later runs (which see
  // more of the cache) first: threads claim tasks as they finish the previous one, and a thread
  // that takes another run of the same head reuses the f32 copy of its keys and values.
  const int64_t tokens_per_task = std::max<int64_t>(1, kRowsPerTask / group);
  const int64_t n_runs = (n + tokens_per_task - 1) / tokens_per_task;
  const int64_t n_tasks = n_runs * s.n_head_kv;
  for (AttentionScratch& scratch : attention_scratch_) scratch.converted_k = nullptr;  // the cache has changed
  auto make_tile = [&](int64_t task) {
    const int64_t run = n_runs - 1 - task % n_runs;
    const int64_t kvh = task / n_runs;
    const int64_t g = kvh;  // the group of query heads that read KV head kvh
    const int64_t t0 = run * tokens_per_task;
    AttentionTile tile;
    tile.k = static_cast<const char*>(k_cache) + static_cast<size_t>(kvh * s.head_dim_k) * elem;
    tile.v = static_cast<const char*>(v_cache) + static_cast<size_t>(kvh * s.head_dim_v) * elem;
    tile.f16 = f16;
    tile.k_stride = c.k_width;
    tile.v_stride = c.v_width;
    tile.head_dim_k = s.head_dim_k;
    tile.head_dim_v = s.head_dim_v;
    tile.scale = s.scale;
    tile.q = q + (t0 * s.n_head + g * group) * s.head_dim_k;
    tile.q_stride = s.n_head * s.head_dim_k;
    tile.out = out + (t0 * s.n_head + g * group) * s.head_dim_v;
    tile.out_stride = s.n_head * s.head_dim_v;
    tile.group = group;
    tile.n_tokens = std::min(tokens_per_task, n - t0);
    tile.n_kv0 = pos0 + t0 + 1;  // causal: token t0 sees positions 0 .. pos0 + t0
    return tile;
  };

  // A generation step over a short context is a few microseconds of work: waking the other
  // threads would cost more.
  const int64_t n_kv_max = pos0 + n;
  const int64_t macs = n * s.n_head * n_kv_max * (s.head_dim_k + s.head_dim_v);
  const auto serial = [&] {
    BusyTimer busy;
    for (int64_t task = 0; task < n_tasks; ++task) kern.attend(make_tile(task), attention_scratch_[0]);
  };
  if (macs < kMinParallelMacs) return serial();
  // A generation step (one token) over several chunks with fewer KV heads than threads: a task per
  // (KV head, chunk) keeps its chunk's parts, then each row folds them in chunk order, with
  // attend()'s bits (attention_kernels.h).
  const int64_t chunks = (n_kv_max + kAttentionChunk - 1) / kAttentionChunk;
  if (n == 1 && chunks > 1 && s.n_head_kv < pool_.size()) {
    const int64_t hdv = s.head_dim_v;
    const auto parts = static_cast<size_t>(s.n_head_kv * chunks * group);
    part_max_.resize(parts);
    part_sum_.resize(parts);
    part_chains_.resize(parts * static_cast<size_t>(hdv));
    std::atomic<int64_t> next{0};
    pool_.run([&](int ith, int nth) {
      AttentionScratch& scratch = attention_scratch_[static_cast<size_t>(ith)];
      for (int64_t task = next.fetch_add(1); task < s.n_head_kv * chunks; task = next.fetch_add(1)) {
        BusyTimer busy;
        kern.attend_chunk(make_tile(task / chunks), task % chunks, scratch, parts_view(task * group, hdv));
      }
    });
    AttentionScratch& fold = attention_scratch_[0];  // the calling thread's, free again
    fold.chunk_max.resize(static_cast<size_t>(chunks));
    fold.chunk_sums.resize(static_cast<size_t>(chunks));
    fold.total.resize(static_cast<size_t>(hdv));
    for (int64_t h = 0; h < s.n_head; ++h) {  // query head h = kvh * group + j
      const int64_t kvh = h / group, j = h % group;
      for (int64_t c = 0; c < chunks; ++c) {
        const auto at = static_cast<size_t>((kvh * chunks + c) * group + j);
        fold.chunk_max[static_cast<size_t>(c)] = part_max_[at];
        fold.chunk_sums[static_cast<size_t>(c)] = part_sum_[at];
      }
      const double sum = fold_chunk_sums(fold.chunk_max.data(), fold.chunk_sums.data(), chunks);
      const float inv_sum = static_cast<float>(1.0 / sum);
      for (int64_t c = 0; c < chunks; ++c) {
        const int64_t at = (kvh * chunks + c) * group + j;
        fold_chunk_chains(fold.total.data(), part_chains_.data() + at * hdv, fold.chunk_max[static_cast<size_t>(c)],
                          c == 0, hdv);
      }
      float* o = out + h * hdv;
      for (int64_t d = 0; d < hdv; ++d) o[d] = fold.total[static_cast<size_t>(d)] * inv_sum;
    }
    return;
  }
  if (n_tasks == 1) return serial();
  std::atomic<int64_t> next{0};
  pool_.run([&](int ith, int nth) {
    AttentionScratch& scratch = attention_scratch_[static_cast<size_t>(ith)];
    for (int64_t task = next.fetch_add(1); task < n_tasks; task = next.fetch_add(1)) {
      BusyTimer busy;
      kern.attend(make_tile(task), scratch);
    }
  });
}

ChunkParts CpuBackend::parts_view(int64_t at, int64_t width) {
  return ChunkParts{part_max_.data() + at, part_sum_.data() + at, part_chains_.data() + at * width, width};
}

}  // namespace plumb::cpu
