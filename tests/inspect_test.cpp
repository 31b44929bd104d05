// `plumb inspect`: text and --json on every shared model and vocabulary, hostile strings in
// JSON, and a malformed file.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "gguf/gguf.h"
#include "test_util.h"

namespace plumb {
namespace {

std::string quoted(const std::string& s) { return "'" + s + "'"; }

// A text-output line "  <label>   <value>" (any run of spaces between them).
bool has_row(const std::string& out, const std::string& label, const std::string& value) {
  size_t start = 0;
  while (start < out.size()) {
    size_t end = out.find('\n', start);
    if (end == std::string::npos) end = out.size();
    const std::string line = out.substr(start, end - start);
    start = end + 1;
    if (line.rfind("  " + label + " ", 0) != 0) continue;
    const size_t v = line.find_first_not_of(' ', label.size() + 2);
    if (v != std::string::npos && line.substr(v) == value) return true;
  }
  return false;
}

bool have_python() {
  static const int code = std::system("python3 -c 'import json' >/dev/null 2>&1");
  return code == 0;
}

// Runs python3 on `script` with `json_path` as argv[1]; returns its exit code and output.
int run_python(const std::string& dir, const std::string& script, const std::string& json_path,
               std::string* output) {
  const std::string script_path = dir + "/check.py";
  std::ofstream(script_path) << script;
  FILE* pipe = popen(("python3 " + script_path + " " + json_path + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return -1;
  char buf[4096];
  size_t n = 0;
  output->clear();
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) output->append(buf, n);
  const int status = pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::vector<std::string> shared_ggufs() {
  std::vector<std::string> out;
  for (const char* sub : {"models", "vocab"}) {
    const std::string dir = test::shared_path(sub);
    if (dir.empty()) continue;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
      if (e.path().extension() == ".gguf") out.push_back(e.path().string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Checks counts and a few values of each --json output against the reader. argv[1] is a
// manifest: one "json_path n_tensors n_kv arch n_tokens" line per file (arch "-" when none).
constexpr const char* kCheckCounts = R"PY(
import json, sys
for line in open(sys.argv[1]):
    path, n_tensors, n_kv, arch, n_tokens = line.split()
    n_tensors, n_kv, n_tokens = int(n_tensors), int(n_kv), int(n_tokens)
    d = json.load(open(path, encoding="utf-8"))
    assert len(d["tensors"]) == n_tensors, (path, len(d["tensors"]), n_tensors)
    assert len(d["metadata"]) == n_kv, (path, len(d["metadata"]), n_kv)
    assert sum(t["count"] for t in d["totals"].values()) == n_tensors, path
    assert sum(t["bytes"] for t in d["tensors"]) == d["total_tensor_bytes"], path
    if arch != "-":
        assert d["hyperparameters"]["architecture"] == arch, path
    if n_tokens >= 0:
        tokens = d["metadata"]["tokenizer.ggml.tokens"]
        assert tokens["count"] == n_tokens and len(tokens["value"]) == n_tokens, path
print("ok")
)PY";

TEST(Inspect, EverySharedModelAndVocab) {
  const std::vector<std::string> files = shared_ggufs();
  if (files.empty()) GTEST_SKIP() << "no GGUF files under " << test::shared_dir() << "/{models,vocab}";
  const std::string dir = test::temp_dir("inspect");
  std::string manifest;
  for (size_t i = 0; i < files.size(); ++i) {
    const std::string& path = files[i];
    SCOPED_TRACE(path);
    auto file = gguf::File::open(path);
    ASSERT_TRUE(file.ok()) << file.status().message();
    const gguf::File& f = **file;
    const std::string arch = f.get_string_or("general.architecture", "").value();
    const gguf::Value* tokens = f.find("tokenizer.ggml.tokens");
    const long long n_tokens = tokens ? static_cast<long long>(tokens->array.size()) : -1;

    std::string out;
    ASSERT_EQ(test::run_plumb("inspect " + quoted(path), &out), 0) << out;
    EXPECT_NE(out.find("GGUF version  " + std::to_string(f.version())), std::string::npos) << out;
    EXPECT_NE(out.find("tensors       " + std::to_string(f.tensors().size())), std::string::npos);
    EXPECT_NE(out.find("size          " + std::to_string(f.file_size())), std::string::npos);
    if (!arch.empty()) {
      EXPECT_NE(out.find("hyperparameters (" + arch + ")"), std::string::npos);
    }
    if (n_tokens >= 0) {
      EXPECT_TRUE(has_row(out, "vocab size", std::to_string(n_tokens))) << out;
    }
    if (auto layers = f.get_u32(arch + ".block_count"); layers.ok()) {
      EXPECT_TRUE(has_row(out, "layers", std::to_string(*layers))) << out;
    }
    if (!f.tensors().empty()) {
      EXPECT_NE(out.find(f.tensors()[0].name), std::string::npos);
      EXPECT_NE(out.find("totals per type"), std::string::npos);
    }

    const std::string json_path = dir + "/out" + std::to_string(i) + ".json";
    ASSERT_EQ(test::run_plumb("inspect --json " + quoted(path) + " > " + json_path, &out), 0) << out;
    manifest += json_path + " " + std::to_string(f.tensors().size()) + " " +
                std::to_string(f.metadata().size()) + " " + (arch.empty() ? "-" : arch) + " " +
                std::to_string(n_tokens) + "\n";
  }
  if (!have_python()) GTEST_SKIP() << "python3 not available: --json output not validated";
  const std::string manifest_path = dir + "/manifest.txt";
  std::ofstream(manifest_path) << manifest;
  std::string py;
  EXPECT_EQ(run_python(dir, kCheckCounts, manifest_path, &py), 0) << py;
  std::filesystem::remove_all(dir);
}

TEST(Inspect, JsonIsCompleteAndEscapesHostileStrings) {
  gguf::Writer w;
  w.set("general.architecture", gguf::Value::make_string("llama"));
  w.set("llama.block_count", gguf::Value::make_u32(3));
  w.set("s.hostile", gguf::Value::make_string(std::string("a\x01\n\"\\\xff\xc3\xa9\0z", 10)));
  w.set("s.nan", gguf::Value::make_f32(NAN));
  w.set("s.long", gguf::Value::make_string(std::string(5000, 'x')));
  std::vector<std::string> many;
  for (int i = 0; i < 1000; ++i) many.push_back("tok" + std::to_string(i));
  w.set("tokenizer.ggml.tokens", gguf::Value::make_string_array(many));
  w.set("s.nested", gguf::Value::make_array(gguf::ValueType::ARRAY,
                                            {gguf::Value::make_i32_array({1, -2}),
                                             gguf::Value::make_i32_array({})}));
  std::vector<float> data(64, 0.5f);
  ASSERT_TRUE(w.add_tensor("t.weight", TensorType::F32, {16, 4}, data.data(), 256).ok());
  const std::string dir = test::temp_dir("inspect-json");
  const std::string path = dir + "/hostile.gguf";
  ASSERT_TRUE(w.write(path).ok());

  std::string out;
  ASSERT_EQ(test::run_plumb("inspect " + quoted(path), &out), 0) << out;
  EXPECT_NE(out.find("1000 items: \"tok0\", \"tok1\""), std::string::npos) << out;
  EXPECT_NE(out.find("... (5000 bytes)"), std::string::npos);
  EXPECT_EQ(out.find("tok999"), std::string::npos);  // long arrays are summarized in text

  const std::string json_path = dir + "/out.json";
  ASSERT_EQ(test::run_plumb("inspect --json " + quoted(path) + " > " + json_path, &out), 0) << out;
  if (!have_python()) GTEST_SKIP() << "python3 not available: --json output not validated";
  const char* script = R"PY(
import json, sys
d = json.load(open(sys.argv[1], encoding="utf-8"))
m = d["metadata"]
assert m["s.hostile"]["value"] == 'a\x01\n"\\\u00ff\u00e9\x00z', repr(m["s.hostile"]["value"])
assert m["s.nan"]["value"] is None
assert m["s.long"]["value"] == "x" * 5000
assert m["tokenizer.ggml.tokens"]["value"][999] == "tok999"
assert m["s.nested"]["value"] == [[1, -2], []]
assert m["s.nested"]["element_type"] == "ARRAY"
assert d["hyperparameters"]["block_count"] == 3
assert d["hyperparameters"]["vocab_size"] == 1000
t = d["tensors"][0]
assert (t["name"], t["type"], t["shape"], t["bytes"]) == ("t.weight", "F32", [16, 4], 256), t
assert d["totals"]["F32"] == {"count": 1, "bytes": 256}
print("ok")
)PY";
  std::string py;
  EXPECT_EQ(run_python(dir, script, json_path, &py), 0) << py;
  std::filesystem::remove_all(dir);
}

TEST(Inspect, MalformedFileAndUsageErrors) {
  const std::string dir = test::temp_dir("inspect-bad");
  const std::string path = dir + "/truncated.gguf";
  {
    gguf::Writer w;
    std::vector<float> data(64, 0.5f);
    ASSERT_TRUE(w.add_tensor("t.weight", TensorType::F32, {16, 4}, data.data(), 256).ok());
    auto bytes = w.serialize();
    ASSERT_TRUE(bytes.ok());
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes->data()), static_cast<std::streamsize>(bytes->size() - 10));
  }
  std::string out;
  EXPECT_EQ(test::run_plumb("inspect " + quoted(path), &out), 1);
  EXPECT_NE(out.find("truncated.gguf: tensor 't.weight' data"), std::string::npos) << out;
  EXPECT_EQ(test::run_plumb("inspect --json " + quoted(path), &out), 1);
  EXPECT_EQ(test::run_plumb("inspect " + quoted(dir + "/missing.gguf"), &out), 1);
  EXPECT_NE(out.find("missing.gguf"), std::string::npos) << out;
  EXPECT_EQ(test::run_plumb("inspect", &out), 2);
  EXPECT_EQ(test::run_plumb("inspect --bogus " + quoted(path), &out), 2);
  EXPECT_EQ(test::run_plumb("inspect --help", &out), 0);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace plumb
