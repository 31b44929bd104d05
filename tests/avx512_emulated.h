// The entry points of the emulated AVX-512 kernels (tests/matmul_avx512_emulated.cpp): the same
// functions as matmul_internal.h's avx512_*, built over avx512_emulation.h. Callable on CPUs with
// AVX2 (that file is compiled with the AVX2 flags).
#pragma once

#include "backend/cpu/matmul_internal.h"

namespace plumb::cpu::detail::avx512_emulated {

RowsKernel avx512_kernel(TensorType type);
PairRowDot avx512_fused_row(TensorType type);
int64_t avx512_pair_order_len(int64_t n_in);
void avx512_pair_order(const int16_t* q, int64_t n_in, int16_t* qz);

}  // namespace plumb::cpu::detail::avx512_emulated
