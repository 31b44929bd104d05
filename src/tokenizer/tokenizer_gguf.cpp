// Tokenizer::from_gguf: tokenizer.* metadata of a model or vocab-only GGUF file.
#include "gguf/gguf.h"
#include "tokenizer/llama_tokenizer.h"
#include "tokenizer/tokenizer.h"

namespace plumb {

namespace tok {

Result<VocabSpec> spec_from_gguf(const gguf::File& file) {
  VocabSpec spec;
  if (file.find("tokenizer.ggml.model") == nullptr) {
    return Status::errorf("%s: no tokenizer.ggml.model: the file carries no vocabulary",
                          file.path().c_str());
  }
  PLUMB_ASSIGN_OR_RETURN(spec.model, file.get_string("tokenizer.ggml.model"));
  PLUMB_ASSIGN_OR_RETURN(spec.pre, file.get_string_or("tokenizer.ggml.pre", ""));
  PLUMB_ASSIGN_OR_RETURN(spec.general_name, file.get_string_or("general.name", ""));
  PLUMB_ASSIGN_OR_RETURN(spec.architecture, file.get_string_or("general.architecture", ""));
  if (file.find("tokenizer.ggml.tokens") == nullptr) {
    return Status::errorf("%s: tokenizer.ggml.tokens is missing", file.path().c_str());
  }
  PLUMB_ASSIGN_OR_RETURN(spec.tokens, file.get_string_array("tokenizer.ggml.tokens"));

  // Scores are FLOAT32, or INT32 in some conversions.
  if (const gguf::Value* scores = file.find("tokenizer.ggml.scores")) {
    if (scores->type == gguf::ValueType::ARRAY && scores->array_type == gguf::ValueType::INT32) {
      PLUMB_ASSIGN_OR_RETURN(std::vector<int32_t> ints,
                             file.get_i32_array("tokenizer.ggml.scores"));
      spec.scores.assign(ints.begin(), ints.end());
    } else {
      PLUMB_ASSIGN_OR_RETURN(spec.scores, file.get_f32_array("tokenizer.ggml.scores"));
    }
  }
  if (file.find("tokenizer.ggml.token_type") != nullptr) {
    PLUMB_ASSIGN_OR_RETURN(spec.token_types, file.get_i32_array("tokenizer.ggml.token_type"));
  }
  if (file.find("tokenizer.ggml.merges") != nullptr) {
    PLUMB_ASSIGN_OR_RETURN(spec.merges, file.get_string_array("tokenizer.ggml.merges"));
    spec.has_merges = true;
  }

  static constexpr const char* kIdKeys[] = {
      "bos_token_id",     "eos_token_id",     "eot_token_id",     "eom_token_id",
      "unknown_token_id", "seperator_token_id", "padding_token_id", "mask_token_id",
      "fim_pre_token_id", "fim_suf_token_id", "fim_mid_token_id", "fim_pad_token_id",
      "fim_rep_token_id", "fim_sep_token_id", "prefix_token_id",  "suffix_token_id",
      "middle_token_id"};
  for (const char* name : kIdKeys) {
    const std::string key = std::string("tokenizer.ggml.") + name;
    if (file.find(key) == nullptr) continue;
    PLUMB_ASSIGN_OR_RETURN(int64_t id, file.get_int(key));
    spec.special_ids.emplace_back(name, id);
  }
  struct FlagKey {
    const char* key;
    std::optional<bool>* out;
  };
  const FlagKey flags[] = {{"tokenizer.ggml.add_bos_token", &spec.add_bos},
                           {"tokenizer.ggml.add_eos_token", &spec.add_eos},
                           {"tokenizer.ggml.add_sep_token", &spec.add_sep},
                           {"tokenizer.ggml.add_space_prefix", &spec.add_space_prefix}};
  for (const FlagKey& flag : flags) {
    if (file.find(flag.key) == nullptr) continue;
    PLUMB_ASSIGN_OR_RETURN(bool value, file.get_bool(flag.key));
    *flag.out = value;
  }
  return spec;
}

}  // namespace tok

Result<std::unique_ptr<Tokenizer>> Tokenizer::from_gguf(const gguf::File& file) {
  PLUMB_ASSIGN_OR_RETURN(tok::VocabSpec spec, tok::spec_from_gguf(file));
  Result<std::unique_ptr<Tokenizer>> tokenizer = tok::make_tokenizer(std::move(spec));
  if (!tokenizer.ok()) return tokenizer.status().with_context(file.path());
  return tokenizer;
}

}  // namespace plumb
