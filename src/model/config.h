// ModelConfig from GGUF metadata (architecture "llama"), with llama.cpp's defaults.
#pragma once

#include "gguf/gguf.h"
#include "model/model.h"
#include "util/status.h"

namespace plumb {

// Reads the hyperparameters; any architecture other than "llama" is refused with its name.
Result<ModelConfig> read_model_config(const gguf::File& file);

}  // namespace plumb
