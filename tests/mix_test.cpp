// llama-quantize's per-tensor type choice, checked against the types llama.cpp chose for
// austen-21m (the manifests) and against its rules on shapes austen-21m does not have.
#include <gtest/gtest.h>

#include <map>

#include "quant/mix.h"
#include "test_models.h"
#include "test_util.h"

namespace plumb {
namespace {

MixModelInfo austen_info() {
  MixModelInfo info;
  info.n_layer = 8;
  info.n_head = 8;
  info.n_head_kv = 4;
  return info;
}

std::vector<MixTensor> tensors_of(const test::Manifest& m) {
  std::vector<MixTensor> out;
  for (const auto& t : m.tensors) {
    MixTensor mt;
    mt.name = t.name;
    mt.type = *type_from_name(t.type);
    mt.n_dims = static_cast<int>(t.ne.size());
    for (size_t i = 0; i < t.ne.size(); ++i) mt.ne[i] = t.ne[i];
    out.push_back(mt);
  }
  return out;
}

// A Llama with `n_layer` blocks, embedding 256 (or `n_embd`), FFN `n_ff`, vocab 32000.
std::vector<MixTensor> llama_tensors(int n_layer, int64_t n_embd, int64_t n_ff, int64_t n_kv) {
  std::vector<MixTensor> out;
  auto add = [&](const std::string& name, std::vector<int64_t> ne) {
    MixTensor t;
    t.name = name;
    t.type = ne.size() == 1 ? TensorType::F32 : TensorType::F16;
    t.n_dims = static_cast<int>(ne.size());
    for (size_t i = 0; i < ne.size(); ++i) t.ne[i] = ne[i];
    out.push_back(t);
  };
  add("token_embd.weight", {n_embd, 32000});
  for (int i = 0; i < n_layer; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    add(p + "attn_norm.weight", {n_embd});
    add(p + "attn_q.weight", {n_embd, n_embd});
    add(p + "attn_k.weight", {n_embd, n_kv});
    add(p + "attn_v.weight", {n_embd, n_kv});
    add(p + "attn_output.weight", {n_embd, n_embd});
    add(p + "ffn_norm.weight", {n_embd});
    add(p + "ffn_gate.weight", {n_embd, n_ff});
    add(p + "ffn_up.weight", {n_embd, n_ff});
    add(p + "ffn_down.weight", {n_ff, n_embd});
  }
  add("output_norm.weight", {n_embd});
  add("output.weight", {n_embd, 32000});
  return out;
}

std::map<std::string, TensorType> choose(const std::string& target_name, const MixModelInfo& info,
                                         const std::vector<MixTensor>& tensors) {
  Result<QuantTarget> target = parse_quant_target(target_name);
  EXPECT_TRUE(target.ok()) << target.status().message();
  Result<std::vector<MixChoice>> choices = choose_tensor_types(*target, info, tensors);
  EXPECT_TRUE(choices.ok()) << choices.status().message();
  std::map<std::string, TensorType> out;
  for (size_t i = 0; i < tensors.size() && choices.ok(); ++i) out[tensors[i].name] = (*choices)[i].type;
  return out;
}

TEST(QuantMix, MatchesLlamaCppOnAusten) {
  PLUMB_REQUIRE_SHARED(f16_path, "models/austen-21m-f16.manifest.json");
  test::Manifest f16;
  std::string error;
  ASSERT_TRUE(test::load_manifest(f16_path, &f16, &error)) << error;
  ASSERT_EQ(f16.tensors.size(), 75u);
  const std::vector<MixTensor> tensors = tensors_of(f16);

  for (const char* mix : {"Q4_K_M", "Q4_0", "Q8_0", "Q6_K"}) {
    std::string lower = mix;
    for (char& c : lower) c = static_cast<char>(std::tolower(c));
    PLUMB_REQUIRE_SHARED(path, "models/austen-21m-" + lower + ".manifest.json");
    test::Manifest expected;
    ASSERT_TRUE(test::load_manifest(path, &expected, &error)) << error;
    const auto chosen = choose(mix, austen_info(), tensors);
    ASSERT_EQ(chosen.size(), expected.tensors.size());
    for (const auto& t : expected.tensors) {
      ASSERT_TRUE(chosen.count(t.name)) << mix << ": " << t.name;
      EXPECT_EQ(type_name(chosen.at(t.name)), t.type) << mix << ": " << t.name;
    }
    EXPECT_EQ(static_cast<uint32_t>(parse_quant_target(mix)->file_type), expected.file_type) << mix;
  }
}

TEST(QuantMix, LlamaCppTensorOrderMatchesItsOutput) {
  PLUMB_REQUIRE_SHARED(f16_path, "models/austen-21m-f16.manifest.json");
  PLUMB_REQUIRE_SHARED(q_path, "models/austen-21m-q4_k_m.manifest.json");
  test::Manifest f16, q;
  std::string error;
  ASSERT_TRUE(test::load_manifest(f16_path, &f16, &error)) << error;
  ASSERT_TRUE(test::load_manifest(q_path, &q, &error)) << error;
  std::vector<std::string> names;
  for (const auto& t : f16.tensors) names.push_back(t.name);
  std::stable_sort(names.begin(), names.end(), llama_tensor_order_less);
  ASSERT_EQ(names.size(), q.tensors.size());
  for (size_t i = 0; i < names.size(); ++i) EXPECT_EQ(names[i], q.tensors[i].name) << i;
}

TEST(QuantMix, UseMoreBitsLayersOfQ4KM) {
  // 32 layers, as Llama-2-7B: llama.cpp gives attn_v and ffn_down Q6_K in layers 0-3, 6, 9,
  // ..., 27 (every third after the first eighth) and 28-31.
  MixModelInfo info{"llama", 32, 32, 32};
  const auto chosen = choose("Q4_K_M", info, llama_tensors(32, 4096, 11008, 4096));
  for (int i = 0; i < 32; ++i) {
    const bool more = i < 4 || i >= 28 || (i - 4) % 3 == 2;
    const TensorType want = more ? TensorType::Q6_K : TensorType::Q4_K;
    const std::string p = "blk." + std::to_string(i) + ".";
    EXPECT_EQ(chosen.at(p + "attn_v.weight"), want) << i;
    EXPECT_EQ(chosen.at(p + "ffn_down.weight"), want) << i;
    EXPECT_EQ(chosen.at(p + "attn_q.weight"), TensorType::Q4_K) << i;
  }
  EXPECT_EQ(chosen.at("output.weight"), TensorType::Q6_K);
  EXPECT_EQ(chosen.at("token_embd.weight"), TensorType::Q4_K);
  EXPECT_EQ(chosen.at("blk.0.attn_norm.weight"), TensorType::F32);
}

TEST(QuantMix, GqaDependentAttnV) {
  // Q2_K: attn_v Q4_K when >= 4 query heads share a KV head, else Q3_K.
  const auto gqa8 = choose("Q2_K", MixModelInfo{"llama", 8, 32, 4}, llama_tensors(8, 256, 768, 32));
  EXPECT_EQ(gqa8.at("blk.3.attn_v.weight"), TensorType::Q4_K);
  EXPECT_EQ(gqa8.at("blk.3.ffn_down.weight"), TensorType::Q3_K);
  EXPECT_EQ(gqa8.at("blk.3.attn_output.weight"), TensorType::Q3_K);
  EXPECT_EQ(gqa8.at("blk.3.attn_q.weight"), TensorType::Q2_K);
  const auto gqa2 = choose("Q2_K", MixModelInfo{"llama", 8, 8, 4}, llama_tensors(8, 256, 768, 128));
  EXPECT_EQ(gqa2.at("blk.3.attn_v.weight"), TensorType::Q3_K);

  const auto nl8 = choose("IQ4_NL", MixModelInfo{"llama", 8, 32, 4}, llama_tensors(8, 256, 768, 32));
  EXPECT_EQ(nl8.at("blk.5.attn_v.weight"), TensorType::Q5_K);
  EXPECT_EQ(nl8.at("blk.0.ffn_down.weight"), TensorType::Q5_K);
  EXPECT_EQ(nl8.at("blk.1.ffn_down.weight"), TensorType::IQ4_NL);
  const auto nl2 = choose("IQ4_XS", MixModelInfo{"llama", 8, 8, 4}, llama_tensors(8, 256, 768, 128));
  EXPECT_EQ(nl2.at("blk.5.attn_v.weight"), TensorType::IQ4_XS);
}

TEST(QuantMix, OtherMixes) {
  const MixModelInfo info{"llama", 16, 16, 16};
  const auto t = llama_tensors(16, 256, 768, 256);
  const auto q3m = choose("Q3_K_M", info, t);
  EXPECT_EQ(q3m.at("blk.0.attn_v.weight"), TensorType::Q5_K);
  EXPECT_EQ(q3m.at("blk.1.attn_v.weight"), TensorType::Q5_K);
  EXPECT_EQ(q3m.at("blk.2.attn_v.weight"), TensorType::Q4_K);
  EXPECT_EQ(q3m.at("blk.0.ffn_down.weight"), TensorType::Q5_K);
  EXPECT_EQ(q3m.at("blk.1.ffn_down.weight"), TensorType::Q4_K);
  EXPECT_EQ(q3m.at("blk.1.attn_output.weight"), TensorType::Q4_K);
  EXPECT_EQ(q3m.at("blk.1.ffn_up.weight"), TensorType::Q3_K);
  const auto q3s = choose("Q3_K_S", info, t);
  EXPECT_EQ(q3s.at("blk.0.attn_v.weight"), TensorType::Q3_K);
  EXPECT_EQ(q3s.at("output.weight"), TensorType::Q6_K);
  const auto q4s = choose("Q4_K_S", info, t);
  EXPECT_EQ(q4s.at("blk.3.attn_v.weight"), TensorType::Q5_K);
  EXPECT_EQ(q4s.at("blk.4.attn_v.weight"), TensorType::Q4_K);
  EXPECT_EQ(q4s.at("blk.1.ffn_down.weight"), TensorType::Q5_K);
  EXPECT_EQ(q4s.at("blk.2.ffn_down.weight"), TensorType::Q4_K);
  const auto q5m = choose("Q5_K_M", info, t);
  EXPECT_EQ(q5m.at("blk.15.ffn_down.weight"), TensorType::Q6_K);
  EXPECT_EQ(q5m.at("blk.5.ffn_down.weight"), TensorType::Q5_K);
  const auto q5s = choose("Q5_K_S", info, t);
  EXPECT_EQ(q5s.at("blk.15.ffn_down.weight"), TensorType::Q5_K);
  const auto q41 = choose("Q4_1", info, t);
  EXPECT_EQ(q41.at("output.weight"), TensorType::Q6_K);
  EXPECT_EQ(q41.at("token_embd.weight"), TensorType::Q4_1);
  const auto f32 = choose("F32", info, t);
  EXPECT_EQ(f32.at("output.weight"), TensorType::F32);
  EXPECT_EQ(f32.at("blk.0.ffn_down.weight"), TensorType::F32);
  const auto bf16 = choose("BF16", info, t);
  EXPECT_EQ(bf16.at("blk.0.attn_v.weight"), TensorType::BF16);
  EXPECT_EQ(bf16.at("blk.0.attn_norm.weight"), TensorType::F32);
}

TEST(QuantMix, PlainTypesAreUniform) {
  const auto t = llama_tensors(8, 256, 768, 128);
  const auto plain = choose("q4_0", MixModelInfo{"llama", 8, 8, 4}, t);
  for (const auto& [name, type] : plain) {
    const bool norm = name.find("_norm") != std::string::npos;
    EXPECT_EQ(type, norm ? TensorType::F32 : TensorType::Q4_0) << name;
  }
  EXPECT_TRUE(parse_quant_target("q4_0")->pure);
  EXPECT_FALSE(parse_quant_target("Q4_0")->pure);
  EXPECT_TRUE(parse_quant_target("Q4_K")->pure);
  EXPECT_FALSE(parse_quant_target("q4_k_m")->pure);
  EXPECT_EQ(parse_quant_target("q4_k_m")->name, "Q4_K_M");
}

TEST(QuantMix, TiedEmbeddingsTakeTheOutputType) {
  auto t = llama_tensors(8, 256, 768, 128);
  t.pop_back();  // no output.weight
  const auto chosen = choose("Q4_K_M", MixModelInfo{"llama", 8, 8, 4}, t);
  EXPECT_EQ(chosen.at("token_embd.weight"), TensorType::Q6_K);
}

TEST(QuantMix, FallbackForRowLengths) {
  // n_embd 96 fits 32-element blocks but not 256-element ones; llama.cpp falls back.
  const auto t = llama_tensors(8, 96, 288, 96);
  const auto q4km = choose("Q4_K_M", MixModelInfo{"llama", 8, 8, 8}, t);
  EXPECT_EQ(q4km.at("blk.1.attn_q.weight"), TensorType::Q5_0);
  EXPECT_EQ(q4km.at("blk.0.attn_v.weight"), TensorType::Q8_0);   // Q6_K -> Q8_0
  EXPECT_EQ(q4km.at("output.weight"), TensorType::Q8_0);          // output rule itself
  const auto q5ks = choose("Q5_K_S", MixModelInfo{"llama", 8, 8, 8}, t);
  EXPECT_EQ(q5ks.at("blk.1.attn_q.weight"), TensorType::Q5_1);
  const auto q3 = choose("Q3_K_S", MixModelInfo{"llama", 8, 8, 8}, t);
  EXPECT_EQ(q3.at("blk.1.attn_q.weight"), TensorType::Q4_0);
  const auto xs = choose("IQ4_XS", MixModelInfo{"llama", 8, 8, 8}, t);
  EXPECT_EQ(xs.at("blk.1.attn_q.weight"), TensorType::IQ4_NL);

  // A row of 40 elements fits no block: F16 for K types, an error for 32-element types.
  const auto odd = llama_tensors(2, 40, 80, 40);
  Result<std::vector<MixChoice>> k = choose_tensor_types(*parse_quant_target("q6_k"),
                                                         MixModelInfo{"llama", 2, 2, 2}, odd);
  ASSERT_TRUE(k.ok());
  EXPECT_EQ((*k)[2].type, TensorType::F16);
  EXPECT_TRUE((*k)[2].fell_back);
  Result<std::vector<MixChoice>> q8 = choose_tensor_types(*parse_quant_target("q8_0"),
                                                          MixModelInfo{"llama", 2, 2, 2}, odd);
  ASSERT_FALSE(q8.ok());
  EXPECT_NE(q8.status().message().find("row length 40"), std::string::npos)
      << q8.status().message();
}

TEST(QuantMix, UnknownNameListsValidOnes) {
  Result<QuantTarget> t = parse_quant_target("Q4_K_X");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("Q4_K_M"), std::string::npos);
  EXPECT_NE(t.status().message().find("q8_0"), std::string::npos);
}

}  // namespace
}  // namespace plumb
