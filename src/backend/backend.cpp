#include "backend/backend.h"

#include <cmath>

#include "backend/cpu/cpu_backend.h"
#ifdef PLUMB_HAVE_CUDA
#include "backend/cuda/cuda_backend.h"
#endif

namespace plumb {

RopeTable RopeTable::make(int64_t n_pos, int64_t n_rot, float freq_base, float freq_scale,
                          const std::vector<float>& freq_factors) {
  RopeTable t;
  t.n_pos = n_pos;
  t.n_rot = n_rot;
  const int64_t half = n_rot / 2;
  t.cos.resize(static_cast<size_t>(n_pos * half));
  t.sin.resize(static_cast<size_t>(n_pos * half));
  for (int64_t i = 0; i < half; ++i) {
    // ggml: theta_scale = freq_base^(-2/n_rot), theta_i = pos * theta_scale^i, times freq_scale,
    // divided by the frequency factor. Computed here in double, without the repeated products.
    double inv_freq = std::pow(static_cast<double>(freq_base), -2.0 * static_cast<double>(i) / static_cast<double>(n_rot));
    if (!freq_factors.empty()) inv_freq /= static_cast<double>(freq_factors[static_cast<size_t>(i)]);
    for (int64_t p = 0; p < n_pos; ++p) {
      const double theta = static_cast<double>(p) * static_cast<double>(freq_scale) * inv_freq;
      t.cos[static_cast<size_t>(p * half + i)] = static_cast<float>(std::cos(theta));
      t.sin[static_cast<size_t>(p * half + i)] = static_cast<float>(std::sin(theta));
    }
  }
  return t;
}

Result<std::unique_ptr<Backend>> make_backend(const std::string& name, int n_threads) {
  if (name == "cpu") return std::unique_ptr<Backend>(std::make_unique<cpu::CpuBackend>(n_threads));
#ifdef PLUMB_HAVE_CUDA
  if (name == "cuda") return cuda::make_cuda_backend();
#else
  if (name == "cuda") {
    return Status::error("this plumb was built without CUDA (nvcc not found, or -DPLUMB_CUDA=OFF): use --backend cpu");
  }
#endif
  return Status::errorf("unknown backend '%s' (choices: cpu, cuda)", name.c_str());
}

}  // namespace plumb
