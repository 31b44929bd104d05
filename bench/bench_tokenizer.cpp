// Tokenizer speed on one core: each vocabulary tokenizes a whole text file (no BOS, no
// special-token parsing, like llama.cpp's common_tokenize in ../shared/ref/bench-cpu.md).
// Every run uses a freshly loaded tokenizer, so the word cache starts cold; the figures are
// medians over the runs, load time excluded: wall time, and the CPU time of the thread (the
// fair figure on a shared, loaded machine).
//
//   bench_tokenizer TEXT VOCAB.gguf... [--runs N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: bench_tokenizer TEXT VOCAB.gguf... [--runs N]\n");
    return 2;
  }
  int runs = 5;
  std::vector<std::string> vocabs;
  for (int i = 2; i < argc; ++i) {
    if (std::strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
      runs = std::max(1, std::atoi(argv[++i]));
    } else {
      vocabs.push_back(argv[i]);
    }
  }
  std::ifstream in(argv[1], std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", argv[1]);
    return 1;
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();

  auto thread_cpu = [] {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
  };
  std::printf("| vocabulary | wall s | CPU s | MB/s (CPU) | tokens |\n|---|---|---|---|---|\n");
  for (const std::string& path : vocabs) {
    auto file = plumb::gguf::File::open(path);
    if (!file.ok()) {
      std::fprintf(stderr, "%s\n", file.status().message().c_str());
      return 1;
    }
    std::vector<double> seconds, cpu;
    size_t n_tokens = 0;
    for (int r = 0; r < runs; ++r) {
      auto tokenizer = plumb::Tokenizer::from_gguf(*file.value());
      if (!tokenizer.ok()) {
        std::fprintf(stderr, "%s\n", tokenizer.status().message().c_str());
        return 1;
      }
      const auto start = std::chrono::steady_clock::now();
      const double cpu_start = thread_cpu();
      n_tokens = tokenizer.value()->encode(text, false, false).size();
      cpu.push_back(thread_cpu() - cpu_start);
      seconds.push_back(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    std::sort(seconds.begin(), seconds.end());
    std::sort(cpu.begin(), cpu.end());
    const double median = seconds[seconds.size() / 2];
    const double median_cpu = cpu[cpu.size() / 2];
    std::string name = path.substr(path.find_last_of('/') + 1);
    std::printf("| %s | %.3f | %.3f | %.2f | %zu |\n", name.c_str(), median, median_cpu,
                static_cast<double>(text.size()) / median_cpu / 1e6, n_tokens);
  }
  return 0;
}
