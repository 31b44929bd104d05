// Model loading errors: a missing or mis-shaped tensor, or another architecture, is named in
// the error (files made with gguf::Writer from austen-21m-f16).
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "model/model.h"
#include "quant/ref.h"
#include "model_ref.h"
#include "test_util.h"

namespace plumb::test {
namespace {

// austen-21m-f16 rewritten: `drop` left out, `reshape` given shape `ne` (or, with `retype`, its
// values quantized to that type), metadata `arch`.
std::string rewritten_model(const std::string& src_path, const std::string& name, const std::string& drop,
                            const std::string& reshape, const std::vector<int64_t>& ne, const std::string& arch = "",
                            std::optional<TensorType> retype = std::nullopt) {
  auto src = gguf::File::open(src_path);
  EXPECT_TRUE(src.ok()) << src.status().message();
  gguf::Writer w;
  w.copy_metadata_from(**src);
  if (!arch.empty()) w.set("general.architecture", gguf::Value::make_string(arch));
  for (const gguf::TensorInfo& t : (*src)->tensors()) {
    if (t.name == drop) continue;
    std::vector<int64_t> shape(t.ne, t.ne + t.n_dims);
    if (t.name == reshape && retype) {
      std::vector<float> values(static_cast<size_t>(t.n_elements()));
      dequantize_row(t.type, t.data, values.data(), t.n_elements());
      std::vector<uint8_t> bytes(row_size(*retype, t.n_elements()));
      quantize_row(*retype, values.data(), bytes.data(), t.n_elements());
      Status st = w.add_tensor(t.name, *retype, shape, bytes.data(), bytes.size());
      EXPECT_TRUE(st.ok()) << st.message();
      continue;
    }
    if (t.name == reshape) shape = ne;
    Status st = w.add_tensor(t.name, t.type, shape, t.data, t.nbytes);
    EXPECT_TRUE(st.ok()) << st.message();
  }
  const std::string path = temp_dir("weights-" + name) + "/model.gguf";
  Status st = w.write(path);
  EXPECT_TRUE(st.ok()) << st.message();
  return path;
}

std::string load_error(const std::string& path) {
  auto model = Model::load(path, without_tokenizer());
  return model.ok() ? std::string("(loaded without error)") : model.status().message();
}

TEST(ModelWeights, MissingTensorIsNamed) {
  PLUMB_REQUIRE_SHARED(src, "models/austen-21m-f16.gguf");
  const std::string path = rewritten_model(src, "missing", "blk.3.attn_k.weight", "", {});
  const std::string err = load_error(path);
  EXPECT_NE(err.find("missing tensor blk.3.attn_k.weight"), std::string::npos) << err;
  EXPECT_NE(err.find("[256, 128]"), std::string::npos) << err;
}

TEST(ModelWeights, MisShapedTensorIsNamedWithShapes) {
  PLUMB_REQUIRE_SHARED(src, "models/austen-21m-f16.gguf");
  const std::string path = rewritten_model(src, "misshaped", "", "blk.3.attn_k.weight", {128, 256});
  const std::string err = load_error(path);
  EXPECT_NE(err.find("blk.3.attn_k.weight: expected shape [256, 128], found [128, 256]"), std::string::npos) << err;
}

// Q8_K has a matmul kernel (tests use it) but is an activation format: the loader refuses it.
TEST(ModelWeights, TypeThatCannotHoldWeightsIsNamed) {
  PLUMB_REQUIRE_SHARED(src, "models/austen-21m-f16.gguf");
  const std::string path = rewritten_model(src, "q8k", "", "blk.3.attn_k.weight", {}, "", TensorType::Q8_K);
  const std::string err = load_error(path);
  EXPECT_NE(err.find("blk.3.attn_k.weight: type Q8_K cannot hold model weights"), std::string::npos) << err;
}

TEST(ModelWeights, OtherArchitectureIsRefusedByName) {
  PLUMB_REQUIRE_SHARED(src, "models/austen-21m-f16.gguf");
  const std::string path = rewritten_model(src, "arch", "", "", {}, "gpt2");
  const std::string err = load_error(path);
  EXPECT_NE(err.find("unsupported architecture 'gpt2' (plumb runs llama-family models)"), std::string::npos) << err;
}

TEST(ModelWeights, ConfigOfAusten) {
  PLUMB_REQUIRE_SHARED(src, "models/austen-21m-f16.gguf");
  auto model = Model::load(src, without_tokenizer());
  ASSERT_TRUE(model.ok()) << model.status().message();
  const ModelConfig& c = (*model)->config();
  EXPECT_EQ(c.architecture, "llama");
  EXPECT_EQ(c.n_vocab, 32000);
  EXPECT_EQ(c.n_embd, 256);
  EXPECT_EQ(c.n_layer, 8);
  EXPECT_EQ(c.n_head, 8);
  EXPECT_EQ(c.n_head_kv, 4);
  EXPECT_EQ(c.n_ff, 768);
  EXPECT_EQ(c.head_dim_k, 32);
  EXPECT_EQ(c.n_rot, 32);
  EXPECT_EQ(c.n_ctx_train, 512);
  EXPECT_FLOAT_EQ(c.rope_freq_base, 10000.0f);
  EXPECT_FLOAT_EQ(c.rope_freq_scale, 1.0f);
  EXPECT_FLOAT_EQ(c.rms_eps, 1e-5f);
  EXPECT_FALSE(c.tied_output);
  EXPECT_FALSE(c.has_rope_freqs);
}

}  // namespace
}  // namespace plumb::test

namespace plumb::test {
namespace {

TEST(ModelWeights, ProgressReportsEveryTensorByte) {
  PLUMB_REQUIRE_SHARED(src, "models/austen-21m-q4_0.gguf");
  uint64_t last_done = 0, last_total = 0;
  int calls = 0;
  ModelOptions opts;
  opts.load_tokenizer = false;
  opts.progress = [&](uint64_t done, uint64_t total) {
    EXPECT_GE(done, last_done);
    last_done = done;
    last_total = total;
    ++calls;
  };
  auto model = Model::load(src, opts);
  ASSERT_TRUE(model.ok()) << model.status().message();
  EXPECT_GE(calls, 2);
  EXPECT_EQ(last_done, last_total);
  EXPECT_GT(last_total, 14000000u);
}

}  // namespace
}  // namespace plumb::test
