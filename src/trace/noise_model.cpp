#include "trace/noise_model.h"

#include <algorithm>
#include <cctype>

#include "trace/diff.h"
#include "util/status.h"

namespace plumb::trace {

namespace {

// "austen-21m-q4_k_m.gguf" -> "Q4_K_M"; "SmolLM2-135M-Instruct.Q4_1.gguf" -> "Q4_1"; "" when no
// part of the file name is a GGML type.
std::string weights_from_model_name(std::string name) {
  const size_t slash = name.find_last_of('/');
  if (slash != std::string::npos) name = name.substr(slash + 1);
  if (name.size() > 5 && name.compare(name.size() - 5, 5, ".gguf") == 0) name.resize(name.size() - 5);
  std::string found;
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find_first_of("-.", start);
    if (end == std::string::npos) end = name.size();
    std::string part = name.substr(start, end - start);
    std::transform(part.begin(), part.end(), part.begin(), [](unsigned char c) { return std::toupper(c); });
    const bool is_float = part == "F16" || part == "F32" || part == "BF16";
    const bool is_quant = (part.size() >= 2 && part[0] == 'Q' && std::isdigit(static_cast<unsigned char>(part[1]))) ||
                          (part.size() >= 3 && part[0] == 'I' && part[1] == 'Q' &&
                           std::isdigit(static_cast<unsigned char>(part[2])));
    if (is_float || is_quant) found = part;  // the last one wins ("...-f16.Q4_1")
    start = end + 1;
  }
  return found;
}

Precision precision_of_weights(const std::string& weights) {
  if (weights.empty()) return Precision::Unknown;
  if (weights == "F16" || weights == "F32" || weights == "BF16") return Precision::Float;
  return Precision::Quantized;
}

int rank(Precision p) {
  switch (p) {
    case Precision::Exact: return 0;
    case Precision::Float: return 1;
    case Precision::Quantized: return 2;
    case Precision::Unknown: return 3;
  }
  return 3;
}

}  // namespace

std::string TraceOrigin::describe() const {
  return weights.empty() ? engine : engine + ", " + weights + " weights";
}

TraceOrigin trace_origin(const TraceFile& file) {
  TraceOrigin o;
  const std::string engine = file.meta("trace.engine");
  if (file.meta("general.architecture") == "ref64" || !file.meta("ref64.model").empty()) {
    o.engine = "float64 (ref64.py)";
    o.weights = weights_from_model_name(file.meta("ref64.model"));
    o.precision = Precision::Exact;
  } else if (engine == "plumb") {
    const std::string backend = file.meta("trace.backend");
    o.engine = "plumb " + (backend.empty() ? std::string("(backend not recorded)") : backend);
    o.weights = weights_from_model_name(file.meta("trace.model"));
    // Both backends keep activations in F32 and stay within about 1e-8 of float64 per tap
    // (docs/EXACTNESS.md: CPU, and CUDA measured on the H200); an unrecorded one is unknown.
    o.precision = backend == "cpu" || backend == "cuda" ? Precision::Exact : Precision::Unknown;
  } else if (file.meta("ref.engine").rfind("llama.cpp", 0) == 0 || engine.rfind("llama.cpp", 0) == 0) {
    o.engine = "llama.cpp";
    o.weights = weights_from_model_name(engine.empty() ? file.meta("ref.model") : file.meta("trace.model"));
    o.precision = precision_of_weights(o.weights);
  } else if (const std::string declared = file.meta("dump.precision"); !declared.empty()) {
    // A dump whose tap map says how precise its engine is.
    o.engine = engine.empty() ? "unknown engine" : engine;
    o.precision = declared == "exact"     ? Precision::Exact
                  : declared == "float"   ? Precision::Float
                  : declared == "quantized" ? Precision::Quantized
                                            : Precision::Unknown;
  } else {
    o.engine = engine.empty() ? "unknown engine" : engine;
    o.weights = weights_from_model_name(file.meta("trace.model"));
    o.precision = Precision::Unknown;
  }
  return o;
}

bool is_norm_family(const std::string& family) {
  return family == "attn_norm" || family == "ffn_norm" || family == "result_norm";
}

NoiseRule noise_rule(const TraceOrigin& a, const TraceOrigin& b) {
  NoiseRule r;
  r.precision = rank(a.precision) >= rank(b.precision) ? a.precision : b.precision;
  // docs/TRACE.md, "The verdict": the largest of each over every correct pair measured, and
  // how far the planted errors land above.
  r.jump = 20;
  r.gain_jump = 3;
  const char* kind = "";
  switch (r.precision) {
    case Precision::Exact:
    case Precision::Float:
      r.nmse_floor = 1e-5;
      r.gain_floor = 2e-3;
      kind = r.precision == Precision::Exact ? "exact pair" : "float pair";
      break;
    case Precision::Quantized:
    case Precision::Unknown:
      r.nmse_floor = 5e-3;
      r.gain_floor = 5e-2;
      kind = r.precision == Precision::Quantized ? "quantized pair" : "pair of unknown precision";
      break;
  }
  r.description = strprintf("%s vs %s: %s, NMSE floor %s, jump x%g, |gain-1| floor %s, jump x%g",
                            a.describe().c_str(), b.describe().c_str(), kind,
                            format_sci(r.nmse_floor, 0).c_str(), r.jump,
                            format_sci(r.gain_floor, 0).c_str(), r.gain_jump);
  return r;
}

}  // namespace plumb::trace
