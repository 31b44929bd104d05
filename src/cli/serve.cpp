// plumb serve: an OpenAI-compatible HTTP server (cpp-httplib) in front of the scheduler.
//
//   POST /v1/chat/completions   POST /v1/completions   GET /v1/models   GET /health   GET /metrics
//
// Requests are parsed and checked (src/serve/request.h) on the HTTP thread, tokenized there,
// and handed to the scheduler (src/serve/scheduler.h), which runs every slot on one thread; the
// HTTP thread waits for the job's tokens and writes them, as one JSON answer or as server-sent
// events. A streaming client that goes away makes the next write fail, which cancels the job:
// the slot is free at the scheduler's next step.
#include <httplib.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <thread>

#include "cli/command.h"
#include "cli/model_flags.h"
#include "model/chat_template.h"
#include "serve/auth.h"
#include "serve/metrics.h"
#include "serve/request.h"
#include "serve/response.h"
#include "serve/scheduler.h"

namespace plumb::cli {

namespace {

using serve::ApiError;
using serve::GenerationParams;
using serve::Job;
using serve::TokenEvent;

struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 8080;
  int parallel = 4;
  int max_queue = 64;
  int prefill_chunk = 64;
  std::string api_key;
  std::string alias;      // the model's id in responses; default: the file name without .gguf
  int64_t max_body = 4 << 20;
  int timeout_s = 30;     // read/write timeout of a connection
  std::string chat_template;
};

class Server {
 public:
  Server(const Model& model, std::optional<ChatTemplate> tmpl, std::unique_ptr<serve::Scheduler> scheduler,
         serve::Metrics* metrics, ServeOptions options, std::string model_id)
      : model_(model), template_(std::move(tmpl)), scheduler_(std::move(scheduler)), metrics_(metrics),
        options_(std::move(options)), model_id_(std::move(model_id)),
        created_(std::chrono::duration_cast<std::chrono::seconds>(
                     std::chrono::system_clock::now().time_since_epoch()).count()) {}

  void install(httplib::Server& http);
  // Ends every request now (the server is stopping).
  void cancel_all() { scheduler_->cancel_all(); }

 private:
  void generate(const std::string& body, httplib::Response& res, bool chat);
  std::string next_id(bool chat);

  const Model& model_;
  std::optional<ChatTemplate> template_;
  std::unique_ptr<serve::Scheduler> scheduler_;
  serve::Metrics* metrics_;
  ServeOptions options_;
  std::string model_id_;
  int64_t created_;
  std::atomic<uint64_t> counter_{0};
};

void send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.http_status;
  res.set_content(e.to_json(), "application/json");
}

ApiError server_error(int status, std::string message, std::string code) {
  ApiError e;
  e.http_status = status;
  e.message = std::move(message);
  e.type = status >= 500 ? "server_error" : "invalid_request_error";
  e.code = std::move(code);
  return e;
}

std::string Server::next_id(bool chat) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[48];
  std::snprintf(buf, sizeof buf, "%s-%llx%06llx", chat ? "chatcmpl" : "cmpl", (unsigned long long)(rng() >> 16),
                (unsigned long long)(counter_.fetch_add(1) & 0xFFFFFF));
  return buf;
}

void Server::install(httplib::Server& http) {
  http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    // A compressed body would be inflated past the size limit: refuse it.
    const std::string encoding = req.get_header_value("Content-Encoding");
    if (!encoding.empty() && encoding != "identity") {
      send_error(res, server_error(415, "Content-Encoding " + encoding + " is not accepted", "unsupported_encoding"));
      return httplib::Server::HandlerResponse::Handled;
    }
    if (options_.api_key.empty() || req.path == "/health") return httplib::Server::HandlerResponse::Unhandled;
    if (serve::bearer_matches(req.get_header_value("Authorization"), options_.api_key)) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    ApiError e = server_error(401, "a valid API key is needed: Authorization: Bearer KEY", "invalid_api_key");
    send_error(res, e);
    res.set_header("WWW-Authenticate", "Bearer");
    return httplib::Server::HandlerResponse::Handled;
  });
  // Answers httplib made itself (404, 413, a bad request line) get OpenAI's error shape too.
  http.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    std::string message = "HTTP status " + std::to_string(res.status);
    std::string code;
    if (res.status == 404) message = "no route " + req.method + " " + req.path, code = "not_found";
    if (res.status == 413) message = "the request body is larger than the server accepts", code = "request_too_large";
    if (res.status == 400) message = "the request could not be read", code = "bad_request";
    send_error(res, server_error(res.status, message, code));
    return httplib::Server::HandlerResponse::Handled;
  }));
  http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "internal error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what += std::string(": ") + e.what();
    } catch (...) {
    }
    send_error(res, server_error(500, what, "internal_error"));
  });
  http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    metrics_->count_request(res.status);
  });

  http.Get("/health", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("{\"status\":\"ok\"}", "application/json");
  });
  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_->render(scheduler_->gauges()), "text/plain; version=0.0.4");
  });
  http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(serve::models_response(model_id_, created_), "application/json");
  });
  // The body is read here rather than by httplib's default path, which treats a body sent as
  // application/x-www-form-urlencoded (what `curl -d` says) as a form capped at 8 KiB.
  for (const bool chat : {true, false}) {
    http.Post(chat ? "/v1/chat/completions" : "/v1/completions",
              [this, chat](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
                std::string body;
                const bool read = reader([&](const char* data, size_t n) {
                  if (body.size() + n > static_cast<size_t>(options_.max_body)) {
                    res.status = 413;
                    return false;
                  }
                  body.append(data, n);
                  return true;
                });
                if (!read) {
                  if (res.status != 413) res.status = 400;
                  return;  // the error handler writes the answer
                }
                generate(body, res, chat);
              });
  }
}

// Server-sent events: "data: JSON\n\n".
bool send_event(httplib::DataSink& sink, const std::string& payload) {
  const std::string event = "data: " + payload + "\n\n";
  return sink.write(event.data(), event.size());
}

std::string joined_text(const std::vector<TokenEvent>& events) {
  std::string text;
  for (const TokenEvent& e : events) text += e.text;
  return text;
}

void Server::generate(const std::string& body, httplib::Response& res, bool chat) {
  ApiError error;
  std::string prompt_text;
  GenerationParams params;
  if (chat) {
    std::optional<serve::ChatRequest> r = serve::parse_chat_request(body, &error);
    if (!r) return send_error(res, error);
    prompt_text = template_ ? template_->apply(r->messages, /*add_generation_prompt=*/true)
                            : render_plain_conversation(r->messages);
    params = std::move(r->params);
  } else {
    std::optional<serve::CompletionRequest> r = serve::parse_completion_request(body, &error);
    if (!r) return send_error(res, error);
    prompt_text = std::move(r->prompt);
    params = std::move(r->params);
  }
  std::vector<TokenId> prompt = model_.tokenizer().encode(prompt_text, /*add_special=*/true, /*parse_special=*/true);
  const int n_ctx = scheduler_->n_ctx();
  if (prompt.empty()) return send_error(res, ApiError::bad_field(chat ? "messages" : "prompt", "the prompt has no tokens"));
  if (static_cast<int64_t>(prompt.size()) > n_ctx) {
    ApiError e = ApiError::bad_field(chat ? "messages" : "prompt",
                                     "the prompt has " + std::to_string(prompt.size()) +
                                         " tokens, more than the context of " + std::to_string(n_ctx) +
                                         " tokens (plumb serve -c)");
    e.code = "context_length_exceeded";
    return send_error(res, e);
  }
  const int n_prompt = static_cast<int>(prompt.size());
  auto job = std::make_shared<Job>(std::move(prompt), params);
  if (!scheduler_->submit(job)) {
    metrics_->count_rejected();
    res.set_header("Retry-After", "1");
    return send_error(res, server_error(503, "the server is busy: every slot is taken and the queue is full; retry later",
                                        "server_busy"));
  }

  auto ctx = std::make_shared<serve::ResponseContext>();
  ctx->chat = chat;
  ctx->id = next_id(chat);
  ctx->model = model_id_;
  ctx->created = std::chrono::duration_cast<std::chrono::seconds>(
                     std::chrono::system_clock::now().time_since_epoch()).count();
  ctx->params = &job->params;
  ctx->tokenizer = &model_.tokenizer();

  if (!job->params.stream) {
    std::vector<TokenEvent> events;
    while (!job->wait(&events, std::chrono::seconds(1))) {
    }
    if (!job->error().empty()) return send_error(res, server_error(500, job->error(), "generation_failed"));
    const serve::Usage usage{n_prompt, job->n_generated()};
    res.set_content(serve::full_response(*ctx, joined_text(events), events, job->finish_reason(), usage),
                    "application/json");
    return;
  }

  res.set_header("Cache-Control", "no-cache");
  auto first = std::make_shared<bool>(true);
  res.set_chunked_content_provider(
      "text/event-stream",
      [job, ctx, first, n_prompt](size_t, httplib::DataSink& sink) {
        if (*first && ctx->chat) {  // the role comes first, before any token
          if (!send_event(sink, serve::stream_chunk(*ctx, "", {}, true, std::nullopt, std::nullopt))) return false;
        }
        *first = false;
        std::vector<TokenEvent> events;
        const bool finished = job->wait(&events, std::chrono::seconds(1));
        if (!events.empty()) {
          if (!send_event(sink, serve::stream_chunk(*ctx, joined_text(events), events, false, std::nullopt, std::nullopt))) {
            return false;
          }
        } else if (!finished) {
          // Nothing new for a second (queued, or a long prompt): a comment line, so a client
          // that has gone is noticed now rather than at the first token.
          static constexpr char kKeepAlive[] = ": waiting\n\n";
          return sink.write(kKeepAlive, sizeof kKeepAlive - 1);
        }
        if (!finished) return true;
        if (!job->error().empty()) {
          send_event(sink, server_error(500, job->error(), "generation_failed").to_json());
        } else {
          const serve::Usage usage{n_prompt, job->n_generated()};
          const bool separate = job->params.include_usage;
          if (!send_event(sink, serve::stream_chunk(*ctx, "", {}, false, job->finish_reason(),
                                                    separate ? std::nullopt : std::optional(usage)))) {
            return false;
          }
          if (separate && !send_event(sink, serve::usage_chunk(*ctx, usage))) return false;
        }
        static constexpr char kDone[] = "data: [DONE]\n\n";
        if (!sink.write(kDone, sizeof kDone - 1)) return false;
        sink.done();
        return true;
      },
      [job](bool success) {
        if (!success) job->cancel();
      });
}

std::string default_model_id(const std::string& path) {
  std::string name = std::filesystem::path(path).filename().string();
  if (name.size() > 5 && name.ends_with(".gguf")) name.resize(name.size() - 5);
  return name;
}

int run_serve(int argc, char** argv) {
  ArgParser parser("serve", "-m MODEL.gguf [options]",
                   "Serve the model over HTTP with OpenAI's API: POST /v1/chat/completions, POST "
                   "/v1/completions, GET /v1/models, GET /health, GET /metrics. Listens on 127.0.0.1 "
                   "unless --host says otherwise. A request's tokens and logprobs do not depend on the "
                   "other requests running beside it.");
  ModelFlags model_flags;
  ServeOptions o;
  add_model_flags(parser, &model_flags);
  parser.option("--host", "ADDR", "address to listen on (default 127.0.0.1)", &o.host);
  parser.option("--port", "N", "port (default 8080; 0: any free one, printed)", &o.port);
  parser.option("-np,--parallel", "N", "requests run at once, each in a slot of its own (default 4)", &o.parallel);
  parser.option("--queue", "N", "requests that may wait for a slot; more get 503 (default 64)", &o.max_queue);
  parser.option("--prefill-chunk", "N", "prompt tokens a slot evaluates per step (default 64)", &o.prefill_chunk);
  parser.option("--api-key", "KEY", "require Authorization: Bearer KEY (all but /health)", &o.api_key);
  parser.option("--alias", "NAME", "the model's id in the API (default: the file name)", &o.alias);
  parser.option("--max-body", "BYTES", "largest request body accepted (default 4194304)", &o.max_body);
  parser.option("--timeout", "SECONDS", "read/write timeout of a connection (default 30)", &o.timeout_s);
  parser.option("--chat-template", "NAME", "use this built-in chat template", &o.chat_template);
  if (auto code = parser.parse(argc, argv)) return *code;
  if (Status s = resolve_model_flags("serve", &model_flags); !s.ok()) return parser.usage_error(s.message());
  if (o.port < 0 || o.port > 65535) return parser.usage_error("--port must be 0..65535");
  if (o.parallel < 1 || o.parallel > 256) return parser.usage_error("--parallel must be 1..256");
  if (o.max_queue < 0) return parser.usage_error("--queue must be >= 0");
  if (o.prefill_chunk < 1) return parser.usage_error("--prefill-chunk must be >= 1");
  if (o.max_body < 1024) return parser.usage_error("--max-body must be at least 1024");
  if (o.timeout_s < 1) return parser.usage_error("--timeout must be >= 1");

  // SIGINT/SIGTERM are taken by a thread of their own (below); every other thread, created
  // from here on, has them blocked. Writes to a closed socket fail with EPIPE, never a signal.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  std::optional<ChatTemplate> tmpl;
  if (!o.chat_template.empty()) {
    Result<ChatTemplate> t = ChatTemplate::by_name(o.chat_template);
    if (!t.ok()) return parser.usage_error(t.status().message());
    tmpl = *t;
  }
  Result<std::unique_ptr<Model>> model = load_model("serve", model_flags);
  if (!model.ok()) return fail("serve", model.status().message());
  if (!tmpl) {
    Result<std::string> text = (*model)->file().get_string_or("tokenizer.chat_template", "");
    if (!text.ok()) return fail("serve", text.status().message());
    if (Result<ChatTemplate> t = ChatTemplate::detect(*text); !text->empty() && t.ok()) {
      tmpl = *t;
    } else {
      std::fprintf(stderr, "serve: no chat template recognised: chat messages are joined as plain text\n");
    }
  }

  serve::Metrics metrics;
  serve::SchedulerOptions so;
  so.n_parallel = o.parallel;
  so.max_queue = o.max_queue;
  so.prefill_chunk = o.prefill_chunk;
  so.prompt_budget = std::max(so.prompt_budget, o.prefill_chunk);
  so.session = session_options(model_flags);
  Result<std::unique_ptr<serve::Scheduler>> scheduler = serve::Scheduler::create(**model, so, &metrics);
  if (!scheduler.ok()) return fail("serve", scheduler.status().message());
  const int n_ctx = (*scheduler)->n_ctx();

  const std::string model_id = o.alias.empty() ? default_model_id(model_flags.model_path) : o.alias;
  Server server(**model, tmpl, std::move(*scheduler), &metrics, o, model_id);
  httplib::Server http;
  // One HTTP thread per connection being answered: every slot and queue place, and a few more
  // to answer 503 and /health while those are all taken.
  const size_t n_http_threads = static_cast<size_t>(o.parallel + o.max_queue + 8);
  http.new_task_queue = [n_http_threads] { return new httplib::ThreadPool(n_http_threads); };
  http.set_payload_max_length(static_cast<size_t>(o.max_body));
  http.set_read_timeout(o.timeout_s, 0);
  http.set_write_timeout(o.timeout_s, 0);
  http.set_keep_alive_timeout(5);
  server.install(http);

  int port = o.port;
  if (port == 0) {
    port = http.bind_to_any_port(o.host);
    if (port < 0) return fail("serve", "cannot listen on " + o.host);
  } else if (!http.bind_to_port(o.host, port)) {
    return fail("serve", "cannot listen on " + o.host + ":" + std::to_string(port));
  }
  std::fprintf(stderr, "serve: %s, %d slots of %d tokens, template %s%s\n", model_id.c_str(), o.parallel, n_ctx,
               tmpl ? tmpl->name().c_str() : "(none)", o.api_key.empty() ? "" : ", API key required");
  std::fprintf(stderr, "serve: listening on http://%s:%d\n", o.host.c_str(), port);
  std::fflush(stderr);

  std::thread signal_thread([&http, &server, signals] {
    int sig = 0;
    sigwait(&signals, &sig);
    std::fprintf(stderr, "serve: signal %d, stopping\n", sig);
    server.cancel_all();
    http.stop();
  });
  const bool ok = http.listen_after_bind();
  if (!ok) {
    // listen ended without a signal: wake the signal thread so it can be joined.
    pthread_kill(signal_thread.native_handle(), SIGTERM);
  }
  signal_thread.join();
  return 0;
}

const bool registered = register_command({"serve", "an OpenAI-compatible HTTP server", run_serve});

}  // namespace

}  // namespace plumb::cli
