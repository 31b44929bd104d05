// GGUF files: a bounds-checked reader over a memory mapping, and a writer.
//
// Every offset, count and size read from a file is checked before use; a malformed file gives
// a Status naming the file, the field and the byte offset, never a crash or a read outside the
// mapping. The reader knows nothing about models.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "quant/types.h"
#include "util/status.h"

namespace plumb::gguf {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr uint32_t kDefaultAlignment = 32;
constexpr int kMaxDims = 4;
// Arrays of arrays deeper than this are refused (the format allows nesting; files never need
// more than a level or two, and recursion depth must stay bounded on hostile input).
constexpr int kMaxArrayDepth = 8;
// Upper bound on metadata values (array elements included) in one file, so a small hostile
// file cannot make the reader allocate gigabytes of Value objects.
constexpr uint64_t kMaxMetadataValues = uint64_t{1} << 24;

enum class ValueType : uint32_t {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
};
const char* value_type_name(ValueType t);

// One metadata value. Scalars keep their stored type; integer payloads are widened into
// u64 / i64, floats into f64. Arrays hold their elements (possibly arrays themselves).
struct Value {
  ValueType type = ValueType::UINT8;
  uint64_t u64 = 0;         // UINT8, UINT16, UINT32, UINT64, BOOL (0 or 1)
  int64_t i64 = 0;          // INT8, INT16, INT32, INT64
  double f64 = 0.0;         // FLOAT32, FLOAT64
  std::string str;          // STRING
  ValueType array_type = ValueType::UINT8;  // ARRAY: element type
  std::vector<Value> array;                 // ARRAY: elements

  static Value make_u32(uint32_t v);
  static Value make_i32(int32_t v);
  static Value make_u64(uint64_t v);
  static Value make_f32(float v);
  static Value make_bool(bool v);
  static Value make_string(std::string v);
  static Value make_array(ValueType element_type, std::vector<Value> items);
  static Value make_string_array(const std::vector<std::string>& items);
  static Value make_f32_array(const std::vector<float>& items);
  static Value make_i32_array(const std::vector<int32_t>& items);

  bool is_integer() const;  // any of the integer types (not BOOL)
  bool is_float() const;
  // Any integer type as int64 (UINT64 above INT64_MAX saturates); floats and bools: 0.
  int64_t as_int() const;
  double as_double() const;  // integers and floats
};

struct TensorInfo {
  std::string name;
  TensorType type = TensorType::F32;
  int n_dims = 0;
  int64_t ne[kMaxDims] = {1, 1, 1, 1};  // ggml order: ne[0] is the contiguous dimension
  uint64_t offset = 0;                  // relative to the start of the data section
  uint64_t nbytes = 0;
  const uint8_t* data = nullptr;        // inside the mapping; valid while the File lives

  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  int64_t n_rows() const { return ne[1] * ne[2] * ne[3]; }
  std::string shape_string() const;  // "[256, 32000]"
};

// How File::open gets the bytes of a file.
struct OpenOptions {
  // false: memory-map the file (nothing is copied; pages are read on first use). true: read it
  // into anonymous memory backed by transparent huge pages where the kernel allows: the whole
  // file is read at once, and a pass over all the weights then takes far fewer TLB misses
  // (generation of a model larger than the caches ran 10% faster on the development VM).
  bool read_into_memory = false;
  // Called with (bytes read, bytes total) while reading into memory; may be empty.
  std::function<void(uint64_t, uint64_t)> progress;
};

class File {
 public:
  // Maps (or reads) and parses `path`. Version 1 and big-endian files are refused as
  // unsupported.
  static Result<std::unique_ptr<File>> open(const std::string& path, const OpenOptions& options = {});
  // Parses a buffer the caller keeps alive (tests, fuzzing). `name` is used in messages.
  static Result<std::unique_ptr<File>> parse(const uint8_t* data, size_t size,
                                             std::string name = "<memory>");
  ~File();
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  size_t file_size() const { return size_; }
  uint32_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // absolute offset of the data section
  const uint8_t* bytes() const { return data_; }

  // Metadata in file order.
  const std::vector<std::pair<std::string, Value>>& metadata() const { return metadata_; }
  const Value* find(std::string_view key) const;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(std::string_view name) const;

  // Typed look-ups. Missing key or wrong type: an error naming the key, the file and the
  // expected and found types. Integer getters accept any integer type whose value fits.
  Result<std::string> get_string(std::string_view key) const;
  Result<uint32_t> get_u32(std::string_view key) const;
  Result<int64_t> get_int(std::string_view key) const;
  Result<float> get_f32(std::string_view key) const;  // FLOAT32 or FLOAT64
  Result<bool> get_bool(std::string_view key) const;
  Result<std::vector<std::string>> get_string_array(std::string_view key) const;
  Result<std::vector<float>> get_f32_array(std::string_view key) const;
  Result<std::vector<int32_t>> get_i32_array(std::string_view key) const;  // any integer array

  // Optional variants: the default when the key is absent, an error only on a wrong type.
  Result<uint32_t> get_u32_or(std::string_view key, uint32_t fallback) const;
  Result<float> get_f32_or(std::string_view key, float fallback) const;
  Result<bool> get_bool_or(std::string_view key, bool fallback) const;
  Result<std::string> get_string_or(std::string_view key, std::string fallback) const;

 private:
  File() = default;
  Status parse_all();

  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  void* mapping_ = nullptr;  // non-null when this File owns an mmap of mapping_size_ bytes
  size_t mapping_size_ = 0;
  uint32_t version_ = 0;
  uint32_t alignment_ = kDefaultAlignment;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, Value>> metadata_;
  std::vector<TensorInfo> tensors_;
  // Names point into the mapped bytes, which outlive these indexes.
  std::unordered_map<std::string_view, size_t> key_index_;
  std::unordered_map<std::string_view, size_t> tensor_index_;
};

// Builds a GGUF v3 file: metadata in insertion order, then tensor infos, then aligned data.
// The output loads in llama.cpp and gguf-py: tensor names are at most 63 bytes, every
// dimension at least 1, tensor offsets consecutive, general.alignment stored as UINT32.
// One limit is the caller's: llama.cpp refuses arrays of arrays (gguf-py and plumb read them).
class Writer {
 public:
  // Sets (or replaces, keeping its position) a metadata key.
  void set(const std::string& key, Value value);
  void remove(const std::string& key);
  const Value* find(std::string_view key) const;
  // Copies every metadata entry of `file` (in order), except the GGUF.* pseudo-keys.
  void copy_metadata_from(const File& file);

  // Adds a tensor. The writer keeps its own copy of `data` (nbytes must equal the size the
  // type and shape imply); duplicate names are an error.
  Status add_tensor(const std::string& name, TensorType type, const std::vector<int64_t>& ne,
                    const void* data, size_t nbytes);
  // Adds a tensor whose bytes are produced later by `fill(dst)` while writing, so a large
  // model need not be held in memory twice.
  Status add_tensor_deferred(const std::string& name, TensorType type,
                             const std::vector<int64_t>& ne,
                             std::function<Status(uint8_t* dst, size_t nbytes)> fill);

  // Writes atomically through util/output_file.h: a temporary file next to `path`, renamed
  // into place only when complete (removed on failure and on SIGINT/SIGTERM).
  Status write(const std::string& path) const;
  // Serializes into memory (tests).
  Result<std::vector<uint8_t>> serialize() const;

 private:
  struct PendingTensor {
    std::string name;
    TensorType type;
    std::vector<int64_t> ne;
    size_t nbytes;
    std::vector<uint8_t> bytes;                                        // when given up front
    std::function<Status(uint8_t* dst, size_t nbytes)> fill;           // when deferred
  };
  uint32_t alignment() const;  // 0 when general.alignment is set but invalid
  Status write_to(const std::function<Status(const uint8_t*, size_t)>& sink) const;
  std::vector<std::pair<std::string, Value>> metadata_;
  std::vector<PendingTensor> tensors_;
};

}  // namespace plumb::gguf
