#include "trace/trace_file.h"

#include <algorithm>
#include <cstring>

namespace plumb::trace {

const TraceTensor* TraceFile::find(const std::string& tensor_name) const {
  for (const auto& t : tensors) {
    if (t.name.tensor == tensor_name) return &t;
  }
  return nullptr;
}

std::string TraceFile::meta(const std::string& key) const {
  const auto it = metadata.find(key);
  return it == metadata.end() ? std::string() : it->second;
}

namespace {

// "p<k>.tokens" -> k
std::optional<int> tokens_prompt(const std::string& name) {
  constexpr std::string_view kSuffix = ".tokens";
  if (name.size() <= kSuffix.size() + 1 || name[0] != 'p' ||
      name.compare(name.size() - kSuffix.size(), kSuffix.size(), kSuffix) != 0) {
    return std::nullopt;
  }
  const std::string digits = name.substr(1, name.size() - 1 - kSuffix.size());
  if (digits.empty() || digits.size() > 6 ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  return std::stoi(digits);
}

}  // namespace

Result<TraceFile> read_trace(const gguf::File& file) {
  TraceFile out;
  out.path = file.path();
  for (const auto& [key, value] : file.metadata()) {
    if (value.type == gguf::ValueType::STRING) out.metadata[key] = value.str;
  }
  for (const auto& info : file.tensors()) {
    if (const auto prompt = tokens_prompt(info.name)) {
      if (info.type != TensorType::I32) {
        return Status::errorf("%s: tensor '%s' has type %s, expected I32", file.path().c_str(),
                              info.name.c_str(), type_name(info.type));
      }
      if (static_cast<uint64_t>(info.n_elements()) * sizeof(int32_t) != info.nbytes) {
        return Status::errorf("%s: tensor '%s' holds %llu bytes for %lld ids", file.path().c_str(),
                              info.name.c_str(), static_cast<unsigned long long>(info.nbytes),
                              static_cast<long long>(info.n_elements()));
      }
      std::vector<int32_t> ids(static_cast<size_t>(info.n_elements()));
      std::memcpy(ids.data(), info.data, info.nbytes);
      out.tokens[*prompt] = std::move(ids);
      continue;
    }
    auto name = parse_tensor_name(info.name);
    if (!name) continue;
    if (info.type != TensorType::F32) {
      return Status::errorf("%s: tensor '%s' has type %s; trace tensors must be F32",
                            file.path().c_str(), info.name.c_str(), type_name(info.type));
    }
    TraceTensor t;
    t.name = std::move(*name);
    t.shape = info.shape_string();
    t.width = info.ne[0];
    t.n_tokens = info.n_rows();
    if (static_cast<uint64_t>(info.n_elements()) * sizeof(float) != info.nbytes) {
      return Status::errorf("%s: tensor '%s' holds %llu bytes for %lld floats", file.path().c_str(),
                            info.name.c_str(), static_cast<unsigned long long>(info.nbytes),
                            static_cast<long long>(info.n_elements()));
    }
    t.data.resize(static_cast<size_t>(info.n_elements()));
    std::memcpy(t.data.data(), info.data, info.nbytes);
    out.tensors.push_back(std::move(t));
  }
  std::stable_sort(out.tensors.begin(), out.tensors.end(),
                   [](const TraceTensor& a, const TraceTensor& b) {
                     return forward_order_less(a.name, b.name);
                   });
  return out;
}

Result<TraceFile> read_trace_file(const std::string& path) {
  PLUMB_ASSIGN_OR_RETURN(auto file, gguf::File::open(path));
  return read_trace(*file);
}

}  // namespace plumb::trace
