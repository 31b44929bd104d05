// Internal to src/quant: pieces of the IQ4_NL / IQ4_XS reference quantizer (ref_iq4.cpp)
// shared with its SIMD path (iq4_avx2.cpp).
#pragma once

#include "quant/blocks.h"

namespace plumb::iq4_detail {

constexpr int kSearchSteps = 7;  // ggml_quantize_chunk's ntry

// Twice the midpoints between neighbouring grid values: kGridMid2[j] = T[j-1] + T[j], j >= 1.
constexpr float kGridMid2[16] = {0.0f, -231.0f, -187.0f, -148.0f, -114.0f, -84.0f, -57.0f, -32.0f,
                                 -9.0f, 14.0f,   38.0f,   63.0f,   91.0f,   122.0f, 158.0f, 202.0f};

// Index of the grid value nearest to x, a tie going to the larger value: ggml's
// best_index_int8, comparing 2x with T[j-1] + T[j] (both exact). Older ggml wrote it as a
// binary search comparing x - T[i-1] with T[i] - x; the two agree for every finite float
// (checked exhaustively), since near a midpoint both differences are exact.
int nearest_grid_index(float x);

// ggml's scale search for one block of 32 with weights x²: the scale that maps the largest
// |x| onto the grid's end, refined over 2·kSearchSteps+1 more candidates. 0 for an all-zero
// block (max |x| < 1e-15).
float fit_block(const float* xb);

// Packs one IQ4_NL block from its fitted scale.
void finish_iq4_nl(const float* x, float scale, block_iq4_nl* y);
// Packs one IQ4_XS super-block from the fitted scales of its 8 blocks.
void finish_iq4_xs(const float* x, const float* scales, block_iq4_xs* y);

}  // namespace plumb::iq4_detail
