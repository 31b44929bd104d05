// plumb synth: shapes and metadata as llama.cpp expects them, deterministic random weights.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>

#include "gguf/gguf.h"
#include "model/quantize_model.h"
#include "quant/ref.h"
#include "synth/synth.h"
#include "synth/synth_fill.h"
#include "test_util.h"

namespace plumb {
namespace {

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

Result<SynthSummary> make_tiny(const std::string& vocab, const std::string& out, uint64_t seed,
                               int threads = 2) {
  SynthOptions options;
  options.preset = "tiny";
  options.vocab_path = vocab;
  options.seed = seed;
  options.n_threads = threads;
  return synth_model(options, out);
}

TEST(Synth, TinyPresetHasLlamaShapesAndMetadata) {
  PLUMB_REQUIRE_SHARED(vocab_path, "vocab/ggml-vocab-llama-spm.gguf");
  const std::string out = test::temp_dir("synth-tiny") + "/tiny.gguf";
  Result<SynthSummary> made = make_tiny(vocab_path, out, 7);
  ASSERT_TRUE(made.ok()) << made.status().message();
  EXPECT_EQ(made->tensors, 2 + 9 * 2 + 1);

  Result<std::unique_ptr<gguf::File>> f = gguf::File::open(out);
  ASSERT_TRUE(f.ok()) << f.status().message();
  const gguf::File& file = **f;
  EXPECT_EQ(*file.get_string("general.architecture"), "llama");
  EXPECT_EQ(*file.get_int("llama.embedding_length"), 64);
  EXPECT_EQ(*file.get_int("llama.block_count"), 2);
  EXPECT_EQ(*file.get_int("llama.attention.head_count"), 4);
  EXPECT_EQ(*file.get_int("llama.attention.head_count_kv"), 2);
  EXPECT_EQ(*file.get_int("llama.feed_forward_length"), 128);
  EXPECT_EQ(*file.get_int("llama.rope.dimension_count"), 16);
  EXPECT_EQ(*file.get_int("llama.context_length"), 256);
  EXPECT_EQ(*file.get_int("general.file_type"), 1);
  EXPECT_FLOAT_EQ(*file.get_f32("llama.rope.freq_base"), 10000.0f);
  EXPECT_FLOAT_EQ(*file.get_f32("llama.attention.layer_norm_rms_epsilon"), 1e-5f);

  // Every tokenizer key of the vocabulary, unchanged.
  Result<std::unique_ptr<gguf::File>> vocab = gguf::File::open(vocab_path);
  ASSERT_TRUE(vocab.ok());
  int copied = 0;
  for (const auto& [key, value] : (*vocab)->metadata()) {
    if (key.rfind("tokenizer.", 0) != 0) continue;
    const gguf::Value* v = file.find(key);
    ASSERT_NE(v, nullptr) << key;
    EXPECT_EQ(v->type, value.type) << key;
    EXPECT_EQ(v->array.size(), value.array.size()) << key;
    ++copied;
  }
  EXPECT_GE(copied, 5);
  EXPECT_EQ(file.get_string_array("tokenizer.ggml.tokens")->size(), 32000u);

  struct Want { const char* name; TensorType type; std::vector<int64_t> ne; };
  const Want want[] = {
      {"token_embd.weight", TensorType::F16, {64, 32000}},
      {"blk.0.attn_norm.weight", TensorType::F32, {64}},
      {"blk.1.attn_q.weight", TensorType::F16, {64, 64}},
      {"blk.1.attn_k.weight", TensorType::F16, {64, 32}},
      {"blk.1.attn_v.weight", TensorType::F16, {64, 32}},
      {"blk.1.attn_output.weight", TensorType::F16, {64, 64}},
      {"blk.1.ffn_norm.weight", TensorType::F32, {64}},
      {"blk.1.ffn_gate.weight", TensorType::F16, {64, 128}},
      {"blk.1.ffn_up.weight", TensorType::F16, {64, 128}},
      {"blk.1.ffn_down.weight", TensorType::F16, {128, 64}},
      {"output_norm.weight", TensorType::F32, {64}},
      {"output.weight", TensorType::F16, {64, 32000}},
  };
  for (const Want& w : want) {
    const gguf::TensorInfo* t = file.find_tensor(w.name);
    ASSERT_NE(t, nullptr) << w.name;
    EXPECT_EQ(t->type, w.type) << w.name;
    ASSERT_EQ(t->n_dims, static_cast<int>(w.ne.size())) << w.name;
    for (size_t d = 0; d < w.ne.size(); ++d) EXPECT_EQ(t->ne[d], w.ne[d]) << w.name;
  }

  // normal(0, 0.02) weights, 1 + normal(0, 0.02) norms.
  for (const char* name : {"token_embd.weight", "blk.0.ffn_norm.weight"}) {
    const gguf::TensorInfo* t = file.find_tensor(name);
    std::vector<float> x(static_cast<size_t>(t->n_elements()));
    dequantize_row(t->type, t->data, x.data(), t->n_elements());
    double sum = 0, sum2 = 0;
    for (float v : x) sum += v;
    const double mean = sum / x.size();
    for (float v : x) sum2 += (v - mean) * (v - mean);
    const double sd = std::sqrt(sum2 / x.size());
    const bool norm = std::string(name).find("norm") != std::string::npos;
    EXPECT_NEAR(mean, norm ? 1.0 : 0.0, norm ? 0.01 : 0.0005) << name;
    EXPECT_NEAR(sd, 0.02, norm ? 0.006 : 0.0005) << name;
  }
}

TEST(Synth, SameSeedSameBytesWhateverTheThreads) {
  PLUMB_REQUIRE_SHARED(vocab_path, "vocab/ggml-vocab-llama-spm.gguf");
  const std::string dir = test::temp_dir("synth-seed");
  ASSERT_TRUE(make_tiny(vocab_path, dir + "/a.gguf", 5, 1).ok());
  ASSERT_TRUE(make_tiny(vocab_path, dir + "/b.gguf", 5, 3).ok());
  ASSERT_TRUE(make_tiny(vocab_path, dir + "/c.gguf", 6, 2).ok());
  const std::string a = read_all(dir + "/a.gguf");
  EXPECT_TRUE(a == read_all(dir + "/b.gguf"));
  EXPECT_FALSE(a == read_all(dir + "/c.gguf"));
}

TEST(Synth, VectorFillEqualsPortableStream) {
  const synth_detail::StreamKeys k = synth_detail::stream_keys(1234);
  const float scale = 0.02f / synth_detail::sum_sd();
  std::vector<uint16_t> h(1003);
  std::vector<float> f(1003);
  synth_fill_f16(h.data(), 1003, 1234, 77, 0.0f, 0.02f);
  synth_fill_f32(f.data(), 1003, 1234, 77, 1.0f, 0.02f);
  for (uint32_t i = 0; i < 1003; ++i) {
    ASSERT_EQ(h[i], fp32_to_fp16(synth_detail::element(77 + i, k, scale, 0.0f))) << i;
    ASSERT_EQ(f[i], synth_detail::element(77 + i, k, scale, 1.0f)) << i;
  }
}

TEST(Synth, QuantizesWithFallbacksForNarrowRows) {
  // 64-element rows fit no 256-element block: Q4_K_M falls back to Q5_0 / Q8_0 as llama.cpp does.
  PLUMB_REQUIRE_SHARED(vocab_path, "vocab/ggml-vocab-llama-spm.gguf");
  const std::string dir = test::temp_dir("synth-quant");
  ASSERT_TRUE(make_tiny(vocab_path, dir + "/tiny.gguf", 1).ok());
  QuantizeOptions options;
  options.target = "Q4_K_M";
  Result<QuantizeSummary> q = quantize_model(dir + "/tiny.gguf", dir + "/q.gguf", options);
  ASSERT_TRUE(q.ok()) << q.status().message();
  Result<std::unique_ptr<gguf::File>> f = gguf::File::open(dir + "/q.gguf");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ((*f)->find_tensor("blk.1.attn_q.weight")->type, TensorType::Q5_0);
  // Layer 1 of 2 is in the last eighth: Q6_K, which falls back to Q8_0.
  EXPECT_EQ((*f)->find_tensor("blk.1.attn_v.weight")->type, TensorType::Q8_0);
  EXPECT_EQ((*f)->find_tensor("blk.0.attn_v.weight")->type, TensorType::Q5_0);
  EXPECT_EQ((*f)->find_tensor("output.weight")->type, TensorType::Q8_0);
  EXPECT_EQ((*f)->find_tensor("blk.0.attn_norm.weight")->type, TensorType::F32);
  EXPECT_GT(q->tensors_fell_back, 0);
}

TEST(Synth, GgufPyReadsIt) {
  if (std::system("python3 -c 'import gguf' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "python3 gguf package not importable";
  }
  PLUMB_REQUIRE_SHARED(vocab_path, "vocab/ggml-vocab-llama-spm.gguf");
  const std::string dir = test::temp_dir("synth-gguf-py");
  std::string log;
  ASSERT_EQ(test::run_plumb("synth --preset tiny --vocab " + vocab_path + " -o " + dir + "/t.gguf", &log), 0)
      << log;
  const std::string script =
      "import gguf, sys\n"
      "r = gguf.GGUFReader(sys.argv[1])\n"
      "t = {x.name: x for x in r.tensors}\n"
      "assert len(t) == 21, len(t)\n"
      "assert list(t['token_embd.weight'].shape) == [64, 32000]\n"
      "assert list(t['blk.1.ffn_down.weight'].shape) == [128, 64]\n"
      "assert t['blk.1.ffn_down.weight'].tensor_type == gguf.GGMLQuantizationType.F16\n"
      "assert r.fields['general.architecture'].contents() == 'llama'\n"
      "assert r.fields['llama.attention.head_count_kv'].contents() == 2\n"
      "assert len(r.fields['tokenizer.ggml.tokens'].data) == 32000\n"
      "print('ok')\n";
  const std::string script_path = dir + "/check.py";
  std::ofstream(script_path) << script;
  const std::string cmd = "python3 " + script_path + " " + dir + "/t.gguf 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  char buf[4096];
  std::string out;
  while (fgets(buf, sizeof buf, pipe) != nullptr) out += buf;
  EXPECT_EQ(pclose(pipe), 0) << out;
  EXPECT_NE(out.find("ok"), std::string::npos) << out;
}

TEST(SynthCli, UsageErrors) {
  std::string log;
  EXPECT_EQ(test::run_plumb("synth --preset nope -o /tmp/x.gguf", &log), 2);
  EXPECT_NE(log.find("tinyllama-1.1b"), std::string::npos) << log;
  EXPECT_EQ(test::run_plumb("synth --preset tiny", &log), 2);
  EXPECT_EQ(test::run_plumb("synth --preset tiny --type q4_0 -o /tmp/x.gguf", &log), 2);
  EXPECT_EQ(test::run_plumb("synth --preset tiny --vocab /nonexistent/v.gguf -o /tmp/x.gguf", &log), 1);
  EXPECT_NE(log.find("/nonexistent/v.gguf"), std::string::npos) << log;
}

}  // namespace
}  // namespace plumb
