#!/usr/bin/env bash
# The CPU tables of docs/PERFORMANCE.md ("Long prompts and generation against llama.cpp") for the
# machine it runs on, in one command: builds llama.cpp's llama-bench and llama-perplexity from the
# pinned source (tools/llama-cpp-source.sh: the llama.cpp 0c1e570 of llama-cpp-python 0.3.36)
# and plumb, makes the models with `plumb synth` and `plumb quantize` (no download), reads the
# memory bandwidth with bench_bandwidth, then per model and thread count runs llama-bench -fa 0,
# plumb bench and llama-bench with its default (flash attention auto) alternately for ROUNDS
# rounds (each prompt size of PROMPTS and a generation test tgGEN), reads the memory bandwidth
# again, and prints one markdown table per model: the medians of the rounds in t/s, plumb's
# ratios, the generation's GB/s against the bandwidth probe, the machine, the commits and the
# commands.
#
#   bench/cpu-table.sh [WORKDIR]     # default /tmp/plumb-cpu-table; about 25 GB at the peak
#   bench/cpu-table.sh -h            # this text
#
# WORKDIR holds the models (tl-f16.gguf, tl-q8_0.gguf, tl-q4_k_m.gguf: TinyLlama-1.1B shape;
# l8-q4_k_m.gguf: Llama-3-8B shape, whose 16 GB F16 is deleted once quantized), the llama.cpp
# build (llama.cpp-build/) and the results: cpu-table-STAMP.md (what is printed),
# cpu-table-STAMP.tsv (every round's figure), cpu-table-STAMP.jsonl (the tools' JSON output) and
# cpu-table-STAMP.log (their stderr). The .md is rewritten with the rounds done after each
# model's thread count, and a run stopped by SIGINT or SIGTERM (a time limit) prints the tables
# of what it measured, marked as stopped, once the command running ends. Files that exist are used
# as they are, so a WORKDIR that holds tl-*.gguf already needs no synth. Environment, [default]:
#
#   ONLY="tinyllama-1.1b"      presets (tinyllama-1.1b, llama-3-8b) or model names (tl-f16, tl-q8_0,
#                              tl-q4_k_m, l8-q4_k_m), space-separated [all four models]
#   THREADS="1 4 16"           thread counts, each capped at nproc ["1 4 16"]
#   PROMPTS="512 2048"         prompt sizes, the pp tests ["512 2048"]
#   GEN=32                     tokens of the generation test tgGEN, 0 = none [32]
#   ROUNDS=3                   rounds of the three engines [3]
#   BENCH_PREFIX="chrt -f 10"  put before every timed command (on a machine shared with other
#                              jobs: SCHED_FIFO, needs root) [nothing]
#   PLUMB=path                 a plumb built already [cmake -B build-cpu-table, CPU only]
#   LLAMA_BENCH=path           a llama-bench built already, CPU only [built in LLAMA_DIR]
#   LLAMA_DIR=dir              where llama.cpp is downloaded, unpacked and built
#                              [WORKDIR/llama.cpp-build]
#   LLAMA_CPU_FLAGS="-D..."    llama.cpp's CMake CPU flags [from /proc/cpuinfo: with avx512f/bw/
#                              vl/dq/cd those of docs/PERFORMANCE.md (AVX-512, VBMI, VNNI, BF16
#                              where present, AMX off), else AVX2/FMA/F16C only]
#   JOBS=n                     build jobs [nproc]
#   SYNTH_VOCAB_DIR=dir        the ggml-vocab-llama-{spm,bpe}.gguf of `plumb synth --vocab`
#                              [plumb's default: PLUMB_SHARED or ../shared/vocab]
#
#   PLUMB=build/plumb LLAMA_BENCH=/tmp/llama/bin/llama-bench ONLY=tinyllama-1.1b ROUNDS=1 \
#     THREADS=2 PROMPTS=512 bench/cpu-table.sh /tmp/plumb-models     # a few minutes
#
# The commands, per model M and thread count T (llama-bench -p takes all of PROMPTS at once;
# plumb runs one command per prompt size, the first with -n GEN, and -c P+1 beyond 1024
# tokens because a 2048-token prompt needs one position more than TinyLlama's trained context):
#
#   llama-bench -m M -p 512,2048 -n 32 -t T -r 1 -fa 0 -o json
#   plumb bench -m M --backend cpu -p 512 -n 32 -t T -r 1 -o json
#   plumb bench -m M --backend cpu -c 2049 -p 2048 -n 0 -t T -r 1 -o json
#   llama-bench -m M -p 512,2048 -n 32 -t T -r 1 -o json
#
# Time: the llama.cpp build is about 15 minutes on 2 cores (minutes on 16). The runs at the
# defaults take some 4 hours on 16 cores by the 2-core figures (both tools warm up with a whole
# run of each test), 2 of them the 8B model at one thread: THREADS="4 16" or ONLY= shorten it.
#
# Without network: carry the sdist (llama_cpp_python-0.3.36.tar.gz, 77 MB, checked against its
# sha256) or its unpacked llama_cpp_python-0.3.36/ into LLAMA_DIR, from a machine where this
# script or tools/llama-trace/build.sh ran. plumb's build needs what docs/GPU-TESTS.md says (PCRE2
# etc.), synth its vocabularies (SYNTH_VOCAB_DIR or PLUMB_SHARED).
set -euo pipefail
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
die() { echo "cpu-table: $*" >&2; exit 2; }
case "${1:-}" in
  -h | --help) usage; exit 0 ;;
  -*) die "unknown option $1 (bench/cpu-table.sh [WORKDIR], -h for help)" ;;
esac
[ $# -le 1 ] || die "one argument at most, the work folder (-h for help)"
cd "$(dirname "$0")/.."
repo=$PWD
ncpu=$(nproc)

# ---- the settings, checked before anything runs ----
set -f  # the lists below are split on spaces, never globbed
# whole MIN VALUE WHAT: VALUE as a decimal number, or exit with WHAT when it is not one >= MIN
whole() {
  if [[ ! $2 =~ ^[0-9]{1,6}$ ]] || [ $((10#$2)) -lt "$1" ]; then die "$3 must be a whole number >= $1"; fi
  echo $((10#$2))
}
rounds=$(whole 1 "${ROUNDS:-3}" "ROUNDS='${ROUNDS:-}'")
gen=$(whole 0 "${GEN:-32}" "GEN='${GEN:-}'")
jobs=$(whole 1 "${JOBS:-$ncpu}" "JOBS='${JOBS:-}'")
threads=()
for t in ${THREADS-1 4 16}; do
  t=$(whole 1 "$t" "THREADS='${THREADS:-}': '$t'")
  [ "$t" -le "$ncpu" ] || t=$ncpu  # capped at the CPUs this process may use
  [[ " ${threads[*]} " == *" $t "* ]] || threads+=("$t")
done
[ ${#threads[@]} -ge 1 ] || die "THREADS is empty"
prompts=()
for p in ${PROMPTS-512 2048}; do
  p=$(whole 1 "$p" "PROMPTS='${PROMPTS:-}': '$p'")
  [[ " ${prompts[*]} " == *" $p "* ]] || prompts+=("$p")
done
[ ${#prompts[@]} -ge 1 ] || die "PROMPTS is empty"
read -ra prefix <<< "${BENCH_PREFIX:-}"
if [ ${#prefix[@]} -gt 0 ]; then
  "${prefix[@]}" true 2>/dev/null || die "BENCH_PREFIX='$BENCH_PREFIX' does not run here ('$BENCH_PREFIX true' fails; chrt needs root)"
fi

# name preset type label: the models, in the order of the tables
all_models="tl-q4_k_m tinyllama-1.1b Q4_K_M TinyLlama-1.1B shape Q4_K_M
tl-q8_0 tinyllama-1.1b Q8_0 TinyLlama-1.1B shape Q8_0
tl-f16 tinyllama-1.1b F16 TinyLlama-1.1B shape F16
l8-q4_k_m llama-3-8b Q4_K_M Llama-3-8B shape Q4_K_M"
models=()
known=" $(cut -d' ' -f1-2 <<< "$all_models" | tr '\n' ' ') "
for word in ${ONLY:-}; do
  [[ $known == *" $word "* ]] ||
    die "ONLY='$ONLY': '$word' is neither a preset (tinyllama-1.1b, llama-3-8b) nor a model (tl-q4_k_m, tl-q8_0, tl-f16, l8-q4_k_m)"
done
while read -r name preset _; do
  if [ -z "${ONLY:-}" ] || [[ " $ONLY " == *" $name "* ]] || [[ " $ONLY " == *" $preset "* ]]; then
    models+=("$name")
  fi
done <<< "$all_models"
model_field() { grep "^$1 " <<< "$all_models" | cut -d' ' -f"$2"; }

work=${1:-/tmp/plumb-cpu-table}
mkdir -p "$work"
work=$(cd "$work" && pwd)
stamp=$(date -u +%Y%m%d-%H%M%S)
out=$work/cpu-table-$stamp
log=$out.log
: > "$log"
echo "cpu-table: $work, results in $out.{md,tsv,jsonl,log}" >&2
cmake_gen=()
command -v ninja >/dev/null && cmake_gen=(-G Ninja)

# ---- llama.cpp ----
if [ -n "${LLAMA_BENCH:-}" ]; then
  [ -x "$LLAMA_BENCH" ] || die "LLAMA_BENCH='$LLAMA_BENCH' is not an executable"
  llama_bench=$(cd "$(dirname "$LLAMA_BENCH")" && pwd)/$(basename "$LLAMA_BENCH")
  llama_build="given: $llama_bench"
else
  # shellcheck source=tools/llama-cpp-source.sh
  . "$repo/tools/llama-cpp-source.sh"
  llama_dir=${LLAMA_DIR:-$work/llama.cpp-build}
  mkdir -p "$llama_dir"
  llama_dir=$(cd "$llama_dir" && pwd)
  llama_cpp_source "$llama_dir" "cpu-table"
  if [ -n "${LLAMA_CPU_FLAGS:-}" ]; then
    cpu_flags=$LLAMA_CPU_FLAGS
  else
    cpuinfo_flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
    has() { [[ $cpuinfo_flags == *" $1 "* ]]; }
    on() { has "$1" && echo ON || echo OFF; }
    if has avx2 && has fma && has f16c; then
      cpu_flags="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
      cpu_flags+=" -DGGML_BMI2=$(on bmi2)"
      if has avx512f && has avx512bw && has avx512vl && has avx512dq && has avx512cd; then
        cpu_flags+=" -DGGML_AVX512=ON -DGGML_AVX512_VBMI=$(on avx512vbmi)"
        cpu_flags+=" -DGGML_AVX512_VNNI=$(on avx512_vnni) -DGGML_AVX512_BF16=$(on avx512_bf16)"
      else
        cpu_flags+=" -DGGML_AVX512=OFF"
      fi
    else
      cpu_flags="-DGGML_NATIVE=ON"
    fi
    # AMX off: this llama.cpp's AMX matmul dies with SIGSEGV on Sapphire Rapids (PERFORMANCE.md).
    cpu_flags+=" -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
  fi
  read -ra cpu_flag_args <<< "$cpu_flags"
  for f in "${cpu_flag_args[@]}"; do
    [[ $f == -D* ]] || die "LLAMA_CPU_FLAGS='$cpu_flags': '$f' is not a -DNAME=VALUE"
  done
  cmake_args=(-DCMAKE_BUILD_TYPE=Release -DLLAMA_BUILD_COMMON=ON -DLLAMA_BUILD_TOOLS=ON
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF
    -DLLAMA_BUILD_APP=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF "${cpu_flag_args[@]}")
  llama_build_dir=$llama_dir/build-cpu
  # .built holds the configure arguments: other ones configure and build again, in place.
  if [ "$(cat "$llama_build_dir/.built" 2>/dev/null)" != "${cmake_args[*]}" ]; then
    echo "cpu-table: building llama-bench and llama-perplexity in $llama_build_dir ($cpu_flags)" >&2
    cmake -S "$llama_cpp_src" -B "$llama_build_dir" "${cmake_gen[@]}" "${cmake_args[@]}" >> "$log" 2>&1 ||
      die "llama.cpp's configure failed: $log"
    cmake --build "$llama_build_dir" --target llama-bench llama-perplexity -j "$jobs" >> "$log" 2>&1 ||
      die "llama.cpp's build failed: $log"
    echo "${cmake_args[*]}" > "$llama_build_dir/.built"
  fi
  llama_bench=$llama_build_dir/bin/llama-bench
  llama_build="llama-cpp-python $llama_cpp_python_version's vendored llama.cpp ${llama_cpp_commit:0:7}, cmake ${cmake_args[*]}"
fi

# ---- plumb ----
if [ -n "${PLUMB:-}" ]; then
  [ -x "$PLUMB" ] || die "PLUMB='$PLUMB' is not an executable"
  plumb=$(cd "$(dirname "$PLUMB")" && pwd)/$(basename "$PLUMB")
  bandwidth=$(dirname "$plumb")/bench_bandwidth
  [ -x "$bandwidth" ] || bandwidth=$repo/build/bench_bandwidth
else
  echo "cpu-table: building plumb and bench_bandwidth in build-cpu-table" >&2
  cmake -S . -B build-cpu-table "${cmake_gen[@]}" -DCMAKE_BUILD_TYPE=Release -DPLUMB_TESTS=OFF \
    -DPLUMB_BENCH=ON -DPLUMB_CUDA=OFF >> "$log" 2>&1 || die "plumb's configure failed: $log"
  cmake --build build-cpu-table --target plumb bench_bandwidth -j "$jobs" >> "$log" 2>&1 ||
    die "plumb's build failed: $log"
  plumb=$repo/build-cpu-table/plumb
  bandwidth=$repo/build-cpu-table/bench_bandwidth
fi
plumb_commit=$(git -C "$(dirname "$plumb")" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ "$plumb_commit" != unknown ] &&
   [ -n "$(git -C "$(dirname "$plumb")" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  plumb_commit+=" (with uncommitted changes)"
fi

# ---- models ----
vocab_args() {  # $1 = preset
  [ -n "${SYNTH_VOCAB_DIR:-}" ] || return 0
  case $1 in
    llama-3-8b) echo "--vocab $SYNTH_VOCAB_DIR/ggml-vocab-llama-bpe.gguf" ;;
    *) echo "--vocab $SYNTH_VOCAB_DIR/ggml-vocab-llama-spm.gguf" ;;
  esac
}
for name in "${models[@]}"; do
  model=$work/$name.gguf
  [ -f "$model" ] && continue
  preset=$(model_field "$name" 2)
  type=$(model_field "$name" 3)
  f16=$work/${name%%-*}-f16.gguf
  if [ ! -f "$f16" ]; then
    echo "cpu-table: plumb synth --preset $preset -o $f16" >&2
    # shellcheck disable=SC2046  # the vocabulary's two words
    "$plumb" synth --preset "$preset" $(vocab_args "$preset") -o "$f16.part" >&2
    mv "$f16.part" "$f16"
  fi
  if [ "$type" != F16 ]; then
    echo "cpu-table: plumb quantize $f16 $model $type" >&2
    "$plumb" quantize "$f16" "$model.part" "$type" >&2
    mv "$model.part" "$model"
    # The 8B F16 (16 GB) only serves the quantization.
    [ "$preset" != llama-3-8b ] || rm -f "$f16"
  fi
done

# ---- runs ----
probe() {  # $1 = before|after
  if [ ! -x "$bandwidth" ]; then
    echo "cpu-table: no bench_bandwidth next to plumb or in build/: no memory probe" >&2
    return 0
  fi
  local list
  list=$(IFS=,; echo "${threads[*]}")
  echo "cpu-table: memory probe ($1): $bandwidth --threads $list" >&2
  "${prefix[@]}" "$bandwidth" --threads "$list" > "$out.probe-$1.md" 2>> "$log" ||
    echo "cpu-table: the memory probe failed: $log" >&2
}
raw=$out.jsonl
: > "$raw"
record() {  # round name threads engine command...: runs the command, appends its JSON to $raw
  local round=$1 name=$2 t=$3 engine=$4 json
  shift 4
  echo "cpu-table: round $round/$rounds $name t=$t $engine: ${prefix[*]:+${prefix[*]} }$*" >&2
  echo "## round $round $name t=$t $engine: $*" >> "$log"
  if json=$("${prefix[@]}" "$@" 2>> "$log") &&
     python3 -c 'import json, sys; assert isinstance(json.load(sys.stdin), list)' <<< "$json" 2>> "$log"; then
    printf '{"round":%d,"model":"%s","threads":%d,"engine":"%s","out":%s}\n' \
      "$round" "$name" "$t" "$engine" "$(tr -d '\n' <<< "$json")" >> "$raw"
  else
    echo "cpu-table: that command failed or printed no JSON table: $log" >&2
    printf '{"round":%d,"model":"%s","threads":%d,"engine":"%s","out":null}\n' \
      "$round" "$name" "$t" "$engine" >> "$raw"
  fi
}
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
date_before=$(date -u '+%Y-%m-%d %H:%M')
probe before
llama_prompts=$(IFS=,; echo "${prompts[*]}")
# ---- the tables ----
# tables [NOTE]: the tables of the rounds recorded so far in $raw (NOTE, when given, says the run is
# not finished: the tables are rewritten into $out.md after every model's thread count, so a run
# that is stopped leaves what it measured).
tables() {
  partial=${1:-}
  date_after=${date_after:-$(date -u '+%H:%M')}
  load_after=${load_after:-$(cut -d' ' -f1-3 /proc/loadavg)}
  model_specs=()
  for name in "${models[@]}"; do
    model_specs+=("$name|$(model_field "$name" 4-)|$(stat -L -c %s "$work/$name.gguf")")
  done
  cpu_model=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
  cpu_family=$(grep -m1 '^cpu family' /proc/cpuinfo | cut -d: -f2 | tr -d ' ')
  cpu_modelno=$(grep -m1 '^model[[:space:]]*:' /proc/cpuinfo | cut -d: -f2 | tr -d ' ')
  cpu_flags_shown=""
  for f in avx2 fma f16c avx512f avx512bw avx512vl avx512dq avx512cd avx512_vnni avx512_bf16 \
    avx512_fp16 avx512vbmi avx512ifma avx_vnni amx_tile amx_int8 amx_bf16; do
    grep -m1 '^flags' /proc/cpuinfo | grep -qw "$f" && cpu_flags_shown+="$f "
  done
  {
    CT_MODELS=$(printf '%s\n' "${model_specs[@]}") CT_THREADS="${threads[*]}" CT_PROMPTS="${prompts[*]}" \
    CT_GEN=$gen CT_ROUNDS=$rounds CT_PARTIAL="$partial" CT_PROBE_BEFORE="$out.probe-before.md" CT_PROBE_AFTER="$out.probe-after.md" \
      python3 - "$raw" "$out.tsv" <<'PY'
import json, os, re, statistics, sys
from collections import defaultdict

raw, tsv = sys.argv[1], sys.argv[2]
threads = [int(t) for t in os.environ["CT_THREADS"].split()]
prompts = [int(p) for p in os.environ["CT_PROMPTS"].split()]
gen, rounds = int(os.environ["CT_GEN"]), int(os.environ["CT_ROUNDS"])
models = [line.split("|") for line in os.environ["CT_MODELS"].splitlines() if line]
partial = os.environ.get("CT_PARTIAL", "")

failed = 0
vals = defaultdict(list)          # (model, threads, test, engine) -> t/s of each round
token_bytes = defaultdict(list)   # model -> weight bytes per token (plumb bench's GB/s over t/s)
backends = set()
with open(tsv, "w") as out:
    out.write("round\tmodel\tthreads\tengine\ttest\tt/s\n")
    for line in open(raw):
        r = json.loads(line)
        if r["out"] is None:
            failed += 1
            continue
        for x in r["out"]:
            test = f'pp{x["n_prompt"]}' if x["n_prompt"] else f'tg{x["n_gen"]}'
            vals[(r["model"], r["threads"], test, r["engine"])].append(x["avg_ts"])
            out.write(f'{r["round"]}\t{r["model"]}\t{r["threads"]}\t{r["engine"]}\t{test}\t{x["avg_ts"]:.3f}\n')
            if r["engine"] == "plumb":
                backends.add(x.get("backend", "?"))
                if not x["n_prompt"] and x.get("gb_per_s"):
                    token_bytes[r["model"]].append(x["gb_per_s"] * 1e9 / x["avg_ts"])

def probe(path):
    roof = {}
    if os.path.exists(path):
        for line in open(path):
            m = re.match(r"\|\s*(\d+)\s*\|\s*([\d.]+)\s*\|", line)
            if m:
                roof[int(m[1])] = float(m[2])
    return roof
before, after = probe(os.environ["CT_PROBE_BEFORE"]), probe(os.environ["CT_PROBE_AFTER"])

def fmt(v):
    return "–" if v is None else f"{v:.0f}" if v >= 500 else f"{v:.1f}" if v >= 50 else f"{v:.2f}"

def med(key):
    return statistics.median(vals[key]) if vals.get(key) else None

tests = [f"pp{p}" for p in prompts] + ([f"tg{gen}"] if gen else [])
rounds_note = "one round" if rounds == 1 else f"{rounds} rounds"
if partial:
    print(f"**{partial[0].upper() + partial[1:]}.**\n")
bytes_notes = []
for name, label, size in models:
    size = int(size)
    if token_bytes[name]:
        tb = statistics.median(token_bytes[name])
        bytes_notes.append(f"{label} {tb / 1e9:.3f} GB per token (plumb bench's weight bytes; file {size / 1e9:.3f} GB)")
    else:
        tb = size
        bytes_notes.append(f"{label} {tb / 1e9:.3f} GB per token (the file's size, an approximation)")
    print(f"### {label}\n")
    print("| model | threads | test | llama.cpp `-fa 0` | llama.cpp default (`-fa auto`) | plumb | plumb / `-fa 0` | plumb / default |")
    print("|---|---|---|---|---|---|---|---|")
    first = True
    for t in threads:
        for test in tests:
            a, p, b = (med((name, t, test, e)) for e in ("llama-fa0", "plumb", "llama-default"))
            cells = [fmt(a), fmt(b), fmt(p)]
            if test.startswith("tg"):
                for i, v in enumerate((a, b, p)):
                    if v is not None:
                        gbs = v * tb / 1e9
                        extra = f"{gbs:.1f} GB/s"
                        roof = max(before.get(t, 0), after.get(t, 0))
                        if i == 2 and roof:
                            extra += f", {100 * gbs / roof:.0f} % of the probe's {roof:.1f}"
                        cells[i] += f" ({extra})"
            ratio = lambda x: f"**{p / x:.2f}**" if p and x else "–"
            print(f'| {f"{label} ({rounds_note})" if first else ""} | {t} | {test} | {cells[0]} | {cells[1]} | {cells[2]} | {ratio(a)} | {ratio(b)} |')
            first = False
    print()

print(f"Medians of {rounds_note} (t/s), each round llama-bench `-fa 0`, plumb, llama-bench default in turn.")
if gen:
    print("GB/s = tg t/s x the weight bytes a token reads: " + "; ".join(bytes_notes) + ".")
if before or after:
    print("Memory probe (bench_bandwidth, read GB/s, before / after): " + ", ".join(
        f"{t} thread{'s' if t > 1 else ''} {before.get(t, '–')} / {after.get(t, '–')}" for t in threads) +
        "; the share of the probe is against the higher of the two.")
print(f"plumb's backend: {', '.join(sorted(backends)) or '–'}.")
if failed:
    print(f"**{failed} command{'s' if failed > 1 else ''} failed or printed no JSON table** (–): the .log file says why.")
PY
    llama_commit_run=$(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["engine"].startswith("llama") and r["out"]:
        print(r["out"][0].get("build_commit", "unknown")); break' "$raw")
    # A tree carried without its .git says "unknown": the pinned commit is what was built.
    if [ -z "${LLAMA_BENCH:-}" ] && [[ ${llama_commit_run:-unknown} == unknown ]]; then
      llama_commit_run=${llama_cpp_commit:0:7}
    fi
    echo
    echo "CPU: \`$cpu_model\`, family $cpu_family model $cpu_modelno, $ncpu CPUs; flags: ${cpu_flags_shown% }."
    echo "Date: $date_before-$date_after UTC; load average ${load_before// /, } before, ${load_after// /, } after."
    echo "plumb $plumb_commit ($plumb${PLUMB_SIMD:+, PLUMB_SIMD=$PLUMB_SIMD}); llama.cpp ${llama_commit_run:-unknown} ($llama_build)."
    echo "Commands (M = $work/<model>.gguf, T = the threads)${prefix[*]:+, each under \`${prefix[*]}\`}:"
    echo
    echo "    llama-bench -m M -p $llama_prompts -n $gen -t T -r 1 -fa 0 -o json"
    n=$gen
    for p in "${prompts[@]}"; do
      c=""
      [ "$p" -le 1024 ] || c="-c $((p > n ? p + 1 : n + 1)) "
      echo "    plumb bench -m M --backend cpu ${c}-p $p -n $n -t T -r 1 -o json"
      n=0
    done
    echo "    llama-bench -m M -p $llama_prompts -n $gen -t T -r 1 -o json"
    [ ! -x "$bandwidth" ] || echo "    bench_bandwidth --threads $(IFS=,; echo "${threads[*]}")   (before and after)"
    echo
    echo "Every round's figure: $out.tsv"
  }
}
on_signal() {  # on_signal EXIT_STATUS
  trap - INT TERM
  echo "cpu-table: stopped; the rounds measured so far:" >&2
  tables "stopped before the end: the figures of the rounds that finished" | tee "$out.md"
  exit "$1"
}

trap 'on_signal 130' INT
trap 'on_signal 143' TERM
for name in "${models[@]}"; do
  model=$work/$name.gguf
  for t in "${threads[@]}"; do
    for ((round = 1; round <= rounds; round++)); do
      llama=("$llama_bench" -m "$model" -p "$llama_prompts" -n "$gen" -t "$t" -r 1)
      record "$round" "$name" "$t" llama-fa0 "${llama[@]}" -fa 0 -o json
      n=$gen
      for p in "${prompts[@]}"; do
        ctx=()
        [ "$p" -le 1024 ] || ctx=(-c $((p > n ? p + 1 : n + 1)))
        record "$round" "$name" "$t" plumb "$plumb" bench -m "$model" --backend cpu "${ctx[@]}" \
          -p "$p" -n "$n" -t "$t" -r 1 -o json
        n=0
      done
      record "$round" "$name" "$t" llama-default "${llama[@]}" -o json
    done
    (date_after="" load_after=""; tables "running: the rounds done so far" > "$out.md") ||
      echo "cpu-table: the tables so far could not be written to $out.md; measuring on" >&2
  done
done
probe after
trap - INT TERM
date_after=$(date -u '+%H:%M')
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

tables | tee "$out.md"
