// From another engine's dump (dump_reader.h) to a trace plumb diff can compare: a small mapping
// file names which of the engine's arrays is which tap, and layouts say how its arrays are laid
// out.
//
// Mapping file, one rule a line ('#' starts a comment):
//   layers.{i}.attention.wq.out -> blk.{i}.q            the engine's name -> plumb's tap
//   layers.{i}.attention.out    -> blk.{i}.attn_out  heads,tokens,dim
//   tok_embeddings.out          -> inp_embd
//   input_ids                   -> tokens               the prompt's token ids
//   output                      -> logits
//   layout: width,tokens        the layout of the rules below that name none
//   engine: my-metal-engine     recorded as the dump's engine
//   precision: quantized        exact | float | quantized | unknown (docs/TRACE.md, the verdict)
// In a pattern {i} matches a layer index (and puts it into the tap's {i}), '*' any run of
// characters, '?' one character. Rules are tried in order; an array no rule matches keeps its
// name when that is already a tap name (blk.3.q, inp_embd, logits, tokens, p0.trace.<tap>,
// p<k>.logits), else it is left out (and counted).
//
// Layouts (the dimensions of the array, outermost first; leading dimensions of size 1 are
// dropped):
//   tokens,width      [n_tokens][width], plumb's own (ggml ne = [width, n_tokens])
//   width,tokens      [width][n_tokens], transposed
//   heads,tokens,dim  [n_heads][n_tokens][head_dim], per-head tensors (heads merged in order)
//   tokens,heads,dim  [n_tokens][n_heads][head_dim]
//   auto              (the default) the first of the above that fits the reference's shape
#pragma once

#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "trace/dump_reader.h"
#include "trace/trace_file.h"
#include "util/status.h"

namespace plumb::trace {

struct TapRule {
  std::string pattern;  // as written
  std::string target;   // as written, with {i}
  std::string layout;   // "" = the map's default
  std::regex re;
  bool has_layer = false;
};

struct TapMap {
  std::vector<TapRule> rules;
  std::string layout = "auto";
  std::string engine;     // "" when the file names none
  std::string precision;  // "" when the file names none

  // The trace tensor an array of the dump becomes ("p0.trace.blk.3.q", "p0.tokens",
  // "p0.logits") and its layout; nullopt when the array is not mapped.
  std::optional<std::pair<std::string, std::string>> map(const std::string& dump_name) const;
};

Result<TapMap> parse_tap_map(const std::string& text, const std::string& origin);
Result<TapMap> read_tap_map(const std::string& path);

// Is this one of the layouts above ("auto" included)?
bool is_known_layout(const std::string& layout);

// Makes a trace of a dump. `reference` (the other side of the diff) gives each tap's width and
// token count for the layouts; an array whose shape fits none of the layouts tried is an error
// naming both shapes and every layout tried. Taps the reference lacks are read as
// tokens,width (the last dimension the width) and show up as skipped in the diff.
Result<TraceFile> dump_to_trace(const std::string& path, const std::vector<DumpArray>& arrays,
                                const TapMap& map, const TraceFile& reference);

// read_dump + dump_to_trace.
Result<TraceFile> read_dump_trace(const std::string& path, const TapMap& map, const TraceFile& reference);

}  // namespace plumb::trace
