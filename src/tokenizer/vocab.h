// The vocabulary as llama.cpp's llama_vocab::impl::load builds it from tokenizer.* metadata:
// token texts, scores and attributes, BPE merge ranks, special token ids and the flags that
// steer tokenization (add_bos, add_space_prefix, clean_spaces, ignore_merges, ...).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "util/status.h"

namespace plumb::tok {

// Token attributes (llama.cpp's llama_token_attr bits).
enum TokenAttr : uint32_t {
  kAttrUndefined = 0,
  kAttrUnknown = 1u << 0,
  kAttrUnused = 1u << 1,
  kAttrNormal = 1u << 2,
  kAttrControl = 1u << 3,
  kAttrUserDefined = 1u << 4,
  kAttrByte = 1u << 5,
  kAttrNormalized = 1u << 6,
  kAttrLstrip = 1u << 7,
  kAttrRstrip = 1u << 8,
};

// The raw tokenizer metadata, independent of the container it came from (GGUF, tests).
struct VocabSpec {
  std::string model;        // tokenizer.ggml.model
  std::string pre;          // tokenizer.ggml.pre ("" when absent)
  std::string general_name; // general.name (some attribute fix-ups key on it)
  std::string architecture; // general.architecture
  std::vector<std::string> tokens;
  std::vector<float> scores;        // empty when absent
  std::vector<int32_t> token_types; // empty when absent (GGUF token type numbers)
  std::vector<std::string> merges;  // "left right"
  bool has_merges = false;
  // tokenizer.ggml.<name> integer ids present in the metadata, e.g. {"bos_token_id", 1}.
  std::vector<std::pair<std::string, int64_t>> special_ids;
  std::optional<bool> add_bos, add_eos, add_sep, add_space_prefix;
};

struct TokenData {
  std::string text;
  float score = 0.0f;
  uint32_t attr = kAttrNormal;
};

// Heterogeneous string hashing so lookups by string_view allocate nothing.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept;
};
struct StringEq {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const noexcept { return a == b; }
};
using TextMap = std::unordered_map<std::string, int32_t, StringHash, StringEq>;

enum class VocabType { kSpm, kBpe, kWpm };

// Pre-tokenizers (llama.cpp's llama_vocab_pre_type values we implement).
enum class PreType {
  kDefault,
  kLlama3,
  kDeepseekLlm,
  kDeepseekCoder,
  kFalcon,
  kMpt,
  kStarcoder,
  kGpt2,
  kRefact,
  kCommandR,
  kStablelm2,
  kQwen2,
  kOlmo,
  kDbrx,
  kSmaug,
  kPoro,
  kChatglm4,
  kViking,
  kJais,
  kTekken,
  kSmollm,
  kCodeshell,
  kBloom,
  kGpt3Finnish,
  kExaone,
  kChameleon,
  kMinerva,
  kGpt4o,
};

struct Vocab {
  VocabType type = VocabType::kSpm;
  std::string model_name;
  std::string pre_name;
  PreType pre = PreType::kDefault;

  std::vector<TokenData> tokens;
  TextMap token_to_id;
  int max_token_len = 0;

  // BPE merges. Every string that is one side of a merge gets an id ("part"); a merge maps the
  // pair of part ids to its rank and to the part id of the joined string (-1 when the joined
  // string is no part itself, so it can take part in no further merge).
  TextMap part_ids;
  struct Merge {
    int32_t rank;
    int32_t joined;
  };
  std::unordered_map<uint64_t, Merge> merges;

  int32_t bos = -1, eos = -1, eot = -1, eom = -1, unk = -1, sep = -1, pad = -1, mask = -1;
  int32_t fim_pre = -1, fim_suf = -1, fim_mid = -1, fim_pad = -1, fim_rep = -1, fim_sep = -1;
  std::vector<int32_t> eog_ids;  // sorted

  bool add_space_prefix = false;
  bool add_bos = false;
  bool add_eos = false;
  bool add_sep = false;
  bool ignore_merges = false;
  bool clean_spaces = false;
  bool escape_whitespaces = true;
  // SPM: no token holds a ▁ after a character other than ▁, so no merge can cross the
  // start of a ▁ run and the text may be tokenized run by run (see spm_segments).
  bool spm_independent_words = false;
  bool lowercase = true;      // WordPiece normaliser
  bool strip_accents = true;  // WordPiece normaliser

  // Control, user-defined and unknown tokens, longest text first: the order in which
  // special-token partitioning looks for them.
  std::vector<int32_t> special_tokens;
  // token_to_piece(id, render_special = true) for every token.
  std::vector<std::string> pieces;

  int32_t find(std::string_view text) const {
    auto it = token_to_id.find(text);
    return it == token_to_id.end() ? -1 : it->second;
  }
  const Merge* find_merge(int32_t left_part, int32_t right_part) const {
    auto it = merges.find((static_cast<uint64_t>(static_cast<uint32_t>(left_part)) << 32) |
                          static_cast<uint32_t>(right_part));
    return it == merges.end() ? nullptr : &it->second;
  }
  bool is_eog(int32_t id) const;
  // SPM/WPM byte token for `byte` ("<0xNN>", else the byte itself), -1 when the vocabulary has
  // neither.
  int32_t byte_token(uint8_t byte) const;
};

// Builds the vocabulary; errors name the key and what was wrong with it.
Result<Vocab> build_vocab(VocabSpec spec);

}  // namespace plumb::tok
