// plumb check: the same prompt on the CPU and on CUDA, diffed tap by tap; then generation steps
// one token at a time (on CUDA the path a recorded graph replays), their logits compared step by
// step, and one more step traced and diffed tap by tap.
#include <cmath>
#include <cstdio>

#include "cli/args.h"
#include "cli/command.h"
#include "cli/limits.h"
#include "cli/model_flags.h"
#include "model/run_trace.h"
#include "trace/plot_svg.h"
#include "util/output_file.h"

namespace plumb::cli {
namespace {

// ctest's and automake's "skipped" code: nothing was compared, which is neither pass nor fail.
constexpr int kExitNothingToCompare = 77;

// Two plumb backends agree to about 1e-8 per tap (each is within about 1e-7 of float64:
// docs/EXACTNESS.md); the planted faults move their tap by 1e-2 or more. llama.cpp-sized
// thresholds (1e-3 and up) would hide real bugs here.
constexpr double kDefaultNmse = 1e-5;

double logits_nmse(const float* a, const float* b, int64_t n) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(a[i]) - b[i];
    num += d * d;
    den += static_cast<double>(b[i]) * b[i];
  }
  return std::isfinite(num) ? num / den : INFINITY;
}

int64_t argmax(const float* row, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i) best = row[i] > row[best] ? i : best;
  return best;
}

// A session that has run the prompt, ready for generation steps.
Result<std::unique_ptr<Session>> start(const Model& model, const std::vector<int32_t>& prompt,
                                       const SessionOptions& options) {
  PLUMB_ASSIGN_OR_RETURN(std::unique_ptr<Session> session, Session::create(model, options));
  PLUMB_RETURN_IF_ERROR(session->decode(prompt, false));
  return session;
}

// One more step, traced: a TraceRun of one token for diff_runs.
Result<TraceRun> traced_step(Session& session, int32_t token, int64_t n_vocab, const std::string& backend) {
  TraceRun run;
  run.tokens = {token};
  run.backend = backend;
  run.n_vocab = n_vocab;
  run.recorder = std::make_unique<trace::TraceRecorder>("*");
  const int32_t one[1] = {token};
  PLUMB_RETURN_IF_ERROR(session.decode(one, true, run.recorder.get()));
  PLUMB_RETURN_IF_ERROR(run.recorder->status());
  run.logits.assign(session.logits(0), session.logits(0) + n_vocab);
  return run;
}

// Diffs CUDA's run against the CPU's, prints the table where they diverge and the verdict line
// of `what`; the report, for a plot.
Result<trace::DiffReport> report(const TraceRun& gpu, const TraceRun& cpu, const trace::DiffOptions& options,
                                 const std::string& what, bool* diverged) {
  PLUMB_ASSIGN_OR_RETURN(trace::DiffReport r, diff_runs(gpu, "cuda", cpu, "cpu", options));
  if (r.diverged()) std::fputs(trace::format_table(r).c_str(), stdout);
  std::printf("plumb check (CUDA vs CPU, %s): %s\n", what.c_str(), r.verdict().c_str());
  *diverged |= r.diverged();
  return r;
}

int run_check(int argc, char** argv) {
  ArgParser p("check",
              "-m M.gguf [-p TEXT | --tokens IDS] [-n STEPS] [--nmse X] [--fault NAME [--fault-layer L]] "
              "[--plot FILE.svg]",
              "Run the prompt on the CPU backend and on the CUDA backend and diff every tap (CUDA = A, CPU = B, "
              "the reference); then STEPS generation steps of one token (the CPU's greedy choices, fed to both), "
              "their logits compared step by step (on CUDA these run as a recorded graph), and one more step "
              "traced and diffed tap by tap. One verdict line per part, the table where they diverge.\n"
              "Threshold: NMSE 1e-5 at every tap (two plumb backends agree to about 1e-8).\n"
              "Exit: 0 within thresholds, 1 divergence or error, 2 usage error, 77 nothing to compare "
              "(no CUDA backend in this build, or no GPU).");
  std::string model_path, token_list, plot, cache_type = "f16";
  FaultFlags fault_flags;
  std::string prompt = "It is a truth universally acknowledged, that a single man";
  float nmse = 0;
  int threads = 0, steps = 4;
  p.option("-m,--model", "M.gguf", "model file", &model_path);
  p.option("-p,--prompt", "TEXT", "prompt text (default: the first austen reference prompt)", &prompt);
  p.option("--tokens", "IDS", "token ids instead of text, comma-separated", &token_list);
  p.option("-n,--steps", "N", "generation steps after the prompt (default 4)", &steps, Range::between(0, 1000));
  p.option("--nmse", "X", "NMSE threshold for every tap and step (default 1e-5)", &nmse, Range::above(0));
  add_fault_flags(p, &fault_flags, "in the CUDA backend alone");
  p.option("--cache-type", "TYPE", "KV cache type on both backends: f16 (default) or f32", &cache_type);
  p.option("--plot", "FILE", "draw the prompt's diff to FILE.svg (or .png, needs rsvg-convert)", &plot);
  p.option("-t,--threads", "N", "CPU threads (default 0: all; -1 too, as llama.cpp)", &threads, Range::at_least(-1));
  if (auto code = p.parse(argc, argv)) return *code;
  threads = cap_threads("check", threads);
  if (model_path.empty()) return p.usage_error("-m M.gguf is required");
  if (cache_type != "f16" && cache_type != "f32") return p.usage_error("--cache-type must be f16 or f32");
  auto fault = parse_fault(fault_flags.name);
  if (!fault.ok()) return p.usage_error(fault.status().message());
  if (!plot.empty()) {
    if (Status s = check_output_path(plot, {model_path}); !s.ok()) return p.usage_error("--plot: " + s.message());
  }
  std::vector<int32_t> tokens;
  if (!token_list.empty()) {
    auto ids = parse_token_list(token_list);
    if (!ids.ok()) return p.usage_error(ids.status().message());
    tokens = std::move(ids).value();
  }

  std::string why;
  if (!cuda_available(&why)) {
    std::printf("plumb check: %s: nothing to compare\n", why.c_str());
    return kExitNothingToCompare;
  }
  ModelOptions model_options;
  model_options.load_tokenizer = tokens.empty();
  auto model = Model::load(model_path, model_options);
  if (!model.ok()) return fail("check", model.status().message());
  if (tokens.empty()) {
    auto ids = tokenize_prompt(**model, prompt);
    if (!ids.ok()) return fail("check", ids.status().message());
    tokens = std::move(ids).value();
  }
  const int64_t n_vocab = (*model)->config().n_vocab;
  SessionOptions cpu_options;
  cpu_options.n_threads = threads;
  cpu_options.n_ctx = static_cast<int>(tokens.size()) + steps + 1;
  cpu_options.n_batch = static_cast<int>(tokens.size());
  cpu_options.cache_type = cache_type == "f32" ? CacheType::F32 : CacheType::F16;
  cpu_options.backend = "cpu";
  SessionOptions gpu_options = cpu_options;
  gpu_options.backend = "cuda";
  gpu_options.fault = *fault;
  gpu_options.fault_layer = fault_flags.layer;
  trace::DiffOptions diff_options;
  diff_options.nmse = nmse > 0 ? nmse : kDefaultNmse;
  bool diverged = false;

  // 1. The prompt, one batch, every tap.
  auto cpu = trace_tokens(**model, tokens, cpu_options, "*");
  if (!cpu.ok()) return fail("check", "CPU run: " + cpu.status().message());
  auto gpu = trace_tokens(**model, tokens, gpu_options, "*");
  if (!gpu.ok()) return fail("check", "CUDA run: " + gpu.status().message());
  auto prompt_report =
      report(*gpu, *cpu, diff_options, "prompt of " + std::to_string(tokens.size()) + " tokens", &diverged);
  if (!prompt_report.ok()) return fail("check", prompt_report.status().message());
  if (!plot.empty()) {
    if (Status s = trace::write_diff_plot(*prompt_report, plot); !s.ok()) return fail("check", s.message());
  }

  // 2. Generation steps, untraced (CUDA replays a recorded graph), logits step by step.
  auto cpu_walk = start(**model, tokens, cpu_options);
  if (!cpu_walk.ok()) return fail("check", "CPU run: " + cpu_walk.status().message());
  auto gpu_walk = start(**model, tokens, gpu_options);
  if (!gpu_walk.ok()) return fail("check", "CUDA run: " + gpu_walk.status().message());
  int32_t next = static_cast<int32_t>(argmax((*cpu_walk)->logits(0), n_vocab));
  double worst = 0;
  int worst_step = -1;
  for (int i = 0; i < steps; ++i) {
    const int32_t one[1] = {next};
    if (Status s = (*cpu_walk)->decode(one, false); !s.ok()) return fail("check", "CPU step: " + s.message());
    if (Status s = (*gpu_walk)->decode(one, false); !s.ok()) return fail("check", "CUDA step: " + s.message());
    const double e = logits_nmse((*gpu_walk)->logits(0), (*cpu_walk)->logits(0), n_vocab);
    if (!(e <= worst)) worst = e, worst_step = i;
    next = static_cast<int32_t>(argmax((*cpu_walk)->logits(0), n_vocab));
  }
  if (steps > 0) {
    const bool over = !(worst <= *diff_options.nmse);
    std::printf("plumb check (CUDA vs CPU, %d generation steps): %s: largest logits NMSE %.3g (step %d, threshold %.3g)\n",
                steps, over ? "DIVERGED" : "within thresholds", worst, worst_step, *diff_options.nmse);
    diverged |= over;
  }

  // 3. One more step, traced on both: which tap of a generation step goes wrong first.
  auto cpu_step = traced_step(**cpu_walk, next, n_vocab, "cpu");
  if (!cpu_step.ok()) return fail("check", "CPU step: " + cpu_step.status().message());
  auto gpu_step = traced_step(**gpu_walk, next, n_vocab, "cuda");
  if (!gpu_step.ok()) return fail("check", "CUDA step: " + gpu_step.status().message());
  auto step_report = report(*gpu_step, *cpu_step, diff_options,
                            "one traced generation step at position " + std::to_string(tokens.size() + steps),
                            &diverged);
  if (!step_report.ok()) return fail("check", step_report.status().message());
  return diverged ? 1 : 0;
}

const bool registered = register_command({"check", "run a prompt on CPU and CUDA and diff every tap", run_check});

}  // namespace
}  // namespace plumb::cli
