// The register matvec's unit layouts (units.cuh) checked on the host against the scalar
// reference's values: the part of the kernel that can be wrong without a GPU to show it.
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

}  // namespace plumb::cuda
