// llama.cpp's flags where users type them (issue 22): accepted with llama.cpp's meaning, or
// refused with one line naming plumb's equivalent. Before, each was "unknown option".
#include <gtest/gtest.h>

#include <fstream>
#include <vector>

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
                                  "-ub 3", "-b 2048 -ub 5", "--mlock", "-e", "--no-escape", "-t -1",
                                  "--temp -1", "--temperature 0", "--top-k -5", "-ngl auto", "-ngl -1"}) {
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

// run's prompt as llama.cpp's: escapes processed unless --no-escape, -f's final newline dropped.
TEST(LlamaFlags, PromptEscapesAndFileAsLlamaCpp) {
  PLUMB_REQUIRE_SHARED(model, "models/austen-21m-q4_0.gguf");
  const std::string run = "run -m " + test::shell_quote(model) + " -n 1 --temp 0 -t 1 --json";
  auto prompt_tokens = [&](const std::string& args) {
    std::string out;
    EXPECT_EQ(test::run_plumb(run + " " + args, &out), 0) << args << "\n" << out;
    std::vector<double> ids;
    for (const json::Value& t : test::json_line(out)["prompt_tokens"].items()) ids.push_back(t.as_number());
    return ids;
  };
  const auto newline = prompt_tokens("-p \"$(printf 'It is\\na truth')\"");
  EXPECT_EQ(prompt_tokens("-p 'It is\\na truth'"), newline);
  EXPECT_NE(prompt_tokens("-p 'It is\\na truth' --no-escape"), newline);
  const std::string file = test::temp_dir("llama_flags_prompt") + "/prompt.txt";
  std::ofstream(file) << "It is\\na truth\n";
  EXPECT_EQ(prompt_tokens("-f " + test::shell_quote(file)), newline);
}

// -ngl all is the GPU, as -ngl 99; a word that is not auto or all is refused by name.
TEST(LlamaFlags, GpuLayersWords) {
  PLUMB_REQUIRE_SHARED(model, "models/austen-21m-q4_0.gguf");
  const std::string run = "run -m " + test::shell_quote(model) + " -p 'It is' -n 1 -t 1";
  std::string out;
  EXPECT_EQ(test::run_plumb(run + " -ngl all --backend cpu", &out), 2) << out;
  EXPECT_NE(out.find("-ngl all means --backend cuda, which contradicts --backend cpu"), std::string::npos) << out;
  EXPECT_EQ(test::run_plumb(run + " -ngl some", &out), 2) << out;
  EXPECT_NE(out.find("-ngl must be a number of layers, auto or all, not 'some'"), std::string::npos) << out;
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
