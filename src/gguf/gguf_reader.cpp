// GGUF reader: maps a file and parses its header, metadata and tensor infos, checking every
// count, length and offset against the bytes actually present before using it.
//
// Layout (little-endian): magic u32, version u32, n_tensors u64, n_kv u64, then n_kv entries
// (key string, value type u32, value), then n_tensors infos (name string, n_dims u32,
// ne u64[n_dims], type u32, offset u64), padding to the alignment, then the data section.
// A string is a u64 byte length followed by the bytes (no terminator).
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <unordered_set>

#include "gguf/gguf.h"

namespace plumb::gguf {

namespace {

constexpr uint32_t kMaxValueType = static_cast<uint32_t>(ValueType::FLOAT64);

// Bytes a value of this type occupies at minimum in the file: fixed-size scalars their size,
// a string its u64 length, an array its u32 element type + u64 count.
size_t min_encoded_size(ValueType t) {
  switch (t) {
    case ValueType::UINT8:
    case ValueType::INT8:
    case ValueType::BOOL:
      return 1;
    case ValueType::UINT16:
    case ValueType::INT16:
      return 2;
    case ValueType::UINT32:
    case ValueType::INT32:
    case ValueType::FLOAT32:
      return 4;
    case ValueType::UINT64:
    case ValueType::INT64:
    case ValueType::FLOAT64:
    case ValueType::STRING:
      return 8;
    case ValueType::ARRAY:
      return 12;
  }
  return 1;
}

// Keeps a printable, bounded copy of a name taken from the file for error messages.
std::string printable(std::string_view s) {
  std::string out;
  const size_t limit = 80;
  for (size_t i = 0; i < s.size() && i < limit; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      out += strprintf("\\x%02x", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > limit) out += "...";
  return out;
}

class Parser {
 public:
  Parser(const uint8_t* data, size_t size, const std::string& name)
      : data_(data), size_(size), name_(name) {}

  size_t pos() const { return pos_; }
  size_t left() const { return size_ - pos_; }

  // "<file>: <what> at offset N: <problem>"
  Status error_at(size_t offset, const std::string& what, const std::string& problem) const {
    return Status::error(strprintf("%s: %s at offset %zu: %s", name_.c_str(), what.c_str(),
                                   offset, problem.c_str()));
  }
  Status truncated(const std::string& what, size_t need) const {
    return error_at(pos_, what,
                    strprintf("needs %zu bytes but the file ends after %zu (file is %zu bytes)",
                              need, left(), size_));
  }

  template <class T>
  bool read(T* out) {
    if (left() < sizeof(T)) return false;
    std::memcpy(out, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }

  // A string: u64 length (checked against the bytes left) then the bytes, returned as a view
  // into the buffer.
  Status read_string(const std::string& what, std::string_view* out) {
    const size_t start = pos_;
    uint64_t len = 0;
    if (!read(&len)) return truncated(what + " length", sizeof(uint64_t));
    if (len > left()) {
      pos_ = start;
      return error_at(start, what,
                      strprintf("string length %llu exceeds the %zu bytes left in the file",
                                static_cast<unsigned long long>(len), left() - sizeof(uint64_t)));
    }
    *out = std::string_view(reinterpret_cast<const char*>(data_ + pos_), len);
    pos_ += len;
    return Status();
  }

  Status read_value_type(const std::string& what, ValueType* out) {
    const size_t start = pos_;
    uint32_t raw = 0;
    if (!read(&raw)) return truncated(what + " type", sizeof(uint32_t));
    if (raw > kMaxValueType) {
      return error_at(start, what, strprintf("unknown value type %u", raw));
    }
    *out = static_cast<ValueType>(raw);
    return Status();
  }

  Status count_value(const std::function<std::string()>& what) {
    if (values_read_ >= kMaxMetadataValues) {
      return error_at(pos_, what(),
                      strprintf("more than %llu metadata values in one file",
                                static_cast<unsigned long long>(kMaxMetadataValues)));
    }
    ++values_read_;
    return Status();
  }

  // Reads one value of type `type`. `key` names the entry in messages.
  Status read_value(ValueType type, std::string_view key, int depth, Value* out) {
    out->type = type;
    const size_t start = pos_;
    auto what = [&] { return "key '" + printable(key) + "' value"; };
    bool ok = true;
    switch (type) {
      case ValueType::UINT8: { uint8_t v = 0; ok = read(&v); out->u64 = v; break; }
      case ValueType::INT8: { int8_t v = 0; ok = read(&v); out->i64 = v; break; }
      case ValueType::UINT16: { uint16_t v = 0; ok = read(&v); out->u64 = v; break; }
      case ValueType::INT16: { int16_t v = 0; ok = read(&v); out->i64 = v; break; }
      case ValueType::UINT32: { uint32_t v = 0; ok = read(&v); out->u64 = v; break; }
      case ValueType::INT32: { int32_t v = 0; ok = read(&v); out->i64 = v; break; }
      case ValueType::UINT64: { uint64_t v = 0; ok = read(&v); out->u64 = v; break; }
      case ValueType::INT64: { int64_t v = 0; ok = read(&v); out->i64 = v; break; }
      case ValueType::FLOAT32: { float v = 0; ok = read(&v); out->f64 = v; break; }
      case ValueType::FLOAT64: { double v = 0; ok = read(&v); out->f64 = v; break; }
      case ValueType::BOOL: {
        uint8_t v = 0;
        ok = read(&v);
        if (ok && v > 1) return error_at(start, what(), strprintf("bool byte is %u, not 0 or 1", v));
        out->u64 = v;
        break;
      }
      case ValueType::STRING: {
        std::string_view s;
        PLUMB_RETURN_IF_ERROR(read_string(what(), &s));
        out->str.assign(s.data(), s.size());
        return Status();
      }
      case ValueType::ARRAY:
        return read_array(key, depth + 1, out);
    }
    if (!ok) return truncated(what(), min_encoded_size(type));
    return Status();
  }

  Status read_array(std::string_view key, int depth, Value* out) {
    auto what = [&] { return "key '" + printable(key) + "' array"; };
    if (depth > kMaxArrayDepth) {
      return error_at(pos_, what(),
                      strprintf("arrays nested deeper than %d levels", kMaxArrayDepth));
    }
    PLUMB_RETURN_IF_ERROR(read_value_type(what() + " element", &out->array_type));
    const size_t count_at = pos_;
    uint64_t count = 0;
    if (!read(&count)) return truncated(what() + " length", sizeof(uint64_t));
    const size_t min_size = min_encoded_size(out->array_type);
    if (count > left() / min_size) {
      return error_at(count_at, what(),
                      strprintf("%llu elements of type %s cannot fit in the %zu bytes left",
                                static_cast<unsigned long long>(count),
                                value_type_name(out->array_type), left()));
    }
    if (count > kMaxMetadataValues - values_read_) {
      return error_at(count_at, what(),
                      strprintf("%llu elements exceed the limit of %llu metadata values per file",
                                static_cast<unsigned long long>(count),
                                static_cast<unsigned long long>(kMaxMetadataValues)));
    }
    values_read_ += count;
    out->array.resize(count);
    if (out->array_type == ValueType::STRING) {
      // Fast path: vocabularies hold hundreds of thousands of strings.
      for (uint64_t i = 0; i < count; ++i) {
        Value& v = out->array[i];
        v.type = ValueType::STRING;
        uint64_t len = 0;
        const size_t at = pos_;
        if (!read(&len) || len > left()) {
          pos_ = at;
          std::string_view ignored;
          return read_string(what() + strprintf(" element %llu", static_cast<unsigned long long>(i)),
                             &ignored);
        }
        v.str.assign(reinterpret_cast<const char*>(data_ + pos_), len);
        pos_ += len;
      }
      return Status();
    }
    for (uint64_t i = 0; i < count; ++i) {
      PLUMB_RETURN_IF_ERROR(read_value(out->array_type, key, depth, &out->array[i]));
    }
    return Status();
  }

  Status parse(uint32_t* version, uint32_t* alignment, uint64_t* data_offset,
               std::vector<std::pair<std::string, Value>>* metadata,
               std::unordered_map<std::string_view, size_t>* key_index,
               std::vector<TensorInfo>* tensors,
               std::unordered_map<std::string_view, size_t>* tensor_index) {
    uint32_t magic = 0;
    if (!read(&magic)) return truncated("magic", sizeof(uint32_t));
    if (magic != kMagic) {
      if (magic == __builtin_bswap32(kMagic)) {
        return error_at(0, "magic", "big-endian GGUF files are not supported");
      }
      return error_at(0, "magic",
                      strprintf("not a GGUF file (first bytes %02x %02x %02x %02x, expected "
                                "47 47 55 46 \"GGUF\")",
                                data_[0], data_[1], data_[2], data_[3]));
    }
    if (!read(version)) return truncated("version", sizeof(uint32_t));
    if (*version != 2 && *version != 3) {
      const uint32_t swapped = __builtin_bswap32(*version);
      if (swapped >= 1 && swapped <= 3) {
        return error_at(4, "version",
                        strprintf("big-endian GGUF files are not supported (version field "
                                  "reads %u little-endian, %u big-endian)",
                                  *version, swapped));
      }
      if (*version == 1) {
        return error_at(4, "version", "GGUF version 1 is not supported (only versions 2 and 3)");
      }
      return error_at(4, "version",
                      strprintf("unsupported GGUF version %u (only versions 2 and 3)", *version));
    }
    uint64_t n_tensors = 0;
    uint64_t n_kv = 0;
    const size_t n_tensors_at = pos_;
    if (!read(&n_tensors)) return truncated("tensor count", sizeof(uint64_t));
    const size_t n_kv_at = pos_;
    if (!read(&n_kv)) return truncated("metadata count", sizeof(uint64_t));
    // Minimum sizes: a kv is key length + value type + a 1-byte value; a tensor info is name
    // length + n_dims + one dimension + type + offset.
    constexpr size_t kMinKv = 8 + 4 + 1;
    constexpr size_t kMinTensor = 8 + 4 + 8 + 4 + 8;
    if (n_kv > left() / kMinKv) {
      return error_at(n_kv_at, "metadata count",
                      strprintf("%llu entries cannot fit in the %zu bytes left",
                                static_cast<unsigned long long>(n_kv), left()));
    }
    if (n_tensors > left() / kMinTensor) {
      return error_at(n_tensors_at, "tensor count",
                      strprintf("%llu tensor infos cannot fit in the %zu bytes left",
                                static_cast<unsigned long long>(n_tensors), left()));
    }

    metadata->reserve(n_kv);
    key_index->reserve(n_kv);
    for (uint64_t i = 0; i < n_kv; ++i) {
      const size_t entry_at = pos_;
      std::string_view key;
      PLUMB_RETURN_IF_ERROR(
          read_string(strprintf("metadata entry %llu key", static_cast<unsigned long long>(i)), &key));
      if (key_index->count(key) != 0) {
        return error_at(entry_at, "key '" + printable(key) + "'", "duplicate metadata key");
      }
      ValueType type;
      PLUMB_RETURN_IF_ERROR(read_value_type("key '" + printable(key) + "' value", &type));
      PLUMB_RETURN_IF_ERROR(count_value([&] { return "key '" + printable(key) + "'"; }));
      metadata->emplace_back(std::string(key), Value());
      PLUMB_RETURN_IF_ERROR(read_value(type, key, 0, &metadata->back().second));
      key_index->emplace(key, metadata->size() - 1);
    }

    // general.alignment: any integer type holding a nonzero power of two that fits in u32.
    *alignment = kDefaultAlignment;
    if (auto it = key_index->find("general.alignment"); it != key_index->end()) {
      const Value& v = (*metadata)[it->second].second;
      if (!v.is_integer()) {
        return Status::errorf("%s: key 'general.alignment' has type %s, expected an integer",
                              name_.c_str(), value_type_name(v.type));
      }
      const int64_t a = v.as_int();
      if (a <= 0 || a > std::numeric_limits<uint32_t>::max() || (a & (a - 1)) != 0) {
        return Status::errorf("%s: key 'general.alignment' is %lld, not a nonzero power of two",
                              name_.c_str(), static_cast<long long>(a));
      }
      *alignment = static_cast<uint32_t>(a);
    }

    tensors->reserve(n_tensors);
    tensor_index->reserve(n_tensors);
    for (uint64_t i = 0; i < n_tensors; ++i) {
      const size_t info_at = pos_;
      std::string_view name;
      PLUMB_RETURN_IF_ERROR(
          read_string(strprintf("tensor info %llu name", static_cast<unsigned long long>(i)), &name));
      const std::string tname = "tensor '" + printable(name) + "'";
      if (tensor_index->count(name) != 0) {
        return error_at(info_at, tname, "duplicate tensor name");
      }
      TensorInfo info;
      info.name.assign(name.data(), name.size());
      const size_t dims_at = pos_;
      uint32_t n_dims = 0;
      if (!read(&n_dims)) return truncated(tname + " n_dims", sizeof(uint32_t));
      if (n_dims < 1 || n_dims > static_cast<uint32_t>(kMaxDims)) {
        return error_at(dims_at, tname, strprintf("n_dims is %u, expected 1 to %d", n_dims, kMaxDims));
      }
      info.n_dims = static_cast<int>(n_dims);
      // Both products are checked in the order TensorInfo::n_elements() and n_rows() compute
      // them (a zero dimension must not hide an overflow of the others).
      int64_t n_elements = 1;
      int64_t n_rows = 1;
      for (uint32_t d = 0; d < n_dims; ++d) {
        const size_t ne_at = pos_;
        uint64_t ne = 0;
        if (!read(&ne)) return truncated(tname + strprintf(" ne[%u]", d), sizeof(uint64_t));
        if (ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
          return error_at(ne_at, tname,
                          strprintf("ne[%u] = %llu does not fit in int64", d,
                                    static_cast<unsigned long long>(ne)));
        }
        info.ne[d] = static_cast<int64_t>(ne);
        if (__builtin_mul_overflow(n_elements, info.ne[d], &n_elements) ||
            (d > 0 && __builtin_mul_overflow(n_rows, info.ne[d], &n_rows))) {
          return error_at(ne_at, tname,
                          "element count overflows int64 (shape " + info.shape_string() + "...)");
        }
      }
      const size_t type_at = pos_;
      uint32_t type_number = 0;
      if (!read(&type_number)) return truncated(tname + " type", sizeof(uint32_t));
      const TypeTraits* traits = find_type_traits(type_number);
      if (traits == nullptr) {
        return error_at(type_at, tname, unsupported_type_message(type_number));
      }
      info.type = traits->type;
      if (info.ne[0] % traits->block_size != 0) {
        return error_at(type_at, tname,
                        strprintf("row length ne[0] = %lld is not a multiple of %s's block size %lld",
                                  static_cast<long long>(info.ne[0]), traits->name,
                                  static_cast<long long>(traits->block_size)));
      }
      uint64_t row_bytes = 0;
      uint64_t nbytes = 0;
      if (__builtin_mul_overflow(static_cast<uint64_t>(info.ne[0] / traits->block_size),
                                 static_cast<uint64_t>(traits->type_size), &row_bytes) ||
          __builtin_mul_overflow(row_bytes, static_cast<uint64_t>(info.n_rows()), &nbytes)) {
        return error_at(type_at, tname,
                        "byte size of shape " + info.shape_string() + " overflows 64 bits");
      }
      info.nbytes = nbytes;
      const size_t offset_at = pos_;
      if (!read(&info.offset)) return truncated(tname + " data offset", sizeof(uint64_t));
      if (info.offset % *alignment != 0) {
        return error_at(offset_at, tname,
                        strprintf("data offset %llu is not a multiple of the alignment %u",
                                  static_cast<unsigned long long>(info.offset), *alignment));
      }
      tensor_index->emplace(name, tensors->size());
      tensors->push_back(std::move(info));
    }

    // The data section starts at the next multiple of the alignment. A file without tensors
    // may end before that point.
    const uint64_t a = *alignment;
    *data_offset = (static_cast<uint64_t>(pos_) + a - 1) / a * a;
    for (TensorInfo& t : *tensors) {
      uint64_t begin = 0;
      uint64_t end = 0;
      if (__builtin_add_overflow(*data_offset, t.offset, &begin) ||
          __builtin_add_overflow(begin, t.nbytes, &end)) {
        return Status::errorf(
            "%s: tensor '%s' data [offset %llu in the data section at %llu, %llu bytes] "
            "overflows 64 bits, past the end of the file (%zu bytes)",
            name_.c_str(), printable(t.name).c_str(), static_cast<unsigned long long>(t.offset),
            static_cast<unsigned long long>(*data_offset), static_cast<unsigned long long>(t.nbytes),
            size_);
      }
      if (end > size_) {
        return Status::errorf(
            "%s: tensor '%s' data [offset %llu, %llu bytes] ends past the end of the file "
            "(%zu bytes)",
            name_.c_str(), printable(t.name).c_str(), static_cast<unsigned long long>(begin),
            static_cast<unsigned long long>(t.nbytes), size_);
      }
      t.data = data_ + begin;
    }
    return Status();
  }

 private:
  const uint8_t* data_;
  size_t size_;
  const std::string& name_;
  size_t pos_ = 0;
  uint64_t values_read_ = 0;
};

}  // namespace

namespace {

// Reads the whole of fd (size bytes) into anonymous memory aligned to, and advised for, 2 MiB
// transparent huge pages. The mapping (*mapping, *mapping_size) is the caller's to unmap.
Status read_into_memory(int fd, size_t size, const std::string& path,
                        const std::function<void(uint64_t, uint64_t)>& progress, void** mapping,
                        size_t* mapping_size, const uint8_t** data) {
  constexpr size_t kHuge = size_t{2} << 20;
  const size_t length = (size + kHuge - 1) / kHuge * kHuge + kHuge;  // room to align
  void* map = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (map == MAP_FAILED) {
    return Status::errorf("%s: cannot allocate %zu bytes to read the file into: %s", path.c_str(), size,
                          std::strerror(errno));
  }
  *mapping = map;
  *mapping_size = length;
  auto* base = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(map) + kHuge - 1) / kHuge * kHuge);
  madvise(base, length - static_cast<size_t>(base - static_cast<uint8_t*>(map)), MADV_HUGEPAGE);  // advice only
  constexpr size_t kChunk = size_t{64} << 20;
  for (size_t done = 0; done < size;) {
    const ssize_t n = pread(fd, base + done, std::min(kChunk, size - done), static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return Status::errorf("%s: read failed at offset %zu of %zu: %s", path.c_str(), done, size,
                            n < 0 ? std::strerror(errno) : "unexpected end of file");
    }
    done += static_cast<size_t>(n);
    if (progress) progress(done, size);
  }
  mprotect(base, size, PROT_READ);  // the weights are never written
  *data = base;
  return Status();
}

}  // namespace

Result<std::unique_ptr<File>> File::open(const std::string& path, const OpenOptions& options) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::errorf("%s: cannot open: %s", path.c_str(), std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    return Status::errorf("%s: cannot stat: %s", path.c_str(), std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::errorf(S_ISDIR(st.st_mode) ? "%s: is a directory; name a GGUF file" : "%s: not a regular file",
                          path.c_str());
  }
  std::unique_ptr<File> file(new File());
  file->path_ = path;
  file->size_ = static_cast<size_t>(st.st_size);
  if (file->size_ > 0 && options.read_into_memory) {
    const Status read = read_into_memory(fd, file->size_, path, options.progress, &file->mapping_,
                                         &file->mapping_size_, &file->data_);
    ::close(fd);
    PLUMB_RETURN_IF_ERROR(read);
  } else {
    if (file->size_ > 0) {
      void* map = mmap(nullptr, file->size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (map == MAP_FAILED) {
        const int e = errno;
        ::close(fd);
        return Status::errorf("%s: cannot map %zu bytes: %s", path.c_str(), file->size_, std::strerror(e));
      }
      file->mapping_ = map;
      file->mapping_size_ = file->size_;
      file->data_ = static_cast<const uint8_t*>(map);
    }
    ::close(fd);
  }
  PLUMB_RETURN_IF_ERROR(file->parse_all());
  return file;
}

Result<std::unique_ptr<File>> File::parse(const uint8_t* data, size_t size, std::string name) {
  std::unique_ptr<File> file(new File());
  file->path_ = std::move(name);
  file->data_ = data;
  file->size_ = size;
  PLUMB_RETURN_IF_ERROR(file->parse_all());
  return file;
}

File::~File() {
  if (mapping_ != nullptr) munmap(mapping_, mapping_size_);
}

Status File::parse_all() {
  static const uint8_t kEmpty[1] = {0};
  Parser parser(data_ != nullptr ? data_ : kEmpty, data_ != nullptr ? size_ : 0, path_);
  return parser.parse(&version_, &alignment_, &data_offset_, &metadata_, &key_index_, &tensors_,
                      &tensor_index_);
}

const Value* File::find(std::string_view key) const {
  auto it = key_index_.find(key);
  return it == key_index_.end() ? nullptr : &metadata_[it->second].second;
}

const TensorInfo* File::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace plumb::gguf
