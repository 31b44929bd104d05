// Exactness against the float64 oracle (../shared/tools/ref64.py): plumb's pooled logits NMSE
// must be at most llama.cpp's (+10 %) and its top-1 agreement at least llama.cpp's, on the
// token lists of ../shared/ref64 (figures: ../shared/ref/README.md). Needs python3 with numpy
// and gguf; skipped visibly without them. The float64 logits are cached in the build tree.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "model/model.h"
#include "model_ref.h"
#include "test_util.h"

namespace plumb::test {
namespace {

bool python_has_numpy_and_gguf() {
  return std::system("python3 -c 'import numpy, gguf' >/dev/null 2>&1") == 0;
}

struct ExactCase {
  const char* name;
  double llama_nmse;  // llama.cpp's pooled NMSE vs float64
  double llama_top1;  // llama.cpp's top-1 agreement with float64
};

void check_exactness(const ExactCase& ec) {
  const std::string file = std::string("austen-21m-") + ec.name + ".gguf";
  const std::string model_path = shared_path("models/" + file);
  PLUMB_REQUIRE_SHARED(tool, "tools/ref64.py");
  PLUMB_REQUIRE_SHARED(tokens_file, "ref64/austen-21m.tokens.txt");
  if (model_path.empty()) GTEST_SKIP() << "missing shared data: models/" << file;
  if (!python_has_numpy_and_gguf()) GTEST_SKIP() << "python3 with numpy and gguf is not available: float64 oracle skipped";

  // The float64 answer takes seconds to compute: it is kept in the build tree, keyed by the
  // model's file name and size, so later runs only pay for plumb's side.
  const std::filesystem::path cache = std::filesystem::path(PLUMB_BINARY).parent_path() / "ref64-cache";
  std::filesystem::create_directories(cache);
  const std::string out = (cache / (file + "." + std::to_string(std::filesystem::file_size(model_path)) + ".gguf")).string();
  if (!std::filesystem::exists(out)) {
    const std::string tmp = out + ".tmp";
    const std::string cmd = "python3 '" + tool + "' -m '" + model_path + "' --tokens-file '" + tokens_file +
                            "' --taps 'none' --out '" + tmp + "' >/dev/null 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    std::filesystem::rename(tmp, out);
  }

  auto model = Model::load(model_path, {.load_tokenizer = false});
  ASSERT_TRUE(model.ok()) << model.status().message();
  const int64_t n_vocab = (*model)->config().n_vocab;
  LogitsAgreement agreement;
  const std::vector<RefPrompt> seqs = read_ref_prompts(out, n_vocab);
  ASSERT_EQ(seqs.size(), 4u);
  for (size_t k = 0; k < seqs.size(); ++k) {
    const std::vector<float> logits = plumb_logits(**model, seqs[k].tokens);
    ASSERT_EQ(logits.size(), seqs[k].logits.size());
    for (size_t t = 0; t < seqs[k].tokens.size(); ++t) {
      agreement.add(logits.data() + t * n_vocab, seqs[k].logits.data() + t * n_vocab, n_vocab, 1e30f, "");
    }
  }
  std::printf("[ exact ] %s vs float64: plumb NMSE %.3g top-1 %.2f%% (%lld positions); llama.cpp NMSE %.3g top-1 %.2f%%\n",
              ec.name, agreement.nmse(), 100.0 * agreement.top1_rate(), (long long)agreement.positions, ec.llama_nmse,
              100.0 * ec.llama_top1);
  EXPECT_LE(agreement.nmse(), 1.1 * ec.llama_nmse) << ec.name << ": NMSE vs float64";
  EXPECT_GE(agreement.top1_rate(), ec.llama_top1 - 1e-9) << ec.name << ": top-1 agreement with float64";
}

TEST(ModelExactness, Austen21mF16) { check_exactness({"f16", 1.04e-8, 1.0}); }
TEST(ModelExactness, Austen21mQ4KM) { check_exactness({"q4_k_m", 1.78e-5, 1.0}); }
TEST(ModelExactness, Austen21mQ4_0) { check_exactness({"q4_0", 8.65e-6, 0.995}); }

}  // namespace
}  // namespace plumb::test
