// llama-trace: runs one prompt through llama.cpp (libllama) with the graph's eval callback and
// writes every intermediate as a plumb trace (p0.tokens, p0.logits, p0.trace.<tap>: the layout
// of ../shared/ref/*.gguf), llama.cpp's node names mapped to plumb's taps (docs/TRACE.md).
//
//   llama-trace -m MODEL.gguf (--tokens 1,739,... | --tokens-from REF.gguf | -p TEXT) -o TRACE.gguf
//               [-t THREADS] [-c CTX] [--flash-attn on|off] [--cache-type f16|f32|q8_0] [-ngl N]
//               [--extra-bufts on|off] [-v]
//
// --extra-bufts (default on, as llama.cpp): llama.cpp's CPU "extra" weight buffers, which repack
// Q4_0/Q4_K/IQ4_NL weights for its interleaved kernels (and AMX, which build.sh leaves out: this
// llama.cpp's AMX matmul crashes in ggml_backend_amx_mul_mat on the machines plumb is developed
// on). On because the references of ../shared/ref were made with it: their Q4_K taps are the
// repacked kernels' bits, not the plain dot product's. -v keeps llama.cpp's log (otherwise only
// its warnings and errors are shown).
//
// Built by tools/llama-trace/build.sh against the llama.cpp vendored in a pinned llama-cpp-python
// sdist. Flash attention, threads, KV type and GPU layers are recorded in the trace's metadata.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "ggml-backend.h"
#include "ggml.h"
#include "gguf.h"
#include "llama.h"

#ifndef LLAMA_TRACE_VERSION
#define LLAMA_TRACE_VERSION "llama.cpp (version not recorded)"
#endif

namespace {

struct Tap {
  std::string name;        // plumb's tap name
  int64_t width = 0;
  std::vector<float> data;  // [n_tokens][width]
};

struct State {
  int64_t n_tokens = 0;
  std::map<std::string, Tap> taps;  // by plumb name; the first tensor seen for a name is kept
  std::vector<std::string> order;
};

// llama.cpp graph name ("Qcur-3", "result_norm") and op -> plumb tap ("blk.3.q_rope"); "" when
// the node is not a tap.
std::string plumb_tap(const char* graph_name, ggml_op op) {
  std::string name = graph_name;
  if (name == "embd" || name == "inp_embd") return "inp_embd";
  if (name == "result_norm") return "result_norm";
  if (name == "result_output") return "logits";
  const size_t dash = name.rfind('-');
  if (dash == std::string::npos || dash + 1 >= name.size()) return "";
  const std::string base = name.substr(0, dash), layer = name.substr(dash + 1);
  for (char c : layer) {
    if (c < '0' || c > '9') return "";
  }
  static const std::map<std::string, std::string> kLayer = {
      {"attn_norm", "attn_norm"}, {"Vcur", "v"},           {"kqv_out", "attn_out"},
      {"attn_out", "attn_proj"},  {"ffn_inp", "ffn_inp"},  {"ffn_norm", "ffn_norm"},
      {"ffn_gate", "ffn_gate"},   {"ffn_up", "ffn_up"},    {"ffn_swiglu", "ffn_act"},
      {"ffn_out", "ffn_out"},     {"l_out", "out"},
  };
  std::string op_name;
  if (base == "Qcur" || base == "Kcur") {
    // Named both as the projection and as the RoPE output.
    op_name = std::string(base == "Qcur" ? "q" : "k") + (op == GGML_OP_ROPE ? "_rope" : "");
  } else {
    const auto it = kLayer.find(base);
    if (it == kLayer.end()) return "";
    op_name = it->second;
  }
  return "blk." + layer + "." + op_name;
}

bool is_view(ggml_op op) {
  return op == GGML_OP_VIEW || op == GGML_OP_PERMUTE || op == GGML_OP_TRANSPOSE;
}

bool eval_callback(struct ggml_tensor* t, bool ask, void* user_data) {
  auto* state = static_cast<State*>(user_data);
  const std::string tap = plumb_tap(t->name, t->op);
  if (tap.empty() || is_view(t->op) || state->taps.count(tap) != 0) return ask ? false : true;
  if (t->type != GGML_TYPE_F32 && t->type != GGML_TYPE_F16) return ask ? false : true;
  if (ask) return true;
  const int64_t n = ggml_nelements(t);
  if (state->n_tokens <= 0 || n % state->n_tokens != 0) return true;
  std::vector<uint8_t> raw(ggml_nbytes(t));
  ggml_backend_tensor_get(t, raw.data(), 0, raw.size());
  Tap out;
  out.name = tap;
  out.width = n / state->n_tokens;
  out.data.resize(static_cast<size_t>(n));
  // Gather in ggml's logical order (ne0 fastest), whatever the strides.
  size_t k = 0;
  for (int64_t i3 = 0; i3 < t->ne[3]; ++i3) {
    for (int64_t i2 = 0; i2 < t->ne[2]; ++i2) {
      for (int64_t i1 = 0; i1 < t->ne[1]; ++i1) {
        for (int64_t i0 = 0; i0 < t->ne[0]; ++i0) {
          const size_t off = i0 * t->nb[0] + i1 * t->nb[1] + i2 * t->nb[2] + i3 * t->nb[3];
          out.data[k++] = t->type == GGML_TYPE_F32
                              ? *reinterpret_cast<const float*>(raw.data() + off)
                              : ggml_fp16_to_fp32(*reinterpret_cast<const ggml_fp16_t*>(raw.data() + off));
        }
      }
    }
  }
  state->order.push_back(tap);
  state->taps.emplace(tap, std::move(out));
  return true;
}

// ---- a minimal GGUF v3 writer -------------------------------------------------------------

struct GgufWriter {
  std::string kv, infos, data;
  uint64_t n_kv = 0, n_tensors = 0;

  static void put_u32(std::string& s, uint32_t v) { s.append(reinterpret_cast<const char*>(&v), 4); }
  static void put_u64(std::string& s, uint64_t v) { s.append(reinterpret_cast<const char*>(&v), 8); }
  static void put_str(std::string& s, const std::string& v) {
    put_u64(s, v.size());
    s += v;
  }
  void set_string(const std::string& key, const std::string& value) {
    put_str(kv, key);
    put_u32(kv, 8);  // STRING
    put_str(kv, value);
    ++n_kv;
  }
  void set_i32(const std::string& key, int32_t value) {
    put_str(kv, key);
    put_u32(kv, 5);  // INT32
    put_u32(kv, static_cast<uint32_t>(value));
    ++n_kv;
  }
  void set_bool(const std::string& key, bool value) {
    put_str(kv, key);
    put_u32(kv, 7);  // BOOL
    kv += static_cast<char>(value ? 1 : 0);
    ++n_kv;
  }
  void add(const std::string& name, uint32_t type, std::vector<uint64_t> ne, const void* bytes, size_t size) {
    while (data.size() % 32 != 0) data += '\0';
    put_str(infos, name);
    put_u32(infos, static_cast<uint32_t>(ne.size()));
    for (uint64_t d : ne) put_u64(infos, d);
    put_u32(infos, type);
    put_u64(infos, data.size());
    data.append(static_cast<const char*>(bytes), size);
    ++n_tensors;
  }
  bool write(const std::string& path) {
    std::string head = "GGUF";
    put_u32(head, 3);
    put_u64(head, n_tensors);
    put_u64(head, n_kv);
    head += kv;
    head += infos;
    while (head.size() % 32 != 0) head += '\0';
    FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr) return false;
    const bool ok = std::fwrite(head.data(), 1, head.size(), f) == head.size() &&
                    std::fwrite(data.data(), 1, data.size(), f) == data.size();
    return std::fclose(f) == 0 && ok;
  }
};

bool verbose = false;

void quiet_log(ggml_log_level level, const char* text, void*) {
  if (verbose || level == GGML_LOG_LEVEL_WARN || level == GGML_LOG_LEVEL_ERROR) std::fputs(text, stderr);
}

// p0.tokens of a trace or reference file (../shared/ref/*.gguf), so that llama.cpp runs on the very
// tokens of the file it is diffed against ("1,739,..."); "" with *error set when it cannot.
std::string tokens_from(const std::string& path, std::string* error) {
  ggml_context* data = nullptr;
  gguf_context* file = gguf_init_from_file(path.c_str(), {/*no_alloc=*/false, &data});
  if (file == nullptr) {
    *error = "--tokens-from: cannot read " + path + " as a GGUF file";
    return "";
  }
  std::string ids;
  const ggml_tensor* t = ggml_get_tensor(data, "p0.tokens");
  if (t != nullptr && t->type == GGML_TYPE_I32) {
    for (int64_t i = 0; i < ggml_nelements(t); ++i) {
      ids += (i > 0 ? "," : "") + std::to_string(static_cast<const int32_t*>(t->data)[i]);
    }
  }
  gguf_free(file);
  ggml_free(data);
  if (ids.empty()) *error = "--tokens-from: " + path + " has no I32 tensor p0.tokens";
  return ids;
}

int usage(const char* why) {
  std::fprintf(stderr,
               "llama-trace: %s\n"
               "usage: llama-trace -m MODEL.gguf (--tokens 1,739,... | --tokens-from REF.gguf | -p TEXT) -o TRACE.gguf\n"
               "                   [-t THREADS] [-c CTX] [--flash-attn on|off] [--cache-type f16|f32|q8_0] [-ngl N]\n"
               "                   [--extra-bufts on|off] [-v]\n"
               "defaults: -t 2 -c 512 --flash-attn off --cache-type f16 -ngl 0 --extra-bufts on (the settings\n"
               "of ../shared/ref's references)\n",
               why);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model_path, tokens_arg, prompt, out_path, flash = "off", cache_type = "f16", extra = "on";
  int threads = 2, n_ctx = 512, ngl = 0;
  bool have_prompt = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if ((a == "-m" || a == "--model") && (v = next())) model_path = v;
    else if (a == "--tokens" && (v = next())) tokens_arg = v;
    else if (a == "--tokens-from" && (v = next())) {
      std::string error;
      tokens_arg = tokens_from(v, &error);
      if (tokens_arg.empty()) return usage(error.c_str());
    }
    else if ((a == "-p" || a == "--prompt") && (v = next())) prompt = v, have_prompt = true;
    else if ((a == "-o" || a == "--output") && (v = next())) out_path = v;
    else if ((a == "-t" || a == "--threads") && (v = next())) threads = std::atoi(v);
    else if ((a == "-c" || a == "--ctx-size") && (v = next())) n_ctx = std::atoi(v);
    else if ((a == "-fa" || a == "--flash-attn") && (v = next())) flash = v;
    else if (a == "--cache-type" && (v = next())) cache_type = v;
    else if ((a == "-ngl" || a == "--n-gpu-layers") && (v = next())) ngl = std::atoi(v);
    else if (a == "--extra-bufts" && (v = next())) extra = v;
    else if (a == "-v" || a == "--verbose") verbose = true;
    else if (a == "-h" || a == "--help") return usage("trace one prompt through llama.cpp"), 0;
    else return usage(("unknown or incomplete option " + a).c_str());
  }
  if (model_path.empty() || out_path.empty() || (tokens_arg.empty() == !have_prompt)) {
    return usage("need -m, -o and exactly one of --tokens / --tokens-from / -p");
  }
  if (flash != "on" && flash != "off") return usage("--flash-attn is on or off");
  if (extra != "on" && extra != "off") return usage("--extra-bufts is on or off");
  ggml_type kv_type = GGML_TYPE_F16;
  if (cache_type == "f32") kv_type = GGML_TYPE_F32;
  else if (cache_type == "q8_0") kv_type = GGML_TYPE_Q8_0;
  else if (cache_type != "f16") return usage("--cache-type is f16, f32 or q8_0");

  llama_log_set(quiet_log, nullptr);
  llama_backend_init();
  llama_model_params mp = llama_model_default_params();
  mp.n_gpu_layers = ngl;
  mp.use_extra_bufts = extra == "on";
  llama_model* model = llama_model_load_from_file(model_path.c_str(), mp);
  if (model == nullptr) {
    std::fprintf(stderr, "llama-trace: cannot load %s\n", model_path.c_str());
    return 1;
  }
  const llama_vocab* vocab = llama_model_get_vocab(model);
  std::vector<llama_token> tokens;
  if (have_prompt) {
    std::vector<llama_token> buf(prompt.size() + 16);
    const int n = llama_tokenize(vocab, prompt.c_str(), static_cast<int32_t>(prompt.size()), buf.data(),
                                 static_cast<int32_t>(buf.size()), /*add_special=*/true, /*parse_special=*/false);
    if (n < 0) return usage("tokenization failed");
    tokens.assign(buf.begin(), buf.begin() + n);
  } else {
    for (const char* p = tokens_arg.c_str(); *p != '\0';) {
      char* end = nullptr;
      tokens.push_back(static_cast<llama_token>(std::strtol(p, &end, 10)));
      if (end == p) return usage("--tokens takes comma-separated ids");
      p = *end == ',' ? end + 1 : end;
    }
  }
  const int n = static_cast<int>(tokens.size());
  if (n == 0 || n > n_ctx) return usage("the prompt must have 1 to CTX tokens");

  State state;
  state.n_tokens = n;
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = static_cast<uint32_t>(n_ctx);
  cp.n_batch = static_cast<uint32_t>(n_ctx);
  cp.n_ubatch = static_cast<uint32_t>(n_ctx);
  cp.n_threads = threads;
  cp.n_threads_batch = threads;
  cp.flash_attn_type = flash == "on" ? LLAMA_FLASH_ATTN_TYPE_ENABLED : LLAMA_FLASH_ATTN_TYPE_DISABLED;
  cp.type_k = kv_type;
  cp.type_v = kv_type;
  cp.cb_eval = eval_callback;
  cp.cb_eval_user_data = &state;
  llama_context* ctx = llama_init_from_model(model, cp);
  if (ctx == nullptr) {
    std::fprintf(stderr, "llama-trace: cannot create a context\n");
    return 1;
  }
  llama_batch batch = llama_batch_init(n, 0, 1);
  for (int i = 0; i < n; ++i) {
    batch.token[i] = tokens[static_cast<size_t>(i)];
    batch.pos[i] = i;
    batch.n_seq_id[i] = 1;
    batch.seq_id[i][0] = 0;
    batch.logits[i] = 1;
  }
  batch.n_tokens = n;
  if (llama_decode(ctx, batch) != 0) {
    std::fprintf(stderr, "llama-trace: llama_decode failed\n");
    return 1;
  }
  const int n_vocab = llama_vocab_n_tokens(vocab);
  std::vector<float> logits(static_cast<size_t>(n) * static_cast<size_t>(n_vocab));
  for (int i = 0; i < n; ++i) std::memcpy(&logits[static_cast<size_t>(i) * n_vocab], llama_get_logits_ith(ctx, i), n_vocab * sizeof(float));

  GgufWriter w;
  w.set_string("general.architecture", "llama-trace");
  w.set_string("trace.engine", std::string("llama.cpp (") + LLAMA_TRACE_VERSION + ")");
  w.set_string("trace.model", model_path);
  w.set_string("trace.backend", ngl > 0 ? "gpu (" + std::to_string(ngl) + " layers offloaded)" : "cpu");
  w.set_string("trace.cache_type", cache_type);
  w.set_bool("trace.flash_attn", flash == "on");
  w.set_i32("trace.threads", threads);
  w.set_i32("trace.n_gpu_layers", ngl);
  w.set_i32("trace.n_ctx", n_ctx);
  w.set_bool("trace.extra_bufts", extra == "on");
  w.add("p0.tokens", 26 /* I32 */, {static_cast<uint64_t>(n)}, tokens.data(), tokens.size() * sizeof(int32_t));
  w.add("p0.logits", 0 /* F32 */, {static_cast<uint64_t>(n_vocab), static_cast<uint64_t>(n)}, logits.data(),
        logits.size() * sizeof(float));
  for (const std::string& name : state.order) {
    const Tap& t = state.taps.at(name);
    w.add("p0.trace." + name, 0, {static_cast<uint64_t>(t.width), static_cast<uint64_t>(n)}, t.data.data(),
          t.data.size() * sizeof(float));
  }
  if (!w.write(out_path)) {
    std::fprintf(stderr, "llama-trace: cannot write %s\n", out_path.c_str());
    return 1;
  }
  std::fprintf(stderr, "llama-trace: %d tokens, %zu taps (%s) -> %s\n", n, state.order.size(), LLAMA_TRACE_VERSION,
               out_path.c_str());
  llama_batch_free(batch);
  llama_free(ctx);
  llama_model_free(model);
  llama_backend_free();
  return 0;
}
