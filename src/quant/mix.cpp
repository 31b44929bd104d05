#include "quant/mix.h"

#include <algorithm>
#include <cctype>
#include <numeric>

namespace plumb {

namespace {

struct MixEntry {
  const char* name;
  FileType file_type;
  TensorType default_type;
};

// llama-quantize's names for the mixes plumb offers (no importance matrix needed).
constexpr MixEntry kMixes[] = {
    {"Q4_0", FileType::MOSTLY_Q4_0, TensorType::Q4_0},
    {"Q4_1", FileType::MOSTLY_Q4_1, TensorType::Q4_1},
    {"Q5_0", FileType::MOSTLY_Q5_0, TensorType::Q5_0},
    {"Q5_1", FileType::MOSTLY_Q5_1, TensorType::Q5_1},
    {"IQ4_NL", FileType::MOSTLY_IQ4_NL, TensorType::IQ4_NL},
    {"IQ4_XS", FileType::MOSTLY_IQ4_XS, TensorType::IQ4_XS},
    {"Q2_K", FileType::MOSTLY_Q2_K, TensorType::Q2_K},
    {"Q3_K_S", FileType::MOSTLY_Q3_K_S, TensorType::Q3_K},
    {"Q3_K_M", FileType::MOSTLY_Q3_K_M, TensorType::Q3_K},
    {"Q3_K_L", FileType::MOSTLY_Q3_K_L, TensorType::Q3_K},
    {"Q4_K_S", FileType::MOSTLY_Q4_K_S, TensorType::Q4_K},
    {"Q4_K_M", FileType::MOSTLY_Q4_K_M, TensorType::Q4_K},
    {"Q5_K_S", FileType::MOSTLY_Q5_K_S, TensorType::Q5_K},
    {"Q5_K_M", FileType::MOSTLY_Q5_K_M, TensorType::Q5_K},
    {"Q6_K", FileType::MOSTLY_Q6_K, TensorType::Q6_K},
    {"Q8_0", FileType::MOSTLY_Q8_0, TensorType::Q8_0},
    {"F16", FileType::MOSTLY_F16, TensorType::F16},
    {"BF16", FileType::MOSTLY_BF16, TensorType::BF16},
    {"F32", FileType::ALL_F32, TensorType::F32},
};

// Plain tensor types and the file type that describes a file made mostly of them.
constexpr MixEntry kPlainTypes[] = {
    {"q4_0", FileType::MOSTLY_Q4_0, TensorType::Q4_0},
    {"q4_1", FileType::MOSTLY_Q4_1, TensorType::Q4_1},
    {"q5_0", FileType::MOSTLY_Q5_0, TensorType::Q5_0},
    {"q5_1", FileType::MOSTLY_Q5_1, TensorType::Q5_1},
    {"q8_0", FileType::MOSTLY_Q8_0, TensorType::Q8_0},
    {"q2_k", FileType::MOSTLY_Q2_K, TensorType::Q2_K},
    {"q3_k", FileType::MOSTLY_Q3_K_S, TensorType::Q3_K},
    {"q4_k", FileType::MOSTLY_Q4_K_S, TensorType::Q4_K},
    {"q5_k", FileType::MOSTLY_Q5_K_S, TensorType::Q5_K},
    {"q6_k", FileType::MOSTLY_Q6_K, TensorType::Q6_K},
    {"iq4_nl", FileType::MOSTLY_IQ4_NL, TensorType::IQ4_NL},
    {"iq4_xs", FileType::MOSTLY_IQ4_XS, TensorType::IQ4_XS},
    {"f16", FileType::MOSTLY_F16, TensorType::F16},
    {"bf16", FileType::MOSTLY_BF16, TensorType::BF16},
    {"f32", FileType::ALL_F32, TensorType::F32},
};

bool equals_ignore_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool contains(std::string_view s, std::string_view part) {
  return s.find(part) != std::string_view::npos;
}

bool is_quantized(TensorType t) { return type_traits(t).is_quantized; }

// llama.cpp's broad tensor categories (llama-quant.cpp tensor_get_category).
// Only the categories the offered mixes treat specially; fused QKV counts as attn_v there.
enum class Category { TOKEN_EMBD, ATTN_V, ATTN_QKV, ATTN_OUTPUT, FFN_DOWN, OUTPUT, OTHER };

Category category_of(std::string_view name) {
  if (name == "output.weight") return Category::OUTPUT;
  if (name == "token_embd.weight") return Category::TOKEN_EMBD;
  if (contains(name, "attn_qkv.weight")) return Category::ATTN_QKV;
  if (contains(name, "attn_v.weight")) return Category::ATTN_V;
  if (contains(name, "attn_output.weight")) return Category::ATTN_OUTPUT;
  if (contains(name, "ffn_down")) return Category::FFN_DOWN;
  return Category::OTHER;
}

// The layers that get more bits in the _M mixes: the first and last eighth, and every third
// layer in between.
bool use_more_bits(int i_layer, int n_layers) {
  return i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 ||
         (i_layer - n_layers / 8) % 3 == 2;
}

// The counters llama.cpp advances as it walks the tensors.
struct MixState {
  int n_attention_wv = 0;
  int i_attention_wv = 0;
  int n_ffn_down = 0;
  int i_ffn_down = 0;
  bool has_tied_embeddings = true;  // no output.weight: token_embd doubles as the output
};

// llama_tensor_get_type_impl for the mixes without importance matrix, non-MoE, non-Falcon.
TensorType mix_type(MixState& qs, const MixModelInfo& model, FileType ftype, TensorType new_type,
                    const MixTensor& tensor, Category category) {
  const int n_gqa = model.n_head_kv > 0 ? model.n_head / model.n_head_kv : 1;
  // llama.cpp's loader calls an 80-layer Llama with grouped-query attention "70B".
  const bool is_70b = model.arch == "llama" && model.n_layer == 80 && model.n_head != model.n_head_kv;

  if (category == Category::OUTPUT || (qs.has_tied_embeddings && category == Category::TOKEN_EMBD)) {
    const int64_t block = type_traits(new_type).block_size;
    if (tensor.ne[0] % block != 0) {
      new_type = TensorType::Q8_0;
    } else if (new_type != TensorType::Q8_0) {
      new_type = TensorType::Q6_K;
    }
  } else if (category == Category::TOKEN_EMBD) {
    // Untied token embeddings keep the mix's default type.
  } else if (category == Category::ATTN_V || category == Category::ATTN_QKV) {
    switch (ftype) {
      case FileType::MOSTLY_Q2_K:
        new_type = n_gqa >= 4 ? TensorType::Q4_K : TensorType::Q3_K;
        break;
      case FileType::MOSTLY_Q3_K_M:
        new_type = qs.i_attention_wv < 2 ? TensorType::Q5_K : TensorType::Q4_K;
        break;
      case FileType::MOSTLY_Q3_K_L:
        new_type = TensorType::Q5_K;
        break;
      case FileType::MOSTLY_IQ4_NL:
      case FileType::MOSTLY_IQ4_XS:
        if (n_gqa >= 4) new_type = TensorType::Q5_K;
        break;
      case FileType::MOSTLY_Q4_K_M:
      case FileType::MOSTLY_Q5_K_M:
        if (use_more_bits(qs.i_attention_wv, qs.n_attention_wv)) new_type = TensorType::Q6_K;
        break;
      case FileType::MOSTLY_Q4_K_S:
        if (qs.i_attention_wv < 4) new_type = TensorType::Q5_K;
        break;
      default:
        break;
    }
    // attn_v of a 70B model is 8x smaller than attn_q: more bits cost little there.
    if (is_70b && (new_type == TensorType::Q3_K || new_type == TensorType::Q4_K)) {
      new_type = TensorType::Q5_K;
    }
    ++qs.i_attention_wv;
  } else if (category == Category::FFN_DOWN) {
    const int i_layer = qs.i_ffn_down;
    const int n_layer = qs.n_ffn_down;
    switch (ftype) {
      case FileType::MOSTLY_Q2_K:
        new_type = TensorType::Q3_K;
        break;
      case FileType::MOSTLY_Q3_K_M:
        new_type = i_layer < n_layer / 16 ? TensorType::Q5_K : TensorType::Q4_K;
        break;
      case FileType::MOSTLY_Q3_K_L:
        new_type = TensorType::Q5_K;
        break;
      case FileType::MOSTLY_Q4_K_M:
        if (use_more_bits(i_layer, n_layer)) new_type = TensorType::Q6_K;
        break;
      case FileType::MOSTLY_IQ4_NL:
      case FileType::MOSTLY_IQ4_XS:
        if (i_layer < n_layer / 8) new_type = TensorType::Q5_K;
        break;
      case FileType::MOSTLY_Q5_K_M:
        if (use_more_bits(i_layer, n_layer)) new_type = TensorType::Q6_K;
        break;
      case FileType::MOSTLY_Q4_K_S:
        if (i_layer < n_layer / 8) new_type = TensorType::Q5_K;
        break;
      default:
        break;
    }
    ++qs.i_ffn_down;
  } else if (category == Category::ATTN_OUTPUT) {
    switch (ftype) {
      case FileType::MOSTLY_Q2_K: new_type = TensorType::Q3_K; break;
      case FileType::MOSTLY_Q3_K_M: new_type = TensorType::Q4_K; break;
      case FileType::MOSTLY_Q3_K_L: new_type = TensorType::Q5_K; break;
      default: break;
    }
  }
  return new_type;
}

// llama.cpp's tensor_type_fallback: a type whose block does not divide the row length is
// replaced by a 32-element type of similar size, or F16 when even that does not fit.
Result<MixChoice> fall_back(const MixTensor& tensor, TensorType wanted) {
  const int64_t ncols = tensor.ne[0];
  if (ncols % type_traits(wanted).block_size == 0) return MixChoice{wanted, false};
  TensorType fallback;
  switch (wanted) {
    case TensorType::IQ4_XS: fallback = TensorType::IQ4_NL; break;
    case TensorType::Q2_K:
    case TensorType::Q3_K: fallback = TensorType::Q4_0; break;
    case TensorType::Q4_K: fallback = TensorType::Q5_0; break;
    case TensorType::Q5_K: fallback = TensorType::Q5_1; break;
    case TensorType::Q6_K: fallback = TensorType::Q8_0; break;
    default:
      return Status::errorf("tensor '%s': row length %lld is not a multiple of %s's block of %lld "
                            "elements, and llama.cpp defines no fallback for %s",
                            tensor.name.c_str(), static_cast<long long>(ncols), type_name(wanted),
                            static_cast<long long>(type_traits(wanted).block_size),
                            type_name(wanted));
  }
  if (ncols % type_traits(fallback).block_size != 0) fallback = TensorType::F16;
  return MixChoice{fallback, true};
}

int layer_of(const std::string& name) {
  // "blk.<n>." as llama.cpp's sscanf reads it; -1 for tensors outside the blocks.
  if (name.compare(0, 4, "blk.") != 0) return -1;
  size_t i = 4;
  bool negative = false;
  if (i < name.size() && (name[i] == '-' || name[i] == '+')) {
    negative = name[i] == '-';
    ++i;
  }
  if (i >= name.size() || !std::isdigit(static_cast<unsigned char>(name[i]))) return -1;
  long value = 0;
  for (; i < name.size() && std::isdigit(static_cast<unsigned char>(name[i])); ++i) {
    value = std::min<long>(value * 10 + (name[i] - '0'), 1L << 30);
  }
  return static_cast<int>(negative ? -value : value);
}

}  // namespace

Result<QuantTarget> parse_quant_target(std::string_view name) {
  for (const MixEntry& m : kMixes) {
    if (name == m.name) return QuantTarget{m.name, m.file_type, m.default_type, false};
  }
  for (const MixEntry& p : kPlainTypes) {
    if (equals_ignore_case(name, p.name)) {
      return QuantTarget{p.name, p.file_type, p.default_type, true};
    }
  }
  for (const MixEntry& m : kMixes) {
    if (equals_ignore_case(name, m.name)) {
      return QuantTarget{m.name, m.file_type, m.default_type, false};
    }
  }
  return Status::errorf("unknown quantization type '%.*s'; valid: %s",
                        static_cast<int>(name.size()), name.data(), quant_target_names().c_str());
}

std::string quant_target_names() {
  std::string out = "mixes:";
  for (const MixEntry& m : kMixes) out += std::string(" ") + m.name;
  out += "; plain tensor types:";
  for (const MixEntry& p : kPlainTypes) out += std::string(" ") + p.name;
  return out;
}

bool tensor_is_quantizable(const MixTensor& tensor) {
  if (tensor.n_dims < 2) return false;
  const std::string_view name = tensor.name;
  if (!ends_with(name, "weight")) return false;
  if (contains(name, "_norm.weight")) return false;
  if (contains(name, "ffn_gate_inp.weight")) return false;
  if (name == "position_embd.weight" || name == "token_types.weight") return false;
  return true;
}

bool llama_tensor_order_less(const std::string& a, const std::string& b) {
  const int la = layer_of(a);
  const int lb = layer_of(b);
  if (la != lb) return la < lb;
  return a < b;
}

Result<std::vector<MixChoice>> choose_tensor_types(const QuantTarget& target,
                                                   const MixModelInfo& model,
                                                   const std::vector<MixTensor>& tensors) {
  MixState qs;
  for (const MixTensor& t : tensors) {
    const Category c = category_of(t.name);
    if (c == Category::ATTN_V || c == Category::ATTN_QKV) ++qs.n_attention_wv;
    if (c == Category::OUTPUT) qs.has_tied_embeddings = false;
  }
  qs.n_ffn_down = model.n_layer;

  std::vector<size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return llama_tensor_order_less(tensors[a].name, tensors[b].name);
  });

  std::vector<MixChoice> choices(tensors.size());
  for (size_t index : order) {
    const MixTensor& t = tensors[index];
    if (!tensor_is_quantizable(t)) {
      choices[index] = MixChoice{t.type, false};
      continue;
    }
    // F16 / BF16 / F32 targets: every quantizable tensor simply takes that type.
    if (!is_quantized(target.default_type)) {
      choices[index] = MixChoice{target.default_type, false};
      continue;
    }
    TensorType wanted = target.default_type;
    if (!target.pure) {
      wanted = mix_type(qs, model, target.file_type, wanted, t, category_of(t.name));
    }
    PLUMB_ASSIGN_OR_RETURN(choices[index], fall_back(t, wanted));
  }
  return choices;
}

}  // namespace plumb
