#include "test_models.h"

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>

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

}  // namespace plumb::test
