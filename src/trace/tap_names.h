// The tap vocabulary shared by the forward pass, trace files and the diff: names, their place
// in the forward pass, their family (the tap without its layer) and default NMSE thresholds.
#pragma once

#include <array>
#include <cstdint>
#include <vector>
#include <optional>
#include <string>
#include <string_view>

namespace plumb::trace {

// The per-layer taps in the order the forward pass computes them.
inline constexpr std::array<std::string_view, 15> kLayerTaps = {
    "attn_norm", "q",        "k",        "v",       "q_rope",  "k_rope",  "attn_out", "attn_proj",
    "ffn_inp",   "ffn_norm", "ffn_gate", "ffn_up",  "ffn_act", "ffn_out", "out"};

// Every tap a forward pass of n_layer layers hands out, in forward order: inp_embd, then
// blk.<i>.<tap> for each layer and each of kLayerTaps, then result_norm and logits.
std::vector<std::string> model_tap_names(int64_t n_layer);

// A tensor of a trace file, parsed from its GGUF name:
//   p<k>.trace.<tap>  (tap = inp_embd | blk.<i>.<op> | result_norm | logits | anything else)
//   p<k>.logits       (logits of every position of prompt k)
struct TapName {
  std::string tensor;  // the GGUF tensor name
  std::string display; // the tap ("blk.3.q") for traces, the tensor name for p<k>.logits
  std::string family;  // "q" for blk.3.q; the display name for taps outside a layer
  int prompt = 0;
  int layer = -1;      // -1 outside the layers
  bool is_logits_tensor = false;  // p<k>.logits
};

// Parses a tensor name of a trace file; nullopt for tensors that are not compared
// (p<k>.tokens, p<k>.greedy, ...).
std::optional<TapName> parse_tensor_name(std::string_view tensor);

// Strict weak order of the forward pass: prompt 0's taps (inp_embd, the layers in order and in
// each the order of kLayerTaps, unknown layer taps after the known ones, result_norm, logits,
// other taps by name), then every p<k>.logits by k.
bool forward_order_less(const TapName& a, const TapName& b);

// Default NMSE threshold of a tap family (docs/TRACE.md explains the numbers).
double default_nmse_threshold(std::string_view family);

}  // namespace plumb::trace
