// plumb serve's scheduler: --parallel slots, each a sequence of one SessionGroup (its own KV
// cache), a bounded queue in front of them, and one thread that steps every busy slot at once.
//
// A step is one forward pass over one unit of work of each busy slot: its one newly sampled
// token, or the next chunk of its prompt (prefill_chunk tokens at most; chunks wait for a later
// step when the step's token budget is spent, generated tokens never do); then each slot that
// has logits samples its next token. Requests join when a slot is free and leave when they
// finish or their client goes away, at any step, so a long prompt is prefilled in chunks
// between other requests' decode steps.
//
// Batch invariance: what a request computes depends only on the request. Its prompt is cut into
// chunks at the same places whatever else runs (every prefill_chunk tokens from its start), and
// the pass computes each token by its role, prompt or generated, never by how many tokens or
// sequences share it (SessionGroup); so its tokens and logprobs are the bits it gets alone. A
// slot keeps the cache of its last prompt: a request whose prompt begins with whole chunks of it
// starts after them, because those chunks are the very runs it would evaluate itself (the same
// tokens at the same positions, the same size, after the same cache), so the bits are too.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "model/model.h"
#include "sample/sampler.h"
#include "sample/text_stream.h"
#include "serve/metrics.h"
#include "serve/request.h"

namespace plumb::serve {

// One generated token as the HTTP side sees it.
struct TokenEvent {
  TokenId id = -1;
  std::string piece;  // the token's own bytes (for logprobs)
  std::string text;   // text released by this token (held-back UTF-8 and stop-string prefixes
                      // come out later; empty after a stop string)
  float logprob = 0;  // log-softmax of the raw logits (before sampling's filters)
  std::vector<std::pair<TokenId, float>> top;  // best top_logprobs alternatives, best first
};

// A request's life between the HTTP thread and the scheduler thread.
class Job {
 public:
  using Clock = std::chrono::steady_clock;
  Job(std::vector<TokenId> prompt, GenerationParams params)
      : prompt(std::move(prompt)), params(std::move(params)), arrived(Clock::now()) {}

  const std::vector<TokenId> prompt;
  const GenerationParams params;
  const Clock::time_point arrived;

  // HTTP side: waits until there are events or the job has finished, at most `timeout`. Moves
  // the events into *out; returns true when the job has finished (and *out holds the last).
  bool wait(std::vector<TokenEvent>* out, std::chrono::milliseconds timeout);
  // HTTP side: the client has gone; the scheduler frees the slot at its next step.
  void cancel();
  bool cancelled() const { return cancelled_.load(); }

  // After wait() returned true.
  const std::string& finish_reason() const { return finish_reason_; }  // "stop", "length"
  const std::string& error() const { return error_; }                  // non-empty: it failed
  int n_generated() const { return n_generated_; }  // tokens sampled, end-of-generation included

  // Scheduler side.
  void push(TokenEvent event);
  void finish(std::string reason, int n_generated, std::string error = {});

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<TokenEvent> events_;
  bool finished_ = false;
  std::string finish_reason_;
  std::string error_;
  int n_generated_ = 0;
  std::atomic<bool> cancelled_{false};
};

struct SchedulerOptions {
  int n_parallel = 4;      // slots
  int max_queue = 64;      // waiting requests beyond the slots; more get 503
  int prefill_chunk = 64;  // prompt tokens a slot evaluates per step
  int prompt_budget = 256; // prompt tokens per step beyond the generated ones (at least one chunk)
  SessionOptions session;  // for the slots' SessionGroup (n_ctx: per slot)
};

class Scheduler {
 public:
  static Result<std::unique_ptr<Scheduler>> create(const Model& model, const SchedulerOptions& options,
                                                   Metrics* metrics);
  ~Scheduler();

  // Queues a job; false when the queue is full (the caller answers 503).
  bool submit(std::shared_ptr<Job> job);
  int n_ctx() const { return n_ctx_; }
  // Shutting down: every queued and running job ends now (with an error), new ones are refused.
  void cancel_all();
  Metrics::Gauges gauges();

 private:
  struct Slot {
    int seq = 0;               // its sequence in the group
    std::shared_ptr<Job> job;  // null: free
    size_t n_fed = 0;          // prompt tokens evaluated (or found in the cache)
    std::vector<TokenId> cached;  // the prompt tokens at positions 0.. of the cache, in whole chunks or not
    std::optional<Sampler> sampler;
    std::optional<TextStream> text;
    TokenId last = -1;  // the token sampled last, evaluated at the next step
    int n_generated = 0;
  };

  Scheduler(const Model& model, const SchedulerOptions& options, Metrics* metrics);
  void loop();
  static size_t cached_prefix(const Slot& slot, const std::vector<TokenId>& prompt);
  Slot& free_slot_for(const std::vector<TokenId>& prompt);  // needs a free slot
  void admit(Slot& slot, std::shared_ptr<Job> job);
  void release(Slot& slot);
  // Gathers the busy slots' work into inputs_ / stepped_ (within the step's token budget).
  void plan_step();
  // Runs the planned step and hands each slot its result.
  void run_step();
  // Samples the slot's next token from `row` (its last logits) and hands it to the job.
  void sample_next(Slot& slot, std::span<const float> row);

  const Model& model_;
  const Tokenizer& tokenizer_;
  SchedulerOptions options_;
  Metrics* metrics_;
  int n_ctx_ = 0;
  std::unique_ptr<SessionGroup> group_;
  std::vector<Slot> slots_;
  std::vector<TokenId> last_;  // per slot: the token it evaluates this step (inputs_ view it)
  std::vector<SessionGroup::Input> inputs_;
  std::vector<Slot*> stepped_;  // inputs_[i] is stepped_[i]'s
  size_t prompt_turn_ = 0;      // the slot whose prompt goes first when the budget is short

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Job>> queue_;
  std::atomic<int> busy_{0};
  bool stop_ = false;
  std::atomic<bool> draining_{false};
  std::thread thread_;
};

}  // namespace plumb::serve
