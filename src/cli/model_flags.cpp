#include "cli/model_flags.h"

#include <unistd.h>

#include <cstdio>

namespace plumb::cli {

void add_model_flags(ArgParser& parser, ModelFlags* flags) {
  parser.option("-m,--model", "FILE", "GGUF model file (required)", &flags->model_path);
  parser.option("-c,--ctx-size", "N", "context size (default: the model's, at most 4096)",
                &flags->n_ctx);
  parser.option("-t,--threads", "N", "threads (default: all cores)", &flags->n_threads);
  parser.option("--backend", "NAME", "cpu or cuda (default cpu)", &flags->backend);
  parser.option("--cache-type", "TYPE", "KV cache type: f16 or f32 (default f16)",
                &flags->cache_type);
  parser.flag("--no-mmap",
              "read the model into memory (huge pages) instead of mapping it: slower to load, "
              "faster generation where the weights do not fit in the caches",
              &flags->no_mmap);
}

Status check_model_flags(const ModelFlags& flags) {
  if (flags.model_path.empty()) return Status::error("-m FILE is required");
  if (flags.n_ctx < 0) return Status::error("-c must be >= 0");
  if (flags.n_threads < 0) return Status::error("-t must be >= 0");
  if (flags.backend != "cpu" && flags.backend != "cuda") {
    return Status::error("--backend must be cpu or cuda, not '" + flags.backend + "'");
  }
  if (flags.cache_type != "f16" && flags.cache_type != "f32") {
    return Status::error("--cache-type must be f16 or f32, not '" + flags.cache_type + "'");
  }
  return Status();
}

Result<std::unique_ptr<Model>> load_model(const ModelFlags& flags) {
  ModelOptions options;
  options.read_into_memory = flags.no_mmap;
  // Progress only where someone watches, and only for files that take a moment.
  const bool show = isatty(STDERR_FILENO) != 0;
  int last_percent = -1;
  options.progress = [show, &last_percent](uint64_t done, uint64_t total) {
    constexpr uint64_t kLarge = 256ull << 20;
    if (!show || total < kLarge) return;
    const int percent = static_cast<int>(done * 100 / total);
    if (percent == last_percent) return;
    last_percent = percent;
    std::fprintf(stderr, "\rloading model: %3d%% of %.0f MiB", percent,
                 static_cast<double>(total) / (1 << 20));
    if (done >= total) std::fprintf(stderr, "\n");
    std::fflush(stderr);
  };
  Result<std::unique_ptr<Model>> model = Model::load(flags.model_path, options);
  if (!model.ok()) return model.status().with_context("loading " + flags.model_path);
  return model;
}

SessionOptions session_options(const ModelFlags& flags) {
  SessionOptions options;
  options.n_ctx = flags.n_ctx;
  options.n_threads = flags.n_threads;
  options.backend = flags.backend;
  options.cache_type = flags.cache_type == "f32" ? CacheType::F32 : CacheType::F16;
  return options;
}

void add_sampling_flags(ArgParser& parser, SamplingFlags* flags) {
  SamplingParams& p = flags->params;
  parser.option("--temp", "T", "temperature; 0 = greedy (default 0.8)", &p.temperature);
  parser.option("--top-k", "N", "keep the N most likely tokens; 0 = off (default 40)", &p.top_k);
  parser.option("--top-p", "P",
                "keep the smallest set with probability >= P; 1 = off (default 0.95)", &p.top_p);
  parser.option("--min-p", "P",
                "drop tokens below P x the best's probability; 0 = off (default 0.05)", &p.min_p);
  parser.option("--repeat-penalty", "X", "penalize repeated tokens; 1 = off (default 1.0)",
                &p.repeat_penalty);
  parser.option("--repeat-last-n", "N",
                "tokens the penalties look back on; 0 = off, -1 = context (default 64)",
                &p.repeat_last_n);
  parser.option("--frequency-penalty", "X", "subtract X x count (default 0)", &p.frequency_penalty);
  parser.option("--presence-penalty", "X", "subtract X once per seen token (default 0)",
                &p.presence_penalty);
  parser.option("-s,--seed", "N", "random seed; -1 = random (default -1)", &flags->seed);
}

Result<SamplingParams> sampling_params(const SamplingFlags& flags, int n_ctx) {
  SamplingParams p = flags.params;
  if (flags.seed < -1 || flags.seed > static_cast<int64_t>(UINT32_MAX)) {
    return Status::error("--seed must be -1 or in 0..4294967295");
  }
  p.seed = flags.seed == -1 ? kRandomSeed : static_cast<uint32_t>(flags.seed);
  if (p.repeat_last_n < -1) return Status::error("--repeat-last-n must be >= -1");
  if (p.repeat_last_n == -1) p.repeat_last_n = n_ctx;
  if (p.top_p < 0.0f || p.min_p < 0.0f || p.min_p > 1.0f) {
    return Status::error("--top-p and --min-p must be in 0..1");
  }
  return p;
}

}  // namespace plumb::cli
