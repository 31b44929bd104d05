// Hostile and broken GGUF files built byte by byte: every one must give a clear error (naming
// what is wrong and where), never a crash or a read outside the buffer. CI runs the suites
// named Gguf* and Malformed* under AddressSanitizer.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "gguf/gguf.h"
#include "test_util.h"

namespace plumb::gguf {
namespace {

// Appends little-endian GGUF fields and remembers where each field ends.
class Bytes {
 public:
  std::vector<uint8_t> b;
  std::vector<size_t> boundaries;  // offsets at which a field ends

  Bytes& u8(uint8_t v) { return raw(&v, 1); }
  Bytes& u32(uint32_t v) { return raw(&v, 4); }
  Bytes& u64(uint64_t v) { return raw(&v, 8); }
  Bytes& f32(float v) { return raw(&v, 4); }
  Bytes& str(std::string_view s) {
    u64(s.size());
    return raw(s.data(), s.size());
  }
  Bytes& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    return u32(kMagic).u32(version).u64(n_tensors).u64(n_kv);
  }
  Bytes& pad_to(size_t alignment) {
    while (b.size() % alignment != 0) b.push_back(0);
    boundaries.push_back(b.size());
    return *this;
  }
  Bytes& zeros(size_t n) {
    b.insert(b.end(), n, 0);
    boundaries.push_back(b.size());
    return *this;
  }
  // A tensor info: name, dims, type, offset.
  Bytes& tensor(std::string_view name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset) {
    str(name).u32(static_cast<uint32_t>(ne.size()));
    for (uint64_t n : ne) u64(n);
    return u32(type).u64(offset);
  }

 private:
  Bytes& raw(const void* p, size_t n) {
    const auto* c = static_cast<const uint8_t*>(p);
    b.insert(b.end(), c, c + n);
    boundaries.push_back(b.size());
    return *this;
  }
};

Status parse_bytes(const std::vector<uint8_t>& bytes, size_t size) {
  // A private copy of exactly `size` bytes, so ASan sees any read past the end.
  std::unique_ptr<uint8_t[]> copy(new uint8_t[size > 0 ? size : 1]);
  if (size > 0) std::memcpy(copy.get(), bytes.data(), size);
  auto file = File::parse(size > 0 ? copy.get() : nullptr, size, "test.gguf");
  if (file.ok()) {
    // Touch every tensor byte: the reader promised they lie inside the buffer.
    unsigned sum = 0;
    for (const TensorInfo& t : (*file)->tensors()) {
      for (uint64_t i = 0; i < t.nbytes; ++i) sum += t.data[i];
    }
    (void)sum;
    return Status();
  }
  return file.status();
}
Status parse_bytes(const Bytes& b) { return parse_bytes(b.b, b.b.size()); }

#define EXPECT_PARSE_ERROR(bytes, substring)                                   \
  do {                                                                         \
    Status s_ = parse_bytes(bytes);                                            \
    ASSERT_FALSE(s_.ok()) << "expected an error containing: " << (substring);  \
    EXPECT_NE(s_.message().find(substring), std::string::npos) << s_.message(); \
    EXPECT_NE(s_.message().find("test.gguf"), std::string::npos) << s_.message(); \
  } while (0)

// A small valid file: metadata of several kinds, two tensors; the last tensor ends exactly at
// the end of the file, so every shorter prefix is invalid.
Bytes small_valid_file() {
  Bytes b;
  b.header(2, 5);
  b.str("general.architecture").u32(8).str("llama");
  b.str("general.alignment").u32(4).u32(32);
  b.str("llama.block_count").u32(4).u32(8);
  b.str("tokenizer.ggml.tokens").u32(9).u32(8).u64(3).str("<s>").str("a").str("");
  b.str("nested").u32(9).u32(9).u64(2);
  b.u32(6).u64(1).f32(1.5f);
  b.u32(0).u64(2).u8(1).u8(2);
  b.tensor("w", {32, 2}, 8, 0);      // Q8_0: 2 blocks = 68 bytes, padded to 96
  b.tensor("norm", {8}, 0, 96);      // F32: 32 bytes
  b.pad_to(32);
  b.zeros(96).zeros(32);
  return b;
}

TEST(MalformedGguf, SmallValidFileParses) {
  Bytes b = small_valid_file();
  auto file = File::parse(b.b.data(), b.b.size(), "test.gguf");
  ASSERT_TRUE(file.ok()) << file.status().message();
  EXPECT_EQ((*file)->tensors().size(), 2u);
  EXPECT_EQ((*file)->find("nested")->array[1].array[1].u64, 2u);
}

TEST(MalformedGguf, TruncationAtEveryByte) {
  const Bytes b = small_valid_file();
  for (size_t size = 0; size < b.b.size(); ++size) {
    SCOPED_TRACE(size);
    Status s = parse_bytes(b.b, size);
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.message().find("test.gguf"), std::string::npos) << s.message();
    EXPECT_NE(s.message().find("offset"), std::string::npos) << s.message();
  }
}

TEST(MalformedGguf, TruncationAtEveryFieldBoundaryNamesTheProblem) {
  const Bytes b = small_valid_file();
  for (size_t size : b.boundaries) {
    if (size >= b.b.size()) continue;
    SCOPED_TRACE(size);
    Status s = parse_bytes(b.b, size);
    ASSERT_FALSE(s.ok());
    const std::string& m = s.message();
    const bool explained = m.find("file ends after") != std::string::npos ||
                           m.find("cannot fit") != std::string::npos ||
                           m.find("exceeds the") != std::string::npos ||
                           m.find("past the end of the file") != std::string::npos;
    EXPECT_TRUE(explained) << m;
  }
}

TEST(MalformedGguf, EveryByteMutatedNeverCrashes) {
  const Bytes b = small_valid_file();
  std::vector<uint8_t> copy = b.b;
  for (size_t i = 0; i < copy.size(); ++i) {
    const uint8_t saved = copy[i];
    for (uint8_t v : {uint8_t(0), uint8_t(1), uint8_t(0x7f), uint8_t(0xff), uint8_t(saved ^ 0x80)}) {
      copy[i] = v;
      parse_bytes(copy, copy.size());  // ok or an error; ASan checks the rest
    }
    copy[i] = saved;
  }
}

TEST(MalformedGguf, EmptyAndBadMagic) {
  EXPECT_PARSE_ERROR(Bytes(), "magic");
  Bytes b;
  b.u32(0x46554746).u32(3).u64(0).u64(0);
  EXPECT_PARSE_ERROR(b, "not a GGUF file");
}

TEST(MalformedGguf, UnsupportedVersions) {
  Bytes v1;
  v1.header(0, 0, 1);
  EXPECT_PARSE_ERROR(v1, "version 1 is not supported");
  Bytes v9;
  v9.header(0, 0, 9);
  EXPECT_PARSE_ERROR(v9, "unsupported GGUF version 9");
  Bytes big;
  big.u32(kMagic).u32(__builtin_bswap32(3)).u64(0).u64(0);
  EXPECT_PARSE_ERROR(big, "big-endian");
  Bytes big_magic;
  big_magic.u32(__builtin_bswap32(kMagic)).u32(__builtin_bswap32(3)).u64(0).u64(0);
  EXPECT_PARSE_ERROR(big_magic, "big-endian");
  Bytes v2;
  v2.header(0, 0, 2);
  EXPECT_TRUE(parse_bytes(v2).ok());
}

TEST(MalformedGguf, HugeCounts) {
  for (uint64_t huge : {uint64_t{1} << 63, uint64_t{1} << 60, ~uint64_t{0}, uint64_t{1000}}) {
    SCOPED_TRACE(huge);
    Bytes kv;
    kv.header(0, huge);
    EXPECT_PARSE_ERROR(kv, "metadata count");
    Bytes tensors;
    tensors.header(huge, 0);
    EXPECT_PARSE_ERROR(tensors, "tensor count");
    Bytes array;
    array.header(0, 1).str("k").u32(9).u32(4).u64(huge).u32(1);
    EXPECT_PARSE_ERROR(array, "cannot fit");
    Bytes nested;
    nested.header(0, 1).str("k").u32(9).u32(9).u64(1).u32(8).u64(huge);
    EXPECT_PARSE_ERROR(nested, "cannot fit");
    Bytes key;
    key.header(0, 1).u64(huge).u32(4).u32(0);
    EXPECT_PARSE_ERROR(key, "string length");
    Bytes value;
    value.header(0, 1).str("k").u32(8).u64(huge).str("xyz");
    EXPECT_PARSE_ERROR(value, "string length");
    Bytes array_string;
    array_string.header(0, 1).str("k").u32(9).u32(8).u64(2).str("a").u64(huge);
    EXPECT_PARSE_ERROR(array_string, "element 1");
    Bytes tensor_name;
    tensor_name.header(1, 0).u64(huge).u32(1).u64(32).u32(0).u64(0);
    EXPECT_PARSE_ERROR(tensor_name, "string length");
  }
}

TEST(MalformedGguf, BadValueTypesAndValues) {
  Bytes type;
  type.header(0, 1).str("k").u32(13).u32(0);
  EXPECT_PARSE_ERROR(type, "unknown value type 13");
  Bytes elem;
  elem.header(0, 1).str("k").u32(9).u32(77).u64(0);
  EXPECT_PARSE_ERROR(elem, "unknown value type 77");
  Bytes boolean;
  boolean.header(0, 1).str("flag").u32(7).u8(2);
  EXPECT_PARSE_ERROR(boolean, "bool byte is 2");
  Bytes dup;
  dup.header(0, 2).str("k").u32(4).u32(1).str("k").u32(4).u32(2);
  EXPECT_PARSE_ERROR(dup, "duplicate metadata key");
  // Arrays nested past the limit.
  Bytes deep;
  deep.header(0, 1).str("deep").u32(9);
  for (int i = 0; i < kMaxArrayDepth + 2; ++i) deep.u32(9).u64(1);
  deep.u32(0).u64(0);
  EXPECT_PARSE_ERROR(deep, "nested deeper");
  // Exactly the limit is fine.
  Bytes limit;
  limit.header(0, 1).str("deep").u32(9);
  for (int i = 0; i < kMaxArrayDepth - 1; ++i) limit.u32(9).u64(1);
  limit.u32(0).u64(0);
  EXPECT_TRUE(parse_bytes(limit).ok()) << parse_bytes(limit).message();
}

TEST(MalformedGguf, BadAlignment) {
  for (uint32_t a : {0u, 3u, 48u}) {
    Bytes b;
    b.header(0, 1).str("general.alignment").u32(4).u32(a);
    EXPECT_PARSE_ERROR(b, "power of two");
  }
  Bytes s;
  s.header(0, 1).str("general.alignment").u32(8).str("32");
  EXPECT_PARSE_ERROR(s, "general.alignment");
}

// One tensor info followed by `data_bytes` bytes of data after the aligned header.
Bytes one_tensor(std::vector<uint64_t> ne, uint32_t type, uint64_t offset, size_t data_bytes,
                 std::string_view name = "blk.0.attn_q.weight") {
  Bytes b;
  b.header(1, 0).tensor(name, std::move(ne), type, offset).pad_to(32).zeros(data_bytes);
  return b;
}

TEST(MalformedGguf, TensorInfos) {
  EXPECT_TRUE(parse_bytes(one_tensor({4, 2}, 0, 0, 32)).ok());
  EXPECT_PARSE_ERROR(one_tensor({4, 2}, 0, 0, 31), "ends past the end of the file");
  EXPECT_PARSE_ERROR(one_tensor({4, 2}, 0, 0, 31), "blk.0.attn_q.weight");
  EXPECT_PARSE_ERROR(one_tensor({4, 2}, 0, 64, 64), "ends past the end of the file");
  EXPECT_PARSE_ERROR(one_tensor({4, 2}, 0, ~uint64_t{0} - 31, 32), "overflows 64 bits");
  EXPECT_PARSE_ERROR(one_tensor({4, 2}, 0, uint64_t{1} << 63, 32), "ends past the end of the file");
  EXPECT_PARSE_ERROR(one_tensor({4, 2}, 0, 4, 64), "not a multiple of the alignment");
  EXPECT_PARSE_ERROR(one_tensor({4, 2}, 99, 0, 32), "unknown tensor type 99");
}

// Every type ggml defines is named, with what to do, instead of "unknown tensor type 16"
// (issue 22): the ones plumb does not read, and the repacked layouts ggml removed.
TEST(MalformedGguf, GgmlTypesPlumbDoesNotReadAreNamed) {
  const std::pair<uint32_t, const char*> named[] = {
      {16, "IQ2_XXS (ggml type 16), which plumb does not support"}, {17, "IQ2_XS"}, {18, "IQ3_XXS"},
      {19, "IQ1_S"}, {21, "IQ3_S"}, {22, "IQ2_S"}, {29, "IQ1_M (ggml type 29)"},
      {31, "Q4_0_4_4 (ggml type 31), a layout since removed from ggml"}, {32, "Q4_0_4_8"}, {33, "Q4_0_8_8"},
      {34, "TQ1_0"}, {35, "TQ2_0"}, {36, "IQ4_NL_4_4"}, {37, "IQ4_NL_4_8"}, {38, "IQ4_NL_8_8"},
      {39, "MXFP4 (ggml type 39)"}};
  for (const auto& [number, text] : named) {
    // 256 elements, so that the block size of any type divides the row.
    EXPECT_PARSE_ERROR(one_tensor({256, 1}, number, 0, 4096), text);
    EXPECT_PARSE_ERROR(one_tensor({256, 1}, number, 0, 4096), "Q4_K");  // what plumb does read
  }
  EXPECT_PARSE_ERROR(one_tensor({}, 0, 0, 32), "n_dims is 0");
  EXPECT_PARSE_ERROR(one_tensor({1, 1, 1, 1, 1}, 0, 0, 32), "n_dims is 5");
  EXPECT_PARSE_ERROR(one_tensor({uint64_t{1} << 62, 4}, 0, 0, 32), "overflows int64");
  EXPECT_PARSE_ERROR(one_tensor({uint64_t{1} << 63}, 0, 0, 32), "does not fit in int64");
  EXPECT_PARSE_ERROR(one_tensor({0, uint64_t{1} << 62, 4}, 0, 0, 32), "overflows int64");
  EXPECT_TRUE(parse_bytes(one_tensor({0, uint64_t{1} << 62}, 0, 0, 0)).ok());  // empty tensor
  EXPECT_PARSE_ERROR(one_tensor({uint64_t{1} << 62}, 28, 0, 32), "overflows 64 bits");  // F64
  EXPECT_PARSE_ERROR(one_tensor({33}, 2, 0, 32), "not a multiple of Q4_0's block size 32");
  Bytes dup;
  dup.header(2, 0).tensor("t", {8}, 0, 0).tensor("t", {8}, 0, 32).pad_to(32).zeros(64);
  EXPECT_PARSE_ERROR(dup, "duplicate tensor name");
  // Every known type, including Q8_1 (36-byte blocks) and the integer types.
  for (uint32_t n = 0; n < 64; ++n) {
    const TypeTraits* t = find_type_traits(n);
    if (t == nullptr) continue;
    SCOPED_TRACE(t->name);
    const size_t bytes = t->type_size * 2;
    EXPECT_TRUE(parse_bytes(one_tensor({static_cast<uint64_t>(t->block_size) * 2}, n, 0, bytes)).ok());
    EXPECT_PARSE_ERROR(one_tensor({static_cast<uint64_t>(t->block_size) * 2}, n, 0, bytes - 1),
                       "past the end");
  }
  EXPECT_EQ(find_type_traits(9)->type_size, 36u);
}

TEST(MalformedGguf, OpenReportsThePathAndSystemErrors) {
  const std::string dir = test::temp_dir("gguf-malformed");
  auto missing = File::open(dir + "/missing.gguf");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("missing.gguf"), std::string::npos);
  EXPECT_FALSE(File::open(dir).ok());
  const std::string empty = dir + "/empty.gguf";
  std::ofstream(empty).close();
  auto e = File::open(empty);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("empty.gguf"), std::string::npos);
  const std::string bad = dir + "/bad.gguf";
  const Bytes b = one_tensor({4, 2}, 0, 0, 31);
  std::ofstream(bad, std::ios::binary).write(reinterpret_cast<const char*>(b.b.data()), b.b.size());
  for (const bool read_into_memory : {false, true}) {
    auto t = File::open(bad, {.read_into_memory = read_into_memory, .progress = {}});
    ASSERT_FALSE(t.ok());
    EXPECT_NE(t.status().message().find("bad.gguf: tensor 'blk.0.attn_q.weight' data [offset"),
              std::string::npos)
        << t.status().message();
  }
  EXPECT_FALSE(File::open(empty, {.read_into_memory = true, .progress = {}}).ok());
}

}  // namespace
}  // namespace plumb::gguf
