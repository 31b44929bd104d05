#include "serve/scheduler.h"

#include <algorithm>
#include <cmath>

namespace plumb::serve {

bool Job::wait(std::vector<TokenEvent>* out, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  cv_.wait_for(lock, timeout, [&] { return finished_ || !events_.empty(); });
  for (TokenEvent& e : events_) out->push_back(std::move(e));
  events_.clear();
  return finished_;
}

void Job::cancel() {
  cancelled_.store(true);
}

void Job::push(TokenEvent event) {
  {
    std::lock_guard lock(mutex_);
    events_.push_back(std::move(event));
  }
  cv_.notify_all();
}

void Job::finish(std::string reason, int n_generated, std::string error) {
  {
    std::lock_guard lock(mutex_);
    if (finished_) return;
    finished_ = true;
    n_generated_ = n_generated;
    finish_reason_ = std::move(reason);
    error_ = std::move(error);
  }
  cv_.notify_all();
}

namespace {

// Log-softmax of `row` at `id`, and the `top` best entries, in double.
void logprobs_of(std::span<const float> row, TokenId id, int top, TokenEvent* event) {
  const float max = *std::max_element(row.begin(), row.end());
  double sum = 0;
  for (float l : row) sum += std::exp(static_cast<double>(l) - max);
  const double log_sum = std::log(sum) + max;
  event->logprob = static_cast<float>(row[id] - log_sum);
  if (top <= 0) return;
  std::vector<TokenId> ids(row.size());
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<TokenId>(i);
  const size_t n = std::min<size_t>(top, ids.size());
  std::partial_sort(ids.begin(), ids.begin() + n, ids.end(),
                    [&](TokenId a, TokenId b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
  for (size_t i = 0; i < n; ++i) event->top.emplace_back(ids[i], static_cast<float>(row[ids[i]] - log_sum));
}

}  // namespace

Scheduler::Scheduler(const Model& model, const SchedulerOptions& options, Metrics* metrics)
    : model_(model), tokenizer_(model.tokenizer()), options_(options), metrics_(metrics) {}

Result<std::unique_ptr<Scheduler>> Scheduler::create(const Model& model, const SchedulerOptions& options,
                                                      Metrics* metrics) {
  if (options.n_parallel < 1) return Status::errorf("--parallel must be at least 1, not %d", options.n_parallel);
  if (options.prefill_chunk < 1) return Status::errorf("the prefill chunk must be at least 1, not %d", options.prefill_chunk);
  if (options.prompt_budget < options.prefill_chunk) {
    return Status::errorf("the prompt budget of a step (%d tokens) must hold a prefill chunk (%d)", options.prompt_budget,
                          options.prefill_chunk);
  }
  std::unique_ptr<Scheduler> s(new Scheduler(model, options, metrics));
  // Every slot's generated token always fits a step, and so does at least one prompt chunk.
  PLUMB_ASSIGN_OR_RETURN(s->group_, SessionGroup::create(model, options.session, options.n_parallel,
                                                         options.n_parallel + options.prompt_budget));
  s->slots_.resize(options.n_parallel);
  for (int i = 0; i < options.n_parallel; ++i) s->slots_[static_cast<size_t>(i)].seq = i;
  s->last_.resize(s->slots_.size());
  s->n_ctx_ = s->group_->n_ctx();
  s->thread_ = std::thread([p = s.get()] { p->loop(); });
  return s;
}

Scheduler::~Scheduler() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  for (Slot& slot : slots_) {
    if (slot.job) slot.job->finish("stop", slot.n_generated, "the server is shutting down");
  }
  for (auto& job : queue_) job->finish("stop", 0, "the server is shutting down");
}

void Scheduler::cancel_all() {
  draining_.store(true);
  {
    std::lock_guard lock(mutex_);
    for (auto& job : queue_) job->cancel();
  }
  wake_.notify_all();
}

bool Scheduler::submit(std::shared_ptr<Job> job) {
  {
    std::lock_guard lock(mutex_);
    if (draining_.load()) return false;
    const int free_slots = options_.n_parallel - busy_.load();
    if (static_cast<int>(queue_.size()) >= options_.max_queue + std::max(0, free_slots)) return false;
    queue_.push_back(std::move(job));
  }
  wake_.notify_all();
  return true;
}

Metrics::Gauges Scheduler::gauges() {
  std::lock_guard lock(mutex_);
  return {static_cast<int>(queue_.size()), busy_.load(), options_.n_parallel};
}

// How many of prompt's first tokens the slot's cache holds.
size_t Scheduler::cached_prefix(const Slot& slot, const std::vector<TokenId>& prompt) {
  return static_cast<size_t>(
      std::mismatch(prompt.begin(), prompt.end(), slot.cached.begin(), slot.cached.end()).first - prompt.begin());
}

// The free slot whose cache shares the longest prefix with `prompt`, so that a conversation's
// next turn or a shared system prompt lands where its chunks are cached already; among equals
// the one that caches least, so that a prompt that shares nothing does not evict a useful cache.
Scheduler::Slot& Scheduler::free_slot_for(const std::vector<TokenId>& prompt) {
  Slot* best = nullptr;
  size_t best_common = 0;
  for (Slot& slot : slots_) {
    if (slot.job) continue;
    const size_t common = cached_prefix(slot, prompt);
    if (best == nullptr || common > best_common ||
        (common == best_common && slot.cached.size() < best->cached.size())) {
      best = &slot, best_common = common;
    }
  }
  return *best;
}

void Scheduler::admit(Slot& slot, std::shared_ptr<Job> job) {
  slot.job = std::move(job);
  const std::vector<TokenId>& prompt = slot.job->prompt;
  // The whole chunks of the prompt that the slot's cache holds already (a chunk is cut at the
  // same place in both prompts: the same run), short of the chunk with the last token, which
  // gives the logits.
  const size_t chunk = static_cast<size_t>(options_.prefill_chunk);
  const size_t common = cached_prefix(slot, prompt);
  const size_t reused = prompt.empty() ? 0 : std::min(common / chunk, (prompt.size() - 1) / chunk) * chunk;
  group_->truncate(slot.seq, static_cast<int>(reused));
  slot.cached.resize(reused);
  slot.n_fed = reused;
  slot.n_generated = 0;
  slot.last = -1;
  slot.sampler.emplace(slot.job->params.sampling);
  for (size_t i = 0; i < reused; ++i) slot.sampler->accept(prompt[i]);
  slot.text.emplace(slot.job->params.stop);
  metrics_->add_reused_prompt_tokens(static_cast<int64_t>(reused));
  busy_.fetch_add(1);
}

void Scheduler::release(Slot& slot) {
  slot.job.reset();
  slot.sampler.reset();
  slot.text.reset();
  busy_.fetch_sub(1);
}

void Scheduler::sample_next(Slot& slot, std::span<const float> row) {
  Job& job = *slot.job;
  TokenEvent event;
  event.id = slot.sampler->sample(row);
  if (job.params.logprobs) logprobs_of(row, event.id, job.params.top_logprobs, &event);
  ++slot.n_generated;
  slot.last = event.id;
  metrics_->add_generated_tokens(1);
  if (slot.n_generated == 1) {
    metrics_->observe_time_to_first_token(std::chrono::duration<double>(Job::Clock::now() - job.arrived).count());
  }

  if (tokenizer_.is_eog(event.id)) {
    std::string rest = slot.text->flush();
    if (!rest.empty()) {
      TokenEvent tail;
      tail.text = std::move(rest);
      job.push(std::move(tail));
    }
    job.finish("stop", slot.n_generated);
    return release(slot);
  }
  event.piece = tokenizer_.token_to_piece(event.id, /*render_special=*/false);
  event.text = slot.text->push(event.piece);
  const bool stopped = slot.text->stopped();
  const bool at_limit = job.params.max_tokens >= 0 && slot.n_generated >= job.params.max_tokens;
  const bool context_full = group_->n_past(slot.seq) >= group_->n_ctx();
  if (!stopped && (at_limit || context_full)) event.text += slot.text->flush();
  job.push(std::move(event));
  if (stopped) {
    job.finish("stop", slot.n_generated);
    release(slot);
  } else if (at_limit || context_full) {
    job.finish("length", slot.n_generated);
    release(slot);
  }
}

void Scheduler::plan_step() {
  inputs_.clear();
  stepped_.clear();
  // Generated tokens first: every decoding slot steps every time.
  for (Slot& slot : slots_) {
    if (!slot.job || slot.n_fed < slot.job->prompt.size()) continue;
    TokenId& last = last_[static_cast<size_t>(slot.seq)];
    last = slot.last;
    inputs_.push_back({slot.seq, std::span<const TokenId>(&last, 1), /*generated=*/true, /*want_logits=*/true});
    stepped_.push_back(&slot);
  }
  // Then prompt chunks while the budget lasts, starting one slot further each step so that no
  // prompt waits behind the same others every time. Chunk boundaries depend on the prompt alone
  // (every prefill_chunk tokens from its start): a chunk that waits is the same chunk later.
  int budget = options_.prompt_budget;
  for (size_t k = 0; k < slots_.size(); ++k) {
    Slot& slot = slots_[(prompt_turn_ + k) % slots_.size()];
    if (!slot.job || slot.n_fed >= slot.job->prompt.size()) continue;
    const size_t n = std::min<size_t>(options_.prefill_chunk, slot.job->prompt.size() - slot.n_fed);
    if (static_cast<int>(n) > budget) break;
    budget -= static_cast<int>(n);
    const bool last_chunk = slot.n_fed + n == slot.job->prompt.size();
    inputs_.push_back({slot.seq, std::span<const TokenId>(slot.job->prompt).subspan(slot.n_fed, n),
                       /*generated=*/false, /*want_logits=*/last_chunk});
    stepped_.push_back(&slot);
  }
  prompt_turn_ = (prompt_turn_ + 1) % slots_.size();
}

void Scheduler::run_step() {
  // An input that cannot run (its prompt past the context, say) ends its own request only.
  size_t kept = 0;
  for (size_t i = 0; i < inputs_.size(); ++i) {
    Status st = group_->check(inputs_[i]);
    if (!st.ok()) {
      stepped_[i]->job->finish("stop", stepped_[i]->n_generated, st.message());
      release(*stepped_[i]);
      continue;
    }
    inputs_[kept] = inputs_[i];
    stepped_[kept] = stepped_[i];
    ++kept;
  }
  inputs_.resize(kept);
  stepped_.resize(kept);
  if (inputs_.empty()) return;

  const Status st = group_->step(inputs_);
  int generated = 0;
  for (const SessionGroup::Input& in : inputs_) generated += in.generated ? 1 : 0;
  metrics_->observe_step(generated);
  const auto n_vocab = static_cast<size_t>(tokenizer_.n_vocab());
  for (size_t i = 0; i < inputs_.size(); ++i) {
    Slot& slot = *stepped_[i];
    if (!st.ok()) {
      slot.cached.clear();  // what the failed pass left in the cache is unknown
      slot.job->finish("stop", slot.n_generated, st.message());
      release(slot);
      continue;
    }
    if (!inputs_[i].generated) {
      slot.n_fed += inputs_[i].tokens.size();
      slot.cached.insert(slot.cached.end(), inputs_[i].tokens.begin(), inputs_[i].tokens.end());
      for (TokenId id : inputs_[i].tokens) slot.sampler->accept(id);
      metrics_->add_prompt_tokens(static_cast<int64_t>(inputs_[i].tokens.size()));
      if (slot.n_fed < slot.job->prompt.size()) continue;  // more prompt next step
    }
    sample_next(slot, std::span<const float>(group_->logits(i), n_vocab));
  }
}

void Scheduler::loop() {
  while (true) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || busy_.load() > 0 || !queue_.empty(); });
      if (stop_) return;
      while (!queue_.empty() && busy_.load() < options_.n_parallel) {
        std::shared_ptr<Job> job = std::move(queue_.front());
        queue_.pop_front();
        if (job->cancelled()) {
          metrics_->count_cancelled();
          job->finish("stop", 0, "cancelled");
          continue;
        }
        Slot& slot = free_slot_for(job->prompt);
        admit(slot, std::move(job));
      }
    }

    for (Slot& slot : slots_) {
      if (!slot.job) continue;
      if (draining_.load()) slot.job->cancel();
      if (slot.job->cancelled()) {
        metrics_->count_cancelled();
        slot.job->finish("stop", slot.n_generated, "cancelled");
        release(slot);
      }
    }
    plan_step();
    run_step();
  }
}

}  // namespace plumb::serve
