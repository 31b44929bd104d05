// `plumb chat` and `plumb bench` from the command line: input piped in, one line per user turn.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "chat_smollm2_util.h"
#include "cli_test_util.h"
#include "test_util.h"

namespace plumb {
namespace {

// Commands run with -t 1: ctest runs tests side by side, one per core.

std::string write_input(const std::string& name, const std::string& text) {
  const std::string path = test::temp_dir(name) + "/input.txt";
  std::ofstream(path) << text;
  return path;
}

TEST(ChatCli, TwoTurnsThroughTheSmolLM2Template) {
  PLUMB_REQUIRE_SMOLLM2(model);
  const std::string input =
      write_input("chat-two-turns", "What is the capital of France?\nAnd of Italy?\n");
  std::string out;
  ASSERT_EQ(
      test::run_plumb(
          "chat -m " + test::shell_quote(model) + " --temp 0 -n 6 -c 512 -t 1 < " + input, &out),
      0)
      << out;
  EXPECT_NE(out.find("template chatml (with its default system message)"), std::string::npos)
      << out;
  // Two replies, each ended by a newline, then the closing timing summary.
  EXPECT_NE(out.find("generation"), std::string::npos) << out;
}

TEST(ChatCli, NamedTemplateOverrideAndUsageErrors) {
  PLUMB_REQUIRE_SHARED(model, "models/austen-21m-f16.gguf");
  const std::string input = write_input("chat-plain", "It is a truth\n");
  std::string out;
  // austen has no chat template: plain completion.
  ASSERT_EQ(test::run_plumb(
                "chat -m " + test::shell_quote(model) + " --temp 0 -n 8 -t 1 < " + input, &out),
            0)
      << out;
  EXPECT_NE(out.find("no chat template"), std::string::npos) << out;
  ASSERT_EQ(test::run_plumb("chat -m " + test::shell_quote(model) +
                                " --chat-template zephyr --temp 0 -n 4 -t 1 < " + input,
                            &out),
            0)
      << out;
  EXPECT_NE(out.find("template zephyr"), std::string::npos) << out;
  EXPECT_EQ(test::run_plumb(
                "chat -m " + test::shell_quote(model) + " --chat-template nope < " + input, &out),
            2)
      << out;
  EXPECT_NE(out.find("chatml"), std::string::npos) << out;  // lists the known names
}

TEST(BenchCli, PrintsPromptAndGenerationRows) {
  PLUMB_REQUIRE_SHARED(model, "models/austen-21m-f16.gguf");
  std::string out;
  ASSERT_EQ(test::run_plumb("bench -m " + test::shell_quote(model) + " -p 16 -n 4 -r 2 -t 1", &out),
            0)
      << out;
  EXPECT_NE(out.find("| pp16 |"), std::string::npos) << out;
  EXPECT_NE(out.find("| tg4 |"), std::string::npos) << out;
  EXPECT_EQ(test::run_plumb("bench -m " + test::shell_quote(model) + " -r 0", &out), 2) << out;
}

// --profile: after each test's row, its ops with their share of the time; the shares add up to
// the whole (the row "other" holds the time between ops).
TEST(BenchCli, ProfilePrintsEachOpsShare) {
  PLUMB_REQUIRE_SHARED(model, "models/austen-21m-f16.gguf");
  std::string out;
  ASSERT_EQ(test::run_plumb("bench -m " + test::shell_quote(model) + " -p 16 -n 4 -r 1 -t 1 --profile", &out), 0)
      << out;
  for (const char* row : {"| rms_norm | 17 |", "| prep qkv | 8 |", "| product qkv | 8 |", "| product output | 1 |",
                          "| attention | 8 |", "| product output | 4 |", "| other (between ops) |"}) {
    EXPECT_NE(out.find(row), std::string::npos) << row << "\n" << out;
  }
  // Rows of the profile tables: | op | calls | ms | share | working |.
  double share = 0.0;
  int tables = 0;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    std::vector<std::string> fields;
    std::istringstream cells(line);
    for (std::string cell; std::getline(cells, cell, '|');) fields.push_back(cell);
    if (fields.size() != 6) continue;
    if (fields[1] == " op ") ++tables;
    if (fields[4].find('%') != std::string::npos) share += std::stod(fields[4]);
  }
  EXPECT_EQ(tables, 2) << out;
  EXPECT_NEAR(share, 200.0, 1.0) << out;  // two tables of 100 %
}

}  // namespace
}  // namespace plumb
