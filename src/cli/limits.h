// Bounds the commands apply before they take memory or threads, the same way everywhere:
// -t capped at the hardware threads (with a note), and a session's memory estimated and
// compared with what the machine has before Session::create allocates it.
#pragma once

#include <cstdint>
#include <string>

#include "model/model.h"
#include "util/status.h"

namespace plumb::cli {

// -t N: 0 (or -1, as llama.cpp) means all hardware threads, returned as 0; more than the machine
// has is capped to it, with a note on stderr (a thread per core is the most that helps; 1000
// threads made each token take 15 s).
int cap_threads(const std::string& command, int requested);

// --backend cuda where this build or machine has no GPU: an error in plumb check's words.
Status check_backend_available(const std::string& backend);
// --backend auto (the default): cuda where a CUDA device can run the CUDA backend, else cpu;
// other names are kept.
std::string resolve_backend(const std::string& backend);

// Before Session::create: a warning on stderr when the context exceeds the model's trained
// context, and an error (both numbers, and the largest context that fits) when n_sessions
// sessions with these options need more memory than MemAvailable. logit_rows: the most logit
// rows one decode keeps (1 for generation).
Status check_session_fits(const std::string& command, const Model& model, const SessionOptions& options,
                          int n_sessions = 1, int64_t logit_rows = 1);

}  // namespace plumb::cli
