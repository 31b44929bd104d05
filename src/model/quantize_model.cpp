#include "model/quantize_model.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <memory>
#include <numeric>
#include <set>
#include <vector>

#include "gguf/gguf.h"
#include "quant/mix.h"
#include "quant/ref.h"
#include "util/thread_pool.h"

namespace plumb {

namespace {

constexpr uint32_t kQuantizationVersion = 2;  // ggml's GGML_QNT_VERSION

bool is_float_type(TensorType t) {
  return t == TensorType::F32 || t == TensorType::F16 || t == TensorType::BF16;
}

bool can_convert_from(TensorType t) {
  return is_float_type(t) || t == TensorType::F64 || type_traits(t).is_quantized;
}

bool can_convert_to(TensorType t) { return is_float_type(t) || can_quantize(t); }

// The hyperparameters the mix depends on. Files without them (not a model) still quantize:
// the layer count then comes from the block numbers in the tensor names.
MixModelInfo model_info(const gguf::File& file) {
  MixModelInfo info;
  Result<std::string> arch = file.get_string("general.architecture");
  if (arch.ok()) info.arch = *arch;
  Result<int64_t> n_layer = file.get_int(info.arch + ".block_count");
  if (n_layer.ok() && *n_layer > 0 && *n_layer < (1 << 20)) {
    info.n_layer = static_cast<int>(*n_layer);
  } else {
    std::set<std::string> blocks;
    for (const gguf::TensorInfo& t : file.tensors()) {
      if (t.name.compare(0, 4, "blk.") == 0) blocks.insert(t.name.substr(0, t.name.find('.', 4)));
    }
    info.n_layer = static_cast<int>(blocks.size());
  }
  Result<int64_t> n_head = file.get_int(info.arch + ".attention.head_count");
  if (n_head.ok() && *n_head > 0 && *n_head < (1 << 20)) info.n_head = static_cast<int>(*n_head);
  Result<int64_t> n_head_kv = file.get_int(info.arch + ".attention.head_count_kv");
  info.n_head_kv = n_head_kv.ok() && *n_head_kv > 0 && *n_head_kv < (1 << 20)
                       ? static_cast<int>(*n_head_kv)
                       : info.n_head;
  return info;
}

// Converts every row of `src` (type `from`) into `dst` (type `to`) over the pool's threads.
void convert_rows(ThreadPool& pool, const gguf::TensorInfo& src, TensorType to, uint8_t* dst) {
  const int64_t n_per_row = src.ne[0];
  const size_t src_row_bytes = row_size(src.type, n_per_row);
  const size_t dst_row_bytes = row_size(to, n_per_row);
  pool.parallel_for(src.n_rows(), [&](int64_t begin, int64_t end) {
    std::vector<float> row(src.type == TensorType::F32 ? 0 : static_cast<size_t>(n_per_row));
    for (int64_t r = begin; r < end; ++r) {
      const uint8_t* in = src.data + static_cast<size_t>(r) * src_row_bytes;
      uint8_t* out = dst + static_cast<size_t>(r) * dst_row_bytes;
      const float* x = reinterpret_cast<const float*>(in);
      if (src.type != TensorType::F32) {
        dequantize_row(src.type, in, row.data(), n_per_row);
        x = row.data();
      }
      switch (to) {
        case TensorType::F32:
          std::memcpy(out, x, static_cast<size_t>(n_per_row) * sizeof(float));
          break;
        case TensorType::F16: {
          uint16_t* h = reinterpret_cast<uint16_t*>(out);
          for (int64_t i = 0; i < n_per_row; ++i) h[i] = fp32_to_fp16(x[i]);
          break;
        }
        case TensorType::BF16: {
          uint16_t* h = reinterpret_cast<uint16_t*>(out);
          for (int64_t i = 0; i < n_per_row; ++i) h[i] = fp32_to_bf16(x[i]);
          break;
        }
        default:
          quantize_row(to, x, out, n_per_row);
          break;
      }
    }
  });
}

}  // namespace

Result<QuantizeSummary> quantize_model(const std::string& input_path,
                                       const std::string& output_path,
                                       const QuantizeOptions& options) {
  PLUMB_ASSIGN_OR_RETURN(QuantTarget target, parse_quant_target(options.target));
  PLUMB_ASSIGN_OR_RETURN(std::unique_ptr<gguf::File> file, gguf::File::open(input_path));
  const std::vector<gguf::TensorInfo>& tensors = file->tensors();

  std::vector<MixTensor> mix_tensors;
  mix_tensors.reserve(tensors.size());
  for (const gguf::TensorInfo& t : tensors) {
    MixTensor m;
    m.name = t.name;
    m.type = t.type;
    m.n_dims = t.n_dims;
    std::copy(std::begin(t.ne), std::end(t.ne), std::begin(m.ne));
    mix_tensors.push_back(std::move(m));
  }
  Result<std::vector<MixChoice>> chosen = choose_tensor_types(target, model_info(*file), mix_tensors);
  if (!chosen.ok()) return chosen.status().with_context(input_path);

  QuantizeSummary summary;
  summary.tensors = static_cast<int>(tensors.size());
  summary.file_type = static_cast<uint32_t>(target.file_type);
  uint64_t input_bytes_total = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const gguf::TensorInfo& t = tensors[i];
    const TensorType to = (*chosen)[i].type;
    input_bytes_total += t.nbytes;
    if (to == t.type) continue;
    if (!can_convert_from(t.type)) {
      return Status::errorf("%s: tensor '%s' is %s, which cannot be converted to %s",
                            input_path.c_str(), t.name.c_str(), type_name(t.type), type_name(to));
    }
    if (!can_convert_to(to)) {
      return Status::errorf("tensor '%s': plumb cannot quantize to %s yet", t.name.c_str(),
                            type_name(to));
    }
    ++summary.tensors_converted;
    if ((*chosen)[i].fell_back) {
      ++summary.tensors_fell_back;
      if (options.on_warning) {
        options.on_warning(strprintf("%s: row length %lld does not fit the mix's type: %s instead",
                                     t.name.c_str(), static_cast<long long>(t.ne[0]),
                                     type_name(to)));
      }
    }
  }

  gguf::Writer writer;
  writer.copy_metadata_from(*file);
  // llama-quantize removes and re-adds these two, so they come last, in this order.
  writer.remove("general.quantization_version");
  writer.set("general.quantization_version", gguf::Value::make_u32(kQuantizationVersion));
  writer.remove("general.file_type");
  writer.set("general.file_type", gguf::Value::make_u32(summary.file_type));

  std::vector<size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return llama_tensor_order_less(tensors[a].name, tensors[b].name);
  });

  ThreadPool pool(options.n_threads);
  QuantizeProgress progress;
  progress.tensors_total = summary.tensors;
  progress.input_bytes_total = input_bytes_total;

  for (size_t index : order) {
    const gguf::TensorInfo& src = tensors[index];
    const TensorType to = (*chosen)[index].type;
    const std::vector<int64_t> ne(src.ne, src.ne + src.n_dims);
    PLUMB_RETURN_IF_ERROR(writer.add_tensor_deferred(
        src.name, to, ne, [&pool, &src, to, &progress, &options](uint8_t* dst, size_t nbytes) {
          const size_t expected = static_cast<size_t>(src.n_rows()) * row_size(to, src.ne[0]);
          if (nbytes != expected) {
            return Status::errorf("tensor '%s': writer asks for %zu bytes, %s needs %zu",
                                  src.name.c_str(), nbytes, type_name(to), expected);
          }
          if (to == src.type) {
            std::memcpy(dst, src.data, nbytes);
          } else {
            convert_rows(pool, src, to, dst);
          }
          ++progress.tensors_done;
          progress.input_bytes_done += src.nbytes;
          progress.tensor_name = src.name.c_str();
          if (options.on_progress) options.on_progress(progress);
          return Status();
        }));
  }
  PLUMB_RETURN_IF_ERROR(writer.write(output_path));

  summary.input_file_bytes = file->file_size();
  std::error_code ec;
  const auto out_size = std::filesystem::file_size(output_path, ec);
  summary.output_file_bytes = ec ? 0 : static_cast<uint64_t>(out_size);
  return summary;
}

}  // namespace plumb
