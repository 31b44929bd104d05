// The generation loop and the streaming text filter, on a fake session and vocabulary so
// they are tested without a model.
#include "sample/generate.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "sample/text_stream.h"

namespace plumb {
namespace {

TEST(TextStream, HoldsBackIncompleteUtf8) {
  EXPECT_EQ(incomplete_utf8_suffix("abc"), 0u);
  EXPECT_EQ(incomplete_utf8_suffix("a\xC3"), 1u);
  EXPECT_EQ(incomplete_utf8_suffix("a\xC3\xA9"), 0u);
  EXPECT_EQ(incomplete_utf8_suffix("\xE2\x82"), 2u);
  EXPECT_EQ(incomplete_utf8_suffix("\xF0\x9F\x98"), 3u);
  EXPECT_EQ(incomplete_utf8_suffix("\xF0\x9F\x98\x80"), 0u);

  TextStream s;
  EXPECT_EQ(s.push("L'\xC3"), "L'");  // É split over two tokens
  EXPECT_EQ(s.push("\x89toile"), "\xC3\x89toile");
  EXPECT_EQ(s.push("\xF0\x9F"), "");
  EXPECT_EQ(s.push("\x98\x80!"), "\xF0\x9F\x98\x80!");
  EXPECT_EQ(s.flush(), "");
  EXPECT_EQ(s.text(), "L'\xC3\x89toile\xF0\x9F\x98\x80!");
}

TEST(TextStream, StopsBeforeAStopStringSplitOverPieces) {
  TextStream s({"\nUser:"});
  EXPECT_EQ(s.push("Hello"), "Hello");
  EXPECT_EQ(s.push(" there\nUs"), " there");  // "\nUs" may begin the stop string
  EXPECT_FALSE(s.stopped());
  EXPECT_EQ(s.push("er: more"), "");
  EXPECT_TRUE(s.stopped());
  EXPECT_EQ(s.text(), "Hello there");
  EXPECT_EQ(s.push("ignored"), "");
}

TEST(TextStream, ReleasesTextThatTurnsOutNotToBeAStop) {
  TextStream s({"###"});
  EXPECT_EQ(s.push("a #"), "a ");
  EXPECT_EQ(s.push("# b"), "## b");
  EXPECT_EQ(s.push("#"), "");
  EXPECT_EQ(s.flush(), "#");  // generation ended: the held-back text is real output
  EXPECT_EQ(s.text(), "a ## b#");
}

// A vocabulary of n tokens whose pieces are "<i>"; token 0 ends generation.
class FakeTokenizer : public Tokenizer {
 public:
  explicit FakeTokenizer(int n) : n_(n) {}
  std::vector<TokenId> encode(std::string_view, bool, bool) const override { return {}; }
  std::string token_to_piece(TokenId id, bool) const override {
    if (id == 0) return "";
    std::string piece = "<";
    piece += std::to_string(id);
    piece += '>';
    return piece;
  }
  std::string decode(const std::vector<TokenId>&, bool, bool) const override { return {}; }
  int32_t n_vocab() const override { return n_; }
  std::string_view token_text(TokenId) const override { return {}; }
  TokenId bos() const override { return -1; }
  TokenId eos() const override { return 0; }
  bool add_bos() const override { return false; }
  bool add_eos() const override { return false; }
  bool is_eog(TokenId id) const override { return id == 0; }
  std::string_view model_name() const override { return "fake"; }

 private:
  int n_;
};

// A "model" that predicts (last token + 1) mod n_vocab; records what it was asked to decode.
class FakeSession : public Session {
 public:
  FakeSession(int n_vocab, int n_ctx) : n_vocab_(n_vocab), n_ctx_(n_ctx), row_(n_vocab) {}
  Status decode_keeping(std::span<const int32_t> tokens, int64_t, Tracer*) override {
    if (past_ + static_cast<int>(tokens.size()) > n_ctx_) return Status::error("context full");
    decoded.emplace_back(tokens.begin(), tokens.end());
    past_ += static_cast<int>(tokens.size());
    std::fill(row_.begin(), row_.end(), 0.0f);
    row_[(tokens.back() + 1) % n_vocab_] = 10.0f;
    return Status();
  }
  const float* logits(int64_t) const override { return row_.data(); }
  int64_t n_logit_rows() const override { return 1; }
  int n_past() const override { return past_; }
  int n_ctx() const override { return n_ctx_; }
  void truncate(int n) override { past_ = std::min(past_, n); }

  std::vector<std::vector<TokenId>> decoded;

 private:
  int n_vocab_;
  int n_ctx_;
  int past_ = 0;
  std::vector<float> row_;
};

SamplingParams greedy() {
  SamplingParams p;
  p.temperature = 0.0f;
  return p;
}

TEST(Generate, GreedyUntilEndOfGeneration) {
  FakeTokenizer vocab(8);
  FakeSession session(8, 64);
  Sampler sampler(greedy());
  Generator gen(session, vocab, sampler);
  std::string streamed;
  GenerateResult r;
  const std::vector<TokenId> prompt = {3, 4};
  ASSERT_TRUE(gen.generate(
                     prompt, {}, [&](std::string_view t) { streamed += t; }, &r)
                  .ok());
  EXPECT_EQ(r.tokens, (std::vector<TokenId>{5, 6, 7, 0}));
  EXPECT_EQ(r.reason, StopReason::EndOfGeneration);
  EXPECT_EQ(r.text, "<5><6><7>");
  EXPECT_EQ(streamed, r.text);
  EXPECT_EQ(r.timings.n_prompt, 2);
  EXPECT_EQ(r.timings.n_decoded, 3);
  EXPECT_EQ(gen.cached(), (std::vector<TokenId>{3, 4, 5, 6, 7}));
}

TEST(Generate, StopsAtTheTokenLimitAndStopStrings) {
  FakeTokenizer vocab(100);
  FakeSession session(100, 64);
  Sampler sampler(greedy());
  Generator gen(session, vocab, sampler);
  GenerateResult r;
  GenerateOptions options;
  options.n_predict = 3;
  const std::vector<TokenId> prompt = {10};
  ASSERT_TRUE(gen.generate(prompt, options, nullptr, &r).ok());
  EXPECT_EQ(r.tokens, (std::vector<TokenId>{11, 12, 13}));
  EXPECT_EQ(r.reason, StopReason::Length);

  gen.clear();
  options.n_predict = -1;
  options.stop_strings = {"3><1"};
  ASSERT_TRUE(gen.generate(prompt, options, nullptr, &r).ok());
  EXPECT_EQ(r.reason, StopReason::StopString);
  EXPECT_EQ(r.text, "<11><12><1");
}

TEST(Generate, StopsWhenTheContextIsFull) {
  FakeTokenizer vocab(100);
  FakeSession session(100, 5);
  Sampler sampler(greedy());
  Generator gen(session, vocab, sampler);
  GenerateResult r;
  const std::vector<TokenId> prompt = {10, 20};
  ASSERT_TRUE(gen.generate(prompt, {}, nullptr, &r).ok());
  EXPECT_EQ(r.reason, StopReason::ContextFull);
  EXPECT_EQ(r.tokens, (std::vector<TokenId>{21, 22, 23, 24}));
  const std::vector<TokenId> too_long(6, 1);
  EXPECT_FALSE(gen.generate(too_long, {}, nullptr, &r).ok());
}

TEST(Generate, ReusesTheCachedPrefixAcrossTurns) {
  FakeTokenizer vocab(100);
  FakeSession session(100, 64);
  Sampler sampler(greedy());
  Generator gen(session, vocab, sampler);
  GenerateOptions options;
  options.n_predict = 2;
  GenerateResult r;
  ASSERT_TRUE(gen.generate(std::vector<TokenId>{1, 2, 3}, options, nullptr, &r).ok());
  EXPECT_EQ(gen.cached(), (std::vector<TokenId>{1, 2, 3, 4}));  // the last sample is not decoded
  // Next turn: the conversation so far (with the reply) plus new tokens; only the suffix
  // after the common prefix is decoded.
  session.decoded.clear();
  ASSERT_TRUE(gen.generate(std::vector<TokenId>{1, 2, 3, 4, 5, 50, 51}, options, nullptr, &r).ok());
  ASSERT_FALSE(session.decoded.empty());
  EXPECT_EQ(session.decoded[0], (std::vector<TokenId>{5, 50, 51}));
  // A diverging history is truncated to the common prefix.
  session.decoded.clear();
  ASSERT_TRUE(gen.generate(std::vector<TokenId>{1, 2, 9}, options, nullptr, &r).ok());
  EXPECT_EQ(session.decoded[0], (std::vector<TokenId>{9}));
  // The same prompt again: its last token is decoded again for fresh logits.
  session.decoded.clear();
  gen.clear();
  ASSERT_TRUE(gen.generate(std::vector<TokenId>{7, 8},
                           GenerateOptions{.n_predict = 0, .stop_strings = {}}, nullptr, &r)
                  .ok());
  session.decoded.clear();
  ASSERT_TRUE(gen.generate(std::vector<TokenId>{7, 8}, options, nullptr, &r).ok());
  EXPECT_EQ(session.decoded[0], (std::vector<TokenId>{8}));
  EXPECT_EQ(r.tokens, (std::vector<TokenId>{9, 10}));
}

TEST(Generate, InterruptStopsBeforeTheNextToken) {
  FakeTokenizer vocab(100);
  FakeSession session(100, 64);
  Sampler sampler(greedy());
  Generator gen(session, vocab, sampler);
  std::atomic<bool> interrupt{false};
  GenerateOptions options;
  options.interrupt = &interrupt;
  GenerateResult r;
  ASSERT_TRUE(
      gen.generate(
             std::vector<TokenId>{1}, options, [&](std::string_view) { interrupt = true; }, &r)
          .ok());
  EXPECT_EQ(r.reason, StopReason::Interrupted);
  EXPECT_EQ(r.tokens.size(), 1u);
}

}  // namespace
}  // namespace plumb
