// Reads every GGUF file under ../shared with the reader and spot-checks known values.
#include <gtest/gtest.h>

#include <time.h>

#include <algorithm>
#include <filesystem>

#include "gguf/gguf.h"
#include "test_util.h"

namespace plumb::gguf {
namespace {

std::vector<std::string> gguf_files_in(const std::string& dir) {
  std::vector<std::string> out;
  if (dir.empty()) return out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.is_regular_file() && e.path().extension() == ".gguf") out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(GgufSharedFiles, EveryFileOpensAndTensorsLieInsideTheFile) {
  int opened = 0;
  for (const char* sub : {"models", "vocab", "quant", "ref"}) {
    for (const std::string& path : gguf_files_in(test::shared_path(sub))) {
      SCOPED_TRACE(path);
      auto file = File::open(path);
      ASSERT_TRUE(file.ok()) << file.status().message();
      const File& f = **file;
      EXPECT_TRUE(f.version() == 2 || f.version() == 3);
      EXPECT_EQ(f.data_offset() % f.alignment(), 0u);
      for (const TensorInfo& t : f.tensors()) {
        EXPECT_GE(t.data, f.bytes() + f.data_offset());
        EXPECT_LE(t.data + t.nbytes, f.bytes() + f.file_size());
        EXPECT_EQ(f.find_tensor(t.name), &t);
      }
      for (const auto& [key, value] : f.metadata()) EXPECT_EQ(f.find(key), &value);
      ++opened;
    }
  }
  if (opened == 0) GTEST_SKIP() << "no GGUF files under " << test::shared_dir();
}

TEST(GgufSharedFiles, AustenF16KnownValues) {
  PLUMB_REQUIRE_SHARED(path, "models/austen-21m-f16.gguf");
  auto file = File::open(path);
  ASSERT_TRUE(file.ok()) << file.status().message();
  const File& f = **file;
  EXPECT_EQ(f.get_string("general.architecture").value(), "llama");
  EXPECT_EQ(f.get_u32("llama.block_count").value(), 8u);
  EXPECT_EQ(f.get_int("llama.block_count").value(), 8);
  EXPECT_FALSE(f.get_string("llama.block_count").ok());
  EXPECT_FALSE(f.get_u32("no.such.key").ok());
  EXPECT_EQ(f.get_u32_or("no.such.key", 7).value(), 7u);
  const TensorInfo* emb = f.find_tensor("token_embd.weight");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(emb->type, TensorType::F16);
  EXPECT_EQ(emb->n_dims, 2);
  auto tokens = f.get_string_array("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens.ok()) << tokens.status().message();
  EXPECT_EQ(static_cast<int64_t>(tokens->size()), emb->ne[1]);
  const TensorInfo* q = f.find_tensor("blk.0.attn_q.weight");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->nbytes, static_cast<uint64_t>(q->n_elements()) * 2);
}

TEST(GgufSharedFiles, QuantAndRefKnownValues) {
  PLUMB_REQUIRE_SHARED(q4k_path, "quant/q4_k.gguf");
  auto q4k = File::open(q4k_path);
  ASSERT_TRUE(q4k.ok()) << q4k.status().message();
  EXPECT_EQ((*q4k)->get_string("quant.type").value(), "Q4_K");
  const TensorInfo* q = (*q4k)->find_tensor("q");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->type, TensorType::Q4_K);
  EXPECT_EQ(q->nbytes, q->n_rows() * (q->ne[0] / 256) * 144);
  const TensorInfo* src = (*q4k)->find_tensor("src");
  ASSERT_NE(src, nullptr);
  EXPECT_EQ(src->type, TensorType::F32);
  EXPECT_EQ(src->ne[0], q->ne[0]);
  PLUMB_REQUIRE_SHARED(ref_path, "ref/smollm2-135m-q4_1.gguf");
  auto ref = File::open(ref_path);
  ASSERT_TRUE(ref.ok()) << ref.status().message();
  EXPECT_EQ((*ref)->get_u32("ref.n_vocab").value(), 49152u);
  EXPECT_EQ((*ref)->get_u32("ref.n_layer").value(), 30u);
}

double thread_cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

// The 7.8 MB llama-bpe vocabulary (128k tokens, 280k merges) should open in well under
// 100 ms. Measured in CPU time of this thread (page faults included), which the load of a
// shared machine does not inflate the way it inflates wall time.
TEST(GgufSharedFiles, LlamaBpeVocabOpensQuickly) {
  PLUMB_REQUIRE_SHARED(path, "vocab/ggml-vocab-llama-bpe.gguf");
  double best_ms = 1e9;
  for (int i = 0; i < 3; ++i) {
    const double t0 = thread_cpu_ms();
    auto file = File::open(path);
    const double t1 = thread_cpu_ms();
    ASSERT_TRUE(file.ok()) << file.status().message();
    EXPECT_EQ(file.value()->get_string_array("tokenizer.ggml.tokens")->size(), 128256u);
    best_ms = std::min(best_ms, t1 - t0);
  }
  std::printf("llama-bpe vocab: open + parse %.1f ms CPU (best of 3)\n", best_ms);
  if (kSanitized) GTEST_SKIP() << "sanitizer build: parse time not checked";
  EXPECT_LT(best_ms, 100.0);
}

}  // namespace
}  // namespace plumb::gguf
