// plumb chat on a terminal edits the line (arrow keys used to reach the model as escape codes)
// and keeps a history (libedit). The terminal is script(1)'s pseudo-terminal.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "cli_test_util.h"
#include "test_util.h"

namespace plumb {
namespace {

TEST(ChatLineEditing, ArrowKeysEditTheLineAndHistoryIsKept) {
  PLUMB_REQUIRE_SHARED(model, "models/austen-21m-q4_0.gguf");
  if (std::system("command -v script >/dev/null 2>&1") != 0) GTEST_SKIP() << "no script(1) for a terminal";
  const std::string home = test::temp_dir("chat-tty");
  // "It iz", two steps left, delete the 'i', type 's', Enter; then end of input.
  const std::string keys = home + "/keys";
  std::ofstream(keys, std::ios::binary) << "It iz\x1b[D\x1b[D\x1b[3~s\r";
  // Keys typed before libedit has the terminal could be flushed: wait for the prompt first.
  const std::string cmd = "(sleep 2; cat " + keys + "; sleep 4; printf '\\004') | HOME=" + home +
                          " timeout 60 script -qec " +
                          test::shell_quote(std::string(PLUMB_BINARY) + " chat -m " + test::shell_quote(model) +
                                            " -n 2 --temp 0 -t 1") +
                          " /dev/null >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  std::ifstream in(home + "/.plumb_history", std::ios::binary);
  ASSERT_TRUE(in) << "no history file";
  std::stringstream ss;
  ss << in.rdbuf();
  // libedit's history format writes a space as \040.
  EXPECT_NE(ss.str().find("It\\040sz"), std::string::npos) << ss.str();
  EXPECT_EQ(ss.str().find('\x1b'), std::string::npos) << ss.str();
}

}  // namespace
}  // namespace plumb
