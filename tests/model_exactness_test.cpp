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
#include "test_models.h"
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
  double bound;       // plumb's own bound on every backend (NMSE vs float64)
};

void check_exactness(const ExactCase& ec, const std::string& model_path, const std::string& tokens_file);

void check_austen_exactness(const ExactCase& ec) {
  PLUMB_REQUIRE_SHARED(tokens_file, "ref64/austen-21m.tokens.txt");
  PLUMB_REQUIRE_AUSTEN(model_path, ec.name);
  check_exactness(ec, model_path, tokens_file);
}

void check_exactness(const ExactCase& ec, const std::string& model_path, const std::string& tokens_file) {
  const std::string file = std::filesystem::path(model_path).filename().string();
  PLUMB_REQUIRE_SHARED(tool, "tools/ref64.py");
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

  auto model = Model::load(model_path, without_tokenizer());
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
  std::printf("[ exact ] %s vs float64: plumb (%s) NMSE %.3g top-1 %.2f%% (%lld positions); llama.cpp NMSE %.3g top-1 %.2f%%\n",
              ec.name, test_backend().c_str(), agreement.nmse(), 100.0 * agreement.top1_rate(), (long long)agreement.positions, ec.llama_nmse,
              100.0 * ec.llama_top1);
  EXPECT_LE(agreement.nmse(), 1.1 * ec.llama_nmse) << ec.name << ": NMSE vs float64";
  EXPECT_GE(agreement.top1_rate(), ec.llama_top1 - 1e-9) << ec.name << ": top-1 agreement with float64";
  EXPECT_LE(agreement.nmse(), ec.bound) << ec.name << ": NMSE vs float64, plumb's bound";
  EXPECT_EQ(agreement.top1_equal, agreement.positions) << ec.name << ": top-1 agreement with float64";
}

TEST(ModelExactness, Austen21mF16) { check_austen_exactness({"f16", 1.04e-8, 1.0, 1e-7}); }
TEST(ModelExactness, Austen21mQ8_0) { check_austen_exactness({"q8_0", 5.88e-6, 0.9851, 1e-7}); }
TEST(ModelExactness, Austen21mQ6K) { check_austen_exactness({"q6_k", 1.54e-5, 0.99, 1e-7}); }
TEST(ModelExactness, Austen21mQ4KM) { check_austen_exactness({"q4_k_m", 1.78e-5, 1.0, 1e-7}); }
TEST(ModelExactness, Austen21mQ4_0) { check_austen_exactness({"q4_0", 8.65e-6, 0.995, 1e-7}); }

// SmolLM2's float64 answer takes about a minute on 2 cores (cached after the first run).
TEST(ModelExactness, SmolLM2Q4_1) {
  PLUMB_REQUIRE_SMOLLM2(model_path);
  PLUMB_REQUIRE_SHARED(tokens_file, "ref64/smollm2-135m.tokens.txt");
  check_exactness({"smollm2-135m-q4_1", 6.46e-4, 0.9596, 1e-6}, model_path, tokens_file);
}

}  // namespace
}  // namespace plumb::test
