#include "tokenizer_fixtures.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>

#include "gguf/gguf.h"
#include "test_util.h"

namespace plumb::test {

const Tokenizer* file_tokenizer(const std::string& path) {
  static std::mutex mutex;
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = cache.find(path);
  if (it != cache.end()) return it->second.get();
  auto file = gguf::File::open(path);
  if (!file.ok()) {
    ADD_FAILURE() << file.status().message();
    return nullptr;
  }
  auto tokenizer = Tokenizer::from_gguf(*file.value());
  if (!tokenizer.ok()) {
    ADD_FAILURE() << tokenizer.status().message();
    return nullptr;
  }
  return (cache[path] = std::move(tokenizer.value())).get();
}

const Tokenizer* vocab_tokenizer(const std::string& name) {
  const std::string path = shared_path("vocab/ggml-vocab-" + name + ".gguf");
  if (path.empty()) return nullptr;
  return file_tokenizer(path);
}

std::vector<std::string> vocab_names() {
  std::vector<std::string> names;
  const std::filesystem::path dir = std::filesystem::path(shared_dir()) / "vocab";
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string file = entry.path().filename().string();
    const std::string prefix = "ggml-vocab-", suffix = ".gguf";
    if (file.size() > prefix.size() + suffix.size() && file.rfind(prefix, 0) == 0 &&
        file.compare(file.size() - suffix.size(), suffix.size(), suffix) == 0) {
      names.push_back(file.substr(prefix.size(), file.size() - prefix.size() - suffix.size()));
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::vector<std::string> parse_vocab_inputs(const std::string& text) {
  // Each input is followed by "\n__ggml_vocab_test__\n" (llama.cpp's test-tokenizer-0 split).
  const std::string separator = "\n__ggml_vocab_test__\n";
  std::vector<std::string> inputs;
  size_t pos = 0;
  while (true) {
    const size_t end = text.find(separator, pos);
    if (end == std::string::npos) break;
    inputs.push_back(text.substr(pos, end - pos));
    pos = end + separator.size();
  }
  return inputs;
}

std::vector<std::vector<TokenId>> parse_vocab_outputs(const std::string& text) {
  std::vector<std::vector<TokenId>> outputs;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream ids(line);
    std::vector<TokenId> row;
    TokenId id = 0;
    while (ids >> id) row.push_back(id);
    outputs.push_back(std::move(row));
  }
  return outputs;
}

}  // namespace plumb::test
