// plumb trace: one forward pass over a prompt, every selected intermediate written to a GGUF.
#include <algorithm>
#include <cstdio>

#include "cli/args.h"
#include "cli/command.h"
#include "cli/limits.h"
#include "cli/model_flags.h"
#include "model/check_tensors.h"
#include "model/run_trace.h"
#include "trace/glob.h"
#include "trace/tap_names.h"
#include "util/output_file.h"

namespace plumb::cli {
namespace {

int run_trace(int argc, char** argv) {
  ArgParser p("trace", "-m M.gguf (-p TEXT | --tokens 1,450,...) [--backend cpu|cuda|auto] [--taps GLOB] -o T.gguf",
              "Run one forward pass over the prompt (all positions in one batch) and write p0.tokens, "
              "p0.logits and p0.trace.<tap> for every tap matching --taps: the layout of "
              "../shared/ref/*.gguf, so any two traces can be compared with plumb diff. Tap names: "
              "docs/TRACE.md.");
  std::string model_path, prompt, token_list, backend = "auto", taps = "*", out_path;
  FaultFlags fault_flags;
  int threads = 0;
  std::string n_gpu_layers;  // -ngl as typed, "" when not given
  bool check_tensors = false;
  p.option("-m,--model", "M.gguf", "model file", &model_path);
  p.option("-p,--prompt", "TEXT", "prompt text (tokenized with the model's vocabulary, BOS as the model says)", &prompt);
  p.option("--tokens", "IDS", "token ids instead of text, comma-separated (e.g. a reference's p0.tokens)", &token_list);
  add_backend_flags(p, &backend, &n_gpu_layers);
  p.option("--taps", "GLOB",
           "comma-separated globs of taps to record (default *: all; 'none': only the tokens and logits; "
           "globs that select no tap: exit 2)",
           &taps);
  p.option("-t,--threads", "N", "CPU threads (default 0: all; -1 too, as llama.cpp)", &threads, Range::at_least(-1));
  p.option("-o,--output", "T.gguf", "trace file to write", &out_path);
  add_fault_flags(p, &fault_flags, "(recorded in the trace)");
  p.flag("--check-tensors", "scan every weight for NaN and infinity at load", &check_tensors);
  if (auto code = p.parse(argc, argv)) return *code;
  if (model_path.empty()) return p.usage_error("-m M.gguf is required");
  if (out_path.empty()) return p.usage_error("-o T.gguf is required");
  if (prompt.empty() == token_list.empty()) return p.usage_error("give exactly one of -p TEXT and --tokens IDS");
  if (Status s = resolve_backend_flags(&backend, n_gpu_layers); !s.ok()) return p.usage_error(s.message());
  auto fault = parse_fault(fault_flags.name);
  if (!fault.ok()) return p.usage_error(fault.status().message());
  if (Status s = check_output_path(out_path, {model_path}); !s.ok()) return p.usage_error(s.message());
  threads = cap_threads("trace", threads);
  if (Status s = check_backend_available(backend); !s.ok()) return fail("trace", s.message());

  std::vector<int32_t> tokens;
  if (!token_list.empty()) {
    auto ids = parse_token_list(token_list);
    if (!ids.ok()) return p.usage_error(ids.status().message());
    tokens = std::move(ids).value();
  }
  ModelOptions model_options;
  model_options.load_tokenizer = !prompt.empty();
  auto model = Model::load(model_path, model_options);
  if (!model.ok()) return fail("trace", model.status().message());
  if (check_tensors) {
    if (Status s = check_tensor_data((*model)->file(), threads); !s.ok()) return fail("trace", s.message());
  }
  {
    // Globs that select no tap would write a trace of nothing but what 'none' asks for: a usage
    // error, before the run.
    const std::vector<std::string> names = trace::model_tap_names((*model)->config().n_layer);
    const trace::GlobList selection(taps);
    const auto selected = [&](const std::string& n) { return selection.matches(n); };
    if (taps != "none" && std::none_of(names.begin(), names.end(), selected)) {
      return p.usage_error("--taps '" + taps + "' selects none of the model's " + std::to_string(names.size()) +
                           " taps (inp_embd, blk.<i>.{attn_norm,q,k,v,...,out}, result_norm, logits: "
                           "docs/TRACE.md); --taps none asks for the tokens and logits only");
    }
  }
  if (!prompt.empty()) {
    auto ids = tokenize_prompt(**model, prompt);
    if (!ids.ok()) return fail("trace", ids.status().message());
    tokens = std::move(ids).value();
  }
  SessionOptions options;
  options.backend = backend;
  options.n_threads = threads;
  options.n_ctx = static_cast<int>(tokens.size());
  options.n_batch = static_cast<int>(tokens.size());
  options.fault = *fault;
  options.fault_layer = fault_flags.layer;
  if (Status s = check_session_fits("trace", **model, options, 1, options.n_ctx); !s.ok()) {
    return fail("trace", s.message());
  }
  auto run = trace_tokens(**model, tokens, options, taps);
  if (!run.ok()) return fail("trace", run.status().message());
  if (Status s = write_trace_run(out_path, *run, model_path, options); !s.ok()) return fail("trace", s.message());
  std::fprintf(stderr, "plumb trace: %zu tokens, %zu taps (%s backend) -> %s\n", tokens.size(),
               run->recorder->taps().size(), backend.c_str(), out_path.c_str());
  return 0;
}

const bool registered = register_command({"trace", "run a prompt and dump every intermediate tensor", run_trace});

}  // namespace
}  // namespace plumb::cli
