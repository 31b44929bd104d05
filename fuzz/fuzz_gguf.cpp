// libFuzzer target for the GGUF reader: parse arbitrary bytes, then walk every metadata value
// and touch every tensor byte, so ASan catches any value or range the reader let through
// without checking. Whatever parses is also written back with the Writer and parsed again:
// the round trip must succeed and give the same keys, types and tensors.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "gguf/gguf.h"

namespace {

bool same_value(const plumb::gguf::Value& a, const plumb::gguf::Value& b) {
  if (a.type != b.type || a.u64 != b.u64 || a.i64 != b.i64 || a.str != b.str) return false;
  // Floats compare by bits: NaN payloads and -0 must survive too.
  if (std::memcmp(&a.f64, &b.f64, sizeof a.f64) != 0) return false;
  if (a.type != plumb::gguf::ValueType::ARRAY) return true;
  if (a.array_type != b.array_type || a.array.size() != b.array.size()) return false;
  for (size_t i = 0; i < a.array.size(); ++i) {
    if (!same_value(a.array[i], b.array[i])) return false;
  }
  return true;
}

// Writes `f` with the Writer and checks the result parses to the same content. Files the
// writer refuses on purpose (tensor names longer than llama.cpp accepts) are skipped.
void check_round_trip(const plumb::gguf::File& f) {
  // The writer pads the header and every tensor to the alignment, so a valid file with a huge
  // one (any power of two is allowed) serializes to gigabytes: not a round trip to do in memory.
  if (f.alignment() > (1u << 20)) return;
  plumb::gguf::Writer w;
  w.copy_metadata_from(f);
  for (const plumb::gguf::TensorInfo& t : f.tensors()) {
    const std::vector<int64_t> ne(t.ne, t.ne + t.n_dims);
    if (!w.add_tensor(t.name, t.type, ne, t.data, t.nbytes).ok()) return;
  }
  auto bytes = w.serialize();
  if (!bytes.ok()) __builtin_trap();
  auto again = plumb::gguf::File::parse(bytes->data(), bytes->size(), "round-trip.gguf");
  if (!again.ok()) __builtin_trap();
  const plumb::gguf::File& g = **again;
  if (g.tensors().size() != f.tensors().size() || g.alignment() != f.alignment()) __builtin_trap();
  // copy_metadata_from drops "GGUF." keys (gguf-py's pseudo-keys) by design.
  size_t j = 0;
  for (const auto& [key, value] : f.metadata()) {
    if (key.rfind("GGUF.", 0) == 0) continue;
    if (j >= g.metadata().size() || g.metadata()[j].first != key) __builtin_trap();
    // general.alignment is always stored as UINT32; the reader validated its value.
    if (key != "general.alignment" && !same_value(value, g.metadata()[j].second)) __builtin_trap();
    ++j;
  }
  if (j != g.metadata().size()) __builtin_trap();
  for (size_t i = 0; i < f.tensors().size(); ++i) {
    const plumb::gguf::TensorInfo& a = f.tensors()[i];
    const plumb::gguf::TensorInfo& b = g.tensors()[i];
    if (a.name != b.name || a.type != b.type || a.n_dims != b.n_dims || a.nbytes != b.nbytes ||
        std::memcmp(a.ne, b.ne, sizeof a.ne) != 0 ||
        (a.nbytes > 0 && std::memcmp(a.data, b.data, a.nbytes) != 0)) {
      __builtin_trap();
    }
  }
}

uint64_t walk(const plumb::gguf::Value& v) {
  uint64_t h = static_cast<uint32_t>(v.type) + v.u64 + static_cast<uint64_t>(v.i64);
  for (char c : v.str) h = h * 31 + static_cast<unsigned char>(c);
  for (const plumb::gguf::Value& item : v.array) h += walk(item);
  return h;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // An exact-size heap copy: any read past `size` is a heap overflow ASan reports.
  std::unique_ptr<uint8_t[]> copy(new uint8_t[size > 0 ? size : 1]);
  if (size > 0) std::memcpy(copy.get(), data, size);
  auto file = plumb::gguf::File::parse(size > 0 ? copy.get() : nullptr, size, "fuzz.gguf");
  if (!file.ok()) return 0;
  const plumb::gguf::File& f = **file;
  volatile uint64_t sink = 0;
  for (const auto& [key, value] : f.metadata()) {
    sink = sink + walk(value) + key.size();
    if (f.find(key) != &value) __builtin_trap();
  }
  for (const plumb::gguf::TensorInfo& t : f.tensors()) {
    if (t.data < f.bytes() || t.nbytes > f.file_size() ||
        t.data + t.nbytes > f.bytes() + f.file_size()) {
      __builtin_trap();
    }
    uint64_t h = 0;
    for (uint64_t i = 0; i < t.nbytes; ++i) h += t.data[i];
    sink = sink + h + static_cast<uint64_t>(t.n_elements()) + t.shape_string().size();
    if (f.find_tensor(t.name) != &t) __builtin_trap();
  }
  // Typed getters must never crash, whatever the stored types.
  for (const char* key : {"general.architecture", "general.alignment", "tokenizer.ggml.tokens",
                          "tokenizer.ggml.scores", "tokenizer.ggml.token_type"}) {
    (void)f.get_string(key);
    (void)f.get_u32(key);
    (void)f.get_int(key);
    (void)f.get_f32(key);
    (void)f.get_bool(key);
    (void)f.get_string_array(key);
    (void)f.get_f32_array(key);
    (void)f.get_i32_array(key);
  }
  check_round_trip(f);
  return 0;
}
