// Session behaviour: batching and incremental decoding give the logits of one batch (to the last
// bits: see kAcrossContracts), keeping only the last rows' logits gives those rows,
// truncate() rewinds, context overflow is an error that leaves the session unchanged, the
// thread count does not change results, and the F32 cache is at least as close as F16.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "model/model.h"
#include "model_ref.h"
#include "test_util.h"

namespace plumb::test {
namespace {

const std::vector<int32_t> kTokens = {1, 739, 338, 263, 8760, 21103, 635, 24084, 3192, 29892, 393, 263, 2323, 767};

double nmse(const float* a, const float* b, int64_t n) {
  double e = 0, r = 0;
  for (int64_t i = 0; i < n; ++i) {
    e += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    r += double(b[i]) * b[i];
  }
  return e / r;
}

// Prompt runs of 4 tokens or more follow matmul contract S and shorter ones the lane contract
// (matmul_internal.h; the same on every CPU), so how the tokens are split into batches changes
// the last bits, which the F16 cache can round into ~1e-9 NMSE (plumb's whole distance to
// float64 is 2e-9 here).
constexpr double kAcrossContracts = 1e-8;

class ModelSession : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string path = shared_path("models/austen-21m-q4_k_m.gguf");
    if (path.empty()) GTEST_SKIP() << "missing shared data: models/austen-21m-q4_k_m.gguf";
    auto m = Model::load(path, without_tokenizer());
    ASSERT_TRUE(m.ok()) << m.status().message();
    model_ = std::move(*m);
    n_vocab_ = model_->config().n_vocab;
    full_ = plumb_logits(*model_, kTokens);
  }
  std::unique_ptr<Model> model_;
  int64_t n_vocab_ = 0;
  std::vector<float> full_;  // one batch, every position
};

TEST_F(ModelSession, IncrementalAndSplitBatchesMatchOneBatch) {
  SessionOptions opts;
  opts.n_batch = 5;
  const std::vector<float> split = plumb_logits(*model_, kTokens, opts);
  ASSERT_EQ(split.size(), full_.size());
  EXPECT_LT(nmse(split.data(), full_.data(), static_cast<int64_t>(full_.size())), kAcrossContracts);

  auto s = Session::create(*model_, {});
  ASSERT_TRUE(s.ok());
  for (size_t t = 0; t < kTokens.size(); ++t) {
    ASSERT_TRUE((*s)->decode(std::span(&kTokens[t], 1), false).ok());
    ASSERT_EQ((*s)->n_logit_rows(), 1);
    EXPECT_LT(nmse((*s)->logits(0), full_.data() + t * n_vocab_, n_vocab_), kAcrossContracts) << "position " << t;
  }
  EXPECT_EQ((*s)->n_past(), static_cast<int>(kTokens.size()));
}

TEST_F(ModelSession, KeepingLogitsFromAPositionGivesThoseRows) {
  for (int n_batch : {512, 5}) {  // one batch; batches of which the first keep nothing
    SessionOptions opts;
    opts.n_batch = n_batch;
    auto s = Session::create(*model_, opts);
    ASSERT_TRUE(s.ok());
    const int64_t first = 7;
    ASSERT_TRUE((*s)->decode_keeping(kTokens, first).ok());
    ASSERT_EQ((*s)->n_logit_rows(), static_cast<int64_t>(kTokens.size()) - first);
    for (int64_t i = 0; i < (*s)->n_logit_rows(); ++i) {
      EXPECT_LT(nmse((*s)->logits(i), full_.data() + (first + i) * n_vocab_, n_vocab_), kAcrossContracts) << i;
    }
    EXPECT_EQ((*s)->n_past(), static_cast<int>(kTokens.size()));
    EXPECT_FALSE((*s)->decode_keeping(std::span(kTokens).subspan(0, 2), 2).ok());
  }
}

TEST_F(ModelSession, TruncateRewinds) {
  auto s = Session::create(*model_, {});
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE((*s)->decode(kTokens, false).ok());
  (*s)->truncate(4);
  EXPECT_EQ((*s)->n_past(), 4);
  ASSERT_TRUE((*s)->decode(std::span(kTokens).subspan(4), true).ok());
  ASSERT_EQ((*s)->n_logit_rows(), static_cast<int64_t>(kTokens.size() - 4));
  const int64_t last = static_cast<int64_t>(kTokens.size()) - 1;
  EXPECT_LT(nmse((*s)->logits(last - 4), full_.data() + last * n_vocab_, n_vocab_), kAcrossContracts);
}

TEST_F(ModelSession, ContextOverflowIsAnErrorAndChangesNothing) {
  SessionOptions opts;
  opts.n_ctx = 16;
  auto s = Session::create(*model_, opts);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)->n_ctx(), 16);
  ASSERT_TRUE((*s)->decode(kTokens, false).ok());
  Status st = (*s)->decode(kTokens, false);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("context"), std::string::npos) << st.message();
  EXPECT_EQ((*s)->n_past(), static_cast<int>(kTokens.size()));
}

TEST_F(ModelSession, DefaultContextIsTrainingContext) {
  auto s = Session::create(*model_, {});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)->n_ctx(), 512);
}

TEST_F(ModelSession, BadTokenIsAnError) {
  auto s = Session::create(*model_, {});
  ASSERT_TRUE(s.ok());
  const std::vector<int32_t> bad = {1, 32000};
  EXPECT_FALSE((*s)->decode(bad, false).ok());
  EXPECT_EQ((*s)->n_past(), 0);
}

TEST_F(ModelSession, ThreadCountDoesNotChangeResults) {
  SessionOptions one;
  one.n_threads = 1;
  const std::vector<float> single = plumb_logits(*model_, kTokens, one);
  ASSERT_EQ(single, full_);
}

TEST_F(ModelSession, F32CacheIsClose) {
  SessionOptions opts;
  opts.cache_type = CacheType::F32;
  const std::vector<float> f32 = plumb_logits(*model_, kTokens, opts);
  EXPECT_LT(nmse(f32.data(), full_.data(), static_cast<int64_t>(full_.size())), 1e-5);
}

}  // namespace
}  // namespace plumb::test
