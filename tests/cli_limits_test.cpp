// Issue 22: bad numbers are refused by one rule set (exit 2, the accepted range in the message),
// sizes are bounded before memory is taken, and llama.cpp's flags are understood. Each test
// here failed on the code before: the values were accepted, the sizes aborted or ran on.
#include <gtest/gtest.h>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>

#include "cli_test_util.h"
#include "gguf/gguf.h"
#include "model/config.h"
#include "model/memory_estimate.h"
#include "test_util.h"
#include "util/text_file.h"
#include "util/thread_pool.h"

namespace plumb {
namespace {

struct Refusal {
  std::string args;
  std::string message;
};

void expect_usage_error(const std::string& command, const Refusal& r) {
  std::string out;
  EXPECT_EQ(test::run_plumb(command + " " + r.args, &out), 2) << r.args << "\n" << out;
  EXPECT_NE(out.find(r.message), std::string::npos) << r.args << "\n" << out;
}

TEST(CliLimits, SamplingValuesOutsideTheirRangeAreRefused) {
  PLUMB_REQUIRE_SHARED(model, "models/austen-21m-q4_0.gguf");
  const std::string run = "run -m " + test::shell_quote(model) + " -p 'It is' -n 1 -t 1";
  const Refusal refusals[] = {
      {"--top-p 2", "--top-p must be a finite number in 0..1, not '2'"},
      {"--top-p -1", "--top-p must be a finite number in 0..1"},
      // --temp and --top-k take any number, as llama.cpp (below 0: greedy, off), but a number.
      {"--temp nan", "--temp must be a finite number, not 'nan'"},
      {"--temp inf", "--temp must be a finite number"},
      {"--top-k x", "--top-k must be a whole number"},
      {"--repeat-penalty 0", "--repeat-penalty must be a finite number > 0, not '0'"},
      {"--repeat-penalty -1", "--repeat-penalty must be a finite number > 0"},
      {"--min-p 1.5", "--min-p must be a finite number in 0..1"},
      {"--repeat-last-n -2", "--repeat-last-n must be a whole number in -1..2147483647"},
      {"--frequency-penalty nan", "--frequency-penalty must be a finite number"},
      {"--seed -2", "--seed must be a whole number in -1..4294967295"},
      {"-n -2", "-n must be a whole number in -1..2147483647"},
      {"-c -1", "-c must be a whole number in 0..2147483647"},
      {"-b 0", "-b must be a whole number in 1..2147483647"},
      {"-t -2", "-t must be a whole number in -1..2147483647"},
      {"-ub 0", "-ub must be a whole number in 1..2147483647"},
  };
  for (const Refusal& r : refusals) expect_usage_error(run, r);
  expect_usage_error("chat -m " + test::shell_quote(model), {"--temp nan", "--temp must be a finite number"});
  expect_usage_error("bench -m " + test::shell_quote(model), {"-p -1", "-p must be a whole number in 0..2147483647"});
}

TEST(CliLimits, DiffAndTraceOptionsAreChecked) {
  PLUMB_REQUIRE_SHARED(ref, "ref/austen-21m-q4_0.gguf");
  PLUMB_REQUIRE_SHARED(model, "models/austen-21m-q4_0.gguf");
  const std::string diff = "diff " + test::shell_quote(ref) + " " + test::shell_quote(ref);
  expect_usage_error(diff, {"--nmse -1", "--nmse must be a finite number >= 0, not '-1'"});
  expect_usage_error(diff, {"--nmse nan", "--nmse must be a finite number >= 0, not 'nan'"});
  // A selection of no tap is a usage error (exit 2), and nothing is written.
  const std::string dir = test::temp_dir("taps-none");
  expect_usage_error("trace -m " + test::shell_quote(model) + " -p 'It is' -t 1 -o " + dir + "/t.gguf",
                     {"--taps 'nomatch*'", "--taps 'nomatch*' selects none of the model's"});
  EXPECT_FALSE(std::filesystem::exists(dir + "/t.gguf"));
}

TEST(CliLimits, ThreadsAboveTheHardwareAreCappedWithANote) {
  PLUMB_REQUIRE_SHARED(model, "models/austen-21m-q4_0.gguf");
  std::string out;
  ASSERT_EQ(test::run_plumb("run -m " + test::shell_quote(model) + " -p 'It is' -n 1 --temp 0 -t 100000", &out), 0)
      << out;
  EXPECT_NE(out.find("note: -t 100000 is more than the"), std::string::npos) << out;
}

// -c 2147483647 aborted with std::bad_alloc in run, bench and chat: now refused with both
// numbers before anything is allocated.
TEST(CliLimits, ContextTooLargeForMemoryIsRefusedWithBothNumbers) {
  PLUMB_REQUIRE_SHARED(model, "models/austen-21m-q4_0.gguf");
  const std::string m = test::shell_quote(model);
  for (const std::string& cmd : {"run -m " + m + " -p 'It is' -n 1 -t 1 -c 2147483647",
                                 "bench -m " + m + " -p 8 -n 0 -r 1 -t 1 -c 2147483647",
                                 "chat -m " + m + " -t 1 -c 2147483647 </dev/null"}) {
    std::string out;
    EXPECT_EQ(test::run_plumb(cmd, &out), 1) << cmd << "\n" << out;
    EXPECT_NE(out.find("a context of 2147483647 tokens needs about"), std::string::npos) << out;
    EXPECT_NE(out.find("of memory available (MemAvailable"), std::string::npos) << out;
    EXPECT_NE(out.find("tokens fit"), std::string::npos) << out;
    EXPECT_EQ(out.find("bad_alloc"), std::string::npos) << out;
  }
}

// The last resort: an allocation the system refuses (here a limit on the address space that
// MemAvailable does not know about) ends the command with a message and exit 1, not an abort,
// and with --json the error is a JSON object on stdout. The limit leaves room for the CUDA
// libraries of a CUDA build (cuBLAS maps about 700 MB); the context needs about 4.5 GB.
TEST(CliLimits, OutOfMemoryIsAMessageNotAnAbort) {
  PLUMB_REQUIRE_SHARED(model, "models/austen-21m-q4_0.gguf");
  const std::string out_path = test::temp_dir("oom") + "/out.txt";
  const std::string cmd = "ulimit -v 3000000; " + std::string(PLUMB_BINARY) + " run -m " + test::shell_quote(model) +
                          " -p 'It is' -n 1 -t 1 -c 1000000 --json >" + out_path + " 2>&1";
  const int status = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1);
  Result<std::string> text = read_text_file(out_path, "out");
  ASSERT_TRUE(text.ok());
  EXPECT_NE(text->find("{\"error\":\"out of memory"), std::string::npos) << *text;
  EXPECT_EQ(text->find("terminate"), std::string::npos) << *text;
}

// A thread the system refuses (address space for its stack) leaves a smaller pool, not a
// std::system_error (-t 1000 aborted when threads could not be created).
TEST(CliLimits, ThreadPoolRunsWithTheThreadsItGets) {
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    struct rlimit limit {};
    limit.rlim_cur = limit.rlim_max = 256ull << 20;  // room for a few 8 MiB stacks, not 200
    if (setrlimit(RLIMIT_AS, &limit) != 0) _exit(3);
    ThreadPool pool(200);
    std::atomic<int> slots{0};
    pool.run([&](int, int) { slots.fetch_add(1); });
    _exit(pool.size() < 200 && slots.load() == pool.size() ? 0 : 4);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(CliLimits, ContextBeyondTrainingIsWarnedAbout) {
  PLUMB_REQUIRE_SHARED(model, "models/austen-21m-q4_0.gguf");  // trained with 512 tokens
  std::string out;
  ASSERT_EQ(test::run_plumb("run -m " + test::shell_quote(model) + " -p 'It is' -n 1 --temp 0 -t 1 -c 1024", &out),
            0)
      << out;
  EXPECT_NE(out.find("warning: a context of 1024 tokens is more than the 512 the model was trained on"),
            std::string::npos)
      << out;
}

TEST(CliLimits, BenchPromptBeyondTheContextIsRefused) {
  PLUMB_REQUIRE_SHARED(model, "models/austen-21m-q4_0.gguf");
  expect_usage_error("bench -m " + test::shell_quote(model) + " -t 1 -r 1",
                     {"-p 100000", "-p/-n 100000 does not fit the model's trained context of 512 tokens"});
  expect_usage_error("bench -m " + test::shell_quote(model) + " -t 1 -r 1 -c 64",
                     {"-p 100 -n 0", "does not fit the context -c of 64 tokens"});
}

TEST(MemoryEstimate, KvCacheAndActivationsFromTheHyperparameters) {
  ModelConfig c;
  c.n_vocab = 32000;
  c.n_embd = 4096;
  c.n_layer = 32;
  c.n_head = 32;
  c.n_head_kv = 8;
  c.n_ff = 14336;
  c.head_dim_k = c.head_dim_v = 128;
  c.n_rot = 128;
  c.n_ctx_train = 8192;
  const MemoryEstimate e = estimate_session_memory(c, 8192, 512, CacheType::F16, 1, 1);
  // Llama-3-8B's KV cache at 8192 tokens in F16: 32 layers x 8192 x 2 x 1024 x 2 bytes = 1 GiB.
  EXPECT_DOUBLE_EQ(e.kv_cache, 32.0 * 8192 * 2 * 1024 * 2);
  EXPECT_DOUBLE_EQ(estimate_session_memory(c, 8192, 512, CacheType::F32, 1, 1).kv_cache, 2 * e.kv_cache);
  EXPECT_GT(e.activations, 512.0 * 2 * 14336 * 4);
  // No wrap-around for absurd sizes.
  EXPECT_GT(estimate_session_memory(c, 2147483647, 2147483647, CacheType::F32, 2147483647, 4096).total(), 1e15);
  EXPECT_TRUE(available_memory().ok());
  EXPECT_EQ(resolved_context(c, 0), 4096);
  EXPECT_EQ(resolved_context(c, 100), 100);
}

// A metadata value of the wrong type is an error naming the key and both types: a float
// stored as an integer used to be taken as its bits' value, without a word.
TEST(ModelConfigTypes, WrongTypeIsAnErrorNamingKeyAndTypes) {
  auto config_with = [](const std::string& key, gguf::Value v) {
    gguf::Writer w;
    w.set("general.architecture", gguf::Value::make_string("llama"));
    w.set("llama.embedding_length", gguf::Value::make_u32(64));
    w.set("llama.block_count", gguf::Value::make_u32(1));
    w.set("llama.feed_forward_length", gguf::Value::make_u32(128));
    w.set("llama.attention.head_count", gguf::Value::make_u32(4));
    w.set("llama.vocab_size", gguf::Value::make_u32(100));
    w.set(key, std::move(v));
    static std::vector<uint8_t> bytes;
    bytes = w.serialize().value();
    auto file = gguf::File::parse(bytes.data(), bytes.size(), "m.gguf");
    EXPECT_TRUE(file.ok());
    return read_model_config(**file).status().message();
  };
  const std::string k = "llama.attention.layer_norm_rms_epsilon";
  EXPECT_NE(config_with(k, gguf::Value::make_u32(0x3727c5ac))
                .find("metadata key '" + k + "' has type UINT32, expected FLOAT32"),
            std::string::npos);
  EXPECT_NE(config_with(k, gguf::Value::make_string("1e-5")).find("has type STRING, expected FLOAT32"),
            std::string::npos);
  EXPECT_NE(config_with(k, gguf::Value::make_f32(-1.0f)).find("out of range (must be finite and > 0)"),
            std::string::npos);
  EXPECT_NE(config_with("llama.rope.freq_base", gguf::Value::make_f32(0.0f / 0.0f)).find("'llama.rope.freq_base'"),
            std::string::npos);
  EXPECT_NE(config_with("llama.context_length", gguf::Value::make_f32(2048.0f)).find("expected an integer"),
            std::string::npos);
  EXPECT_EQ(config_with(k, gguf::Value::make_f32(1e-5f)), "");
}

// Names for what the reader meets: a directory where a file is wanted, a missing shared/.
TEST(CliNames, DirectoriesAndMissingVocabularyAreSaid) {
  PLUMB_REQUIRE_SHARED(model, "models/austen-21m-q4_0.gguf");
  const std::string dir = test::temp_dir("names");
  std::string out;
  EXPECT_EQ(test::run_plumb("run -m " + test::shell_quote(model) + " -f " + dir, &out), 1) << out;
  EXPECT_NE(out.find("-f " + dir + ": is a directory; name a text file"), std::string::npos) << out;
  EXPECT_EQ(test::run_plumb("ppl -m " + test::shell_quote(model) + " -f " + dir, &out), 1) << out;
  EXPECT_NE(out.find("is a directory"), std::string::npos) << out;
  EXPECT_EQ(test::run_plumb("run -m " + dir + " -p x", &out), 1) << out;
  EXPECT_NE(out.find("is a directory; name a GGUF file"), std::string::npos) << out;
  // synth without shared/ (PLUMB_SHARED names an empty directory): pass --vocab.
  const char* before = std::getenv("PLUMB_SHARED");
  const std::string saved = before != nullptr ? before : "";
  setenv("PLUMB_SHARED", dir.c_str(), 1);
  const int code = test::run_plumb("synth --preset tiny -o " + dir + "/s.gguf", &out);
  if (before != nullptr) {
    setenv("PLUMB_SHARED", saved.c_str(), 1);
  } else {
    unsetenv("PLUMB_SHARED");
  }
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find("pass --vocab VOCAB.gguf"), std::string::npos) << out;
}

TEST(TextFile, EscapesAsLlamaCpp) {
  EXPECT_EQ(process_escapes("a\\nb\\tc\\\\d\\'\\\"\\x41\\q"), "a\nb\tc\\d'\"A\\q");
  EXPECT_EQ(process_escapes("end\\"), "end\\");
}

}  // namespace
}  // namespace plumb
