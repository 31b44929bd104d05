// `plumb run` end to end on austen-21m-f16: the prompt tokens and the greedy continuation equal
// llama.cpp's (up to the first near-tie, margin below tau = 0.01 for this model), and the
// command line behaves (exit codes, --json).
#include <gtest/gtest.h>

#include <algorithm>

#include "cli_test_util.h"
#include "gguf/gguf.h"
#include "reference_file.h"
#include "test_util.h"
#include "util/json_value.h"

namespace plumb {
namespace {

// Commands run with -t 1: ctest runs tests side by side, one per core.

std::vector<int32_t> ints(const json::Value& array) {
  std::vector<int32_t> out;
  for (const json::Value& v : array.items()) out.push_back(static_cast<int32_t>(v.as_number()));
  return out;
}

TEST(RunCli, GreedyAustenMatchesLlamaCppReference) {
  PLUMB_REQUIRE_SHARED(model, "models/austen-21m-f16.gguf");
  PLUMB_REQUIRE_SHARED(ref_path, "ref/austen-21m-f16.gguf");
  Result<std::unique_ptr<gguf::File>> ref = gguf::File::open(ref_path);
  ASSERT_TRUE(ref.ok()) << ref.status().message();
  constexpr float kTau = 0.01f;  // ../shared/ref/README.md, austen-21m-f16
  for (const std::string p : {"p0", "p1", "p2"}) {
    Result<std::string> prompt = (*ref)->get_string("ref." + p + ".prompt");
    ASSERT_TRUE(prompt.ok());
    const auto tokens = test::reference_vector<int32_t>(**ref, p + ".tokens");
    const auto greedy = test::reference_vector<int32_t>(**ref, p + ".greedy");
    const auto margins = test::reference_vector<float>(**ref, p + ".greedy_margin");
    ASSERT_FALSE(greedy.empty());

    std::string out;
    const int code =
        test::run_plumb("run -m " + test::shell_quote(model) + " -p " + test::shell_quote(*prompt) +
                            " --temp 0 -n 32 -c 512 -t 1 --json",
                        &out);
    ASSERT_EQ(code, 0) << out;
    const json::Value j = test::json_line(out);
    EXPECT_EQ(ints(j["prompt_tokens"]), tokens) << p;
    const std::vector<int32_t> got = ints(j["tokens"]);
    const size_t n = test::steps_above_margin(margins, kTau);
    ASSERT_GE(got.size(), n) << p;
    EXPECT_EQ(std::vector<int32_t>(got.begin(), got.begin() + static_cast<ptrdiff_t>(n)),
              std::vector<int32_t>(greedy.begin(), greedy.begin() + static_cast<ptrdiff_t>(n)))
        << p << ": first " << n << " greedy steps (margin >= " << kTau << ")";
    EXPECT_GT(j["timings"]["predicted_per_second"].as_number(), 0.0);
  }
}

// --no-mmap reads the file into memory instead of mapping it: the same bytes, the same tokens.
TEST(RunCli, NoMmapGivesTheSameTokens) {
  PLUMB_REQUIRE_SHARED(model, "models/austen-21m-q4_k_m.gguf");
  std::string mapped, read;
  const std::string cmd = "run -m " + test::shell_quote(model) + " -p 'It is a truth' --temp 0 -n 16 -t 1 --json";
  ASSERT_EQ(test::run_plumb(cmd, &mapped), 0) << mapped;
  ASSERT_EQ(test::run_plumb(cmd + " --no-mmap", &read), 0) << read;
  EXPECT_EQ(ints(test::json_line(read)["tokens"]), ints(test::json_line(mapped)["tokens"]));
}

// ../shared/models/README.md: greedy from BOS + "It is a truth universally acknowledged".
TEST(RunCli, GreedyTextOfTheModelsReadme) {
  PLUMB_REQUIRE_SHARED(model, "models/austen-21m-f16.gguf");
  std::string out;
  ASSERT_EQ(test::run_plumb("run -m " + test::shell_quote(model) +
                                " -p 'It is a truth universally acknowledged' --temp 0 -n 32 -t 1",
                            &out),
            0)
      << out;
  // The model writes the hard line breaks of its Gutenberg training text; the README shows
  // the text reflowed.
  std::replace(out.begin(), out.end(), '\n', ' ');
  EXPECT_EQ(
      out.rfind(". I have no idea of it. I am sure I am not at all afraid of being excused.", 0),
      0u)
      << out;
}

TEST(RunCli, StopStringAndExitCodes) {
  PLUMB_REQUIRE_SHARED(model, "models/austen-21m-f16.gguf");
  std::string out;
  ASSERT_EQ(test::run_plumb("run -m " + test::shell_quote(model) +
                                " -p 'It is a truth universally acknowledged' --temp 0 -n 32 "
                                "--stop ' am' -t 1 --json",
                            &out),
            0)
      << out;
  const json::Value j = test::json_line(out);
  EXPECT_EQ(j["text"].as_string(), ". I\nhave no idea of it. I");
  EXPECT_EQ(j["stop_reason"].as_string(), "stop");

  EXPECT_EQ(test::run_plumb("run -p hi", &out), 2) << out;  // no model: usage error
  EXPECT_EQ(test::run_plumb("run -m " + test::shell_quote(model), &out), 2) << out;  // no prompt
  EXPECT_EQ(test::run_plumb("run -m /nonexistent.gguf -p hi", &out), 1) << out;
  EXPECT_NE(out.find("/nonexistent.gguf"), std::string::npos) << out;
  EXPECT_EQ(test::run_plumb("run -m " + test::shell_quote(model) + " -p hi --cache-type q8", &out),
            2)
      << out;
}

TEST(RunCli, SameSeedSameText) {
  PLUMB_REQUIRE_SHARED(model, "models/austen-21m-f16.gguf");
  auto sample = [&](int seed) {
    std::string out;
    EXPECT_EQ(
        test::run_plumb("run -m " + test::shell_quote(model) +
                            " -p 'Mr. Darcy' -t 1 -n 12 --seed " + std::to_string(seed) + " --json",
                        &out),
        0)
        << out;
    return ints(test::json_line(out)["tokens"]);
  };
  const std::vector<int32_t> a = sample(42);
  EXPECT_EQ(a, sample(42));
  EXPECT_NE(a, sample(43));
}

}  // namespace
}  // namespace plumb
