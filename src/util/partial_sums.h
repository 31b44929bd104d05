// The fixed order in which eight double partial sums are combined, shared by the scalar and
// the AVX2 code of a reduction so both give the same bits. The AVX2 code keeps partials 0-3 and
// 4-7 in two __m256d (element i goes to partial i % 8), adds the two registers, then the two
// halves of the result, then the two remaining lanes: ((P0+P4)+(P2+P6)) + ((P1+P5)+(P3+P7)).
// Static: each translation unit (AVX2 or not) keeps its own copy.
#pragma once

namespace plumb {

static inline double combine_partial_sums(const double* p) {
  return ((p[0] + p[4]) + (p[2] + p[6])) + ((p[1] + p[5]) + (p[3] + p[7]));
}

}  // namespace plumb
