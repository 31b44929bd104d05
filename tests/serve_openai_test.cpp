// plumb serve driven by the real openai Python client: tests/tools/serve_openai_test.py starts
// the server on a free loopback port, runs one section against it and stops it. Skipped,
// visibly, when the server is not built, the openai module is missing or SmolLM2 cannot be had.
#include <gtest/gtest.h>

#include <string>

#include "cli_test_util.h"
#include "test_models.h"
#include "test_util.h"

namespace plumb::test {
namespace {

int run_section(const std::string& model, const std::string& section, std::string* output) {
  return run_command("python3 " + shell_quote(std::string(PLUMB_SOURCE_DIR) + "/tests/tools/serve_openai_test.py") +
                         " --plumb " + shell_quote(PLUMB_BINARY) + " --model " + shell_quote(model) + " " + section,
                     output);
}

void run_or_skip(const std::string& section) {
#ifndef PLUMB_HAVE_SERVE
  GTEST_SKIP() << "plumb serve is not built (needs libcpp-httplib-dev and nlohmann-json3-dev)";
#endif
  PLUMB_REQUIRE_SMOLLM2(model);
  std::string out;
  const int code = run_section(model, section, &out);
  if (code == 77) GTEST_SKIP() << out;
  EXPECT_EQ(code, 0) << out;
}

// Chat and completions, streamed and not, stop strings, logprobs, seeds, models, health,
// metrics; SmolLM2 answers that Paris is the capital of France.
TEST(ServeOpenAI, ChatCompletionsStreamingStopLogprobs) { run_or_skip("basics"); }

// Wrong key, 10 MB body, invalid UTF-8, malformed JSON and wrong types, a prompt over the
// context, max_tokens of 10^9, a silent client: each gets its documented answer.
TEST(ServeOpenAI, BadInputGetsItsDocumentedAnswer) { run_or_skip("errors"); }

// A client killed mid-stream frees its slot at once; a full queue answers 503 + Retry-After.
TEST(ServeOpenAI, KilledClientFreesItsSlot) { run_or_skip("disconnect"); }

// 16 concurrent clients (chat and completion, greedy and seeded, prompts of 5 to ~300 tokens)
// get exactly the tokens and logprobs each gets alone.
TEST(ServeOpenAI, SixteenConcurrentClientsGetWhatEachGetsAlone) { run_or_skip("invariance"); }

// A request that begins with whole chunks of its slot's last prompt (a shared system prompt)
// starts after them and gets the bits it gets in a slot that shares nothing with it.
TEST(ServeOpenAI, ReusedPromptChunksGiveTheSameBits) { run_or_skip("prefix"); }

// A request goes to the free slot that caches the longest prefix of its prompt; one that shares
// nothing to the slot that caches least.
TEST(ServeOpenAI, RequestGoesToTheSlotThatCachesItsPrefix) { run_or_skip("slots"); }

}  // namespace
}  // namespace plumb::test
