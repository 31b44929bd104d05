#include "trace/plot_svg.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>

#include "util/output_file.h"

extern char** environ;

namespace plumb::trace {

namespace {

// Attention-side taps are solid, FFN-side dashed (same hues in the same order), the residual
// stream thick; taps outside the layers are single markers.
struct Style {
  std::string_view family;
  const char* color;
  const char* dash;  // SVG stroke-dasharray, "" for solid
  double width;
};
constexpr Style kStyles[] = {
    {"attn_norm", "#1f77b4", "", 1.6},    {"q", "#17becf", "", 1.6},
    {"k", "#2ca02c", "", 1.6},            {"v", "#bcbd22", "", 1.6},
    {"q_rope", "#9467bd", "", 1.6},       {"k_rope", "#e377c2", "", 1.6},
    {"attn_out", "#d62728", "", 1.6},     {"attn_proj", "#ff7f0e", "", 1.6},
    {"ffn_inp", "#7f7f7f", "", 3.0},      {"ffn_norm", "#1f77b4", "6,3", 1.6},
    {"ffn_gate", "#17becf", "6,3", 1.6},  {"ffn_up", "#2ca02c", "6,3", 1.6},
    {"ffn_act", "#bcbd22", "6,3", 1.6},   {"ffn_out", "#d62728", "6,3", 1.6},
    {"out", "#000000", "", 3.0},          {"inp_embd", "#8c564b", "", 1.6},
    {"result_norm", "#e377c2", "", 1.6},  {"logits", "#000000", "", 1.6},
};

Style style_of(const std::string& family) {
  for (const auto& s : kStyles) {
    if (s.family == family) return s;
  }
  return {"", "#999999", "2,2", 1.2};
}

std::string xml_escape(const std::string& s) {
  std::string out;
  for (const char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string basename_of(const std::string& path) {
  return std::filesystem::path(path).filename().string();
}

// A log-scale axis covering whole decades.
struct LogAxis {
  double lo_exp = -12, hi_exp = 0;
  double top = 0, bottom = 0;  // pixel range
  double y(double v) const {
    const double e = std::clamp(std::log10(std::max(v, 1e-300)), lo_exp, hi_exp);
    return bottom - (e - lo_exp) / (hi_exp - lo_exp) * (bottom - top);
  }
};

LogAxis fit_axis(const std::vector<double>& values, double top, double bottom) {
  double lo = INFINITY, hi = -INFINITY;
  for (double v : values) {
    if (std::isfinite(v) && v > 0) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  }
  LogAxis a;
  a.top = top;
  a.bottom = bottom;
  if (!std::isfinite(lo)) return a;
  a.lo_exp = std::floor(std::log10(lo));
  a.hi_exp = std::ceil(std::log10(hi));
  if (a.hi_exp <= a.lo_exp) a.hi_exp = a.lo_exp + 1;
  // Exact agreement (1e-15 and below) would squash the interesting decades: show at most ten;
  // anything smaller sits on the bottom edge.
  a.lo_exp = std::max(a.lo_exp, a.hi_exp - 10);
  return a;
}

struct Series {
  std::string family;
  std::map<int, const TapDiff*> by_column;  // x column -> tap
};

}  // namespace

std::string render_diff_svg(const DiffReport& r) {
  // Columns: "embd" (inp_embd), the layers, "head" (result_norm, logits). Only prompt 0's trace.
  int n_layers = 0;
  bool has_embd = false, has_head = false;
  for (const auto& t : r.taps) {
    if (t.name.is_logits_tensor || t.name.prompt != 0) continue;
    if (t.name.layer >= 0) n_layers = std::max(n_layers, t.name.layer + 1);
    has_embd = has_embd || t.name.family == "inp_embd";
    has_head = has_head || t.name.family == "result_norm" || t.name.family == "logits";
  }
  const int first_layer_col = has_embd ? 1 : 0;
  const int n_cols = first_layer_col + n_layers + (has_head ? 1 : 0);
  const auto column_of = [&](const TapDiff& t) {
    if (t.name.layer >= 0) return first_layer_col + t.name.layer;
    if (t.name.family == "inp_embd") return 0;
    return first_layer_col + n_layers;
  };

  std::vector<Series> series;
  std::vector<double> nmse_values, rms_values, thresholds;
  for (const auto& t : r.taps) {
    if (t.name.is_logits_tensor || t.name.prompt != 0) continue;
    auto it = std::find_if(series.begin(), series.end(),
                           [&](const Series& s) { return s.family == t.name.family; });
    if (it == series.end()) {
      series.push_back({t.name.family, {}});
      it = series.end() - 1;
    }
    it->by_column[column_of(t)] = &t;
    nmse_values.push_back(t.nmse);
    rms_values.push_back(t.rms_a);
    rms_values.push_back(t.rms_b);
    thresholds.push_back(t.threshold);
  }
  for (double th : thresholds) nmse_values.push_back(th);

  const double width = 1100, plot_left = 80, plot_right = 860, legend_x = 880;
  const double nmse_top = 90, nmse_bottom = 390, rms_top = 450, rms_bottom = 700, height = 750;
  const LogAxis nmse_axis = fit_axis(nmse_values, nmse_top, nmse_bottom);
  const LogAxis rms_axis = fit_axis(rms_values, rms_top, rms_bottom);
  const double col_w = n_cols > 1 ? (plot_right - plot_left) / (n_cols - 1) : 0;
  const auto x_of = [&](int col) { return n_cols > 1 ? plot_left + col * col_w : (plot_left + plot_right) / 2; };

  std::string s = strprintf(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
      "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"12\">\n"
      "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
      width, height, width, height);
  s += strprintf("<text x=\"%.0f\" y=\"26\" font-size=\"17\" font-weight=\"bold\">plumb diff: A = %s  vs  B = %s (reference)</text>\n",
                 plot_left, xml_escape(basename_of(r.path_a)).c_str(), xml_escape(basename_of(r.path_b)).c_str());
  s += strprintf("<text x=\"%.0f\" y=\"48\" font-size=\"13\" fill=\"%s\">%s</text>\n", plot_left,
                 r.diverged() ? "#c00000" : "#006000", xml_escape(r.verdict()).c_str());

  const auto draw_axes = [&](const LogAxis& axis, const std::string& title, const std::string& y_label) {
    s += strprintf("<text x=\"%.0f\" y=\"%.0f\" font-size=\"14\" font-weight=\"bold\">%s</text>\n", plot_left,
                   axis.top - 14, xml_escape(title).c_str());
    for (double e = axis.lo_exp; e <= axis.hi_exp + 0.5; e += 1) {
      const double y = axis.y(std::pow(10.0, e));
      s += strprintf("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>\n", plot_left, y,
                     plot_right, y);
      s += strprintf("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" fill=\"#444\">1e%d</text>\n", plot_left - 8,
                     y + 4, static_cast<int>(e));
    }
    for (int c = 0; c < n_cols; ++c) {
      const double x = x_of(c);
      s += strprintf("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#f0f0f0\"/>\n", x, axis.top, x,
                     axis.bottom);
      std::string label;
      if (has_embd && c == 0) {
        label = "embd";
      } else if (has_head && c == n_cols - 1) {
        label = "head";
      } else {
        label = std::to_string(c - first_layer_col);
      }
      s += strprintf("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#444\">%s</text>\n", x,
                     axis.bottom + 16, label.c_str());
    }
    s += strprintf("<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#888\"/>\n",
                   plot_left, axis.top, plot_right - plot_left, axis.bottom - axis.top);
    s += strprintf("<text transform=\"translate(%.1f,%.1f) rotate(-90)\" text-anchor=\"middle\" fill=\"#444\">%s</text>\n",
                   plot_left - 52, (axis.top + axis.bottom) / 2, xml_escape(y_label).c_str());
  };

  const auto draw_series = [&](const LogAxis& axis, auto value_of, bool hollow_markers) {
    for (const auto& ser : series) {
      const Style st = style_of(ser.family);
      std::string points;
      int n_layer_points = 0;
      for (const auto& [col, t] : ser.by_column) {
        const double x = x_of(col), y = axis.y(value_of(*t));
        if (t->name.layer >= 0) {
          points += strprintf("%.1f,%.1f ", x, y);
          ++n_layer_points;
        }
        if (t->name.layer < 0 || n_layers <= 1) {
          const char* shape = ser.family == "logits" ? "M -5 4 L 5 4 L 0 -5 Z" : "M -4 -4 L 4 -4 L 4 4 L -4 4 Z";
          s += strprintf("<path transform=\"translate(%.1f,%.1f)\" d=\"%s\" fill=\"%s\" stroke=\"%s\"/>\n", x, y,
                         shape, hollow_markers ? "white" : st.color, st.color);
        }
      }
      if (n_layer_points > 1) {
        s += strprintf("<polyline points=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"%.1f\"%s/>\n",
                       points.c_str(), st.color, st.width,
                       *st.dash ? strprintf(" stroke-dasharray=\"%s\"", st.dash).c_str() : "");
      }
    }
  };

  // NMSE panel, with the thresholds in force as a band (or one line under --nmse).
  draw_axes(nmse_axis, "NMSE of A against B, per layer (log scale)", "NMSE");
  if (!thresholds.empty()) {
    const double lo = *std::min_element(thresholds.begin(), thresholds.end());
    const double hi = *std::max_element(thresholds.begin(), thresholds.end());
    const double y_hi = nmse_axis.y(hi), y_lo = nmse_axis.y(lo);
    if (hi > lo) {
      s += strprintf("<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#ffd8d8\" opacity=\"0.6\"/>\n",
                     plot_left, y_hi, plot_right - plot_left, std::max(1.0, y_lo - y_hi));
    } else {
      s += strprintf("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#b00000\" stroke-dasharray=\"8,4\"/>\n",
                     plot_left, y_hi, plot_right, y_hi);
      s += strprintf("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" fill=\"#b00000\">threshold %s</text>\n",
                     plot_right - 4, y_hi - 4, format_sci(hi, 0).c_str());
    }
  }
  draw_series(nmse_axis, [](const TapDiff& t) { return std::isfinite(t.nmse) ? t.nmse : 1e300; }, false);

  // RMS panel: lines = A, hollow circles = B; where they agree the circles sit on the lines.
  draw_axes(rms_axis, "RMS per layer: lines = A, circles = B (log scale)", "RMS");
  draw_series(rms_axis, [](const TapDiff& t) { return t.rms_a; }, false);
  for (const auto& ser : series) {
    const Style st = style_of(ser.family);
    for (const auto& [col, t] : ser.by_column) {
      s += strprintf("<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.2\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.2\"/>\n",
                     x_of(col), rms_axis.y(t->rms_b), st.color);
    }
  }

  // The divergence point: a vertical line through both panels and a ring on its NMSE point.
  if (r.diverged()) {
    const TapDiff& d = r.taps[static_cast<size_t>(r.divergence)];
    if (!d.name.is_logits_tensor && d.name.prompt == 0) {
      const double x = x_of(column_of(d));
      const double y = nmse_axis.y(std::isfinite(d.nmse) ? d.nmse : 1e300);
      s += strprintf("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#c00000\" stroke-width=\"1.5\" stroke-dasharray=\"4,3\"/>\n",
                     x, nmse_top, x, rms_bottom);
      s += strprintf("<circle cx=\"%.1f\" cy=\"%.1f\" r=\"9\" fill=\"none\" stroke=\"#c00000\" stroke-width=\"2.5\"/>\n", x, y);
      // The label goes at the bottom of the NMSE panel on a white ground, away from the lines
      // that rise after a divergence.
      const bool right_half = x > (plot_left + plot_right) / 2;
      const std::string label = "first divergence: " + d.name.display;
      const double label_w = 7.2 * static_cast<double>(label.size());
      const double label_x = right_half ? x - 8 - label_w : x + 8;
      s += strprintf("<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"18\" fill=\"white\" opacity=\"0.85\"/>\n",
                     label_x - 3, nmse_bottom - 24, label_w + 6);
      s += strprintf("<text x=\"%.1f\" y=\"%.1f\" fill=\"#c00000\" font-weight=\"bold\">%s</text>\n", label_x,
                     nmse_bottom - 10, xml_escape(label).c_str());
    }
  }
  s += strprintf("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#444\">layer</text>\n",
                 (plot_left + plot_right) / 2, rms_bottom + 36);

  // Legend.
  double ly = nmse_top + 4;
  s += strprintf("<text x=\"%.1f\" y=\"%.1f\" font-weight=\"bold\">tap family</text>\n", legend_x, ly);
  ly += 20;
  for (const auto& ser : series) {
    const Style st = style_of(ser.family);
    const bool is_layer = ser.by_column.begin()->second->name.layer >= 0;
    if (is_layer) {
      s += strprintf("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"%.1f\"%s/>\n",
                     legend_x, ly - 4, legend_x + 34, ly - 4, st.color, st.width,
                     *st.dash ? strprintf(" stroke-dasharray=\"%s\"", st.dash).c_str() : "");
    } else {
      const char* shape = ser.family == "logits" ? "M -5 4 L 5 4 L 0 -5 Z" : "M -4 -4 L 4 -4 L 4 4 L -4 4 Z";
      s += strprintf("<path transform=\"translate(%.1f,%.1f)\" d=\"%s\" fill=\"%s\"/>\n", legend_x + 17, ly - 4, shape,
                     st.color);
    }
    s += strprintf("<text x=\"%.1f\" y=\"%.1f\">%s</text>\n", legend_x + 42, ly, xml_escape(ser.family).c_str());
    ly += 18;
  }
  s += strprintf("<text x=\"%.1f\" y=\"%.1f\" fill=\"#444\">solid: attention side</text>\n", legend_x, ly + 8);
  s += strprintf("<text x=\"%.1f\" y=\"%.1f\" fill=\"#444\">dashed: FFN side</text>\n", legend_x, ly + 24);
  s += strprintf("<text x=\"%.1f\" y=\"%.1f\" fill=\"#444\">thick: residual stream</text>\n", legend_x, ly + 40);
  if (!thresholds.empty()) {
    const double lo = *std::min_element(thresholds.begin(), thresholds.end());
    const double hi = *std::max_element(thresholds.begin(), thresholds.end());
    if (hi > lo) {
      s += strprintf("<rect x=\"%.1f\" y=\"%.1f\" width=\"34\" height=\"10\" fill=\"#ffd8d8\"/>\n", legend_x, ly + 50);
      s += strprintf("<text x=\"%.1f\" y=\"%.1f\" fill=\"#b00000\">thresholds %s to %s</text>\n", legend_x + 42,
                     ly + 60, format_sci(lo, 0).c_str(), format_sci(hi, 0).c_str());
    }
  }
  s += "</svg>\n";
  return s;
}

namespace {

bool has_extension(const std::string& path, const char* ext) {
  std::string e = std::filesystem::path(path).extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return std::tolower(c); });
  return e == ext;
}

}  // namespace

Status write_diff_plot(const DiffReport& report, const std::string& path) {
  const std::string svg = render_diff_svg(report);
  if (has_extension(path, ".svg")) return write_file_atomically(path, svg.data(), svg.size());
  if (!has_extension(path, ".png")) {
    return Status::errorf("plot %s: the file name must end in .svg or .png", path.c_str());
  }
  // The SVG is a scratch file (never committed, so removed), the PNG an output like any other.
  PLUMB_ASSIGN_OR_RETURN(std::unique_ptr<OutputFile> scratch, OutputFile::create(path + ".svg"));
  PLUMB_RETURN_IF_ERROR(scratch->write(svg.data(), svg.size()));
  PLUMB_RETURN_IF_ERROR(scratch->flush());
  PLUMB_ASSIGN_OR_RETURN(std::unique_ptr<OutputFile> png, OutputFile::create(path));
  std::vector<std::string> args = {"rsvg-convert", "--format=png", "--output", png->temp_path(),
                                   scratch->temp_path()};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int spawn_error = posix_spawnp(&pid, "rsvg-convert", nullptr, nullptr, argv.data(), environ);
  int status = 0;
  const bool ran = spawn_error == 0 && waitpid(pid, &status, 0) == pid;
  if (spawn_error != 0) {
    return Status::errorf(
        "plot %s: PNG output needs rsvg-convert (apt-get install librsvg2-bin), which was not found; "
        "write .svg instead",
        path.c_str());
  }
  if (!ran || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return Status::errorf("plot %s: rsvg-convert failed to rasterize the SVG", path.c_str());
  }
  return png->commit();
}

}  // namespace plumb::trace
