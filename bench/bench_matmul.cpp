// Micro-benchmark of the CPU matmul kernels on TinyLlama-1.1B shapes (not a test).
//   bench_matmul [--threads N] [--reps N] [--types Q4_K,Q6_K,...] [--tokens 1,64] [--min] [--rows N]
//                [--cpu-time] [--cold MIB] [--llama-3-8b]
// --llama-3-8b: Llama-3-8B's shapes instead (4096 wide, 14336-wide ffn_down rows).
// On a loaded machine, `--threads 1 --cpu-time --min` measures the kernel's own speed (thread CPU
// time excludes time the scheduler gave to other processes).
// --cold MIB: each timed product reads the next of as many copies of its weights (the generation
// copy where there is one) as make MIB together, so that real shapes stream from memory as in a
// whole model, not from the L3 their repeated runs would fill.
// n_tokens = 1: GB/s of weights read (generation is bandwidth-bound; ~30 GB/s on the 2-core dev
// machine). n_tokens > 1: GFLOP/s (2 * n_in * n_out * n_tokens per product).
#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "backend/cpu/copy_arena.h"
#include "backend/cpu/matmul.h"
#include "quant/ref.h"
#include "quant/types.h"

using namespace plumb;

namespace {

struct Shape {
  const char* name;
  int64_t n_in, n_out;
};
// One TinyLlama layer: q, k, v, o, gate, up, down; then the output head.
const Shape kShapes[] = {{"attn_q/o", 2048, 2048}, {"attn_k/v", 2048, 256}, {"ffn_gate/up", 2048, 5632},
                         {"ffn_down", 5632, 2048}, {"output", 2048, 32000}};
const Shape kShapes8b[] = {{"attn_q/o", 4096, 4096}, {"attn_k/v", 4096, 1024}, {"ffn_gate/up", 4096, 14336},
                           {"ffn_down", 14336, 4096}, {"output", 4096, 128256}};

bool g_cpu_time = false;  // --cpu-time: the calling thread's CPU time (with --threads 1 only)

double now_s() {
  if (g_cpu_time) {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// A weight matrix made of 64 reference-quantized random rows, repeated (quantizing 65M elements
// with the reference quantizer would take longer than the benchmark).
std::vector<uint8_t> make_weights(TensorType type, int64_t n_in, int64_t n_out) {
  const size_t rb = row_size(type, n_in);
  std::vector<uint8_t> seed_rows(rb * 64);
  std::mt19937 rng(42);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::vector<float> row(static_cast<size_t>(n_in));
  for (int r = 0; r < 64; ++r) {
    for (auto& v : row) v = normal(rng);
    quantize_row(type, row.data(), seed_rows.data() + r * rb, n_in);
  }
  std::vector<uint8_t> w(rb * static_cast<size_t>(n_out));
  for (int64_t r = 0; r < n_out; ++r) std::memcpy(w.data() + r * rb, seed_rows.data() + (r % 64) * rb, rb);
  return w;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) out.push_back(item);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2, reps = 7;
  bool use_min = false, llama_8b = false;
  int64_t cold_mib = 0;
  int64_t rows_override = 0;  // --rows N: every shape with n_out = N (short runs for a loaded machine)  // the fastest run instead of the median: for a loaded machine
  std::string types_arg = "Q4_K,Q6_K,Q8_0,Q4_0,Q4_1,F16";
  std::string tokens_arg = "1,64";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (a == "--reps" && i + 1 < argc) reps = std::atoi(argv[++i]);
    else if (a == "--types" && i + 1 < argc) types_arg = argv[++i];
    else if (a == "--tokens" && i + 1 < argc) tokens_arg = argv[++i];
    else if (a == "--min") use_min = true;
    else if (a == "--cpu-time") g_cpu_time = true;
    else if (a == "--rows" && i + 1 < argc) rows_override = std::atoll(argv[++i]);
    else if (a == "--cold" && i + 1 < argc) cold_mib = std::atoll(argv[++i]);
    else if (a == "--llama-3-8b") llama_8b = true;
    else {
      std::fprintf(stderr, "usage: bench_matmul [--threads N] [--reps N] [--types T,..] [--tokens N,..] [--min] [--rows N] [--cpu-time] [--cold MIB] [--llama-3-8b]\n");
      return 2;
    }
  }
  if (g_cpu_time && threads != 1) {
    std::fprintf(stderr, "--cpu-time needs --threads 1\n");
    return 2;
  }
  ThreadPool pool(threads);
  std::printf("threads %d, %s of %d runs, SIMD %s\n", threads, use_min ? "fastest" : "median", reps,
              cpu::simd_name());
  std::printf("%-6s %-12s %6s %6s %4s %10s %10s %10s\n", "type", "shape", "n_in", "n_out", "tok", "us", "GB/s",
              "GFLOP/s");
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (const std::string& tname : split(types_arg)) {
    const auto type = type_from_name(tname);
    if (!type) {
      std::fprintf(stderr, "unknown type %s\n", tname.c_str());
      return 2;
    }
    double layer_us[2] = {0, 0};
    for (Shape s : llama_8b ? std::span<const Shape>(kShapes8b) : std::span<const Shape>(kShapes)) {
      if (rows_override > 0) s.n_out = rows_override;
      const std::vector<uint8_t> wbytes = make_weights(*type, s.n_in, s.n_out);
      // The weights as the backend holds them: the generation copy in a CopyArena (the file's
      // bytes where there is none); with --cold as many as make cold_mib.
      const cpu::WeightMatrix w0{*type, s.n_in, s.n_out, wbytes.data(), row_size(*type, s.n_in)};
      const size_t copy_bytes = cpu::generation_copy_bytes(w0);
      const size_t read_bytes = copy_bytes > 0 ? copy_bytes : wbytes.size();
      const size_t n_copies = std::max<size_t>(1, static_cast<size_t>(cold_mib << 20) / read_bytes + (cold_mib > 0));
      cpu::CopyArena arena;
      std::vector<cpu::CopyArena::Slot> slots;
      for (size_t i = 0; i < n_copies; ++i) slots.push_back(arena.reserve(read_bytes));
      std::vector<cpu::WeightMatrix> ws(n_copies, w0);
      for (size_t i = 0; i < n_copies; ++i) {
        uint8_t* mem = arena.at(slots[i]);
        if (mem == nullptr) return std::fprintf(stderr, "cannot map %zu bytes\n", read_bytes * n_copies), 1;
        if (copy_bytes > 0) {
          cpu::make_generation_copy(pool, ws[i], mem);
        } else {
          std::memcpy(mem, wbytes.data(), wbytes.size());
          ws[i].data = mem;
        }
      }
      size_t next_copy = 0;
      const auto next = [&]() -> const cpu::WeightMatrix& { return ws[next_copy++ % ws.size()]; };
      for (const std::string& tok : split(tokens_arg)) {
        const int64_t n_tokens = std::atoll(tok.c_str());
        std::vector<float> x(static_cast<size_t>(n_tokens * s.n_in));
        for (auto& v : x) v = normal(rng);
        std::vector<float> y(static_cast<size_t>(n_tokens * s.n_out));
        cpu::ActivationBuffer act;
        cpu::matmul(pool, next(), x.data(), n_tokens, y.data(), act);  // warm-up
        // Each timed run is one product (short, so the fastest of many is an uninterrupted one
        // even on a loaded machine); runs continue until `reps` runs and at least 0.2 s.
        std::vector<double> runs;
        const double start = now_s();
        while (static_cast<int>(runs.size()) < reps || now_s() - start < 0.2) {
          const double t0 = now_s();
          cpu::matmul(pool, next(), x.data(), n_tokens, y.data(), act);
          runs.push_back(now_s() - t0);
        }
        std::sort(runs.begin(), runs.end());
        const double sec = use_min ? runs.front() : runs[runs.size() / 2];
        const double gbs = static_cast<double>(wbytes.size()) / sec / 1e9;
        const double gflops = 2.0 * s.n_in * s.n_out * n_tokens / sec / 1e9;
        std::printf("%-6s %-12s %6lld %6lld %4lld %10.1f %10.2f %10.1f\n", tname.c_str(), s.name,
                    static_cast<long long>(s.n_in), static_cast<long long>(s.n_out),
                    static_cast<long long>(n_tokens), sec * 1e6, gbs, gflops);
        std::fflush(stdout);
        // One layer = 2x attn_q/o + 2x attn_k/v + 2x ffn_gate/up + ffn_down.
        const int mult = std::string(s.name) == "ffn_down" ? 1 : 2;
        if (std::string(s.name) != "output" && n_tokens == 1) layer_us[0] += mult * sec * 1e6;
        if (std::string(s.name) != "output" && n_tokens == 64) layer_us[1] += mult * sec * 1e6;
      }
    }
    if (layer_us[0] > 0) std::printf("%-6s one layer, 1 token: %.1f us\n", tname.c_str(), layer_us[0]);
    if (layer_us[1] > 0) {
      std::printf("%-6s one layer, 64 tokens: %.1f us (%.1f us/token)\n", tname.c_str(), layer_us[1],
                  layer_us[1] / 64);
    }
  }
  return 0;
}
