// plumb serve's counters, rendered as Prometheus text for GET /metrics.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>

namespace plumb::serve {

class Metrics {
 public:
  using Clock = std::chrono::steady_clock;

  // One finished HTTP request with its status code (any endpoint).
  void count_request(int http_status);
  void count_rejected() { rejected_.fetch_add(1); }   // 503: the queue was full
  void count_cancelled() { cancelled_.fetch_add(1); } // the client went away mid-request
  void add_prompt_tokens(int64_t n) { prompt_tokens_.fetch_add(n); }
  // Prompt tokens a request found in its slot's cache (whole chunks of the last prompt there).
  void add_reused_prompt_tokens(int64_t n) { reused_prompt_tokens_.fetch_add(n); }
  // Generated tokens; also feeds the tokens/s gauge (over the last 10 seconds).
  void add_generated_tokens(int64_t n);
  void observe_time_to_first_token(double seconds);
  // One forward pass of the scheduler, with the number of sequences that decoded a generated
  // token in it (all of them in the one pass).
  void observe_step(int generated);

  struct Gauges {
    int queue_depth = 0;
    int slots_busy = 0;
    int slots_total = 0;
  };
  std::string render(const Gauges& gauges);

 private:
  static constexpr std::array<double, 12> kTtftBuckets = {0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};

  std::mutex mutex_;
  std::array<uint64_t, 600> status_counts_{};  // by HTTP status code
  std::array<uint64_t, kTtftBuckets.size()> ttft_buckets_{};
  uint64_t ttft_count_ = 0;
  double ttft_sum_ = 0;
  std::deque<std::pair<Clock::time_point, int64_t>> generated_window_;  // (when, tokens)

  std::atomic<uint64_t> rejected_{0};
  std::atomic<uint64_t> cancelled_{0};
  std::atomic<int64_t> prompt_tokens_{0};
  std::atomic<int64_t> reused_prompt_tokens_{0};
  std::atomic<int64_t> generated_tokens_{0};
  std::atomic<uint64_t> steps_{0};
  std::atomic<int> step_generated_max_{0};
};

}  // namespace plumb::serve
