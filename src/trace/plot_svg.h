// Draws a DiffReport as a picture: NMSE (top) and RMS (bottom) per layer, one line per tap
// family, log-scale y, the divergence marked. SVG is written by hand; PNG goes through
// rsvg-convert when it is installed.
#pragma once

#include <string>

#include "trace/diff.h"
#include "util/status.h"

namespace plumb::trace {

std::string render_diff_svg(const DiffReport& report);

// Writes FILE.svg, or FILE.png by rasterizing the SVG with rsvg-convert (an error saying how to
// install it when it is missing). Other extensions are an error.
Status write_diff_plot(const DiffReport& report, const std::string& path);

}  // namespace plumb::trace
