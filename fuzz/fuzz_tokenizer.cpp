// libFuzzer target for the tokenizers: arbitrary bytes through several vocabularies of
// ../shared/vocab (SentencePiece, byte-level BPE with the Llama 3 / GPT-2 / chained regexes,
// WordPiece), with and without special-token parsing, then back through decode. ASan catches
// any out-of-range access; the checks below trap on ids outside the vocabulary and on a round
// trip that llama.cpp would get right (valid UTF-8, no special parsing, lossless vocabulary,
// for SentencePiece no literal U+2581).
//
// Vocabularies come from $PLUMB_SHARED/vocab or ../shared/vocab (relative to the working
// directory); without them every input is accepted and ignored.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"
#include "util/utf8.h"

namespace {

struct Loaded {
  std::unique_ptr<plumb::Tokenizer> tokenizer;
  // decode(encode(valid UTF-8)) gives the text back. Not falcon: its vocabulary lacks some
  // control bytes, which llama.cpp drops.
  bool lossless;
};

std::vector<Loaded> load_all() {
  std::vector<Loaded> out;
  const char* env = std::getenv("PLUMB_SHARED");
  const std::string dir = (env != nullptr && *env != '\0' ? std::string(env) : "../shared") + "/vocab/";
  const std::pair<const char*, bool> vocabs[] = {{"llama-spm", true},      {"gpt-2", true},
                                                 {"llama-bpe", true},      {"falcon", false},
                                                 {"deepseek-coder", false}, {"bert-bge", false}};
  for (const auto& [name, lossless] : vocabs) {
    auto file = plumb::gguf::File::open(dir + "ggml-vocab-" + name + ".gguf");
    if (!file.ok()) continue;
    auto tokenizer = plumb::Tokenizer::from_gguf(*file.value());
    if (!tokenizer.ok()) __builtin_trap();  // a shipped vocabulary must load
    out.push_back({std::move(tokenizer.value()), lossless});
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<Loaded> tokenizers = load_all();
  if (tokenizers.empty() || size == 0) return 0;
  // First byte: which vocabulary and which options; the rest is the text.
  const uint8_t control = data[0];
  const Loaded& loaded = tokenizers[control % tokenizers.size()];
  const bool parse_special = (control >> 4) & 1;
  const bool add_special = (control >> 5) & 1;
  const bool render_special = (control >> 6) & 1;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);

  const plumb::Tokenizer& t = *loaded.tokenizer;
  const std::vector<plumb::TokenId> ids = t.encode(text, add_special, parse_special);
  for (plumb::TokenId id : ids) {
    if (id < 0 || id >= t.n_vocab()) __builtin_trap();
    (void)t.token_to_piece(id, render_special);
    (void)t.is_eog(id);
  }
  const std::string decoded = t.decode(ids, render_special, true);
  // A literal U+2581 comes back from SentencePiece pieces as a space (llama.cpp too).
  const bool has_space_mark = text.find("\xE2\x96\x81") != std::string::npos;
  if (loaded.lossless && !parse_special && !add_special && plumb::find_invalid_utf8(text) == std::string_view::npos &&
      !(t.model_name() == "llama" && has_space_mark) && t.decode(ids, false, false) != text) {
    __builtin_trap();
  }
  (void)decoded;
  return 0;
}
