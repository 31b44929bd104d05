// Forward-pass timing (llama-bench's pp/tg style): prompt processing of -p tokens in one batch,
// then -n single-token generation steps, median of -r runs. Not part of the test suite; build:
//   g++ -O2 -std=c++20 -Isrc bench/model_bench.cpp build/libplumbcore.a -lpcre2-8 -lpthread -o model_bench
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "model/model.h"

using namespace plumb;

int main(int argc, char** argv) {
  std::string path;
  int n_prompt = 64, n_gen = 32, runs = 5, threads = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "-m")) path = argv[i + 1];
    else if (!std::strcmp(argv[i], "-p")) n_prompt = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "-n")) n_gen = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "-r")) runs = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "-t")) threads = std::atoi(argv[i + 1]);
  }
  if (path.empty()) {
    std::fprintf(stderr, "usage: model_bench -m MODEL.gguf [-p 64] [-n 32] [-r 5] [-t N]\n");
    return 2;
  }
  auto model = Model::load(path, {.load_tokenizer = false});
  if (!model.ok()) {
    std::fprintf(stderr, "%s\n", model.status().message().c_str());
    return 1;
  }
  SessionOptions opts;
  opts.n_threads = threads;
  opts.n_ctx = n_prompt + n_gen + 1;
  auto session = Session::create(**model, opts);
  if (!session.ok()) {
    std::fprintf(stderr, "%s\n", session.status().message().c_str());
    return 1;
  }
  Session& s = **session;
  const int64_t n_vocab = (*model)->config().n_vocab;
  std::vector<int32_t> prompt(static_cast<size_t>(n_prompt));
  for (int i = 0; i < n_prompt; ++i) prompt[static_cast<size_t>(i)] = static_cast<int32_t>((i * 7919 + 1) % n_vocab);
  std::vector<double> pp, tg;
  using clock = std::chrono::steady_clock;
  for (int r = 0; r <= runs; ++r) {  // run 0 warms up
    s.truncate(0);
    auto t0 = clock::now();
    if (!s.decode(prompt, false).ok()) return 1;
    auto t1 = clock::now();
    for (int i = 0; i < n_gen; ++i) {
      const int32_t tok[1] = {static_cast<int32_t>((i * 31 + 5) % n_vocab)};
      if (!s.decode(tok, false).ok()) return 1;
    }
    auto t2 = clock::now();
    if (r == 0) continue;
    pp.push_back(n_prompt / std::chrono::duration<double>(t1 - t0).count());
    tg.push_back(n_gen / std::chrono::duration<double>(t2 - t1).count());
  }
  std::sort(pp.begin(), pp.end());
  std::sort(tg.begin(), tg.end());
  std::printf("%s: pp%d %.1f t/s, tg%d %.1f t/s (median of %d, %d threads)\n", path.c_str(), n_prompt,
              pp[pp.size() / 2], n_gen, tg[tg.size() / 2], runs, threads);
  return 0;
}
