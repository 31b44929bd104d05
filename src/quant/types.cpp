#include "quant/types.h"

#include <cctype>
#include <cstdlib>

#include "quant/blocks.h"

namespace plumb {

namespace {

constexpr TypeTraits kTraits[] = {
    {TensorType::F32, "F32", 1, 4, false},
    {TensorType::F16, "F16", 1, 2, false},
    {TensorType::Q4_0, "Q4_0", QK4_0, sizeof(block_q4_0), true},
    {TensorType::Q4_1, "Q4_1", QK4_1, sizeof(block_q4_1), true},
    {TensorType::Q5_0, "Q5_0", QK5_0, sizeof(block_q5_0), true},
    {TensorType::Q5_1, "Q5_1", QK5_1, sizeof(block_q5_1), true},
    {TensorType::Q8_0, "Q8_0", QK8_0, sizeof(block_q8_0), true},
    {TensorType::Q8_1, "Q8_1", QK8_1, sizeof(block_q8_1), true},
    {TensorType::Q2_K, "Q2_K", QK_K, sizeof(block_q2_K), true},
    {TensorType::Q3_K, "Q3_K", QK_K, sizeof(block_q3_K), true},
    {TensorType::Q4_K, "Q4_K", QK_K, sizeof(block_q4_K), true},
    {TensorType::Q5_K, "Q5_K", QK_K, sizeof(block_q5_K), true},
    {TensorType::Q6_K, "Q6_K", QK_K, sizeof(block_q6_K), true},
    {TensorType::Q8_K, "Q8_K", QK_K, sizeof(block_q8_K), true},
    {TensorType::IQ4_NL, "IQ4_NL", QK4_NL, sizeof(block_iq4_nl), true},
    {TensorType::IQ4_XS, "IQ4_XS", QK_K, sizeof(block_iq4_xs), true},
    {TensorType::I8, "I8", 1, 1, false},
    {TensorType::I16, "I16", 1, 2, false},
    {TensorType::I32, "I32", 1, 4, false},
    {TensorType::I64, "I64", 1, 8, false},
    {TensorType::F64, "F64", 1, 8, false},
    {TensorType::BF16, "BF16", 1, 2, false},
};

}  // namespace

const TypeTraits* find_type_traits(uint32_t type_number) {
  for (const TypeTraits& t : kTraits) {
    if (static_cast<uint32_t>(t.type) == type_number) return &t;
  }
  return nullptr;
}

std::string unsupported_type_message(uint32_t type_number) {
  // ggml.h's enum ggml_type: the numbers plumb has no traits for.
  struct Named {
    uint32_t number;
    const char* name;
    bool removed;
  };
  static constexpr Named kGgml[] = {
      {4, "Q4_2", true},      {5, "Q4_3", true},      {16, "IQ2_XXS", false},    {17, "IQ2_XS", false},
      {18, "IQ3_XXS", false}, {19, "IQ1_S", false},   {21, "IQ3_S", false},      {22, "IQ2_S", false},
      {29, "IQ1_M", false},   {31, "Q4_0_4_4", true}, {32, "Q4_0_4_8", true},    {33, "Q4_0_8_8", true},
      {34, "TQ1_0", false},   {35, "TQ2_0", false},   {36, "IQ4_NL_4_4", true},  {37, "IQ4_NL_4_8", true},
      {38, "IQ4_NL_8_8", true}, {39, "MXFP4", false},
  };
  std::string supported;
  for (const TypeTraits& t : kTraits) {
    if (t.type == TensorType::Q8_1 || t.type == TensorType::Q8_K) continue;  // activation partners only
    supported += (supported.empty() ? "" : ", ") + std::string(t.name);
  }
  for (const Named& n : kGgml) {
    if (n.number != type_number) continue;
    if (n.removed) {
      return std::string(n.name) + " (ggml type " + std::to_string(type_number) +
             "), a layout since removed from ggml: convert or quantize the model again with a current llama.cpp "
             "(plumb reads " + supported + ")";
    }
    return std::string(n.name) + " (ggml type " + std::to_string(type_number) +
           "), which plumb does not support; quantize the model to one it reads (" + supported + ")";
  }
  return "unknown tensor type " + std::to_string(type_number) + " (not a ggml type plumb knows; plumb reads " +
         supported + ")";
}

const TypeTraits& type_traits(TensorType type) {
  const TypeTraits* t = find_type_traits(static_cast<uint32_t>(type));
  if (t == nullptr) std::abort();  // a TensorType value is always one of kTraits
  return *t;
}

const char* type_name(TensorType type) { return type_traits(type).name; }

std::optional<TensorType> type_from_name(std::string_view name) {
  for (const TypeTraits& t : kTraits) {
    std::string_view n = t.name;
    if (n.size() != name.size()) continue;
    bool same = true;
    for (size_t i = 0; i < n.size() && same; ++i) {
      same = std::toupper(static_cast<unsigned char>(name[i])) == n[i];
    }
    if (same) return t.type;
  }
  return std::nullopt;
}

}  // namespace plumb
