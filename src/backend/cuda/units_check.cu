// The register matvec's unit layouts (units.cuh) checked on the host against the scalar
// reference's values: the part of the kernel that can be wrong without a GPU to show it.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "backend/cuda/kernels.h"
#include "backend/cuda/units.cuh"

namespace plumb::cuda {

int64_t check_unit_layout(TensorType type, const uint8_t* row, int64_t n_in, const float* reference,
                          std::string* first) {
  int64_t bad = 0;
  const auto miss = [&](const char* what, int64_t u, int run, int i, int64_t at, float got, float want) {
    if (bad++ == 0 && first != nullptr) {
      char buf[200];
      std::snprintf(buf, sizeof buf, "%s: unit %lld run %d value %d (position %lld): %.9g, reference %.9g", what,
                    static_cast<long long>(u), run, i, static_cast<long long>(at), got, want);
      *first = buf;
    }
  };
  const bool known = dispatch_type(type, [&](auto tag) {
    constexpr TensorType T = decltype(tag)::value;
    if constexpr (Unit<T>::kExists) {
      std::vector<int> seen(static_cast<size_t>(n_in), 0);
      for (int64_t u = 0; u < n_in / 32; ++u) {
        Unit<T> unit;
        unit.load(row, u);
        float a[2], b[2];
        unit.scales(a, b);
        for (int run = 0; run < 2; ++run) {
          for (int i = 0; i < 16; ++i) {
            const int64_t at = Unit<T>::run_start(u, run) + i;
            if (at < 0 || at >= n_in) {
              miss("outside the row", u, run, i, at, 0.0f, 0.0f);
              continue;
            }
            ++seen[static_cast<size_t>(at)];
            const float got = T == TensorType::F16 ? unit.value(run, i) : a[run] * unit.value(run, i) + b[run];
            if (!(got == reference[at])) miss("value", u, run, i, at, got, reference[at]);
          }
        }
      }
      for (int64_t at = 0; at < n_in; ++at) {
        if (seen[static_cast<size_t>(at)] != 1) miss("covered other than once", -1, -1, seen[static_cast<size_t>(at)], at, 0, 0);
      }
    } else {
      miss("no unit layout for this type", -1, -1, -1, -1, 0, 0);
    }
  });
  if (!known) miss("unknown type", -1, -1, -1, -1, 0, 0);
  return bad;
}

// One warp of matvec_kernel's contract-S path, its shuffles as reads of the other lanes' values.
bool emulate_summed_row(TensorType type, const uint8_t* row, int64_t n_in, const float* x, float* y) {
  bool covered = false;
  dispatch_type(type, [&](auto tag) {
    constexpr TensorType T = decltype(tag)::value;
    if constexpr (SummedUnit<T>::value) {
      using U = Unit<T>;
      covered = true;
      const int64_t units = n_in / 32, iters = (units + 31) / 32;
      std::vector<uint4> ps(static_cast<size_t>(iters * 32 * kSummedSlots), make_uint4(0, 0, 0, 0));
      for (int64_t e0 = 0; e0 < n_in; e0 += 16) {  // stage_summed: a thread a half, partials traded
        const float* block = x + (e0 - e0 % 32);
        stage_half<T>(ps.data(), iters, 0, e0,
                      summed::half_prepare(x + e0, summed::half_partial(block), summed::half_partial(block + 16)));
      }
      float acc[32] = {}, macc[32] = {};
      for (int64_t it = 0; it < iters; ++it) {  // add_units_summed
        const int64_t valid = std::min<int64_t>(32, units - 32 * it);
        int32_t pa[32] = {}, pb[32] = {};
        float dw[32][2] = {}, mc[32] = {}, f[32][2] = {}, c[32][2] = {}, sx[32] = {};
        uint4 meta[32] = {};
        for (int lane = 0; lane < valid; ++lane) {
          const int64_t u = 32 * it + lane;
          U unit;
          unit.load(row, u);
          unit.owned_scales(dw[lane], mc[lane]);
          const uint4* at = ps.data() + summed_at(iters, 0, u, 0);
          meta[lane] = at[128];
          pa[lane] = unit.run_sum(0, at[0], at[64], static_cast<int32_t>(meta[lane].x));
          pb[lane] = unit.run_sum(1, at[32], at[96], static_cast<int32_t>(meta[lane].y));
        }
        for (int lane = 0; lane < valid; ++lane) {
          if constexpr (U::kOwned == 1) {
            int32_t p = pa[lane] + pb[lane];
            if constexpr (U::kPairs) {
              const int32_t* own = (lane & 1) != 0 ? pb : pa;  // the run of the group this lane owns
              p = own[lane] + own[lane ^ 1];                   // the partner sends that run's sum
            }
            f[lane][0] = f[lane][1] = static_cast<float>(p);
            c[lane][0] = c[lane][1] = dw[lane][0] * bits_float(meta[lane].z);
          } else {
            f[lane][0] = static_cast<float>(pa[lane]), f[lane][1] = static_cast<float>(pb[lane]);
            c[lane][0] = dw[lane][0] * bits_float(meta[lane].z), c[lane][1] = dw[lane][1] * bits_float(meta[lane].w);
          }
          sx[lane] = bits_float(meta[lane].w);
        }
        for (int lane = 0; lane < 32; ++lane) {
          for (int step = 0; step < U::kChainSteps; ++step) {
            const int from = U::chain_lane(step) + (lane & 1), term = U::chain_term(step);
            if (from < valid) acc[lane] = std::fma(f[from][term], c[from][term], acc[lane]);
          }
          if constexpr (U::kOffset) {
            for (int step = 0; step < 4; ++step) {
              const int from = 8 * step + (lane & 7);
              if (from < valid) macc[lane] = std::fma(mc[from], sx[from], macc[lane]);
            }
          }
        }
      }
      float out = acc[0] + acc[1];
      if constexpr (U::kOffset) out = out + summed::hsum8(macc);
      *y = out;
    }
  });
  return covered;
}

}  // namespace plumb::cuda
