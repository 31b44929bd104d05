// Writer -> reader round trips: every metadata value type, nested and string arrays,
// alignment, deferred tensors, atomic file writes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "gguf/gguf.h"
#include "test_util.h"

namespace plumb::gguf {
namespace {

Value scalar_u(ValueType t, uint64_t v) {
  Value out;
  out.type = t;
  out.u64 = v;
  return out;
}
Value scalar_i(ValueType t, int64_t v) {
  Value out;
  out.type = t;
  out.i64 = v;
  return out;
}
Value scalar_f64(double v) {
  Value out;
  out.type = ValueType::FLOAT64;
  out.f64 = v;
  return out;
}

void expect_same(const Value& a, const Value& b, const std::string& where) {
  SCOPED_TRACE(where);
  ASSERT_EQ(a.type, b.type);
  switch (a.type) {
    case ValueType::STRING: EXPECT_EQ(a.str, b.str); break;
    case ValueType::FLOAT32:
    case ValueType::FLOAT64: EXPECT_EQ(a.f64, b.f64); break;
    case ValueType::ARRAY:
      ASSERT_EQ(a.array_type, b.array_type);
      ASSERT_EQ(a.array.size(), b.array.size());
      for (size_t i = 0; i < a.array.size(); ++i) {
        expect_same(a.array[i], b.array[i], where + "[" + std::to_string(i) + "]");
      }
      break;
    default:
      EXPECT_EQ(a.u64, b.u64);
      EXPECT_EQ(a.i64, b.i64);
  }
}

// One value of every type, plus arrays of each, an array of strings and nested arrays.
std::vector<std::pair<std::string, Value>> every_kind_of_value() {
  std::vector<std::pair<std::string, Value>> kv = {
      {"t.u8", scalar_u(ValueType::UINT8, 255)},
      {"t.i8", scalar_i(ValueType::INT8, -128)},
      {"t.u16", scalar_u(ValueType::UINT16, 65535)},
      {"t.i16", scalar_i(ValueType::INT16, -32768)},
      {"t.u32", Value::make_u32(4000000000u)},
      {"t.i32", Value::make_i32(-2000000000)},
      {"t.u64", Value::make_u64(~uint64_t{0})},
      {"t.i64", scalar_i(ValueType::INT64, INT64_MIN)},
      {"t.f32", Value::make_f32(0.1f)},
      {"t.f64", scalar_f64(1e-300)},
      {"t.bool", Value::make_bool(true)},
      {"t.str", Value::make_string(std::string("h\xc3\xa9llo\0world\n", 13))},
      {"t.empty_str", Value::make_string("")},
      {"t.strs", Value::make_string_array({"a", "", "long string with spaces", "\xff\xfe"})},
      {"t.f32s", Value::make_f32_array({1.0f, -0.0f, INFINITY, 3.5e-38f})},
      {"t.i32s", Value::make_i32_array({0, -1, INT32_MAX, INT32_MIN})},
      {"t.empty_array", Value::make_array(ValueType::UINT8, {})},
      {"t.bools", Value::make_array(ValueType::BOOL, {Value::make_bool(false), Value::make_bool(true)})},
  };
  std::vector<Value> u8s, i64s, f64s;
  for (int i = 0; i < 5; ++i) {
    u8s.push_back(scalar_u(ValueType::UINT8, i * 50));
    i64s.push_back(scalar_i(ValueType::INT64, -i * 1000000000000LL));
    f64s.push_back(scalar_f64(i / 3.0));
  }
  kv.emplace_back("t.u8s", Value::make_array(ValueType::UINT8, u8s));
  kv.emplace_back("t.i64s", Value::make_array(ValueType::INT64, i64s));
  kv.emplace_back("t.f64s", Value::make_array(ValueType::FLOAT64, f64s));
  Value inner1 = Value::make_i32_array({1, 2, 3});
  Value inner2 = Value::make_i32_array({});
  Value strs = Value::make_string_array({"x", "y"});
  Value nested = Value::make_array(ValueType::ARRAY, {inner1, inner2, strs});
  kv.emplace_back("t.nested", nested);
  kv.emplace_back("t.nested2", Value::make_array(ValueType::ARRAY, {nested, nested}));
  return kv;
}

TEST(GgufRoundTrip, EveryValueType) {
  Writer w;
  const auto kv = every_kind_of_value();
  for (const auto& [k, v] : kv) w.set(k, v);
  auto bytes = w.serialize();
  ASSERT_TRUE(bytes.ok()) << bytes.status().message();
  auto file = File::parse(bytes->data(), bytes->size(), "roundtrip");
  ASSERT_TRUE(file.ok()) << file.status().message();
  const File& f = **file;
  EXPECT_EQ(f.version(), 3u);
  ASSERT_EQ(f.metadata().size(), kv.size());
  for (size_t i = 0; i < kv.size(); ++i) {
    EXPECT_EQ(f.metadata()[i].first, kv[i].first);
    expect_same(f.metadata()[i].second, kv[i].second, kv[i].first);
  }
  EXPECT_EQ(f.get_f32("t.f32").value(), 0.1f);
  EXPECT_EQ(f.get_f32("t.f64").value(), static_cast<float>(1e-300));
  EXPECT_EQ(f.get_bool("t.bool").value(), true);
  EXPECT_EQ(f.get_int("t.i64").value(), INT64_MIN);
  EXPECT_FALSE(f.get_int("t.u64").ok());  // does not fit in int64
  EXPECT_FALSE(f.get_u32("t.i32").ok());  // negative
  EXPECT_EQ(f.get_u32("t.u16").value(), 65535u);
  EXPECT_EQ(f.get_i32_array("t.u8s").value()[4], 200);
  EXPECT_EQ(f.get_string_array("t.strs").value()[3], "\xff\xfe");
  EXPECT_EQ(f.get_f32_array("t.f32s").value()[2], INFINITY);
  auto wrong = f.get_string_array("t.f32s");
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("t.f32s"), std::string::npos);
  EXPECT_NE(wrong.status().message().find("FLOAT32"), std::string::npos);
}

TEST(GgufRoundTrip, TensorsAlignmentAndDeferredData) {
  for (uint32_t alignment : {0u, 1u, 64u, 4096u}) {
    SCOPED_TRACE(alignment);
    Writer w;
    w.set("general.architecture", Value::make_string("llama"));
    if (alignment != 0) w.set("general.alignment", Value::make_u32(alignment));
    std::vector<float> f32(3 * 5);
    for (size_t i = 0; i < f32.size(); ++i) f32[i] = static_cast<float>(i) * 0.5f;
    ASSERT_TRUE(w.add_tensor("a", TensorType::F32, {3, 5}, f32.data(), f32.size() * 4).ok());
    std::vector<uint8_t> q8(2 * 34 * 2, 0x5a);
    ASSERT_TRUE(w.add_tensor("b", TensorType::Q8_0, {64, 2}, q8.data(), q8.size()).ok());
    ASSERT_TRUE(w.add_tensor_deferred("c", TensorType::Q8_1, {32, 1, 1, 3},
                                      [](uint8_t* dst, size_t n) {
                                        for (size_t i = 0; i < n; ++i) dst[i] = uint8_t(i);
                                        return Status();
                                      }).ok());
    std::vector<int32_t> i32 = {7, -7, 1 << 30};
    ASSERT_TRUE(w.add_tensor("d", TensorType::I32, {3}, i32.data(), 12).ok());
    EXPECT_FALSE(w.add_tensor("a", TensorType::F32, {1}, f32.data(), 4).ok());       // duplicate
    EXPECT_FALSE(w.add_tensor("e", TensorType::F32, {3, 5}, f32.data(), 4).ok());    // wrong size
    EXPECT_FALSE(w.add_tensor("e", TensorType::Q8_0, {33}, q8.data(), 34).ok());     // not blocks
    EXPECT_FALSE(w.add_tensor("e", TensorType::F32, {1, 1, 1, 1, 1}, f32.data(), 4).ok());
    EXPECT_FALSE(w.add_tensor("e", TensorType::F32, {4, 0}, f32.data(), 0).ok());  // empty dim
    EXPECT_FALSE(w.add_tensor(std::string(64, 'n'), TensorType::F32, {1}, f32.data(), 4).ok());

    const std::string dir = test::temp_dir("gguf-rt");
    const std::string path = dir + "/out.gguf";
    ASSERT_TRUE(w.write(path).ok());
    EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
    auto file = File::open(path);
    ASSERT_TRUE(file.ok()) << file.status().message();
    const File& f = **file;
    // Read into memory instead of mapped: the same bytes, progress up to the whole file.
    uint64_t last_done = 0, last_total = 0;
    auto read = File::open(path, {.read_into_memory = true, .progress = [&](uint64_t done, uint64_t total) {
                                    last_done = done;
                                    last_total = total;
                                  }});
    ASSERT_TRUE(read.ok()) << read.status().message();
    ASSERT_EQ((*read)->file_size(), f.file_size());
    EXPECT_EQ(std::memcmp((*read)->bytes(), f.bytes(), f.file_size()), 0);
    EXPECT_EQ((*read)->tensors().size(), f.tensors().size());
    EXPECT_EQ(last_done, f.file_size());
    EXPECT_EQ(last_total, f.file_size());
    const uint32_t expect_align = alignment == 0 ? kDefaultAlignment : alignment;
    EXPECT_EQ(f.alignment(), expect_align);
    EXPECT_EQ(f.data_offset() % expect_align, 0u);
    ASSERT_EQ(f.tensors().size(), 4u);
    const TensorInfo* a = f.find_tensor("a");
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a->shape_string(), "[3, 5]");
    EXPECT_EQ(std::memcmp(a->data, f32.data(), 60), 0);
    const TensorInfo* b = f.find_tensor("b");
    EXPECT_EQ(b->type, TensorType::Q8_0);
    EXPECT_EQ(b->nbytes, q8.size());
    EXPECT_EQ(std::memcmp(b->data, q8.data(), q8.size()), 0);
    const TensorInfo* c = f.find_tensor("c");
    EXPECT_EQ(c->type, TensorType::Q8_1);
    EXPECT_EQ(c->n_dims, 4);
    EXPECT_EQ(c->nbytes, 3u * 36u);
    for (size_t i = 0; i < c->nbytes; ++i) ASSERT_EQ(c->data[i], uint8_t(i));
    const TensorInfo* d = f.find_tensor("d");
    EXPECT_EQ(d->type, TensorType::I32);
    EXPECT_EQ(std::memcmp(d->data, i32.data(), 12), 0);
    for (const TensorInfo& t : f.tensors()) EXPECT_EQ(t.offset % expect_align, 0u);
    // serialize() and write() produce the same bytes.
    auto mem = w.serialize();
    ASSERT_TRUE(mem.ok());
    ASSERT_EQ(mem->size(), f.file_size());
    EXPECT_EQ(std::memcmp(mem->data(), f.bytes(), f.file_size()), 0);
    std::filesystem::remove_all(dir);
  }
}

TEST(GgufRoundTrip, EveryTensorType) {
  Writer w;
  std::vector<std::pair<std::string, TensorType>> added;
  for (uint32_t n = 0; n < 64; ++n) {
    const TypeTraits* t = find_type_traits(n);
    if (t == nullptr) continue;
    const int64_t ne0 = t->block_size * 2;
    std::vector<uint8_t> bytes(2 * t->type_size * 3, uint8_t(n));
    const std::string name = std::string("t_") + t->name;
    ASSERT_TRUE(w.add_tensor(name, t->type, {ne0, 3}, bytes.data(), bytes.size()).ok()) << name;
    added.emplace_back(name, t->type);
  }
  auto bytes = w.serialize();
  ASSERT_TRUE(bytes.ok());
  auto file = File::parse(bytes->data(), bytes->size(), "types");
  ASSERT_TRUE(file.ok()) << file.status().message();
  for (const auto& [name, type] : added) {
    const TensorInfo* t = (*file)->find_tensor(name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(t->type, type);
    EXPECT_EQ(t->nbytes, 2 * type_traits(type).type_size * 3);
  }
}

TEST(GgufRoundTrip, SetReplacesInPlaceAndCopyMetadata) {
  Writer w;
  w.set("a", Value::make_u32(1));
  w.set("b", Value::make_u32(2));
  w.set("a", Value::make_string("one"));
  w.remove("b");
  w.set("c", Value::make_bool(false));
  auto bytes = w.serialize();
  ASSERT_TRUE(bytes.ok());
  auto file = File::parse(bytes->data(), bytes->size());
  ASSERT_TRUE(file.ok());
  ASSERT_EQ((*file)->metadata().size(), 2u);
  EXPECT_EQ((*file)->metadata()[0].first, "a");
  EXPECT_EQ((*file)->get_string("a").value(), "one");
  Writer copy;
  copy.copy_metadata_from(**file);
  ASSERT_NE(copy.find("c"), nullptr);
  EXPECT_EQ(copy.find("b"), nullptr);
}

TEST(GgufRoundTrip, WriterRefusesInconsistentValues) {
  Writer w;
  w.set("bad", Value::make_array(ValueType::INT32, {Value::make_string("x")}));
  EXPECT_FALSE(w.serialize().ok());
  Writer w2;
  Value u8;
  u8.type = ValueType::UINT8;
  u8.u64 = 300;
  w2.set("bad", u8);
  EXPECT_FALSE(w2.serialize().ok());
  Writer w3;
  w3.set("general.alignment", Value::make_u32(48));
  EXPECT_FALSE(w3.serialize().ok());
}

TEST(GgufRoundTrip, AlignmentIsAlwaysStoredAsUint32) {
  Writer w;
  w.set("general.alignment", Value::make_u64(64));
  auto bytes = w.serialize();
  ASSERT_TRUE(bytes.ok());
  auto file = File::parse(bytes->data(), bytes->size());
  ASSERT_TRUE(file.ok());
  EXPECT_EQ((*file)->find("general.alignment")->type, ValueType::UINT32);
  EXPECT_EQ((*file)->alignment(), 64u);
}

}  // namespace
}  // namespace plumb::gguf
