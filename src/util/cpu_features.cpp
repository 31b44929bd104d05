#include "util/cpu_features.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#if defined(__linux__) && defined(__x86_64__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace plumb {

namespace {

#if defined(__x86_64__) || defined(__i386__)
unsigned xcr0() {
  unsigned lo = 0, hi = 0;
  __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return lo;
}
#endif

bool detect_avx2_fma_f16c() {
#if defined(__x86_64__) || defined(__i386__)
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) == 0) return false;
  const bool fma = (ecx >> 12) & 1;
  const bool osxsave = (ecx >> 27) & 1;
  const bool avx = (ecx >> 28) & 1;
  const bool f16c = (ecx >> 29) & 1;
  if (!(fma && osxsave && avx && f16c)) return false;
  if ((xcr0() & 6) != 6) return false;  // XMM and YMM state saved by the OS
  if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) == 0) return false;
  return (ebx >> 5) & 1;  // AVX2
#else
  return false;
#endif
}

bool detect_avx512_vnni() {
#if defined(__x86_64__) || defined(__i386__)
  if (!detect_avx2_fma_f16c()) return false;
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) == 0) return false;
  const bool f = (ebx >> 16) & 1;
  const bool dq = (ebx >> 17) & 1;
  const bool bw = (ebx >> 30) & 1;
  const bool vl = (ebx >> 31) & 1;
  const bool vnni = (ecx >> 11) & 1;
  if (!(f && dq && bw && vl && vnni)) return false;
  // XMM, YMM, opmask, ZMM0-15 upper halves and ZMM16-31 all saved by the OS.
  constexpr unsigned kZmmState = (1u << 1) | (1u << 2) | (1u << 5) | (1u << 6) | (1u << 7);
  return (xcr0() & kZmmState) == kZmmState;
#else
  return false;
#endif
}

bool detect_amx_int8() {
#if defined(__linux__) && defined(__x86_64__)
  if (!detect_avx512_vnni()) return false;
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) == 0) return false;
  const bool tile = (edx >> 24) & 1;
  const bool int8 = (edx >> 25) & 1;
  if (!(tile && int8)) return false;
  constexpr unsigned kTileState = (1u << 17) | (1u << 18);  // XTILECFG, XTILEDATA
  if ((xcr0() & kTileState) != kTileState) return false;
  // Linux hands out the 8 KB tile state only to processes that ask (else the first tile
  // instruction faults).
  constexpr long kArchReqXcompPerm = 0x1023;
  constexpr long kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}

bool detect_amd() {
#if defined(__x86_64__) || defined(__i386__)
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid(0, &eax, &ebx, &ecx, &edx) == 0) return false;
  // The vendor string is EBX, EDX, ECX: "Auth" "enti" "cAMD".
  return ebx == 0x68747541u && edx == 0x69746e65u && ecx == 0x444d4163u;
#else
  return false;
#endif
}

}  // namespace

bool cpu_has_amx_int8() {
  static const bool has = detect_amx_int8();
  return has;
}

bool cpu_has_avx2_fma_f16c() {
  static const bool has = detect_avx2_fma_f16c();
  return has;
}

bool cpu_has_avx512_vnni() {
  static const bool has = detect_avx512_vnni();
  return has;
}

bool cpu_is_amd() {
  static const bool is = detect_amd();
  return is;
}

int cpu_family() {
  static const int family = [] {
#if defined(__x86_64__) || defined(__i386__)
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) == 0) return 0;
    const int base = static_cast<int>((eax >> 8) & 0xf);
    return base == 0xf ? base + static_cast<int>((eax >> 20) & 0xff) : base;
#else
    return 0;
#endif
  }();
  return family;
}

}  // namespace plumb
