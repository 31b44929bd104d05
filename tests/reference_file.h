// Reading llama.cpp's reference dumps (../shared/ref/<model>.gguf) in tests.
#pragma once

#include <cstring>
#include <string>
#include <vector>

#include "gguf/gguf.h"

namespace plumb::test {

// An I32 or F32 tensor of a reference file as a vector; empty when absent or of another type.
template <class T>
std::vector<T> reference_vector(const gguf::File& file, const std::string& name) {
  const gguf::TensorInfo* t = file.find_tensor(name);
  const TensorType want = sizeof(T) == 4 && std::is_integral_v<T> ? TensorType::I32 : TensorType::F32;
  if (t == nullptr || t->type != want) return {};
  std::vector<T> out(static_cast<size_t>(t->n_elements()));
  std::memcpy(out.data(), t->data, out.size() * sizeof(T));
  return out;
}

// Number of leading greedy steps a correct engine must reproduce: up to (not including) the
// first step whose top-1 / top-2 margin is below tau.
inline size_t steps_above_margin(const std::vector<float>& margins, float tau) {
  size_t n = 0;
  while (n < margins.size() && margins[n] >= tau) ++n;
  return n;
}

}  // namespace plumb::test
