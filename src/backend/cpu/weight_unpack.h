// Scalar unpacking of one weight block into the form the matmul contract uses
// (matmul_internal.h): int16 weights w[kBlock] in element order with fixed offsets applied,
// a float multiplier dw per sub-block of kSub elements, and for types with a min term the
// per-sub-block coefficient mc (y_k = dw * w_k + mc). dw is computed exactly as ggml's
// dequantizers compute it (d * scale in f32).
//
// Unsigned quants with a min (Q4_1, Q5_1, Q2_K, Q4_K, Q5_K) are re-centred: w = q - o with o the
// middle of the range (8, 16, 2) and mc = min + o * dw (o * dw is exact, one f32 rounding in the
// sum). The activation rounding error of a product is sum_k dw * w_k * e_k, so centring the
// integers around zero shrinks it from ~|dw * q| to ~|weight| (NMSE about 4x lower on Q4_K).
#pragma once

#include <cstdint>
#include <cstring>

#include "backend/cpu/matmul_internal.h"
#include "quant/blocks.h"
#include "quant/ref.h"

namespace plumb::cpu::detail {

inline uint16_t load_u16(const void* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

// The 6-bit scale and min j of a Q4_K / Q5_K super-block (ggml's get_scale_min_k4).
inline void k4_scale_min(int j, const uint8_t* q, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// The 16 six-bit scales of a Q3_K super-block, still offset by 32.
inline void q3k_scales(const uint8_t* packed, int8_t out[16]) {
  constexpr uint32_t kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f;
  uint32_t aux[4];
  std::memcpy(aux, packed, 12);
  const uint32_t tmp = aux[2];
  aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4);
  aux[3] = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4);
  aux[0] = (aux[0] & kmask2) | (((tmp >> 0) & kmask1) << 4);
  aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4);
  std::memcpy(out, aux, 16);
}

struct UnpackQ4_0 {
  using Block = block_q4_0;
  static constexpr int kBlock = 32, kSub = 32;
  static constexpr bool kHasMin = false;
  static void unpack(const uint8_t* p, int16_t* w, float* dw, float*) {
    const auto* b = reinterpret_cast<const Block*>(p);
    for (int j = 0; j < 16; ++j) {
      w[j] = static_cast<int16_t>((b->qs[j] & 0xF) - 8);
      w[j + 16] = static_cast<int16_t>((b->qs[j] >> 4) - 8);
    }
    dw[0] = fp16_to_fp32(load_u16(&b->d));
  }
};

struct UnpackQ4_1 {
  using Block = block_q4_1;
  static constexpr int kBlock = 32, kSub = 32;
  static constexpr bool kHasMin = true;
  static void unpack(const uint8_t* p, int16_t* w, float* dw, float* mc) {
    const auto* b = reinterpret_cast<const Block*>(p);
    for (int j = 0; j < 16; ++j) {
      w[j] = static_cast<int16_t>((b->qs[j] & 0xF) - 8);
      w[j + 16] = static_cast<int16_t>((b->qs[j] >> 4) - 8);
    }
    dw[0] = fp16_to_fp32(load_u16(&b->d));
    mc[0] = fp16_to_fp32(load_u16(&b->m)) + 8.0f * dw[0];
  }
};

struct UnpackQ5_0 {
  using Block = block_q5_0;
  static constexpr int kBlock = 32, kSub = 32;
  static constexpr bool kHasMin = false;
  static void unpack(const uint8_t* p, int16_t* w, float* dw, float*) {
    const auto* b = reinterpret_cast<const Block*>(p);
    uint32_t qh;
    std::memcpy(&qh, b->qh, 4);
    for (int j = 0; j < 16; ++j) {
      w[j] = static_cast<int16_t>(((b->qs[j] & 0xF) | (((qh >> j) & 1) << 4)) - 16);
      w[j + 16] = static_cast<int16_t>(((b->qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4)) - 16);
    }
    dw[0] = fp16_to_fp32(load_u16(&b->d));
  }
};

struct UnpackQ5_1 {
  using Block = block_q5_1;
  static constexpr int kBlock = 32, kSub = 32;
  static constexpr bool kHasMin = true;
  static void unpack(const uint8_t* p, int16_t* w, float* dw, float* mc) {
    const auto* b = reinterpret_cast<const Block*>(p);
    uint32_t qh;
    std::memcpy(&qh, b->qh, 4);
    for (int j = 0; j < 16; ++j) {
      w[j] = static_cast<int16_t>(((b->qs[j] & 0xF) | (((qh >> j) & 1) << 4)) - 16);
      w[j + 16] = static_cast<int16_t>(((b->qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4)) - 16);
    }
    dw[0] = fp16_to_fp32(load_u16(&b->d));
    mc[0] = fp16_to_fp32(load_u16(&b->m)) + 16.0f * dw[0];
  }
};

struct UnpackQ8_0 {
  using Block = block_q8_0;
  static constexpr int kBlock = 32, kSub = 32;
  static constexpr bool kHasMin = false;
  static void unpack(const uint8_t* p, int16_t* w, float* dw, float*) {
    const auto* b = reinterpret_cast<const Block*>(p);
    for (int j = 0; j < 32; ++j) w[j] = b->qs[j];
    dw[0] = fp16_to_fp32(load_u16(&b->d));
  }
};

struct UnpackIQ4_NL {
  using Block = block_iq4_nl;
  static constexpr int kBlock = 32, kSub = 32;
  static constexpr bool kHasMin = false;
  static void unpack(const uint8_t* p, int16_t* w, float* dw, float*) {
    const auto* b = reinterpret_cast<const Block*>(p);
    for (int j = 0; j < 16; ++j) {
      w[j] = kIQ4NLValues[b->qs[j] & 0xF];
      w[j + 16] = kIQ4NLValues[b->qs[j] >> 4];
    }
    dw[0] = fp16_to_fp32(load_u16(&b->d));
  }
};

struct UnpackQ2_K {
  using Block = block_q2_K;
  static constexpr int kBlock = 256, kSub = 16;
  static constexpr bool kHasMin = true;
  static void unpack(const uint8_t* p, int16_t* w, float* dw, float* mc) {
    const auto* b = reinterpret_cast<const Block*>(p);
    const float d = fp16_to_fp32(load_u16(&b->d));
    const float dmin = fp16_to_fp32(load_u16(&b->dmin));
    for (int n = 0; n < 2; ++n) {
      for (int j = 0; j < 4; ++j) {
        for (int h = 0; h < 2; ++h) {
          const int s = 8 * n + 2 * j + h;
          const uint8_t sc = b->scales[s];
          dw[s] = d * static_cast<float>(sc & 0xF);
          mc[s] = -(dmin * static_cast<float>(sc >> 4)) + 2.0f * dw[s];
          for (int l = 0; l < 16; ++l) {
            w[16 * s + l] = static_cast<int16_t>(((b->qs[32 * n + 16 * h + l] >> (2 * j)) & 3) - 2);
          }
        }
      }
    }
  }
};

struct UnpackQ3_K {
  using Block = block_q3_K;
  static constexpr int kBlock = 256, kSub = 16;
  static constexpr bool kHasMin = false;
  static void unpack(const uint8_t* p, int16_t* w, float* dw, float*) {
    const auto* b = reinterpret_cast<const Block*>(p);
    const float d = fp16_to_fp32(load_u16(&b->d));
    int8_t sc[16];
    q3k_scales(b->scales, sc);
    for (int n = 0; n < 2; ++n) {
      for (int j = 0; j < 4; ++j) {
        const uint8_t hbit = static_cast<uint8_t>(1u << (4 * n + j));
        for (int h = 0; h < 2; ++h) {
          const int s = 8 * n + 2 * j + h;
          dw[s] = d * static_cast<float>(sc[s] - 32);
          for (int l = 0; l < 16; ++l) {
            const int q = (b->qs[32 * n + 16 * h + l] >> (2 * j)) & 3;
            w[16 * s + l] = static_cast<int16_t>(q - ((b->hmask[16 * h + l] & hbit) ? 0 : 4));
          }
        }
      }
    }
  }
};

struct UnpackQ4_K {
  using Block = block_q4_K;
  static constexpr int kBlock = 256, kSub = 32;
  static constexpr bool kHasMin = true;
  static void unpack(const uint8_t* p, int16_t* w, float* dw, float* mc) {
    const auto* b = reinterpret_cast<const Block*>(p);
    const float d = fp16_to_fp32(load_u16(&b->d));
    const float dmin = fp16_to_fp32(load_u16(&b->dmin));
    for (int i = 0; i < 4; ++i) {
      for (int h = 0; h < 2; ++h) {
        uint8_t sc, m;
        k4_scale_min(2 * i + h, b->scales, &sc, &m);
        dw[2 * i + h] = d * static_cast<float>(sc);
        mc[2 * i + h] = -(dmin * static_cast<float>(m)) + 8.0f * dw[2 * i + h];
      }
      for (int l = 0; l < 32; ++l) {
        w[64 * i + l] = static_cast<int16_t>((b->qs[32 * i + l] & 0xF) - 8);
        w[64 * i + 32 + l] = static_cast<int16_t>((b->qs[32 * i + l] >> 4) - 8);
      }
    }
  }
};

struct UnpackQ5_K {
  using Block = block_q5_K;
  static constexpr int kBlock = 256, kSub = 32;
  static constexpr bool kHasMin = true;
  static void unpack(const uint8_t* p, int16_t* w, float* dw, float* mc) {
    const auto* b = reinterpret_cast<const Block*>(p);
    const float d = fp16_to_fp32(load_u16(&b->d));
    const float dmin = fp16_to_fp32(load_u16(&b->dmin));
    for (int i = 0; i < 4; ++i) {
      for (int h = 0; h < 2; ++h) {
        uint8_t sc, m;
        k4_scale_min(2 * i + h, b->scales, &sc, &m);
        dw[2 * i + h] = d * static_cast<float>(sc);
        mc[2 * i + h] = -(dmin * static_cast<float>(m)) + 16.0f * dw[2 * i + h];
      }
      for (int l = 0; l < 32; ++l) {
        w[64 * i + l] = static_cast<int16_t>((b->qs[32 * i + l] & 0xF) + (((b->qh[l] >> (2 * i)) & 1) << 4) - 16);
        w[64 * i + 32 + l] =
            static_cast<int16_t>((b->qs[32 * i + l] >> 4) + (((b->qh[l] >> (2 * i + 1)) & 1) << 4) - 16);
      }
    }
  }
};

struct UnpackQ6_K {
  using Block = block_q6_K;
  static constexpr int kBlock = 256, kSub = 16;
  static constexpr bool kHasMin = false;
  static void unpack(const uint8_t* p, int16_t* w, float* dw, float*) {
    const auto* b = reinterpret_cast<const Block*>(p);
    const float d = fp16_to_fp32(load_u16(&b->d));
    for (int s = 0; s < 16; ++s) dw[s] = d * static_cast<float>(b->scales[s]);
    for (int n = 0; n < 2; ++n) {
      const uint8_t* ql = b->ql + 64 * n;
      const uint8_t* qh = b->qh + 32 * n;
      int16_t* o = w + 128 * n;
      for (int l = 0; l < 32; ++l) {
        o[l] = static_cast<int16_t>(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
        o[l + 32] = static_cast<int16_t>(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
        o[l + 64] = static_cast<int16_t>(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
        o[l + 96] = static_cast<int16_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
      }
    }
  }
};

struct UnpackQ8_K {
  using Block = block_q8_K;
  static constexpr int kBlock = 256, kSub = 32;
  static constexpr bool kHasMin = false;
  static void unpack(const uint8_t* p, int16_t* w, float* dw, float*) {
    const auto* b = reinterpret_cast<const Block*>(p);
    float d;
    std::memcpy(&d, &b->d, 4);
    for (int j = 0; j < 256; ++j) w[j] = b->qs[j];
    for (int s = 0; s < 8; ++s) dw[s] = d;
  }
};

struct UnpackIQ4_XS {
  using Block = block_iq4_xs;
  static constexpr int kBlock = 256, kSub = 32;
  static constexpr bool kHasMin = false;
  static void unpack(const uint8_t* p, int16_t* w, float* dw, float*) {
    const auto* b = reinterpret_cast<const Block*>(p);
    const float d = fp16_to_fp32(load_u16(&b->d));
    const uint16_t scales_h = load_u16(&b->scales_h);
    for (int ib = 0; ib < 8; ++ib) {
      const int ls = ((b->scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF) | (((scales_h >> (2 * ib)) & 3) << 4);
      dw[ib] = d * static_cast<float>(ls - 32);
      for (int j = 0; j < 16; ++j) {
        w[32 * ib + j] = kIQ4NLValues[b->qs[16 * ib + j] & 0xF];
        w[32 * ib + 16 + j] = kIQ4NLValues[b->qs[16 * ib + j] >> 4];
      }
    }
  }
};

}  // namespace plumb::cpu::detail
