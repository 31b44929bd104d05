// Every op of the CUDA backend against the CPU backend (llama.cpp's test-backend-ops, in plumb's
// terms): fresh random inputs, weights made by the real quantizer, awkward shapes (rows not a
// multiple of 256 where the type allows, odd token counts, non-power-of-two head counts and
// sequence lengths), outputs poisoned with NaN before each run so an unwritten element fails,
// and NaN never passes. Bounds follow the contract (docs/EXACTNESS.md, "CUDA backend"): ops
// that follow the CPU's arithmetic step for step must give its bits; matrix products are held
// to float64 of the exactly dequantized weights. Without a CUDA device every test is skipped
// with the reason.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "backend/backend.h"
#ifdef PLUMB_HAVE_CUDA
#include "backend/cuda/kernels.h"
#endif
#include "quant/ref.h"
#include "quant/types.h"
#include "cuda_test_util.h"

namespace plumb::test {
namespace {

std::vector<float> random_values(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Same bits everywhere (NaN never equal).
::testing::AssertionResult same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return ::testing::AssertionFailure() << "sizes " << a.size() << " vs " << b.size();
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) || std::isnan(b[i]) || std::memcmp(&a[i], &b[i], sizeof(float)) != 0) {
      return ::testing::AssertionFailure() << "element " << i << ": " << a[i] << " vs " << b[i];
    }
  }
  return ::testing::AssertionSuccess();
}

// sum (a - ref)^2 / sum ref^2, +inf if either holds a NaN.
double nmse(const std::vector<float>& a, const std::vector<double>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) || std::isnan(ref[i])) return std::numeric_limits<double>::infinity();
    num += (a[i] - ref[i]) * (a[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  return den > 0 ? num / den : num;
}
std::vector<double> widen(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }

// A tensor of `type`, rows of n_in values, made by the reference quantizer from random floats.
struct Weights {
  std::vector<uint8_t> bytes;
  std::vector<float> dequantized;  // what every backend must read
  gguf::TensorInfo info;
};
Weights make_weights(TensorType type, int64_t n_in, int64_t n_out, uint32_t seed) {
  Weights w;
  const std::vector<float> x = random_values(static_cast<size_t>(n_in * n_out), seed, 0.5f);
  const size_t row_bytes = row_size(type, n_in);
  w.bytes.resize(row_bytes * static_cast<size_t>(n_out));
  for (int64_t r = 0; r < n_out; ++r) {
    const float* src = x.data() + r * n_in;
    uint8_t* dst = w.bytes.data() + static_cast<size_t>(r) * row_bytes;
    if (type == TensorType::F32) {
      std::memcpy(dst, src, row_bytes);
    } else if (type == TensorType::F16 || type == TensorType::BF16) {
      auto* h = reinterpret_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n_in; ++i) h[i] = type == TensorType::F16 ? fp32_to_fp16(src[i]) : fp32_to_bf16(src[i]);
    } else {
      quantize_row(type, src, dst, n_in);
    }
  }
  w.dequantized.resize(x.size());
  dequantize_row(type, w.bytes.data(), w.dequantized.data(), n_in * n_out);
  w.info.name = std::string("test.") + type_name(type);
  w.info.type = type;
  w.info.n_dims = 2;
  w.info.ne[0] = n_in;
  w.info.ne[1] = n_out;
  w.info.nbytes = w.bytes.size();
  w.info.data = w.bytes.data();
  return w;
}

const TensorType kWeightTypes[] = {TensorType::F32,  TensorType::F16,  TensorType::BF16,   TensorType::Q4_0,
                                   TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1,   TensorType::Q8_0,
                                   TensorType::Q2_K, TensorType::Q3_K, TensorType::Q4_K,   TensorType::Q5_K,
                                   TensorType::Q6_K, TensorType::IQ4_NL, TensorType::IQ4_XS};

// The types whose prompt products follow the CPU's contract S on CUDA (kernels.h, summed_covers).
bool summed_covered(TensorType t) {
  return t == TensorType::Q4_0 || t == TensorType::Q8_0 || t == TensorType::Q4_K || t == TensorType::Q5_K ||
         t == TensorType::Q6_K;
}

#ifdef PLUMB_HAVE_CUDA
// The types whose generation products (up to kMaxMatvecTokens tokens) the register matvec's
// integer units take: 16-bit activations, exact integer sums per 16-value run.
bool integer_matvec(TensorType t) { return t == TensorType::Q4_K || t == TensorType::Q6_K; }
#endif

// Row length: 25 blocks of 32 (not a multiple of 256) where the type allows, else 3 x 256.
int64_t awkward_row(TensorType type) { return type_traits(type).block_size == 256 ? 768 : 800; }

std::vector<int32_t> batch_ids(int64_t n, int64_t n_vocab) {
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (int64_t t = 0; t < n; ++t) ids[static_cast<size_t>(t)] = static_cast<int32_t>((t * 7 + 3) % n_vocab);
  return ids;
}

class CudaOps : public ::testing::TestWithParam<TensorType> {};

TEST_P(CudaOps, GetRowsGiveTheReferenceBits) {
  PLUMB_REQUIRE_CUDA(gpu);
  const TensorType type = GetParam();
  const int64_t n_in = awkward_row(type), n_vocab = 11, n = 5;
  const Weights w = make_weights(type, n_in, n_vocab, 1);
  auto table = gpu->bind_matrix(w.info);
  ASSERT_TRUE(table.ok()) << table.status().message();
  const std::vector<int32_t> ids = batch_ids(n, n_vocab);
  gpu->set_batch(ids.data(), n, 0);
  float* out = poisoned(*gpu, static_cast<size_t>(n * n_in));
  gpu->get_rows(**table, n, out);
  std::vector<float> expect;
  for (int32_t id : ids) expect.insert(expect.end(), w.dequantized.begin() + id * n_in, w.dequantized.begin() + (id + 1) * n_in);
  EXPECT_TRUE(same_bits(get(*gpu, out, expect.size()), expect)) << type_name(type);
}

// y = W x against float64 over the dequantized weights, at every token count around the switch
// between the matvec kernel and cuBLAS, and against the CPU backend (whose 16-bit activations
// put it further from float64: a sanity bound). The prompt products of the types the contract-S
// kernel covers (4 tokens and more here) are the CPU's bits, as close to float64 as the CPU's
// (tests/cuda_summed_test.cpp tests them at more shapes).
TEST_P(CudaOps, MatmulMatchesFloat64) {
  PLUMB_REQUIRE_CUDA(gpu);
  auto cpu = make_backend("cpu", 1);
  ASSERT_TRUE(cpu.ok());
  const TensorType type = GetParam();
  const int64_t n_in = awkward_row(type), n_out = 37;
  const Weights w = make_weights(type, n_in, n_out, 2);
  auto gm = gpu->bind_matrix(w.info);
  auto cm = (*cpu)->bind_matrix(w.info);
  ASSERT_TRUE(gm.ok()) << gm.status().message();
  ASSERT_TRUE(cm.ok());
  for (int64_t n : {1, 2, 3, 5, 8, 9, 17, 64}) {
    const std::vector<float> x = random_values(static_cast<size_t>(n * n_in), 100 + static_cast<uint32_t>(n));
    std::vector<double> ref(static_cast<size_t>(n * n_out));
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t r = 0; r < n_out; ++r) {
        double s = 0;
        for (int64_t i = 0; i < n_in; ++i) s += static_cast<double>(w.dequantized[r * n_in + i]) * x[t * n_in + i];
        ref[static_cast<size_t>(t * n_out + r)] = s;
      }
    }
    float* gx = put(*gpu, x);
    float* gy = poisoned(*gpu, ref.size());
    gpu->matmul(**gm, gx, n, /*n_lane=*/n < 4 ? n : 0, gy);
    const std::vector<float> y = get(*gpu, gy, ref.size());
    std::vector<float> cy(ref.size());
    (*cpu)->matmul(**cm, x.data(), n, /*n_lane=*/n < 4 ? n : 0, cy.data());
    if (summed_covered(type) && n >= 4) {
      EXPECT_TRUE(same_bits(y, cy)) << type_name(type) << " n=" << n << " (CUDA vs CPU, contract S)";
      EXPECT_LE(nmse(y, ref), 1e-8) << type_name(type) << " n=" << n;
#ifdef PLUMB_HAVE_CUDA
    } else if (integer_matvec(type) && n <= cuda::kMaxMatvecTokens) {
      // The CPU's 16-bit activations, as contract S: its bound; and the kernel's bits, which the
      // host emulation gives.
      EXPECT_LE(nmse(y, ref), 1e-8) << type_name(type) << " n=" << n;
      const size_t row_bytes = row_size(type, n_in);
      std::vector<float> emulated(ref.size());
      for (int64_t t = 0; t < n; ++t) {
        for (int64_t r = 0; r < n_out; ++r) {
          std::vector<uint4> aligned((row_bytes + 15) / 16);
          std::memcpy(aligned.data(), w.bytes.data() + static_cast<size_t>(r) * row_bytes, row_bytes);
          ASSERT_TRUE(cuda::emulate_matvec_row(type, reinterpret_cast<const uint8_t*>(aligned.data()), n_in,
                                               x.data() + t * n_in, &emulated[static_cast<size_t>(t * n_out + r)]));
        }
      }
      EXPECT_TRUE(same_bits(y, emulated)) << type_name(type) << " n=" << n << " (CUDA vs its host emulation)";
      EXPECT_LE(nmse(y, widen(cy)), 1e-8) << type_name(type) << " n=" << n << " (CUDA vs CPU)";
#endif
    } else {
      EXPECT_LE(nmse(y, ref), 1e-12) << type_name(type) << " n=" << n;
      EXPECT_LE(nmse(y, widen(cy)), 1e-8) << type_name(type) << " n=" << n << " (CUDA vs CPU)";
    }
    gpu->release(gx);
    gpu->release(gy);
  }
}

// Several products of one input in one launch (row counts that split the kernel's row pairs
// between matrices) and the residual add fused into a product: the bits of one matmul each, and
// of matmul then add.
// Matrices of `type` bound to b, rows of n_in values, one for each count of rows (random weights
// from seed, seed + 1, ...); empty after a failure, which it reports.
std::vector<std::unique_ptr<BoundMatrix>> bind_random(Backend& b, TensorType type, int64_t n_in,
                                                      std::initializer_list<int64_t> rows, uint32_t seed) {
  std::vector<std::unique_ptr<BoundMatrix>> ms;
  for (int64_t n_out : rows) {
    const Weights w = make_weights(type, n_in, n_out, seed++);
    auto m = b.bind_matrix(w.info);
    if (!m.ok()) {
      ADD_FAILURE() << m.status().message();
      return {};
    }
    ms.push_back(std::move(*m));
  }
  return ms;
}

TEST_P(CudaOps, FusedProductsGiveTheBitsOfSingleOnes) {
  PLUMB_REQUIRE_CUDA(gpu);
  const TensorType type = GetParam();
  const int64_t n_in = awkward_row(type);
  const int64_t rows[] = {37, 5, 11};
  const auto ms = bind_random(*gpu, type, n_in, {rows[0], rows[1], rows[2]}, 30);
  ASSERT_EQ(ms.size(), 3u);
  for (int64_t n : {1, 2, 3, 8, 9}) {
    const std::vector<float> x = random_values(static_cast<size_t>(n * n_in), 200 + static_cast<uint32_t>(n));
    float* gx = put(*gpu, x);
    std::vector<float*> fused, single;
    std::vector<Backend::Product> products;
    for (int i = 0; i < 3; ++i) {
      fused.push_back(poisoned(*gpu, static_cast<size_t>(n * rows[i])));
      single.push_back(poisoned(*gpu, static_cast<size_t>(n * rows[i])));
      products.push_back({ms[static_cast<size_t>(i)].get(), fused.back()});
      gpu->matmul(*ms[static_cast<size_t>(i)], gx, n, /*n_lane=*/n, single.back());
    }
    gpu->matmul_same_input(products, gx, n, /*n_lane=*/n);
    for (int i = 0; i < 3; ++i) {
      const size_t len = static_cast<size_t>(n * rows[i]);
      EXPECT_TRUE(same_bits(get(*gpu, fused[static_cast<size_t>(i)], len), get(*gpu, single[static_cast<size_t>(i)], len)))
          << type_name(type) << " n=" << n << " product " << i;
    }
    const std::vector<float> acc0 = random_values(static_cast<size_t>(n * rows[0]), 300 + static_cast<uint32_t>(n));
    float* acc = put(*gpu, acc0);
    float* y = poisoned(*gpu, acc0.size());
    gpu->matmul_add(*ms[0], gx, n, /*n_lane=*/n, y, acc);
    const std::vector<float> expect_y = get(*gpu, single[0], acc0.size());
    std::vector<float> expect_acc(acc0.size());
    for (size_t i = 0; i < acc0.size(); ++i) expect_acc[i] = acc0[i] + expect_y[i];
    EXPECT_TRUE(same_bits(get(*gpu, y, acc0.size()), expect_y)) << type_name(type) << " n=" << n << " matmul_add y";
    EXPECT_TRUE(same_bits(get(*gpu, acc, acc0.size()), expect_acc)) << type_name(type) << " n=" << n << " matmul_add acc";
  }
}

// matmul_rope_store (one launch for a token's q, k and v products, their rotation and the KV
// store, where the types have the register matvec) against matmul_same_input then rope_store on
// the same backend: the same q, k, v and, through attention, the same cache. ms: q, k and v bound
// with rows of n_in values and the case's widths.
struct RopeCase {
  int64_t n_head, n_head_kv, head_dim, n_rot;
  CacheType cache;
  int64_t width(int i) const { return (i == 0 ? n_head : n_head_kv) * head_dim; }
};
void expect_fused_rope_store(Backend& gpu, const BoundMatrix* const (&ms)[3], int64_t n_in, const RopeCase& c,
                             const std::string& what) {
  const int64_t n_ctx = 16, pos = 6;
  ASSERT_TRUE(gpu.bind_rope(RopeTable::make(n_ctx, c.n_rot, 10000.0f, 1.0f, {})).ok());
  const AttentionShape shape{c.n_head, c.n_head_kv, c.head_dim, c.head_dim, 1.0f / std::sqrt(float(c.head_dim))};
  const std::vector<int32_t> ids{3};
  gpu.set_batch(ids.data(), 1, pos);
  float* gx = put(gpu, random_values(static_cast<size_t>(n_in), 60));
  std::vector<std::vector<float>> out[2];  // q, k, v, attention: two ops, one
  for (int fused = 0; fused < 2; ++fused) {
    auto cache = gpu.make_kv_cache(1, n_ctx, c.width(1), c.width(2), c.cache);
    ASSERT_TRUE(cache.ok()) << cache.status().message();
    KvCache* const caches[] = {cache->get()};
    float* y[3];
    std::vector<Backend::Product> qkv;
    for (int i = 0; i < 3; ++i) {
      y[i] = poisoned(gpu, static_cast<size_t>(c.width(i)));
      qkv.push_back({ms[i], y[i]});
    }
    if (fused == 1) {
      gpu.matmul_rope_store(qkv, gx, 1, /*n_lane=*/1, caches, 0, shape);
    } else {
      gpu.matmul_same_input(qkv, gx, 1, /*n_lane=*/1);
      gpu.rope_store(caches, 0, 1, y[0], y[1], y[2], shape);
    }
    float* att = poisoned(gpu, static_cast<size_t>(c.width(0)));
    gpu.attention(**cache, 0, /*run=*/0, y[0], shape, att);
    for (int i = 0; i < 3; ++i) out[fused].push_back(get(gpu, y[i], static_cast<size_t>(c.width(i))));
    out[fused].push_back(get(gpu, att, static_cast<size_t>(c.width(0))));
  }
  ASSERT_TRUE(gpu.take_error().ok());
  const char* names[] = {"q", "k", "v", "attention over the cache"};
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(same_bits(out[1][static_cast<size_t>(i)], out[0][static_cast<size_t>(i)]))
        << what << " " << names[i] << ", " << c.n_head << "/" << c.n_head_kv << " heads of " << c.head_dim << ", n_rot "
        << c.n_rot;
  }
}

TEST_P(CudaOps, MatmulRopeStoreGivesTheBitsOfTheTwoOps) {
  PLUMB_REQUIRE_CUDA(gpu);
  const TensorType type = GetParam();
  const int64_t n_in = awkward_row(type);
  for (const RopeCase& c : {RopeCase{6, 2, 64, 64, CacheType::F16}, RopeCase{4, 4, 32, 16, CacheType::F32}}) {
    const auto ms = bind_random(*gpu, type, n_in, {c.width(0), c.width(1), c.width(2)}, 50);
    ASSERT_EQ(ms.size(), 3u);
    expect_fused_rope_store(*gpu, {ms[0].get(), ms[1].get(), ms[2].get()}, n_in, c, type_name(type));
  }
}

// The same with v of another type than q and k: Q4_K q and k beside a Q6_K v (a Q4_K_M file's
// layers whose V llama.cpp's quantizer gives more bits) run as one launch that splits its blocks
// between the two types. The last case has more row groups than the GPU holds blocks at once.
TEST(CudaOps, MatmulRopeStoreWithAQ6KVGivesTheBitsOfTheTwoOps) {
  PLUMB_REQUIRE_CUDA(gpu);
  const int64_t n_in = 768;
  for (const RopeCase& c : {RopeCase{6, 2, 64, 64, CacheType::F16}, RopeCase{4, 4, 32, 16, CacheType::F32},
                            RopeCase{128, 16, 64, 64, CacheType::F16}}) {
    const auto qk = bind_random(*gpu, TensorType::Q4_K, n_in, {c.width(0), c.width(1)}, 51);
    const auto v = bind_random(*gpu, TensorType::Q6_K, n_in, {c.width(2)}, 52);
    ASSERT_EQ(qk.size() + v.size(), 3u);
    expect_fused_rope_store(*gpu, {qk[0].get(), qk[1].get(), v[0].get()}, n_in, c, "Q4_K q and k, Q6_K v:");
  }
}

// matmul_swiglu (one launch for a token's gate and up products and SwiGLU, where the type has the
// register matvec) against matmul_same_input then swiglu on the same backend.
TEST_P(CudaOps, MatmulSwigluGivesTheBitsOfTheTwoOps) {
  PLUMB_REQUIRE_CUDA(gpu);
  const TensorType type = GetParam();
  const int64_t n_in = awkward_row(type);
  for (int64_t n_ff : {37, 1000}) {
    const auto ms = bind_random(*gpu, type, n_in, {n_ff, n_ff}, 70);
    ASSERT_EQ(ms.size(), 2u);
    float* gx = put(*gpu, random_values(static_cast<size_t>(n_in), 80, 2.0f));
    std::vector<float> out[2];  // two ops, one
    for (int fused = 0; fused < 2; ++fused) {
      float* gate = poisoned(*gpu, static_cast<size_t>(n_ff));
      float* up = poisoned(*gpu, static_cast<size_t>(n_ff));
      const Backend::Product gate_up[] = {{ms[0].get(), gate}, {ms[1].get(), up}};
      if (fused == 1) {
        gpu->matmul_swiglu(gate_up, gx, 1, /*n_lane=*/1, gate);
      } else {
        gpu->matmul_same_input(gate_up, gx, 1, /*n_lane=*/1);
        gpu->swiglu(gate, up, n_ff, gate);
      }
      out[fused] = get(*gpu, gate, static_cast<size_t>(n_ff));
    }
    EXPECT_TRUE(same_bits(out[1], out[0])) << type_name(type) << ", " << n_ff << " rows";
  }
}

// A one-token product of rms_norm's output normalizes its input itself (the norm waits for it):
// the product, and the norm's output it writes too, against the norm run alone first (reading its
// output back makes it run), for a plain product, q/k/v with RoPE and the KV store, and gate/up
// with SwiGLU.
TEST_P(CudaOps, NormedProductsGiveTheBitsOfTheTwoOps) {
  PLUMB_REQUIRE_CUDA(gpu);
  const TensorType type = GetParam();
  const int64_t n_in = awkward_row(type), head_dim = 32, n_ctx = 8;
  const int64_t widths[] = {4 * head_dim, 2 * head_dim, 2 * head_dim};
  const auto ms = bind_random(*gpu, type, n_in, {widths[0], widths[1], widths[2]}, 90);
  ASSERT_EQ(ms.size(), 3u);
  ASSERT_TRUE(gpu->bind_rope(RopeTable::make(n_ctx, head_dim, 10000.0f, 1.0f, {})).ok());
  const AttentionShape shape{4, 2, head_dim, head_dim, 1.0f / std::sqrt(float(head_dim))};
  const std::vector<int32_t> ids{1};
  gpu->set_batch(ids.data(), 1, 3);
  float* raw = put(*gpu, random_values(static_cast<size_t>(n_in), 100, 3.0f));
  float* norm_w = put(*gpu, random_values(static_cast<size_t>(n_in), 101));
  for (int consumer = 0; consumer < 3; ++consumer) {
    std::vector<std::vector<float>> out[2];  // the norm alone first, the norm waiting
    for (int waits = 0; waits < 2; ++waits) {
      float* xb = poisoned(*gpu, static_cast<size_t>(n_in));
      float* y[3];
      std::vector<Backend::Product> products;
      for (int i = 0; i < 3; ++i) {
        y[i] = poisoned(*gpu, static_cast<size_t>(widths[i]));
        products.push_back({ms[static_cast<size_t>(i)].get(), y[i]});
      }
      auto cache = gpu->make_kv_cache(1, n_ctx, widths[1], widths[2], CacheType::F16);
      ASSERT_TRUE(cache.ok());
      KvCache* const caches[] = {cache->get()};
      gpu->rms_norm(raw, norm_w, 1e-5f, n_in, 1, xb);
      if (waits == 0) out[0].push_back(get(*gpu, xb, static_cast<size_t>(n_in)));
      if (consumer == 0) {
        gpu->matmul(*ms[0], xb, 1, /*n_lane=*/1, y[0]);
      } else if (consumer == 1) {
        gpu->matmul_rope_store(products, xb, 1, /*n_lane=*/1, caches, 0, shape);
      } else {
        const Backend::Product gate_up[] = {products[1], products[2]};
        gpu->matmul_swiglu(gate_up, xb, 1, /*n_lane=*/1, y[1]);
      }
      if (waits == 1) out[1].push_back(get(*gpu, xb, static_cast<size_t>(n_in)));
      const int outputs = consumer == 0 ? 1 : consumer == 1 ? 3 : 2;
      for (int i = consumer == 2 ? 1 : 0; i < outputs; ++i) out[waits].push_back(get(*gpu, y[i], static_cast<size_t>(widths[i])));
      if (consumer == 1) {
        float* att = poisoned(*gpu, static_cast<size_t>(widths[0]));
        gpu->attention(**cache, 0, /*run=*/0, y[0], shape, att);
        out[waits].push_back(get(*gpu, att, static_cast<size_t>(widths[0])));
      }
    }
    ASSERT_EQ(out[0].size(), out[1].size());
    for (size_t i = 0; i < out[0].size(); ++i) {
      EXPECT_TRUE(same_bits(out[1][i], out[0][i])) << type_name(type) << ", consumer " << consumer << ", output " << i
                                                   << " (0: the norm's)";
    }
  }
}

// Under the generation contract a token's bits do not depend on the tokens launched with it (a
// batch of sequences shares one launch: docs/EXACTNESS.md, "Batch invariance"): n tokens in one
// call give each token's bits alone, at every count up to kMaxMatvecTokens, also for rows too
// long for two tokens' x in the register kernel's shared memory.
TEST_P(CudaOps, MatvecTokensGiveTheirBitsAlone) {
  PLUMB_REQUIRE_CUDA(gpu);
  const TensorType type = GetParam();
  for (const int64_t n_in : {awkward_row(type), int64_t{12288}}) {
    const int64_t n_out = 19;
    const Weights w = make_weights(type, n_in, n_out, 40);
    auto m = gpu->bind_matrix(w.info);
    ASSERT_TRUE(m.ok()) << m.status().message();
    const int64_t n_max = 8;  // kMaxMatvecTokens: the most a matvec launch takes
    const std::vector<float> x = random_values(static_cast<size_t>(n_max * n_in), 41);
    float* gx = put(*gpu, x);
    std::vector<std::vector<float>> alone;
    for (int64_t t = 0; t < n_max; ++t) {
      float* y = poisoned(*gpu, static_cast<size_t>(n_out));
      gpu->matmul(**m, gx + t * n_in, 1, /*n_lane=*/1, y);
      alone.push_back(get(*gpu, y, static_cast<size_t>(n_out)));
    }
    for (int64_t n = 2; n <= n_max; ++n) {
      float* y = poisoned(*gpu, static_cast<size_t>(n * n_out));
      gpu->matmul(**m, gx, n, /*n_lane=*/n, y);
      const std::vector<float> got = get(*gpu, y, static_cast<size_t>(n * n_out));
      for (int64_t t = 0; t < n; ++t) {
        EXPECT_TRUE(same_bits(std::vector<float>(got.begin() + t * n_out, got.begin() + (t + 1) * n_out),
                              alone[static_cast<size_t>(t)]))
            << type_name(type) << " n_in=" << n_in << ": token " << t << " of " << n;
      }
    }
  }
}

#ifdef PLUMB_HAVE_CUDA
// The register matvec's unit layouts against the reference, on the host: runs without a GPU.
TEST(CudaUnits, LayoutsGiveTheReferenceValues) {
  for (TensorType type : {TensorType::F16, TensorType::Q4_0, TensorType::Q4_1, TensorType::Q8_0, TensorType::Q4_K,
                          TensorType::Q6_K}) {
    const int64_t n_in = awkward_row(type), rows = 3;
    const Weights w = make_weights(type, n_in, rows, 50);
    const size_t row_bytes = row_size(type, n_in);
    for (int64_t r = 0; r < rows; ++r) {
      // A 16-byte aligned copy of the row, as the backend uploads it.
      std::vector<uint4> aligned((row_bytes + 15) / 16);
      std::memcpy(aligned.data(), w.bytes.data() + static_cast<size_t>(r) * row_bytes, row_bytes);
      std::string first;
      EXPECT_EQ(cuda::check_unit_layout(type, reinterpret_cast<const uint8_t*>(aligned.data()), n_in,
                                        w.dequantized.data() + r * n_in, &first),
                0)
          << type_name(type) << " row " << r << ": " << first;
    }
  }
}

// The integer units' activations are the CPU's: every kind of 32-value block (normal, outliers,
// zeros, values too small for a scale, NaN, Inf) against prepare_block, on the host.
TEST(CudaUnits, RunActivationsAreTheCpuPreparation) {
  std::vector<std::vector<float>> blocks;
  for (uint32_t seed = 0; seed < 64; ++seed) blocks.push_back(random_values(32, 900 + seed, seed % 2 ? 1.0f : 1e-3f));
  blocks.push_back(std::vector<float>(32, 0.0f));
  blocks.push_back(std::vector<float>(32, -0.0f));
  blocks.push_back(std::vector<float>(32, 1e-39f));
  std::vector<float> outlier = random_values(32, 7);
  outlier[19] = -3e4f;
  blocks.push_back(outlier);
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()}) {
    for (int at : {3, 28}) {
      std::vector<float> b = random_values(32, 11);
      b[static_cast<size_t>(at)] = bad;
      blocks.push_back(b);
    }
  }
  for (size_t i = 0; i < blocks.size(); ++i) {
    std::string first;
    EXPECT_EQ(cuda::check_run_acts(blocks[i].data(), &first), 0) << "block " << i << ": " << first;
  }
}

// The integer matvec's arithmetic (its host emulation, whose bits the GPU test compares) within
// the contract's bound of float64, on the host: both integer types, a few rows.
TEST(CudaUnits, EmulatedIntegerMatvecMatchesFloat64) {
  for (TensorType type : {TensorType::Q4_K, TensorType::Q6_K}) {
    const int64_t n_in = 2 * awkward_row(type), rows = 8;
    const Weights w = make_weights(type, n_in, rows, 60);
    const size_t row_bytes = row_size(type, n_in);
    const std::vector<float> x = random_values(static_cast<size_t>(n_in), 61);
    std::vector<float> y(static_cast<size_t>(rows));
    std::vector<double> ref(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) {
      std::vector<uint4> aligned((row_bytes + 15) / 16);
      std::memcpy(aligned.data(), w.bytes.data() + static_cast<size_t>(r) * row_bytes, row_bytes);
      ASSERT_TRUE(cuda::emulate_matvec_row(type, reinterpret_cast<const uint8_t*>(aligned.data()), n_in, x.data(),
                                           &y[static_cast<size_t>(r)]));
      double s = 0;
      for (int64_t i = 0; i < n_in; ++i) s += static_cast<double>(w.dequantized[r * n_in + i]) * x[i];
      ref[static_cast<size_t>(r)] = s;
    }
    EXPECT_LE(nmse(y, ref), 1e-8) << type_name(type);
    EXPECT_GT(nmse(y, ref), 0.0) << type_name(type) << ": the activations' rounding should show";
  }
}
#endif

INSTANTIATE_TEST_SUITE_P(Types, CudaOps, ::testing::ValuesIn(kWeightTypes),
                         [](const auto& info) { return std::string(type_name(info.param)); });

TEST(CudaOps, TypeWithoutKernelIsRefusedByName) {
  PLUMB_REQUIRE_CUDA(gpu);
  std::vector<uint8_t> bytes(row_size(TensorType::Q8_K, 256) * 4);
  gguf::TensorInfo t;
  t.name = "blk.0.attn_q.weight";
  t.type = TensorType::Q8_K;
  t.n_dims = 2;
  t.ne[0] = 256;
  t.ne[1] = 4;
  t.nbytes = bytes.size();
  t.data = bytes.data();
  auto m = gpu->bind_matrix(t);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("Q8_K"), std::string::npos) << m.status().message();
  EXPECT_NE(m.status().message().find("blk.0.attn_q.weight"), std::string::npos) << m.status().message();
}

TEST(CudaOps, RmsNormMatchesCpu) {
  PLUMB_REQUIRE_CUDA(gpu);
  auto cpu = make_backend("cpu", 1);
  for (int64_t width : {64, 300, 2048}) {
    for (int64_t n : {1, 3, 7}) {
      const std::vector<float> x = random_values(static_cast<size_t>(n * width), 7, 3.0f);
      const std::vector<float> w = random_values(static_cast<size_t>(width), 8);
      std::vector<float> cy(x.size());
      (*cpu)->rms_norm(x.data(), w.data(), 1e-5f, width, n, cy.data());
      float* gx = put(*gpu, x);
      float* gw = put(*gpu, w);
      float* gy = poisoned(*gpu, x.size());
      gpu->rms_norm(gx, gw, 1e-5f, width, n, gy);
      const std::vector<float> y = get(*gpu, gy, x.size());
      // The squares are summed in double in another order: the scale may differ in its last bit.
      for (size_t i = 0; i < y.size(); ++i) {
        ASSERT_FALSE(std::isnan(y[i])) << i;
        ASSERT_LE(std::fabs(y[i] - cy[i]), 2.5e-7f * std::fabs(cy[i])) << "width " << width << " element " << i;
      }
    }
  }
}

TEST(CudaOps, RopeGivesTheCpuBits) {
  PLUMB_REQUIRE_CUDA(gpu);
  auto cpu = make_backend("cpu", 1);
  struct Case { int64_t n_heads, head_dim, n_rot, pos0, n; };
  for (const Case c : {Case{3, 64, 64, 0, 1}, Case{5, 48, 32, 9, 7}, Case{4, 128, 128, 30, 13}}) {
    const RopeTable table = RopeTable::make(64, c.n_rot, 10000.0f, 1.0f, {});
    ASSERT_TRUE((*cpu)->bind_rope(table).ok());
    ASSERT_TRUE(gpu->bind_rope(table).ok());
    const std::vector<int32_t> ids(static_cast<size_t>(c.n), 0);
    (*cpu)->set_batch(ids.data(), c.n, c.pos0);
    gpu->set_batch(ids.data(), c.n, c.pos0);
    std::vector<float> x = random_values(static_cast<size_t>(c.n * c.n_heads * c.head_dim), 9);
    float* gx = put(*gpu, x);
    (*cpu)->rope(x.data(), c.n, c.n_heads, c.head_dim);
    gpu->rope(gx, c.n, c.n_heads, c.head_dim);
    EXPECT_TRUE(same_bits(get(*gpu, gx, x.size()), x)) << c.n_heads << " heads of " << c.head_dim;
  }
}

// KV store and attention, F16 and F32 caches, GQA groups of 1, 2 and 3, a prefix already cached.
TEST(CudaOps, AttentionGivesTheCpuBits) {
  PLUMB_REQUIRE_CUDA(gpu);
  auto cpu_r = make_backend("cpu", 1);
  Backend& cpu = **cpu_r;
  struct Case { int64_t n_head, n_head_kv, head_dim, prefix, n; CacheType type; };
  // Over 128 positions: more than one staged tile of keys and values; head dims up to 256, those
  // whose F16 tiles are loaded a tile ahead (64, 128) and the others. Many blocks (heads x tokens
  // over twice the multiprocessors) whose query heads share a KV head, head dims up to 64: a block
  // a KV head (groups 3, 4, 8; F16 and F32). Contexts of several chunks (backend/attention_chunk.h):
  // few blocks give each chunk a block of its own (up to 16 chunks; tokens of one and of two
  // chunks in one launch). Many rows (heads x tokens over twice the multiprocessors) go through
  // the tiled prompt kernel (attention_tiled.cu) where their head dims are multiples of 8 up to
  // 128: groups of 1 to 8, tiles of tokens cut by the end of the batch, up to 11 chunks, and a
  // batch whose chunk results outgrow one launch's scratch (64 x 11 chunks x 200 tokens).
  const Case cases[] = {{6, 2, 64, 0, 1, CacheType::F16},     {6, 3, 40, 9, 7, CacheType::F16},
                        {6, 6, 64, 33, 13, CacheType::F32},   {14, 2, 64, 100, 1, CacheType::F16},
                        {8, 8, 128, 0, 37, CacheType::F32},   {4, 1, 256, 290, 3, CacheType::F16},
                        {8, 2, 128, 383, 1, CacheType::F16},  {4, 2, 96, 250, 9, CacheType::F16},
                        {6, 2, 64, 300, 5, CacheType::F16},   {4, 4, 128, 140, 2, CacheType::F32},
                        {8, 2, 64, 200, 40, CacheType::F16},  {8, 2, 64, 700, 1, CacheType::F16},
                        {4, 2, 128, 1000, 3, CacheType::F16}, {6, 3, 40, 650, 2, CacheType::F16},
                        {32, 4, 64, 150, 20, CacheType::F16}, {16, 2, 128, 0, 140, CacheType::F16},
                        {24, 8, 40, 100, 30, CacheType::F16}, {12, 4, 64, 60, 50, CacheType::F32},
                        {32, 4, 64, 4000, 1, CacheType::F16}, {32, 8, 128, 1500, 2, CacheType::F16},
                        {4, 4, 128, 520, 1, CacheType::F32},  {14, 2, 64, 1100, 6, CacheType::F16},
                        {8, 2, 64, 600, 40, CacheType::F16},  {8, 4, 64, 10, 70, CacheType::F32},
                        {64, 8, 128, 2600, 200, CacheType::F16}};
  for (const Case& c : cases) {
    const int64_t n_ctx = std::max<int64_t>(401, c.prefix + c.n), kv_width = c.n_head_kv * c.head_dim;
    auto ccache = cpu.make_kv_cache(2, n_ctx, kv_width, kv_width, c.type);
    auto gcache = gpu->make_kv_cache(2, n_ctx, kv_width, kv_width, c.type);
    ASSERT_TRUE(ccache.ok() && gcache.ok());
    const AttentionShape shape{c.n_head, c.n_head_kv, c.head_dim, c.head_dim, 1.0f / std::sqrt(float(c.head_dim))};
    std::vector<float> cout, gout;
    // Two batches: the prefix, then the tokens under test, into layer 1 of the cache.
    for (auto [pos0, n] : {std::pair<int64_t, int64_t>{0, c.prefix}, {c.prefix, c.n}}) {
      if (n == 0) continue;
      const std::vector<int32_t> ids(static_cast<size_t>(n), 0);
      const std::vector<float> k = random_values(static_cast<size_t>(n * kv_width), static_cast<uint32_t>(11 + pos0), 2.0f);
      const std::vector<float> v = random_values(static_cast<size_t>(n * kv_width), static_cast<uint32_t>(12 + pos0));
      const std::vector<float> q = random_values(static_cast<size_t>(n * c.n_head * c.head_dim), static_cast<uint32_t>(13 + pos0), 2.0f);
      cpu.set_batch(ids.data(), n, pos0);
      gpu->set_batch(ids.data(), n, pos0);
      cpu.kv_store(**ccache, 1, /*run=*/0, k.data(), v.data());
      cout.assign(q.size(), 0.0f);
      cpu.attention(**ccache, 1, /*run=*/0, q.data(), shape, cout.data());
      float* gk = put(*gpu, k);
      float* gv = put(*gpu, v);
      float* gq = put(*gpu, q);
      float* go = poisoned(*gpu, q.size());
      gpu->kv_store(**gcache, 1, /*run=*/0, gk, gv);
      gpu->attention(**gcache, 1, /*run=*/0, gq, shape, go);
      gout = get(*gpu, go, q.size());
    }
    EXPECT_TRUE(same_bits(gout, cout)) << c.n_head << "/" << c.n_head_kv << " heads of " << c.head_dim << ", "
                                       << c.prefix << " cached + " << c.n;
  }
}

// rope_store (RoPE of q and k and the KV store in one launch) against the CPU's three ops: q, k
// and the attention that reads the cache give the CPU's bits.
TEST(CudaOps, RopeStoreGivesTheCpuBits) {
  PLUMB_REQUIRE_CUDA(gpu);
  auto cpu_r = make_backend("cpu", 1);
  Backend& cpu = **cpu_r;
  struct Case { int64_t n_head, n_head_kv, head_dim, n_rot, pos0, n; CacheType type; };
  const Case cases[] = {{6, 2, 64, 64, 0, 5, CacheType::F16}, {4, 4, 32, 16, 7, 1, CacheType::F32},
                        {14, 2, 64, 64, 30, 9, CacheType::F16}};
  for (const Case& c : cases) {
    const int64_t n_ctx = 64, kv_width = c.n_head_kv * c.head_dim;
    const RopeTable table = RopeTable::make(n_ctx, c.n_rot, 10000.0f, 1.0f, {});
    ASSERT_TRUE(cpu.bind_rope(table).ok());
    ASSERT_TRUE(gpu->bind_rope(table).ok());
    auto ccache = cpu.make_kv_cache(1, n_ctx, kv_width, kv_width, c.type);
    auto gcache = gpu->make_kv_cache(1, n_ctx, kv_width, kv_width, c.type);
    ASSERT_TRUE(ccache.ok() && gcache.ok());
    const AttentionShape shape{c.n_head, c.n_head_kv, c.head_dim, c.head_dim, 1.0f / std::sqrt(float(c.head_dim))};
    const std::vector<int32_t> ids(static_cast<size_t>(c.pos0 + c.n), 0);
    std::vector<float> q, k, att;
    float *gq = nullptr, *gk = nullptr, *gatt = nullptr;
    // The prefix through the CPU's ops on both backends (so both caches hold it), then the tokens under test.
    for (auto [pos0, n, fused] : {std::tuple<int64_t, int64_t, bool>{0, c.pos0, false}, {c.pos0, c.n, true}}) {
      if (n == 0) continue;
      q = random_values(static_cast<size_t>(n * c.n_head * c.head_dim), static_cast<uint32_t>(40 + pos0), 2.0f);
      k = random_values(static_cast<size_t>(n * kv_width), static_cast<uint32_t>(41 + pos0), 2.0f);
      const std::vector<float> v = random_values(static_cast<size_t>(n * kv_width), static_cast<uint32_t>(42 + pos0));
      cpu.set_batch(ids.data(), n, pos0);
      gpu->set_batch(ids.data(), n, pos0);
      gq = put(*gpu, q), gk = put(*gpu, k);
      float* gv = put(*gpu, v);
      cpu.rope(q.data(), n, c.n_head, c.head_dim);
      cpu.rope(k.data(), n, c.n_head_kv, c.head_dim);
      cpu.kv_store(**ccache, 0, /*run=*/0, k.data(), v.data());
      if (fused) {
        KvCache* const caches[] = {gcache->get()};
        gpu->rope_store(caches, 0, n, gq, gk, gv, shape);
      } else {
        gpu->rope(gq, n, c.n_head, c.head_dim);
        gpu->rope(gk, n, c.n_head_kv, c.head_dim);
        gpu->kv_store(**gcache, 0, /*run=*/0, gk, gv);
      }
      att.assign(q.size(), 0.0f);
      cpu.attention(**ccache, 0, /*run=*/0, q.data(), shape, att.data());
      gatt = poisoned(*gpu, q.size());
      gpu->attention(**gcache, 0, /*run=*/0, gq, shape, gatt);
    }
    const std::string what = std::to_string(c.n_head) + "/" + std::to_string(c.n_head_kv) + " heads, " +
                             std::to_string(c.pos0) + " cached + " + std::to_string(c.n);
    EXPECT_TRUE(same_bits(get(*gpu, gq, q.size()), q)) << "q, " << what;
    EXPECT_TRUE(same_bits(get(*gpu, gk, k.size()), k)) << "k, " << what;
    EXPECT_TRUE(same_bits(get(*gpu, gatt, att.size()), att)) << "attention over the cache, " << what;
  }
}

TEST(CudaOps, SwigluAndAddGiveTheCpuBits) {
  PLUMB_REQUIRE_CUDA(gpu);
  auto cpu = make_backend("cpu", 1);
  std::vector<float> g = random_values(100003, 21, 8.0f);
  const std::vector<float> u = random_values(g.size(), 22);
  // The exp's edges: overflow, underflow, zero, infinities.
  const float edges[] = {-200.0f, -104.5f, -88.8f, -0.0f, 0.0f, 1e-30f, 88.7f, 120.0f,
                         std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()};
  for (size_t i = 0; i < std::size(edges); ++i) g[i] = edges[i];
  std::vector<float> cs(g.size()), ca(g.size());
  (*cpu)->swiglu(g.data(), u.data(), static_cast<int64_t>(g.size()), cs.data());
  (*cpu)->add(g.data(), u.data(), static_cast<int64_t>(g.size()), ca.data());
  float* gg = put(*gpu, g);
  float* gu = put(*gpu, u);
  float* gs = poisoned(*gpu, g.size());
  float* ga = poisoned(*gpu, g.size());
  gpu->swiglu(gg, gu, static_cast<int64_t>(g.size()), gs);
  gpu->add(gg, gu, static_cast<int64_t>(g.size()), ga);
  const std::vector<float> s = get(*gpu, gs, g.size());
  // silu(-inf) * u is NaN on both: compare those elements by class, the rest by bits.
  std::vector<float> s_cmp = s, cs_cmp = cs;
  for (size_t i = 0; i < s.size(); ++i) {
    if (std::isnan(cs[i])) {
      EXPECT_TRUE(std::isnan(s[i])) << i;
      s_cmp[i] = cs_cmp[i] = 0.0f;
    }
  }
  EXPECT_TRUE(same_bits(s_cmp, cs_cmp)) << "swiglu";
  EXPECT_TRUE(same_bits(get(*gpu, ga, g.size()), ca)) << "add";
}

}  // namespace
}  // namespace plumb::test
