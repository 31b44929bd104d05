// plumb diff on synthetic trace files: identical files pass, a perturbed tap is named, tokens
// that differ are an error, taps present on one side only are skipped.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "test_util.h"
#include "trace/diff.h"
#include "trace/recorder.h"
#include "trace/tap_names.h"

namespace plumb::trace {
namespace {

constexpr int64_t kTokens = 5;
constexpr int64_t kVocab = 40;
constexpr int kLayers = 3;

// Deterministic, non-trivial values for a tap.
std::vector<float> pattern(int64_t width, int64_t n_tokens, int seed) {
  std::vector<float> v(static_cast<size_t>(width * n_tokens));
  for (size_t i = 0; i < v.size(); ++i) v[i] = std::sin(0.37f * static_cast<float>(i) + static_cast<float>(seed));
  return v;
}

struct Synthetic {
  std::vector<int32_t> tokens = {1, 450, 7, 99, 3};
  // tap name -> (width, values); perturb() edits these before writing.
  std::vector<std::pair<std::string, std::vector<float>>> taps;
  std::vector<float> logits = pattern(kVocab, kTokens, 1000);

  Synthetic() {
    taps.emplace_back("inp_embd", pattern(16, kTokens, 0));
    for (int l = 0; l < kLayers; ++l) {
      int seed = 1 + l * 100;
      for (auto op : kLayerTaps) taps.emplace_back("blk." + std::to_string(l) + "." + std::string(op), pattern(16, kTokens, seed++));
    }
    taps.emplace_back("result_norm", pattern(16, kTokens, 900));
    taps.emplace_back("logits", logits);
  }
  std::vector<float>& tap(const std::string& name) {
    for (auto& [n, v] : taps) {
      if (n == name) return v;
    }
    ADD_FAILURE() << "no tap " << name;
    return taps[0].second;
  }
  std::string write(const std::string& path, const std::string& skip = "") const {
    TraceRecorder rec;
    for (const auto& [name, values] : taps) {
      if (name == skip) continue;
      const int64_t width = static_cast<int64_t>(values.size()) / kTokens;
      rec.tap(name, values.data(), width, kTokens);
    }
    TraceContents c;
    c.tokens = tokens;
    c.logits = logits;
    c.n_vocab = kVocab;
    c.recorder = &rec;
    const Status s = write_trace_file(path, c);
    EXPECT_TRUE(s.ok()) << s.message();
    return path;
  }
};

class DiffTest : public ::testing::Test {
 protected:
  std::string dir_ = test::temp_dir("diff");
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
};

TEST_F(DiffTest, IdenticalFilesPass) {
  Synthetic s;
  const std::string a = s.write(path("a.gguf"));
  const std::string b = s.write(path("b.gguf"));
  auto r = diff_trace_files(a, b, {});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_FALSE(r->diverged());
  // inp_embd + 15 per layer + result_norm + logits + p0.logits
  EXPECT_EQ(r->taps.size(), 1u + 15u * kLayers + 3u);
  EXPECT_EQ(r->verdict(), "all 49 taps within thresholds");
  for (const auto& t : r->taps) {
    EXPECT_EQ(t.nmse, 0.0) << t.name.display;
    EXPECT_NEAR(t.cosine, 1.0, 1e-12) << t.name.display;
  }
  std::string out;
  EXPECT_EQ(test::run_plumb("diff " + a + " " + b, &out), 0) << out;
  EXPECT_NE(out.find("all 49 taps within thresholds"), std::string::npos) << out;
}

TEST_F(DiffTest, TapsComeInForwardOrder) {
  Synthetic s;
  auto r = diff_trace_files(s.write(path("a.gguf")), s.write(path("b.gguf")), {});
  ASSERT_TRUE(r.ok()) << r.status().message();
  std::vector<std::string> names;
  for (const auto& t : r->taps) names.push_back(t.name.display);
  ASSERT_GE(names.size(), 20u);
  EXPECT_EQ(names[0], "inp_embd");
  EXPECT_EQ(names[1], "blk.0.attn_norm");
  EXPECT_EQ(names[5], "blk.0.q_rope");
  EXPECT_EQ(names[15], "blk.0.out");
  EXPECT_EQ(names[16], "blk.1.attn_norm");
  EXPECT_EQ(names[names.size() - 3], "result_norm");
  EXPECT_EQ(names[names.size() - 2], "logits");
  EXPECT_EQ(names.back(), "p0.logits");
}

TEST_F(DiffTest, PerturbedTapIsTheDivergencePoint) {
  Synthetic clean;
  Synthetic broken;
  // blk.1.attn_out off by 30 % everywhere, and everything after it off as well: the first is named.
  bool after = false;
  for (auto& [name, values] : broken.taps) {
    after = after || name == "blk.1.attn_out";
    if (after) {
      for (float& x : values) x *= 1.3f;
    }
  }
  // A small (within-threshold) change earlier must not be named.
  broken.tap("blk.0.v")[3] += 1e-4f;
  const std::string a = broken.write(path("a.gguf"));
  const std::string b = clean.write(path("b.gguf"));
  auto r = diff_trace_files(a, b, {});
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_TRUE(r->diverged());
  EXPECT_EQ(r->taps[static_cast<size_t>(r->divergence)].name.display, "blk.1.attn_out");
  EXPECT_NEAR(r->taps[static_cast<size_t>(r->divergence)].nmse, 0.09, 1e-6);
  // Files without metadata are a pair of unknown precision: NMSE floor 5e-3, |gain-1| floor 5e-2.
  EXPECT_NE(r->verdict().find("diverges first at blk.1.attn_out: NMSE 9.0e-2 > 5.0e-3, scale 1.3 of B's"),
            std::string::npos)
      << r->verdict();
  EXPECT_NEAR(r->taps[static_cast<size_t>(r->divergence)].gain, 1.3, 1e-6);

  std::string out;
  EXPECT_EQ(test::run_plumb("diff " + a + " " + b, &out), 1) << out;
  EXPECT_NE(out.find("diverges first at blk.1.attn_out"), std::string::npos) << out;
  EXPECT_NE(out.find("<== first divergence"), std::string::npos) << out;

  // --nmse raises the bar above 0.09: nothing diverges; --tap narrows the comparison.
  EXPECT_EQ(test::run_plumb("diff " + a + " " + b + " --nmse 0.1", &out), 0) << out;
  EXPECT_EQ(test::run_plumb("diff " + a + " " + b + " --tap 'blk.0.*'", &out), 0) << out;
  EXPECT_EQ(test::run_plumb("diff " + a + " " + b + " --tap 'blk.2.*'", &out), 1) << out;
  EXPECT_NE(out.find("diverges first at blk.2.attn_norm"), std::string::npos) << out;
}

TEST_F(DiffTest, GrowthPerLayerAfterTheDivergence) {
  Synthetic clean;
  Synthetic broken;
  // The residual stream's error: NMSE 1e-2 at layer 0, x100 per layer after it.
  const float scale[kLayers] = {0.1f, 1.0f, 10.0f};
  for (int l = 0; l < kLayers; ++l) {
    auto& out = broken.tap("blk." + std::to_string(l) + ".out");
    const auto& ref = clean.tap("blk." + std::to_string(l) + ".out");
    for (size_t i = 0; i < out.size(); ++i) out[i] = ref[i] * (1.0f + scale[l]);
  }
  auto r = diff_trace_files(broken.write(path("a.gguf")), clean.write(path("b.gguf")), {});
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_TRUE(r->diverged());
  EXPECT_EQ(r->taps[static_cast<size_t>(r->divergence)].name.display, "blk.0.out");
  ASSERT_TRUE(r->growth_per_layer.has_value());
  EXPECT_NEAR(*r->growth_per_layer, 100.0, 1e-2);
  EXPECT_NE(r->verdict().find("error grows \u00d7100 per layer after it"), std::string::npos) << r->verdict();

  // A divergence at the logits has no layers after it.
  Synthetic late;
  for (float& x : late.tap("logits")) x *= 2;
  r = diff_trace_files(late.write(path("c.gguf")), clean.write(path("b.gguf")), {});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->taps[static_cast<size_t>(r->divergence)].name.display, "logits");
  EXPECT_FALSE(r->growth_per_layer.has_value());
}

TEST_F(DiffTest, WorstElementIsLocated) {
  Synthetic clean;
  Synthetic broken;
  broken.tap("blk.2.ffn_up")[3 * 16 + 11] += 5.0f;  // token 3, index 11
  auto r = diff_trace_files(broken.write(path("a.gguf")), clean.write(path("b.gguf")), {});
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_TRUE(r->diverged());
  const TapDiff& d = r->taps[static_cast<size_t>(r->divergence)];
  EXPECT_EQ(d.name.display, "blk.2.ffn_up");
  EXPECT_EQ(d.worst_token, 3);
  EXPECT_EQ(d.worst_index, 11);
  EXPECT_NEAR(d.max_abs, 5.0, 1e-5);
}

TEST_F(DiffTest, DifferentTokensAreAnErrorNamingThePosition) {
  Synthetic a;
  Synthetic b;
  b.tokens[3] = 100;
  auto r = diff_trace_files(a.write(path("a.gguf")), b.write(path("b.gguf")), {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("p0.tokens differ first at position 3 (A: 99, B: 100"), std::string::npos)
      << r.status().message();
  std::string out;
  EXPECT_EQ(test::run_plumb("diff " + path("a.gguf") + " " + path("b.gguf"), &out), 1);
  EXPECT_NE(out.find("position 3"), std::string::npos) << out;
}

TEST_F(DiffTest, TapsOnOneSideOnlyAreSkipped) {
  Synthetic s;
  const std::string a = s.write(path("a.gguf"), "blk.1.q");
  const std::string b = s.write(path("b.gguf"), "blk.2.ffn_act");
  auto r = diff_trace_files(a, b, {});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_FALSE(r->diverged());
  EXPECT_EQ(r->only_in_a, std::vector<std::string>{"blk.2.ffn_act"});
  EXPECT_EQ(r->only_in_b, std::vector<std::string>{"blk.1.q"});
  EXPECT_EQ(r->taps.size(), 47u);
}

TEST_F(DiffTest, ShapeMismatchAndNonFiniteValuesDiverge) {
  Synthetic clean;
  Synthetic wide;
  wide.tap("blk.0.k") = pattern(32, kTokens, 5);
  auto r = diff_trace_files(wide.write(path("a.gguf")), clean.write(path("b.gguf")), {});
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_TRUE(r->diverged());
  EXPECT_EQ(r->taps[static_cast<size_t>(r->divergence)].name.display, "blk.0.k");
  EXPECT_NE(r->verdict().find("shape [32, 5] in A vs [16, 5] in B"), std::string::npos) << r->verdict();

  Synthetic nan;
  nan.tap("blk.1.ffn_gate")[7] = NAN;
  r = diff_trace_files(nan.write(path("c.gguf")), clean.write(path("b.gguf")), {});
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_TRUE(r->diverged());
  EXPECT_EQ(r->taps[static_cast<size_t>(r->divergence)].name.display, "blk.1.ffn_gate");
  EXPECT_NE(r->verdict().find("non-finite values (NaN/inf): 1 in A, 0 in B"), std::string::npos) << r->verdict();
}

TEST_F(DiffTest, JsonAndPlot) {
  Synthetic clean;
  Synthetic broken;
  for (float& x : broken.tap("blk.1.q_rope")) x = -x;
  const std::string a = broken.write(path("a.gguf"));
  const std::string b = clean.write(path("b.gguf"));
  std::string out;
  EXPECT_EQ(test::run_plumb("diff --json " + a + " " + b + " --plot " + path("p.svg"), &out), 1) << out;
  EXPECT_NE(out.find("\"divergence\": \"blk.1.q_rope\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"diverged\": true"), std::string::npos) << out;
  EXPECT_NE(out.find("\"tap\": \"blk.2.out\""), std::string::npos) << out;
  std::ifstream svg(path("p.svg"));
  std::stringstream text;
  text << svg.rdbuf();
  EXPECT_NE(text.str().find("<svg"), std::string::npos);
  EXPECT_NE(text.str().find("first divergence: blk.1.q_rope"), std::string::npos);
  EXPECT_EQ(test::run_plumb("diff " + a + " " + b + " --plot " + path("p.jpg"), &out), 1) << out;
  EXPECT_NE(out.find("must end in .svg or .png"), std::string::npos) << out;
}

TEST(TapNames, ParseAndDefaults) {
  auto t = parse_tensor_name("p0.trace.blk.12.ffn_gate");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->display, "blk.12.ffn_gate");
  EXPECT_EQ(t->family, "ffn_gate");
  EXPECT_EQ(t->layer, 12);
  t = parse_tensor_name("p2.logits");
  ASSERT_TRUE(t.has_value());
  EXPECT_TRUE(t->is_logits_tensor);
  EXPECT_EQ(t->prompt, 2);
  EXPECT_FALSE(parse_tensor_name("p0.tokens").has_value());
  EXPECT_FALSE(parse_tensor_name("p0.greedy").has_value());
  EXPECT_FALSE(parse_tensor_name("token_embd.weight").has_value());
  EXPECT_EQ(default_nmse_threshold("attn_out"), 5e-2);
  EXPECT_EQ(default_nmse_threshold("q_rope"), 5e-3);
  EXPECT_EQ(default_nmse_threshold("something_new"), 1e-2);
  EXPECT_EQ(format_sci(0.41, 1), "4.1e-1");
  EXPECT_EQ(format_sci(5e-2, 0), "5e-2");
}

}  // namespace
}  // namespace plumb::trace
