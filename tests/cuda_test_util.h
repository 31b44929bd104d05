// The GPU tests' way to get a CUDA backend, or to skip visibly (in CI and on machines without a
// GPU, the test names the reason).
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

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

}  // namespace plumb::test

// Declares `var`, the CUDA backend, or skips the test with the reason.
#define PLUMB_REQUIRE_CUDA(var)                                                 \
  std::string var##_why;                                                        \
  std::unique_ptr<Backend> var = ::plumb::test::cuda_or_skip_reason(&var##_why); \
  if (var == nullptr) GTEST_SKIP() << "no CUDA backend here, GPU test skipped: " << var##_why
