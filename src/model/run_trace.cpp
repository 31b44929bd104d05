#include "model/run_trace.h"

#include <charconv>

#include "backend/backend.h"
#include "backend/cuda/device_info.h"

namespace plumb {

Result<TraceRun> trace_tokens(const Model& model, const std::vector<int32_t>& tokens,
                              const SessionOptions& session_options, const std::string& taps) {
  if (tokens.empty()) return Status::error("trace: no tokens");
  SessionOptions options = session_options;
  const auto n = static_cast<int>(tokens.size());
  if (options.n_ctx != 0 && options.n_ctx < n) options.n_ctx = n;
  PLUMB_ASSIGN_OR_RETURN(std::unique_ptr<Session> session, Session::create(model, options));
  TraceRun run;
  run.tokens = tokens;
  run.backend = options.backend;
  run.recorder = std::make_unique<trace::TraceRecorder>(taps);
  PLUMB_RETURN_IF_ERROR(session->decode(tokens, /*all_logits=*/true, run.recorder.get()));
  PLUMB_RETURN_IF_ERROR(run.recorder->status());
  run.n_vocab = model.config().n_vocab;
  if (session->n_logit_rows() != n) {
    return Status::errorf("trace: the session kept %lld logit rows for %d tokens",
                          static_cast<long long>(session->n_logit_rows()), n);
  }
  run.logits.resize(static_cast<size_t>(run.n_vocab) * tokens.size());
  for (int i = 0; i < n; ++i) {
    const float* row = session->logits(i);
    std::copy(row, row + run.n_vocab, run.logits.begin() + static_cast<int64_t>(i) * run.n_vocab);
  }
  return run;
}

namespace {

trace::TraceContents contents_of(const TraceRun& run) {
  trace::TraceContents c;
  c.tokens = run.tokens;
  c.logits = run.logits;
  c.n_vocab = run.n_vocab;
  c.recorder = run.recorder.get();
  return c;
}

}  // namespace

Status write_trace_run(const std::string& path, const TraceRun& run, const std::string& model_path,
                       const SessionOptions& session_options) {
  trace::TraceContents c = contents_of(run);
  c.metadata.emplace_back("trace.engine", gguf::Value::make_string("plumb"));
  c.metadata.emplace_back("trace.model", gguf::Value::make_string(model_path));
  c.metadata.emplace_back("trace.backend", gguf::Value::make_string(run.backend));
  c.metadata.emplace_back("trace.cache_type",
                          gguf::Value::make_string(session_options.cache_type == CacheType::F16 ? "f16" : "f32"));
  if (session_options.fault != PlantedFault::None) {
    c.metadata.emplace_back("trace.fault", gguf::Value::make_string(fault_name(session_options.fault)));
    c.metadata.emplace_back("trace.fault_layer", gguf::Value::make_i32(session_options.fault_layer));
  }
  return trace::write_trace_file(path, c);
}

Result<trace::DiffReport> diff_runs(const TraceRun& a, const std::string& name_a, const TraceRun& b,
                             const std::string& name_b, const trace::DiffOptions& options) {
  // Through the same GGUF layout as the files, so the comparison is exactly plumb diff's.
  const auto as_trace = [](const TraceRun& run, const std::string& name) -> Result<trace::TraceFile> {
    PLUMB_ASSIGN_OR_RETURN(gguf::Writer w, trace::make_trace_writer(contents_of(run)));
    PLUMB_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, w.serialize());
    PLUMB_ASSIGN_OR_RETURN(std::unique_ptr<gguf::File> file, gguf::File::parse(bytes.data(), bytes.size(), name));
    return trace::read_trace(*file);
  };
  PLUMB_ASSIGN_OR_RETURN(trace::TraceFile ta, as_trace(a, name_a));
  PLUMB_ASSIGN_OR_RETURN(trace::TraceFile tb, as_trace(b, name_b));
  return trace::diff_traces(ta, tb, options);
}

Result<std::vector<int32_t>> parse_token_list(const std::string& list) {
  std::vector<int32_t> ids;
  size_t i = 0;
  while (i < list.size()) {
    if (list[i] == ',' || list[i] == ' ' || list[i] == '\t' || list[i] == '\n') {
      ++i;
      continue;
    }
    int32_t id = 0;
    auto [end, ec] = std::from_chars(list.data() + i, list.data() + list.size(), id);
    if (ec != std::errc() || id < 0 ||
        (end != list.data() + list.size() && *end != ',' && *end != ' ' && *end != '\t' && *end != '\n')) {
      return Status::errorf("--tokens: '%s' is not a list of non-negative token ids (at character %zu)",
                            list.c_str(), i);
    }
    ids.push_back(id);
    i = static_cast<size_t>(end - list.data());
  }
  if (ids.empty()) return Status::error("--tokens: no token ids given");
  return ids;
}

Result<std::vector<int32_t>> tokenize_prompt(const Model& model, const std::string& text) {
  std::vector<int32_t> ids = model.tokenizer().encode(text, /*add_special=*/true, /*parse_special=*/false);
  if (ids.empty()) return Status::error("the prompt tokenizes to no tokens");
  return ids;
}

bool cuda_available(std::string* why) {
#ifdef PLUMB_HAVE_CUDA
  if (cuda::device_count() == 0) {
    *why = "no GPU: this build has CUDA but no CUDA device is visible";
    return false;
  }
  // CUDA builds before the backend exists (or when it cannot start) say so here, before any work.
  if (auto backend = make_backend("cuda", 1); !backend.ok()) {
    *why = "no CUDA backend in this build (" + backend.status().message() + ")";
    return false;
  }
  return true;
#else
  *why = "no CUDA backend in this build (configured without nvcc or with -DPLUMB_CUDA=OFF)";
  return false;
#endif
}

}  // namespace plumb
