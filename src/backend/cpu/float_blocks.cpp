// The float weights' copy cut into blocks of values (float_blocks.h).
#include "backend/cpu/float_blocks.h"

#include <cstring>

namespace plumb::cpu::detail {

namespace {

size_t value_bytes(TensorType type) { return type == TensorType::F32 ? 4 : 2; }

// Values of block b: kFloatBlock, or what is left of the row.
int64_t block_values(int64_t n_in, int64_t b) {
  const int64_t left = n_in - b * kFloatBlock;
  return left < kFloatBlock ? left : kFloatBlock;
}

}  // namespace

int64_t float_block_start(int64_t n_out, int64_t n_in, int64_t b, int64_t r) {
  return b * kFloatBlock * n_out + r * block_values(n_in, b);
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
    const size_t bytes = static_cast<size_t>(block_values(n_in, b)) * vb;
    for (int64_t r = r0; r < r1; ++r) {
      std::memcpy(dst + static_cast<size_t>(float_block_start(n_out, n_in, b, r)) * vb,
                  src + static_cast<size_t>(r) * row_bytes + static_cast<size_t>(b * kFloatBlock) * vb, bytes);
    }
  }
}

}  // namespace plumb::cpu::detail
