// plumb check: the same prompt on the CPU and on CUDA, diffed tap by tap.
#include <cstdio>

#include "cli/args.h"
#include "cli/command.h"
#include "cli/limits.h"
#include "trace/plot_svg.h"
#include "trace/run_trace.h"
#include "util/output_file.h"

namespace plumb::cli {
namespace {

// ctest's and automake's "skipped" code: nothing was compared, which is neither pass nor fail.
constexpr int kExitNothingToCompare = 77;

int run_check(int argc, char** argv) {
  ArgParser p("check", "-m M.gguf [-p TEXT | --tokens IDS] [--nmse X] [--plot FILE.svg]",
              "Run the prompt on the CPU backend and on the CUDA backend, diff every tap (CUDA = A, "
              "CPU = B, the reference) and print one verdict line, plus the table when they diverge.\n"
              "Exit: 0 within thresholds, 1 divergence or error, 2 usage error, 77 nothing to compare "
              "(no CUDA backend in this build, or no GPU).");
  std::string model_path, token_list, plot;
  std::string prompt = "It is a truth universally acknowledged, that a single man";
  float nmse = -1;
  int threads = 0;
  p.option("-m,--model", "M.gguf", "model file", &model_path);
  p.option("-p,--prompt", "TEXT", "prompt text (default: the first austen reference prompt)", &prompt);
  p.option("--tokens", "IDS", "token ids instead of text, comma-separated", &token_list);
  p.option("--nmse", "X", "one NMSE threshold for every tap instead of the per-tap defaults", &nmse,
           Range::at_least(0));
  p.option("--plot", "FILE", "draw the diff to FILE.svg (or .png, needs rsvg-convert)", &plot);
  p.option("-t,--threads", "N", "CPU threads (default 0: all)", &threads, Range::at_least(0));
  if (auto code = p.parse(argc, argv)) return *code;
  threads = cap_threads("check", threads);
  if (model_path.empty()) return p.usage_error("-m M.gguf is required");
  if (!plot.empty()) {
    if (Status s = check_output_path(plot, {model_path}); !s.ok()) return p.usage_error("--plot: " + s.message());
  }
  std::vector<int32_t> tokens;
  if (!token_list.empty()) {
    auto ids = trace::parse_token_list(token_list);
    if (!ids.ok()) return p.usage_error(ids.status().message());
    tokens = std::move(ids).value();
  }

  std::string why;
  if (!trace::cuda_available(&why)) {
    std::printf("plumb check: %s: nothing to compare\n", why.c_str());
    return kExitNothingToCompare;
  }
  ModelOptions model_options;
  model_options.load_tokenizer = tokens.empty();
  auto model = Model::load(model_path, model_options);
  if (!model.ok()) return fail("check", model.status().message());
  if (tokens.empty()) {
    auto ids = trace::tokenize_prompt(**model, prompt);
    if (!ids.ok()) return fail("check", ids.status().message());
    tokens = std::move(ids).value();
  }
  SessionOptions options;
  options.n_threads = threads;
  options.n_ctx = static_cast<int>(tokens.size());
  options.n_batch = static_cast<int>(tokens.size());
  options.backend = "cpu";
  auto cpu = trace::trace_tokens(**model, tokens, options, "*");
  if (!cpu.ok()) return fail("check", "CPU run: " + cpu.status().message());
  options.backend = "cuda";
  auto gpu = trace::trace_tokens(**model, tokens, options, "*");
  if (!gpu.ok()) return fail("check", "CUDA run: " + gpu.status().message());

  trace::DiffOptions diff_options;
  if (nmse >= 0) diff_options.nmse = nmse;
  auto report = trace::diff_runs(*gpu, "cuda", *cpu, "cpu", diff_options);
  if (!report.ok()) return fail("check", report.status().message());
  if (report->diverged()) std::fputs(trace::format_table(*report).c_str(), stdout);
  std::printf("plumb check (CUDA vs CPU, %zu tokens): %s\n", tokens.size(), report->verdict().c_str());
  if (!plot.empty()) {
    if (Status s = trace::write_diff_plot(*report, plot); !s.ok()) return fail("check", s.message());
  }
  return report->diverged() ? 1 : 0;
}

const bool registered = register_command({"check", "run a prompt on CPU and CUDA and diff every tap", run_check});

}  // namespace
}  // namespace plumb::cli
