// Where a forward pass's time goes on the CPU: wall time of each op kind, summed over layers and
// passes (`plumb bench --profile`). Matrix products are split into the activation preparation
// and the kernels' row loops, per matrix (QKV, attention output, gate+up, down, output); the
// parallel parts also sum the time their threads spent working, so the table shows how much of
// the region's threads x wall time was work and how much waiting (imbalance, a descheduled
// thread, the wake-up).
//
// Process-wide and off by default: a disabled timer is one relaxed load and a test, so the
// timers stay in the ops. Enabled, each op reads the clock twice (about 20 ns each), and each
// chunk of a parallel region twice more. Only one forward pass may run at a time while it is
// enabled (bench's case): the sums are not per model.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace plumb::cpu {

// The matrix a product multiplies by, from its tensor name.
enum class MatrixRole : uint8_t { kQkv, kAttnOut, kGateUp, kDown, kOutput, kCount };
MatrixRole matrix_role(const std::string& tensor_name);

enum class OpKind : uint8_t {
  kEmbed, kNorm, kPrep, kProduct, kRope, kKvStore, kAttention, kSwiglu, kAdd, kCount
};

class OpProfile {
 public:
  struct Row {
    std::string name;       // "attention", "product gate+up", "prep qkv", ...
    uint64_t calls = 0;
    uint64_t wall_ns = 0;
    uint64_t busy_ns = 0;   // threads' working time in the op's parallel regions (0: not measured)
    uint64_t capacity_ns = 0;  // wall x threads of the op
  };

  static bool enabled() { return enabled_.load(std::memory_order_relaxed); }
  static void set_enabled(bool on) { enabled_.store(on, std::memory_order_relaxed); }
  static void reset();
  // The ops with any time, in forward-pass order.
  static std::vector<Row> rows();

  static uint64_t now_ns() {
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
            .count());
  }
  static void add(OpKind op, MatrixRole role, uint64_t wall_ns, uint64_t busy_ns, int threads);
  static void add_busy(uint64_t ns) { busy_ns_.fetch_add(ns, std::memory_order_relaxed); }
  static uint64_t busy() { return busy_ns_.load(std::memory_order_relaxed); }

 private:
  static std::atomic<bool> enabled_;
  static std::atomic<uint64_t> busy_ns_;
};

// Times one op (the scope) when the profile is enabled; the busy time that parallel regions
// reported meanwhile (BusyTimer) is the op's.
class OpTimer {
 public:
  OpTimer(OpKind op, int threads, MatrixRole role = MatrixRole::kCount)
      : on_(OpProfile::enabled()), op_(op), role_(role), threads_(threads) {
    if (on_) {
      busy0_ = OpProfile::busy();
      start_ = OpProfile::now_ns();
    }
  }
  ~OpTimer() {
    if (on_) OpProfile::add(op_, role_, OpProfile::now_ns() - start_, OpProfile::busy() - busy0_, threads_);
  }
  OpTimer(const OpTimer&) = delete;
  OpTimer& operator=(const OpTimer&) = delete;

 private:
  bool on_;
  OpKind op_;
  MatrixRole role_;
  int threads_;
  uint64_t start_ = 0, busy0_ = 0;
};

// One thread's piece of work inside a parallel region (a chunk of rows, an attention task).
class BusyTimer {
 public:
  BusyTimer() : on_(OpProfile::enabled()) {
    if (on_) start_ = OpProfile::now_ns();
  }
  ~BusyTimer() {
    if (on_) OpProfile::add_busy(OpProfile::now_ns() - start_);
  }
  BusyTimer(const BusyTimer&) = delete;
  BusyTimer& operator=(const BusyTimer&) = delete;

 private:
  bool on_;
  uint64_t start_ = 0;
};

}  // namespace plumb::cpu
