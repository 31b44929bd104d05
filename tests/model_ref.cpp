#include "model_ref.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

namespace plumb::test {

namespace {

template <class T>
std::vector<T> tensor_values(const gguf::File& file, const std::string& name, TensorType type) {
  const gguf::TensorInfo* t = file.find_tensor(name);
  if (t == nullptr || t->type != type) return {};
  std::vector<T> v(static_cast<size_t>(t->n_elements()));
  std::memcpy(v.data(), t->data, v.size() * sizeof(T));
  return v;
}

}  // namespace

std::vector<RefPrompt> read_ref_prompts(const std::string& path, int64_t n_vocab) {
  std::vector<RefPrompt> prompts;
  auto file = gguf::File::open(path);
  if (!file.ok()) {
    ADD_FAILURE() << file.status().message();
    return prompts;
  }
  const gguf::File& f = **file;
  for (int k = 0;; ++k) {
    // Appended, not "p" + to_string(k): that form trips a false -Wrestrict in g++ 12.
    std::string p = "p";
    p += std::to_string(k) + ".";
    if (f.find_tensor(p + "tokens") == nullptr) break;
    RefPrompt r;
    r.text = f.get_string_or("ref." + p + "prompt", "").value();
    r.tokens = tensor_values<int32_t>(f, p + "tokens", TensorType::I32);
    r.logits = tensor_values<float>(f, p + "logits", TensorType::F32);
    r.greedy = tensor_values<int32_t>(f, p + "greedy", TensorType::I32);
    r.greedy_margin = tensor_values<float>(f, p + "greedy_margin", TensorType::F32);
    EXPECT_EQ(r.logits.size(), r.tokens.size() * static_cast<size_t>(n_vocab)) << path << " " << p << "logits";
    prompts.push_back(std::move(r));
  }
  return prompts;
}

std::string test_backend() {
  const char* b = std::getenv("PLUMB_TEST_BACKEND");
  return b != nullptr && *b != 0 ? b : "cpu";
}

std::vector<float> plumb_logits(const Model& model, const std::vector<int32_t>& tokens, const SessionOptions& options) {
  SessionOptions o = options;
  o.backend = test_backend();
  auto session = Session::create(model, o);
  if (!session.ok()) {
    ADD_FAILURE() << session.status().message();
    return {};
  }
  Status st = (*session)->decode(tokens, true);
  if (!st.ok()) {
    ADD_FAILURE() << st.message();
    return {};
  }
  const int64_t n_vocab = model.config().n_vocab;
  std::vector<float> out(tokens.size() * static_cast<size_t>(n_vocab));
  for (size_t t = 0; t < tokens.size(); ++t) {
    std::memcpy(out.data() + t * n_vocab, (*session)->logits(static_cast<int64_t>(t)), n_vocab * sizeof(float));
  }
  return out;
}

int64_t argmax(const float* row, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i) {
    if (row[i] > row[best]) best = i;
  }
  return best;
}

float top_margin(const float* row, int64_t n) {
  float a = -std::numeric_limits<float>::infinity(), b = a;
  for (int64_t i = 0; i < n; ++i) {
    if (row[i] > a) {
      b = a;
      a = row[i];
    } else if (row[i] > b) {
      b = row[i];
    }
  }
  return a - b;
}

void LogitsAgreement::add(const float* plumb, const float* ref, int64_t n_vocab, float tau, const std::string& where) {
  for (int64_t i = 0; i < n_vocab; ++i) {
    const double d = static_cast<double>(plumb[i]) - ref[i];
    sq_err += d * d;
    sq_ref += static_cast<double>(ref[i]) * ref[i];
  }
  ++positions;
  const int64_t a = argmax(plumb, n_vocab), b = argmax(ref, n_vocab);
  if (a == b) ++top1_equal;
  if (top_margin(ref, n_vocab) > tau) {
    ++confident;
    if (a != b) {
      ++confident_mismatch;
      if (first_mismatch.empty()) {
        first_mismatch = where + ": plumb arg-max " + std::to_string(a) + ", reference " + std::to_string(b) +
                         " (reference margin " + std::to_string(top_margin(ref, n_vocab)) + ")";
      }
    }
  }
}

}  // namespace plumb::test
