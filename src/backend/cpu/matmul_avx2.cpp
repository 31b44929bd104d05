// AVX2/FMA/F16C kernels (compiled with -mavx2 -mfma -mf16c; chosen at run time).
#include "backend/cpu/matmul_internal.h"

namespace plumb::cpu::detail {

RowsKernel avx2_kernel(TensorType) { return nullptr; }

}  // namespace plumb::cpu::detail
