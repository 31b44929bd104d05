#include "tokenizer/vocab.h"

#include <algorithm>
#include <functional>

#include "tokenizer/piece.h"

namespace plumb::tok {

size_t StringHash::operator()(std::string_view s) const noexcept {
  return std::hash<std::string_view>{}(s);
}

bool Vocab::is_eog(int32_t id) const {
  return id >= 0 && std::binary_search(eog_ids.begin(), eog_ids.end(), id);
}

int32_t Vocab::byte_token(uint8_t byte) const {
  static const char* hex = "0123456789ABCDEF";
  const char name[6] = {'<', '0', 'x', hex[byte >> 4], hex[byte & 15], '>'};
  int32_t id = find(std::string_view(name, 6));
  if (id < 0) id = find(std::string_view(reinterpret_cast<const char*>(&byte), 1));
  return id;
}

namespace {

struct PreInfo {
  const char* name;
  PreType type;
  bool clean_spaces;   // llama.cpp's clean_up_tokenization_spaces for this pre-tokenizer
  bool ignore_merges;  // a word that is a token is taken whole
  bool add_bos;        // default before tokenizer.ggml.add_bos_token
  bool add_sep;
};

// tokenizer.ggml.pre names as llama.cpp's llama_vocab::impl::load maps them.
constexpr PreInfo kPreTable[] = {
    {"default", PreType::kDefault, true, false, false, false},
    {"llama3", PreType::kLlama3, true, true, true, false},
    {"llama-v3", PreType::kLlama3, true, true, true, false},
    {"llama-bpe", PreType::kLlama3, true, true, true, false},
    {"falcon3", PreType::kLlama3, true, true, true, false},
    {"falcon-h1", PreType::kLlama3, true, true, true, false},
    {"pixtral", PreType::kLlama3, true, true, true, false},
    {"midm-2.0", PreType::kLlama3, true, true, true, false},
    {"lfm2", PreType::kLlama3, true, true, true, false},
    {"deepseek-llm", PreType::kDeepseekLlm, false, false, false, false},
    {"deepseek-coder", PreType::kDeepseekCoder, false, false, false, false},
    {"falcon", PreType::kFalcon, true, false, false, false},
    {"mpt", PreType::kMpt, true, false, false, false},
    {"starcoder", PreType::kStarcoder, true, false, false, false},
    {"gpt-2", PreType::kGpt2, true, false, false, false},
    {"phi-2", PreType::kGpt2, true, false, false, false},
    {"jina-es", PreType::kGpt2, true, false, false, false},
    {"jina-de", PreType::kGpt2, true, false, false, false},
    {"gigachat", PreType::kGpt2, true, false, false, false},
    {"jina-v2-es", PreType::kGpt2, true, false, false, false},
    {"jina-v2-de", PreType::kGpt2, true, false, false, false},
    {"a.x-4.0", PreType::kGpt2, true, false, false, false},
    {"mellum", PreType::kGpt2, true, false, false, false},
    {"modern-bert", PreType::kGpt2, true, false, false, false},
    {"exaone4", PreType::kGpt2, true, false, false, false},
    {"jina-v1-en", PreType::kGpt2, true, false, false, true},
    {"jina-v2-code", PreType::kGpt2, true, false, false, true},
    {"roberta-bpe", PreType::kGpt2, true, false, false, true},
    {"refact", PreType::kRefact, true, false, false, false},
    {"command-r", PreType::kCommandR, false, false, false, false},
    {"qwen2", PreType::kQwen2, false, false, false, false},
    {"deepseek-r1-qwen", PreType::kQwen2, false, false, false, false},
    {"megrez", PreType::kQwen2, true, false, false, false},
    {"stablelm2", PreType::kStablelm2, true, false, false, false},
    {"olmo", PreType::kOlmo, true, false, false, false},
    {"dbrx", PreType::kDbrx, true, false, false, false},
    {"smaug-bpe", PreType::kSmaug, true, false, false, false},
    {"poro-chat", PreType::kPoro, false, false, false, false},
    {"glm4", PreType::kChatglm4, true, false, false, false},
    {"chatglm-bpe", PreType::kChatglm4, true, false, false, false},
    {"viking", PreType::kViking, false, false, false, false},
    {"jais", PreType::kJais, true, false, false, false},
    {"tekken", PreType::kTekken, false, true, true, false},
    {"smollm", PreType::kSmollm, false, false, false, false},
    {"codeshell", PreType::kCodeshell, true, false, false, false},
    {"bloom", PreType::kBloom, true, false, false, false},
    {"gpt3-finnish", PreType::kGpt3Finnish, true, false, false, false},
    {"exaone", PreType::kExaone, true, false, false, false},
    {"chameleon", PreType::kChameleon, false, false, true, false},
    {"minerva-7b", PreType::kMinerva, true, false, false, false},
    {"gpt-4o", PreType::kGpt4o, false, false, false, false},
    {"llama4", PreType::kGpt4o, false, false, false, false},
};

// Token texts llama.cpp recognises as end-of-turn / end-of-generation markers.
constexpr const char* kEotTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
    "<EOT>", "_<EOT>", "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>"};
constexpr const char* kEogTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
    "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
    "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
    "<｜end▁of▁sentence｜>", "[e~["};
constexpr const char* kFimPreTexts[] = {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>",
                                        "<｜fim▁begin｜>", "<PRE>", "▁<PRE>", "<|code_prefix|>",
                                        "<|prefix|>"};
constexpr const char* kFimSufTexts[] = {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>",
                                        "<｜fim▁hole｜>", "<SUF>", "▁<SUF>", "<|code_suffix|>",
                                        "<|suffix|>"};
constexpr const char* kFimMidTexts[] = {"<|fim_middle|>", "<fim-middle>", "<fim_middle>",
                                        "<｜fim▁end｜>", "<MID>", "▁<MID>", "<|code_middle|>",
                                        "<|middle|>"};
constexpr const char* kFimPadTexts[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"};
constexpr const char* kFimRepTexts[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>",
                                        "<reponame>"};
constexpr const char* kFimSepTexts[] = {"<|file_sep|>"};

template <size_t N>
bool one_of(const std::string& text, const char* const (&list)[N]) {
  for (const char* s : list) {
    if (text == s) return true;
  }
  return false;
}

uint32_t attr_of_type(int32_t type) {
  switch (type) {
    case 1: return kAttrNormal;
    case 2: return kAttrUnknown;
    case 3: return kAttrControl;
    case 4: return kAttrUserDefined;
    case 5: return kAttrUnused;
    case 6: return kAttrByte;
    default: return kAttrUndefined;
  }
}

}  // namespace

Result<Vocab> build_vocab(VocabSpec spec) {
  Vocab v;
  v.model_name = spec.model;
  v.pre_name = spec.pre;
  const int64_t n = static_cast<int64_t>(spec.tokens.size());

  // Defaults per tokenizer model, as llama.cpp sets them before reading the metadata.
  if (spec.model == "llama") {
    v.type = VocabType::kSpm;
    v.bos = 1, v.eos = 2, v.unk = 0;
    v.add_space_prefix = true, v.add_bos = true, v.clean_spaces = false;
  } else if (spec.model == "gpt2") {
    v.type = VocabType::kBpe;
    v.bos = 11, v.eos = 11;
    v.escape_whitespaces = false, v.clean_spaces = true;
    if (!spec.has_merges) {
      return Status::error("tokenizer.ggml.merges is missing: a gpt2 (BPE) vocabulary needs it");
    }
    bool found = spec.pre.empty();
    for (const PreInfo& info : kPreTable) {
      if (spec.pre == info.name) {
        v.pre = info.type;
        v.clean_spaces = info.clean_spaces;
        v.ignore_merges = info.ignore_merges;
        v.add_bos = info.add_bos;
        v.add_sep = info.add_sep;
        if (info.type == PreType::kChatglm4) v.bos = -1;
        found = true;
      }
    }
    if (!found) {
      return Status::errorf("unsupported pre-tokenizer: tokenizer.ggml.pre = '%s'",
                            spec.pre.c_str());
    }
  } else if (spec.model == "bert") {
    v.type = VocabType::kWpm;
    v.bos = 101, v.unk = 100, v.sep = 102, v.pad = 0, v.mask = 103;
    v.add_bos = true, v.add_sep = true, v.clean_spaces = true;
  } else {
    return Status::errorf("unsupported tokenizer model: %s", spec.model.c_str());
  }
  if (spec.add_space_prefix) v.add_space_prefix = *spec.add_space_prefix;

  if (n == 0) return Status::error("tokenizer.ggml.tokens is missing or empty");
  if (n > INT32_MAX / 2) return Status::errorf("tokenizer.ggml.tokens has %lld entries", (long long)n);
  if (!spec.scores.empty() && static_cast<int64_t>(spec.scores.size()) < n) {
    return Status::errorf("tokenizer.ggml.scores has %zu entries, fewer than the %lld tokens",
                          spec.scores.size(), (long long)n);
  }
  if (!spec.token_types.empty() && static_cast<int64_t>(spec.token_types.size()) < n) {
    return Status::errorf("tokenizer.ggml.token_type has %zu entries, fewer than the %lld tokens",
                          spec.token_types.size(), (long long)n);
  }

  v.tokens.resize(n);
  v.token_to_id.reserve(n);
  for (int32_t i = 0; i < n; ++i) {
    std::string text = std::move(spec.tokens[i]);
    if (text.empty()) text = "[EMPTY_" + std::to_string(i) + "]";
    auto [it, inserted] = v.token_to_id.emplace(text, i);
    if (!inserted) {
      return Status::errorf("duplicate token in vocabulary: '%s' has ids %d and %d", text.c_str(),
                            it->second, i);
    }
    v.max_token_len = std::max(v.max_token_len, static_cast<int>(text.size()));
    TokenData& t = v.tokens[i];
    t.text = std::move(text);
    t.score = spec.scores.empty() ? 0.0f : spec.scores[i];
    t.attr = spec.token_types.empty() ? kAttrNormal : attr_of_type(spec.token_types[i]);
  }

  if (v.type == VocabType::kSpm) {
    constexpr std::string_view kSpaceMark = "\xE2\x96\x81";
    v.spm_independent_words = true;
    for (const TokenData& t : v.tokens) {
      const std::string_view text = t.text;
      if (text.find(kSpaceMark, 1) == std::string_view::npos) continue;
      bool all_marks = text.size() % kSpaceMark.size() == 0;
      for (size_t i = 0; all_marks && i < text.size(); i += kSpaceMark.size()) {
        all_marks = text.substr(i, kSpaceMark.size()) == kSpaceMark;
      }
      if (!all_marks) {
        v.spm_independent_words = false;
        break;
      }
    }
  }

  if (v.type == VocabType::kBpe) {
    // "left right" split at the first space after the first byte; the first rank of a pair wins.
    for (size_t rank = 0; rank < spec.merges.size(); ++rank) {
      const std::string& m = spec.merges[rank];
      const size_t space = m.find(' ', 1);
      if (space == std::string::npos) continue;
      const std::string_view left(m.data(), space);
      const std::string_view right(m.data() + space + 1, m.size() - space - 1);
      auto part = [&](std::string_view s) {
        auto it = v.part_ids.find(s);
        if (it != v.part_ids.end()) return it->second;
        const int32_t id = static_cast<int32_t>(v.part_ids.size());
        v.part_ids.emplace(std::string(s), id);
        return id;
      };
      const uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(part(left))) << 32) |
                           static_cast<uint32_t>(part(right));
      v.merges.emplace(key, Vocab::Merge{static_cast<int32_t>(rank), -1});
    }
    // The part id of each merge's joined string, now that all parts are known.
    std::vector<std::string> part_text(v.part_ids.size());
    for (const auto& [text, id] : v.part_ids) part_text[id] = text;
    for (auto& [key, merge] : v.merges) {
      const std::string joined = part_text[key >> 32] + part_text[key & 0xFFFFFFFFu];
      auto it = v.part_ids.find(joined);
      merge.joined = it == v.part_ids.end() ? -1 : it->second;
    }
  }

  // Special token ids from the metadata; an id outside the vocabulary keeps the default.
  auto in_range = [&](int32_t& id) {
    if (id >= n) id = -1;
  };
  for (int32_t* id : {&v.bos, &v.eos, &v.unk, &v.sep, &v.pad, &v.mask}) in_range(*id);
  for (const auto& [key, value] : spec.special_ids) {
    int32_t* target = nullptr;
    if (key == "bos_token_id") target = &v.bos;
    else if (key == "eos_token_id") target = &v.eos;
    else if (key == "eot_token_id") target = &v.eot;
    else if (key == "eom_token_id") target = &v.eom;
    else if (key == "unknown_token_id") target = &v.unk;
    else if (key == "seperator_token_id") target = &v.sep;
    else if (key == "padding_token_id") target = &v.pad;
    else if (key == "mask_token_id") target = &v.mask;
    else if (key == "fim_pre_token_id" || key == "prefix_token_id") target = &v.fim_pre;
    else if (key == "fim_suf_token_id" || key == "suffix_token_id") target = &v.fim_suf;
    else if (key == "fim_mid_token_id" || key == "middle_token_id") target = &v.fim_mid;
    else if (key == "fim_pad_token_id") target = &v.fim_pad;
    else if (key == "fim_rep_token_id") target = &v.fim_rep;
    else if (key == "fim_sep_token_id") target = &v.fim_sep;
    if (target != nullptr && value >= 0 && value < n) *target = static_cast<int32_t>(value);
  }
  if (spec.add_bos) v.add_bos = *spec.add_bos;
  if (spec.add_eos) v.add_eos = *spec.add_eos;
  if (spec.add_sep) v.add_sep = *spec.add_sep;
  if (v.add_bos && v.bos < 0) {
    return Status::error("tokenizer.ggml.add_bos_token is true, but bos_token_id is not set");
  }
  if (v.add_eos && v.eos < 0) {
    return Status::error("tokenizer.ggml.add_eos_token is true, but eos_token_id is not set");
  }
  if (v.add_sep && v.sep < 0) {
    return Status::error("tokenizer.ggml.add_sep_token is true, but seperator_token_id is not set");
  }

  // Markers found by their text (llama.cpp walks its hash map; here ids go in order, which
  // only differs when a vocabulary holds two candidates for one role). A marker that is not a
  // control token becomes one.
  auto mark = [&](int32_t id, int32_t* slot) {
    if (*slot < 0) {
      *slot = id;
      v.tokens[id].attr |= kAttrControl;
    }
  };
  for (int32_t id = 0; id < n; ++id) {
    const std::string& text = v.tokens[id].text;
    if (one_of(text, kEotTexts)) mark(id, &v.eot);
    if (text == "<|eom_id|>") mark(id, &v.eom);
    if (one_of(text, kFimPreTexts)) mark(id, &v.fim_pre);
    if (one_of(text, kFimSufTexts)) mark(id, &v.fim_suf);
    if (one_of(text, kFimMidTexts)) mark(id, &v.fim_mid);
    if (one_of(text, kFimPadTexts)) mark(id, &v.fim_pad);
    if (one_of(text, kFimRepTexts)) mark(id, &v.fim_rep);
    if (one_of(text, kFimSepTexts)) mark(id, &v.fim_sep);
  }
  for (TokenData& t : v.tokens) {
    if ((t.attr & kAttrControl) && t.text.find("unused") != std::string::npos) t.attr |= kAttrUnused;
  }

  std::vector<int32_t> eog;
  for (int32_t id : {v.fim_pad, v.fim_rep, v.fim_sep}) {
    if (id >= 0) eog.push_back(id);
  }
  for (int32_t id = 0; id < n; ++id) {
    if (one_of(v.tokens[id].text, kEogTexts)) {
      eog.push_back(id);
      v.tokens[id].attr |= kAttrControl;
    }
  }
  // gpt-oss: these are always rendered.
  for (const char* text : {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"}) {
    const int32_t id = v.find(text);
    if (id >= 0) v.tokens[id].attr = kAttrUserDefined;
  }
  for (int32_t id : {v.eos, v.eot, v.eom}) {
    if (id >= 0) eog.push_back(id);
  }
  std::sort(eog.begin(), eog.end());
  eog.erase(std::unique(eog.begin(), eog.end()), eog.end());
  auto has = [&](const char* text) {
    const int32_t id = v.find(text);
    return id >= 0 && std::binary_search(eog.begin(), eog.end(), id);
  };
  // o200k_harmony / solar-open: "<|end|>" ends a message, not the generation.
  if (has("<|end|>") && ((has("<|return|>") && has("<|call|>")) ||
                         ((has("<|call|>") || has("<|calls|>")) && has("<|flush|>")))) {
    const int32_t id = v.find("<|end|>");
    eog.erase(std::find(eog.begin(), eog.end(), id));
    v.tokens[id].attr = kAttrUserDefined;
  }
  if (has("<|tool_response>") && has("</s>")) {
    const int32_t id = v.find("</s>");
    eog.erase(std::find(eog.begin(), eog.end(), id));
    v.tokens[id].attr = kAttrNormal;
  }
  v.eog_ids = std::move(eog);

  for (int32_t id = 0; id < n; ++id) {
    if (v.tokens[id].attr & (kAttrControl | kAttrUserDefined | kAttrUnknown)) {
      v.special_tokens.push_back(id);
    }
  }
  std::stable_sort(v.special_tokens.begin(), v.special_tokens.end(), [&](int32_t a, int32_t b) {
    return v.tokens[a].text.size() > v.tokens[b].text.size();
  });

  v.pieces.resize(n);
  for (int32_t id = 0; id < n; ++id) v.pieces[id] = render_piece(v, id);

  // Per-model attribute fix-ups llama.cpp applies by name.
  std::string name = spec.general_name;
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  auto contains = [](const std::string& s, std::initializer_list<const char*> subs) {
    for (const char* sub : subs) {
      if (s.find(sub) != std::string::npos) return true;
    }
    return false;
  };
  if (contains(spec.pre, {"jina-v2-de", "jina-v2-es", "jina-v2-code"}) ||
      contains(spec.architecture, {"nomic-bert-moe", "jina-bert-v3"})) {
    const int32_t id = v.find("<mask>");
    if (id >= 0) v.tokens[id].attr |= kAttrLstrip;
  } else if (contains(name, {"phi-3", "phi3"})) {
    for (int32_t id : v.special_tokens) v.tokens[id].attr |= kAttrRstrip;
    for (const char* text : {"</s>"}) {
      const int32_t id = v.find(text);
      if (id >= 0) v.tokens[id].attr |= kAttrRstrip;
    }
    for (const char* text : {"<unk>", "<s>", "<|endoftext|>"}) {
      const int32_t id = v.find(text);
      if (id >= 0) v.tokens[id].attr &= ~static_cast<uint32_t>(kAttrRstrip);
    }
  } else if (contains(name, {"modern-bert"})) {
    const int32_t id = v.find("[MASK]");
    if (id >= 0) v.tokens[id].attr |= kAttrLstrip;
  }
  return v;
}

}  // namespace plumb::tok
