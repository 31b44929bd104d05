// plumb ppl: perplexity and KL-divergence with llama-perplexity's method.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "cli/args.h"
#include "cli/command.h"
#include "model/perplexity.h"
#include "util/thread_pool.h"

namespace plumb::cli {
namespace {

Result<std::string> read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::errorf("%s: cannot open text file", path.c_str());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

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
  std::string model_path, text_path, kld_base_out, kld_base_in, cache_type = "f16", backend = "cpu";
  int n_ctx = 512, n_chunks = -1, n_threads = 0, n_parallel = 0, n_batch = 0;
  bool json = false;
  args.option("-m,--model", "FILE", "model (GGUF)", &model_path);
  args.option("-f,--file", "FILE", "text to score", &text_path);
  args.option("-c,--ctx-size", "N", "tokens per chunk (default 512)", &n_ctx);
  args.option("--chunks", "N", "score at most N chunks (default: all)", &n_chunks);
  args.option("-t,--threads", "N", "threads (default: all cores)", &n_threads);
  args.option("--parallel", "N", "chunks evaluated at once, each in its own session (default: 1, or the\n"
              "                               number of threads for models under 64 MB)", &n_parallel);
  args.option("-b,--batch-size", "N", "as llama-perplexity: N / ctx chunks per batch (same as --parallel N/ctx)",
              &n_batch);
  args.option("--cache-type", "TYPE", "KV cache type: f16 (default) or f32", &cache_type);
  args.option("--backend", "NAME", "cpu (default) or cuda", &backend);
  args.option("--kl-divergence-base", "FILE", "save this model's log-probabilities to FILE", &kld_base_out);
  args.option("--kl-divergence", "FILE", "compare with the base log-probabilities in FILE", &kld_base_in);
  args.flag("--json", "print one JSON object instead of text", &json);
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
  auto cache = parse_cache_type(cache_type);
  if (!cache.ok()) return args.usage_error(cache.status().message());

  auto text = read_text_file(text_path);
  if (!text.ok()) return fail("ppl", text.status().message());
  ModelOptions model_options;
  auto model = Model::load(model_path, model_options);
  if (!model.ok()) return fail("ppl", model.status().message());
  const Model& m = **model;
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
    std::fprintf(stderr, "plumb ppl: %s, %zu tokens, -c %d\n", text_path.c_str(), tokens.size(), n_ctx);
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
    if (!w.ok()) return fail("ppl", w.status().message());
    writer = std::move(*w);
  }
  if (!kld_base_in.empty()) {
    auto r = KldBaseReader::open(kld_base_in);
    if (!r.ok()) return fail("ppl", r.status().message());
    reader = std::move(*r);
  }

  auto result = compute_perplexity(m, tokens, options, writer.get(), reader.get(), reader ? &stats : nullptr);
  if (!result.ok()) return fail("ppl", result.status().message());
  const PerplexityResult& r = *result;
  if (json) {
    std::printf("{\"ppl\":%.6f,\"ppl_err\":%.6f,\"tokens\":%d,\"scored_tokens\":%lld,\"chunks\":%d,\"ctx\":%d,\"seconds\":%.3f",
                r.ppl, r.ppl_err, r.n_tokens, static_cast<long long>(r.n_scored), r.n_chunks, n_ctx, r.seconds);
    if (reader) {
      const KldStats::Summary s = stats.summarize();
      std::printf(",\"kld\":{\"mean\":%.9g,\"mean_err\":%.9g,\"median\":%.9g,\"p99\":%.9g,\"p99_9\":%.9g,\"max\":%.9g,"
                  "\"min\":%.9g,\"same_top_pct\":%.6f,\"same_top_err\":%.6f,\"mean_ln_ppl_ratio\":%.9g,"
                  "\"mean_ln_ppl_ratio_err\":%.9g,\"rms_dp_pct\":%.6f,\"ppl_base\":%.6f}",
                  s.mean_kld, s.mean_kld_err, s.median_kld, s.kld_99, s.kld_999, s.max_kld, s.min_kld, s.same_top_pct,
                  s.same_top_err, s.mean_ln_ppl_ratio, s.mean_ln_ppl_ratio_err, s.rms_dp_pct, s.ppl_base);
    }
    std::printf("}\n");
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
