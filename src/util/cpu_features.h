// Which SIMD paths this CPU can run, decided once. Every run-time dispatch asks here, so
// "AVX2 path" means the same thing everywhere (and clang, whose __builtin_cpu_supports lacks
// "f16c", builds the same code).
#pragma once

namespace plumb {

// AVX2 + FMA + F16C with the OS saving YMM state: the set every *_avx2.cpp file is built for.
bool cpu_has_avx2_fma_f16c();

}  // namespace plumb
