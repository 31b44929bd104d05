// Dispatch of the scalar reference (de)quantizers by tensor type.
#include "quant/ref.h"

#include <cstdlib>

#include "quant/quant_fast.h"
#include "quant/ref_blocks.h"

namespace plumb {

void dequantize_row(TensorType type, const void* x, float* y, int64_t n) {
  switch (type) {
    case TensorType::F32: {
      const float* src = static_cast<const float*>(x);
      for (int64_t i = 0; i < n; ++i) y[i] = src[i];
      return;
    }
    case TensorType::F16: return dequantize_row_f16(static_cast<const fp16_t*>(x), y, n);
    case TensorType::BF16: return dequantize_row_bf16(static_cast<const bf16_t*>(x), y, n);
    case TensorType::F64: return dequantize_row_f64(static_cast<const double*>(x), y, n);
    case TensorType::Q4_0: return dequantize_row_q4_0(static_cast<const block_q4_0*>(x), y, n);
    case TensorType::Q4_1: return dequantize_row_q4_1(static_cast<const block_q4_1*>(x), y, n);
    case TensorType::Q5_0: return dequantize_row_q5_0(static_cast<const block_q5_0*>(x), y, n);
    case TensorType::Q5_1: return dequantize_row_q5_1(static_cast<const block_q5_1*>(x), y, n);
    case TensorType::Q8_0: return dequantize_row_q8_0(static_cast<const block_q8_0*>(x), y, n);
    case TensorType::Q8_1: return dequantize_row_q8_1(static_cast<const block_q8_1*>(x), y, n);
    case TensorType::Q2_K: return dequantize_row_q2_K(static_cast<const block_q2_K*>(x), y, n);
    case TensorType::Q3_K: return dequantize_row_q3_K(static_cast<const block_q3_K*>(x), y, n);
    case TensorType::Q4_K: return dequantize_row_q4_K(static_cast<const block_q4_K*>(x), y, n);
    case TensorType::Q5_K: return dequantize_row_q5_K(static_cast<const block_q5_K*>(x), y, n);
    case TensorType::Q6_K: return dequantize_row_q6_K(static_cast<const block_q6_K*>(x), y, n);
    case TensorType::Q8_K: return dequantize_row_q8_K(static_cast<const block_q8_K*>(x), y, n);
    case TensorType::IQ4_NL:
      return dequantize_row_iq4_nl(static_cast<const block_iq4_nl*>(x), y, n);
    case TensorType::IQ4_XS:
      return dequantize_row_iq4_xs(static_cast<const block_iq4_xs*>(x), y, n);
    case TensorType::I8:
    case TensorType::I16:
    case TensorType::I32:
    case TensorType::I64:
      break;
  }
  std::abort();  // contract violation: integer tensors are not dequantized
}

bool can_quantize(TensorType type) {
  switch (type) {
    case TensorType::F32:
    case TensorType::F16:
    case TensorType::BF16:
    case TensorType::Q4_0:
    case TensorType::Q4_1:
    case TensorType::Q5_0:
    case TensorType::Q5_1:
    case TensorType::Q8_0:
    case TensorType::Q8_1:
    case TensorType::Q2_K:
    case TensorType::Q3_K:
    case TensorType::Q4_K:
    case TensorType::Q5_K:
    case TensorType::Q6_K:
    case TensorType::Q8_K:
    case TensorType::IQ4_NL:
    case TensorType::IQ4_XS:
      return true;
    case TensorType::F64:
    case TensorType::I8:
    case TensorType::I16:
    case TensorType::I32:
    case TensorType::I64:
      return false;
  }
  return false;
}

void quantize_row_scalar(TensorType type, const float* x, void* y, int64_t n) {
  switch (type) {
    case TensorType::F32: {
      float* dst = static_cast<float*>(y);
      for (int64_t i = 0; i < n; ++i) dst[i] = x[i];
      return;
    }
    case TensorType::F16: return quantize_row_f16_ref(x, static_cast<fp16_t*>(y), n);
    case TensorType::BF16: return quantize_row_bf16_ref(x, static_cast<bf16_t*>(y), n);
    case TensorType::Q4_0: return quantize_row_q4_0_ref(x, static_cast<block_q4_0*>(y), n);
    case TensorType::Q4_1: return quantize_row_q4_1_ref(x, static_cast<block_q4_1*>(y), n);
    case TensorType::Q5_0: return quantize_row_q5_0_ref(x, static_cast<block_q5_0*>(y), n);
    case TensorType::Q5_1: return quantize_row_q5_1_ref(x, static_cast<block_q5_1*>(y), n);
    case TensorType::Q8_0: return quantize_row_q8_0_ref(x, static_cast<block_q8_0*>(y), n);
    case TensorType::Q8_1: return quantize_row_q8_1_ref(x, static_cast<block_q8_1*>(y), n);
    case TensorType::Q2_K: return quantize_row_q2_K_ref(x, static_cast<block_q2_K*>(y), n);
    case TensorType::Q3_K: return quantize_row_q3_K_ref(x, static_cast<block_q3_K*>(y), n);
    case TensorType::Q4_K: return quantize_row_q4_K_ref(x, static_cast<block_q4_K*>(y), n);
    case TensorType::Q5_K: return quantize_row_q5_K_ref(x, static_cast<block_q5_K*>(y), n);
    case TensorType::Q6_K: return quantize_row_q6_K_ref(x, static_cast<block_q6_K*>(y), n);
    case TensorType::Q8_K: return quantize_row_q8_K_ref(x, static_cast<block_q8_K*>(y), n);
    case TensorType::IQ4_NL: return quantize_row_iq4_nl_ref(x, static_cast<block_iq4_nl*>(y), n);
    case TensorType::IQ4_XS: return quantize_row_iq4_xs_ref(x, static_cast<block_iq4_xs*>(y), n);
    case TensorType::F64:
    case TensorType::I8:
    case TensorType::I16:
    case TensorType::I32:
    case TensorType::I64:
      break;
  }
  std::abort();  // contract violation: callers check can_quantize first
}

bool quant_fast::cpu_has_avx2() {
  static const bool has = __builtin_cpu_supports("avx2") != 0;
  return has;
}

void quantize_row(TensorType type, const float* x, void* y, int64_t n) {
  if (quant_fast::cpu_has_avx2()) {
    switch (type) {
      case TensorType::Q2_K:
        return quant_fast::quantize_row_q2_K_avx2(x, static_cast<block_q2_K*>(y), n);
      case TensorType::Q4_K:
        return quant_fast::quantize_row_q4_K_avx2(x, static_cast<block_q4_K*>(y), n);
      case TensorType::Q5_K:
        return quant_fast::quantize_row_q5_K_avx2(x, static_cast<block_q5_K*>(y), n);
      case TensorType::Q6_K:
        return quant_fast::quantize_row_q6_K_avx2(x, static_cast<block_q6_K*>(y), n);
      default:
        break;
    }
  }
  quantize_row_scalar(type, x, y, n);
}

}  // namespace plumb
