// Hostile input: invalid UTF-8, NUL bytes, a megabyte of one character, nothing but special
// tokens. Every tokenizer must give a result, never crash or go quadratic. CI runs this suite
// again under AddressSanitizer.
#include <gtest/gtest.h>

#include <ctime>
#include <random>
#include <string>

#include "tokenizer/tokenizer.h"
#include "tokenizer_fixtures.h"

namespace plumb {
namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr double kSlowdown = 8.0;  // AddressSanitizer build
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr double kSlowdown = 8.0;
#else
constexpr double kSlowdown = 1.0;
#endif
#else
constexpr double kSlowdown = 1.0;
#endif

// Processor time of this process: the bound holds on a loaded machine too.
double cpu_seconds() { return static_cast<double>(std::clock()) / CLOCKS_PER_SEC; }

// One vocabulary per tokenizer model and pre-tokenizer family.
const std::vector<const char*> kVocabs = {"llama-spm", "llama-bpe", "gpt-2",  "qwen2",    "falcon",
                               "mpt",       "bert-bge",  "deepseek-llm", "starcoder"};

void check_ids(const Tokenizer& t, const std::vector<TokenId>& ids) {
  for (TokenId id : ids) {
    ASSERT_GE(id, 0);
    ASSERT_LT(id, t.n_vocab());
  }
}

// The 1 MB tests take the tokenizer models and the regex shapes that differ in their slow
// paths (one regex with lookaheads, a chain of several, SentencePiece, WordPiece).
const std::vector<const char*> kMegabyteVocabs = {"llama-spm", "llama-bpe", "falcon", "bert-bge"};

template <class Fn>
void for_each_vocab(const std::vector<const char*>& names, Fn fn) {
  int loaded = 0;
  for (const char* name : names) {
    const Tokenizer* t = test::vocab_tokenizer(name);
    if (t == nullptr) continue;
    ++loaded;
    SCOPED_TRACE(name);
    fn(name, *t);
  }
  if (loaded == 0) GTEST_SKIP() << "missing shared data: vocab/";
}

TEST(TokenizerHostile, InvalidUtf8) {
  std::mt19937 rng(1234);
  std::vector<std::string> inputs = {
      "\xff", "\xc3", "\xe2\x96", "\xf0\x9f\x98", "\x80\x80\x80", "a\xc3(b", "\xed\xa0\x80",
      "\xf4\x90\x80\x80", "\xf7\xbf\xbf\xbf x", "\xc0\x80", "\xe0\x80\xaf", " \xfe \xff "};
  for (int n = 0; n < 50; ++n) {
    std::string s(1 + rng() % 64, '\0');
    for (char& c : s) c = static_cast<char>(rng());
    inputs.push_back(s);
  }
  for_each_vocab(kVocabs, [&](const char*, const Tokenizer& t) {
    for (const std::string& s : inputs) {
      for (bool special : {false, true}) {
        const std::vector<TokenId> ids = t.encode(s, true, special);
        check_ids(t, ids);
        (void)t.decode(ids, special, true);
      }
    }
  });
}

TEST(TokenizerHostile, NulBytes) {
  const std::string text("a\0b\0\0 c\0", 8);
  for_each_vocab(kVocabs, [&](const char* name, const Tokenizer& t) {
    const std::vector<TokenId> ids = t.encode(text, false, false);
    check_ids(t, ids);
    if (t.model_name() != "bert") {
      EXPECT_EQ(t.decode(ids, false, false), text) << name;  // NUL survives the round trip
    }
    check_ids(t, t.encode(std::string(1000, '\0'), true, true));
  });
}

// 1 MB of one character (bound: 2 s of CPU; quadratic work would take hours), for characters that stress different paths: one long word, one long
// whitespace run (lookaheads), digits (groups of three), punctuation, a multi-byte letter,
// newlines, a byte-fallback character.
TEST(TokenizerHostile, MegabyteOfOneCharacterIsFast) {
  const std::vector<std::string> units = {"a", " ", "1", "!", "\xC3\xA9", "\n", "\xF0\x9F\xA6\x99"};
  const double limit_s = 2.0 * kSlowdown;
  for_each_vocab(kMegabyteVocabs, [&](const char* name, const Tokenizer& t) {
    for (const std::string& unit : units) {
      std::string text;
      while (text.size() < (1u << 20)) text += unit;
      const double start = cpu_seconds();
      const std::vector<TokenId> ids = t.encode(text, false, false);
      const double seconds = cpu_seconds() - start;
      EXPECT_LT(seconds, limit_s) << name << ": 1 MB of '" << unit << "' took " << seconds
                                  << " s of CPU";
      const bool only_space = unit == " " || unit == "\n" || unit == "\t";
      if (t.model_name() != "bert" || !only_space) EXPECT_FALSE(ids.empty()) << name;
      if (t.model_name() != "bert") {
        EXPECT_EQ(t.decode(ids, false, false), text) << name << ": 1 MB of '" << unit << "'";
      }
    }
  });
}

TEST(TokenizerHostile, OnlySpecialTokenText) {
  struct Case {
    const char* vocab;
    const char* special;
  };
  const Case cases[] = {{"llama-spm", "</s>"}, {"llama-bpe", "<|eot_id|>"},
                        {"qwen2", "<|im_end|>"}, {"bert-bge", "[SEP]"}};
  int ran = 0;
  for (const Case& c : cases) {
    const Tokenizer* t = test::vocab_tokenizer(c.vocab);
    if (t == nullptr) continue;
    ++ran;
    const std::vector<TokenId> one = t->encode(c.special, false, true);
    ASSERT_EQ(one.size(), 1u) << c.vocab;
    std::string text;
    for (int i = 0; i < 100000; ++i) text += c.special;
    const double start = cpu_seconds();
    const std::vector<TokenId> ids = t->encode(text, false, true);
    const double seconds = cpu_seconds() - start;
    EXPECT_LT(seconds, 2.0 * kSlowdown) << c.vocab;
    EXPECT_EQ(ids, std::vector<TokenId>(100000, one[0])) << c.vocab;
    EXPECT_EQ(t->decode(ids, true, false), text) << c.vocab;
    EXPECT_EQ(t->decode(ids, false, false), "") << c.vocab;
    // Without parse_special the text is plain text.
    check_ids(*t, t->encode(std::string(c.special) + c.special, true, false));
  }
  if (ran == 0) GTEST_SKIP() << "missing shared data: vocab/";
}

TEST(TokenizerHostile, EmptyAndOutOfRange) {
  for_each_vocab(kVocabs, [&](const char*, const Tokenizer& t) {
    EXPECT_TRUE(t.encode("", false, true).empty());
    EXPECT_EQ(t.token_to_piece(-1, true), "");
    EXPECT_EQ(t.token_to_piece(t.n_vocab(), true), "");
    EXPECT_EQ(t.decode({-5, t.n_vocab() + 3}, true, true), "");
    EXPECT_FALSE(t.is_eog(-1));
  });
}

}  // namespace
}  // namespace plumb
