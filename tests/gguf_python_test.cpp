// The writer's output read back by gguf-py (the reference Python implementation), when
// python3 with the gguf package is available.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <sys/wait.h>
#include <filesystem>
#include <fstream>

#include "gguf/gguf.h"
#include "test_util.h"

namespace plumb::gguf {
namespace {

std::string run_capture(const std::string& cmd, int* exit_code) {
  std::string out;
  FILE* pipe = popen((cmd + " 2>&1").c_str(), "r");
  if (pipe == nullptr) {
    *exit_code = -1;
    return out;
  }
  char buf[4096];
  size_t n = 0;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  const int status = pclose(pipe);
  *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

// Prints one line per field ("K name [types] contents") and tensor ("T name type shape nbytes").
constexpr const char* kDumpScript = R"PY(
import json, sys
import gguf
r = gguf.GGUFReader(sys.argv[1])
for name, field in r.fields.items():
    if name.startswith("GGUF."):
        continue
    types = [t.name for t in field.types]
    print("K", name, json.dumps(types), json.dumps(field.contents()))
for t in r.tensors:
    print("T", t.name, t.tensor_type.name, json.dumps([int(x) for x in t.shape]), int(t.n_bytes),
          int(t.data.reshape(-1).view("uint8")[0]))
)PY";

TEST(GgufPython, GgufPyReadsWhatTheWriterWrites) {
  int code = 0;
  run_capture("python3 -c 'import gguf'", &code);
  if (code != 0) GTEST_SKIP() << "python3 with the gguf package (gguf-py) is not available";

  Writer w;
  w.set("general.architecture", Value::make_string("llama"));
  w.set("general.name", Value::make_string("unicode \xc3\xa9\xe2\x82\xac"));
  w.set("llama.block_count", Value::make_u32(8));
  w.set("llama.rope.freq_base", Value::make_f32(10000.5f));
  w.set("test.i32", Value::make_i32(-5));
  w.set("test.u64", Value::make_u64(1ull << 40));
  w.set("test.bool", Value::make_bool(true));
  w.set("tokenizer.ggml.tokens", Value::make_string_array({"<s>", "</s>", "hello"}));
  w.set("tokenizer.ggml.scores", Value::make_f32_array({0.0f, -1.5f, 2.25f}));
  w.set("tokenizer.ggml.token_type", Value::make_i32_array({3, 3, 1}));
  w.set("test.nested", Value::make_array(ValueType::ARRAY, {Value::make_i32_array({1, 2}),
                                                            Value::make_i32_array({3})}));
  std::vector<uint8_t> f32(4 * 3 * 4, 1), f16(64 * 2 * 2, 2), q8(34 * 2 * 5, 3), q4k(144 * 2, 4);
  ASSERT_TRUE(w.add_tensor("a.f32", TensorType::F32, {4, 3}, f32.data(), f32.size()).ok());
  ASSERT_TRUE(w.add_tensor("b.f16", TensorType::F16, {64, 2}, f16.data(), f16.size()).ok());
  ASSERT_TRUE(w.add_tensor("c.q8_0", TensorType::Q8_0, {64, 5}, q8.data(), q8.size()).ok());
  ASSERT_TRUE(w.add_tensor("d.q4_k", TensorType::Q4_K, {256, 2}, q4k.data(), q4k.size()).ok());
  const std::string dir = test::temp_dir("gguf-python");
  const std::string path = dir + "/out.gguf";
  ASSERT_TRUE(w.write(path).ok());
  const std::string script = dir + "/dump.py";
  std::ofstream(script) << kDumpScript;

  const std::string out = run_capture("python3 " + script + " " + path, &code);
  ASSERT_EQ(code, 0) << out;
  const std::vector<std::string> expected = {
      "K general.architecture [\"STRING\"] \"llama\"",
      "K general.name [\"STRING\"] \"unicode \\u00e9\\u20ac\"",
      "K llama.block_count [\"UINT32\"] 8",
      "K llama.rope.freq_base [\"FLOAT32\"] 10000.5",
      "K test.i32 [\"INT32\"] -5",
      "K test.u64 [\"UINT64\"] 1099511627776",
      "K test.bool [\"BOOL\"] true",
      "K tokenizer.ggml.tokens [\"ARRAY\", \"STRING\"] [\"<s>\", \"</s>\", \"hello\"]",
      "K tokenizer.ggml.scores [\"ARRAY\", \"FLOAT32\"] [0.0, -1.5, 2.25]",
      "K tokenizer.ggml.token_type [\"ARRAY\", \"INT32\"] [3, 3, 1]",
      "K test.nested [\"ARRAY\", \"ARRAY\", \"INT32\"]",
      "T a.f32 F32 [4, 3] 48 1",
      "T b.f16 F16 [64, 2] 256 2",
      "T c.q8_0 Q8_0 [64, 5] 340 3",
      "T d.q4_k Q4_K [256, 2] 288 4",
  };
  for (const std::string& line : expected) {
    EXPECT_NE(out.find(line), std::string::npos) << "missing: " << line << "\ngguf-py printed:\n"
                                                 << out;
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace plumb::gguf
