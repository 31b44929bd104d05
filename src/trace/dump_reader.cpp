#include "trace/dump_reader.h"

#include <zlib.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "quant/ref.h"
#include "util/json_value.h"

namespace plumb::trace {

namespace fs = std::filesystem;

int64_t DumpArray::n_elements() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

std::string DumpArray::shape_string() const {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

namespace {

// No single array may claim more elements than this (4 G), so a hostile shape cannot overflow
// the size arithmetic before it is checked against the bytes the file holds.
constexpr int64_t kMaxElements = int64_t{1} << 32;

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

Result<std::string> read_whole_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::errorf("cannot open %s", path.c_str());
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return Status::errorf("cannot read %s", path.c_str());
  return ss.str();
}

uint64_t load_le(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// An element type: its size, whether it is a float, signed integer or unsigned integer, and
// whether its bytes are big-endian.
struct ElementType {
  int size = 0;
  char kind = 0;  // 'f' float, 'b' bfloat16, 'i' signed, 'u' unsigned
  bool big_endian = false;
};

double load_element(const char* p, const ElementType& t) {
  uint64_t bits = 0;
  if (t.big_endian) {
    for (int i = 0; i < t.size; ++i) bits = (bits << 8) | static_cast<unsigned char>(p[i]);
  } else {
    bits = load_le(p, t.size);
  }
  switch (t.kind) {
    case 'f':
      if (t.size == 2) return fp16_to_fp32(static_cast<uint16_t>(bits));
      if (t.size == 4) return std::bit_cast<float>(static_cast<uint32_t>(bits));
      return std::bit_cast<double>(bits);
    case 'b':
      return bf16_to_fp32(static_cast<uint16_t>(bits));
    case 'i': {
      const int shift = 64 - 8 * t.size;
      return static_cast<double>(static_cast<int64_t>(bits << shift) >> shift);
    }
    default:
      return static_cast<double>(bits);
  }
}

// Checks dims and converts `data` (exactly n_elements * size bytes) into out->values.
Status fill_values(const char* data, uint64_t n_bytes, const ElementType& type, DumpArray* out,
                   const std::string& where) {
  int64_t n = 1;
  for (int64_t d : out->dims) {
    if (d < 0 || (d > 0 && n > kMaxElements / d)) {
      return Status::errorf("%s: shape %s is too large or negative", where.c_str(),
                            out->shape_string().c_str());
    }
    n *= d;
  }
  if (static_cast<uint64_t>(n) * static_cast<uint64_t>(type.size) != n_bytes) {
    return Status::errorf("%s: shape %s of %d-byte elements needs %llu bytes, the file holds %llu",
                          where.c_str(), out->shape_string().c_str(), type.size,
                          static_cast<unsigned long long>(n) * static_cast<unsigned long long>(type.size),
                          static_cast<unsigned long long>(n_bytes));
  }
  out->is_integer = type.kind == 'i' || type.kind == 'u';
  out->values.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out->values[static_cast<size_t>(i)] = load_element(data + i * type.size, type);
  return Status();
}

// ---- .npy -------------------------------------------------------------------------------

// The header is a Python dict literal: {'descr': '<f4', 'fortran_order': False, 'shape': (14, 288), }
Result<std::string> dict_entry(const std::string& header, const std::string& key, const std::string& where) {
  for (const char quote : {'\'', '"'}) {
    const std::string k = std::string(1, quote) + key + quote;
    const size_t at = header.find(k);
    if (at == std::string::npos) continue;
    size_t p = header.find(':', at + k.size());
    if (p == std::string::npos) break;
    ++p;
    while (p < header.size() && header[p] == ' ') ++p;
    if (p >= header.size()) break;
    if (header[p] == '\'' || header[p] == '"') {
      const size_t end = header.find(header[p], p + 1);
      if (end == std::string::npos) break;
      return header.substr(p + 1, end - p - 1);
    }
    if (header[p] == '(') {
      const size_t end = header.find(')', p);
      if (end == std::string::npos) break;
      return header.substr(p + 1, end - p - 1);
    }
    size_t end = p;
    while (end < header.size() && header[end] != ',' && header[end] != '}') ++end;
    return header.substr(p, end - p);
  }
  return Status::errorf("%s: the .npy header has no readable '%s' entry: %s", where.c_str(),
                        key.c_str(), header.c_str());
}

Result<ElementType> npy_type(const std::string& descr, const std::string& where) {
  ElementType t;
  if (descr.size() < 3 || std::string("<>|=").find(descr[0]) == std::string::npos) {
    return Status::errorf("%s: unsupported .npy dtype '%s' (expected a plain number type such as "
                          "'<f4')", where.c_str(), descr.c_str());
  }
  t.big_endian = descr[0] == '>';
  t.kind = descr[1];
  const std::string size = descr.substr(2);
  t.size = size == "1" ? 1 : size == "2" ? 2 : size == "4" ? 4 : size == "8" ? 8 : 0;
  const bool ok = (t.kind == 'f' && t.size >= 2) || ((t.kind == 'i' || t.kind == 'u') && t.size > 0);
  if (!ok) {
    return Status::errorf("%s: unsupported .npy dtype '%s' (float f2/f4/f8 or integer i/u 1-8 "
                          "bytes)", where.c_str(), descr.c_str());
  }
  return t;
}

// ---- zip (.npz) -------------------------------------------------------------------------

struct ZipEntry {
  std::string name;
  uint16_t method = 0;
  uint64_t compressed = 0, uncompressed = 0, local_offset = 0;
  uint32_t crc = 0;
};

Result<std::vector<ZipEntry>> zip_directory(const std::string& z, const std::string& path) {
  // End of central directory: 22 bytes + a comment of up to 64 KiB, at the end of the file.
  if (z.size() < 22) return Status::errorf("%s: %zu bytes is too short for a zip archive", path.c_str(), z.size());
  size_t eocd = std::string::npos;
  const size_t lowest = z.size() > 22 + 65535 ? z.size() - 22 - 65535 : 0;
  for (size_t p = z.size() - 22 + 1; p-- > lowest;) {
    if (load_le(&z[p], 4) == 0x06054b50) {
      eocd = p;
      break;
    }
  }
  if (eocd == std::string::npos) return Status::errorf("%s: not a zip archive (no end-of-directory record)", path.c_str());
  uint64_t count = load_le(&z[eocd + 10], 2);
  uint64_t dir_size = load_le(&z[eocd + 12], 4);
  uint64_t dir_offset = load_le(&z[eocd + 16], 4);
  if (count == 0xFFFF || dir_size == 0xFFFFFFFF || dir_offset == 0xFFFFFFFF) {
    // Zip64: a locator just before the record points at the zip64 end of central directory.
    if (eocd < 20 || load_le(&z[eocd - 20], 4) != 0x07064b50) {
      return Status::errorf("%s: zip64 archive without its locator", path.c_str());
    }
    const uint64_t at = load_le(&z[eocd - 20 + 8], 8);
    if (at > z.size() || z.size() - at < 56 || load_le(&z[at], 4) != 0x06064b50) {
      return Status::errorf("%s: zip64 end-of-directory record out of bounds", path.c_str());
    }
    count = load_le(&z[at + 32], 8);
    dir_size = load_le(&z[at + 40], 8);
    dir_offset = load_le(&z[at + 48], 8);
  }
  if (dir_offset > z.size() || dir_size > z.size() - dir_offset) {
    return Status::errorf("%s: central directory (offset %llu, %llu bytes) lies past the end of "
                          "the %zu-byte file", path.c_str(), static_cast<unsigned long long>(dir_offset),
                          static_cast<unsigned long long>(dir_size), z.size());
  }
  std::vector<ZipEntry> entries;
  size_t p = dir_offset;
  const size_t end = dir_offset + dir_size;
  for (uint64_t i = 0; i < count; ++i) {
    if (end - p < 46 || load_le(&z[p], 4) != 0x02014b50) {
      return Status::errorf("%s: central directory entry %llu is malformed", path.c_str(),
                            static_cast<unsigned long long>(i));
    }
    ZipEntry e;
    e.method = static_cast<uint16_t>(load_le(&z[p + 10], 2));
    e.crc = static_cast<uint32_t>(load_le(&z[p + 16], 4));
    e.compressed = load_le(&z[p + 20], 4);
    e.uncompressed = load_le(&z[p + 24], 4);
    const size_t name_len = load_le(&z[p + 28], 2), extra_len = load_le(&z[p + 30], 2),
                 comment_len = load_le(&z[p + 32], 2);
    e.local_offset = load_le(&z[p + 42], 4);
    if (end - p - 46 < name_len + extra_len + comment_len) {
      return Status::errorf("%s: central directory entry %llu runs past the directory", path.c_str(),
                            static_cast<unsigned long long>(i));
    }
    e.name = z.substr(p + 46, name_len);
    // Zip64 extra field (id 1): the 64-bit values of the fields that read 0xFFFFFFFF, in order.
    for (size_t x = p + 46 + name_len, x_end = x + extra_len; x + 4 <= x_end;) {
      const uint64_t id = load_le(&z[x], 2), len = load_le(&z[x + 2], 2);
      if (x + 4 + len > x_end) break;
      if (id == 1) {
        size_t f = x + 4;
        for (uint64_t* field : {&e.uncompressed, &e.compressed, &e.local_offset}) {
          if (*field != 0xFFFFFFFF) continue;
          if (f + 8 > x + 4 + len) break;
          *field = load_le(&z[f], 8);
          f += 8;
        }
      }
      x += 4 + len;
    }
    entries.push_back(std::move(e));
    p += 46 + name_len + extra_len + comment_len;
  }
  return entries;
}

Result<std::string> zip_member(const std::string& z, const ZipEntry& e, const std::string& path) {
  const std::string where = path + ": member " + e.name;
  const uint64_t off = e.local_offset;
  if (off > z.size() || z.size() - off < 30 || load_le(&z[off], 4) != 0x04034b50) {
    return Status::errorf("%s: local header at offset %llu is missing", where.c_str(),
                          static_cast<unsigned long long>(off));
  }
  const uint64_t start = off + 30 + load_le(&z[off + 26], 2) + load_le(&z[off + 28], 2);
  if (start > z.size() || e.compressed > z.size() - start) {
    return Status::errorf("%s: %llu compressed bytes at offset %llu run past the end of the file",
                          where.c_str(), static_cast<unsigned long long>(e.compressed),
                          static_cast<unsigned long long>(start));
  }
  // Deflate cannot expand more than ~1032:1, so a larger claim is a lie (and would be a huge
  // allocation).
  if (e.uncompressed > static_cast<uint64_t>(kMaxElements) * 8 ||
      (e.method == 8 && e.uncompressed > e.compressed * 1100 + 1024)) {
    return Status::errorf("%s: %llu bytes uncompressed from %llu is not possible", where.c_str(),
                          static_cast<unsigned long long>(e.uncompressed),
                          static_cast<unsigned long long>(e.compressed));
  }
  std::string out;
  if (e.method == 0) {
    if (e.compressed != e.uncompressed) {
      return Status::errorf("%s: stored member with %llu compressed vs %llu uncompressed bytes",
                            where.c_str(), static_cast<unsigned long long>(e.compressed),
                            static_cast<unsigned long long>(e.uncompressed));
    }
    out = z.substr(start, e.compressed);
  } else if (e.method == 8) {
    out.resize(e.uncompressed);
    z_stream s{};
    if (inflateInit2(&s, -MAX_WBITS) != Z_OK) return Status::errorf("%s: zlib init failed", where.c_str());
    s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(z.data() + start));
    s.next_out = reinterpret_cast<Bytef*>(out.data());
    // zlib counts in uInt: feed and drain in chunks so members over 4 GiB cannot overflow it.
    uint64_t in_left = e.compressed, out_left = e.uncompressed;
    int rc = Z_OK;
    while (rc == Z_OK) {
      const uInt in_chunk = static_cast<uInt>(std::min<uint64_t>(in_left, 1u << 30));
      const uInt out_chunk = static_cast<uInt>(std::min<uint64_t>(out_left, 1u << 30));
      s.avail_in = in_chunk;
      s.avail_out = out_chunk;
      rc = inflate(&s, Z_NO_FLUSH);
      in_left -= in_chunk - s.avail_in;
      out_left -= out_chunk - s.avail_out;
      if (rc == Z_OK && in_chunk == s.avail_in && out_chunk == s.avail_out) rc = Z_BUF_ERROR;
    }
    inflateEnd(&s);
    if (rc != Z_STREAM_END || out_left != 0) {
      return Status::errorf("%s: deflate data is corrupt or does not give the %llu bytes the "
                            "directory states", where.c_str(), static_cast<unsigned long long>(e.uncompressed));
    }
  } else {
    return Status::errorf("%s: compression method %u (only stored (0) and deflate (8) are read)",
                          where.c_str(), e.method);
  }
  uLong crc = crc32(0, nullptr, 0);
  for (size_t done = 0; done < out.size();) {
    const uInt n = static_cast<uInt>(std::min<size_t>(out.size() - done, 1u << 30));
    crc = crc32(crc, reinterpret_cast<const Bytef*>(out.data() + done), n);
    done += n;
  }
  if (static_cast<uint32_t>(crc) != e.crc) {
    return Status::errorf("%s: CRC-32 mismatch (the member is corrupt)", where.c_str());
  }
  return out;
}

// ---- safetensors ------------------------------------------------------------------------

Result<ElementType> safetensors_type(const std::string& dtype, const std::string& where) {
  struct Known {
    const char* name;
    ElementType type;
  };
  static const Known kTypes[] = {
      {"F16", {2, 'f'}}, {"BF16", {2, 'b'}}, {"F32", {4, 'f'}}, {"F64", {8, 'f'}},
      {"I8", {1, 'i'}},  {"I16", {2, 'i'}},  {"I32", {4, 'i'}}, {"I64", {8, 'i'}},
      {"U8", {1, 'u'}},  {"U16", {2, 'u'}},  {"U32", {4, 'u'}}, {"U64", {8, 'u'}},
  };
  for (const auto& k : kTypes) {
    if (dtype == k.name) return k.type;
  }
  return Status::errorf("%s: unsupported safetensors dtype '%s'", where.c_str(), dtype.c_str());
}

// A JSON number that must be a non-negative integer exactly representable in a double.
Result<int64_t> json_count(const json::Value& v, const std::string& where, const char* what) {
  const double x = v.as_number();
  if (!v.is_number() || x < 0 || x > 9007199254740992.0 || x != static_cast<double>(static_cast<int64_t>(x))) {
    return Status::errorf("%s: %s is not a non-negative integer", where.c_str(), what);
  }
  return static_cast<int64_t>(x);
}

}  // namespace

Result<std::vector<DumpArray>> parse_safetensors(const std::string& bytes, const std::string& path) {
  if (bytes.size() < 8) return Status::errorf("%s: %zu bytes is too short for safetensors", path.c_str(), bytes.size());
  const uint64_t header_len = load_le(bytes.data(), 8);
  // The format caps the header at 100 MB.
  if (header_len > 100'000'000 || header_len > bytes.size() - 8) {
    return Status::errorf("%s: header length %llu exceeds the file (%zu bytes) or 100 MB",
                          path.c_str(), static_cast<unsigned long long>(header_len), bytes.size());
  }
  auto header = json::Value::parse(std::string_view(bytes).substr(8, header_len));
  if (!header.ok()) return Status::errorf("%s: header: %s", path.c_str(), header.status().message().c_str());
  if (!header->is_object()) return Status::errorf("%s: the header is not a JSON object", path.c_str());
  const uint64_t data_start = 8 + header_len;
  const uint64_t data_size = bytes.size() - data_start;
  std::vector<DumpArray> out;
  for (const auto& [key, info] : header->members()) {
    if (key == "__metadata__") continue;
    const std::string where = path + ": tensor " + key;
    if (!info.is_object() || !info["dtype"].is_string() || !info["shape"].is_array() ||
        !info["data_offsets"].is_array() || info["data_offsets"].size() != 2) {
      return Status::errorf("%s: entry needs dtype, shape and data_offsets [begin, end]", where.c_str());
    }
    PLUMB_ASSIGN_OR_RETURN(ElementType type, safetensors_type(info["dtype"].as_string(), where));
    DumpArray a;
    a.name = key;
    a.dtype = info["dtype"].as_string();
    if (info["shape"].size() > 8) return Status::errorf("%s: %zu dimensions (at most 8)", where.c_str(), info["shape"].size());
    for (const auto& d : info["shape"].items()) {
      PLUMB_ASSIGN_OR_RETURN(int64_t dim, json_count(d, where, "a dimension"));
      a.dims.push_back(dim);
    }
    PLUMB_ASSIGN_OR_RETURN(int64_t begin, json_count(info["data_offsets"][0], where, "data_offsets[0]"));
    PLUMB_ASSIGN_OR_RETURN(int64_t end, json_count(info["data_offsets"][1], where, "data_offsets[1]"));
    if (begin > end || static_cast<uint64_t>(end) > data_size) {
      return Status::errorf("%s: data_offsets [%lld, %lld] outside the %llu data bytes", where.c_str(),
                            static_cast<long long>(begin), static_cast<long long>(end),
                            static_cast<unsigned long long>(data_size));
    }
    PLUMB_RETURN_IF_ERROR(fill_values(bytes.data() + data_start + begin, static_cast<uint64_t>(end - begin), type, &a, where));
    out.push_back(std::move(a));
  }
  return out;
}

Result<std::vector<DumpArray>> parse_npz(const std::string& z, const std::string& path) {
  PLUMB_ASSIGN_OR_RETURN(std::vector<ZipEntry> entries, zip_directory(z, path));
  std::vector<DumpArray> out;
  for (const auto& e : entries) {
    if (!ends_with(e.name, ".npy")) continue;
    PLUMB_ASSIGN_OR_RETURN(std::string bytes, zip_member(z, e, path));
    PLUMB_ASSIGN_OR_RETURN(DumpArray a, parse_npy(bytes, path + ": member " + e.name));
    a.name = e.name.substr(0, e.name.size() - 4);
    out.push_back(std::move(a));
  }
  if (out.empty()) return Status::errorf("%s: the archive holds no .npy member", path.c_str());
  return out;
}

Result<DumpArray> parse_npy(const std::string& bytes, const std::string& name) {
  const std::string& where = name;
  if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0) {
    return Status::errorf("%s: not a .npy file (no \\x93NUMPY magic)", where.c_str());
  }
  const int major = static_cast<unsigned char>(bytes[6]);
  size_t header_len, header_at;
  if (major == 1) {
    header_len = load_le(&bytes[8], 2);
    header_at = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) return Status::errorf("%s: truncated .npy header", where.c_str());
    header_len = load_le(&bytes[8], 4);
    header_at = 12;
  } else {
    return Status::errorf("%s: .npy format version %d (1-3 are read)", where.c_str(), major);
  }
  if (header_len > bytes.size() - header_at) {
    return Status::errorf("%s: .npy header of %zu bytes runs past the %zu-byte file", where.c_str(),
                          header_len, bytes.size());
  }
  const std::string header = bytes.substr(header_at, header_len);
  PLUMB_ASSIGN_OR_RETURN(std::string descr, dict_entry(header, "descr", where));
  PLUMB_ASSIGN_OR_RETURN(std::string fortran, dict_entry(header, "fortran_order", where));
  PLUMB_ASSIGN_OR_RETURN(std::string shape, dict_entry(header, "shape", where));
  PLUMB_ASSIGN_OR_RETURN(ElementType type, npy_type(descr, where));
  DumpArray a;
  a.name = name;
  a.dtype = descr;
  std::stringstream dims(shape);
  for (std::string item; std::getline(dims, item, ',');) {
    item.erase(0, item.find_first_not_of(' '));
    item.erase(item.find_last_not_of(' ') + 1);
    if (item.empty()) continue;
    if (item.size() > 12 || !std::all_of(item.begin(), item.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return Status::errorf("%s: .npy shape '(%s)' is not a tuple of sizes", where.c_str(), shape.c_str());
    }
    if (a.dims.size() == 8) return Status::errorf("%s: more than 8 dimensions", where.c_str());
    a.dims.push_back(std::stoll(item));
  }
  const size_t data_at = header_at + header_len;
  PLUMB_RETURN_IF_ERROR(fill_values(bytes.data() + data_at, bytes.size() - data_at, type, &a, where));
  if (fortran.find("True") != std::string::npos && a.dims.size() > 1) {
    // Column-major: element (i0, i1, ...) at i0 + d0 * (i1 + d1 * ...). Reorder to C order.
    std::vector<double> c(a.values.size());
    const size_t nd = a.dims.size();
    std::vector<int64_t> idx(nd, 0);
    for (size_t flat = 0; flat < c.size(); ++flat) {
      int64_t f = 0;
      for (size_t k = nd; k-- > 0;) f = f * a.dims[k] + idx[k];
      c[flat] = a.values[static_cast<size_t>(f)];
      for (size_t k = nd; k-- > 0;) {
        if (++idx[k] < a.dims[k]) break;
        idx[k] = 0;
      }
    }
    a.values = std::move(c);
  }
  return a;
}

bool is_dump_path(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec) || ends_with(path, ".npz") || ends_with(path, ".safetensors") ||
         ends_with(path, ".npy");
}

Result<std::vector<DumpArray>> read_dump(const std::string& path) {
  std::error_code ec;
  std::vector<DumpArray> out;
  if (fs::is_directory(path, ec)) {
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(path, ec)) {
      if (entry.path().extension() == ".npy") files.push_back(entry.path());
    }
    if (ec) return Status::errorf("cannot list %s: %s", path.c_str(), ec.message().c_str());
    std::sort(files.begin(), files.end());
    if (files.empty()) return Status::errorf("%s: no .npy files in this directory", path.c_str());
    for (const auto& f : files) {
      PLUMB_ASSIGN_OR_RETURN(std::string bytes, read_whole_file(f.string()));
      PLUMB_ASSIGN_OR_RETURN(DumpArray a, parse_npy(bytes, f.string()));
      a.name = f.stem().string();
      out.push_back(std::move(a));
    }
    return out;
  }
  if (ends_with(path, ".npy")) {
    PLUMB_ASSIGN_OR_RETURN(std::string bytes, read_whole_file(path));
    PLUMB_ASSIGN_OR_RETURN(DumpArray a, parse_npy(bytes, path));
    a.name = fs::path(path).stem().string();
    out.push_back(std::move(a));
    return out;
  }
  if (ends_with(path, ".safetensors")) {
    PLUMB_ASSIGN_OR_RETURN(std::string bytes, read_whole_file(path));
    return parse_safetensors(bytes, path);
  }
  if (ends_with(path, ".npz")) {
    PLUMB_ASSIGN_OR_RETURN(std::string bytes, read_whole_file(path));
    return parse_npz(bytes, path);
  }
  return Status::errorf("%s: not a dump (a directory of .npy files, .npz or .safetensors)", path.c_str());
}

}  // namespace plumb::trace
