// Tokenizers against llama.cpp: its own test files for every vocabulary in ../shared/vocab,
// round trips, the SmolLM2 reference prompts, and the behaviours around the core algorithms.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "gguf/gguf.h"
#include "test_models.h"
#include "test_util.h"
#include "tokenizer/llama_tokenizer.h"
#include "tokenizer/models.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/unicode.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer_fixtures.h"
#include "util/json_value.h"

namespace plumb {
namespace {

using test::vocab_tokenizer;

std::string ids_string(const std::vector<TokenId>& ids) {
  std::ostringstream s;
  for (size_t i = 0; i < ids.size(); ++i) s << (i ? " " : "") << ids[i];
  return s.str();
}

// One test per ../shared/vocab/ggml-vocab-*.gguf. A vocabulary whose tokenizer is not
// supported fails here, naming it; one without a test pair says so in a visible skip.
class TokenizerVocab : public ::testing::TestWithParam<std::string> {};

std::vector<std::string> vocab_params() {
  std::vector<std::string> names = test::vocab_names();
  if (names.empty()) names.push_back("missing");  // keeps the suite visible: it skips
  return names;
}

std::string param_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string name = info.param;
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

TEST_P(TokenizerVocab, MatchesLlamaCppTestFile) {
  const std::string name = GetParam();
  PLUMB_REQUIRE_SHARED(gguf_path, "vocab/ggml-vocab-" + name + ".gguf");
  const Tokenizer* t = vocab_tokenizer(name);
  ASSERT_NE(t, nullptr) << name << ": the vocabulary does not load (see the failure above)";
  const std::string inp = test::shared_path("vocab/ggml-vocab-" + name + ".gguf.inp");
  const std::string out = test::shared_path("vocab/ggml-vocab-" + name + ".gguf.out");
  if (inp.empty() || out.empty()) {
    // gpt-neox ships without a test pair: it loads, and encode/decode must still round-trip.
    const std::string text = "Hello World! 3.14 \t  naïve 🦙 '' ''s\n\n";
    EXPECT_EQ(t->decode(t->encode(text, false, false), false, false), text);
    GTEST_SKIP() << name << ": no .inp/.out pair in ../shared/vocab; only loading and a round "
                 << "trip were checked";
  }
  const auto inputs = test::parse_vocab_inputs(test::read_file_bytes(inp));
  const auto expected = test::parse_vocab_outputs(test::read_file_bytes(out));
  ASSERT_GT(inputs.size(), 0u);
  ASSERT_GE(expected.size(), inputs.size()) << out << " has fewer lines than inputs";
  int mismatches = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const std::vector<TokenId> got = t->encode(inputs[i], false, false);
    if (got != expected[i]) {
      ++mismatches;
      ADD_FAILURE() << name << " input " << i << " '" << inputs[i] << "'\n  got:      "
                    << ids_string(got) << "\n  expected: " << ids_string(expected[i]);
    }
  }
  EXPECT_EQ(mismatches, 0) << "of " << inputs.size() << " inputs";
}

// detokenize(tokenize(x)) == x with the clean-up of spaces off. Exempt: WordPiece (bert)
// lowercases, strips accents, drops whitespace and control characters and renders "▁"
// word starts as spaces, so llama.cpp cannot restore the text either.
TEST_P(TokenizerVocab, RoundTrip) {
  const std::string name = GetParam();
  PLUMB_REQUIRE_SHARED(gguf_path, "vocab/ggml-vocab-" + name + ".gguf");
  const std::string inp = test::shared_path("vocab/ggml-vocab-" + name + ".gguf.inp");
  if (inp.empty()) GTEST_SKIP() << name << ": no .inp file";
  const Tokenizer* t = vocab_tokenizer(name);
  ASSERT_NE(t, nullptr);
  if (t->model_name() == "bert") {
    GTEST_SKIP() << name << ": WordPiece is not reversible (lowercase, accents, whitespace)";
  }
  for (const std::string& text : test::parse_vocab_inputs(test::read_file_bytes(inp))) {
    EXPECT_EQ(t->decode(t->encode(text, false, false), false, false), text) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(SharedVocab, TokenizerVocab, ::testing::ValuesIn(vocab_params()),
                         param_name);

// The SmolLM2 prompts of ../shared/ref (no BOS: add_bos_token is false; `smollm`
// pre-tokenizer) and the formatted ChatML prompts of chat-smollm2.json (special tokens parsed).
TEST(TokenizerSmollm2, ReferencePromptTokens) {
  PLUMB_REQUIRE_SHARED(ref_path, "ref/smollm2-135m-q4_1.gguf");
  PLUMB_REQUIRE_SMOLLM2(model);
  const Tokenizer* t = test::file_tokenizer(model);
  ASSERT_NE(t, nullptr);
  EXPECT_FALSE(t->add_bos());
  auto ref = gguf::File::open(ref_path);
  ASSERT_TRUE(ref.ok()) << ref.status().message();
  for (int k = 0; k < 3; ++k) {
    auto prompt = ref.value()->get_string("ref.p" + std::to_string(k) + ".prompt");
    ASSERT_TRUE(prompt.ok()) << prompt.status().message();
    const gguf::TensorInfo* tokens = ref.value()->find_tensor("p" + std::to_string(k) + ".tokens");
    ASSERT_NE(tokens, nullptr);
    const auto* data = reinterpret_cast<const int32_t*>(tokens->data);
    const std::vector<TokenId> expected(data, data + tokens->n_elements());
    EXPECT_EQ(t->encode(prompt.value(), true, false), expected) << prompt.value();
  }
}

TEST(TokenizerSmollm2, ChatPromptTokens) {
  PLUMB_REQUIRE_SHARED(json_path, "ref/chat-smollm2.json");
  PLUMB_REQUIRE_SMOLLM2(model);
  const Tokenizer* t = test::file_tokenizer(model);
  ASSERT_NE(t, nullptr);
  const Result<json::Value> ref = json::Value::parse_file(json_path);
  ASSERT_TRUE(ref.ok()) << ref.status().message();
  int checked = 0;
  for (const json::Value& c : (*ref)["conversations"].items()) {
    const std::string& formatted = c["formatted"].as_string();
    std::vector<TokenId> expected;
    for (const json::Value& id : c["prompt_tokens"].items()) {
      expected.push_back(static_cast<TokenId>(id.as_int()));
    }
    EXPECT_EQ(t->encode(formatted, false, true), expected) << formatted;
    ++checked;
  }
  EXPECT_GT(checked, 0);
  const TokenId im_end = t->encode("<|im_end|>", false, true).at(0);
  EXPECT_TRUE(t->is_eog(im_end));
  EXPECT_TRUE(t->is_eog(t->eos()));
}

TEST(TokenizerBehaviour, SpmBosSpacePrefixAndSpecialParsing) {
  const Tokenizer* t = vocab_tokenizer("llama-spm");
  if (t == nullptr) GTEST_SKIP() << "missing shared data: vocab/ggml-vocab-llama-spm.gguf";
  EXPECT_EQ(t->model_name(), "llama");
  EXPECT_TRUE(t->add_bos());
  EXPECT_EQ(t->bos(), 1);
  EXPECT_EQ(t->eos(), 2);
  EXPECT_EQ(t->encode("Hello world", true, false), (std::vector<TokenId>{1, 15043, 3186}));
  // "<s>" is a control token: text without parse_special, BOS with it; the text after a
  // special token gets the ▁ prefix again.
  EXPECT_EQ(t->encode("<s>", false, true), (std::vector<TokenId>{1}));
  EXPECT_NE(t->encode("<s>", false, false), (std::vector<TokenId>{1}));
  EXPECT_EQ(t->encode("<s>Hello", false, true), (std::vector<TokenId>{1, 15043}));
  // Byte fallback and pieces.
  EXPECT_EQ(t->token_to_piece(13, false), "\n");
  EXPECT_EQ(t->token_to_piece(15043, false), " Hello");
  EXPECT_EQ(t->token_to_piece(1, false), "");
  EXPECT_EQ(t->token_to_piece(1, true), "<s>");
  // The leading space of the first piece is dropped; after a hidden BOS it is not (llama.cpp).
  EXPECT_EQ(t->decode({15043, 3186}, false, true), "Hello world");
  EXPECT_EQ(t->decode({1, 15043, 3186}, false, true), " Hello world");
  EXPECT_EQ(t->decode({1, 15043, 3186}, true, true), "<s> Hello world");
  EXPECT_TRUE(t->is_eog(2));
  EXPECT_FALSE(t->is_eog(1));
}

TEST(TokenizerBehaviour, Llama3BosAndEndOfGeneration) {
  const Tokenizer* t = vocab_tokenizer("llama-bpe");
  if (t == nullptr) GTEST_SKIP() << "missing shared data: vocab/ggml-vocab-llama-bpe.gguf";
  EXPECT_EQ(t->model_name(), "gpt2");
  EXPECT_TRUE(t->add_bos());  // llama3 pre-tokenizer default
  EXPECT_EQ(t->encode("Hello", true, false), (std::vector<TokenId>{128000, 9906}));
  EXPECT_TRUE(t->is_eog(128001));  // <|end_of_text|>
  EXPECT_TRUE(t->is_eog(128009));  // <|eot_id|>
  EXPECT_FALSE(t->is_eog(128000));
  EXPECT_EQ(t->encode("<|eot_id|>", false, true), (std::vector<TokenId>{128009}));
}

TEST(TokenizerBehaviour, BpeCleanSpacesOnlyWhenAsked) {
  const Tokenizer* t = vocab_tokenizer("gpt-2");
  if (t == nullptr) GTEST_SKIP() << "missing shared data: vocab/ggml-vocab-gpt-2.gguf";
  const std::string text = "Hello , world ! It 's a ' test ' .";
  const std::vector<TokenId> ids = t->encode(text, false, false);
  EXPECT_EQ(t->decode(ids, false, false), text);
  EXPECT_EQ(t->decode(ids, false, true), "Hello, world! It's a'test '.");
}

TEST(TokenizerBehaviour, UnsupportedModelAndPreTokenizerAreNamed) {
  tok::VocabSpec spec;
  spec.model = "rwkv";
  spec.tokens = {"a", "b"};
  auto t = tok::make_tokenizer(spec);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("unsupported tokenizer model: rwkv"), std::string::npos)
      << t.status().message();
  spec.model = "gpt2";
  spec.pre = "no-such-pre";
  spec.has_merges = true;
  t = tok::make_tokenizer(spec);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("no-such-pre"), std::string::npos) << t.status().message();
}

TEST(TokenizerBehaviour, DuplicateTokensAreRefused) {
  tok::VocabSpec spec;
  spec.model = "llama";
  spec.tokens = {"<unk>", "<s>", "</s>", "a", "a"};
  auto t = tok::make_tokenizer(spec);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("duplicate token"), std::string::npos);
}

TEST(TokenizerCli, TokenizeFormats) {
  PLUMB_REQUIRE_SHARED(vocab, "vocab/ggml-vocab-llama-spm.gguf");
  std::string out;
  ASSERT_EQ(test::run_plumb("tokenize -m " + vocab + " --ids 'Hello world'", &out), 0) << out;
  EXPECT_EQ(out, "[1, 15043, 3186]\n");
  ASSERT_EQ(test::run_plumb("tokenize -m " + vocab + " --no-bos --ids 'Hello world'", &out), 0);
  EXPECT_EQ(out, "[15043, 3186]\n");
  ASSERT_EQ(test::run_plumb("tokenize -m " + vocab + " --no-bos 'Hello'", &out), 0);
  EXPECT_EQ(out, "15043\t' Hello'\n");
  ASSERT_EQ(test::run_plumb("tokenize -m " + vocab + " --pieces 'a\nb'", &out), 0);
  EXPECT_EQ(out, "<s>\n a\n\\n\nb\n");
  ASSERT_EQ(test::run_plumb("tokenize -m " + vocab + " --json --no-bos 'Hi\"'", &out), 0);
  EXPECT_EQ(out.rfind("{\"n_tokens\": ", 0), 0u) << out;
  EXPECT_NE(out.find("\"piece\": \"\\\"\""), std::string::npos) << out;
  ASSERT_EQ(
      test::run_plumb("tokenize -m " + vocab + " --parse-special --ids --no-bos '<s>'", &out), 0);
  EXPECT_EQ(out, "[1]\n");
  const std::string dir = test::temp_dir("tokenize-cli");
  {
    std::ofstream f(dir + "/in.txt", std::ios::binary);
    f << "Hello world";
  }
  ASSERT_EQ(test::run_plumb("tokenize -m " + vocab + " --ids -f " + dir + "/in.txt", &out), 0);
  EXPECT_EQ(out, "[1, 15043, 3186]\n");
  EXPECT_EQ(test::run_plumb("tokenize -m " + vocab + " --ids --json x", &out), 2);
  EXPECT_EQ(test::run_plumb("tokenize --ids x", &out), 2);
  EXPECT_EQ(test::run_plumb("tokenize -m /nonexistent.gguf x", &out), 1);
  EXPECT_EQ(test::run_plumb("tokenize --help", &out), 0);
  EXPECT_NE(out.find("--parse-special"), std::string::npos);
}

}  // namespace
}  // namespace plumb

namespace plumb {
namespace {

// The fast paths against the reference: SPM run word by word (with its cache) against one
// SentencePiece pass over the whole text, as llama.cpp runs it; BPE words from the cache
// against freshly merged ones.
TEST(TokenizerFastPath, SpmWordByWordEqualsWholeText) {
  const Tokenizer* t = vocab_tokenizer("llama-spm");
  if (t == nullptr) GTEST_SKIP() << "missing shared data: vocab/ggml-vocab-llama-spm.gguf";
  const tok::Vocab& vocab = tok::vocab_of(*t);
  ASSERT_TRUE(vocab.spm_independent_words);
  std::vector<std::string> texts;
  const std::string inp = test::shared_path("vocab/ggml-vocab-llama-spm.gguf.inp");
  if (!inp.empty()) {
    texts = test::parse_vocab_inputs(test::read_file_bytes(inp));
  }
  if (const std::string pp = test::shared_path("text/pp-heldout.txt"); !pp.empty()) {
    texts.push_back(test::read_file_bytes(pp));
  }
  // Broken UTF-8 around ▁: the cut rule must only cut after whole characters.
  texts.push_back(
      std::string("a\xE2\x96\x81 \xF0\xE2\x96\x81 \xE2\x96 x\xC3 \xE2\x96\x81\xE2\x96\x81y", 29));
  for (const std::string& text : texts) {
    if (text.empty()) continue;  // no fragment at all, hence no ▁ either
    std::string escaped = "\xE2\x96\x81";
    for (char c : text) escaped += c == ' ' ? std::string("\xE2\x96\x81") : std::string(1, c);
    std::vector<TokenId> whole;
    tok::spm_tokenize(vocab, escaped, &whole);
    EXPECT_EQ(t->encode(text, false, false), whole) << text.substr(0, 80);
  }
}

TEST(TokenizerFastPath, BpeCachedWordsEqualFreshOnes) {
  PLUMB_REQUIRE_SHARED(path, "vocab/ggml-vocab-gpt-2.gguf");
  PLUMB_REQUIRE_SHARED(pp, "text/pp-heldout.txt");
  auto file = gguf::File::open(path);
  ASSERT_TRUE(file.ok());
  auto fresh = Tokenizer::from_gguf(*file.value());
  ASSERT_TRUE(fresh.ok());
  const std::string text = test::read_file_bytes(pp);
  const std::vector<TokenId> first = fresh.value()->encode(text, false, false);
  EXPECT_EQ(fresh.value()->encode(text, false, false), first);  // now from the cache
  // Word by word without any cache.
  const tok::Vocab& vocab = tok::vocab_of(*fresh.value());
  auto pre = tok::PreTokenizer::create(vocab.pre);
  ASSERT_TRUE(pre.ok());
  int32_t byte_parts[256];
  for (int b = 0; b < 256; ++b) {
    const int32_t id = vocab.part_ids.count(tok::byte_to_utf8(static_cast<uint8_t>(b)))
                           ? vocab.part_ids.find(tok::byte_to_utf8(static_cast<uint8_t>(b)))->second
                           : -1;
    byte_parts[b] = id;
  }
  std::string storage;
  std::vector<std::string_view> words;
  pre.value()->split(text, &storage, &words);
  std::vector<TokenId> uncached;
  for (std::string_view w : words) tok::bpe_tokenize_word(vocab, byte_parts, w, &uncached);
  EXPECT_EQ(uncached, first);
}

}  // namespace
}  // namespace plumb
