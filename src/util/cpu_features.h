// Which SIMD paths this CPU can run, decided once. Every run-time dispatch asks here, so
// "AVX2 path" means the same thing everywhere (and clang, whose __builtin_cpu_supports lacks
// "f16c", builds the same code).
#pragma once

namespace plumb {

// AVX2 + FMA + F16C with the OS saving YMM state: the set every *_avx2.cpp file is built for.
bool cpu_has_avx2_fma_f16c();

// AVX-512 F/BW/VL/DQ/VNNI on top of the AVX2 set, with the OS saving opmask and ZMM state
// (XCR0 bits 1, 2, 5, 6, 7): the set every *_avx512.cpp file is built for.
bool cpu_has_avx512_vnni();

// AMX-TILE + AMX-INT8 on top of the AVX-512 set, with the OS saving tile state (XCR0 bits 17,
// 18) and granting this process the tile data (Linux arch_prctl ARCH_REQ_XCOMP_PERM, asked
// once here): the set the AMX matmul kernels need.
bool cpu_has_amx_int8();

// An AMD CPU ("AuthenticAMD"). The single-token float kernels read one row at a time there: on
// Zen 4 a core reading several rows side by side got up to half the memory rate of one stream,
// while on an Intel Xeon of the GPU machine (family 6 model 207, 16 threads) the interleaved
// rows were 12-19 % faster (docs/PERFORMANCE.md, "Zen 4" and "SPR-16").
bool cpu_is_amd();

// The CPU's family as CPUID leaf 1 gives it with its extension (AMD Zen 3 and Zen 4: 25, Zen 5:
// 26; Intel Xeons: 6); 0 where unknown.
int cpu_family();

}  // namespace plumb
