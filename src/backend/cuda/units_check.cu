// The register matvec's unit layouts (units.cuh) checked on the host against the scalar
// reference's values: the part of the kernel that can be wrong without a GPU to show it.
#include <cstdio>
#include <cstring>
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
          if constexpr (Unit<T>::kInt) {  // stage_ints pairs the halves of a block as units u, u ^ 1
            const int64_t at = Unit<T>::run_start(u, run), pair = Unit<T>::run_start(u ^ 1, run);
            if (at % 16 != 0 || (at ^ 16) != pair) miss("halves of a block not units u and u ^ 1", u, run, 0, at, 0.0f, 0.0f);
          }
          for (int i = 0; i < 16; ++i) {
            const int64_t at = Unit<T>::run_start(u, run) + i;
            if (at < 0 || at >= n_in) {
              miss("outside the row", u, run, i, at, 0.0f, 0.0f);
              continue;
            }
            ++seen[static_cast<size_t>(at)];
            const float got = T == TensorType::F16 ? unit.value(run, i) : a[run] * unit.value(run, i) + b[run];
            if (!(got == reference[at])) miss("value", u, run, i, at, got, reference[at]);
            if constexpr (Unit<T>::kInt) {
              const auto byte = static_cast<int8_t>(unit.bytes(run, i / 4) >> (8 * (i % 4)));
              const float q = static_cast<float>(byte - Unit<T>::kZero);
              if (!(q == unit.value(run, i))) miss("integer byte", u, run, i, at, q, unit.value(run, i));
            }
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

int64_t check_run_acts(const float* block, std::string* first) {
  summed::ActBlock want;
  summed::prepare_block(block, &want);
  int64_t bad = 0;
  const auto miss = [&](int half, const char* what) {
    if (bad++ == 0 && first != nullptr) *first = std::string("half ") + std::to_string(half) + ": " + what;
  };
  for (int half = 0; half < 2; ++half) {
    float x[16], amax = 0.0f;
    bool nan = false;
    for (int k = 0; k < 16; ++k) {  // the run's half, then the other's: the kernel's two folds
      x[k] = block[16 * half + k];
      summed::fold_magnitude(x[k], amax, nan);
    }
    float other_amax = 0.0f;
    bool other_nan = false;
    for (int k = 0; k < 16; ++k) summed::fold_magnitude(block[16 * (1 - half) + k], other_amax, other_nan);
    summed::fold_magnitude(other_amax, amax, nan);
    const RunActs r = run_acts(x, summed::act_scale(amax, nan || other_nan));
    int sum = 0;
    for (int k = 0; k < 16; ++k) {
      const int q = want.q[16 * half + k];
      sum += q;
      if (static_cast<int16_t>(r.q[k / 2] >> (16 * (k % 2))) != q) miss(half, "q");
    }
    if (std::memcmp(&r.d, &want.d, sizeof(float)) != 0) miss(half, "d_a");
    if (std::memcmp(&r.sx, &want.sx16[half], sizeof(float)) != 0) miss(half, "sx");
    if (r.sum != sum) miss(half, "sum of q");
  }
  return bad;
}

bool emulate_matvec_row(TensorType type, const uint8_t* row, int64_t n_in, const float* x, float* y) {
  bool ints = false;
  dispatch_type(type, [&](auto tag) {
    constexpr TensorType T = decltype(tag)::value;
    if constexpr (Unit<T>::kExists) {
      if constexpr (Unit<T>::kInt) {
        const int64_t units = n_in / 32;
        float lane_acc[32];
        for (int lane = 0; lane < 32; ++lane) {
          float acc = 0.0f;
          for (int64_t u = lane; u < units; u += 32) {
            Unit<T> w;
            w.load(row, u);
            float a[2], b[2];
            w.scales(a, b);
            for (int run = 0; run < 2; ++run) {
              const int64_t at = Unit<T>::run_start(u, run), block = at / 32 * 32;
              float amax = 0.0f, xs[16];
              bool nan = false;
              for (int k = 0; k < 32; ++k) summed::fold_magnitude(x[block + k], amax, nan);
              for (int k = 0; k < 16; ++k) xs[k] = x[at + k];
              const RunActs r = run_acts(xs, summed::act_scale(amax, nan));
              acc = add_run<T>(acc, a[run], b[run], r.d, r.sx, run_dot<T>(w, run, r.q, r.sum));
            }
          }
          lane_acc[lane] = acc;
        }
        for (int off = 16; off > 0; off /= 2) {
          float next[32];
          for (int lane = 0; lane < 32; ++lane) next[lane] = lane_acc[lane] + lane_acc[lane ^ off];
          std::memcpy(lane_acc, next, sizeof next);
        }
        *y = lane_acc[0];
        ints = true;
      }
    }
  });
  return ints;
}

}  // namespace plumb::cuda
