// How far two correct engines may differ at a tap, from what made the two traces and from the
// error they already show at the taps before it (docs/TRACE.md, "The verdict", has the
// measurements behind every number here).
//
// Two tests per tap, both relative to the reference B:
//   NMSE  = sum (a - b)^2 / sum b^2, over when
//           NMSE > min(family default, max(floor, kJump x the largest NMSE of the non-norm taps
//           before it in the same prompt))
//   gain  = <a, b> / <b, b>, over when |gain - 1| > max(gain floor, kGainJump x the largest
//           |gain - 1| of the non-norm taps before it)
// Rounding error is nearly uncorrelated with the values it rounds, so it adds to the NMSE but
// leaves the gain within ~sqrt(NMSE / n) of 1; a wrong scale factor, a missing term of a norm
// or a mis-scaled residual moves the gain at once. The floors follow the precision of the pair
// (the less precise side decides): engines that keep activations in F32 on float weights, or
// float64, agree to ~1e-7 per tap; an engine that quantizes activations to 8 bits before its
// matrix products (llama.cpp on quantized weights) differs by up to ~1e-2.
#pragma once

#include <string>

#include "trace/trace_file.h"

namespace plumb::trace {

enum class Precision {
  Exact,      // float64 (ref64.py), or plumb on the CPU: F32 activations, ~1e-7 vs float64
  Float,      // another engine on F32/F16/BF16 weights (llama.cpp keeps F32 activations there)
  Quantized,  // an engine on quantized weights that may quantize activations (llama.cpp)
  Unknown,    // nothing says: treated like Quantized (the widest correct noise measured)
};

// What made one trace, as far as its metadata says.
struct TraceOrigin {
  std::string engine;  // "plumb cpu", "llama.cpp", "float64 (ref64.py)", "unknown engine"
  std::string weights; // "F16", "Q4_K_M", ... from the model's file name; "" when unknown
  Precision precision = Precision::Unknown;
  std::string describe() const;  // "llama.cpp, Q4_K_M weights"
};

TraceOrigin trace_origin(const TraceFile& file);

struct NoiseRule {
  Precision precision = Precision::Unknown;  // the pair's: the less precise side
  double nmse_floor = 0;   // NMSE every tap may reach whatever came before
  double gain_floor = 0;   // |gain - 1| every tap may reach
  double jump = 0;         // NMSE may grow to jump x the largest NMSE before
  double gain_jump = 0;    // |gain - 1| may grow to gain_jump x the largest before
  std::string description; // "plumb cpu vs llama.cpp, Q4_K_M weights: quantized pair, ..."
};

NoiseRule noise_rule(const TraceOrigin& a, const TraceOrigin& b);

// Taps whose error is not carried into the next tap's estimate of the noise (RMSNorm output:
// its relative error is the input's, rescaled by the norm weight).
bool is_norm_family(const std::string& family);

}  // namespace plumb::trace
