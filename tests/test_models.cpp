#include "test_models.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>

#include "gguf/gguf.h"
#include "model/quantize_model.h"
#include "test_util.h"
#include "util/json_value.h"
#include "util/sha256.h"

namespace plumb::test {

bool load_manifest(const std::string& path, Manifest* manifest, std::string* error) {
  const Result<json::Value> parsed = json::Value::parse_file(path);
  if (!parsed.ok() || !parsed->is_object()) {
    *error = parsed.ok() ? path + ": not a JSON object" : parsed.status().message();
    return false;
  }
  const json::Value& root = *parsed;
  const json::Value* file = root.find("file");
  const json::Value* file_type = root.find("general.file_type");
  const json::Value* file_bytes = root.find("file_bytes");
  const json::Value* tensors = root.find("tensors");
  if (!file || !file_type || !file_bytes || !tensors || !tensors->is_array()) {
    *error = path + ": missing file, general.file_type, file_bytes or tensors";
    return false;
  }
  *manifest = Manifest{};
  manifest->file = file->as_string();
  manifest->file_type = static_cast<uint32_t>(file_type->as_number());
  manifest->file_bytes = static_cast<uint64_t>(file_bytes->as_number());
  for (const json::Value& t : tensors->items()) {
    const json::Value* name = t.find("name");
    const json::Value* type = t.find("type");
    const json::Value* ne = t.find("ne");
    const json::Value* bytes = t.find("bytes");
    const json::Value* sha = t.find("sha256");
    if (!name || !type || !ne || !bytes || !sha || !ne->is_array()) {
      *error = path + ": a tensor entry lacks name, type, ne, bytes or sha256";
      return false;
    }
    ManifestTensor mt;
    mt.name = name->as_string();
    mt.type = type->as_string();
    for (const json::Value& n : ne->items()) mt.ne.push_back(static_cast<int64_t>(n.as_number()));
    mt.bytes = static_cast<uint64_t>(bytes->as_number());
    mt.sha256 = sha->as_string();
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

namespace {

struct Fetched {
  std::string path;
  std::string why;
};

// scripts/fetch-model smollm2: the path it prints last, or why it failed.
Fetched run_fetch_model() {
  const std::string cmd = std::string(PLUMB_SOURCE_DIR) + "/scripts/fetch-model smollm2 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) return {"", "cannot run scripts/fetch-model"};
  std::string out;
  char buf[4096];
  size_t n = 0;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  const int status = pclose(pipe);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  if (status != 0) return {"", "scripts/fetch-model smollm2 failed: " + out};
  // The path is the last line (progress messages, merged in here, come before it).
  const size_t nl = out.rfind('\n');
  return {nl == std::string::npos ? out : out.substr(nl + 1), ""};
}

}  // namespace

std::string smollm2_model(std::string* why) {
  const std::string name = "SmolLM2-135M-Instruct.Q4_1.gguf";
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("PLUMB_SMOLLM2"); env != nullptr && *env != '\0') {
    candidates.emplace_back(env);
  }
  if (const char* env = std::getenv("PLUMB_MODELS"); env != nullptr && *env != '\0') {
    candidates.push_back(std::string(env) + "/" + name);
  }
  candidates.push_back(std::string(PLUMB_SOURCE_DIR) + "/models/" + name);
  for (const std::string& c : candidates) {
    if (std::filesystem::exists(c)) return c;
  }
  // Not cached: fetch once; later callers in this process get the same answer.
  static std::once_flag once;
  static Fetched fetched;
  std::call_once(once, [] { fetched = run_fetch_model(); });
  if (fetched.path.empty() && why != nullptr) *why = fetched.why;
  return fetched.path;
}

}  // namespace plumb::test
