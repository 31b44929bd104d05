// SHA-256 (FIPS 180-4), for checking tensor data against manifests of known files.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace plumb {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  std::array<uint8_t, 32> finish();  // the object must not be updated afterwards

 private:
  void compress(const uint8_t* block);

  uint32_t state_[8];
  uint8_t buffer_[64];
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
};

// Lower-case hex digest of `size` bytes.
std::string sha256_hex(const void* data, size_t size);
std::string to_hex(const uint8_t* bytes, size_t size);

}  // namespace plumb
