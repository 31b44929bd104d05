// Text and JSON renderings of a DiffReport.
#include <cmath>

#include "trace/diff.h"

namespace plumb::trace {

namespace {

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += strprintf("\\u%04x", c);
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

// JSON has no inf/nan: those become null (the "over" and "non_finite" fields say why).
std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  return strprintf("%.9g", v);
}

std::string json_string_array(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + json_string(items[i]);
  return out + "]";
}

}  // namespace

std::string format_table(const DiffReport& r) {
  std::string out = strprintf("A: %s\nB: %s (reference)\nlimits: %s\n", r.path_a.c_str(),
                              r.path_b.c_str(), r.rule.c_str());
  size_t name_width = 4;
  for (const auto& t : r.taps) name_width = std::max(name_width, t.name.display.size());
  out += strprintf("%-*s %-12s %9s %9s %7s %8s %7s %9s %9s %9s  %s\n", static_cast<int>(name_width), "tap",
                   "shape", "max|d|", "NMSE", "limit", "gain", "limit", "cosine", "RMS A", "RMS B",
                   "worst (token, index): A vs B");
  for (size_t i = 0; i < r.taps.size(); ++i) {
    const TapDiff& t = r.taps[i];
    std::string mark;
    if (static_cast<int>(i) == r.divergence) {
      mark = "  <== first divergence";
    } else if (t.over) {
      mark = "  over";
    }
    if (!t.shape_match) {
      out += strprintf("%-*s shape %s in A vs %s in B%s\n", static_cast<int>(name_width),
                       t.name.display.c_str(), t.shape_a.c_str(), t.shape_b.c_str(), mark.c_str());
      continue;
    }
    std::string worst = strprintf("(%lld, %lld): %.5g vs %.5g", static_cast<long long>(t.worst_token),
                                  static_cast<long long>(t.worst_index), t.worst_a, t.worst_b);
    if (t.non_finite_a + t.non_finite_b > 0) {
      worst += strprintf("; non-finite: %lld in A, %lld in B", static_cast<long long>(t.non_finite_a),
                         static_cast<long long>(t.non_finite_b));
    }
    const std::string gain_limit = t.gain_limit > 0 ? "\u00b1" + format_sci(t.gain_limit, 0) : "-";
    out += strprintf("%-*s %-12s %9s %9s %7s %8.5f %7s %9.6f %9.3g %9.3g  %s%s\n", static_cast<int>(name_width),
                     t.name.display.c_str(), t.shape_a.c_str(), format_sci(t.max_abs, 1).c_str(),
                     format_sci(t.nmse, 1).c_str(), format_sci(t.threshold, 0).c_str(), t.gain,
                     gain_limit.c_str(), t.cosine,
                     t.rms_a, t.rms_b, worst.c_str(), mark.c_str());
  }
  if (!r.only_in_a.empty()) {
    out += strprintf("skipped, only in A (%zu): ", r.only_in_a.size());
    for (size_t i = 0; i < r.only_in_a.size(); ++i) out += (i ? ", " : "") + r.only_in_a[i];
    out += "\n";
  }
  if (!r.only_in_b.empty()) {
    out += strprintf("skipped, only in B (%zu): ", r.only_in_b.size());
    for (size_t i = 0; i < r.only_in_b.size(); ++i) out += (i ? ", " : "") + r.only_in_b[i];
    out += "\n";
  }
  return out;
}

std::string format_json(const DiffReport& r) {
  std::string out = "{\n";
  out += "  \"a\": " + json_string(r.path_a) + ",\n";
  out += "  \"b\": " + json_string(r.path_b) + ",\n";
  out += "  \"nmse_override\": " + (r.nmse_override ? json_number(*r.nmse_override) : "null") + ",\n";
  out += "  \"prompts_checked\": [";
  for (size_t i = 0; i < r.prompts.size(); ++i) out += (i ? ", " : "") + std::to_string(r.prompts[i]);
  out += "],\n";
  out += "  \"diverged\": " + std::string(r.diverged() ? "true" : "false") + ",\n";
  out += "  \"divergence\": " +
         (r.diverged() ? json_string(r.taps[static_cast<size_t>(r.divergence)].name.display) : "null") +
         ",\n";
  out += "  \"growth_per_layer\": " + (r.growth_per_layer ? json_number(*r.growth_per_layer) : "null") +
         ",\n";
  out += "  \"verdict\": " + json_string(r.verdict()) + ",\n";
  out += "  \"rule\": " + json_string(r.rule) + ",\n";
  out += "  \"only_in_a\": " + json_string_array(r.only_in_a) + ",\n";
  out += "  \"only_in_b\": " + json_string_array(r.only_in_b) + ",\n";
  out += "  \"taps\": [\n";
  for (size_t i = 0; i < r.taps.size(); ++i) {
    const TapDiff& t = r.taps[i];
    out += "    {\"tap\": " + json_string(t.name.display) + ", \"tensor\": " + json_string(t.name.tensor) +
           ", \"family\": " + json_string(t.name.family) +
           ", \"layer\": " + (t.name.layer >= 0 ? std::to_string(t.name.layer) : "null") +
           ", \"shape_a\": " + json_string(t.shape_a) + ", \"shape_b\": " + json_string(t.shape_b) +
           ", \"shape_match\": " + (t.shape_match ? "true" : "false") +
           ", \"max_abs\": " + json_number(t.max_abs) + ", \"nmse\": " + json_number(t.nmse) +
           ", \"threshold\": " + json_number(t.threshold) + ", \"gain\": " + json_number(t.gain) +
           ", \"gain_limit\": " + json_number(t.gain_limit) + ", \"gain_over\": " + (t.gain_over ? "true" : "false") +
           ", \"cosine\": " + json_number(t.cosine) +
           ", \"rms_a\": " + json_number(t.rms_a) + ", \"rms_b\": " + json_number(t.rms_b) +
           ", \"worst\": {\"token\": " + std::to_string(t.worst_token) +
           ", \"index\": " + std::to_string(t.worst_index) + ", \"a\": " + json_number(t.worst_a) +
           ", \"b\": " + json_number(t.worst_b) + "}" +
           ", \"non_finite_a\": " + std::to_string(t.non_finite_a) +
           ", \"non_finite_b\": " + std::to_string(t.non_finite_b) +
           ", \"over\": " + (t.over ? "true" : "false") + "}" + (i + 1 < r.taps.size() ? "," : "") + "\n";
  }
  out += "  ]\n}\n";
  return out;
}

}  // namespace plumb::trace
