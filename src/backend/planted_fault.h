// Known bugs a backend can be made to have, so tests (and `plumb trace --fault`, `plumb check
// --fault`) can prove that a diff names the op where a broken backend first goes wrong. A fault
// lives in a wrapper around any backend, never in a backend itself: the wrapped backend runs
// its own ops, and the wrapper replaces the one op the bug is in by a host-side version of it.
#pragma once

#include <cstdint>
#include <memory>

#include "backend/backend.h"

namespace plumb {

enum class PlantedFault {
  None,
  RopeNeoxPairs,       // RoPE rotates (i, i + d/2) pairs instead of consecutive (2i, 2i+1)
  Q4KScalesSwapped,    // Q4_K: scale and min of each sub-block exchanged when unpacked
  SoftmaxNoScale,      // attention scores not multiplied by 1/sqrt(head_dim)
  SkipResidual,        // the attention residual of layer fault_layer is dropped
  GqaOffByOne,         // query head h reads KV head (h / group + 1) mod n_head_kv
};

// "none", "rope-neox-pairs", ... (the names `--fault` takes).
const char* fault_name(PlantedFault fault);
// The fault named `name`; an unknown name is an error listing the choices.
Result<PlantedFault> parse_fault(const std::string& name);

struct FaultSpec {
  PlantedFault fault = PlantedFault::None;
  int64_t layer = 0;      // SkipResidual's layer
  int64_t n_head_kv = 0;  // GqaOffByOne: how the cached K and V rows split into heads
};

// `inner` with the fault planted (inner itself when spec.fault is None). The wrapper runs every
// step op by op (never a recorded graph) and reads and writes the faulty op's data on the host.
std::unique_ptr<Backend> with_planted_fault(std::unique_ptr<Backend> inner, const FaultSpec& spec);

// Q4_K rows dequantized with each sub-block's scale and min exchanged (the Q4_K fault).
void dequantize_q4_k_scales_swapped(const uint8_t* x, float* y, int64_t n);

}  // namespace plumb
