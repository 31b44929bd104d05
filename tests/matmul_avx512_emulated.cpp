// The AVX-512 kernels of src/backend/cpu/matmul_avx512.cpp built again over the plain-C++
// intrinsics of avx512_emulation.h, into namespace detail::avx512_emulated (matmul_test.cpp
// checks them against the scalar kernels on any CPU with AVX2).
#include "avx512_emulation.h"

#define PLUMB_AVX512_NAMESPACE detail::avx512_emulated
#define PLUMB_AVX512_EMULATED
#include "backend/cpu/matmul_avx512.cpp"
