#include "cli/model_flags.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstdio>
#include <cstring>

#include "backend/cpu/matmul.h"
#include "cli/limits.h"
#include "model/check_tensors.h"
#include "util/thread_pool.h"

namespace plumb::cli {

void add_backend_flags(ArgParser& parser, std::string* backend, std::string* n_gpu_layers) {
  parser.option("--backend", "NAME", "cpu, cuda, or auto: cuda where a GPU is present (default auto)", backend);
  parser.option("-ngl,--n-gpu-layers,--gpu-layers", "N|auto|all",
                "llama.cpp's GPU offload: 0 = the CPU backend; auto or -1 = --backend auto; all, -2 or "
                "any number above 0 = the cuda backend (plumb runs all layers on one device)",
                n_gpu_layers);
}

Status resolve_backend_flags(std::string* backend, const std::string& n_gpu_layers) {
  if (*backend != "cpu" && *backend != "cuda" && *backend != "auto") {
    return Status::error("--backend must be cpu, cuda or auto, not '" + *backend + "'");
  }
  if (!n_gpu_layers.empty()) {
    // llama.cpp's values: a layer count, "auto" (-1: as many as fit, none without a GPU) or
    // "all" (-2 and below).
    std::string by_layers;
    if (n_gpu_layers == "auto") {
      by_layers = "auto";
    } else if (n_gpu_layers == "all") {
      by_layers = "cuda";
    } else {
      char* end = nullptr;
      errno = 0;
      const long n = std::strtol(n_gpu_layers.c_str(), &end, 10);
      if (end == n_gpu_layers.c_str() || *end != '\0' || errno != 0) {
        return Status::error("-ngl must be a number of layers, auto or all, not '" + n_gpu_layers + "'");
      }
      by_layers = n == 0 ? "cpu" : n == -1 ? "auto" : "cuda";
    }
    if (by_layers != "auto") {
      if (*backend != "auto" && *backend != by_layers) {
        return Status::error("-ngl " + n_gpu_layers + " means --backend " + by_layers +
                             ", which contradicts --backend " + *backend);
      }
      *backend = by_layers;
    }
  }
  *backend = resolve_backend(*backend);
  return Status();
}

std::string backend_label(const std::string& backend) {
  return backend == "cpu" ? "cpu " + std::string(cpu::simd_name()) : backend;
}

std::string backend_where(const std::string& backend, int n_threads) {
  if (backend != "cpu") return backend_label(backend);
  const int threads = n_threads > 0 ? n_threads : ThreadPool::hardware_threads();
  return backend_label(backend) + ", " + std::to_string(threads) + (threads == 1 ? " thread" : " threads");
}

void add_model_flags(ArgParser& parser, ModelFlags* flags) {
  parser.option("-m,--model", "FILE", "GGUF model file (required)", &flags->model_path);
  parser.option("-c,--ctx-size", "N", "context size (default: the model's, at most 4096)", &flags->n_ctx,
                Range::at_least(0));
  parser.option("-t,--threads", "N",
                "threads (default 0: all hardware threads; -1 too, as llama.cpp; more than the hardware "
                "threads is capped)",
                &flags->n_threads, Range::at_least(-1));
  parser.option("-b,--batch-size", "N",
                "llama.cpp's logical batch: prompt tokens per forward pass are the smaller of -b and -ub "
                "(default 2048)",
                &flags->n_batch, Range::at_least(1));
  parser.option("-ub,--ubatch-size", "N", "llama.cpp's physical batch: at most N prompt tokens per forward pass "
                "(default 512)", &flags->n_ubatch, Range::at_least(1));
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
  flags->n_threads = cap_threads(command, std::max(flags->n_threads, 0));
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

int forward_batch(const ModelFlags& flags) {
  constexpr int kLlamaBatch = 2048, kLlamaUbatch = 512;  // llama.cpp's -b and -ub defaults
  return std::min(flags.n_batch > 0 ? flags.n_batch : kLlamaBatch, flags.n_ubatch > 0 ? flags.n_ubatch : kLlamaUbatch);
}

SessionOptions session_options(const ModelFlags& flags) {
  SessionOptions options;
  options.n_ctx = flags.n_ctx;
  options.n_threads = flags.n_threads;
  options.n_batch = forward_batch(flags);
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
  parser.option("--temp,--temperature", "T", "temperature; 0 or below = greedy, as llama.cpp (default 0.8)",
                &p.temperature);
  parser.option("--top-k", "N", "keep the N most likely tokens; 0 or below = off, as llama.cpp (default 40)",
                &p.top_k);
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
  // llama.cpp takes any number here: a temperature below 0 is 0, a top-k below 0 is off.
  p.temperature = std::max(p.temperature, 0.0f);
  p.top_k = std::max(p.top_k, 0);
  p.seed = flags.seed == -1 ? kRandomSeed : static_cast<uint32_t>(flags.seed);
  if (p.repeat_last_n == -1) p.repeat_last_n = n_ctx;
  return p;
}

}  // namespace plumb::cli
