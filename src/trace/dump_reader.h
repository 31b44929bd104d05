// Other engines' tensor dumps: a directory of .npy files, an .npz archive (zip, stored or
// deflated) or a safetensors file, read into named n-dimensional arrays. The file is hostile:
// every size, offset and shape is checked against what the file holds, and an error names the
// file, the array and what was expected vs found.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "util/status.h"

namespace plumb::trace {

struct DumpArray {
  std::string name;             // file name without .npy / the npz member / the safetensors key
  std::string dtype;            // as the file spells it: "<f4", "F16", ...
  std::vector<int64_t> dims;    // C order (the first dimension varies slowest)
  std::vector<double> values;   // every element, C order (Fortran-order .npy are reordered)
  bool is_integer = false;      // an integer dtype (token ids)

  int64_t n_elements() const;
  std::string shape_string() const;  // "[14, 288]" (C order, numpy's spelling)
};

// Reads one .npy file (format versions 1-3; dtypes f2/f4/f8, i1/i2/i4/i8, u1/u2/u4/u8, either
// byte order; C or Fortran order).
Result<DumpArray> parse_npy(const std::string& bytes, const std::string& name);

// An .npz (zip of .npy members, stored or deflated) / a safetensors file, already in memory.
Result<std::vector<DumpArray>> parse_npz(const std::string& bytes, const std::string& name);
Result<std::vector<DumpArray>> parse_safetensors(const std::string& bytes, const std::string& name);

// Reads every array of a dump: `path` a directory (its *.npy files), a *.npz or a *.safetensors
// file (dtypes F16, BF16, F32, F64, I8-I64, U8-U64).
Result<std::vector<DumpArray>> read_dump(const std::string& path);

// True when `path` is a dump read_dump understands (a directory, .npz or .safetensors), not a
// GGUF trace.
bool is_dump_path(const std::string& path);

}  // namespace plumb::trace
