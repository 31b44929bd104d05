// The entry point of the emulated AVX-512 kernels (tests/matmul_avx512_emulated.cpp): the same
// function as matmul_internal.h's avx512_kernel, built over avx512_emulation.h. Callable on CPUs
// with AVX2 (that file is compiled with the AVX2 flags).
#pragma once

#include "backend/cpu/matmul_internal.h"

namespace plumb::cpu::detail::avx512_emulated {

RowsKernel avx512_kernel(TensorType type);

}  // namespace plumb::cpu::detail::avx512_emulated
