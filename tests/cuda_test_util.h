// The GPU tests' way to get a CUDA backend, or to skip visibly (in CI and on machines without a
// GPU, the test names the reason), and to move buffers to and from it.
#pragma once

#include <gtest/gtest.h>

#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"

namespace plumb::test {

// The CUDA backend, or null with *why saying why there is none.
inline std::unique_ptr<Backend> cuda_or_skip_reason(std::string* why) {
  auto b = make_backend("cuda", 1);
  if (!b.ok()) {
    *why = b.status().message();
    return nullptr;
  }
  return std::move(b.value());
}

// A backend buffer holding `host`.
inline float* put(Backend& b, const std::vector<float>& host) {
  auto buf = b.alloc(static_cast<int64_t>(host.size()));
  EXPECT_TRUE(buf.ok()) << buf.status().message();
  b.upload(host.data(), static_cast<int64_t>(host.size()), *buf);
  return *buf;
}
// A buffer of NaNs, so that a kernel that skips an element shows.
inline float* poisoned(Backend& b, size_t n) {
  return put(b, std::vector<float>(n, std::numeric_limits<float>::quiet_NaN()));
}
// n values of a backend buffer, on the host.
inline std::vector<float> get(Backend& b, const float* buf, size_t n) {
  std::vector<float> scratch;
  const float* h = b.host_view(buf, static_cast<int64_t>(n), scratch);
  std::vector<float> out(h, h + n);
  EXPECT_TRUE(b.take_error().ok());
  return out;
}

}  // namespace plumb::test

// Declares `var`, the CUDA backend, or skips the test with the reason.
#define PLUMB_REQUIRE_CUDA(var)                                                 \
  std::string var##_why;                                                        \
  std::unique_ptr<Backend> var = ::plumb::test::cuda_or_skip_reason(&var##_why); \
  if (var == nullptr) GTEST_SKIP() << "no CUDA backend here, GPU test skipped: " << var##_why
