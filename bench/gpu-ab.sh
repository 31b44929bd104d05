#!/usr/bin/env bash
# On a GPU machine, from the repository root: unpacks what bench/gpu-carry.sh packed, makes the
# TinyLlama models of the CUDA targets with `plumb synth` and `plumb quantize` (kept in WORK
# between calls while the machine stays up), runs the GPU tests named by TESTS, then alternates
# `plumb bench` over VARIANTS: every round runs each variant once, in turn, and the end prints
# each variant's t/s of every round and their median (docs/PERFORMANCE.md: medians of
# alternating rounds, the same machine, the same minutes).
#
#   CARRY=out/gpu/carry.tar.xz TESTS='*Cuda*' ROUNDS=3 BENCH='-p 0 -n 128 -r 3' \
#   VARIANTS='before: base PLUMB_CUDA_STEP_ATTENTION=0
#   after: plumb' bench/gpu-ab.sh
#
# VARIANTS, one a line: "label: binary [VAR=value ...]", the binary `plumb` or a NAME carried as
# plumb-NAME. TYPES: the types made (default Q4_K_M; F16 is the synthesized file); MODEL: the one
# benched (default the first of TYPES). TESTS empty: no tests. WORK: default /tmp/plumb-gpu.
# PRESET (default tinyllama-1.1b) and BACKEND (default cuda) for a dry run elsewhere.
set -uo pipefail
if [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then sed -n '2,17p' "$0"; exit 0; fi
carry=${CARRY:?CARRY: the file bench/gpu-carry.sh made}
work=${WORK:-/tmp/plumb-gpu}
rounds=${ROUNDS:-3}
bench_args=${BENCH:--p 0 -n 128 -r 3}
types=${TYPES:-Q4_K_M}
preset=${PRESET:-tinyllama-1.1b}
backend=${BACKEND:-cuda}
[[ "$rounds" =~ ^[1-9][0-9]?$ ]] || { echo "gpu-ab: ROUNDS takes 1 to 99" >&2; exit 2; }
start=$(date +%s)
say() { echo "== [$(( $(date +%s) - start )) s] $*"; }

mkdir -p "$work/bin" "$work/models"
tar xJf "$carry" -C "$work/bin" || { echo "gpu-ab: cannot unpack $carry" >&2; exit 1; }
export LD_LIBRARY_PATH="$work/bin/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" PLUMB_SHARED="$work/bin/shared"
plumb=$work/bin/plumb
! command -v nvidia-smi > /dev/null || nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
lscpu | grep 'Model name'

# The models, made beside the tests (the CPU does it while the GPU tests run).
f16=$work/models/$preset-F16.gguf
(
  [ -f "$f16" ] || "$plumb" synth --preset "$preset" -o "$f16" || exit 1
  for t in $types; do
    m=$work/models/$preset-$t.gguf
    [ "$t" = F16 ] || [ -f "$m" ] || "$plumb" quantize "$f16" "$m" "$t" || exit 1
  done
) > "$work/models.log" 2>&1 &
models=$!

if [ -n "${TESTS-*Cuda*}" ]; then
  say "tests: ${TESTS-*Cuda*}"
  "$work/bin/plumb_tests" --gtest_filter="${TESTS-*Cuda*}" 2>&1 | grep -E '^\[  (PASSED|FAILED|SKIPPED) |^\[  FAILED|tests ran' | sort | uniq -c | sort -rn | head -30
fi
wait "$models" || { echo "gpu-ab: making the models failed:" >&2; tail -5 "$work/models.log" >&2; exit 1; }
first=${types%% *}
model=$work/models/$preset-${MODEL:-$first}.gguf

mapfile -t variants < <(printf '%s\n' "${VARIANTS:-plumb: plumb}" | sed '/^[[:space:]]*$/d')
results=$work/ab.tsv
: > "$results"
for ((round = 1; round <= rounds; ++round)); do
  say "round $round of $rounds: plumb bench -m $(basename "$model") --backend $backend $bench_args"
  for v in "${variants[@]}"; do
    label=${v%%:*} rest=${v#*:}
    read -r bin envs <<< "$rest"
    exe=$work/bin/plumb; [ "$bin" = plumb ] || exe=$work/bin/plumb-$bin
    [ -x "$exe" ] || { echo "gpu-ab: variant '$label': no binary $exe" >&2; exit 2; }
    # shellcheck disable=SC2086
    json=$(env $envs "$exe" bench -m "$model" --backend $backend $bench_args -o json 2> "$work/bench.err") ||
      { echo "gpu-ab: $label failed: $(tail -1 "$work/bench.err")"; continue; }
    echo "$json" | python3 -c '
import json, sys
label = sys.argv[1]
for r in json.load(sys.stdin):
    test = r["test"] + (" @ d%d" % r["n_depth"] if r.get("n_depth") else "")
    print("%s\t%s\t%.2f" % (label, test, r["avg_ts"]))' "$label" | tee -a "$results"
  done
done
python3 - "$results" <<'PY'
import collections, statistics, sys
runs = collections.OrderedDict()
for line in open(sys.argv[1]):
    label, test, ts = line.rstrip("\n").split("\t")
    runs.setdefault((test, label), []).append(float(ts))
print("| test | variant | t/s each round | median |")
print("|---|---|---|---|")
for (test, label), v in runs.items():
    print("| %s | %s | %s | **%.1f** |" % (test, label, " / ".join("%.1f" % x for x in v), statistics.median(v)))
PY
say done
