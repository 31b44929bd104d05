// plumb run: continue a prompt, streaming the generated text to stdout.
#include <chrono>
#include <cstdio>

#include "cli/command.h"
#include "cli/model_flags.h"
#include "sample/generate.h"
#include "util/json.h"
#include "util/text_file.h"

namespace plumb::cli {

namespace {

void print_timings(FILE* out, const std::string& where, double load_ms, const GenerateTimings& t) {
  auto line = [out](const char* what, double ms, int n, const char* unit) {
    std::fprintf(out, "%16s = %10.2f ms / %5d %s (%8.2f ms per token, %8.2f tokens per second)\n",
                 what, ms, n, unit, n > 0 ? ms / n : 0.0, ms > 0.0 ? 1e3 * n / ms : 0.0);
  };
  std::fprintf(out, "%16s = %s\n", "backend", where.c_str());
  std::fprintf(out, "%16s = %10.2f ms\n", "load time", load_ms);
  line("prompt eval time", t.prompt_ms, t.n_prompt, "tokens");
  line("eval time", t.generate_ms, t.n_decoded, "runs  ");
  std::fprintf(out, "%16s = %10.2f ms\n", "sampling time", t.sample_ms);
}

// What the backend allocated on the device (nothing on the CPU): the KV cache at the context of
// the run, the device's own context not counted.
void print_device_memory(FILE* out, const DeviceMemory& m) {
  if (m.peak == 0) return;
  constexpr double kMiB = 1024.0 * 1024.0;
  std::fprintf(out, "%16s = %10.2f MiB (weights %.2f, KV cache %.2f, other %.2f MiB held at the end; the device's own context not counted)\n",
               "device memory peak", static_cast<double>(m.peak) / kMiB,
               static_cast<double>(m.held[DeviceMemory::kWeights]) / kMiB,
               static_cast<double>(m.held[DeviceMemory::kKvCache]) / kMiB,
               static_cast<double>(m.held[DeviceMemory::kOther]) / kMiB);
}

void write_timings(json::Writer& w, double load_ms, const GenerateTimings& t) {
  const double prompt_rate = t.prompt_ms > 0 ? 1e3 * t.n_prompt / t.prompt_ms : 0.0;
  const double gen_rate = t.generate_ms > 0 ? 1e3 * t.n_decoded / t.generate_ms : 0.0;
  w.begin_object();
  w.key("load_ms").value(load_ms);
  w.key("prompt_n").value(t.n_prompt);
  w.key("prompt_ms").value(t.prompt_ms);
  w.key("prompt_per_second").value(prompt_rate);
  w.key("predicted_n").value(t.n_decoded);
  w.key("predicted_ms").value(t.generate_ms);
  w.key("predicted_per_second").value(gen_rate);
  w.key("sample_ms").value(t.sample_ms);
  w.end_object();
}

void write_tokens(json::Writer& w, const std::vector<int32_t>& tokens) {
  w.begin_array();
  for (const int32_t t : tokens) w.value(t);
  w.end_array();
}

int run_run(int argc, char** argv) {
  ArgParser parser("run", "-m MODEL.gguf (-p TEXT | -f FILE) [options]",
                   "Continue a prompt with a model, streaming the generated text to stdout "
                   "(the prompt itself is not printed). Timings go to stderr.");
  ModelFlags model_flags;
  SamplingFlags sampling_flags;
  std::string prompt;
  std::string prompt_file;
  int n_predict = -1;
  std::vector<std::string> stops;
  bool json = false;
  bool escape_flag = false;  // -e: llama.cpp's default already
  bool no_escape = false;
  bool conversation = false;
  add_model_flags(parser, &model_flags);
  parser.option("-p,--prompt", "TEXT", "the prompt", &prompt);
  parser.option("-f,--file", "FILE", "read the prompt from FILE (one final newline dropped, as llama.cpp)",
                &prompt_file);
  parser.flag("-e,--escape",
              "turn \\n \\r \\t \\' \\\" \\\\ \\xHH in the prompt into the characters: the default, as "
              "llama.cpp",
              &escape_flag);
  parser.flag("--no-escape", "take the prompt's backslashes literally", &no_escape);
  parser.flag("-cnv,--conversation,-i,--interactive",
              "llama.cpp's conversation mode: refused, plumb chat is the conversation", &conversation);
  parser.option("-n,--n-predict", "N", "tokens to generate; -1 = until end of text (default -1)",
                &n_predict, Range::at_least(-1));
  parser.option("--stop", "STRING", "stop before STRING (repeatable)", &stops);
  add_sampling_flags(parser, &sampling_flags);
  parser.json_flag("--json", "print one JSON object (tokens, text, timings) instead of streaming",
              &json);
  if (auto code = parser.parse(argc, argv)) return *code;
  if (conversation) {
    return parser.usage_error("-cnv/-i: plumb run continues one prompt; for a conversation use plumb chat -m MODEL");
  }
  if (Status s = resolve_model_flags("run", &model_flags); !s.ok()) return parser.usage_error(s.message());
  if (!prompt.empty() && !prompt_file.empty()) return parser.usage_error("give -p or -f, not both");
  if (!prompt_file.empty()) {
    Result<std::string> text = read_text_file(prompt_file, "-f");
    if (!text.ok()) return parser.fail(text.status().message());
    prompt = *text;
    // As llama.cpp's -f: the newline that ends a text file is not part of the prompt.
    if (!prompt.empty() && prompt.back() == '\n') prompt.pop_back();
  }
  if (!no_escape) prompt = process_escapes(prompt);
  if (prompt.empty()) return parser.usage_error("a prompt is required (-p TEXT or -f FILE)");

  const auto load_start = std::chrono::steady_clock::now();
  Result<std::unique_ptr<Model>> model = load_model("run", model_flags);
  if (!model.ok()) return parser.fail(model.status().message());
  Result<std::unique_ptr<Session>> session = create_session("run", **model, session_options(model_flags));
  if (!session.ok()) return parser.fail(session.status().message());
  const double load_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - load_start)
          .count();
  const SamplingParams params = sampling_params(sampling_flags, (*session)->n_ctx());

  const Tokenizer& tokenizer = (*model)->tokenizer();
  const std::vector<TokenId> prompt_tokens =
      tokenizer.encode(prompt, /*add_special=*/true, /*parse_special=*/true);
  Sampler sampler(params);
  Generator generator(**session, tokenizer, sampler);
  GenerateOptions options;
  options.n_predict = n_predict;
  options.stop_strings = stops;
  GenerateResult result;
  auto stream = [json](std::string_view text) {
    if (json) return;
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
  };
  if (Status s = generator.generate(prompt_tokens, options, stream, &result); !s.ok()) {
    return parser.fail(s.message());
  }

  if (json) {
    // One line, so that scripts can take the last line of the output.
    json::Writer w(stdout, 0);
    w.begin_object();
    w.key("prompt_tokens");
    write_tokens(w, prompt_tokens);
    w.key("tokens");
    write_tokens(w, result.tokens);
    w.key("text").value(result.text);
    w.key("stop_reason").value(stop_reason_name(result.reason));
    w.key("seed").value(sampler.seed());
    w.key("backend").value(backend_label(model_flags.backend));
    w.key("timings");
    write_timings(w, load_ms, result.timings);
    w.end_object();
    w.finish();
  } else {
    std::printf("\n");
  }
  std::fflush(stdout);
  std::fprintf(stderr, "\n");
  print_timings(stderr, backend_where(model_flags.backend, model_flags.n_threads), load_ms, result.timings);
  print_device_memory(stderr, (*session)->device_memory());
  return 0;
}

const bool registered =
    register_command({"run", "generate text from a prompt (streaming)", run_run});

}  // namespace

}  // namespace plumb::cli
