// Copies from global to shared memory that run while the block computes (cp.async, sm_80+):
// issued, grouped with commit, and waited for by group.
#pragma once

#include <cstdint>

namespace plumb::cuda {

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16 bytes global -> shared, bypassing L1; with ok false nothing is read and the 16 bytes are
// zeroed (src-size 0), so that rows and tokens past a matrix's end hold zeros.
__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool ok = true) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src), "r"(ok ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
// Until every group but the newest `pending` has landed (this thread's copies; a barrier after
// it makes the block's visible to all).
template <int pending>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(pending) : "memory");
}
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_all;\n" ::: "memory"); }

}  // namespace plumb::cuda
