#!/usr/bin/env bash
# On a machine with an NVIDIA H200: builds plumb, makes the models of the CUDA performance
# targets with `plumb synth` and `plumb quantize` (no download), runs `plumb bench` on each
# (llama-bench's tests: -p 512 -n 128, and -d 4096 where the targets have it, -r 5) and prints
# one table beside llama.cpp's figures on the same card (../shared/ref/bench-h200.md, copied
# below because ../shared is not on the GPU machine) with the ratios.
#
#   bench/h200.sh [WORKDIR]    # models go to WORKDIR (default /tmp/plumb-h200), about 30 GB
#   ONLY=tinyllama-1.1b bench/h200.sh   # the rows of one preset
#   PLUMB=build/plumb bench/h200.sh     # a plumb built already
#
# Needs what docs/GPU-TESTS.md says the build needs (PCRE2_ROOT etc. on an image without them),
# and the vocabularies of `plumb synth` (PLUMB_SHARED, or --vocab through SYNTH_VOCAB_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-/tmp/plumb-h200}
mkdir -p "$work"
if [ -n "${PLUMB:-}" ]; then
  plumb=$PLUMB  # a plumb built already
else
  cmake -S . -B build-h200 -G Ninja -DCMAKE_BUILD_TYPE=Release -DPLUMB_TESTS=OFF -DPLUMB_BENCH=OFF >/dev/null
  cmake --build build-h200 -j"$(nproc)" >/dev/null
  plumb=$PWD/build-h200/plumb
fi

# llama.cpp d32676d7, llama-bench -ngl 99 -fa 1 -p 512 -n 128 -r 5 on an H200 (bench-h200.md):
# name type depth pp512 tg128
llama_cpp="tinyllama-1.1b Q4_K_M 0 33389 808.3
tinyllama-1.1b Q4_0 0 38176 909.0
tinyllama-1.1b Q8_0 0 39649 765.7
tinyllama-1.1b F16 0 56602 705.9
tinyllama-1.1b Q4_K_M 4096 25546 732.6
llama-3-8b Q4_K_M 0 9334 253.6
llama-3-8b Q4_K_M 4096 8291 243.1"

results="$work/results.jsonl"
: > "$results"
while read -r preset type depth pp_ref tg_ref; do
  [ -z "${ONLY:-}" ] || [ "$preset" = "$ONLY" ] || continue
  f16="$work/$preset-F16.gguf"
  [ -f "$f16" ] || "$plumb" synth --preset "$preset" -o "$f16" >&2
  model="$work/$preset-$type.gguf"
  [ "$type" = F16 ] || [ -f "$model" ] || "$plumb" quantize "$f16" "$model" "$type" >&2
  json=$("$plumb" bench -m "$model" --backend cuda -p 512 -n 128 -d "$depth" -r 5 -c $((depth + 640)) -o json)
  printf '{"preset":"%s","type":"%s","depth":%s,"pp_ref":%s,"tg_ref":%s,"plumb":%s}\n' \
    "$preset" "$type" "$depth" "$pp_ref" "$tg_ref" "$(echo "$json" | tr -d '\n')" >> "$results"
done <<< "$llama_cpp"

python3 - "$results" <<'PY'
import json, sys
print("| model | depth | plumb pp512 | llama.cpp pp512 | ratio | plumb tg128 | llama.cpp tg128 | ratio |")
print("|---|---|---|---|---|---|---|---|")
for line in open(sys.argv[1]):
    r = json.loads(line)
    pp = next(x for x in r["plumb"] if x["n_prompt"])
    tg = next(x for x in r["plumb"] if x["n_gen"])
    print(f'| {r["preset"]} {r["type"]} | {r["depth"]} | {pp["avg_ts"]:.0f} ± {pp["stddev_ts"]:.0f} | {r["pp_ref"]} | '
          f'{pp["avg_ts"] / r["pp_ref"]:.2f} | {tg["avg_ts"]:.1f} ± {tg["stddev_ts"]:.1f} | {r["tg_ref"]} | '
          f'{tg["avg_ts"] / r["tg_ref"]:.2f} |')
PY
