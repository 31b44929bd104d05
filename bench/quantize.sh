#!/usr/bin/env bash
# Median wall time of `plumb quantize IN OUT TYPE -t THREADS` over RUNS runs (default: austen-21m
# F16 -> Q4_K_M, 2 threads, 5 runs), and the input MB/s it implies. llama-quantize's figure on
# the 2-core machine: 0.70 s, 66 MB/s (../shared/ref/bench-cpu.md). On a shared machine,
# BENCH_PREFIX="chrt -f 10" runs plumb ahead of other jobs (root only), as if the machine were idle.
set -euo pipefail
cd "$(dirname "$0")/.."
plumb=${PLUMB:-build/plumb}
in=${1:-${PLUMB_SHARED:-../shared}/models/austen-21m-f16.gguf}
type=${2:-Q4_K_M}
threads=${3:-2}
runs=${4:-5}
out=$(mktemp -d)/out.gguf
times=()
for _ in $(seq "$runs"); do
  start=$(date +%s.%N)
  ${BENCH_PREFIX:-} "$plumb" quantize "$in" "$out" "$type" -t "$threads" >/dev/null
  end=$(date +%s.%N)
  times+=("$(echo "$end - $start" | bc -l)")
done
median=$(printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}')
mb=$(stat -c %s "$in" | awk '{print $1/1e6}')
printf 'runs: %s\n' "${times[*]}"
printf 'median %.3f s, %.1f MB in, %.1f MB/s (load average %s)\n' "$median" "$mb" \
  "$(echo "$mb / $median" | bc -l)" "$(cut -d' ' -f1-3 /proc/loadavg)"
rm -rf "$(dirname "$out")"
