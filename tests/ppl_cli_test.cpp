// plumb ppl's command line in llama-perplexity's form: --kl-divergence-base FILE alone saves the
// base run; --kl-divergence-base FILE --kl-divergence (no value) reads it, the same as plumb's
// --kl-divergence FILE.
#include <gtest/gtest.h>

#include "test_util.h"

namespace plumb {
namespace {

TEST(PplCli, LlamaPerplexityKlDivergenceForm) {
  const std::string f16 = test::shared_path("models/austen-21m-f16.gguf");
  const std::string q4 = test::shared_path("models/austen-21m-q4_0.gguf");
  const std::string text = test::shared_path("text/pp-heldout.txt");
  if (f16.empty() || q4.empty() || text.empty()) GTEST_SKIP() << "../shared models or text missing";
  const std::string base = test::temp_dir("ppl-cli") + "/f16.kld";
  const std::string common = " -f '" + text + "' -c 64 --chunks 2 -t 1 ";
  std::string out;
  ASSERT_EQ(test::run_plumb("ppl -m '" + f16 + "'" + common + "--kl-divergence-base '" + base + "'", &out), 0) << out;
  std::string llama_form, llama_form_mid, plumb_form;
  ASSERT_EQ(test::run_plumb("ppl -m '" + q4 + "'" + common + "--kl-divergence-base '" + base + "' --kl-divergence", &llama_form), 0)
      << llama_form;
  EXPECT_NE(llama_form.find("KL divergence statistics"), std::string::npos) << llama_form;
  ASSERT_EQ(test::run_plumb("ppl --kl-divergence-base '" + base + "' --kl-divergence -m '" + q4 + "'" + common, &llama_form_mid), 0)
      << llama_form_mid;
  ASSERT_EQ(test::run_plumb("ppl -m '" + q4 + "'" + common + "--kl-divergence '" + base + "'", &plumb_form), 0) << plumb_form;
  const auto stats = [](const std::string& s) { return s.substr(s.find("KL divergence statistics")); };
  EXPECT_EQ(stats(llama_form), stats(plumb_form));
  EXPECT_EQ(stats(llama_form_mid), stats(plumb_form));
  // --kl-divergence with no value needs the file named by --kl-divergence-base.
  EXPECT_EQ(test::run_plumb("ppl -m '" + q4 + "'" + common + "--kl-divergence", &out), 2) << out;
  EXPECT_NE(out.find("--kl-divergence-base FILE"), std::string::npos) << out;
}

}  // namespace
}  // namespace plumb
