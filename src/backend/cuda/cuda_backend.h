// The CUDA backend (cuda_backend.cpp): defined only in builds with CUDA (PLUMB_HAVE_CUDA).
#pragma once

#include <memory>

#include "backend/backend.h"

namespace plumb::cuda {

// A backend on CUDA device 0; an error naming the fix when no device or driver is usable.
Result<std::unique_ptr<Backend>> make_cuda_backend();

}  // namespace plumb::cuda
