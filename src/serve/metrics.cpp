#include "serve/metrics.h"

#include <cstdio>

namespace plumb::serve {

namespace {

constexpr auto kWindow = std::chrono::seconds(10);

void line(std::string* out, const char* fmt, auto... args) {
  char buf[256];
  std::snprintf(buf, sizeof buf, fmt, args...);
  *out += buf;
}

}  // namespace

void Metrics::count_request(int http_status) {
  std::lock_guard lock(mutex_);
  if (http_status >= 0 && http_status < static_cast<int>(status_counts_.size())) ++status_counts_[http_status];
}

void Metrics::add_generated_tokens(int64_t n) {
  generated_tokens_.fetch_add(n);
  const Clock::time_point now = Clock::now();
  std::lock_guard lock(mutex_);
  generated_window_.emplace_back(now, n);
  while (!generated_window_.empty() && now - generated_window_.front().first > kWindow) generated_window_.pop_front();
}

void Metrics::observe_time_to_first_token(double seconds) {
  std::lock_guard lock(mutex_);
  for (size_t i = 0; i < kTtftBuckets.size(); ++i) {
    if (seconds <= kTtftBuckets[i]) ++ttft_buckets_[i];
  }
  ++ttft_count_;
  ttft_sum_ += seconds;
}

void Metrics::observe_step(int generated) {
  steps_.fetch_add(1);
  int seen = step_generated_max_.load();
  while (generated > seen && !step_generated_max_.compare_exchange_weak(seen, generated)) {
  }
}

std::string Metrics::render(const Gauges& gauges) {
  std::string out;
  std::lock_guard lock(mutex_);
  out += "# HELP plumb_requests_total HTTP requests answered, by status code.\n";
  out += "# TYPE plumb_requests_total counter\n";
  for (size_t code = 0; code < status_counts_.size(); ++code) {
    if (status_counts_[code] != 0) {
      line(&out, "plumb_requests_total{code=\"%zu\"} %llu\n", code, (unsigned long long)status_counts_[code]);
    }
  }
  line(&out, "# HELP plumb_requests_rejected_total Requests refused with 503 because the queue was full.\n"
             "# TYPE plumb_requests_rejected_total counter\nplumb_requests_rejected_total %llu\n",
       (unsigned long long)rejected_.load());
  line(&out, "# HELP plumb_requests_cancelled_total Requests whose client went away before the end.\n"
             "# TYPE plumb_requests_cancelled_total counter\nplumb_requests_cancelled_total %llu\n",
       (unsigned long long)cancelled_.load());
  line(&out, "# HELP plumb_prompt_tokens_total Prompt tokens evaluated.\n"
             "# TYPE plumb_prompt_tokens_total counter\nplumb_prompt_tokens_total %lld\n",
       (long long)prompt_tokens_.load());
  line(&out, "# HELP plumb_prompt_tokens_reused_total Prompt tokens found in the slot's cache (not evaluated).\n"
             "# TYPE plumb_prompt_tokens_reused_total counter\nplumb_prompt_tokens_reused_total %lld\n",
       (long long)reused_prompt_tokens_.load());
  line(&out, "# HELP plumb_generated_tokens_total Tokens generated.\n"
             "# TYPE plumb_generated_tokens_total counter\nplumb_generated_tokens_total %lld\n",
       (long long)generated_tokens_.load());
  // Tokens/s over the last 10 seconds (or since the first token in them).
  double rate = 0;
  const Clock::time_point now = Clock::now();
  while (!generated_window_.empty() && now - generated_window_.front().first > kWindow) generated_window_.pop_front();
  if (!generated_window_.empty()) {
    int64_t n = 0;
    for (const auto& [when, count] : generated_window_) n += count;
    rate = static_cast<double>(n) / std::chrono::duration<double>(kWindow).count();
  }
  line(&out, "# HELP plumb_generation_tokens_per_second Tokens generated per second, all requests, last 10 s.\n"
             "# TYPE plumb_generation_tokens_per_second gauge\nplumb_generation_tokens_per_second %.3f\n",
       rate);
  line(&out, "# HELP plumb_steps_total Forward passes run (each over the new tokens of every busy slot).\n"
             "# TYPE plumb_steps_total counter\nplumb_steps_total %llu\n",
       (unsigned long long)steps_.load());
  line(&out, "# HELP plumb_step_generated_max The most slots that decoded a generated token in one pass.\n"
             "# TYPE plumb_step_generated_max gauge\nplumb_step_generated_max %d\n",
       step_generated_max_.load());
  line(&out, "# HELP plumb_queue_depth Requests waiting for a slot.\n"
             "# TYPE plumb_queue_depth gauge\nplumb_queue_depth %d\n",
       gauges.queue_depth);
  line(&out, "# HELP plumb_slots_busy Slots running a request.\n"
             "# TYPE plumb_slots_busy gauge\nplumb_slots_busy %d\n",
       gauges.slots_busy);
  line(&out, "# HELP plumb_slots_total Slots (--parallel).\n"
             "# TYPE plumb_slots_total gauge\nplumb_slots_total %d\n",
       gauges.slots_total);
  out += "# HELP plumb_time_to_first_token_seconds From a request's arrival to its first generated token.\n";
  out += "# TYPE plumb_time_to_first_token_seconds histogram\n";
  for (size_t i = 0; i < kTtftBuckets.size(); ++i) {
    line(&out, "plumb_time_to_first_token_seconds_bucket{le=\"%g\"} %llu\n", kTtftBuckets[i],
         (unsigned long long)ttft_buckets_[i]);
  }
  line(&out, "plumb_time_to_first_token_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)ttft_count_);
  line(&out, "plumb_time_to_first_token_seconds_sum %.6f\n", ttft_sum_);
  line(&out, "plumb_time_to_first_token_seconds_count %llu\n", (unsigned long long)ttft_count_);
  return out;
}

}  // namespace plumb::serve
