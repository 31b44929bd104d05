// plumb ppl: perplexity and KL-divergence with llama-perplexity's method.
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "cli/args.h"
#include "cli/command.h"
#include "model/check_tensors.h"
#include "model/perplexity.h"
#include "cli/limits.h"
#include "cli/model_flags.h"
#include "util/json.h"
#include "util/output_file.h"
#include "util/text_file.h"
#include "util/thread_pool.h"

namespace plumb::cli {
namespace {

Result<CacheType> parse_cache_type(const std::string& name) {
  if (name == "f16") return CacheType::F16;
  if (name == "f32") return CacheType::F32;
  return Status::errorf("unknown cache type '%s' (f16 or f32)", name.c_str());
}

void print_kld_summary(const KldStats::Summary& s, FILE* out) {
  std::fprintf(out, "====== Perplexity statistics ======\n");
  std::fprintf(out, "Mean PPL(Q)                   : %10.6f\n", s.ppl);
  std::fprintf(out, "Mean PPL(base)                : %10.6f\n", s.ppl_base);
  std::fprintf(out, "Cor(ln(PPL(Q)), ln(PPL(base))): %6.2f%%\n", 100.0 * s.cor_ln_ppl);
  std::fprintf(out, "Mean ln(PPL(Q)/PPL(base))     : %10.6f ± %10.6f\n", s.mean_ln_ppl_ratio, s.mean_ln_ppl_ratio_err);
  std::fprintf(out, "\n====== KL divergence statistics ======\n");
  std::fprintf(out, "Mean    KLD: %10.6f ± %10.6f\n", s.mean_kld, s.mean_kld_err);
  std::fprintf(out, "Maximum KLD: %10.6f\n", s.max_kld);
  std::fprintf(out, "99.9%%   KLD: %10.6f\n", s.kld_999);
  std::fprintf(out, "99.0%%   KLD: %10.6f\n", s.kld_99);
  std::fprintf(out, "90.0%%   KLD: %10.6f\n", s.kld_90);
  std::fprintf(out, "Median  KLD: %10.6f\n", s.median_kld);
  std::fprintf(out, "10.0%%   KLD: %10.6f\n", s.kld_10);
  std::fprintf(out, " 5.0%%   KLD: %10.6f\n", s.kld_5);
  std::fprintf(out, " 1.0%%   KLD: %10.6f\n", s.kld_1);
  std::fprintf(out, "Minimum KLD: %10.6f\n", s.min_kld);
  std::fprintf(out, "\n====== Token probability statistics ======\n");
  std::fprintf(out, "Mean    Δp: %7.3f %%\n", s.mean_dp_pct);
  std::fprintf(out, "RMS Δp    : %7.3f ± %5.3f %%\n", s.rms_dp_pct, s.rms_dp_err);
  std::fprintf(out, "Same top p: %7.3f ± %5.3f %%\n", s.same_top_pct, s.same_top_err);
}

int run_ppl(int argc, char** argv) {
  ArgParser args("ppl", "-m MODEL.gguf -f TEXT [-c 512] [--chunks N] [options]",
                 "Perplexity of a model on a text, with llama-perplexity's method: chunks of -c tokens\n"
                 "evaluated independently, the second half of each chunk scored. Comparable with\n"
                 "llama.cpp's figures on the same file and text.\n"
                 "KL-divergence: run the base model with --kl-divergence-base FILE to save its\n"
                 "log-probabilities, then another model with --kl-divergence FILE to compare\n"
                 "(or, as llama-perplexity, --kl-divergence-base FILE --kl-divergence).");
  std::string model_path, text_path, kld_base_out, kld_base_in, cache_type = "f16", backend = "auto";
  std::string n_gpu_layers;  // -ngl as typed, "" when not given
  int n_ctx = 512, n_chunks = -1, n_threads = 0, n_parallel = 0, n_batch = 0;
  bool json = false;
  bool check_tensors = false;
  args.option("-m,--model", "FILE", "model (GGUF)", &model_path);
  args.option("-f,--file", "FILE", "text to score", &text_path);
  args.option("-c,--ctx-size", "N", "tokens per chunk (default 512)", &n_ctx, Range::at_least(4));
  args.option("--chunks", "N", "score at most N chunks (default -1: all)", &n_chunks, Range::at_least(-1));
  args.option("-t,--threads", "N", "threads (default 0: all hardware threads; -1 too, as llama.cpp)", &n_threads,
              Range::at_least(-1));
  args.option("--parallel", "N", "chunks evaluated at once, each in its own session (default: 1, or the\n"
              "                               number of threads for models under 64 MB)", &n_parallel,
              Range::at_least(0));
  args.option("-b,--batch-size", "N", "as llama-perplexity: N / ctx chunks per batch (same as --parallel N/ctx)",
              &n_batch, Range::at_least(0));
  args.option("--cache-type", "TYPE", "KV cache type: f16 (default) or f32", &cache_type);
  add_backend_flags(args, &backend, &n_gpu_layers);
  args.option("--kl-divergence-base", "FILE", "save this model's log-probabilities to FILE", &kld_base_out);
  args.option("--kl-divergence", "FILE", "compare with the base log-probabilities in FILE", &kld_base_in);
  args.flag("--check-tensors", "scan every weight for NaN and infinity at load", &check_tensors);
  args.json_flag("--json", "print one JSON object instead of text", &json);
  // llama-perplexity's form: --kl-divergence with no value (last, or followed by an option)
  // reads the file --kl-divergence-base names. Taken out before parsing, where it would miss
  // its value.
  bool kld_flag = false;
  std::vector<char*> kept(argv, argv + argc);
  for (size_t i = 1; i < kept.size(); ++i) {
    if (std::string_view(kept[i]) == "--kl-divergence" && (i + 1 == kept.size() || kept[i + 1][0] == '-')) {
      kld_flag = true;
      kept.erase(kept.begin() + static_cast<std::ptrdiff_t>(i));
      break;
    }
  }
  if (auto code = args.parse(static_cast<int>(kept.size()), kept.data())) return *code;
  if (kld_flag) {
    if (kld_base_out.empty() || !kld_base_in.empty()) {
      return args.usage_error("--kl-divergence without a FILE reads the file --kl-divergence-base FILE names "
                              "(llama-perplexity's form); give that, or --kl-divergence FILE");
    }
    kld_base_in = std::move(kld_base_out);
    kld_base_out.clear();
  }
  if (model_path.empty()) return args.usage_error("missing -m MODEL.gguf");
  if (text_path.empty()) return args.usage_error("missing -f TEXT");
  if (!kld_base_out.empty() && !kld_base_in.empty()) {
    return args.usage_error("--kl-divergence-base and --kl-divergence are separate runs (base model, then the other)");
  }
  if (!kld_base_out.empty()) {
    if (Status s = check_output_path(kld_base_out, {model_path, text_path}); !s.ok()) {
      return args.usage_error("--kl-divergence-base: " + s.message());
    }
  }
  auto cache = parse_cache_type(cache_type);
  if (!cache.ok()) return args.usage_error(cache.status().message());
  if (Status s = resolve_backend_flags(&backend, n_gpu_layers); !s.ok()) return args.usage_error(s.message());
  n_threads = cap_threads("ppl", std::max(n_threads, 0));
  if (Status s = check_backend_available(backend); !s.ok()) return args.fail(s.message());

  auto text = read_text_file(text_path, "-f");
  if (!text.ok()) return args.fail(text.status().message());
  ModelOptions model_options;
  auto model = Model::load(model_path, model_options);
  if (!model.ok()) return args.fail(model.status().message());
  const Model& m = **model;
  if (check_tensors) {
    if (Status s = check_tensor_data(m.file(), n_threads); !s.ok()) return args.fail(s.message());
  }
  std::vector<int32_t> tokens = m.tokenizer().encode(*text, /*add_special=*/true, /*parse_special=*/false);

  PerplexityOptions options;
  options.n_ctx = n_ctx;
  options.n_chunks = n_chunks;
  options.n_threads = n_threads;
  options.cache_type = *cache;
  options.backend = backend;
  if (n_parallel == 0 && n_batch > 0) n_parallel = std::max(1, n_batch / std::max(n_ctx, 1));
  const int threads = n_threads > 0 ? n_threads : ThreadPool::hardware_threads();
  // Small models spend much of each step in thread hand-offs: a session per thread, each
  // on its own chunk, keeps the cores busier.
  options.n_parallel = n_parallel > 0 ? n_parallel : (m.file().file_size() < (64u << 20) ? threads : 1);
  const bool tty = isatty(STDERR_FILENO) != 0;
  if (!json) {
    std::fprintf(stderr, "plumb ppl: %s, %zu tokens, -c %d, %s\n", text_path.c_str(), tokens.size(), n_ctx,
                 backend_where(backend, n_threads).c_str());
  }
  options.on_chunk = [&](int chunk, int total, double running) {
    if (json) return;
    if (tty) {
      std::fprintf(stderr, "\r[%d/%d] PPL %.4f", chunk + 1, total, running);
      if (chunk + 1 == total) std::fprintf(stderr, "\n");
    } else {
      std::fprintf(stderr, "[%d]%.4f,", chunk + 1, running);
      if (chunk + 1 == total) std::fprintf(stderr, "\n");
    }
    std::fflush(stderr);
  };

  std::unique_ptr<KldBaseWriter> writer;
  std::unique_ptr<KldBaseReader> reader;
  KldStats stats;
  if (!kld_base_out.empty()) {
    const int n_chunks_total = static_cast<int>(tokens.size() / static_cast<size_t>(std::max(n_ctx, 1)));
    const int planned = n_chunks > 0 ? std::min(n_chunks, n_chunks_total) : n_chunks_total;
    auto w = KldBaseWriter::create(kld_base_out, n_ctx, m.config().n_vocab, planned, tokens);
    if (!w.ok()) return args.fail(w.status().message());
    writer = std::move(*w);
  }
  if (!kld_base_in.empty()) {
    auto r = KldBaseReader::open(kld_base_in);
    if (!r.ok()) return args.fail(r.status().message());
    reader = std::move(*r);
  }

  {
    // The memory the sessions will take, before they take it (compute_perplexity's count).
    SessionOptions so;
    so.n_ctx = n_ctx;
    so.n_batch = n_ctx;
    so.n_threads = n_threads;
    so.cache_type = *cache;
    const int chunks = std::max<int>(1, static_cast<int>(tokens.size() / static_cast<size_t>(n_ctx)));
    const int sessions = std::max(1, std::min({options.n_parallel, chunks, threads}));
    if (Status s = check_session_fits("ppl", m, so, sessions, n_ctx - n_ctx / 2); !s.ok()) {
      return args.fail(s.message());
    }
  }
  auto result = compute_perplexity(m, tokens, options, writer.get(), reader.get(), reader ? &stats : nullptr);
  if (!result.ok()) return args.fail(result.status().message());
  const PerplexityResult& r = *result;
  if (json) {
    // Through json::Writer: a value that is not finite is written as null, never as "nan".
    json::Writer w(stdout, 0);
    w.begin_object();
    w.key("ppl").value(r.ppl);
    w.key("ppl_err").value(r.ppl_err);
    w.key("tokens").value(r.n_tokens);
    w.key("scored_tokens").value(static_cast<int64_t>(r.n_scored));
    w.key("chunks").value(r.n_chunks);
    w.key("ctx").value(n_ctx);
    w.key("seconds").value(r.seconds);
    w.key("backend").value(backend_label(backend));
    if (reader) {
      const KldStats::Summary s = stats.summarize();
      w.key("kld").begin_object();
      const std::pair<const char*, double> fields[] = {
          {"mean", s.mean_kld}, {"mean_err", s.mean_kld_err}, {"median", s.median_kld}, {"p99", s.kld_99},
          {"p99_9", s.kld_999}, {"max", s.max_kld}, {"min", s.min_kld}, {"same_top_pct", s.same_top_pct},
          {"same_top_err", s.same_top_err}, {"mean_ln_ppl_ratio", s.mean_ln_ppl_ratio},
          {"mean_ln_ppl_ratio_err", s.mean_ln_ppl_ratio_err}, {"rms_dp_pct", s.rms_dp_pct}, {"ppl_base", s.ppl_base}};
      for (const auto& [name, v] : fields) w.key(name).value(v);
      w.end_object();
    }
    w.end_object();
    w.finish();
    return 0;
  }
  std::printf("Final estimate: PPL = %.4f +/- %.5f\n", r.ppl, r.ppl_err);
  std::fprintf(stderr, "plumb ppl: %d chunks, %lld scored tokens, %.2f s\n", r.n_chunks,
               static_cast<long long>(r.n_scored), r.seconds);
  if (reader) {
    std::printf("\n");
    print_kld_summary(stats.summarize(), stdout);
  }
  return 0;
}

const bool registered = register_command({"ppl", "perplexity and KL-divergence (llama-perplexity's method)", run_ppl});

}  // namespace
}  // namespace plumb::cli
