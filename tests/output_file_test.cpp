// No command destroys a file it did not mean to write (util/output_file.h): an output that is
// an input is refused before any work, outputs appear only complete, and the temporary file
// goes away on failure and on SIGINT/SIGTERM.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli_test_util.h"
#include "test_util.h"
#include "util/output_file.h"
#include "util/sha256.h"

namespace plumb {
namespace {

namespace fs = std::filesystem;

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_all(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::string sha_of(const std::string& path) {
  const std::string bytes = read_all(path);
  return sha256_hex(bytes.data(), bytes.size());
}

// Files in `dir` whose name contains ".tmp".
std::vector<std::string> temp_files(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().find(".tmp") != std::string::npos) out.push_back(e.path().string());
  }
  return out;
}

TEST(OutputFile, RefusesAnInputThroughNameSymlinkAndHardLink) {
  const std::string dir = test::temp_dir("out-same");
  const std::string in = dir + "/in.gguf";
  write_all(in, "model");
  fs::create_symlink(in, dir + "/link.gguf");
  fs::create_hard_link(in, dir + "/hard.gguf");
  for (const std::string out : {in, dir + "/link.gguf", dir + "/hard.gguf", dir + "/./in.gguf"}) {
    Status s = check_output_path(out, {"", dir + "/other", in});
    ASSERT_FALSE(s.ok()) << out;
    EXPECT_NE(s.message().find("is the same file as the input " + in), std::string::npos) << s.message();
  }
  EXPECT_TRUE(check_output_path(dir + "/new.gguf", {in}).ok());
}

TEST(OutputFile, RefusesDirectoriesDanglingLinksAndMissingDirectories) {
  const std::string dir = test::temp_dir("out-odd");
  fs::create_symlink(dir + "/nowhere", dir + "/dangling");
  Status s = check_output_path(dir, {});
  EXPECT_NE(s.message().find("is a directory"), std::string::npos) << s.message();
  s = check_output_path(dir + "/dangling", {});
  EXPECT_NE(s.message().find("symbolic link to a file that does not exist"), std::string::npos) << s.message();
  s = check_output_path(dir + "/no/such/dir/x.gguf", {});
  EXPECT_NE(s.message().find("does not exist"), std::string::npos) << s.message();
}

TEST(OutputFile, UncommittedLeavesTheOldFileAndNoTemporary) {
  const std::string dir = test::temp_dir("out-drop");
  const std::string path = dir + "/out.bin";
  write_all(path, "old contents");
  {
    Result<std::unique_ptr<OutputFile>> out = OutputFile::create(path);
    ASSERT_TRUE(out.ok()) << out.status().message();
    ASSERT_TRUE((*out)->write("new", 3).ok());
    EXPECT_EQ(temp_files(dir).size(), 1u);
  }
  EXPECT_EQ(read_all(path), "old contents");
  EXPECT_TRUE(temp_files(dir).empty());
}

TEST(OutputFile, CommitThroughASymlinkReplacesTheTargetAndKeepsTheLink) {
  const std::string dir = test::temp_dir("out-link");
  write_all(dir + "/target.bin", "old");
  fs::create_symlink("target.bin", dir + "/link.bin");
  ASSERT_TRUE(write_file_atomically(dir + "/link.bin", "new", 3).ok());
  EXPECT_TRUE(fs::is_symlink(dir + "/link.bin"));
  EXPECT_EQ(read_all(dir + "/target.bin"), "new");
  EXPECT_TRUE(temp_files(dir).empty());
}

// Renaming a temporary file over /dev/null would make it a plain file (as root): a device is
// written in place.
TEST(OutputFile, DevicesAreWrittenInPlace) {
  ASSERT_TRUE(check_output_path("/dev/null", {}).ok());
  ASSERT_TRUE(write_file_atomically("/dev/null", "x", 1).ok());
  struct stat st {};
  ASSERT_EQ(stat("/dev/null", &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_TRUE(temp_files("/dev").empty());
}

TEST(OutputFile, SignalRemovesTheTemporaryFile) {
  for (const int sig : {SIGINT, SIGTERM}) {
    const std::string dir = test::temp_dir("out-signal");
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      Result<std::unique_ptr<OutputFile>> out = OutputFile::create(dir + "/out.bin");
      if (!out.ok() || !(*out)->write("partial", 7).ok() || !(*out)->flush().ok()) _exit(3);
      kill(getpid(), sig);
      _exit(4);  // not reached: the signal ends the process
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status)) << "exit status " << status;
    EXPECT_EQ(WTERMSIG(status), sig);
    EXPECT_TRUE(temp_files(dir).empty());
    EXPECT_FALSE(fs::exists(dir + "/out.bin"));
  }
}

// The reproductions of issue 22: each command pointed at its own input exits 2 and leaves it
// byte for byte as it was (they replaced the model, or died with SIGBUS, before).
TEST(OutputFileCli, CommandsRefuseToOverwriteTheirInput) {
  PLUMB_REQUIRE_SHARED(shipped, "models/austen-21m-q4_0.gguf");
  const std::string dir = test::temp_dir("out-cli");
  const std::string model = dir + "/v.gguf";
  fs::copy_file(shipped, model);
  fs::create_symlink("v.gguf", dir + "/alias.gguf");
  const std::string text = dir + "/t.txt";
  write_all(text, "It is a truth universally acknowledged, that a single man in possession of a good fortune.");
  const std::string before = sha_of(model);
  const std::string m = test::shell_quote(model);
  const std::string alias = test::shell_quote(dir + "/alias.gguf");
  const std::vector<std::string> commands = {
      "quantize " + m + " " + m + " Q8_0",
      "quantize " + m + " " + alias + " Q8_0",
      "trace -m " + m + " -p 'It is' -o " + m + " -t 1",
      "trace -m " + m + " -p 'It is' -o " + alias + " -t 1",
      "ppl -m " + m + " -f " + test::shell_quote(text) + " -c 16 -t 1 --kl-divergence-base " + m,
      "ppl -m " + m + " -f " + test::shell_quote(text) + " -c 16 -t 1 --kl-divergence-base " +
          test::shell_quote(text),
      "synth --preset tiny --vocab " + m + " -o " + alias,
      "diff " + m + " " + m + " --plot " + m,
  };
  for (const std::string& c : commands) {
    std::string out;
    EXPECT_EQ(test::run_plumb(c, &out), 2) << c << "\n" << out;
    EXPECT_NE(out.find("is the same file as the input"), std::string::npos) << c << "\n" << out;
    EXPECT_EQ(sha_of(model), before) << c;
  }
  EXPECT_TRUE(temp_files(dir).empty());
}

// A failed run leaves an existing output as it was (ppl used to truncate it first).
TEST(OutputFileCli, FailedRunKeepsTheOldOutput) {
  PLUMB_REQUIRE_SHARED(model, "models/austen-21m-q4_0.gguf");
  const std::string dir = test::temp_dir("out-fail");
  const std::string kld = dir + "/base.kld";
  const std::string text = dir + "/short.txt";
  write_all(kld, "precious");
  write_all(text, "Too short.");
  std::string out;
  EXPECT_EQ(test::run_plumb("ppl -m " + test::shell_quote(model) + " -f " + test::shell_quote(text) +
                                " -c 512 -t 1 --kl-divergence-base " + test::shell_quote(kld),
                            &out),
            1)
      << out;
  EXPECT_EQ(read_all(kld), "precious");
  EXPECT_TRUE(temp_files(dir).empty());
}

}  // namespace
}  // namespace plumb
