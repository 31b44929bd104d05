// The float weights' copy cut into blocks of values (float_blocks.h).
#include "backend/cpu/float_blocks.h"

#include <cstring>

namespace plumb::cpu::detail {

namespace {

size_t value_bytes(TensorType type) { return type == TensorType::F32 ? 4 : 2; }

}  // namespace

int64_t float_block_start(int64_t n_out, int64_t n_in, int64_t b, int64_t r) {
  const int64_t k0 = b * kFloatBlock, n_b = n_in - k0 < kFloatBlock ? n_in - k0 : kFloatBlock;
  return k0 * n_out + r * n_b;
}

bool has_float_blocks(TensorType type, int64_t n_in) {
  const bool is_float = type == TensorType::F32 || type == TensorType::F16 || type == TensorType::BF16;
  return is_float && n_in > kFloatBlockMinIn;
}

size_t float_blocks_bytes(TensorType type, int64_t n_out, int64_t n_in) {
  if (!has_float_blocks(type, n_in)) return 0;
  return static_cast<size_t>(n_out) * static_cast<size_t>(n_in) * value_bytes(type);
}

void float_blocks_repack(TensorType type, const uint8_t* src, size_t row_bytes, int64_t n_out, int64_t n_in,
                         uint8_t* dst, int64_t r0, int64_t r1) {
  const size_t vb = value_bytes(type);
  for (int64_t b = 0; b * kFloatBlock < n_in; ++b) {
    const int64_t k0 = b * kFloatBlock, n_b = n_in - k0 < kFloatBlock ? n_in - k0 : kFloatBlock;
    for (int64_t r = r0; r < r1; ++r) {
      std::memcpy(dst + static_cast<size_t>(float_block_start(n_out, n_in, b, r)) * vb,
                  src + static_cast<size_t>(r) * row_bytes + static_cast<size_t>(k0) * vb, static_cast<size_t>(n_b) * vb);
    }
  }
}

}  // namespace plumb::cpu::detail
