#include "util/thread_pool.h"

#include <algorithm>
#include <system_error>

#if defined(__x86_64__)
#include <immintrin.h>
#define PLUMB_CPU_RELAX() _mm_pause()
#else
#define PLUMB_CPU_RELAX() ((void)0)
#endif

namespace plumb {

namespace {
// About 50 microseconds of spinning before a worker sleeps on the condition variable.
constexpr int kSpinIterations = 20000;
// Slot numbers live in 16 bits of the claim word.
constexpr int kMaxThreads = 4096;
}  // namespace

int ThreadPool::hardware_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

ThreadPool::ThreadPool(int n_threads)
    : n_threads_(std::clamp(n_threads > 0 ? n_threads : hardware_threads(), 1, kMaxThreads)) {
  workers_.reserve(static_cast<size_t>(n_threads_ - 1));
  for (int i = 1; i < n_threads_; ++i) {
    try {
      workers_.emplace_back([this] { worker_loop(); });
    } catch (const std::system_error&) {
      // The system gives no more threads (a limit, little memory): run with those there are;
      // slots are claimed, so fewer workers only means less parallelism.
      n_threads_ = i;
      break;
    }
  }
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true);
    generation_.fetch_add(1);
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run_slots(uint64_t generation) {
  uint64_t state = claim_.load(std::memory_order_acquire);
  for (;;) {
    if ((state >> 16) != generation) return;
    const int slot = static_cast<int>(state & 0xFFFF);
    if (slot >= n_threads_) return;
    if (!claim_.compare_exchange_weak(state, state + 1, std::memory_order_acq_rel)) continue;
    // The region cannot end before this slot is done, so task_ is still this region's.
    (*task_)(slot, n_threads_);
    done_.fetch_add(1, std::memory_order_acq_rel);
    state = claim_.load(std::memory_order_acquire);
  }
}

void ThreadPool::run(const std::function<void(int, int)>& fn) {
  if (n_threads_ == 1) {
    fn(0, 1);
    return;
  }
  uint64_t generation = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    task_ = &fn;
    done_.store(0, std::memory_order_relaxed);
    generation = (generation_.load(std::memory_order_relaxed) + 1) & 0xFFFFFFFFFFFFull;
    claim_.store(generation << 16, std::memory_order_release);
    generation_.store(generation, std::memory_order_release);
  }
  wake_.notify_all();
  run_slots(generation);
  // Only slots that a worker has claimed and is running remain; yield the core to it if the
  // wait drags on (it may be waiting for this very core).
  for (int spins = 0; done_.load(std::memory_order_acquire) != n_threads_; ++spins) {
    if (spins < kSpinIterations) {
      PLUMB_CPU_RELAX();
    } else {
      std::this_thread::yield();
    }
  }
}

void ThreadPool::worker_loop() {
  uint64_t seen = 0;
  for (;;) {
    int spins = 0;
    while (generation_.load(std::memory_order_acquire) == seen && spins < kSpinIterations) {
      PLUMB_CPU_RELAX();
      ++spins;
    }
    if (generation_.load(std::memory_order_acquire) == seen) {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return generation_.load() != seen; });
    }
    seen = generation_.load(std::memory_order_acquire);
    if (stop_.load()) return;
    run_slots(seen);
  }
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  run([&](int ith, int nth) {
    const int64_t chunk = (n + nth - 1) / nth;
    const int64_t begin = std::min<int64_t>(n, chunk * ith);
    const int64_t end = std::min<int64_t>(n, begin + chunk);
    if (begin < end) fn(begin, end);
  });
}

}  // namespace plumb
