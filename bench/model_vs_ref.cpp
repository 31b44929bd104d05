// Pooled logits NMSE and top-1 agreement of plumb against a reference file (ref64.py output or
// ../shared/ref/*.gguf) on the reference's own token lists. A by-hand tool for docs/EXACTNESS.md;
// build like model_bench.cpp:
//   g++ -O2 -std=c++20 -Isrc bench/model_vs_ref.cpp build/libplumbcore.a -lpcre2-8 -lpthread -o model_vs_ref
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "model/model.h"

using namespace plumb;

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: model_vs_ref MODEL.gguf REF.gguf [f32]\n");
    return 2;
  }
  auto model = Model::load(argv[1], {.load_tokenizer = false});
  if (!model.ok()) return std::fprintf(stderr, "%s\n", model.status().message().c_str()), 1;
  auto ref = gguf::File::open(argv[2]);
  if (!ref.ok()) return std::fprintf(stderr, "%s\n", ref.status().message().c_str()), 1;
  SessionOptions opts;
  if (argc > 3 && !std::strcmp(argv[3], "f32")) opts.cache_type = CacheType::F32;
  const int64_t n_vocab = (*model)->config().n_vocab;
  double sq_err = 0, sq_ref = 0;
  int64_t positions = 0, top1 = 0;
  for (int k = 0;; ++k) {
    const std::string p = "p" + std::to_string(k) + ".";
    const gguf::TensorInfo* tt = (*ref)->find_tensor(p + "tokens");
    const gguf::TensorInfo* tl = (*ref)->find_tensor(p + "logits");
    if (tt == nullptr || tl == nullptr) break;
    std::vector<int32_t> tokens(static_cast<size_t>(tt->n_elements()));
    std::memcpy(tokens.data(), tt->data, tokens.size() * sizeof(int32_t));
    const auto* rl = reinterpret_cast<const float*>(tl->data);
    auto s = Session::create(**model, opts);
    if (!s.ok()) return std::fprintf(stderr, "%s\n", s.status().message().c_str()), 1;
    if (Status st = (*s)->decode(tokens, true); !st.ok()) return std::fprintf(stderr, "%s\n", st.message().c_str()), 1;
    for (size_t t = 0; t < tokens.size(); ++t) {
      const float* a = (*s)->logits(static_cast<int64_t>(t));
      const float* b = rl + t * n_vocab;
      int64_t ia = 0, ib = 0;
      for (int64_t i = 0; i < n_vocab; ++i) {
        const double d = double(a[i]) - b[i];
        sq_err += d * d;
        sq_ref += double(b[i]) * b[i];
        if (a[i] > a[ia]) ia = i;
        if (b[i] > b[ib]) ib = i;
      }
      ++positions;
      top1 += ia == ib;
    }
  }
  std::printf("NMSE %.3g  top-1 %.2f%% (%lld/%lld positions)\n", sq_err / sq_ref, 100.0 * top1 / positions,
              (long long)top1, (long long)positions);
  return 0;
}
