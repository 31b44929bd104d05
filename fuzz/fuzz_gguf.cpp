// libFuzzer target for the GGUF reader: parse arbitrary bytes, then walk every metadata value
// and touch every tensor byte, so ASan catches any value or range the reader let through
// without checking.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>

#include "gguf/gguf.h"

namespace {

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
  return 0;
}
