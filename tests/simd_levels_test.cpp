// The whole model gives the same logits, to the bit, at every SIMD level this CPU runs: the
// matmul contracts depend on the tokens' role (a prompt run's length), never on the instruction set
// (matmul_internal.h). `plumb trace` of one prompt (one batch: contract S for the matrix
// products) at PLUMB_SIMD=scalar, avx2, avx512 and amx (levels the CPU lacks fall back to the
// best it has), compared with the scalar level's logits bit for bit.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "cli_test_util.h"
#include "gguf/gguf.h"
#include "reference_file.h"
#include "test_util.h"

namespace plumb {
namespace {

std::vector<float> traced_logits(const std::string& model, const std::string& level) {
  const std::filesystem::path out = std::filesystem::temp_directory_path() /
                                    ("plumb_simd_" + level + "_" + std::to_string(getpid()) + ".gguf");
  setenv("PLUMB_SIMD", level.c_str(), 1);
  std::string log;
  const int code = test::run_plumb("trace -m " + test::shell_quote(model) +
                                       " --tokens 1,739,338,263,8760,21103,635,24084,3192,29892,393,263,2323,767"
                                       " --taps none -t 2 -o " + test::shell_quote(out.string()),
                                   &log);
  unsetenv("PLUMB_SIMD");
  EXPECT_EQ(code, 0) << log;
  Result<std::unique_ptr<gguf::File>> trace = gguf::File::open(out.string());
  EXPECT_TRUE(trace.ok()) << (trace.ok() ? "" : trace.status().message());
  std::vector<float> logits;
  if (trace.ok()) logits = test::reference_vector<float>(**trace, "p0.logits");
  std::filesystem::remove(out);
  return logits;
}

TEST(SimdLevels, ModelLogitsAreTheSameBitsAtEveryLevel) {
  for (const char* file : {"models/austen-21m-q4_k_m.gguf", "models/austen-21m-q4_0.gguf"}) {
    PLUMB_REQUIRE_SHARED(model, file);
    const std::vector<float> scalar = traced_logits(model, "scalar");
    ASSERT_FALSE(scalar.empty());
    for (const char* level : {"avx2", "avx512", "amx"}) {
      const std::vector<float> got = traced_logits(model, level);
      ASSERT_EQ(got.size(), scalar.size()) << file << " " << level;
      EXPECT_EQ(std::memcmp(got.data(), scalar.data(), scalar.size() * sizeof(float)), 0)
          << file << ": PLUMB_SIMD=" << level << " differs from scalar";
    }
  }
}

}  // namespace
}  // namespace plumb
