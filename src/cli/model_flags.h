// Options shared by the commands that load a model and generate (run, chat, bench): the
// model/session flags and the sampling flags, each declared once, with llama.cpp's names and
// defaults, and each value checked by the parser's ranges (cli/args.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "cli/args.h"
#include "model/model.h"
#include "sample/sampler.h"
#include "util/status.h"

namespace plumb::cli {

struct ModelFlags {
  std::string model_path;
  int n_ctx = 0;      // 0: the model's context length, capped at 4096
  int n_threads = 0;  // 0: all cores
  int n_batch = 0;    // -b, llama.cpp's logical batch; 0: not given (2048)
  int n_ubatch = 0;   // -ub, llama.cpp's physical batch; 0: not given (512)
  std::string backend = "auto";  // cpu, cuda, or auto (cuda where a GPU is present)
  std::string n_gpu_layers;  // -ngl as typed; "": not given (resolve_backend_flags)
  std::string cache_type = "f16";
  std::string flash_attn;  // -fa [on|off|auto]: accepted, plumb's attention is always fused
  bool no_mmap = false;    // read the file into memory instead of mapping it
  bool mlock = false;      // lock the weights in RAM (mlock(2))
  bool check_tensors = false;  // scan every weight for NaN/Inf at load
};

// --backend NAME and -ngl N|auto|all (llama.cpp's GPU offload: 0 = cpu, auto/-1 = --backend auto,
// all/-2/N > 0 = cuda); "" = -ngl not given.
void add_backend_flags(ArgParser& parser, std::string* backend, std::string* n_gpu_layers);
// The backend they name: checked, -ngl applied (an error if it contradicts --backend), auto
// resolved (cuda where a GPU is present).
Status resolve_backend_flags(std::string* backend, const std::string& n_gpu_layers);
// A resolved backend as the tools print it: "cpu " + the CPU kernels' instruction set
// ("cpu avx512-vnni"), or "cuda".
std::string backend_label(const std::string& backend);
// The same with the CPU's thread count (0: all hardware threads): "cpu avx512-vnni, 16 threads".
std::string backend_where(const std::string& backend, int n_threads);

// -m, -c, -t, -b, -ub, --backend, -ngl, --cache-type, -fa, --no-mmap, --mlock, --check-tensors.
void add_model_flags(ArgParser& parser, ModelFlags* flags);
// Checks what the parser cannot (required -m, names, -ngl against --backend), caps -t at the
// hardware threads (a note on stderr) and turns -ngl into the backend. An error is a usage error.
Status resolve_model_flags(const std::string& command, ModelFlags* flags);
// Loads the model, showing progress on stderr while a large file is prepared; refuses the
// cuda backend where there is no GPU (the same words as plumb check); scans the weights with
// --check-tensors and locks them with --mlock.
Result<std::unique_ptr<Model>> load_model(const std::string& command, const ModelFlags& flags);
// Prompt tokens per forward pass: the smaller of -b and -ub, as llama.cpp (512 by default).
int forward_batch(const ModelFlags& flags);
SessionOptions session_options(const ModelFlags& flags);
// check_session_fits (cli/limits.h), then Session::create.
Result<std::unique_ptr<Session>> create_session(const std::string& command, const Model& model,
                                                const SessionOptions& options, int64_t logit_rows = 1);

// --fault NAME and --fault-layer L (trace, check): a known bug planted in a backend, so that a
// diff can be seen to name its tap (backend/planted_fault.h).
struct FaultFlags {
  std::string name = "none";
  int layer = 0;
};
// `where` completes the help text: "in the CUDA backend alone", say.
void add_fault_flags(ArgParser& parser, FaultFlags* flags, const std::string& where);

struct SamplingFlags {
  SamplingParams params;
  int64_t seed = -1;  // -1: random
};

// --temp, --top-k, --top-p, --min-p, --repeat-penalty, --repeat-last-n, --frequency-penalty,
// --presence-penalty, --seed, each with its accepted range.
void add_sampling_flags(ArgParser& parser, SamplingFlags* flags);
// The final parameters: seed resolved, repeat_last_n = -1 meaning the whole context.
SamplingParams sampling_params(const SamplingFlags& flags, int n_ctx);

}  // namespace plumb::cli
