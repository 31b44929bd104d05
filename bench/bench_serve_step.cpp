// Micro-benchmark of plumb serve's step (not a test): N sequences of a SessionGroup, each with a
// prompt of P tokens, then decode steps of one generated token each, all N in one forward pass.
//   bench_serve_step MODEL [--seqs 1,16,64] [--prompt 30] [--steps 10] [--threads 2] [--profile 1]
// Prints, per N, the process CPU time and wall time of a step (mean over --steps) and the tokens/s
// the wall time gives. CPU time is what a loaded machine inflates least. --profile 1 adds the CPU
// backend's per-op wall time of a step (src/backend/cpu/op_profile.h, as `plumb bench --profile`).
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "backend/cpu/op_profile.h"
#include "model/model.h"

using namespace plumb;

namespace {

double cpu_seconds() {
  rusage r;
  getrusage(RUSAGE_SELF, &r);
  return static_cast<double>(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
         static_cast<double>(r.ru_utime.tv_usec + r.ru_stime.tv_usec) * 1e-6;
}

double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::vector<int> parse_list(const char* s) {
  std::vector<int> out;
  for (const char* p = s; *p != '\0';) {
    char* end = nullptr;
    const long v = std::strtol(p, &end, 10);
    if (end == p || v < 1 || v > 256) return {};
    out.push_back(static_cast<int>(v));
    p = *end == ',' ? end + 1 : end;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: bench_serve_step MODEL [--seqs 1,16,64] [--prompt 30] [--steps 10] [--threads 2] [--profile 1]\n");
    return 2;
  }
  std::vector<int> seqs = {1, 16, 64};
  int prompt_len = 30, steps = 10, threads = 2;
  bool profile = false;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--seqs") {
      seqs = parse_list(argv[i + 1]);
    } else if (flag == "--prompt") {
      prompt_len = std::atoi(argv[i + 1]);
    } else if (flag == "--steps") {
      steps = std::atoi(argv[i + 1]);
    } else if (flag == "--threads") {
      threads = std::atoi(argv[i + 1]);
    } else if (flag == "--profile") {
      profile = std::atoi(argv[i + 1]) != 0;
    } else {
      std::fprintf(stderr, "bench_serve_step: unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  if (seqs.empty() || prompt_len < 1 || prompt_len > 512 || steps < 1 || steps > 1000 || threads < 1) {
    std::fprintf(stderr, "bench_serve_step: --seqs 1..256 each, --prompt 1..512, --steps 1..1000, --threads >= 1\n");
    return 2;
  }
  ModelOptions mo;
  mo.load_tokenizer = false;
  auto model = Model::load(argv[1], mo);
  if (!model.ok()) {
    std::fprintf(stderr, "bench_serve_step: %s\n", model.status().message().c_str());
    return 1;
  }
  const int64_t n_vocab = (*model)->config().n_vocab;
  std::vector<int32_t> prompt(static_cast<size_t>(prompt_len));
  for (int i = 0; i < prompt_len; ++i) prompt[static_cast<size_t>(i)] = static_cast<int32_t>((100 + 7 * i) % n_vocab);

  for (int n : seqs) {
    SessionOptions so;
    so.n_ctx = prompt_len + steps + 1;
    so.n_threads = threads;
    auto group = SessionGroup::create(**model, so, n, n * prompt_len);
    if (!group.ok()) {
      std::fprintf(stderr, "bench_serve_step: %s\n", group.status().message().c_str());
      return 1;
    }
    std::vector<SessionGroup::Input> inputs;
    for (int s = 0; s < n; ++s) inputs.push_back({s, prompt, false, true});
    if (Status st = (*group)->step(inputs); !st.ok()) {
      std::fprintf(stderr, "bench_serve_step: %s\n", st.message().c_str());
      return 1;
    }
    std::vector<int32_t> last(static_cast<size_t>(n), 42);
    inputs.clear();
    for (int s = 0; s < n; ++s) inputs.push_back({s, std::span(&last[static_cast<size_t>(s)], 1), true, true});
    cpu::OpProfile::reset();
    cpu::OpProfile::set_enabled(profile);
    const double c0 = cpu_seconds(), w0 = wall_seconds();
    for (int i = 0; i < steps; ++i) {
      if (Status st = (*group)->step(inputs); !st.ok()) {
        std::fprintf(stderr, "bench_serve_step: %s\n", st.message().c_str());
        return 1;
      }
    }
    const double cpu_ms = (cpu_seconds() - c0) / steps * 1e3, wall_ms = (wall_seconds() - w0) / steps * 1e3;
    cpu::OpProfile::set_enabled(false);
    std::printf("%3d sequences: a step %7.1f ms CPU (%5.2f ms a token), %7.1f ms wall, %6.1f tokens/s\n", n, cpu_ms,
                cpu_ms / n, wall_ms, n / wall_ms * 1e3);
    for (const cpu::OpProfile::Row& r : profile ? cpu::OpProfile::rows() : std::vector<cpu::OpProfile::Row>{}) {
      if (r.calls > 0) std::printf("    %-22s %8.3f ms a step\n", r.name.c_str(), r.wall_ns * 1e-6 / steps);
    }
  }
  return 0;
}
