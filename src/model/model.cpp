#include <functional>
#include <memory>

#include "model/config.h"
#include "model/llama_model.h"
#include "model/weights.h"

namespace plumb {

namespace {

void touch_tensor_pages(const gguf::File& file, const std::function<void(uint64_t, uint64_t)>& progress) {
  constexpr uint64_t kPage = 4096;
  constexpr uint64_t kReportEvery = 64ull << 20;
  uint64_t total = 0;
  for (const gguf::TensorInfo& t : file.tensors()) total += t.nbytes;
  uint64_t done = 0, reported = 0;
  volatile uint8_t sink = 0;
  progress(0, total);
  for (const gguf::TensorInfo& t : file.tensors()) {
    uint8_t acc = 0;
    for (uint64_t off = 0; off < t.nbytes; off += kPage) acc ^= t.data[off];
    sink = sink ^ acc;
    done += t.nbytes;
    if (done - reported >= kReportEvery) {
      progress(done, total);
      reported = done;
    }
  }
  progress(total, total);
}

}  // namespace

Result<std::unique_ptr<Model>> Model::load(const std::string& path, const ModelOptions& options) {
  gguf::OpenOptions open_options;
  open_options.read_into_memory = options.read_into_memory;
  open_options.progress = options.progress;
  PLUMB_ASSIGN_OR_RETURN(std::unique_ptr<gguf::File> file, gguf::File::open(path, open_options));
  PLUMB_ASSIGN_OR_RETURN(ModelConfig config, read_model_config(*file));
  PLUMB_ASSIGN_OR_RETURN(ModelWeights weights, find_model_weights(*file, config));
  std::unique_ptr<Tokenizer> tokenizer;
  if (options.load_tokenizer) {
    auto tok = Tokenizer::from_gguf(*file);
    if (!tok.ok()) return tok.status().with_context(path);
    tokenizer = std::move(tok).value();
  }
  // Mapped, the weights stay in the mapping: nothing is copied. With a progress callback, every
  // page of tensor data is touched now (reading the file from disk, reported as it goes), so the
  // first forward pass does not pay for it; without one, pages are read on first use.
  if (options.progress && !options.read_into_memory) touch_tensor_pages(*file, options.progress);
  return std::unique_ptr<Model>(
      std::make_unique<LlamaModel>(std::move(file), std::move(config), std::move(weights), std::move(tokenizer)));
}

}  // namespace plumb
