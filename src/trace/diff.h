// Compares two trace files tap by tap in forward order and finds the first divergence.
//
// For every tensor both files hold: max |a - b|, NMSE = sum (a - b)^2 / sum b^2 (b = the second
// file, the reference), cosine similarity, RMS of each side and the worst element. The first tap
// whose NMSE or gain exceeds its limit (or whose shape differs) is the divergence point; the
// limits follow the precision of the pair and the error of the taps before (noise_model.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "trace/trace_file.h"
#include "util/status.h"

namespace plumb::trace {

struct DiffOptions {
  // One NMSE threshold for every tap instead of the noise model (noise_model.h); it also turns
  // the gain test off.
  std::optional<double> nmse;
  std::string taps = "*";      // glob list (see glob.h) over tap names ("blk.3.*", "p1.logits")
  // For dumps of other engines (a directory of .npy, .npz, .safetensors; tap_map.h): the tap
  // map file ("" = arrays named as plumb's taps) and a layout overriding the map's default.
  std::string map_path;
  std::string layout;
};

struct TapDiff {
  TapName name;
  std::string shape_a, shape_b;
  bool shape_match = true;
  int64_t width = 0, n_tokens = 0;
  double max_abs = 0;       // max |a - b|
  double nmse = 0;          // sum (a - b)^2 / sum b^2; +inf when non-finite values appear
  double cosine = 1;        // a.b / (|a| |b|)
  double gain = 1;          // a.b / b.b: A's scale along B (1 when B is all zeros)
  double rms_a = 0, rms_b = 0;
  int64_t worst_token = 0, worst_index = 0;  // position of max |a - b|
  double worst_a = 0, worst_b = 0;
  int64_t non_finite_a = 0, non_finite_b = 0;  // NaN / inf counts
  double threshold = 0;     // the NMSE limit in force at this tap
  double gain_limit = 0;    // the |gain - 1| limit; 0 = no gain test (under --nmse)
  bool gain_over = false;   // |gain - 1| > gain_limit
  bool over = false;        // nmse > threshold, gain_over, shape mismatch or non-finite values
};

struct DiffReport {
  std::string path_a, path_b;
  std::vector<TapDiff> taps;           // forward order
  int divergence = -1;                 // index into taps of the first one over; -1 when none
  std::vector<std::string> only_in_a;  // compared names present on one side only (skipped)
  std::vector<std::string> only_in_b;
  std::vector<int> prompts;            // prompts whose tokens were checked equal
  std::optional<double> nmse_override;
  std::string rule;                    // the noise model in force (noise_model.h), one line
  // NMSE growth per layer after the divergence (geometric mean over the following layers of
  // the diverging tap family); nullopt when it cannot be measured.
  std::optional<double> growth_per_layer;

  bool diverged() const { return divergence >= 0; }
  // "diverges first at blk.3.attn_out: NMSE 4.1e-1 > 5e-2; error grows x12 per layer after it"
  // or "all 139 taps within thresholds".
  std::string verdict() const;
};

// Tokens must match for every prompt both files trace or give logits for; otherwise an error
// naming the prompt and the first differing position.
Result<DiffReport> diff_traces(const TraceFile& a, const TraceFile& b, const DiffOptions& options);
// Either path may be a plumb/llama.cpp/ref64 GGUF trace or another engine's dump, read with
// options.map_path and options.layout against the other side's shapes.
Result<DiffReport> diff_trace_files(const std::string& path_a, const std::string& path_b,
                                    const DiffOptions& options);

// Compares one pair of equally shaped F32 arrays.
TapDiff compare_arrays(const float* a, const float* b, int64_t width, int64_t n_tokens);

// 4.1e-1 style: `digits` after the point, the exponent without padding.
std::string format_sci(double value, int digits);

// A fixed-width table of every compared tap, the divergence marked.
std::string format_table(const DiffReport& report);
// The whole report as one JSON object.
std::string format_json(const DiffReport& report);

}  // namespace plumb::trace
