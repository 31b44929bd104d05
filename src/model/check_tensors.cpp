#include "model/check_tensors.h"

#include <atomic>
#include <cmath>
#include <limits>
#include <vector>

#include "quant/ref.h"
#include "util/thread_pool.h"

namespace plumb {

Status check_tensor_data(const gguf::File& file, int n_threads) {
  ThreadPool pool(n_threads);
  for (const gguf::TensorInfo& t : file.tensors()) {
    if (t.type == TensorType::I8 || t.type == TensorType::I16 || t.type == TensorType::I32 ||
        t.type == TensorType::I64) {
      continue;
    }
    const int64_t width = t.ne[0];
    const int64_t rows = t.n_rows();
    const size_t row_bytes = row_size(t.type, width);
    // The first bad row, found by any thread; the lowest one wins.
    std::atomic<int64_t> bad_row{std::numeric_limits<int64_t>::max()};
    pool.parallel_for(rows, [&](int64_t begin, int64_t end) {
      std::vector<float> row(static_cast<size_t>(width));
      for (int64_t r = begin; r < end && r < bad_row.load(std::memory_order_relaxed); ++r) {
        dequantize_row(t.type, static_cast<const uint8_t*>(t.data) + static_cast<size_t>(r) * row_bytes,
                       row.data(), width);
        for (const float v : row) {
          if (std::isfinite(v)) continue;
          int64_t seen = bad_row.load();
          while (r < seen && !bad_row.compare_exchange_weak(seen, r)) {
          }
          break;
        }
      }
    });
    const int64_t r = bad_row.load();
    if (r == std::numeric_limits<int64_t>::max()) continue;
    std::vector<float> row(static_cast<size_t>(width));
    dequantize_row(t.type, static_cast<const uint8_t*>(t.data) + static_cast<size_t>(r) * row_bytes, row.data(),
                   width);
    int64_t col = 0;
    while (col < width && std::isfinite(row[static_cast<size_t>(col)])) ++col;
    return Status::errorf("%s: --check-tensors: tensor '%s' (%s %s) holds %s at row %lld, element %lld: the file "
                          "is damaged (re-download or re-convert it)",
                          file.path().c_str(), t.name.c_str(), type_name(t.type), t.shape_string().c_str(),
                          std::isnan(row[static_cast<size_t>(col)]) ? "NaN" : "infinity", (long long)r,
                          (long long)col);
  }
  return Status();
}

}  // namespace plumb
