// `plumb inspect FILE.gguf [--json]`: a GGUF file's header, metadata, tensor table, totals per
// type and, for a model, its hyperparameters. Text output summarizes long arrays and strings;
// --json is complete (every key, every array element, every tensor).
#include <algorithm>
#include <cstdio>
#include <map>
#include <string>

#include "cli/args.h"
#include "cli/command.h"
#include "gguf/gguf.h"
#include "util/json.h"

namespace plumb::cli {

namespace {

using gguf::File;
using gguf::TensorInfo;
using gguf::Value;
using gguf::ValueType;

constexpr size_t kTextStringLimit = 64;  // bytes of a string shown in text mode
constexpr size_t kTextArrayItems = 6;    // leading items of an array shown in text mode

// llama.cpp's `enum llama_ftype` (general.file_type), for the names people know.
const char* file_type_name(int64_t ftype) {
  switch (ftype) {
    case 0: return "ALL_F32";
    case 1: return "MOSTLY_F16";
    case 2: return "MOSTLY_Q4_0";
    case 3: return "MOSTLY_Q4_1";
    case 7: return "MOSTLY_Q8_0";
    case 8: return "MOSTLY_Q5_0";
    case 9: return "MOSTLY_Q5_1";
    case 10: return "MOSTLY_Q2_K";
    case 11: return "MOSTLY_Q3_K_S";
    case 12: return "MOSTLY_Q3_K_M";
    case 13: return "MOSTLY_Q3_K_L";
    case 14: return "MOSTLY_Q4_K_S";
    case 15: return "MOSTLY_Q4_K_M";
    case 16: return "MOSTLY_Q5_K_S";
    case 17: return "MOSTLY_Q5_K_M";
    case 18: return "MOSTLY_Q6_K";
    case 25: return "MOSTLY_IQ4_NL";
    case 30: return "MOSTLY_IQ4_XS";
    case 32: return "MOSTLY_BF16";
    default: return nullptr;
  }
}

// The first `limit` bytes of `s`, not cutting a UTF-8 sequence in half.
std::string_view utf8_prefix(std::string_view s, size_t limit) {
  if (s.size() <= limit) return s;
  size_t end = limit;
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xc0) == 0x80) --end;
  return s.substr(0, end);
}

std::string text_string(const std::string& s) {
  if (s.size() <= kTextStringLimit) return json::quote(s);
  return json::quote(utf8_prefix(s, kTextStringLimit)) + strprintf("... (%zu bytes)", s.size());
}

std::string text_scalar(const Value& v) {
  switch (v.type) {
    case ValueType::UINT8:
    case ValueType::UINT16:
    case ValueType::UINT32:
    case ValueType::UINT64:
      return std::to_string(v.u64);
    case ValueType::INT8:
    case ValueType::INT16:
    case ValueType::INT32:
    case ValueType::INT64:
      return std::to_string(v.i64);
    case ValueType::FLOAT32: return strprintf("%.9g", v.f64);
    case ValueType::FLOAT64: return strprintf("%.17g", v.f64);
    case ValueType::BOOL: return v.u64 ? "true" : "false";
    case ValueType::STRING: return text_string(v.str);
    case ValueType::ARRAY: break;
  }
  return "";
}

std::string type_label(const Value& v) {
  if (v.type != ValueType::ARRAY) return gguf::value_type_name(v.type);
  std::string label = "ARRAY[";
  label += gguf::value_type_name(v.array_type);
  // Arrays of arrays: show the inner label when every element shares it.
  if (v.array_type == ValueType::ARRAY && !v.array.empty()) {
    const std::string inner = type_label(v.array[0]);
    const bool uniform = std::all_of(v.array.begin(), v.array.end(),
                                     [&](const Value& item) { return type_label(item) == inner; });
    if (uniform) label = "ARRAY[" + inner;
  }
  return label + "]";
}

// "32000 items: "<unk>", "<s>", ..." with the first few items, nested arrays in brackets.
std::string text_value(const Value& v) {
  if (v.type != ValueType::ARRAY) return text_scalar(v);
  std::string out = strprintf("%zu item%s", v.array.size(), v.array.size() == 1 ? "" : "s");
  if (v.array.empty()) return out;
  out += ": ";
  const size_t shown = std::min(v.array.size(), kTextArrayItems);
  for (size_t i = 0; i < shown; ++i) {
    if (i > 0) out += ", ";
    const Value& item = v.array[i];
    if (item.type == ValueType::ARRAY) {
      out.push_back('[');
      out.append(text_value(item));
      out.push_back(']');
    } else {
      out.append(text_scalar(item));
    }
  }
  if (shown < v.array.size()) out += ", ...";
  return out;
}

void json_value(json::Writer& w, const Value& v) {
  switch (v.type) {
    case ValueType::UINT8:
    case ValueType::UINT16:
    case ValueType::UINT32:
    case ValueType::UINT64:
      w.value(v.u64);
      return;
    case ValueType::INT8:
    case ValueType::INT16:
    case ValueType::INT32:
    case ValueType::INT64:
      w.value(v.i64);
      return;
    case ValueType::FLOAT32: w.value(static_cast<float>(v.f64)); return;
    case ValueType::FLOAT64: w.value(v.f64); return;
    case ValueType::BOOL: w.value(v.u64 != 0); return;
    case ValueType::STRING: w.value(v.str); return;
    case ValueType::ARRAY:
      w.begin_array();
      for (const Value& item : v.array) json_value(w, item);
      w.end_array();
      return;
  }
}

struct TypeTotal {
  size_t count = 0;
  uint64_t bytes = 0;
};

std::map<std::string, TypeTotal> totals_per_type(const File& f) {
  std::map<std::string, TypeTotal> totals;
  for (const TensorInfo& t : f.tensors()) {
    TypeTotal& tt = totals[type_name(t.type)];
    ++tt.count;
    tt.bytes += t.nbytes;
  }
  return totals;
}

uint64_t total_elements(const File& f) {
  uint64_t n = 0;
  for (const TensorInfo& t : f.tensors()) n += static_cast<uint64_t>(t.n_elements());
  return n;
}

// The model's hyperparameters: (label, json name, key suffix after "<arch>.").
struct Hyper {
  const char* label;
  const char* json_name;
  const char* suffix;
};
constexpr Hyper kHypers[] = {
    {"context length", "context_length", "context_length"},
    {"embedding", "embedding_length", "embedding_length"},
    {"layers", "block_count", "block_count"},
    {"heads", "head_count", "attention.head_count"},
    {"KV heads", "head_count_kv", "attention.head_count_kv"},
    {"FFN", "feed_forward_length", "feed_forward_length"},
    {"rope base", "rope_freq_base", "rope.freq_base"},
    {"rope dimensions", "rope_dimension_count", "rope.dimension_count"},
    {"rms eps", "rms_epsilon", "attention.layer_norm_rms_epsilon"},
    {"experts", "expert_count", "expert_count"},
    {"experts used", "expert_used_count", "expert_used_count"},
};

// Vocabulary size: the token list's length, else <arch>.vocab_size; -1 when neither.
int64_t vocab_size(const File& f, const std::string& arch) {
  if (const Value* tokens = f.find("tokenizer.ggml.tokens");
      tokens != nullptr && tokens->type == ValueType::ARRAY) {
    return static_cast<int64_t>(tokens->array.size());
  }
  if (const Value* v = f.find(arch + ".vocab_size"); v != nullptr && v->is_integer()) {
    return v->as_int();
  }
  return -1;
}

std::string human_bytes(uint64_t n) {
  if (n >= (uint64_t{1} << 30)) return strprintf("%.2f GiB", n / 1073741824.0);
  if (n >= (uint64_t{1} << 20)) return strprintf("%.2f MiB", n / 1048576.0);
  if (n >= (uint64_t{1} << 10)) return strprintf("%.2f KiB", n / 1024.0);
  return strprintf("%llu B", static_cast<unsigned long long>(n));
}

// The "<arch>.*" keys: the usual ones under readable labels, then any others by their
// suffix, plus the vocabulary size and the file type. Nothing when none are present.
void print_text_hyperparameters(const File& f, const std::string& arch) {
  std::vector<std::pair<std::string, std::string>> rows;
  for (const Hyper& h : kHypers) {
    if (const Value* v = f.find(arch + "." + h.suffix)) rows.emplace_back(h.label, text_value(*v));
  }
  const int64_t vocab = vocab_size(f, arch);
  if (vocab >= 0) rows.emplace_back("vocab size", std::to_string(vocab));
  if (const Value* ft = f.find("general.file_type"); ft != nullptr && ft->is_integer()) {
    const char* name = file_type_name(ft->as_int());
    rows.emplace_back("file type", std::to_string(ft->as_int()) + (name ? std::string(" ") + name : ""));
  }
  const std::string prefix = arch + ".";
  for (const auto& [k, v] : f.metadata()) {
    if (k.rfind(prefix, 0) != 0 || k == prefix + "vocab_size") continue;
    const std::string suffix = k.substr(prefix.size());
    const bool known = std::any_of(std::begin(kHypers), std::end(kHypers),
                                   [&](const Hyper& h) { return suffix == h.suffix; });
    if (!known) rows.emplace_back(suffix, text_value(v));
  }
  if (rows.empty()) return;
  size_t width = 16;
  for (const auto& row : rows) width = std::max(width, std::min<size_t>(row.first.size(), 40));
  std::printf("\nhyperparameters (%s)\n", arch.c_str());
  for (const auto& [label, value] : rows) {
    std::printf("  %-*s %s\n", static_cast<int>(width), label.c_str(), value.c_str());
  }
}

void print_text(const File& f) {
  std::printf("file          %s\n", f.path().c_str());
  std::printf("size          %zu bytes (%s)\n", f.file_size(), human_bytes(f.file_size()).c_str());
  std::printf("GGUF version  %u\n", f.version());
  std::printf("alignment     %u\n", f.alignment());
  std::printf("data offset   %llu\n", static_cast<unsigned long long>(f.data_offset()));
  std::printf("tensors       %zu (%llu parameters)\n", f.tensors().size(),
              static_cast<unsigned long long>(total_elements(f)));
  std::printf("metadata      %zu keys\n", f.metadata().size());

  auto arch = f.get_string("general.architecture");
  if (arch.ok()) print_text_hyperparameters(f, *arch);

  std::printf("\nmetadata\n");
  size_t key_width = 0;
  for (const auto& [k, v] : f.metadata()) key_width = std::max(key_width, std::min<size_t>(k.size(), 48));
  for (const auto& [k, v] : f.metadata()) {
    std::printf("  %-*s  %-16s %s\n", static_cast<int>(key_width), k.c_str(), type_label(v).c_str(),
                text_value(v).c_str());
  }

  if (f.tensors().empty()) return;
  std::printf("\ntensors (offsets relative to the data section at %llu)\n",
              static_cast<unsigned long long>(f.data_offset()));
  size_t name_width = 4;
  for (const TensorInfo& t : f.tensors()) name_width = std::max(name_width, t.name.size());
  std::printf("  %-*s  %-6s  %-24s  %12s  %12s\n", static_cast<int>(name_width), "name", "type",
              "shape", "bytes", "offset");
  for (const TensorInfo& t : f.tensors()) {
    std::printf("  %-*s  %-6s  %-24s  %12llu  %12llu\n", static_cast<int>(name_width),
                t.name.c_str(), type_name(t.type), t.shape_string().c_str(),
                static_cast<unsigned long long>(t.nbytes), static_cast<unsigned long long>(t.offset));
  }
  std::printf("\ntotals per type\n");
  uint64_t all_bytes = 0;
  for (const auto& [name, tt] : totals_per_type(f)) {
    std::printf("  %-6s  %4zu tensors  %14llu bytes (%s)\n", name.c_str(), tt.count,
                static_cast<unsigned long long>(tt.bytes), human_bytes(tt.bytes).c_str());
    all_bytes += tt.bytes;
  }
  std::printf("  %-6s  %4zu tensors  %14llu bytes (%s)\n", "all", f.tensors().size(),
              static_cast<unsigned long long>(all_bytes), human_bytes(all_bytes).c_str());
}

void print_json(const File& f) {
  json::Writer w(stdout, 1);
  w.begin_object();
  w.key("file").value(f.path());
  w.key("file_size").value(static_cast<uint64_t>(f.file_size()));
  w.key("version").value(f.version());
  w.key("alignment").value(f.alignment());
  w.key("data_offset").value(f.data_offset());
  w.key("n_parameters").value(total_elements(f));

  auto arch = f.get_string("general.architecture");
  if (arch.ok()) {
    const std::string& a = *arch;
    w.key("hyperparameters").begin_object();
    w.key("architecture").value(a);
    for (const Hyper& h : kHypers) {
      if (const Value* v = f.find(a + "." + h.suffix)) {
        w.key(h.json_name);
        json_value(w, *v);
      }
    }
    const int64_t vocab = vocab_size(f, a);
    if (vocab >= 0) w.key("vocab_size").value(vocab);
    if (const Value* ft = f.find("general.file_type"); ft != nullptr && ft->is_integer()) {
      w.key("file_type").value(ft->as_int());
      if (const char* name = file_type_name(ft->as_int())) w.key("file_type_name").value(name);
    }
    w.end_object();
  }

  // Keys are unique (the reader refuses duplicates), so an object keeps every entry; its
  // order is the file's order.
  w.key("metadata").begin_object();
  for (const auto& [k, v] : f.metadata()) {
    w.key(k).begin_object();
    w.key("type").value(gguf::value_type_name(v.type));
    if (v.type == ValueType::ARRAY) {
      w.key("element_type").value(gguf::value_type_name(v.array_type));
      w.key("count").value(static_cast<uint64_t>(v.array.size()));
    }
    w.key("value");
    json_value(w, v);
    w.end_object();
  }
  w.end_object();

  w.key("tensors").begin_array();
  for (const TensorInfo& t : f.tensors()) {
    w.begin_object();
    w.key("name").value(t.name);
    w.key("type").value(type_name(t.type));
    w.key("type_number").value(static_cast<uint32_t>(t.type));
    w.key("shape").begin_array();
    for (int d = 0; d < t.n_dims; ++d) w.value(t.ne[d]);
    w.end_array();
    w.key("n_elements").value(t.n_elements());
    w.key("bytes").value(t.nbytes);
    w.key("offset").value(t.offset);
    w.key("file_offset").value(f.data_offset() + t.offset);
    w.end_object();
  }
  w.end_array();

  w.key("totals").begin_object();
  uint64_t all_bytes = 0;
  for (const auto& [name, tt] : totals_per_type(f)) {
    w.key(name).begin_object();
    w.key("count").value(static_cast<uint64_t>(tt.count));
    w.key("bytes").value(tt.bytes);
    w.end_object();
    all_bytes += tt.bytes;
  }
  w.end_object();
  w.key("total_tensor_bytes").value(all_bytes);
  w.end_object();
  w.finish();
}

int run_inspect(int argc, char** argv) {
  ArgParser p("inspect", "FILE.gguf [--json]",
              "Show a GGUF file: header, metadata, tensors, totals per type and the model's "
              "hyperparameters. Text output summarizes long arrays and strings; --json prints "
              "everything (strings: bytes that are not valid UTF-8 appear as \\u00XX of the byte "
              "value; NaN and infinities as null).");
  bool as_json = false;
  p.json_flag("--json", "complete machine-readable output", &as_json);
  p.positionals("FILE.gguf", 1, 1);
  if (auto code = p.parse(argc, argv)) return *code;
  auto file = File::open(p.positional()[0]);
  if (!file.ok()) return p.fail(file.status().message());
  if (as_json) {
    print_json(**file);
  } else {
    print_text(**file);
  }
  return std::fflush(stdout) == 0 ? 0 : p.fail("cannot write the output");
}

const bool registered =
    register_command({"inspect", "show a GGUF file's metadata, tensors and hyperparameters",
                      run_inspect});

}  // namespace

}  // namespace plumb::cli
