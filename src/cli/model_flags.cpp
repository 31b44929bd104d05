#include "cli/model_flags.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "cli/limits.h"
#include "model/check_tensors.h"

namespace plumb::cli {

void add_backend_flags(ArgParser& parser, std::string* backend, int* n_gpu_layers) {
  parser.option("--backend", "NAME", "cpu, cuda, or auto: cuda where a GPU is present (default auto)", backend);
  parser.option("-ngl,--n-gpu-layers,--gpu-layers", "N",
                "llama.cpp's GPU offload: 0 = the CPU backend, any other number = the cuda backend "
                "(plumb runs all layers on one device)",
                n_gpu_layers, Range::at_least(-1));
}

Status resolve_backend_flags(std::string* backend, int n_gpu_layers) {
  if (*backend != "cpu" && *backend != "cuda" && *backend != "auto") {
    return Status::error("--backend must be cpu, cuda or auto, not '" + *backend + "'");
  }
  if (n_gpu_layers != -2) {
    const std::string by_layers = n_gpu_layers == 0 ? "cpu" : "cuda";
    if (*backend != "auto" && *backend != by_layers) {
      return Status::error("-ngl " + std::to_string(n_gpu_layers) + " means --backend " + by_layers +
                           ", which contradicts --backend " + *backend);
    }
    *backend = by_layers;
  }
  *backend = resolve_backend(*backend);
  return Status();
}

void add_model_flags(ArgParser& parser, ModelFlags* flags) {
  parser.option("-m,--model", "FILE", "GGUF model file (required)", &flags->model_path);
  parser.option("-c,--ctx-size", "N", "context size (default: the model's, at most 4096)", &flags->n_ctx,
                Range::at_least(0));
  parser.option("-t,--threads", "N", "threads (default 0: all cores; more than the cores is capped)",
                &flags->n_threads, Range::at_least(0));
  parser.option("-b,--batch-size", "N", "prompt tokens per forward pass (default 512)", &flags->n_batch,
                Range::at_least(1));
  add_backend_flags(parser, &flags->backend, &flags->n_gpu_layers);
  parser.option("--cache-type", "TYPE", "KV cache type: f16 or f32 (default f16)", &flags->cache_type);
  parser.flag_with_value("-fa,--flash-attn", "on|off|auto",
                         "accepted for llama.cpp: plumb's attention is always one fused pass, exact "
                         "either way",
                         &flags->flash_attn);
  parser.flag("--no-mmap",
              "read the model into memory (huge pages) instead of mapping it: slower to load, "
              "faster generation where the weights do not fit in the caches",
              &flags->no_mmap);
  parser.flag("--mlock", "keep the weights in RAM (mlock): never paged out", &flags->mlock);
  parser.flag("--check-tensors", "scan every weight for NaN and infinity at load", &flags->check_tensors);
}

Status resolve_model_flags(const std::string& command, ModelFlags* flags) {
  if (flags->model_path.empty()) return Status::error("-m FILE is required");
  PLUMB_RETURN_IF_ERROR(resolve_backend_flags(&flags->backend, flags->n_gpu_layers));
  if (flags->cache_type != "f16" && flags->cache_type != "f32") {
    return Status::error("--cache-type must be f16 or f32, not '" + flags->cache_type + "'");
  }
  flags->n_threads = cap_threads(command, flags->n_threads);
  return Status();
}

Result<std::unique_ptr<Model>> load_model(const std::string& command, const ModelFlags& flags) {
  PLUMB_RETURN_IF_ERROR(check_backend_available(flags.backend));
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
  if (flags.check_tensors) PLUMB_RETURN_IF_ERROR(check_tensor_data((*model)->file(), flags.n_threads));
  if (flags.mlock) {
    const gguf::File& file = (*model)->file();
    if (mlock(file.bytes(), file.file_size()) != 0) {
      // As llama.cpp: a warning, the run goes on unlocked.
      std::fprintf(stderr,
                   "plumb %s: warning: --mlock: cannot lock %.0f MiB in RAM: %s (raise the limit with "
                   "ulimit -l)\n",
                   command.c_str(), static_cast<double>(file.file_size()) / (1 << 20), std::strerror(errno));
    }
  }
  return model;
}

SessionOptions session_options(const ModelFlags& flags) {
  SessionOptions options;
  options.n_ctx = flags.n_ctx;
  options.n_threads = flags.n_threads;
  options.n_batch = flags.n_batch > 0 ? flags.n_batch : 512;
  options.backend = flags.backend;
  options.cache_type = flags.cache_type == "f32" ? CacheType::F32 : CacheType::F16;
  return options;
}

Result<std::unique_ptr<Session>> create_session(const std::string& command, const Model& model,
                                                const SessionOptions& options, int64_t logit_rows) {
  PLUMB_RETURN_IF_ERROR(check_session_fits(command, model, options, 1, logit_rows));
  return Session::create(model, options);
}

void add_fault_flags(ArgParser& parser, FaultFlags* flags, const std::string& where) {
  parser.option("--fault", "NAME",
                "plant a known bug " + where +
                    " (rope-neox-pairs, q4k-scales-swapped, softmax-no-scale, skip-residual, gqa-off-by-one): the "
                    "diff must name its tap",
                &flags->name);
  parser.option("--fault-layer", "L", "the layer of skip-residual (default 0)", &flags->layer, Range::at_least(0));
}

void add_sampling_flags(ArgParser& parser, SamplingFlags* flags) {
  SamplingParams& p = flags->params;
  parser.option("--temp", "T", "temperature; 0 = greedy (default 0.8)", &p.temperature, Range::at_least(0));
  parser.option("--top-k", "N", "keep the N most likely tokens; 0 = off (default 40)", &p.top_k,
                Range::at_least(0));
  parser.option("--top-p", "P", "keep the smallest set with probability >= P; 1 = off (default 0.95)", &p.top_p,
                Range::between(0, 1));
  parser.option("--min-p", "P", "drop tokens below P x the best's probability; 0 = off (default 0.05)", &p.min_p,
                Range::between(0, 1));
  parser.option("--repeat-penalty", "X", "penalize repeated tokens; 1 = off (default 1.0)", &p.repeat_penalty,
                Range::above(0));
  parser.option("--repeat-last-n", "N", "tokens the penalties look back on; 0 = off, -1 = context (default 64)",
                &p.repeat_last_n, Range::at_least(-1));
  parser.option("--frequency-penalty", "X", "subtract X x count (default 0)", &p.frequency_penalty);
  parser.option("--presence-penalty", "X", "subtract X once per seen token (default 0)", &p.presence_penalty);
  parser.option("-s,--seed", "N", "random seed; -1 = random (default -1)", &flags->seed,
                Range::between(-1, 4294967295.0));
}

SamplingParams sampling_params(const SamplingFlags& flags, int n_ctx) {
  SamplingParams p = flags.params;
  p.seed = flags.seed == -1 ? kRandomSeed : static_cast<uint32_t>(flags.seed);
  if (p.repeat_last_n == -1) p.repeat_last_n = n_ctx;
  return p;
}

}  // namespace plumb::cli
