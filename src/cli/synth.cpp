// plumb synth --preset NAME [--vocab VOCAB.gguf] [--type f16|f32] [--seed N] -o OUT.gguf
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "cli/args.h"
#include "cli/command.h"
#include "cli/limits.h"
#include "synth/synth.h"
#include "util/output_file.h"

namespace plumb::cli {

namespace {

// PLUMB_SHARED, else <directory of the plumb executable>/../../shared (a build directory inside
// a worktree next to shared/).
std::string shared_dir() {
  if (const char* env = std::getenv("PLUMB_SHARED"); env != nullptr && *env != '\0') return env;
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "../shared";
  return (exe.parent_path() / ".." / ".." / "shared").lexically_normal().string();
}

int run_synth(int argc, char** argv) {
  std::string presets;
  for (const SynthPreset& p : synth_presets()) presets += std::string(presets.empty() ? "" : ", ") + p.name;
  ArgParser p("synth", "--preset NAME [--vocab VOCAB.gguf] [--type f16|f32] [--seed N] -o OUT.gguf",
              "Write a Llama model with real shapes and random weights (normal, std 0.02; norm\n"
              "weights 1 + normal(0, 0.02)) for benchmarks. Presets: " + presets + ".\n"
              "The tokenizer is copied from VOCAB (default: <shared>/vocab/ggml-vocab-llama-spm.gguf,\n"
              "ggml-vocab-llama-bpe.gguf for llama-3-8b; <shared> is $PLUMB_SHARED or\n"
              "<plumb's directory>/../../shared).");
  std::string preset_name, vocab, type = "f16", out;
  int64_t seed = 42;
  int threads = 0;
  p.option("--preset", "NAME", "model shape: " + presets, &preset_name);
  p.option("--vocab", "VOCAB.gguf", "GGUF whose tokenizer.* metadata is copied", &vocab);
  p.option("--type", "f16|f32", "type of the 2-D weights (default f16)", &type);
  p.option("--seed", "N", "random seed (default 42)", &seed, Range::at_least(0));
  p.option("-t,--threads", "N", "threads to use (default 0: all cores; -1 too, as llama.cpp)", &threads,
           Range::at_least(-1));
  p.option("-o,--output", "OUT.gguf", "output file", &out);
  if (auto code = p.parse(argc, argv)) return *code;
  if (preset_name.empty()) return p.usage_error("--preset is required (" + presets + ")");
  if (out.empty()) return p.usage_error("-o OUT.gguf is required");
  const SynthPreset* preset = find_synth_preset(preset_name);
  if (preset == nullptr) return p.usage_error("unknown preset '" + preset_name + "' (have: " + presets + ")");
  SynthOptions options;
  options.preset = preset_name;
  if (type == "f16" || type == "F16") {
    options.type = TensorType::F16;
  } else if (type == "f32" || type == "F32") {
    options.type = TensorType::F32;
  } else {
    return p.usage_error("--type must be f16 or f32, not '" + type + "'");
  }
  threads = cap_threads("synth", threads);
  options.seed = static_cast<uint64_t>(seed);
  options.n_threads = threads;
  options.vocab_path = vocab.empty() ? shared_dir() + "/vocab/" + preset->vocab : vocab;
  if (vocab.empty() && access(options.vocab_path.c_str(), R_OK) != 0) {
    return p.usage_error("the default vocabulary " + options.vocab_path +
                         " is not there (no shared/ directory next to this build, and $PLUMB_SHARED unset): pass "
                         "--vocab VOCAB.gguf, any GGUF with tokenizer.* metadata (" + preset->vocab +
                         " for this preset)");
  }
  if (Status s = check_output_path(out, {options.vocab_path}); !s.ok()) return p.usage_error(s.message());
  if (isatty(fileno(stderr))) {
    options.on_progress = [](int done, int total) {
      std::fprintf(stderr, "\r%d/%d tensors", done, total);
      if (done == total) std::fprintf(stderr, "\r%*s\r", 24, "");
      std::fflush(stderr);
    };
  }

  const auto start = std::chrono::steady_clock::now();
  Result<SynthSummary> made = synth_model(options, out);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!made.ok()) return fail("synth", made.status().message());
  std::printf("%s: %s, %.3f B parameters, %d tensors, %.1f MB in %.2f s\n", out.c_str(),
              preset->name, made->parameters / 1e9, made->tensors, made->file_bytes / 1e6, seconds);
  return 0;
}

const bool registered =
    register_command({"synth", "write a Llama model with real shapes and random weights", run_synth});

}  // namespace

}  // namespace plumb::cli
