// GGUF v3 writer: metadata in insertion order, tensor infos with offsets aligned to
// `general.alignment` (default 32), zero padding, then the tensor data. Writes go to a
// temporary file next to the output (util/output_file.h), renamed into place when complete.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>

#include "gguf/gguf.h"
#include "util/output_file.h"

namespace plumb::gguf {

namespace {

// llama.cpp's GGML_MAX_NAME is 64 bytes including the terminator.
constexpr size_t kMaxTensorName = 63;

using Sink = std::function<Status(const uint8_t* bytes, size_t n)>;

class Encoder {
 public:
  std::vector<uint8_t> out;

  template <class T>
  void put(T v) {
    const size_t at = out.size();
    out.resize(at + sizeof(T));
    std::memcpy(out.data() + at, &v, sizeof(T));
  }
  void put_string(std::string_view s) {
    put<uint64_t>(s.size());
    out.insert(out.end(), s.begin(), s.end());
  }

  // The payload of `v` (without its type tag), checking it holds what its type says.
  Status put_value(const std::string& key, const Value& v, int depth) {
    auto unsigned_fits = [&](uint64_t max) -> Status {
      if (v.u64 > max) {
        return Status::errorf("gguf writer: key '%s': value %llu does not fit in %s", key.c_str(),
                              static_cast<unsigned long long>(v.u64), value_type_name(v.type));
      }
      return Status();
    };
    auto signed_fits = [&](int64_t lo, int64_t hi) -> Status {
      if (v.i64 < lo || v.i64 > hi) {
        return Status::errorf("gguf writer: key '%s': value %lld does not fit in %s", key.c_str(),
                              static_cast<long long>(v.i64), value_type_name(v.type));
      }
      return Status();
    };
    switch (v.type) {
      case ValueType::UINT8:
        PLUMB_RETURN_IF_ERROR(unsigned_fits(UINT8_MAX));
        put<uint8_t>(static_cast<uint8_t>(v.u64));
        return Status();
      case ValueType::UINT16:
        PLUMB_RETURN_IF_ERROR(unsigned_fits(UINT16_MAX));
        put<uint16_t>(static_cast<uint16_t>(v.u64));
        return Status();
      case ValueType::UINT32:
        PLUMB_RETURN_IF_ERROR(unsigned_fits(UINT32_MAX));
        put<uint32_t>(static_cast<uint32_t>(v.u64));
        return Status();
      case ValueType::UINT64:
        put<uint64_t>(v.u64);
        return Status();
      case ValueType::BOOL:
        PLUMB_RETURN_IF_ERROR(unsigned_fits(1));
        put<uint8_t>(static_cast<uint8_t>(v.u64));
        return Status();
      case ValueType::INT8:
        PLUMB_RETURN_IF_ERROR(signed_fits(INT8_MIN, INT8_MAX));
        put<int8_t>(static_cast<int8_t>(v.i64));
        return Status();
      case ValueType::INT16:
        PLUMB_RETURN_IF_ERROR(signed_fits(INT16_MIN, INT16_MAX));
        put<int16_t>(static_cast<int16_t>(v.i64));
        return Status();
      case ValueType::INT32:
        PLUMB_RETURN_IF_ERROR(signed_fits(INT32_MIN, INT32_MAX));
        put<int32_t>(static_cast<int32_t>(v.i64));
        return Status();
      case ValueType::INT64:
        put<int64_t>(v.i64);
        return Status();
      case ValueType::FLOAT32:
        put<float>(static_cast<float>(v.f64));
        return Status();
      case ValueType::FLOAT64:
        put<double>(v.f64);
        return Status();
      case ValueType::STRING:
        put_string(v.str);
        return Status();
      case ValueType::ARRAY: {
        if (depth + 1 > kMaxArrayDepth) {
          return Status::errorf("gguf writer: key '%s': arrays nested deeper than %d levels",
                                key.c_str(), kMaxArrayDepth);
        }
        if (static_cast<uint32_t>(v.array_type) > static_cast<uint32_t>(ValueType::FLOAT64)) {
          return Status::errorf("gguf writer: key '%s': unknown array element type %u",
                                key.c_str(), static_cast<uint32_t>(v.array_type));
        }
        put<uint32_t>(static_cast<uint32_t>(v.array_type));
        put<uint64_t>(v.array.size());
        for (size_t i = 0; i < v.array.size(); ++i) {
          if (v.array[i].type != v.array_type) {
            return Status::errorf(
                "gguf writer: key '%s': array element %zu has type %s in an array of %s",
                key.c_str(), i, value_type_name(v.array[i].type), value_type_name(v.array_type));
          }
          PLUMB_RETURN_IF_ERROR(put_value(key, v.array[i], depth + 1));
        }
        return Status();
      }
    }
    return Status::errorf("gguf writer: key '%s': unknown value type %u", key.c_str(),
                          static_cast<uint32_t>(v.type));
  }
};

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

// Byte size of a tensor of `type` and shape `ne`, or an error naming the tensor.
Result<size_t> tensor_nbytes(const std::string& name, TensorType type,
                             const std::vector<int64_t>& ne) {
  if (name.empty() || name.size() > kMaxTensorName) {
    return Status::errorf("gguf writer: tensor name '%s' must be 1 to %zu bytes long",
                          name.c_str(), kMaxTensorName);
  }
  if (ne.empty() || ne.size() > static_cast<size_t>(kMaxDims)) {
    return Status::errorf("gguf writer: tensor '%s' has %zu dimensions, expected 1 to %d",
                          name.c_str(), ne.size(), kMaxDims);
  }
  const TypeTraits& traits = type_traits(type);
  int64_t rows = 1;
  int64_t elements = 1;
  for (size_t d = 0; d < ne.size(); ++d) {
    // ggml divides by each dimension when it checks a shape, so an empty one would crash it.
    if (ne[d] < 1) {
      return Status::errorf("gguf writer: tensor '%s' has ne[%zu] = %lld, expected at least 1",
                            name.c_str(), d, static_cast<long long>(ne[d]));
    }
    if (__builtin_mul_overflow(elements, ne[d], &elements) ||
        (d > 0 && __builtin_mul_overflow(rows, ne[d], &rows))) {
      return Status::errorf("gguf writer: tensor '%s' element count overflows", name.c_str());
    }
  }
  if (ne[0] % traits.block_size != 0) {
    return Status::errorf("gguf writer: tensor '%s' row length %lld is not a multiple of %s's "
                          "block size %lld",
                          name.c_str(), static_cast<long long>(ne[0]), traits.name,
                          static_cast<long long>(traits.block_size));
  }
  uint64_t row_bytes = 0;
  uint64_t nbytes = 0;
  if (__builtin_mul_overflow(static_cast<uint64_t>(ne[0] / traits.block_size),
                             static_cast<uint64_t>(traits.type_size), &row_bytes) ||
      __builtin_mul_overflow(row_bytes, static_cast<uint64_t>(rows), &nbytes)) {
    return Status::errorf("gguf writer: tensor '%s' byte size overflows", name.c_str());
  }
  return static_cast<size_t>(nbytes);
}

}  // namespace

void Writer::set(const std::string& key, Value value) {
  for (auto& [k, v] : metadata_) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  metadata_.emplace_back(key, std::move(value));
}

void Writer::remove(const std::string& key) {
  for (auto it = metadata_.begin(); it != metadata_.end(); ++it) {
    if (it->first == key) {
      metadata_.erase(it);
      return;
    }
  }
}

const Value* Writer::find(std::string_view key) const {
  for (const auto& [k, v] : metadata_) {
    if (k == key) return &v;
  }
  return nullptr;
}

void Writer::copy_metadata_from(const File& file) {
  for (const auto& [k, v] : file.metadata()) {
    if (k.rfind("GGUF.", 0) == 0) continue;
    set(k, v);
  }
}

Status Writer::add_tensor(const std::string& name, TensorType type, const std::vector<int64_t>& ne,
                          const void* data, size_t nbytes) {
  for (const PendingTensor& t : tensors_) {
    if (t.name == name) return Status::errorf("gguf writer: duplicate tensor name '%s'", name.c_str());
  }
  PLUMB_ASSIGN_OR_RETURN(size_t expected, tensor_nbytes(name, type, ne));
  if (nbytes != expected) {
    return Status::errorf("gguf writer: tensor '%s' (%s, %zu dims) needs %zu bytes, got %zu",
                          name.c_str(), type_name(type), ne.size(), expected, nbytes);
  }
  if (nbytes > 0 && data == nullptr) {
    return Status::errorf("gguf writer: tensor '%s' has no data", name.c_str());
  }
  PendingTensor t{name, type, ne, nbytes, {}, nullptr};
  const uint8_t* bytes = static_cast<const uint8_t*>(data);
  t.bytes.assign(bytes, bytes + nbytes);
  tensors_.push_back(std::move(t));
  return Status();
}

Status Writer::add_tensor_deferred(const std::string& name, TensorType type,
                                   const std::vector<int64_t>& ne,
                                   std::function<Status(uint8_t* dst, size_t nbytes)> fill) {
  for (const PendingTensor& t : tensors_) {
    if (t.name == name) return Status::errorf("gguf writer: duplicate tensor name '%s'", name.c_str());
  }
  if (!fill) return Status::errorf("gguf writer: tensor '%s' has no fill function", name.c_str());
  PLUMB_ASSIGN_OR_RETURN(size_t nbytes, tensor_nbytes(name, type, ne));
  tensors_.push_back(PendingTensor{name, type, ne, nbytes, {}, std::move(fill)});
  return Status();
}

uint32_t Writer::alignment() const {
  const Value* v = find("general.alignment");
  if (v == nullptr || !v->is_integer()) return kDefaultAlignment;
  const int64_t a = v->as_int();
  if (a <= 0 || a > UINT32_MAX || (a & (a - 1)) != 0) return 0;  // write() reports it
  return static_cast<uint32_t>(a);
}

Status Writer::write_to(const std::function<Status(const uint8_t*, size_t)>& sink) const {
  const uint32_t align = alignment();
  if (align == 0) {
    return Status::error("gguf writer: general.alignment must be a nonzero power of two");
  }
  Encoder header;
  header.put<uint32_t>(kMagic);
  header.put<uint32_t>(3);
  header.put<uint64_t>(tensors_.size());
  header.put<uint64_t>(metadata_.size());
  for (const auto& [key, value] : metadata_) {
    // ggml reads general.alignment with gguf_get_val_u32, which aborts on any other type.
    const Value as_u32 = key == "general.alignment" ? Value::make_u32(align) : Value();
    const Value& stored = key == "general.alignment" ? as_u32 : value;
    header.put_string(key);
    header.put<uint32_t>(static_cast<uint32_t>(stored.type));
    PLUMB_RETURN_IF_ERROR(header.put_value(key, stored, 0));
  }
  uint64_t offset = 0;
  for (const PendingTensor& t : tensors_) {
    header.put_string(t.name);
    header.put<uint32_t>(static_cast<uint32_t>(t.ne.size()));
    for (int64_t n : t.ne) header.put<uint64_t>(static_cast<uint64_t>(n));
    header.put<uint32_t>(static_cast<uint32_t>(t.type));
    header.put<uint64_t>(offset);
    offset = align_up(offset + t.nbytes, align);
  }
  // Padding goes out in pieces of a fixed buffer: an alignment may be any power of two (ggml
  // sets no limit), and a buffer of its size could be a gigabyte.
  static constexpr uint8_t kZeros[4096] = {};
  const auto pad_to = [&](uint64_t done) {
    for (uint64_t pad = align_up(done, align) - done; pad > 0;) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(pad, sizeof kZeros));
      PLUMB_RETURN_IF_ERROR(sink(kZeros, n));
      pad -= n;
    }
    return Status();
  };
  PLUMB_RETURN_IF_ERROR(sink(header.out.data(), header.out.size()));
  PLUMB_RETURN_IF_ERROR(pad_to(header.out.size()));

  std::vector<uint8_t> scratch;
  for (const PendingTensor& t : tensors_) {
    const uint8_t* bytes = t.bytes.data();
    if (t.fill) {
      scratch.assign(t.nbytes, 0);
      PLUMB_RETURN_IF_ERROR(t.fill(scratch.data(), t.nbytes).with_context(
          "gguf writer: producing tensor '" + t.name + "'"));
      bytes = scratch.data();
    }
    if (t.nbytes > 0) PLUMB_RETURN_IF_ERROR(sink(bytes, t.nbytes));
    PLUMB_RETURN_IF_ERROR(pad_to(t.nbytes));
  }
  return Status();
}

Result<std::vector<uint8_t>> Writer::serialize() const {
  std::vector<uint8_t> out;
  Status s = write_to([&](const uint8_t* bytes, size_t n) {
    out.insert(out.end(), bytes, bytes + n);
    return Status();
  });
  if (!s.ok()) return s;
  return out;
}

Status Writer::write(const std::string& path) const {
  PLUMB_ASSIGN_OR_RETURN(std::unique_ptr<OutputFile> out, OutputFile::create(path));
  PLUMB_RETURN_IF_ERROR(write_to([&](const uint8_t* bytes, size_t n) { return out->write(bytes, n); }));
  return out->commit();
}

}  // namespace plumb::gguf
