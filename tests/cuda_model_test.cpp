// Whole models on the CUDA backend against the CPU backend: the prompt's logits, generation
// step by step (the path a recorded CUDA graph replays) against the same steps without graphs
// (same bits) and against the CPU, and the same bits on a second run. Skipped with the reason
// where there is no CUDA device. (The acceptance against llama.cpp's files and float64 is
// ModelRef.* and ModelExactness.* run with PLUMB_TEST_BACKEND=cuda: docs/GPU-TESTS.md.)
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "model/model.h"
#include "model_ref.h"
#include "test_models.h"

namespace plumb::test {
namespace {

double nmse(const std::vector<float>& a, const std::vector<float>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = static_cast<double>(a[i]) - ref[i];
    num += d * d;
    den += static_cast<double>(ref[i]) * ref[i];
  }
  return a.size() == ref.size() && num == num ? num / den : 1e30;
}

// The prompt in one batch, then `steps` greedy tokens one at a time (chosen by `chooser`'s
// logits when given, so two backends walk the same tokens): every row of logits, in order.
std::vector<float> run(const Model& m, const std::string& backend, const std::vector<int32_t>& prompt, int steps,
                       std::vector<int32_t>* walked) {
  SessionOptions o;
  o.backend = backend;
  o.n_ctx = prompt.size() + steps <= 128 ? 128 : 512;
  auto s = Session::create(m, o);
  EXPECT_TRUE(s.ok()) << s.status().message();
  if (!s.ok()) return {};
  const int64_t n_vocab = m.config().n_vocab;
  std::vector<float> out;
  EXPECT_TRUE((*s)->decode(prompt, true).ok());
  for (int64_t t = 0; t < (*s)->n_logit_rows(); ++t) out.insert(out.end(), (*s)->logits(t), (*s)->logits(t) + n_vocab);
  for (int i = 0; i < steps; ++i) {
    int32_t next;
    if (walked->size() > static_cast<size_t>(i)) {
      next = (*walked)[static_cast<size_t>(i)];
    } else {
      next = static_cast<int32_t>(argmax(out.data() + out.size() - n_vocab, n_vocab));
      walked->push_back(next);
    }
    const Status st = (*s)->decode(std::vector<int32_t>{next}, false);
    EXPECT_TRUE(st.ok()) << st.message();
    if (!st.ok()) return {};
    out.insert(out.end(), (*s)->logits(0), (*s)->logits(0) + n_vocab);
  }
  return out;
}

// `repeats` times the sentence: more than once, a context of several attention chunks
// (backend/attention_chunk.h), the generation steps' chunks a block each.
void check_model(const std::string& path, double bound, int repeats = 1) {
  if (auto b = make_backend("cuda", 1); !b.ok()) GTEST_SKIP() << "no CUDA backend here, GPU test skipped: " << b.status().message();
  auto model = Model::load(path);
  ASSERT_TRUE(model.ok()) << model.status().message();
  std::string text;
  for (int i = 0; i < repeats; ++i) text += "It was a bright cold day in April, and the clocks were striking thirteen. ";
  if (repeats == 1) text = "It was a bright cold day in April, and";
  const std::vector<int32_t> prompt = (*model)->tokenizer().encode(text, true, false);
  ASSERT_LE(prompt.size() + 8, 512u);
  std::vector<int32_t> walked;
  const std::vector<float> cpu = run(**model, "cpu", prompt, 8, &walked);
  const std::vector<float> gpu = run(**model, "cuda", prompt, 8, &walked);
  const std::vector<float> again = run(**model, "cuda", prompt, 8, &walked);
  setenv("PLUMB_CUDA_GRAPHS", "0", 1);
  const std::vector<float> no_graph = run(**model, "cuda", prompt, 8, &walked);
  unsetenv("PLUMB_CUDA_GRAPHS");
  ASSERT_EQ(gpu.size(), cpu.size());
  EXPECT_LE(nmse(gpu, cpu), bound) << path << ": CUDA vs CPU, prompt and 8 generation steps";
  EXPECT_EQ(std::memcmp(gpu.data(), again.data(), gpu.size() * sizeof(float)), 0) << "two CUDA runs differ";
  ASSERT_EQ(no_graph.size(), gpu.size());
  EXPECT_EQ(std::memcmp(gpu.data(), no_graph.data(), gpu.size() * sizeof(float)), 0)
      << "replayed generation steps differ from the same steps run op by op";
  std::printf("[ cuda ] %s: NMSE CUDA vs CPU %.3g over %zu positions\n", path.c_str(), nmse(gpu, cpu),
              prompt.size() + 8);
}

TEST(CudaModel, Austen21mF16) {
  PLUMB_REQUIRE_AUSTEN(model, "f16");
  check_model(model, 1e-8);
}
TEST(CudaModel, Austen21mQ4KM) {
  PLUMB_REQUIRE_AUSTEN(model, "q4_k_m");
  check_model(model, 1e-8);
}
TEST(CudaModel, Austen21mQ4KMLongContext) {
  PLUMB_REQUIRE_AUSTEN(model, "q4_k_m");
  check_model(model, 1e-8, 18);
}
TEST(CudaModel, SmolLM2Q4_1) {
  PLUMB_REQUIRE_SMOLLM2(model);
  check_model(model, 1e-6);
}

}  // namespace
}  // namespace plumb::test
