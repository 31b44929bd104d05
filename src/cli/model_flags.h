// Options shared by the commands that load a model and generate (run, chat, bench): the
// model/session flags and the sampling flags, each declared once, with llama.cpp's names and
// defaults.
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
  std::string backend = "cpu";
  std::string cache_type = "f16";
  bool no_mmap = false;  // read the file into memory instead of mapping it
};

// -m, -c, -t, --backend, --cache-type, --no-mmap.
void add_model_flags(ArgParser& parser, ModelFlags* flags);
// Checks the flags' values; an error message for a usage error.
Status check_model_flags(const ModelFlags& flags);
// Loads the model, showing progress on stderr while a large file is prepared.
Result<std::unique_ptr<Model>> load_model(const ModelFlags& flags);
SessionOptions session_options(const ModelFlags& flags);

struct SamplingFlags {
  SamplingParams params;
  int64_t seed = -1;  // -1: random
};

// --temp, --top-k, --top-p, --min-p, --repeat-penalty, --repeat-last-n, --frequency-penalty,
// --presence-penalty, --seed.
void add_sampling_flags(ArgParser& parser, SamplingFlags* flags);
// The final parameters: seed resolved, repeat_last_n = -1 meaning the whole context.
Result<SamplingParams> sampling_params(const SamplingFlags& flags, int n_ctx);

}  // namespace plumb::cli
