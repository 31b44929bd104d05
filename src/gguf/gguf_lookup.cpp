// Typed metadata look-ups on a parsed File, with errors naming the key, the file and the
// expected and found types.
#include <limits>

#include "gguf/gguf.h"

namespace plumb::gguf {

namespace {

std::string key_str(std::string_view key) { return std::string(key); }

Status missing(const File& f, std::string_view key) {
  return Status::errorf("%s: metadata key '%s' not found", f.path().c_str(), key_str(key).c_str());
}

Status wrong_type(const File& f, std::string_view key, const char* expected, const Value& v) {
  std::string found = value_type_name(v.type);
  if (v.type == ValueType::ARRAY) found += std::string(" of ") + value_type_name(v.array_type);
  return Status::errorf("%s: metadata key '%s' has type %s, expected %s", f.path().c_str(),
                        key_str(key).c_str(), found.c_str(), expected);
}

bool is_unsigned(ValueType t) {
  return t == ValueType::UINT8 || t == ValueType::UINT16 || t == ValueType::UINT32 ||
         t == ValueType::UINT64;
}

// Integer value within [lo, hi]; false when it does not fit.
bool integer_in_range(const Value& v, int64_t lo, int64_t hi, int64_t* out) {
  if (is_unsigned(v.type)) {
    if (v.u64 > static_cast<uint64_t>(hi)) return false;
    *out = static_cast<int64_t>(v.u64);
    return true;
  }
  if (v.i64 < lo || v.i64 > hi) return false;
  *out = v.i64;
  return true;
}

}  // namespace

Result<std::string> File::get_string(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) return missing(*this, key);
  if (v->type != ValueType::STRING) return wrong_type(*this, key, "STRING", *v);
  return v->str;
}

Result<uint32_t> File::get_u32(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) return missing(*this, key);
  if (!v->is_integer()) return wrong_type(*this, key, "an integer", *v);
  int64_t out = 0;
  if (!integer_in_range(*v, 0, std::numeric_limits<uint32_t>::max(), &out)) {
    return Status::errorf("%s: metadata key '%s' = %s does not fit in a u32", path_.c_str(),
                          key_str(key).c_str(),
                          is_unsigned(v->type) ? std::to_string(v->u64).c_str()
                                               : std::to_string(v->i64).c_str());
  }
  return static_cast<uint32_t>(out);
}

Result<int64_t> File::get_int(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) return missing(*this, key);
  if (!v->is_integer()) return wrong_type(*this, key, "an integer", *v);
  int64_t out = 0;
  if (!integer_in_range(*v, std::numeric_limits<int64_t>::min(),
                        std::numeric_limits<int64_t>::max(), &out)) {
    return Status::errorf("%s: metadata key '%s' = %llu does not fit in an int64", path_.c_str(),
                          key_str(key).c_str(), static_cast<unsigned long long>(v->u64));
  }
  return out;
}

Result<float> File::get_f32(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) return missing(*this, key);
  if (!v->is_float()) return wrong_type(*this, key, "FLOAT32", *v);
  return static_cast<float>(v->f64);
}

Result<bool> File::get_bool(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) return missing(*this, key);
  if (v->type != ValueType::BOOL) return wrong_type(*this, key, "BOOL", *v);
  return v->u64 != 0;
}

Result<std::vector<std::string>> File::get_string_array(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) return missing(*this, key);
  if (v->type != ValueType::ARRAY || v->array_type != ValueType::STRING) {
    return wrong_type(*this, key, "ARRAY of STRING", *v);
  }
  std::vector<std::string> out;
  out.reserve(v->array.size());
  for (const Value& item : v->array) out.push_back(item.str);
  return out;
}

Result<std::vector<float>> File::get_f32_array(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) return missing(*this, key);
  if (v->type != ValueType::ARRAY ||
      (v->array_type != ValueType::FLOAT32 && v->array_type != ValueType::FLOAT64)) {
    return wrong_type(*this, key, "ARRAY of FLOAT32", *v);
  }
  std::vector<float> out;
  out.reserve(v->array.size());
  for (const Value& item : v->array) out.push_back(static_cast<float>(item.f64));
  return out;
}

Result<std::vector<int32_t>> File::get_i32_array(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) return missing(*this, key);
  Value probe;
  probe.type = v->array_type;
  if (v->type != ValueType::ARRAY || !probe.is_integer()) {
    return wrong_type(*this, key, "ARRAY of an integer type", *v);
  }
  std::vector<int32_t> out;
  out.reserve(v->array.size());
  for (size_t i = 0; i < v->array.size(); ++i) {
    int64_t x = 0;
    if (!integer_in_range(v->array[i], std::numeric_limits<int32_t>::min(),
                          std::numeric_limits<int32_t>::max(), &x)) {
      return Status::errorf("%s: metadata key '%s' element %zu does not fit in an int32",
                            path_.c_str(), key_str(key).c_str(), i);
    }
    out.push_back(static_cast<int32_t>(x));
  }
  return out;
}

Result<uint32_t> File::get_u32_or(std::string_view key, uint32_t fallback) const {
  if (find(key) == nullptr) return fallback;
  return get_u32(key);
}

Result<float> File::get_f32_or(std::string_view key, float fallback) const {
  if (find(key) == nullptr) return fallback;
  return get_f32(key);
}

Result<bool> File::get_bool_or(std::string_view key, bool fallback) const {
  if (find(key) == nullptr) return fallback;
  return get_bool(key);
}

Result<std::string> File::get_string_or(std::string_view key, std::string fallback) const {
  if (find(key) == nullptr) return fallback;
  return get_string(key);
}

}  // namespace plumb::gguf
