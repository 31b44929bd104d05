// plumb diff A.gguf B.gguf: compare two trace files tap by tap and name the first divergence.
#include <cstdio>

#include "cli/args.h"
#include "cli/command.h"
#include "trace/diff.h"
#include "trace/plot_svg.h"
#include "util/output_file.h"

namespace plumb::cli {
namespace {

int run_diff(int argc, char** argv) {
  ArgParser p("diff", "A B [--map FILE] [--layout L] [--nmse X] [--tap GLOB] [--json] [--plot FILE.svg|.png]",
              "Compare two traces (plumb trace, ../shared/ref/*.gguf, ref64.py --out, or another engine's "
              "dump: a directory of .npy files, an .npz or a .safetensors file, named by --map) tensor by "
              "tensor in forward order: max |d|, NMSE = sum (a-b)^2 / sum b^2 with B the reference, gain "
              "a.b / b.b, cosine, RMS of A and B, worst element. The first tap over its limits is the "
              "divergence point; the limits follow the precision of the pair (what made each file) "
              "and the error of the taps before (docs/TRACE.md).\n"
              "Exit: 0 all taps within thresholds, 1 divergence or error (different tokens, unreadable "
              "file), 2 usage error. Per-tap default thresholds: docs/TRACE.md.");
  float nmse = -1;
  std::string taps = "*";
  std::string plot;
  bool json = false;
  std::string map_path, layout;
  p.option("--nmse", "X", "one NMSE threshold for every tap instead of the noise-aware limits (no gain test)", &nmse,
           Range::at_least(0));
  p.option("--map", "FILE", "tap map for a dump: 'engine.name.{i} -> blk.{i}.q [LAYOUT]' lines (docs/TRACE.md)", &map_path);
  p.option("--layout", "L", "layout of a dump's arrays: auto (default), tokens,width, width,tokens, "
           "heads,tokens,dim, tokens,heads,dim", &layout);
  p.option("--tap", "GLOB", "compare only taps matching these comma-separated globs (\"blk.3.*\")", &taps);
  p.json_flag("--json", "print the whole report as JSON instead of the table", &json);
  p.option("--plot", "FILE", "draw NMSE and RMS per layer to FILE.svg (FILE.png needs rsvg-convert)", &plot);
  p.positionals("A B", 2, 2);
  if (auto code = p.parse(argc, argv)) return *code;
  if (!plot.empty()) {
    if (Status s = check_output_path(plot, {p.positional()[0], p.positional()[1]}); !s.ok()) {
      return p.usage_error("--plot: " + s.message());
    }
  }
  trace::DiffOptions options;
  if (nmse >= 0) options.nmse = nmse;
  options.taps = taps;
  options.map_path = map_path;
  options.layout = layout;

  auto report = trace::diff_trace_files(p.positional()[0], p.positional()[1], options);
  if (!report.ok()) return p.fail(report.status().message());
  if (report->taps.empty()) {
    return p.fail("no tensor selected is present in both files: nothing to compare");
  }
  if (json) {
    std::fputs(trace::format_json(*report).c_str(), stdout);
  } else {
    std::fputs(trace::format_table(*report).c_str(), stdout);
    std::printf("%s\n", report->verdict().c_str());
  }
  if (!plot.empty()) {
    if (Status s = trace::write_diff_plot(*report, plot); !s.ok()) return p.fail(s.message());
  }
  return report->diverged() ? 1 : 0;
}

const bool registered = register_command({"diff", "compare two trace files, find the first divergent tap", run_diff});

}  // namespace
}  // namespace plumb::cli
