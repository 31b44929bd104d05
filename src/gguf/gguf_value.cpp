// Metadata values and tensor infos: constructors, type queries, shape formatting.
#include <limits>

#include "gguf/gguf.h"

namespace plumb::gguf {

const char* value_type_name(ValueType t) {
  switch (t) {
    case ValueType::UINT8: return "UINT8";
    case ValueType::INT8: return "INT8";
    case ValueType::UINT16: return "UINT16";
    case ValueType::INT16: return "INT16";
    case ValueType::UINT32: return "UINT32";
    case ValueType::INT32: return "INT32";
    case ValueType::FLOAT32: return "FLOAT32";
    case ValueType::BOOL: return "BOOL";
    case ValueType::STRING: return "STRING";
    case ValueType::ARRAY: return "ARRAY";
    case ValueType::UINT64: return "UINT64";
    case ValueType::INT64: return "INT64";
    case ValueType::FLOAT64: return "FLOAT64";
  }
  return "UNKNOWN";
}

Value Value::make_u32(uint32_t v) {
  Value out;
  out.type = ValueType::UINT32;
  out.u64 = v;
  return out;
}

Value Value::make_i32(int32_t v) {
  Value out;
  out.type = ValueType::INT32;
  out.i64 = v;
  return out;
}

Value Value::make_u64(uint64_t v) {
  Value out;
  out.type = ValueType::UINT64;
  out.u64 = v;
  return out;
}

Value Value::make_f32(float v) {
  Value out;
  out.type = ValueType::FLOAT32;
  out.f64 = v;
  return out;
}

Value Value::make_bool(bool v) {
  Value out;
  out.type = ValueType::BOOL;
  out.u64 = v ? 1 : 0;
  return out;
}

Value Value::make_string(std::string v) {
  Value out;
  out.type = ValueType::STRING;
  out.str = std::move(v);
  return out;
}

Value Value::make_array(ValueType element_type, std::vector<Value> items) {
  Value out;
  out.type = ValueType::ARRAY;
  out.array_type = element_type;
  out.array = std::move(items);
  return out;
}

Value Value::make_string_array(const std::vector<std::string>& items) {
  std::vector<Value> values;
  values.reserve(items.size());
  for (const std::string& s : items) values.push_back(make_string(s));
  return make_array(ValueType::STRING, std::move(values));
}

Value Value::make_f32_array(const std::vector<float>& items) {
  std::vector<Value> values;
  values.reserve(items.size());
  for (float f : items) values.push_back(make_f32(f));
  return make_array(ValueType::FLOAT32, std::move(values));
}

Value Value::make_i32_array(const std::vector<int32_t>& items) {
  std::vector<Value> values;
  values.reserve(items.size());
  for (int32_t v : items) values.push_back(make_i32(v));
  return make_array(ValueType::INT32, std::move(values));
}

bool Value::is_integer() const {
  switch (type) {
    case ValueType::UINT8:
    case ValueType::INT8:
    case ValueType::UINT16:
    case ValueType::INT16:
    case ValueType::UINT32:
    case ValueType::INT32:
    case ValueType::UINT64:
    case ValueType::INT64:
      return true;
    default:
      return false;
  }
}

bool Value::is_float() const { return type == ValueType::FLOAT32 || type == ValueType::FLOAT64; }

int64_t Value::as_int() const {
  switch (type) {
    case ValueType::UINT8:
    case ValueType::UINT16:
    case ValueType::UINT32:
    case ValueType::UINT64:
      return u64 > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
                 ? std::numeric_limits<int64_t>::max()
                 : static_cast<int64_t>(u64);
    case ValueType::INT8:
    case ValueType::INT16:
    case ValueType::INT32:
    case ValueType::INT64:
      return i64;
    default:
      return 0;
  }
}

double Value::as_double() const {
  if (is_float()) return f64;
  if (!is_integer()) return 0.0;
  switch (type) {
    case ValueType::UINT8:
    case ValueType::UINT16:
    case ValueType::UINT32:
    case ValueType::UINT64:
      return static_cast<double>(u64);
    default:
      return static_cast<double>(i64);
  }
}

std::string TensorInfo::shape_string() const {
  std::string out = "[";
  for (int i = 0; i < n_dims; ++i) {
    if (i > 0) out += ", ";
    out += std::to_string(ne[i]);
  }
  out += "]";
  return out;
}

}  // namespace plumb::gguf
