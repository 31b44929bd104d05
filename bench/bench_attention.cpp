// Micro-benchmark of CpuBackend::attention, one layer, F16 cache (not a test).
//   bench_attention [--heads N] [--kv-heads N] [--head-dim N]
// Cases: generation steps over 32, 256 and 1024 cached positions, prompts of 64 and 512 tokens
// into an empty cache. Prints the thread CPU time per call (best of 5 repetitions), which a
// loaded machine inflates less than wall time; one thread (the kernel's own speed). Defaults: austen-21m's shape (8 heads, 4 KV
// heads, head size 32); TinyLlama's is --heads 32 --kv-heads 4 --head-dim 64.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <random>
#include <vector>

#include "backend/cpu/cpu_backend.h"

using namespace plumb;

namespace {

double thread_cpu_us() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t n_head = 8, n_head_kv = 4, head_dim = 32;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--heads")) n_head = std::atoll(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--kv-heads")) n_head_kv = std::atoll(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--head-dim")) head_dim = std::atoll(argv[i + 1]);
    else return std::fprintf(stderr, "unknown option %s\n", argv[i]), 2;
  }
  cpu::CpuBackend backend(1);
  const int64_t n_ctx = 1024;
  const int64_t kv_width = n_head_kv * head_dim;
  auto made = backend.make_kv_cache(1, n_ctx, kv_width, kv_width, CacheType::F16);
  std::unique_ptr<KvCache> cache = std::move(made.value());
  const std::vector<int32_t> ids(n_ctx, 0);  // attention reads only the positions of a batch
  std::mt19937 rng(1);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> k(n_ctx * kv_width), v(n_ctx * kv_width), q(n_ctx * n_head * head_dim), out(q.size());
  for (auto* buf : {&k, &v, &q}) {
    for (auto& x : *buf) x = dist(rng);
  }
  backend.set_batch(ids.data(), n_ctx, 0);
  backend.kv_store(*cache, 0, /*run=*/0, k.data(), v.data());
  const AttentionShape shape{n_head, n_head_kv, head_dim, head_dim, 1.0f / std::sqrt(static_cast<float>(head_dim))};

  struct Case {
    const char* name;
    int64_t n, pos0;
    int reps;
  };
  const Case cases[] = {{"generation, 32 positions", 1, 31, 20000},
                        {"generation, 256 positions", 1, 255, 4000},
                        {"generation, 1024 positions", 1, 1023, 1000},
                        {"prompt of 64", 64, 0, 300},
                        {"prompt of 512", 512, 0, 20}};
  std::printf("heads %lld, KV heads %lld, head size %lld, 1 thread\n", (long long)n_head, (long long)n_head_kv,
              (long long)head_dim);
  for (const Case& c : cases) {
    double best = 1e300;
    backend.set_batch(ids.data(), c.n, c.pos0);
    for (int rep = 0; rep < 5; ++rep) {
      const double t0 = thread_cpu_us();
      for (int i = 0; i < c.reps; ++i) backend.attention(*cache, 0, /*run=*/0, q.data(), shape, out.data());
      best = std::min(best, (thread_cpu_us() - t0) / c.reps);
    }
    std::printf("%-28s %10.2f us\n", c.name, best);
  }
  return 0;
}
