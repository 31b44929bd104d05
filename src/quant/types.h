// ggml tensor types: their numbers (as stored in GGUF), names and block geometry.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace plumb {

// Numbering is ggml's (ggml.h `enum ggml_type`); GGUF stores these numbers.
enum class TensorType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ4_NL = 20,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  BF16 = 30,
};

struct TypeTraits {
  TensorType type;
  const char* name;      // ggml's name, upper case: "Q4_K", "F16"
  int64_t block_size;    // elements per block (1 for plain types)
  size_t type_size;      // bytes per block
  bool is_quantized;
};

// Traits of a type number read from a file; nullptr when plumb does not know the type
// (callers put the number in their error message).
const TypeTraits* find_type_traits(uint32_t type_number);
// Why a type number without traits cannot be read, naming it as ggml does: "IQ2_XXS (ggml type
// 16), which plumb does not support", "Q4_0_4_4 (ggml type 31), removed from ggml ...", or
// "unknown tensor type 99" for a number ggml never had.
std::string unsupported_type_message(uint32_t type_number);
const TypeTraits& type_traits(TensorType type);
const char* type_name(TensorType type);
// Case-insensitive: "q4_k", "Q4_K", "f16".
std::optional<TensorType> type_from_name(std::string_view name);

// Bytes of a row of n elements; n must be a multiple of the block size.
inline size_t row_size(TensorType type, int64_t n) {
  const TypeTraits& t = type_traits(type);
  return static_cast<size_t>(n / t.block_size) * t.type_size;
}

}  // namespace plumb
