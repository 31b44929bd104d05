// A fixed set of worker threads that run one parallel region at a time.
//
// The forward pass issues many short regions per token (a few microseconds each for a small
// model), so workers spin briefly before sleeping; starting threads per region would cost more
// than the work.
//
// A region is nth slots, fn(0, nth) .. fn(nth-1, nth). Slots are claimed, not assigned: the
// caller and whichever workers are awake take them in turn, so a worker that the OS has not
// scheduled (a loaded machine, more threads than cores) never holds the region up: its slot
// is simply run by someone else.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace plumb {

class ThreadPool {
 public:
  // n_threads includes the calling thread; 0 means all hardware threads.
  explicit ThreadPool(int n_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Runs fn(slot, n_threads) once for every slot in [0, n_threads) and returns when all have
  // finished. Each slot runs on exactly one thread, so per-slot scratch indexed by `slot` is safe.
  void run(const std::function<void(int ith, int nth)>& fn);

  // Splits [0, n) into contiguous chunks, one per thread: fn(begin, end).
  void parallel_for(int64_t n, const std::function<void(int64_t begin, int64_t end)>& fn);

  static int hardware_threads();

 private:
  void worker_loop();
  // Claims and runs slots of region `generation` until none is left.
  void run_slots(uint64_t generation);

  int n_threads_;
  std::vector<std::thread> workers_;
  const std::function<void(int, int)>* task_ = nullptr;
  std::atomic<uint64_t> generation_{0};
  // (generation << 16) | next unclaimed slot of the current region.
  std::atomic<uint64_t> claim_{0};
  std::atomic<int> done_{0};
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::condition_variable wake_;
};

}  // namespace plumb
