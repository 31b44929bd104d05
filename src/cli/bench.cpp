// plumb bench: prompt processing and generation speed, measured like llama-bench.
//
// pp N: N random tokens evaluated as one batch; tg N: N tokens evaluated one at a time; each
// into a cache that holds D tokens already (-d, llama-bench's depth; they are evaluated before
// the clock starts). Each test runs once to warm up, then REPS times; the table shows mean ±
// sample standard deviation of tokens per second, and for tg the weight bytes read per second
// (a token reads every weight once, so this shows how close generation is to the memory
// bandwidth). Every timed decode ends by reading logits back, so GPU work is finished when the
// clock stops. -o json prints the same rows as a JSON array. --profile (CPU backend) adds, per
// test, the time of each op kind summed over layers (backend/cpu/op_profile.h).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>
#include <random>

#include "backend/cpu/op_profile.h"
#include "cli/command.h"
#include "cli/model_flags.h"
#include "util/json.h"

namespace plumb::cli {

namespace {

struct Stats {
  double mean = 0.0;
  double sd = 0.0;
};

Stats stats_of(const std::vector<double>& xs) {
  Stats s;
  if (xs.empty()) return s;
  for (double x : xs) s.mean += x;
  s.mean /= static_cast<double>(xs.size());
  if (xs.size() > 1) {
    double sq = 0.0;
    for (double x : xs) sq += (x - s.mean) * (x - s.mean);
    s.sd = std::sqrt(sq / static_cast<double>(xs.size() - 1));
  }
  return s;
}

// Bytes of weights one generated token reads: every tensor, except that the embedding table
// is only gathered from (one row) unless it doubles as the output matrix.
uint64_t weight_bytes_per_token(const Model& model) {
  uint64_t bytes = 0;
  for (const gguf::TensorInfo& t : model.file().tensors()) {
    if (t.name == "token_embd.weight" && !model.config().tied_output) continue;
    bytes += t.nbytes;
  }
  return bytes;
}

// The op profile of one test's timed runs (total_s of wall time over `runs` runs) as a
// table, or as a "profile" array in the test's JSON object.
void print_profile(const std::vector<cpu::OpProfile::Row>& rows, double total_s, int runs, json::Writer* json) {
  const double total_ns = total_s * 1e9;
  double in_ops = 0.0;
  for (const auto& r : rows) in_ops += static_cast<double>(r.wall_ns);
  auto per_run_ms = [&](double ns) { return ns / 1e6 / runs; };
  auto working = [](const cpu::OpProfile::Row& r) {
    return static_cast<double>(r.busy_ns) / static_cast<double>(r.capacity_ns);
  };
  if (json != nullptr) {
    json->key("profile").begin_array();
    for (const auto& r : rows) {
      json->begin_object().key("op").value(r.name).key("calls").value(r.calls / static_cast<uint64_t>(runs));
      json->key("ms").value(per_run_ms(static_cast<double>(r.wall_ns)));
      if (r.busy_ns > 0) json->key("working").value(working(r));
      json->end_object();
    }
    json->begin_object().key("op").value("other").key("ms").value(per_run_ms(total_ns - in_ops)).end_object();
    json->end_array();
    return;
  }
  std::printf("\n| op | calls/run | ms/run | share | threads working |\n| --- | ---: | ---: | ---: | ---: |\n");
  auto line = [&](const std::string& name, uint64_t calls, double ns, const std::string& working) {
    std::printf("| %s | %s | %.3f | %.1f %% | %s |\n", name.c_str(), calls > 0 ? std::to_string(calls).c_str() : "",
                per_run_ms(ns), 100.0 * ns / total_ns, working.c_str());
  };
  for (const auto& r : rows) {
    line(r.name, r.calls / static_cast<uint64_t>(runs), static_cast<double>(r.wall_ns),
         r.busy_ns > 0 ? strprintf("%.0f %%", 100.0 * working(r)) : "");
  }
  line("other (between ops)", 0, total_ns - in_ops, "");
  std::printf("\n");
  std::fflush(stdout);
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int run_bench(int argc, char** argv) {
  ArgParser parser("bench", "-m MODEL.gguf [-p N] [-n N] [-r REPS] [options]",
                   "Measure prompt processing (pp) and generation (tg) speed like llama-bench.");
  ModelFlags model_flags;
  int n_prompt = 64;
  int n_gen = 32;
  int reps = 5;
  int n_depth = 0;
  std::string output = "md";
  bool profile = false;
  add_model_flags(parser, &model_flags);
  parser.option("-p,--n-prompt", "N",
                "prompt tokens for pp; 0 = skip (default 64; at most the model's trained context unless -c "
                "says more)",
                &n_prompt, Range::at_least(0));
  parser.option("-n,--n-gen", "N", "generated tokens for tg; 0 = skip (default 32; bounded as -p)", &n_gen,
                Range::at_least(0));
  parser.option("-r,--repetitions", "N", "repetitions of each test (default 5)", &reps, Range::between(1, 1000));
  parser.option("-d,--n-depth", "N", "tokens already in the cache when each test starts (default 0)", &n_depth,
                Range::at_least(0));
  parser.option("-o,--output", "FORMAT", "md (a table, default) or json", &output);
  parser.flag("--profile", "time each op kind (CPU backend): a table per test after its row", &profile);
  if (auto code = parser.parse(argc, argv)) return *code;
  if (output != "md" && output != "json") return parser.usage_error("-o must be md or json, not '" + output + "'");
  if (Status s = resolve_model_flags("bench", &model_flags); !s.ok()) return parser.usage_error(s.message());
  if (n_prompt == 0 && n_gen == 0) return parser.usage_error("-p 0 and -n 0 leave nothing to measure");
  if (profile && model_flags.backend != "cpu") return parser.usage_error("--profile times the CPU backend's ops only");

  Result<std::unique_ptr<Model>> model = load_model("bench", model_flags);
  if (!model.ok()) return fail("bench", model.status().message());
  // The tests run in one context: the longest must fit the model's trained context, or the
  // context -c gives (the memory check below bounds that one).
  const int64_t longest = n_depth + std::max(n_prompt, n_gen);
  const int64_t limit = model_flags.n_ctx > 0 ? model_flags.n_ctx - 1 : (*model)->config().n_ctx_train - 1;
  if (longest > limit) {
    return parser.usage_error(strprintf(
        "%s %lld does not fit the %s of %lld tokens; use at most %lld%s", n_depth > 0 ? "-d + -p/-n =" : "-p/-n",
        (long long)longest, model_flags.n_ctx > 0 ? "context -c" : "model's trained context",
        (long long)limit + 1, (long long)limit, model_flags.n_ctx > 0 ? "" : ", or give -c N to measure beyond it"));
  }
  SessionOptions options = session_options(model_flags);
  if (options.n_ctx == 0) options.n_ctx = static_cast<int>(longest + 1);
  if (model_flags.n_batch == 0 && model_flags.n_ubatch == 0) options.n_batch = std::max(options.n_batch, n_prompt);  // pp: one batch
  Result<std::unique_ptr<Session>> session = create_session("bench", **model, options);
  if (!session.ok()) return fail("bench", session.status().message());
  Session& s = **session;

  const int64_t n_vocab = (*model)->config().n_vocab;
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> token(0, static_cast<int32_t>(n_vocab - 1));
  auto random_tokens = [&](int n) {
    std::vector<TokenId> out(static_cast<size_t>(n));
    for (TokenId& t : out) t = token(rng);
    return out;
  };

  uint64_t file_bytes = 0;
  uint64_t n_params = 0;
  for (const gguf::TensorInfo& t : (*model)->file().tensors()) {
    file_bytes += t.nbytes;
    n_params += static_cast<uint64_t>(t.n_elements());
  }
  const uint64_t token_bytes = weight_bytes_per_token(**model);
  const int threads = model_flags.n_threads;
  // The CPU kernels' instruction set goes with the backend name: "cpu avx512-vnni".
  const std::string backend = backend_label(model_flags.backend);

  const std::string name =
      (*model)->config().name.empty() ? model_flags.model_path : (*model)->config().name;
  const std::string depth = n_depth > 0 ? " @ d" + std::to_string(n_depth) : "";
  std::optional<json::Writer> json_out;
  if (output == "json") {
    json_out.emplace(stdout);
    json_out->begin_array();
  } else {
    std::printf("| model | size | params | backend | threads | test | t/s | GB/s |\n");
    std::printf("| --- | ---: | ---: | --- | ---: | --- | ---: | ---: |\n");
  }
  // The op profile of a test: enabled around its timed runs only.
  auto timed = [&](auto&& run) -> Status {
    cpu::OpProfile::set_enabled(profile);
    Status st = run();
    cpu::OpProfile::set_enabled(false);
    return st;
  };
  auto row = [&](const std::string& test, int pp, int tg, const Stats& tps, double gbs, double profiled_s) {
    if (json_out) {
      json::Writer& json = *json_out;
      json.begin_object();
      json.key("model").value(name).key("size").value(file_bytes).key("params").value(n_params);
      json.key("backend").value(backend).key("threads").value(threads).key("n_prompt").value(pp);
      json.key("n_gen").value(tg).key("n_depth").value(n_depth).key("test").value(test);
      json.key("avg_ts").value(tps.mean).key("stddev_ts").value(tps.sd);
      if (gbs > 0) json.key("gb_per_s").value(gbs);
      if (profile) print_profile(cpu::OpProfile::rows(), profiled_s, reps, &json);
      json.end_object();
      return;
    }
    const std::string gb = gbs > 0 ? strprintf("%.2f", gbs) : "";
    std::printf("| %s | %.2f MiB | %.2f M | %s | %s | %s | %.2f ± %.2f | %s |\n", name.c_str(),
                static_cast<double>(file_bytes) / (1 << 20), static_cast<double>(n_params) / 1e6,
                backend.c_str(), threads > 0 ? std::to_string(threads).c_str() : "all",
                test.c_str(), tps.mean, tps.sd, gb.c_str());
    if (profile) print_profile(cpu::OpProfile::rows(), profiled_s, reps, nullptr);
    std::fflush(stdout);
  };
  // The cache emptied, then filled with the depth's tokens (not timed).
  auto prepare = [&]() -> Status {
    s.truncate(0);
    if (n_depth == 0) return Status();
    return s.decode(random_tokens(n_depth), false);
  };

  if (n_prompt > 0) {
    std::vector<double> rates;
    double profiled_s = 0.0;
    cpu::OpProfile::reset();
    for (int r = 0; r <= reps; ++r) {
      const std::vector<TokenId> tokens = random_tokens(n_prompt);
      if (Status st = prepare(); !st.ok()) return fail("bench", st.message());
      const auto start = std::chrono::steady_clock::now();
      const Status st = r > 0 ? timed([&] { return s.decode(tokens, false); }) : s.decode(tokens, false);
      if (!st.ok()) return fail("bench", st.message());
      const double seconds = seconds_since(start);
      if (r > 0) {  // r = 0 warms up
        rates.push_back(n_prompt / seconds);
        profiled_s += seconds;
      }
    }
    row("pp" + std::to_string(n_prompt) + depth, n_prompt, 0, stats_of(rates), 0, profiled_s);
  }
  if (n_gen > 0) {
    std::vector<double> rates;
    double profiled_s = 0.0;
    cpu::OpProfile::reset();
    for (int r = 0; r <= reps; ++r) {
      const std::vector<TokenId> tokens = random_tokens(n_gen);
      if (Status st = prepare(); !st.ok()) return fail("bench", st.message());
      const auto generate = [&]() -> Status {
        for (TokenId t : tokens) {
          const TokenId one[1] = {t};
          PLUMB_RETURN_IF_ERROR(s.decode(one, false));
        }
        return Status();
      };
      const auto start = std::chrono::steady_clock::now();
      const Status st = r > 0 ? timed(generate) : generate();
      if (!st.ok()) return fail("bench", st.message());
      const double seconds = seconds_since(start);
      if (r > 0) {
        rates.push_back(n_gen / seconds);
        profiled_s += seconds;
      }
    }
    const Stats tps = stats_of(rates);
    row("tg" + std::to_string(n_gen) + depth, 0, n_gen, tps, tps.mean * static_cast<double>(token_bytes) / 1e9,
        profiled_s);
  }
  if (json_out) {
    json_out->end_array();
    json_out->finish();
    std::printf("\n");
  }
  return 0;
}

const bool registered =
    register_command({"bench", "prompt and generation speed (llama-bench style)", run_bench});

}  // namespace

}  // namespace plumb::cli
