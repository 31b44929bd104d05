// The repacking, the activation split and the row ranges of rows16.h, in plain C++.
#include "backend/cpu/rows16.h"

#include <algorithm>
#include <cstring>

#include "backend/cpu/weight_unpack.h"
#include "quant/blocks.h"

namespace plumb::cpu::detail {

bool has_rows16(TensorType type) { return type == TensorType::Q4_K || type == TensorType::Q6_K; }

int64_t rows16_groups(int64_t n_rows) { return (n_rows + kRows16 - 1) / kRows16; }

size_t rows16_bytes(TensorType type, int64_t n_rows, int64_t n_in) {
  return static_cast<size_t>(rows16_groups(n_rows) * (n_in / 256)) *
         (type == TensorType::Q4_K ? kQ4KGroupBlock : kQ6KGroupBlock);
}

namespace {

void q4k_group(const uint8_t* src, size_t row_bytes, int64_t rows, int64_t i, uint8_t* out) {
  for (int64_t r = 0; r < rows; ++r) {
    const auto* b = reinterpret_cast<const block_q4_K*>(src + static_cast<size_t>(r) * row_bytes) + i;
    std::memcpy(out + 2 * r, &b->d, 2);
    std::memcpy(out + 32 + 2 * r, &b->dmin, 2);
    for (int s = 0; s < 8; ++s) k4_scale_min(s, b->scales, out + 64 + 16 * s + r, out + 192 + 16 * s + r);
    for (int p = 0; p < 4; ++p) {
      for (int step = 0; step < 8; ++step) std::memcpy(out + 320 + (p * 8 + step) * 64 + 4 * r, b->qs + 32 * p + 4 * step, 4);
    }
  }
}

void q6k_group(const uint8_t* src, size_t row_bytes, int64_t rows, int64_t i, uint8_t* out) {
  std::memset(out + 32 + 256, 0, kQ6KQs - 32 - 256);
  for (int64_t r = 0; r < rows; ++r) {
    const auto* b = reinterpret_cast<const block_q6_K*>(src + static_cast<size_t>(r) * row_bytes) + i;
    std::memcpy(out + 2 * r, &b->d, 2);
    for (int s = 0; s < 16; ++s) std::memcpy(out + 32 + 16 * s + r, &b->scales[s], 1);
    for (int n = 0; n < 2; ++n) {
      for (int step = 0; step < 8; ++step) {
        uint8_t* v = out + kQ6KQs + (n * 8 + step) * 192 + 4 * r;
        std::memcpy(v, b->ql + 64 * n + 4 * step, 4);
        std::memcpy(v + 64, b->ql + 64 * n + 32 + 4 * step, 4);
        std::memcpy(v + 128, b->qh + 32 * n + 4 * step, 4);
      }
    }
  }
}

}  // namespace

void rows16_repack(TensorType type, const uint8_t* src, size_t row_bytes, int64_t n_rows, int64_t n_in, uint8_t* dst,
                   int64_t g0, int64_t g1) {
  const int64_t n_sb = n_in / 256;
  const size_t block = type == TensorType::Q4_K ? kQ4KGroupBlock : kQ6KGroupBlock;
  for (int64_t g = g0; g < g1; ++g) {
    uint8_t* group = dst + static_cast<size_t>(g * n_sb) * block;
    const uint8_t* rows = src + static_cast<size_t>(g * kRows16) * row_bytes;
    const int64_t n = std::min(kRows16, n_rows - g * kRows16);
    if (n < kRows16) std::memset(group, 0, static_cast<size_t>(n_sb) * block);  // the missing rows are zeros
    for (int64_t i = 0; i < n_sb; ++i) {
      uint8_t* out = group + static_cast<size_t>(i) * block;
      if (type == TensorType::Q4_K) {
        q4k_group(rows, row_bytes, n, i, out);
      } else {
        q6k_group(rows, row_bytes, n, i, out);
      }
    }
  }
}

size_t rows16_split_bytes(int64_t n_in) {
  const size_t bytes = static_cast<size_t>(2 * n_in) + static_cast<size_t>(n_in / 32 + n_in / 16) * sizeof(int32_t);
  return (bytes + 63) / 64 * 64;
}

Rows16Act rows16_act(const uint8_t* split, int64_t n_in) {
  const auto* corr4 = reinterpret_cast<const int32_t*>(split + 2 * n_in);
  return Rows16Act{reinterpret_cast<const int8_t*>(split), split + n_in, corr4, corr4 + n_in / 32};
}

void rows16_prepare(const ActRow& a, int64_t n_in, uint8_t* split) {
  auto* hi = reinterpret_cast<int8_t*>(split);
  uint8_t* lo = split + n_in;
  auto* corr4 = reinterpret_cast<int32_t*>(split + 2 * n_in);
  int32_t* corr6 = corr4 + n_in / 32;
  for (int64_t k = 0; k < n_in; ++k) {
    hi[k] = static_cast<int8_t>(a.q[k] >> 8);
    lo[k] = static_cast<uint8_t>(a.q[k] & 0xFF);
  }
  for (int64_t s = 0; s < n_in / 32; ++s) {
    int32_t sum[2] = {0, 0};
    for (int k = 0; k < 32; ++k) sum[k / 16] += a.q[32 * s + k];
    corr4[s] = -8 * (sum[0] + sum[1]);
    corr6[2 * s] = -32 * sum[0];
    corr6[2 * s + 1] = -32 * sum[1];
  }
}

void rows16_rows(Rows16Kernel kernel, const WeightMatrix& w, const ActivationBuffer& x, float* y, int64_t ldy,
                 int64_t r0, int64_t r1) {
  if (r0 >= r1) return;
  const ActLayout lay = ActLayout::for_n_in(w.n_in);
  for (int64_t t = 0; t < x.n_tokens(); ++t) {
    const ActRow a = act_row(x, lay, t);
    const Rows16Act split = rows16_act(x.split(t), w.n_in);
    float* yt = y + t * ldy;
    // A group cut by r0 or r1 goes through `part`: rows of other chunks must not be written.
    const auto cut_group = [&](int64_t g) {
      float part[kRows16];
      kernel(w.rows16, w.n_out, w.n_in, a, split, part, g, g + 1);
      const int64_t lo = std::max(r0, g * kRows16), hi = std::min(r1, (g + 1) * kRows16);
      std::copy(part + (lo - g * kRows16), part + (hi - g * kRows16), yt + lo);
    };
    int64_t g0 = r0 / kRows16, g1 = rows16_groups(r1);
    if (r0 % kRows16 != 0) cut_group(g0++);
    if (g0 < g1 && r1 % kRows16 != 0 && r1 != w.n_out) cut_group(--g1);
    if (g0 < g1) kernel(w.rows16, w.n_out, w.n_in, a, split, yt + g0 * kRows16, g0, g1);
  }
}

}  // namespace plumb::cpu::detail
