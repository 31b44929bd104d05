#include "sample/sampler.h"

#include <algorithm>
#include <chrono>
#include <cmath>

namespace plumb {

namespace {

bool by_logit_desc(const Candidate& a, const Candidate& b) { return a.logit > b.logit; }

void sort_candidates(Candidates& c) {
  if (c.sorted) return;
  std::stable_sort(c.items.begin(), c.items.end(), by_logit_desc);
  c.sorted = true;
}

float max_logit(const Candidates& c) {
  float best = -INFINITY;
  for (const Candidate& x : c.items) best = std::max(best, x.logit);
  return best;
}

uint32_t resolve_seed(uint32_t seed) {
  if (seed != kRandomSeed) return seed;
  std::random_device device;
  // A random_device without entropy is a fixed sequence; mix in the clock then.
  if (device.entropy() == 0) {
    return static_cast<uint32_t>(std::chrono::system_clock::now().time_since_epoch().count());
  }
  return device();
}

}  // namespace

Candidates Candidates::from_logits(std::span<const float> logits) {
  Candidates c;
  c.items.reserve(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) {
    c.items.push_back({static_cast<TokenId>(i), logits[i], 0.0f});
  }
  return c;
}

void RecentTokens::push(TokenId id) {
  if (window_ <= 0) return;
  if (static_cast<int>(order_.size()) == window_) {
    const TokenId oldest = order_.front();
    order_.pop_front();
    if (--counts_[oldest] == 0) counts_.erase(oldest);
  }
  order_.push_back(id);
  ++counts_[id];
}

int RecentTokens::count(TokenId id) const {
  const auto it = counts_.find(id);
  return it == counts_.end() ? 0 : it->second;
}

void RecentTokens::clear() {
  order_.clear();
  counts_.clear();
}

void apply_penalties(Candidates& c, const RecentTokens& recent, float repeat_penalty,
                     float frequency_penalty, float presence_penalty) {
  if (repeat_penalty == 1.0f && frequency_penalty == 0.0f && presence_penalty == 0.0f) return;
  for (Candidate& x : c.items) {
    const int n = recent.count(x.id);
    if (n == 0) continue;
    // Dividing a negative logit would make the token more likely; multiply it instead.
    x.logit = x.logit <= 0.0f ? x.logit * repeat_penalty : x.logit / repeat_penalty;
    x.logit -= static_cast<float>(n) * frequency_penalty + presence_penalty;
  }
  c.sorted = false;
}

void apply_top_k(Candidates& c, int k) {
  if (k <= 0) return;
  const size_t keep = std::min(static_cast<size_t>(k), c.items.size());
  if (!c.sorted) {
    std::partial_sort(c.items.begin(), c.items.begin() + static_cast<ptrdiff_t>(keep),
                      c.items.end(), by_logit_desc);
    c.sorted = true;
  }
  c.items.resize(keep);
}

void apply_top_p(Candidates& c, float p, size_t min_keep) {
  if (p >= 1.0f || c.items.empty()) return;
  sort_candidates(c);
  softmax(c);
  float mass = 0.0f;
  size_t keep = c.items.size();
  for (size_t i = 0; i < c.items.size(); ++i) {
    mass += c.items[i].p;
    if (mass >= p && i + 1 >= min_keep) {
      keep = i + 1;
      break;
    }
  }
  c.items.resize(keep);
}

void apply_min_p(Candidates& c, float p, size_t min_keep) {
  if (p <= 0.0f || c.items.empty()) return;
  // p_i >= p * p_max  <=>  logit_i >= logit_max + log(p): no softmax needed.
  const float threshold = max_logit(c) + std::log(p);
  size_t kept = 0;
  for (const Candidate& x : c.items) kept += x.logit >= threshold ? 1 : 0;
  if (kept >= std::max<size_t>(min_keep, 1)) {
    std::erase_if(c.items, [threshold](const Candidate& x) { return x.logit < threshold; });
    return;
  }
  // Too few pass: keep the min_keep best instead.
  sort_candidates(c);
  c.items.resize(std::min(min_keep, c.items.size()));
}

void apply_temperature(Candidates& c, float t) {
  if (c.items.empty()) return;
  if (t <= 0.0f) {
    const Candidate best = c.items[argmax(c)];
    c.items.assign(1, best);
    c.sorted = true;
    return;
  }
  for (Candidate& x : c.items) x.logit /= t;
}

void softmax(Candidates& c) {
  if (c.items.empty()) return;
  const float top = max_logit(c);
  double sum = 0.0;
  for (Candidate& x : c.items) {
    x.p = std::exp(x.logit - top);
    sum += x.p;
  }
  for (Candidate& x : c.items) x.p = static_cast<float>(x.p / sum);
}

size_t draw(Candidates& c, std::mt19937& rng) {
  if (c.items.size() <= 1) {
    if (!c.items.empty()) c.items[0].p = 1.0f;
    return 0;
  }
  const float top = max_logit(c);
  double total = 0.0;
  for (Candidate& x : c.items) {
    x.p = std::exp(x.logit - top);
    total += x.p;
  }
  // One uniform number in [0, 1) scaled to the unnormalized mass; the first candidate whose
  // running sum reaches it wins.
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  const double target = total * uniform(rng);
  double running = 0.0;
  size_t chosen = c.items.size() - 1;
  for (size_t i = 0; i < c.items.size(); ++i) {
    running += c.items[i].p;
    if (running >= target) {
      chosen = i;
      break;
    }
  }
  for (Candidate& x : c.items) x.p = static_cast<float>(x.p / total);
  return chosen;
}

size_t argmax(const Candidates& c) {
  size_t best = 0;
  for (size_t i = 1; i < c.items.size(); ++i) {
    if (c.items[i].logit > c.items[best].logit) best = i;
  }
  return best;
}

Sampler::Sampler(const SamplingParams& params)
    : params_(params),
      seed_(resolve_seed(params.seed)),
      rng_(seed_),
      recent_(params.repeat_last_n) {}

TokenId Sampler::sample(std::span<const float> logits) {
  Candidates c = Candidates::from_logits(logits);
  TokenId chosen = 0;
  if (!c.items.empty()) {
    if (params_.repeat_last_n != 0) {
      apply_penalties(c, recent_, params_.repeat_penalty, params_.frequency_penalty,
                      params_.presence_penalty);
    }
    if (params_.temperature <= 0.0f) {
      // Greedy: the filters below always keep the best candidate, so skip them.
      chosen = c.items[argmax(c)].id;
    } else {
      apply_top_k(c, params_.top_k);
      apply_top_p(c, params_.top_p, params_.min_keep);
      apply_min_p(c, params_.min_p, params_.min_keep);
      apply_temperature(c, params_.temperature);
      chosen = c.items[draw(c, rng_)].id;
    }
  }
  accept(chosen);
  return chosen;
}

void Sampler::accept(TokenId id) { recent_.push(id); }

void Sampler::reset() {
  recent_.clear();
  rng_.seed(seed_);
}

}  // namespace plumb
