// NaN is never an answer (issue 22): a model with NaN in one weight generated token 0 over and
// over and `plumb ppl --json` printed {"ppl":-nan,...} with exit 0. Now run and ppl stop with
// exit 1 naming the first tap where the values stop being finite, --check-tensors names the
// tensor at load, and with --json the error is a JSON object on stdout.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <filesystem>

#include "cli_test_util.h"
#include "gguf/gguf.h"
#include "test_util.h"
#include "model/nonfinite.h"

namespace plumb {
namespace {

// austen-21m-f16 with row 0 of blk.1.attn_q.weight set to NaN; empty when it cannot be made.
std::string poisoned_model() {
  static std::string path = [] {
    const std::string source = test::shared_path("models/austen-21m-f16.gguf");
    if (source.empty()) return std::string();
    auto file = gguf::File::open(source);
    if (!file.ok()) return std::string();
    gguf::Writer w;
    w.copy_metadata_from(**file);
    for (const gguf::TensorInfo& t : (*file)->tensors()) {
      std::vector<uint8_t> bytes(t.data, t.data + t.nbytes);
      if (t.name == "blk.1.attn_q.weight") {
        if (t.type != TensorType::F16) return std::string();
        const uint16_t nan = 0x7E00;
        for (int64_t i = 0; i < t.ne[0]; ++i) std::memcpy(bytes.data() + 2 * i, &nan, 2);
      }
      std::vector<int64_t> ne(t.ne, t.ne + t.n_dims);
      if (!w.add_tensor(t.name, t.type, ne, bytes.data(), bytes.size()).ok()) return std::string();
    }
    const std::string out = test::temp_dir("nan-model") + "/nan.gguf";
    return w.write(out).ok() ? out : std::string();
  }();
  return path;
}

TEST(NonFinite, FirstNonFiniteIndex) {
  const float ok[] = {1, 2, 3};
  const float bad[] = {1, 2, std::numeric_limits<float>::infinity(), std::nanf("")};
  EXPECT_EQ(trace::first_nonfinite(ok, 3), -1);
  EXPECT_EQ(trace::first_nonfinite(bad, 4), 2);
}

TEST(NonFinite, RunStopsNamingTheFirstTap) {
  const std::string model = poisoned_model();
  if (model.empty()) GTEST_SKIP() << "austen-21m-f16 not available";
  std::string out;
  EXPECT_EQ(test::run_plumb("run -m " + test::shell_quote(model) + " -p 'It is a truth' -n 4 -t 1", &out), 1) << out;
  EXPECT_NE(out.find("non-finite logits"), std::string::npos) << out;
  EXPECT_NE(out.find("the first non-finite value is at tap blk.1.q "), std::string::npos) << out;
  // --json: the error is a JSON object on stdout.
  EXPECT_EQ(test::run_plumb("run -m " + test::shell_quote(model) + " -p 'It is a truth' -n 4 -t 1 --json 2>/dev/null",
                            &out),
            1);
  const json::Value j = test::json_line(out);
  EXPECT_NE(j["error"].as_string().find("blk.1.q"), std::string::npos) << out;
  EXPECT_EQ(j["exit_code"].as_number(), 1);
}

TEST(NonFinite, PplJsonIsAnErrorObjectNotNan) {
  const std::string model = poisoned_model();
  PLUMB_REQUIRE_SHARED(text, "text/pp-heldout.txt");
  if (model.empty()) GTEST_SKIP() << "austen-21m-f16 not available";
  std::string out;
  EXPECT_EQ(test::run_plumb("ppl -m " + test::shell_quote(model) + " -f " + test::shell_quote(text) +
                                " -c 32 --chunks 2 -t 1 --json 2>/dev/null",
                            &out),
            1)
      << out;
  EXPECT_EQ(out.find("{\"ppl\":"), std::string::npos) << out;  // no {"ppl":-nan,...}
  const json::Value j = test::json_line(out);
  EXPECT_NE(j["error"].as_string().find("blk.1.q"), std::string::npos) << out;
}

TEST(NonFinite, CheckTensorsNamesTheTensorAtLoad) {
  const std::string model = poisoned_model();
  if (model.empty()) GTEST_SKIP() << "austen-21m-f16 not available";
  std::string out;
  EXPECT_EQ(test::run_plumb("run -m " + test::shell_quote(model) + " -p 'It is' -n 1 -t 1 --check-tensors", &out),
            1)
      << out;
  EXPECT_NE(out.find("tensor 'blk.1.attn_q.weight' (F16"), std::string::npos) << out;
  EXPECT_NE(out.find("holds NaN at row 0, element 0"), std::string::npos) << out;
  EXPECT_EQ(test::run_plumb("trace -m " + test::shell_quote(model) + " -p 'It is' -t 1 --check-tensors -o " +
                                test::temp_dir("nan-trace") + "/t.gguf",
                            &out),
            1)
      << out;
  EXPECT_NE(out.find("tensor 'blk.1.attn_q.weight'"), std::string::npos) << out;
  PLUMB_REQUIRE_SHARED(good, "models/austen-21m-q4_k_m.gguf");
  EXPECT_EQ(test::run_plumb("run -m " + test::shell_quote(good) + " -p 'It is' -n 1 -t 1 --check-tensors", &out), 0)
      << out;
}

}  // namespace
}  // namespace plumb
