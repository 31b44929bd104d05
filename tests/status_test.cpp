#include <gtest/gtest.h>

#include "util/status.h"
#include "util/thread_pool.h"

namespace plumb {
namespace {

Result<int> half(int x) {
  if (x % 2 != 0) return Status::errorf("%d is odd", x);
  return x / 2;
}

Status quarter(int x, int* out) {
  PLUMB_ASSIGN_OR_RETURN(int h, half(x));
  PLUMB_ASSIGN_OR_RETURN(int q, half(h));
  *out = q;
  return Status();
}

TEST(Status, CarriesMessages) {
  int q = 0;
  EXPECT_TRUE(quarter(8, &q).ok());
  EXPECT_EQ(q, 2);
  Status s = quarter(6, &q);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "3 is odd");
  EXPECT_EQ(s.with_context("quartering").message(), "quartering: 3 is odd");
}

TEST(ThreadPool, CoversEveryIndexOnce) {
  ThreadPool pool(3);
  for (int round = 0; round < 200; ++round) {
    std::vector<int> hits(1000, 0);
    pool.parallel_for(1000, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
    });
    for (int h : hits) ASSERT_EQ(h, 1);
  }
}

}  // namespace
}  // namespace plumb
