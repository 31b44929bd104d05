// Per-tensor type choice of llama.cpp's llama-quantize for Llama-architecture models.
//
// A quantization target is either a llama.cpp mix ("Q4_K_M": attn_v, ffn_down and output get
// more bits where llama.cpp gives them more) or a plain tensor type ("q4_k": every quantizable
// weight gets that type, like llama-quantize --pure). Both fall back as llama.cpp does when a
// row length is not a multiple of the block size. No importance matrix: the mixes that need
// one (IQ1/IQ2/IQ3, Q2_K_S) are not offered.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "quant/types.h"
#include "util/status.h"

namespace plumb {

// llama.cpp's `enum llama_ftype`: the number stored in `general.file_type`.
enum class FileType : uint32_t {
  ALL_F32 = 0,
  MOSTLY_F16 = 1,
  MOSTLY_Q4_0 = 2,
  MOSTLY_Q4_1 = 3,
  MOSTLY_Q8_0 = 7,
  MOSTLY_Q5_0 = 8,
  MOSTLY_Q5_1 = 9,
  MOSTLY_Q2_K = 10,
  MOSTLY_Q3_K_S = 11,
  MOSTLY_Q3_K_M = 12,
  MOSTLY_Q3_K_L = 13,
  MOSTLY_Q4_K_S = 14,
  MOSTLY_Q4_K_M = 15,
  MOSTLY_Q5_K_S = 16,
  MOSTLY_Q5_K_M = 17,
  MOSTLY_Q6_K = 18,
  MOSTLY_IQ4_NL = 25,
  MOSTLY_IQ4_XS = 30,
  MOSTLY_BF16 = 32,
};

struct QuantTarget {
  std::string name;          // as llama.cpp spells it: "Q4_K_M"; plain types lower case: "q4_k"
  FileType file_type;        // written to general.file_type
  TensorType default_type;   // the type most weights get
  bool pure = false;         // plain tensor type: no per-tensor mixing
};

// Upper-case names that are llama.cpp mixes ("Q4_0", "Q6_K", "Q4_K_M") select the mix; tensor
// type names in any other case ("q4_0", "Q4_K") select a plain type; mix names that are no type
// name are accepted in any case ("q4_k_m"). Unknown names: an error listing the valid ones.
Result<QuantTarget> parse_quant_target(std::string_view name);
// "Q4_K_M Q4_K_S ... ; plain types: q4_0 q4_1 ..." for usage messages.
std::string quant_target_names();

// The hyperparameters llama.cpp's choice depends on.
struct MixModelInfo {
  std::string arch = "llama";  // general.architecture
  int n_layer = 0;             // <arch>.block_count
  int n_head = 0;              // <arch>.attention.head_count
  int n_head_kv = 0;           // <arch>.attention.head_count_kv (n_head when absent)
};

struct MixTensor {
  std::string name;
  TensorType type = TensorType::F32;  // the input type
  int n_dims = 0;
  int64_t ne[4] = {1, 1, 1, 1};
};

struct MixChoice {
  TensorType type = TensorType::F32;  // the output type
  bool fell_back = false;              // ne[0] did not fit the block size of the mix's choice
};

// Whether llama-quantize quantizes this tensor at all (2-D+ weights, not norms, ...).
bool tensor_is_quantizable(const MixTensor& tensor);

// The output type of each tensor, in the order given. The layer counters llama.cpp keeps
// (i-th attn_v, i-th ffn_down) run in llama.cpp's tensor order (llama_tensor_order_less),
// whatever the order of `tensors`.
Result<std::vector<MixChoice>> choose_tensor_types(const QuantTarget& target,
                                                   const MixModelInfo& model,
                                                   const std::vector<MixTensor>& tensors);

// llama.cpp's tensor order (its loader's weight map): tensors outside blocks first, then by
// block number; by name within each group. llama-quantize writes tensors in this order.
bool llama_tensor_order_less(const std::string& a, const std::string& b);

}  // namespace plumb
