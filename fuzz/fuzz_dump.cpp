// libFuzzer target: other engines' dumps (.npy, .npz, safetensors) must be rejected with a
// Status, never crash or over-allocate. The first byte picks the reader.
#include <cstddef>
#include <cstdint>
#include <string>

#include "trace/dump_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0: (void)plumb::trace::parse_npy(bytes, "fuzz.npy"); break;
    case 1: (void)plumb::trace::parse_npz(bytes, "fuzz.npz"); break;
    default: (void)plumb::trace::parse_safetensors(bytes, "fuzz.safetensors"); break;
  }
  return 0;
}
