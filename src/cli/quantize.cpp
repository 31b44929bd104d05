// plumb quantize IN.gguf OUT.gguf TYPE [-t THREADS]: llama-quantize's mixes and plain types.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "cli/args.h"
#include "cli/command.h"
#include "cli/limits.h"
#include "quant/mix.h"
#include "model/quantize_model.h"
#include "util/output_file.h"

namespace plumb::cli {

namespace {

// One line redrawn in place: [#####.....]  42/75 tensors  blk.3.ffn_down.weight
void draw_progress(const QuantizeProgress& p) {
  constexpr int kWidth = 30;
  const double fraction = p.input_bytes_total > 0
                              ? static_cast<double>(p.input_bytes_done) / p.input_bytes_total
                              : 1.0;
  const int filled = static_cast<int>(fraction * kWidth + 0.5);
  std::string bar(filled, '#');
  bar.append(kWidth - filled, '.');
  std::fprintf(stderr, "\r[%s] %3d%% %4d/%d tensors  %-40.40s", bar.c_str(),
               static_cast<int>(fraction * 100 + 0.5), p.tensors_done, p.tensors_total,
               p.tensor_name);
  if (p.tensors_done == p.tensors_total) std::fprintf(stderr, "\r%*s\r", kWidth + 70, "");
  std::fflush(stderr);
}

int run_quantize(int argc, char** argv) {
  ArgParser p("quantize", "IN.gguf OUT.gguf TYPE [-t THREADS]",
              "Quantize a GGUF model the way llama-quantize does. TYPE is a llama.cpp mix\n"
              "(Q4_K_M, Q4_K_S, Q5_K_M, Q5_K_S, Q6_K, Q3_K_M, Q3_K_S, Q3_K_L, Q2_K, Q8_0, Q4_0,\n"
              "Q4_1, Q5_0, Q5_1, IQ4_NL, IQ4_XS, F16, BF16, F32) that gives attn_v, ffn_down and\n"
              "output more bits where llama.cpp does, or a plain tensor type in lower case\n"
              "(q4_k, q8_0, f16, ...) that every 2-D weight gets. Norms stay F32. The input may be\n"
              "F32, F16, BF16 or already quantized.");
  int threads = 0;
  p.option("-t,--threads", "N", "threads to use (default 0: all cores; -1 too, as llama.cpp)", &threads,
           Range::at_least(-1));
  p.positionals("IN.gguf OUT.gguf TYPE", 3, 3);
  if (auto code = p.parse(argc, argv)) return *code;
  const std::string& in = p.positional()[0];
  const std::string& out = p.positional()[1];
  const std::string& type = p.positional()[2];
  threads = cap_threads("quantize", threads);
  Result<QuantTarget> target = parse_quant_target(type);
  if (!target.ok()) return p.usage_error(target.status().message());
  if (Status s = check_output_path(out, {in}); !s.ok()) return p.usage_error(s.message());

  QuantizeOptions options;
  options.target = type;
  options.n_threads = threads;
  if (isatty(fileno(stderr))) options.on_progress = draw_progress;
  options.on_warning = [](const std::string& w) { std::fprintf(stderr, "warning: %s\n", w.c_str()); };

  const auto start = std::chrono::steady_clock::now();
  Result<QuantizeSummary> done = quantize_model(in, out, options);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!done.ok()) return fail("quantize", done.status().message());

  const double in_mb = done->input_file_bytes / 1e6;
  const double out_mb = done->output_file_bytes / 1e6;
  std::printf("%s -> %s (%s, file type %u): %d tensors (%d converted, %d fell back), "
               "%.2f MB -> %.2f MB in %.2f s, %.1f MB/s\n",
               in.c_str(), out.c_str(), target->name.c_str(), done->file_type, done->tensors,
               done->tensors_converted, done->tensors_fell_back, in_mb, out_mb, seconds,
               seconds > 0 ? in_mb / seconds : 0.0);
  return 0;
}

const bool registered = register_command(
    {"quantize", "quantize a GGUF model (llama-quantize's mixes or a plain type)", run_quantize});

}  // namespace

}  // namespace plumb::cli
