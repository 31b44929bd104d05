#include "trace/tap_names.h"

#include <charconv>
#include <tuple>

namespace plumb::trace {

std::vector<std::string> model_tap_names(int64_t n_layer) {
  std::vector<std::string> names = {"inp_embd"};
  for (int64_t il = 0; il < n_layer; ++il) {
    for (std::string_view tap : kLayerTaps) names.push_back("blk." + std::to_string(il) + "." + std::string(tap));
  }
  names.push_back("result_norm");
  names.push_back("logits");
  return names;
}

namespace {

// Parses a non-negative decimal integer that fills `s` entirely.
std::optional<int> parse_index(std::string_view s) {
  int value = 0;
  if (s.empty()) return std::nullopt;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size() || value < 0) return std::nullopt;
  return value;
}

int layer_tap_rank(std::string_view op) {
  for (size_t i = 0; i < kLayerTaps.size(); ++i) {
    if (kLayerTaps[i] == op) return static_cast<int>(i);
  }
  return static_cast<int>(kLayerTaps.size());
}

// Traces of prompt k come before the p<k>.logits tensors; within a trace the groups are
// 0 inp_embd, 1 the layers (by layer, then kLayerTaps order), 2 result_norm, 3 logits, 4 others.
std::tuple<int, int, int, int, int> sort_key(const TapName& t) {
  if (t.is_logits_tensor) return {1, t.prompt, 0, 0, 0};
  if (t.layer >= 0) return {0, t.prompt, 1, t.layer, layer_tap_rank(t.family)};
  if (t.family == "inp_embd") return {0, t.prompt, 0, 0, 0};
  if (t.family == "result_norm") return {0, t.prompt, 2, 0, 0};
  if (t.family == "logits") return {0, t.prompt, 3, 0, 0};
  return {0, t.prompt, 4, 0, 0};
}

}  // namespace

std::optional<TapName> parse_tensor_name(std::string_view tensor) {
  if (tensor.size() < 2 || tensor[0] != 'p') return std::nullopt;
  const size_t dot = tensor.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  const auto prompt = parse_index(tensor.substr(1, dot - 1));
  if (!prompt) return std::nullopt;
  const std::string_view rest = tensor.substr(dot + 1);

  TapName t;
  t.tensor = std::string(tensor);
  t.prompt = *prompt;
  if (rest == "logits") {
    t.display = t.tensor;
    t.family = "logits";
    t.is_logits_tensor = true;
    return t;
  }
  constexpr std::string_view kTrace = "trace.";
  if (rest.substr(0, kTrace.size()) != kTrace || rest.size() == kTrace.size()) return std::nullopt;
  const std::string_view tap = rest.substr(kTrace.size());
  // Prompt 0 is the traced one by convention; taps of other prompts keep their full name.
  t.display = *prompt == 0 ? std::string(tap) : t.tensor;
  t.family = std::string(tap);
  constexpr std::string_view kBlock = "blk.";
  if (tap.substr(0, kBlock.size()) == kBlock) {
    const std::string_view after = tap.substr(kBlock.size());
    const size_t op_dot = after.find('.');
    if (op_dot != std::string_view::npos && op_dot + 1 < after.size()) {
      if (const auto layer = parse_index(after.substr(0, op_dot))) {
        t.layer = *layer;
        t.family = std::string(after.substr(op_dot + 1));
      }
    }
  }
  return t;
}

bool forward_order_less(const TapName& a, const TapName& b) {
  const auto ka = sort_key(a);
  const auto kb = sort_key(b);
  if (ka != kb) return ka < kb;
  return a.tensor < b.tensor;
}

double default_nmse_threshold(std::string_view family) {
  // 5 x the largest NMSE of llama.cpp against the float64 oracle at that tap (max over layers,
  // over austen-21m f16 and q4_k_m and smollm2-135m q4_1, ../shared/ref/README.md), rounded up
  // to 1-2-5, floor 1e-3. Planted bugs measure >= 0.59 at the tap they break.
  struct Entry {
    std::string_view family;
    double threshold;
  };
  static constexpr Entry kDefaults[] = {
      {"inp_embd", 1e-3},  {"attn_norm", 5e-3}, {"q", 5e-3},         {"k", 5e-3},
      {"v", 2e-2},         {"q_rope", 5e-3},    {"k_rope", 5e-3},    {"attn_out", 5e-2},
      {"attn_proj", 5e-2}, {"ffn_inp", 5e-3},   {"ffn_norm", 1e-2},  {"ffn_gate", 1e-2},
      {"ffn_up", 2e-2},    {"ffn_act", 5e-2},   {"ffn_out", 5e-2},   {"out", 5e-3},
      {"result_norm", 1e-2}, {"logits", 2e-2},
  };
  for (const auto& e : kDefaults) {
    if (e.family == family) return e.threshold;
  }
  return 1e-2;  // a tap this table does not know
}

}  // namespace plumb::trace
