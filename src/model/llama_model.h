// The Model implementation: the mapped file, its hyperparameters, its weight table and its
// tokenizer. Sessions read the weights from here.
#pragma once

#include <memory>

#include "model/model.h"
#include "model/weights.h"

namespace plumb {

class LlamaModel : public Model {
 public:
  LlamaModel(std::unique_ptr<gguf::File> file, ModelConfig config, ModelWeights weights,
             std::unique_ptr<Tokenizer> tokenizer)
      : file_(std::move(file)), config_(std::move(config)), weights_(std::move(weights)),
        tokenizer_(std::move(tokenizer)) {}

  const ModelConfig& config() const override { return config_; }
  const gguf::File& file() const override { return *file_; }
  // Only valid when the model was loaded with options.load_tokenizer.
  const Tokenizer& tokenizer() const override { return *tokenizer_; }
  const ModelWeights& weights() const { return weights_; }

 private:
  std::unique_ptr<gguf::File> file_;
  ModelConfig config_;
  ModelWeights weights_;
  std::unique_ptr<Tokenizer> tokenizer_;
};

}  // namespace plumb
