#include <memory>

#include "model/config.h"
#include "model/llama_model.h"
#include "model/weights.h"

namespace plumb {

Result<std::unique_ptr<Model>> Model::load(const std::string& path, const ModelOptions& options) {
  PLUMB_ASSIGN_OR_RETURN(std::unique_ptr<gguf::File> file, gguf::File::open(path));
  PLUMB_ASSIGN_OR_RETURN(ModelConfig config, read_model_config(*file));
  PLUMB_ASSIGN_OR_RETURN(ModelWeights weights, find_model_weights(*file, config));
  std::unique_ptr<Tokenizer> tokenizer;
  if (options.load_tokenizer) {
    auto tok = Tokenizer::from_gguf(*file);
    if (!tok.ok()) return tok.status().with_context(path);
    tokenizer = std::move(tok).value();
  }
  // The weights stay in the mapping: nothing is copied, pages are read on first use.
  if (options.progress) options.progress(file->file_size(), file->file_size());
  return std::unique_ptr<Model>(
      std::make_unique<LlamaModel>(std::move(file), std::move(config), std::move(weights), std::move(tokenizer)));
}

}  // namespace plumb
