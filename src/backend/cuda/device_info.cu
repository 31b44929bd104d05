// Which CUDA devices are present (device_info.h).
#include <cuda_runtime.h>

#include "backend/cuda/device_info.h"

namespace plumb::cuda {

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) return 0;
  return n;
}

std::string device_name(int index) {
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, index) != cudaSuccess) return std::string();
  return prop.name;
}

int multiprocessors() {
  static const int count = [] {
    int device = 0, n = 0;
    return cudaGetDevice(&device) == cudaSuccess &&
                   cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, device) == cudaSuccess
               ? n
               : 0;
  }();
  return count;
}

}  // namespace plumb::cuda
