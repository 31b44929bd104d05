// plumb chat: an interactive conversation through the model's chat template.
//
// Each turn renders the whole conversation with the template and hands its tokens to the
// Generator, which keeps the KV cache of the common prefix, so only the new part (the user's
// message and the next assistant header) is evaluated. Ctrl-C stops the reply being written;
// Ctrl-C at the prompt, or end of input, ends the program.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>

#include "cli/command.h"
#include "cli/line_reader.h"
#include "cli/model_flags.h"
#include "model/chat_template.h"
#include "sample/generate.h"
#include "util/text_file.h"

namespace plumb::cli {

namespace {

std::atomic<bool> g_interrupted{false};

void on_sigint(int) { g_interrupted = true; }

// No SA_RESTART: a Ctrl-C at the prompt interrupts the blocking read, so the program can end.
void install_sigint_handler() {
  struct sigaction action {};
  action.sa_handler = on_sigint;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;
  sigaction(SIGINT, &action, nullptr);
}

int run_chat(int argc, char** argv) {
  ArgParser parser("chat", "-m MODEL.gguf [options]",
                   "Chat with a model through its chat template (tokenizer.chat_template, "
                   "recognised by its markers, or --chat-template NAME). One line of input is "
                   "one user message. Ctrl-C interrupts a reply; Ctrl-C at the prompt or end "
                   "of input quits.");
  ModelFlags model_flags;
  SamplingFlags sampling_flags;
  std::string system;
  std::string template_name;
  int n_predict = -1;
  add_model_flags(parser, &model_flags);
  parser.option("--system,-sys,--system-prompt", "TEXT", "system message", &system);
  parser.option(
      "--chat-template", "NAME",
      "use this built-in template (" +
          [] {
            std::string names;
            for (const std::string& n : ChatTemplate::names()) {
              names += (names.empty() ? "" : ", ") + n;
            }
            return names;
          }() +
          ")",
      &template_name);
  parser.option("-n,--n-predict", "N", "most tokens per reply; -1 = no limit (default -1)",
                &n_predict, Range::at_least(-1));
  bool conversation = false;
  bool escapes = false;
  parser.flag("-cnv,--conversation,-i,--interactive",
              "accepted for llama.cpp: plumb chat is always a conversation", &conversation);
  parser.flag("-e,--escape",
              "turn \\n \\r \\t \\' \\\" \\\\ \\xHH in --system into the characters (off by default: "
              "llama.cpp's escapes, on by default, do not reach its system prompt)",
              &escapes);
  add_sampling_flags(parser, &sampling_flags);
  if (auto code = parser.parse(argc, argv)) return *code;
  if (Status s = resolve_model_flags("chat", &model_flags); !s.ok()) return parser.usage_error(s.message());
  if (escapes) system = process_escapes(system);
  std::optional<ChatTemplate> chat_template;
  if (!template_name.empty()) {
    Result<ChatTemplate> t = ChatTemplate::by_name(template_name);
    if (!t.ok()) return parser.usage_error(t.status().message());
    chat_template = *t;
  }

  Result<std::unique_ptr<Model>> model = load_model("chat", model_flags);
  if (!model.ok()) return fail("chat", model.status().message());
  Result<std::unique_ptr<Session>> session = create_session("chat", **model, session_options(model_flags));
  if (!session.ok()) return fail("chat", session.status().message());
  const SamplingParams params = sampling_params(sampling_flags, (*session)->n_ctx());

  if (!chat_template) {
    Result<std::string> text = (*model)->file().get_string_or("tokenizer.chat_template", "");
    if (!text.ok()) return fail("chat", text.status().message());
    if (text->empty()) {
      std::fprintf(stderr, "chat: the model has no chat template: plain text completion\n");
    } else if (Result<ChatTemplate> t = ChatTemplate::detect(*text); t.ok()) {
      chat_template = *t;
    } else {
      std::fprintf(stderr, "chat: %s; using plain text completion\n", t.status().message().c_str());
    }
  }
  if (chat_template) {
    std::fprintf(
        stderr, "chat: template %s%s\n", chat_template->name().c_str(),
        chat_template->default_system().empty() ? "" : " (with its default system message)");
  }

  const Tokenizer& tokenizer = (*model)->tokenizer();
  Sampler sampler(params);
  Generator generator(**session, tokenizer, sampler);
  GenerateOptions options;
  options.n_predict = n_predict;
  options.interrupt = &g_interrupted;
  std::vector<ChatMessage> messages;
  if (!system.empty()) messages.push_back({"system", system});

  install_sigint_handler();
  const bool interactive = isatty(STDIN_FILENO) != 0;
  LineReader reader(interactive, default_history_path());
  GenerateTimings total;
  std::string line;
  while (true) {
    g_interrupted = false;
    if (!reader.read("> ", &line)) {
      if (interactive) std::fprintf(stdout, "\n");
      break;  // end of input, or Ctrl-C at the prompt
    }
    if (line.empty()) continue;
    messages.push_back({"user", line});

    const std::string prompt = chat_template
                                   ? chat_template->apply(messages, /*add_generation_prompt=*/true)
                                   : render_plain_conversation(messages);
    const std::vector<TokenId> tokens =
        tokenizer.encode(prompt, /*add_special=*/true, /*parse_special=*/true);
    GenerateResult result;
    Status s = generator.generate(
        tokens, options,
        [](std::string_view text) {
          std::fwrite(text.data(), 1, text.size(), stdout);
          std::fflush(stdout);
        },
        &result);
    if (!s.ok()) return fail("chat", s.message());
    std::fprintf(stdout, "\n");
    std::fflush(stdout);
    if (result.reason == StopReason::Interrupted) {
      std::fprintf(stderr, "[reply interrupted]\n");
    } else if (result.reason == StopReason::ContextFull) {
      std::fprintf(stderr, "chat: the context is full (-c %d); ending the conversation\n",
                   (*session)->n_ctx());
      break;
    }
    messages.push_back({"assistant", result.text});
    total.n_prompt += result.timings.n_prompt;
    total.prompt_ms += result.timings.prompt_ms;
    total.n_decoded += result.timings.n_decoded;
    total.generate_ms += result.timings.generate_ms;
  }
  if (total.prompt_ms > 0 || total.generate_ms > 0) {
    std::fprintf(stderr, "chat: prompt %d tokens at %.2f t/s, generation %d tokens at %.2f t/s\n",
                 total.n_prompt, total.prompt_ms > 0 ? 1e3 * total.n_prompt / total.prompt_ms : 0.0,
                 total.n_decoded,
                 total.generate_ms > 0 ? 1e3 * total.n_decoded / total.generate_ms : 0.0);
  }
  return 0;
}

const bool registered =
    register_command({"chat", "interactive chat through the chat template", run_chat});

}  // namespace

}  // namespace plumb::cli
