// The CPU backend's attention over its threads: a generation step whose KV heads are fewer than
// the threads takes a task per (KV head, chunk) and folds the chunks afterwards
// (src/backend/cpu/attention.cpp); it must give the bits of one thread walking each row alone.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <random>
#include <vector>

#include "backend/backend.h"

namespace plumb::test {
namespace {

std::vector<float> random_values(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.5f);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

struct Case {
  int64_t n_head, n_head_kv, head_dim, prefix;
  CacheType type;
};

// One token at position `prefix` after a prefix stored as one batch: its attention output.
std::vector<float> step(int threads, const Case& c) {
  auto b = make_backend("cpu", threads);
  EXPECT_TRUE(b.ok());
  Backend& be = **b;
  const int64_t kv_width = c.n_head_kv * c.head_dim, n_ctx = c.prefix + 1;
  auto cache = be.make_kv_cache(1, n_ctx, kv_width, kv_width, c.type);
  EXPECT_TRUE(cache.ok());
  const AttentionShape shape{c.n_head, c.n_head_kv, c.head_dim, c.head_dim, 1.0f / std::sqrt(float(c.head_dim))};
  std::vector<float> out;
  for (auto [pos0, n] : {std::pair<int64_t, int64_t>{0, c.prefix}, {c.prefix, 1}}) {
    const std::vector<int32_t> ids(static_cast<size_t>(n), 0);
    const std::vector<float> k = random_values(static_cast<size_t>(n * kv_width), static_cast<uint32_t>(1 + pos0));
    const std::vector<float> v = random_values(static_cast<size_t>(n * kv_width), static_cast<uint32_t>(2 + pos0));
    const std::vector<float> q = random_values(static_cast<size_t>(n * c.n_head * c.head_dim), static_cast<uint32_t>(3 + pos0));
    be.set_batch(ids.data(), n, pos0);
    be.kv_store(**cache, 0, /*run=*/0, k.data(), v.data());
    out.assign(q.size(), -7.0f);
    be.attention(**cache, 0, /*run=*/0, q.data(), shape, out.data());
  }
  return out;
}

TEST(CpuAttention, ChunksOverThreadsGiveTheBitsOfOneThread) {
  // KV heads fewer than two threads (one: every CPU splits), and fewer than four; contexts of 2 to
  // 17 chunks; F16 and F32 caches.
  const Case cases[] = {{8, 1, 128, 700, CacheType::F16}, {6, 1, 64, 4200, CacheType::F32},
                        {32, 4, 64, 1000, CacheType::F16}, {14, 2, 40, 300, CacheType::F16}};
  for (const Case& c : cases) {
    const std::vector<float> one = step(1, c);
    for (int threads : {2, 4}) {
      const std::vector<float> many = step(threads, c);
      ASSERT_EQ(one.size(), many.size());
      for (size_t i = 0; i < one.size(); ++i) {
        ASSERT_EQ(std::bit_cast<uint32_t>(one[i]), std::bit_cast<uint32_t>(many[i]))
            << c.n_head << "/" << c.n_head_kv << " heads of " << c.head_dim << ", " << c.prefix << " cached, "
            << threads << " threads, at " << i;
      }
    }
  }
}

}  // namespace
}  // namespace plumb::test
