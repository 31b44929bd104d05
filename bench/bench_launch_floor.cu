// The floor under a generation step's launches: a chain of dependent kernels recorded in one CUDA
// graph, each waiting for the one before (griddepcontrol.wait, with programmatic dependent launch
// as plumb's launch.cuh asks for it, or a plain launch), and optionally reading what the kernel
// before wrote (a 2048-float x through L2, summed by every block as a product stages its input)
// and writing its share for the next. Prints the time a launch takes for grids shaped like the
// step's products (132 blocks of 512 threads: one a multiprocessor on an H100), its attention
// (4 blocks of 256) and one warp, so that a step's time can be split into this floor times its
// launches and what the kernels themselves take (docs/PERFORMANCE.md).
//
//   build/bench_launch_floor [--chain 110] [--reps 200]
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "backend/cuda/launch.cuh"

namespace {

__global__ void link_kernel(const float* __restrict__ in, float* __restrict__ out, int n, bool read) {
  plumb::cuda::pdl_start();
  __shared__ float warp_sums[32];
  float s = 0.0f;
  if (read) {  // the block's sum of x: one pass through L2, a warp reduction and a block one
    for (int i = threadIdx.x; i < n; i += blockDim.x) s += in[i];
    for (int o = 16; o > 0; o /= 2) s += __shfl_xor_sync(0xffffffffu, s, o);
    if (threadIdx.x % 32 == 0) warp_sums[threadIdx.x / 32] = s;
    __syncthreads();
    s = threadIdx.x < blockDim.x / 32 ? warp_sums[threadIdx.x] : 0.0f;
    for (int o = 16; o > 0; o /= 2) s += __shfl_xor_sync(0xffffffffu, s, o);
  }
  const int per = (n + gridDim.x - 1) / gridDim.x;
  for (int i = blockIdx.x * per + threadIdx.x; i < (blockIdx.x + 1) * per && i < n; i += blockDim.x) {
    out[i] = 1.0f + 1e-9f * s;
  }
}

bool check(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return true;
  std::fprintf(stderr, "bench_launch_floor: %s: %s\n", what, cudaGetErrorString(e));
  return false;
}

struct Shape {
  int grid, threads;
  bool read, early;
};

// Microseconds a launch of `shape` takes in a recorded chain of `chain` launches, over `reps` replays.
bool time_chain(const Shape& shape, int chain, int reps, float* a, float* b, int n, cudaStream_t stream, double* us) {
  cudaGraph_t graph = nullptr;
  if (!check(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), "capture")) return false;
  for (int i = 0; i < chain; ++i) {
    cudaLaunchConfig_t config = {};
    config.gridDim = shape.grid;
    config.blockDim = shape.threads;
    config.stream = stream;
    cudaLaunchAttribute early[1] = {};
    early[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    early[0].val.programmaticStreamSerializationAllowed = 1;
    config.attrs = early;
    config.numAttrs = shape.early ? 1 : 0;
    const float* in = i % 2 == 0 ? a : b;
    float* out = i % 2 == 0 ? b : a;
    if (!check(cudaLaunchKernelEx(&config, link_kernel, in, out, n, shape.read), "launch")) return false;
  }
  if (!check(cudaStreamEndCapture(stream, &graph), "end capture")) return false;
  cudaGraphExec_t exec = nullptr;
  if (!check(cudaGraphInstantiate(&exec, graph, 0), "instantiate")) return false;
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  for (int i = 0; i < 10; ++i) cudaGraphLaunch(exec, stream);  // warm-up
  cudaEventRecord(start, stream);
  for (int i = 0; i < reps; ++i) cudaGraphLaunch(exec, stream);
  cudaEventRecord(stop, stream);
  const bool ok = check(cudaEventSynchronize(stop), "replay");
  float ms = 0.0f;
  cudaEventElapsedTime(&ms, start, stop);
  *us = 1000.0 * ms / (static_cast<double>(reps) * chain);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  return ok;
}

int positive(const char* flag, const char* value) {
  const int v = value != nullptr ? std::atoi(value) : 0;
  if (v < 1 || v > 100000) {
    std::fprintf(stderr, "bench_launch_floor: %s takes a count from 1 to 100000\n", flag);
    std::exit(2);
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  int chain = 110, reps = 200;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--chain") == 0) {
      chain = positive("--chain", i + 1 < argc ? argv[++i] : nullptr);
    } else if (std::strcmp(argv[i], "--reps") == 0) {
      reps = positive("--reps", i + 1 < argc ? argv[++i] : nullptr);
    } else {
      std::fprintf(stderr, "usage: bench_launch_floor [--chain N] [--reps N]\n");
      return std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0 ? 0 : 2;
    }
  }
  constexpr int n = 2048;
  float *a = nullptr, *b = nullptr;
  cudaStream_t stream = nullptr;
  if (!check(cudaMalloc(&a, n * sizeof(float)), "cudaMalloc") || !check(cudaMalloc(&b, n * sizeof(float)), "cudaMalloc") ||
      !check(cudaMemset(a, 0, n * sizeof(float)), "cudaMemset") || !check(cudaMemset(b, 0, n * sizeof(float)), "cudaMemset") ||
      !check(cudaStreamCreate(&stream), "cudaStreamCreate")) {
    return 1;
  }
  const Shape shapes[] = {{1, 32, false, false},   {1, 32, false, true},    {132, 512, false, false}, {132, 512, false, true},
                          {132, 512, true, false}, {132, 512, true, true},  {4, 256, true, true},     {264, 256, true, true}};
  std::printf("| grid | threads | reads x | early launch | us a launch (%d in a graph, %d replays) |\n|---|---|---|---|---|\n",
              chain, reps);
  for (const Shape& s : shapes) {
    double us = 0.0;
    if (!time_chain(s, chain, reps, a, b, n, stream, &us)) return 1;
    std::printf("| %d | %d | %s | %s | %.2f |\n", s.grid, s.threads, s.read ? "yes" : "no", s.early ? "yes" : "no", us);
  }
  return 0;
}
