#include "synth/synth_fill.h"

#include "quant/ref.h"
#include "synth/synth.h"
#include "util/cpu_features.h"

namespace plumb {

using synth_detail::StreamKeys;

void synth_fill_f32(float* dst, int64_t n, uint64_t key, int64_t first, float mean, float std) {
  const StreamKeys k = synth_detail::stream_keys(key);
  const float scale = std / synth_detail::sum_sd();
  // Checked here, outside the AVX2-compiled file, where no AVX2 instruction can run before it.
  if (cpu_has_avx2_fma_f16c()) {
    synth_detail::fill_f32_avx2(dst, n, k, static_cast<uint32_t>(first), scale, mean);
    return;
  }
  for (int64_t i = 0; i < n; ++i) {
    dst[i] = synth_detail::element(static_cast<uint32_t>(first + i), k, scale, mean);
  }
}

void synth_fill_f16(uint16_t* dst, int64_t n, uint64_t key, int64_t first, float mean, float std) {
  const StreamKeys k = synth_detail::stream_keys(key);
  const float scale = std / synth_detail::sum_sd();
  if (cpu_has_avx2_fma_f16c()) {
    synth_detail::fill_f16_avx2(dst, n, k, static_cast<uint32_t>(first), scale, mean);
    return;
  }
  for (int64_t i = 0; i < n; ++i) {
    dst[i] = fp32_to_fp16(synth_detail::element(static_cast<uint32_t>(first + i), k, scale, mean));
  }
}

}  // namespace plumb
