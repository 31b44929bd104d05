#include "trace/tap_map.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "trace/tap_names.h"

namespace plumb::trace {

namespace {

constexpr const char* kLayouts[] = {"tokens,width", "tokens,heads,dim", "width,tokens", "heads,tokens,dim"};

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r") + 1 - b);
}

// A pattern with {i}, '*' and '?' as an anchored regular expression.
std::string pattern_regex(const std::string& pattern, bool* has_layer) {
  std::string re;
  *has_layer = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern.compare(i, 3, "{i}") == 0) {
      re += "([0-9]+)";
      *has_layer = true;
      i += 2;
    } else if (pattern[i] == '*') {
      re += ".*";
    } else if (pattern[i] == '?') {
      re += ".";
    } else if (std::string("\\^$.|+()[]{}").find(pattern[i]) != std::string::npos) {
      re += std::string("\\") + pattern[i];
    } else {
      re += pattern[i];
    }
  }
  return re;
}

// A tap name as the tensor of a trace file: "blk.3.q" -> "p0.trace.blk.3.q", "tokens" ->
// "p0.tokens"; names already in that form pass through.
std::string tensor_of(const std::string& tap) {
  if (tap == "tokens") return "p0.tokens";
  if (parse_tensor_name(tap)) return tap;
  if (tap.size() > 8 && tap[0] == 'p' && tap.find(".tokens") == tap.size() - 7) return tap;
  return "p0.trace." + tap;
}

// Is `name` a tap plumb knows (so an unmapped array of that name is taken as it is)?
bool is_plumb_tap(const std::string& name) {
  if (name == "tokens" || name == "inp_embd" || name == "result_norm" || name == "logits") return true;
  if (parse_tensor_name(name)) return true;
  auto t = parse_tensor_name("p0.trace." + name);
  return t && t->layer >= 0 &&
         std::find(kLayerTaps.begin(), kLayerTaps.end(), t->family) != kLayerTaps.end();
}

std::string dims_string(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

// Rearranges `a` (C order) into [n_tokens][width] under `layout`; false when it does not fit.
// n_tokens / width of 0 mean "unknown: take what the array says" (no reference tap).
bool apply_layout(const DumpArray& a, const std::string& layout, int64_t n_tokens, int64_t width,
                  TraceTensor* out, std::string* expected) {
  std::vector<int64_t> d = a.dims;
  while (d.size() > 1 && d.front() == 1) d.erase(d.begin());  // batch dimensions of 1
  const bool known = n_tokens > 0 && width > 0;
  auto fill = [&](int64_t t, int64_t w) {
    out->n_tokens = t;
    out->width = w;
    out->data.resize(static_cast<size_t>(t * w));
  };
  if (layout == "tokens,width") {
    *expected = known ? dims_string({n_tokens, width}) : "[tokens, width]";
    if (d.size() == 1 && (!known || (n_tokens == 1 && d[0] == width))) d.insert(d.begin(), 1);
    if (d.size() != 2 || (known && (d[0] != n_tokens || d[1] != width))) return false;
    fill(d[0], d[1]);
    std::transform(a.values.begin(), a.values.end(), out->data.begin(), [](double v) { return static_cast<float>(v); });
    return true;
  }
  if (layout == "width,tokens") {
    *expected = known ? dims_string({width, n_tokens}) : "[width, tokens]";
    if (d.size() != 2 || (known && (d[0] != width || d[1] != n_tokens))) return false;
    fill(d[1], d[0]);
    for (int64_t w = 0; w < d[0]; ++w) {
      for (int64_t t = 0; t < d[1]; ++t) out->data[static_cast<size_t>(t * d[0] + w)] = static_cast<float>(a.values[static_cast<size_t>(w * d[1] + t)]);
    }
    return true;
  }
  if (layout == "tokens,heads,dim") {
    *expected = known ? strprintf("[%lld, heads, %lld / heads]", static_cast<long long>(n_tokens), static_cast<long long>(width))
                      : "[tokens, heads, dim]";
    if (d.size() != 3 || (known && (d[0] != n_tokens || d[1] * d[2] != width))) return false;
    fill(d[0], d[1] * d[2]);
    std::transform(a.values.begin(), a.values.end(), out->data.begin(), [](double v) { return static_cast<float>(v); });
    return true;
  }
  if (layout == "heads,tokens,dim") {
    *expected = known ? strprintf("[heads, %lld, %lld / heads]", static_cast<long long>(n_tokens), static_cast<long long>(width))
                      : "[heads, tokens, dim]";
    if (d.size() != 3 || (known && (d[1] != n_tokens || d[0] * d[2] != width))) return false;
    const int64_t heads = d[0], tokens = d[1], dim = d[2];
    fill(tokens, heads * dim);
    for (int64_t h = 0; h < heads; ++h) {
      for (int64_t t = 0; t < tokens; ++t) {
        for (int64_t k = 0; k < dim; ++k) {
          out->data[static_cast<size_t>(t * heads * dim + h * dim + k)] =
              static_cast<float>(a.values[static_cast<size_t>((h * tokens + t) * dim + k)]);
        }
      }
    }
    return true;
  }
  return false;
}

}  // namespace

bool is_known_layout(const std::string& layout) {
  if (layout == "auto") return true;
  for (const char* l : kLayouts) {
    if (layout == l) return true;
  }
  return false;
}

std::optional<std::pair<std::string, std::string>> TapMap::map(const std::string& dump_name) const {
  for (const auto& rule : rules) {
    std::smatch m;
    if (!std::regex_match(dump_name, m, rule.re)) continue;
    std::string target = rule.target;
    if (rule.has_layer) {
      for (size_t at; (at = target.find("{i}")) != std::string::npos;) target.replace(at, 3, m[1].str());
    }
    return std::make_pair(tensor_of(target), rule.layout.empty() ? layout : rule.layout);
  }
  if (is_plumb_tap(dump_name)) return std::make_pair(tensor_of(dump_name), layout);
  return std::nullopt;
}

Result<TapMap> parse_tap_map(const std::string& text, const std::string& origin) {
  TapMap map;
  std::istringstream in(text);
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    const std::string where = origin + ":" + std::to_string(number);
    if (const size_t hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    line = trim(line);
    if (line.empty()) continue;
    const size_t arrow = line.find("->");
    if (arrow == std::string::npos) {
      const size_t colon = line.find(':');
      if (colon == std::string::npos) {
        return Status::errorf("%s: expected 'NAME -> TAP [LAYOUT]' or 'layout: | engine: | precision: "
                              "VALUE', found '%s'", where.c_str(), line.c_str());
      }
      const std::string key = trim(line.substr(0, colon)), value = trim(line.substr(colon + 1));
      if (key == "layout") {
        if (!is_known_layout(value)) {
          return Status::errorf("%s: unknown layout '%s' (tokens,width | width,tokens | heads,tokens,dim | "
                                "tokens,heads,dim | auto)", where.c_str(), value.c_str());
        }
        map.layout = value;
      } else if (key == "engine") {
        map.engine = value;
      } else if (key == "precision") {
        if (value != "exact" && value != "float" && value != "quantized" && value != "unknown") {
          return Status::errorf("%s: precision '%s' (exact | float | quantized | unknown)", where.c_str(), value.c_str());
        }
        map.precision = value;
      } else {
        return Status::errorf("%s: unknown setting '%s' (layout, engine, precision)", where.c_str(), key.c_str());
      }
      continue;
    }
    TapRule rule;
    rule.pattern = trim(line.substr(0, arrow));
    std::istringstream rest(line.substr(arrow + 2));
    rest >> rule.target >> rule.layout;
    std::string extra;
    if (rule.pattern.empty() || rule.target.empty() || (rest >> extra)) {
      return Status::errorf("%s: expected 'NAME -> TAP [LAYOUT]', found '%s'", where.c_str(), line.c_str());
    }
    if (!rule.layout.empty() && !is_known_layout(rule.layout)) {
      return Status::errorf("%s: unknown layout '%s' (tokens,width | width,tokens | heads,tokens,dim | "
                            "tokens,heads,dim | auto)", where.c_str(), rule.layout.c_str());
    }
    rule.re = std::regex(pattern_regex(rule.pattern, &rule.has_layer));
    const bool target_has_layer = rule.target.find("{i}") != std::string::npos;
    if (target_has_layer != rule.has_layer) {
      return Status::errorf("%s: {i} must appear in both the name and the tap, or in neither", where.c_str());
    }
    map.rules.push_back(std::move(rule));
  }
  return map;
}

Result<TapMap> read_tap_map(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::errorf("cannot open the tap map %s", path.c_str());
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse_tap_map(ss.str(), path);
}

Result<TraceFile> dump_to_trace(const std::string& path, const std::vector<DumpArray>& arrays,
                                const TapMap& map, const TraceFile& reference) {
  TraceFile out;
  out.path = path;
  out.metadata["trace.engine"] = map.engine.empty() ? "unknown engine" : map.engine;
  if (!map.precision.empty()) out.metadata["dump.precision"] = map.precision;
  int unmapped = 0;
  for (const DumpArray& a : arrays) {
    const auto mapped = map.map(a.name);
    if (!mapped) {
      ++unmapped;
      continue;
    }
    const auto& [tensor, layout] = *mapped;
    const std::string where = path + ": '" + a.name + "'";
    if (tensor.size() > 7 && tensor.compare(tensor.size() - 7, 7, ".tokens") == 0) {
      if (!a.is_integer) return Status::errorf("%s maps to %s but holds %s, not integers", where.c_str(), tensor.c_str(), a.dtype.c_str());
      const int prompt = std::stoi(tensor.substr(1));
      auto& ids = out.tokens[prompt];
      for (double v : a.values) ids.push_back(static_cast<int32_t>(v));
      continue;
    }
    auto name = parse_tensor_name(tensor);
    if (!name) return Status::errorf("%s maps to '%s', which is not a tap", where.c_str(), tensor.c_str());
    if (out.find(tensor) != nullptr) {
      return Status::errorf("%s maps to %s, which another array already is", where.c_str(), name->display.c_str());
    }
    const TraceTensor* ref = reference.find(tensor);
    TraceTensor t;
    t.name = *name;
    std::vector<std::string> tried;
    bool fitted = false;
    const int64_t want_tokens = ref ? ref->n_tokens : 0, want_width = ref ? ref->width : 0;
    for (const char* l : kLayouts) {
      if (layout != "auto" && layout != l) continue;
      std::string expected;
      if (apply_layout(a, l, want_tokens, want_width, &t, &expected)) {
        fitted = true;
        break;
      }
      tried.push_back(std::string(l) + " " + expected);
    }
    if (!fitted) {
      std::string list;
      for (size_t i = 0; i < tried.size(); ++i) list += (i ? "; " : "") + tried[i];
      if (ref == nullptr) {
        return Status::errorf("%s (-> %s) has shape %s, which no layout tried reads as [tokens][width]: %s",
                              where.c_str(), name->display.c_str(), a.shape_string().c_str(), list.c_str());
      }
      return Status::errorf("%s (-> %s) has shape %s; the reference %s holds %s (%lld tokens of width %lld). "
                            "Layouts tried: %s",
                            where.c_str(), name->display.c_str(), a.shape_string().c_str(), reference.path.c_str(),
                            ref->shape.c_str(), static_cast<long long>(ref->n_tokens),
                            static_cast<long long>(ref->width), list.c_str());
    }
    t.shape = "[" + std::to_string(t.width) + ", " + std::to_string(t.n_tokens) + "]";
    out.tensors.push_back(std::move(t));
  }
  if (out.tensors.empty()) {
    return Status::errorf("%s: none of its %zu arrays maps to a tap (%d unmapped); give a tap map (--map)",
                          path.c_str(), arrays.size(), unmapped);
  }
  std::stable_sort(out.tensors.begin(), out.tensors.end(),
                   [](const TraceTensor& x, const TraceTensor& y) { return forward_order_less(x.name, y.name); });
  return out;
}

Result<TraceFile> read_dump_trace(const std::string& path, const TapMap& map, const TraceFile& reference) {
  PLUMB_ASSIGN_OR_RETURN(std::vector<DumpArray> arrays, read_dump(path));
  return dump_to_trace(path, arrays, map, reference);
}

}  // namespace plumb::trace
