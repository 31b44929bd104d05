#!/usr/bin/env bash
# On the development machine: packs what a GPU machine without the shared data, PCRE2 or network
# needs to run plumb's GPU tests and benchmarks (docs/GPU-TESTS.md) into one file small enough
# to carry: the built plumb, plumb_tests and bench_launch_floor (stripped), the two libraries of
# Debian 12 they load, the shared files the GPU tests and `plumb synth` read (austen-21m q4_k_m
# and its llama.cpp reference, the Llama SentencePiece vocabulary), bench/ncu_sum.py, and other
# builds of plumb to compare against (BASE=path: carried as plumb-base; more as NAME=path
# arguments, carried as plumb-NAME). bench/gpu-ab.sh unpacks it there.
#
#   bench/gpu-carry.sh OUT.tar.xz [NAME=path/to/plumb ...]
#   BUILD=build-cuda BASE=/tmp/base/plumb bench/gpu-carry.sh out/gpu/carry.tar.xz
set -euo pipefail
if [ $# -lt 1 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
  sed -n '2,10p' "$0"
  [ $# -ge 1 ] && exit 0 || exit 2
fi
out=$(realpath -m "$1"); shift
cd "$(dirname "$0")/.."
build=${BUILD:-build}
shared=${PLUMB_SHARED:-../shared}
case "$out" in "$(realpath -m "$shared")"/*) echo "gpu-carry: $out is inside the shared data; write it elsewhere" >&2; exit 2;; esac
for f in "$build/plumb" "$build/plumb_tests"; do
  [ -x "$f" ] || { echo "gpu-carry: $f not built (cmake --build $build)" >&2; exit 1; }
done
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/lib" "$stage/shared/models" "$stage/shared/ref" "$stage/shared/vocab"
cp "$build/plumb" "$build/plumb_tests" "$stage/"
[ ! -x "$build/bench_launch_floor" ] || cp "$build/bench_launch_floor" "$stage/"
extra=()
[ -z "${BASE:-}" ] || extra+=("base=$BASE")
for arg in "$@"; do extra+=("$arg"); done
for pair in "${extra[@]}"; do
  name=${pair%%=*} path=${pair#*=}
  [[ "$name" =~ ^[a-z0-9_-]+$ ]] && [ -x "$path" ] || { echo "gpu-carry: '$pair': give NAME=path to a plumb binary" >&2; exit 2; }
  cp "$path" "$stage/plumb-$name"
done
strip --strip-unneeded "$stage"/plumb* "$stage"/bench_launch_floor 2>/dev/null || true
for lib in libpcre2-8.so.0 libcpp-httplib.so.0.11; do cp -L "/usr/lib/x86_64-linux-gnu/$lib" "$stage/lib/"; done
cp "$shared/models/austen-21m-q4_k_m.gguf" "$stage/shared/models/"
cp "$shared/ref/austen-21m-q4_k_m.gguf" "$stage/shared/ref/"
cp "$shared/vocab/ggml-vocab-llama-spm.gguf" "$stage/shared/vocab/"
cp bench/ncu_sum.py "$stage/"
mkdir -p "$(dirname "$out")"
tar cJf "$out" -C "$stage" .
size=$(stat -c %s "$out")
echo "gpu-carry: $out, $((size / 1048576)) MiB"
[ "$size" -le $((64 * 1048576)) ] || echo "gpu-carry: over the 64 MiB that can be carried to the GPU machine at once; carry fewer binaries" >&2
