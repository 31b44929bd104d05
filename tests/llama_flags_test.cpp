// llama.cpp's flags where users type them (issue 22): accepted with llama.cpp's meaning, or
// refused with one line naming plumb's equivalent. Before, each was "unknown option".
#include <gtest/gtest.h>

#include "cli_test_util.h"
#include "test_util.h"

namespace plumb {
namespace {

TEST(LlamaFlags, AcceptedWithLlamaCppMeaning) {
  PLUMB_REQUIRE_SHARED(model, "models/austen-21m-q4_0.gguf");
  const std::string run = "run -m " + test::shell_quote(model) + " -p 'It is a truth' -n 4 --temp 0 -t 1 --json";
  std::string plain, out;
  ASSERT_EQ(test::run_plumb(run, &plain), 0) << plain;
  const json::Value expected = test::json_line(plain)["tokens"];
  // -ngl 0 is the CPU, -fa (alone or with a value), -b, --mlock change nothing in the result.
  for (const std::string extra : {"-ngl 0", "--n-gpu-layers 0", "-fa", "-fa on", "--flash-attn=off", "-b 2",
                                  "--mlock", "-e"}) {
    ASSERT_EQ(test::run_plumb(run + " " + extra, &out), 0) << extra << "\n" << out;
    const json::Value got = test::json_line(out)["tokens"];
    ASSERT_EQ(got.items().size(), expected.items().size()) << extra;
    for (size_t i = 0; i < got.items().size(); ++i) EXPECT_EQ(got[i].as_number(), expected[i].as_number()) << extra;
  }
  // chat is always a conversation: -cnv and -i are accepted.
  EXPECT_EQ(test::run_plumb("chat -m " + test::shell_quote(model) + " -cnv -i -n 2 -t 1 </dev/null", &out), 0) << out;
}

TEST(LlamaFlags, RefusedWithPlumbsEquivalent) {
  PLUMB_REQUIRE_SHARED(model, "models/austen-21m-q4_0.gguf");
  const std::string run = "run -m " + test::shell_quote(model) + " -p 'It is' -n 1 -t 1";
  std::string out;
  EXPECT_EQ(test::run_plumb(run + " -cnv", &out), 2) << out;
  EXPECT_NE(out.find("for a conversation use plumb chat"), std::string::npos) << out;
  EXPECT_EQ(test::run_plumb(run + " -i", &out), 2) << out;
  EXPECT_EQ(test::run_plumb(run + " -ngl 0 --backend cuda", &out), 2) << out;
  EXPECT_NE(out.find("-ngl 0 means --backend cpu, which contradicts --backend cuda"), std::string::npos) << out;
  EXPECT_EQ(test::run_plumb(run + " -fa maybe", &out), 2) << out;
}

// -ngl N>0 means the GPU: on a machine without one, the same words as plumb check.
TEST(LlamaFlags, GpuLayersWithoutAGpuSayWhatCheckSays) {
  PLUMB_REQUIRE_SHARED(model, "models/austen-21m-q4_0.gguf");
  std::string check, run;
  if (test::run_plumb("check -m " + test::shell_quote(model) + " -t 1", &check) != 77) {
    GTEST_SKIP() << "a CUDA device is present";
  }
  EXPECT_EQ(test::run_plumb("run -m " + test::shell_quote(model) + " -p 'It is' -n 1 -t 1 -ngl 99", &run), 1) << run;
  const std::string why = check.substr(check.find(": ") + 2, check.find(": nothing to compare") - check.find(": ") - 2);
  EXPECT_NE(run.find(why), std::string::npos) << run << "\nvs\n" << check;
}

}  // namespace
}  // namespace plumb
