// Which CUDA devices are present. Declared always; defined only in CUDA builds
// (PLUMB_HAVE_CUDA), where device_count() is 0 on a machine without a GPU.
#pragma once

#include <string>

namespace plumb::cuda {

int device_count();
std::string device_name(int index);
// Multiprocessors of the current device (0 if it cannot be asked); asked once.
int multiprocessors();

}  // namespace plumb::cuda
