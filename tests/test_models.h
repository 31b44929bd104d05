// austen-21m files for tests, and the manifests of llama.cpp's quantizations of it
// (../shared/models/austen-21m-<type>.manifest.json).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace plumb::test {

struct ManifestTensor {
  std::string name;
  std::string type;          // ggml's name: "Q4_K"
  std::vector<int64_t> ne;
  uint64_t bytes = 0;
  std::string sha256;        // of the tensor's data, lower-case hex
};

struct Manifest {
  std::string file;
  uint32_t file_type = 0;    // general.file_type
  uint64_t file_bytes = 0;
  std::vector<ManifestTensor> tensors;  // in the file's order
};

// Reads a manifest; false with *error set when the file is missing or malformed.
bool load_manifest(const std::string& path, Manifest* manifest, std::string* error);

// "" when `file` matches the manifest tensor for tensor (names, types, shapes, sha256), else
// the first difference.
std::string compare_with_manifest(const std::string& gguf_path, const Manifest& manifest);

// Path of austen-21m-<type>.gguf: the shipped file for f16, q4_k_m and q4_0; for q8_0 and q6_k
// a file made once with plumb's quantizer (cached under $TMPDIR/plumb-models/) and checked
// against its manifest. Empty string when it cannot be had; *why then says why (for
// GTEST_SKIP).
std::string austen_model(const std::string& type, std::string* why = nullptr);

// Path of SmolLM2-135M-Instruct.Q4_1.gguf: $PLUMB_SMOLLM2, else $PLUMB_MODELS/ or <repo>/models/
// when the file is there, else what scripts/fetch-model smollm2 fetches into that cache (run
// once per process). Empty string when it cannot be had; *why then
// says why (for GTEST_SKIP).
std::string smollm2_model(std::string* why = nullptr);

}  // namespace plumb::test

// Skips the current test, visibly, when an austen-21m model cannot be had.
#define PLUMB_REQUIRE_AUSTEN(var, type)                                   \
  std::string var##_why;                                                  \
  std::string var = ::plumb::test::austen_model(type, &var##_why);        \
  if (var.empty()) GTEST_SKIP() << "austen-21m " << (type) << ": " << var##_why

// Skips the current test, visibly, when SmolLM2-135M-Instruct cannot be had.
#define PLUMB_REQUIRE_SMOLLM2(var)                                        \
  std::string var##_why;                                                  \
  std::string var = ::plumb::test::smollm2_model(&var##_why);             \
  if (var.empty()) GTEST_SKIP() << "SmolLM2-135M-Instruct: " << var##_why
