#include "trace/diff.h"

#include <cmath>
#include <algorithm>
#include <map>
#include <set>

#include "trace/glob.h"
#include "trace/noise_model.h"
#include "trace/tap_map.h"

namespace plumb::trace {

TapDiff compare_arrays(const float* a, const float* b, int64_t width, int64_t n_tokens) {
  TapDiff d;
  d.width = width;
  d.n_tokens = n_tokens;
  const int64_t n = width * n_tokens;
  double sum_sq_diff = 0, sum_sq_a = 0, sum_sq_b = 0, dot = 0;
  int64_t worst = -1, first_non_finite = -1;
  for (int64_t i = 0; i < n; ++i) {
    const double x = a[i], y = b[i];
    if (!std::isfinite(x) || !std::isfinite(y)) {
      d.non_finite_a += std::isfinite(x) ? 0 : 1;
      d.non_finite_b += std::isfinite(y) ? 0 : 1;
      if (first_non_finite < 0) first_non_finite = i;
      continue;
    }
    const double diff = x - y;
    sum_sq_diff += diff * diff;
    sum_sq_a += x * x;
    sum_sq_b += y * y;
    dot += x * y;
    if (worst < 0 || std::fabs(diff) > d.max_abs) {
      d.max_abs = std::fabs(diff);
      worst = i;
    }
  }
  if (first_non_finite >= 0) {  // a NaN or inf is the worst element there can be
    worst = first_non_finite;
    d.max_abs = INFINITY;
  }
  const int64_t n_finite = n - std::max(d.non_finite_a, d.non_finite_b);
  if (d.non_finite_a + d.non_finite_b > 0) {
    d.nmse = INFINITY;
  } else if (sum_sq_b > 0) {
    d.nmse = sum_sq_diff / sum_sq_b;
  } else {
    d.nmse = sum_sq_diff > 0 ? INFINITY : 0.0;
  }
  if (sum_sq_a > 0 && sum_sq_b > 0) {
    d.cosine = dot / (std::sqrt(sum_sq_a) * std::sqrt(sum_sq_b));
  } else {
    d.cosine = (sum_sq_a == 0 && sum_sq_b == 0) ? 1.0 : 0.0;
  }
  d.gain = sum_sq_b > 0 ? dot / sum_sq_b : 1.0;
  d.rms_a = n_finite > 0 ? std::sqrt(sum_sq_a / static_cast<double>(n_finite)) : 0.0;
  d.rms_b = n_finite > 0 ? std::sqrt(sum_sq_b / static_cast<double>(n_finite)) : 0.0;
  if (worst >= 0 && width > 0) {
    d.worst_token = worst / width;
    d.worst_index = worst % width;
    d.worst_a = a[worst];
    d.worst_b = b[worst];
  }
  return d;
}

namespace {

Status check_tokens(const TraceFile& a, const TraceFile& b, int prompt) {
  const auto ia = a.tokens.find(prompt);
  const auto ib = b.tokens.find(prompt);
  const auto missing = [&](const TraceFile& f) {
    return Status::errorf(
        "%s has no p%d.tokens, so it cannot be checked that both files ran the same tokens",
        f.path.c_str(), prompt);
  };
  if (ia == a.tokens.end()) return missing(a);
  if (ib == b.tokens.end()) return missing(b);
  const auto& ta = ia->second;
  const auto& tb = ib->second;
  const size_t common = std::min(ta.size(), tb.size());
  for (size_t i = 0; i < common; ++i) {
    if (ta[i] != tb[i]) {
      return Status::errorf(
          "the files ran different tokens: p%d.tokens differ first at position %zu (A: %d, B: %d; "
          "A has %zu tokens, B has %zu)",
          prompt, i, ta[i], tb[i], ta.size(), tb.size());
    }
  }
  if (ta.size() != tb.size()) {
    return Status::errorf(
        "the files ran different tokens: p%d.tokens has %zu tokens in A and %zu in B (the first "
        "%zu agree)",
        prompt, ta.size(), tb.size(), common);
  }
  return Status();
}

// NMSE growth per layer of the residual stream (`out`, else the diverging family) from the
// divergence's layer to the last layer compared.
std::optional<double> growth_after(const DiffReport& r) {
  const TapDiff& first = r.taps[static_cast<size_t>(r.divergence)];
  // After result_norm or the logits there are no layers left.
  if (first.name.layer < 0 && first.name.family != "inp_embd") return std::nullopt;
  const int from_layer = std::max(first.name.layer, 0);
  for (const std::string& family : {std::string("out"), first.name.family}) {
    const TapDiff* start = nullptr;
    const TapDiff* end = nullptr;
    for (const auto& t : r.taps) {
      if (t.name.prompt != first.name.prompt || t.name.family != family || t.name.layer < from_layer ||
          !t.shape_match || !std::isfinite(t.nmse) || t.nmse <= 0) {
        continue;
      }
      if (start == nullptr) start = &t;
      end = &t;
    }
    if (start != nullptr && end->name.layer > start->name.layer) {
      return std::pow(end->nmse / start->nmse, 1.0 / (end->name.layer - start->name.layer));
    }
  }
  return std::nullopt;
}

}  // namespace

std::string format_sci(double value, int digits) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  if (value == 0) return "0";
  std::string s = strprintf("%.*e", digits, value);
  // "4.1e-01" -> "4.1e-1", "5e+00" -> "5e0"
  const size_t e = s.find('e');
  std::string mantissa = s.substr(0, e);
  std::string exponent = s.substr(e + 1);
  const bool negative = exponent[0] == '-';
  exponent = exponent.substr(1);
  while (exponent.size() > 1 && exponent[0] == '0') exponent.erase(0, 1);
  return mantissa + "e" + (negative ? "-" : "") + exponent;
}

Result<DiffReport> diff_traces(const TraceFile& a, const TraceFile& b, const DiffOptions& options) {
  DiffReport r;
  r.path_a = a.path;
  r.path_b = b.path;
  r.nmse_override = options.nmse;
  const GlobList select(options.taps);

  const NoiseRule rule = noise_rule(trace_origin(a), trace_origin(b));
  r.rule = options.nmse ? "one NMSE threshold for every tap (--nmse " + format_sci(*options.nmse, 1) + "), no gain test"
                        : rule.description;
  // The error the pair already shows before each tap, per prompt: largest NMSE and |gain - 1|
  // of the non-norm taps compared so far.
  std::map<int, std::pair<double, double>> noise_before;

  std::set<int> prompts;
  for (const auto& ta : a.tensors) {
    if (!select.matches(ta.name.display)) continue;
    const TraceTensor* tb = b.find(ta.name.tensor);
    if (tb == nullptr) {
      r.only_in_a.push_back(ta.name.display);
      continue;
    }
    prompts.insert(ta.name.prompt);
  }
  for (const auto& tb : b.tensors) {
    if (select.matches(tb.name.display) && a.find(tb.name.tensor) == nullptr) {
      r.only_in_b.push_back(tb.name.display);
    }
  }
  // Tokens must agree for every prompt compared, and prompt 0's in any case when both have it.
  if (a.tokens.count(0) != 0 && b.tokens.count(0) != 0) prompts.insert(0);
  for (int k : prompts) {
    PLUMB_RETURN_IF_ERROR(check_tokens(a, b, k));
    r.prompts.push_back(k);
  }

  for (const auto& ta : a.tensors) {
    if (!select.matches(ta.name.display)) continue;
    const TraceTensor* tb = b.find(ta.name.tensor);
    if (tb == nullptr) continue;
    TapDiff d;
    if (ta.width != tb->width || ta.n_tokens != tb->n_tokens) {
      d.shape_match = false;
      d.nmse = INFINITY;
      d.max_abs = INFINITY;
      d.cosine = 0;
    } else {
      d = compare_arrays(ta.data.data(), tb->data.data(), ta.width, ta.n_tokens);
    }
    d.name = ta.name;
    d.shape_a = ta.shape;
    d.shape_b = tb->shape;
    auto& [nmse_before, gain_before] = noise_before[ta.name.prompt];
    if (options.nmse) {
      d.threshold = *options.nmse;
    } else {
      d.threshold = std::min(default_nmse_threshold(ta.name.family),
                             std::max(rule.nmse_floor, rule.jump * nmse_before));
      d.gain_limit = std::max(rule.gain_floor, rule.gain_jump * gain_before);
      d.gain_over = d.shape_match && !(std::fabs(d.gain - 1) <= d.gain_limit);
    }
    d.over = !d.shape_match || !(d.nmse <= d.threshold) || d.gain_over;
    if (d.shape_match && !is_norm_family(ta.name.family) && std::isfinite(d.nmse)) {
      nmse_before = std::max(nmse_before, d.nmse);
      gain_before = std::max(gain_before, std::fabs(d.gain - 1));
    }
    if (d.over && r.divergence < 0) r.divergence = static_cast<int>(r.taps.size());
    r.taps.push_back(std::move(d));
  }
  if (r.diverged()) r.growth_per_layer = growth_after(r);
  return r;
}

Result<DiffReport> diff_trace_files(const std::string& path_a, const std::string& path_b,
                                    const DiffOptions& options) {
  TapMap map;
  if (!options.map_path.empty()) {
    PLUMB_ASSIGN_OR_RETURN(map, read_tap_map(options.map_path));
  }
  if (!options.layout.empty()) {
    if (!is_known_layout(options.layout)) {
      return Status::errorf("unknown layout '%s' (tokens,width | width,tokens | heads,tokens,dim | "
                            "tokens,heads,dim | auto)", options.layout.c_str());
    }
    map.layout = options.layout;
  }
  const bool dump_a = is_dump_path(path_a), dump_b = is_dump_path(path_b);
  TraceFile a, b;
  if (dump_b) {
    if (dump_a) {
      PLUMB_ASSIGN_OR_RETURN(b, read_dump_trace(path_b, map, TraceFile()));
    } else {
      PLUMB_ASSIGN_OR_RETURN(a, read_trace_file(path_a));
      PLUMB_ASSIGN_OR_RETURN(b, read_dump_trace(path_b, map, a));
    }
  } else {
    PLUMB_ASSIGN_OR_RETURN(b, read_trace_file(path_b));
  }
  if (dump_a) {
    PLUMB_ASSIGN_OR_RETURN(a, read_dump_trace(path_a, map, b));
  } else if (a.path.empty()) {
    PLUMB_ASSIGN_OR_RETURN(a, read_trace_file(path_a));
  }
  return diff_traces(a, b, options);
}

std::string DiffReport::verdict() const {
  if (taps.empty()) return "no tensor is present in both files: nothing compared";
  if (!diverged()) return taps.size() == 1 ? std::string("the 1 tap compared is within its threshold")
                            : strprintf("all %zu taps within thresholds", taps.size());
  const TapDiff& d = taps[static_cast<size_t>(divergence)];
  std::string why;
  if (!d.shape_match) {
    why = strprintf("shape %s in A vs %s in B", d.shape_a.c_str(), d.shape_b.c_str());
  } else if (d.non_finite_a + d.non_finite_b > 0) {
    why = strprintf("non-finite values (NaN/inf): %lld in A, %lld in B",
                    static_cast<long long>(d.non_finite_a), static_cast<long long>(d.non_finite_b));
  } else if (!(d.nmse <= d.threshold)) {
    why = "NMSE " + format_sci(d.nmse, 1) + " > " + format_sci(d.threshold, 1);
    if (d.gain_over) why += strprintf(", scale %.4g of B's", d.gain);
  } else {
    why = strprintf("scale %.4g of B's: |gain-1| %s > %s (NMSE %s)", d.gain,
                    format_sci(std::fabs(d.gain - 1), 1).c_str(), format_sci(d.gain_limit, 1).c_str(),
                    format_sci(d.nmse, 1).c_str());
  }
  std::string line = "diverges first at " + d.name.display + ": " + why;
  if (growth_per_layer) {
    const double g = *growth_per_layer;
    if (g >= 1.1) {
      line += strprintf("; error grows \u00d7%.3g per layer after it", g);
    } else if (g <= 1 / 1.1) {
      line += strprintf("; error shrinks \u00d7%.2g per layer after it", g);
    } else {
      line += "; error stays level in later layers";
    }
  }
  return line;
}

}  // namespace plumb::trace
