// --check-tensors (llama.cpp's flag): every weight of a file dequantized once and scanned for
// NaN and infinity before it is used, so that a damaged file is named at load instead of
// generating token 0 forever.
#pragma once

#include "gguf/gguf.h"
#include "util/status.h"

namespace plumb {

// An error naming the first tensor (in file order), row and element that is not finite.
// Integer tensors (I8..I64) are skipped: they hold no floats.
Status check_tensor_data(const gguf::File& file, int n_threads = 0);

}  // namespace plumb
