#include "test_models.h"

#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>

#include "gguf/gguf.h"
#include "quant/quantize_model.h"
#include "test_util.h"
#include "util/sha256.h"

namespace plumb::test {

namespace {

// Just enough JSON for the manifests: objects, arrays, strings without escapes beyond \" and
// \\, numbers.
struct Json {
  enum Kind { NUMBER, STRING, ARRAY, OBJECT } kind = NUMBER;
  double number = 0;
  std::string text;
  std::vector<Json> items;
  std::vector<std::pair<std::string, Json>> members;

  const Json* get(const std::string& key) const {
    for (const auto& [k, v] : members) {
      if (k == key) return &v;
    }
    return nullptr;
  }
};

class JsonParser {
 public:
  explicit JsonParser(const std::string& s) : s_(s) {}

  bool parse(Json* out) {
    if (!value(out)) return false;
    skip_space();
    return pos_ == s_.size();
  }

 private:
  void skip_space() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  bool eat(char c) {
    skip_space();
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool string(std::string* out) {
    if (!eat('"')) return false;
    out->clear();
    while (pos_ < s_.size() && s_[pos_] != '"') {
      if (s_[pos_] == '\\' && pos_ + 1 < s_.size()) ++pos_;
      out->push_back(s_[pos_++]);
    }
    return eat('"');
  }
  bool value(Json* out) {
    skip_space();
    if (pos_ >= s_.size()) return false;
    const char c = s_[pos_];
    if (c == '"') {
      out->kind = Json::STRING;
      return string(&out->text);
    }
    if (c == '[') {
      ++pos_;
      out->kind = Json::ARRAY;
      if (eat(']')) return true;
      do {
        out->items.emplace_back();
        if (!value(&out->items.back())) return false;
      } while (eat(','));
      return eat(']');
    }
    if (c == '{') {
      ++pos_;
      out->kind = Json::OBJECT;
      if (eat('}')) return true;
      do {
        std::string key;
        if (!string(&key) || !eat(':')) return false;
        out->members.emplace_back(key, Json{});
        if (!value(&out->members.back().second)) return false;
      } while (eat(','));
      return eat('}');
    }
    char* end = nullptr;
    out->kind = Json::NUMBER;
    out->number = std::strtod(s_.c_str() + pos_, &end);
    if (end == s_.c_str() + pos_) return false;
    pos_ = static_cast<size_t>(end - s_.c_str());
    return true;
  }

  const std::string& s_;
  size_t pos_ = 0;
};

}  // namespace

bool load_manifest(const std::string& path, Manifest* manifest, std::string* error) {
  std::ifstream in(path);
  if (!in) {
    *error = "cannot read " + path;
    return false;
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  Json root;
  if (!JsonParser(text).parse(&root) || root.kind != Json::OBJECT) {
    *error = path + ": not valid JSON";
    return false;
  }
  const Json* file = root.get("file");
  const Json* file_type = root.get("general.file_type");
  const Json* file_bytes = root.get("file_bytes");
  const Json* tensors = root.get("tensors");
  if (!file || !file_type || !file_bytes || !tensors || tensors->kind != Json::ARRAY) {
    *error = path + ": missing file, general.file_type, file_bytes or tensors";
    return false;
  }
  *manifest = Manifest{};
  manifest->file = file->text;
  manifest->file_type = static_cast<uint32_t>(file_type->number);
  manifest->file_bytes = static_cast<uint64_t>(file_bytes->number);
  for (const Json& t : tensors->items) {
    const Json* name = t.get("name");
    const Json* type = t.get("type");
    const Json* ne = t.get("ne");
    const Json* bytes = t.get("bytes");
    const Json* sha = t.get("sha256");
    if (!name || !type || !ne || !bytes || !sha || ne->kind != Json::ARRAY) {
      *error = path + ": a tensor entry lacks name, type, ne, bytes or sha256";
      return false;
    }
    ManifestTensor mt;
    mt.name = name->text;
    mt.type = type->text;
    for (const Json& n : ne->items) mt.ne.push_back(static_cast<int64_t>(n.number));
    mt.bytes = static_cast<uint64_t>(bytes->number);
    mt.sha256 = sha->text;
    manifest->tensors.push_back(std::move(mt));
  }
  return true;
}

std::string compare_with_manifest(const std::string& gguf_path, const Manifest& manifest) {
  Result<std::unique_ptr<gguf::File>> file = gguf::File::open(gguf_path);
  if (!file.ok()) return file.status().message();
  const std::vector<gguf::TensorInfo>& tensors = (*file)->tensors();
  if (tensors.size() != manifest.tensors.size()) {
    return gguf_path + ": " + std::to_string(tensors.size()) + " tensors, manifest has " +
           std::to_string(manifest.tensors.size());
  }
  for (size_t i = 0; i < tensors.size(); ++i) {
    const gguf::TensorInfo& t = tensors[i];
    const ManifestTensor& m = manifest.tensors[i];
    const std::string where = gguf_path + ": tensor #" + std::to_string(i) + " '" + t.name + "'";
    if (t.name != m.name) return where + ": manifest has '" + m.name + "' here";
    if (type_name(t.type) != m.type) {
      return where + ": type " + type_name(t.type) + ", manifest " + m.type;
    }
    if (static_cast<size_t>(t.n_dims) != m.ne.size()) return where + ": dimension count differs";
    for (int d = 0; d < t.n_dims; ++d) {
      if (t.ne[d] != m.ne[d]) return where + ": shape " + t.shape_string() + " differs";
    }
    if (t.nbytes != m.bytes) return where + ": " + std::to_string(t.nbytes) + " bytes, manifest " +
                                    std::to_string(m.bytes);
    const std::string sha = sha256_hex(t.data, t.nbytes);
    if (sha != m.sha256) return where + ": sha256 " + sha + ", manifest " + m.sha256;
  }
  return "";
}

std::string austen_model(const std::string& type, std::string* why) {
  std::string ignored;
  std::string& reason = why != nullptr ? *why : ignored;
  const std::string name = "austen-21m-" + type + ".gguf";
  if (type == "f16" || type == "q4_k_m" || type == "q4_0") {
    const std::string shipped = shared_path("models/" + name);
    if (shipped.empty()) reason = "missing shared data: models/" + name;
    return shipped;
  }
  if (type != "q8_0" && type != "q6_k") {
    reason = "no austen-21m " + type + " (have f16, q4_k_m, q4_0, q8_0, q6_k)";
    return "";
  }
  const std::string f16 = shared_path("models/austen-21m-f16.gguf");
  const std::string manifest_path = shared_path("models/austen-21m-" + type + ".manifest.json");
  if (f16.empty() || manifest_path.empty()) {
    reason = "missing shared data: models/austen-21m-f16.gguf or its " + type + " manifest";
    return "";
  }
  Manifest manifest;
  if (!load_manifest(manifest_path, &manifest, &reason)) return "";

  const char* tmp = std::getenv("TMPDIR");
  const std::filesystem::path dir = std::filesystem::path(tmp && *tmp ? tmp : "/tmp") / "plumb-models";
  const std::string path = (dir / name).string();
  if (std::filesystem::exists(path)) {
    // Made by an earlier run: still trust it only if it matches llama.cpp's manifest.
    if (compare_with_manifest(path, manifest).empty()) return path;
    std::filesystem::remove(path);
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  // Tests run as parallel processes: each makes its own file and renames it into place.
  const std::string mine = path + "." + std::to_string(getpid());
  QuantizeOptions options;
  options.target = type == "q8_0" ? "Q8_0" : "Q6_K";
  Result<QuantizeSummary> made = quantize_model(f16, mine, options);
  if (!made.ok()) {
    reason = "plumb quantize failed: " + made.status().message();
    return "";
  }
  const std::string diff = compare_with_manifest(mine, manifest);
  if (!diff.empty()) {
    std::filesystem::remove(mine, ec);
    reason = "plumb's quantization differs from llama.cpp's manifest: " + diff;
    return "";
  }
  std::filesystem::rename(mine, path, ec);
  if (ec) {
    reason = "cannot move " + mine + " to " + path + ": " + ec.message();
    return "";
  }
  return path;
}

}  // namespace plumb::test
