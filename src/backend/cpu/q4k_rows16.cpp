// The repacking and activation split of q4k_rows16.h, in plain C++.
#include "backend/cpu/q4k_rows16.h"

#include <cstring>

#include "backend/cpu/weight_unpack.h"
#include "quant/blocks.h"

namespace plumb::cpu::detail {

size_t q4k_rows16_bytes(int64_t n_rows, int64_t n_in) {
  const int64_t groups = (n_rows + kRows16 - 1) / kRows16;
  return static_cast<size_t>(groups * (n_in / 256)) * kGroupBlock;
}

void q4k_rows16_repack(const uint8_t* src, size_t row_bytes, int64_t n_rows, int64_t n_in, uint8_t* dst) {
  const int64_t groups = (n_rows + kRows16 - 1) / kRows16, n_sb = n_in / 256;
  std::memset(dst, 0, q4k_rows16_bytes(n_rows, n_in));
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t i = 0; i < n_sb; ++i) {
      uint8_t* out = dst + static_cast<size_t>(g * n_sb + i) * kGroupBlock;
      for (int64_t r = 0; r < kRows16 && g * kRows16 + r < n_rows; ++r) {
        const auto* b = reinterpret_cast<const block_q4_K*>(src + static_cast<size_t>(g * kRows16 + r) * row_bytes) + i;
        std::memcpy(out + 2 * r, &b->d, 2);
        std::memcpy(out + 32 + 2 * r, &b->dmin, 2);
        for (int s = 0; s < 8; ++s) k4_scale_min(s, b->scales, out + 64 + 16 * s + r, out + 192 + 16 * s + r);
        for (int p = 0; p < 4; ++p) {
          for (int step = 0; step < 8; ++step) std::memcpy(out + 320 + (p * 8 + step) * 64 + 4 * r, b->qs + 32 * p + 4 * step, 4);
        }
      }
    }
  }
}

void q4k_rows16_prepare(const ActRow& a, int64_t n_in, const Rows16Act& out) {
  for (int64_t k = 0; k < n_in; ++k) {
    out.hi[k] = static_cast<int8_t>(a.q[k] >> 8);
    out.lo[k] = static_cast<uint8_t>(a.q[k] & 0xFF);
  }
  for (int64_t s = 0; s < n_in / 32; ++s) {
    int32_t sum = 0;
    for (int k = 0; k < 32; ++k) sum += a.q[32 * s + k];
    out.corr[s] = -8 * sum;
  }
}

}  // namespace plumb::cpu::detail
