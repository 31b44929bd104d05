// Kernel launches with programmatic dependent launch (sm_90): a kernel may be started while the
// kernel before it on the stream is still running, so that its launch, its blocks' setup and
// the prefetch of its weights overlap the earlier kernel instead of following it. Every kernel
// launched through launch() calls pdl_wait() before it reads anything an earlier op wrote or
// writes anything at all: pdl_wait() returns once all earlier work of the stream has finished
// and its writes are visible, as if the launch had been a plain one. Before pdl_wait() a kernel
// reads only what no op writes (weights). After it, pdl_launch_next() lets the next kernel start.
// PLUMB_CUDA_PDL=0 launches every kernel plainly (for measuring).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <utility>

#include "backend/cuda/kernels.h"

namespace plumb::cuda {

__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ __forceinline__ void pdl_launch_next() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// Both, at the top of a kernel that has nothing to do before its inputs are ready.
__device__ __forceinline__ void pdl_start() {
  pdl_wait();
  pdl_launch_next();
}

// Asks L2 for the 128-byte lines of [p, p + bytes), spread over the 32 lanes of a warp.
__device__ __forceinline__ void prefetch_l2(const void* p, int64_t bytes, int lane) {
  const char* c = static_cast<const char*>(p);
  for (int64_t off = static_cast<int64_t>(lane) * 128; off < bytes; off += 32 * 128) {
    asm volatile("prefetch.global.L2 [%0];" ::"l"(c + off));
  }
}

inline bool pdl_enabled() {
  static const bool enabled = switched_on("PLUMB_CUDA_PDL");
  return enabled;
}

// kernel<<<grid, block, shared, stream>>>(args...), allowed to start early (above); returns the
// launch's error.
template <typename... Params, typename... Args>
cudaError_t launch(void (*kernel)(Params...), dim3 grid, dim3 block, size_t shared, cudaStream_t stream,
                   Args&&... args) {
  cudaLaunchConfig_t config = {};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = shared;
  config.stream = stream;
  cudaLaunchAttribute early[1] = {};
  early[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  early[0].val.programmaticStreamSerializationAllowed = 1;
  config.attrs = early;
  config.numAttrs = pdl_enabled() ? 1 : 0;
  return cudaLaunchKernelEx(&config, kernel, static_cast<Params>(std::forward<Args>(args))...);
}

}  // namespace plumb::cuda
