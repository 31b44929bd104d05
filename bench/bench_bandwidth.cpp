// Read bandwidth of this machine's memory, STREAM-like (not a test): the roof that generation,
// which reads every weight once per token, is measured against (docs/PERFORMANCE.md gives each
// tg figure as a share of it).
//   bench_bandwidth [--mib N] [--reps N] [--threads 1,2,4,...]
// Each thread sums its contiguous share of a buffer larger than the caches (default 1 GiB,
// touched first so its pages exist) in the widest vectors the CPU has, through the thread pool of
// the CPU backend; the figure is the median over reps of bytes read / wall time.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include <sys/mman.h>

#include "util/thread_pool.h"

using namespace plumb;

namespace {

// Sum of x[0..n) in 64 float chains, which the compiler turns into the widest vectors of each
// clone (AVX-512, AVX2 or the baseline's SSE, picked at run time), so that loads, not the adds'
// latency, set the pace. (A sum over GCC vector types of 32 bytes, which a baseline build lowers
// to pairs of SSE operations and stack copies, read 21-23 GB/s from one Zen 5 core where AVX-512
// loads read 31-35.)
__attribute__((target_clones("avx512f", "avx2", "default"))) float sum(const float* x, int64_t n) {
  float acc[64] = {};
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    for (int k = 0; k < 64; ++k) acc[k] += x[i + k];
  }
  float s = 0.0f;
  for (; i < n; ++i) s += x[i];
  for (const float a : acc) s += a;
  return s;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int64_t mib = 1024;
  int reps = 7;
  std::vector<int> thread_counts;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--mib")) {
      mib = std::atoll(argv[i + 1]);
    } else if (!std::strcmp(argv[i], "--reps")) {
      reps = std::atoi(argv[i + 1]);
    } else if (!std::strcmp(argv[i], "--threads")) {
      std::stringstream ss(argv[i + 1]);
      for (std::string t; std::getline(ss, t, ',');) thread_counts.push_back(std::atoi(t.c_str()));
    } else {
      std::fprintf(stderr, "unknown option %s (--mib N, --reps N, --threads 1,2,...)\n", argv[i]);
      return 2;
    }
  }
  if (mib < 1 || reps < 1) return std::fprintf(stderr, "--mib and --reps must be >= 1\n"), 2;
  if (thread_counts.empty()) {
    for (int t = 1; t <= ThreadPool::hardware_threads(); t *= 2) thread_counts.push_back(t);
    if (thread_counts.back() != ThreadPool::hardware_threads()) thread_counts.push_back(ThreadPool::hardware_threads());
  }
  const int64_t n = mib * (1 << 20) / static_cast<int64_t>(sizeof(float));
  // Anonymous memory with huge pages asked for, as the weights' copies and the model's mapping
  // are held (cpu_backend.cpp, gguf_reader.cpp).
  const size_t bytes = static_cast<size_t>(n) * sizeof(float);
  void* map = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (map == MAP_FAILED) return std::fprintf(stderr, "cannot map %lld MiB\n", static_cast<long long>(mib)), 1;
  madvise(map, bytes, MADV_HUGEPAGE);  // a hint
  float* const data = static_cast<float*>(map);
  std::fill(data, data + n, 1.0f);
  std::printf("| threads | read GB/s (median of %d, %lld MiB) |\n| ---: | ---: |\n", reps, (long long)mib);
  for (int threads : thread_counts) {
    if (threads < 1) continue;
    ThreadPool pool(threads);
    std::vector<float> partial(static_cast<size_t>(pool.size()));
    std::vector<double> rates;
    for (int r = 0; r <= reps; ++r) {
      const auto start = std::chrono::steady_clock::now();
      pool.run([&](int ith, int nth) {
        const int64_t begin = n * ith / nth, end = n * (ith + 1) / nth;
        partial[static_cast<size_t>(ith)] = sum(data + begin, end - begin);
      });
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (r > 0) rates.push_back(static_cast<double>(n) * sizeof(float) / s / 1e9);  // r = 0 warms up
    }
    float total = 0.0f;
    for (float p : partial) total += p;
    if (total <= 0.0f) std::fprintf(stderr, "unexpected sum %g\n", total);  // keeps the sums alive
    std::printf("| %d | %.1f |\n", pool.size(), median(rates));
  }
  munmap(map, bytes);
  return 0;
}
