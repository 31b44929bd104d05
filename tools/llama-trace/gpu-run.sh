#!/usr/bin/env bash
# llama.cpp on the GPU traced by tools/llama-trace, diffed against ../shared/ref: for each model
# (default austen-21m-f16), prompt 0 of its reference file, every layer offloaded (-ngl 99), the
# references' settings (flash attention off, F16 KV cache), then `plumb diff` with the defaults.
# Prints the diff's verdict and the logits NMSE; exits with the first model's diff exit code
# (0 = within thresholds), or 1 when llama-trace fails or did not offload the layers to the GPU.
#
#   tools/llama-trace/gpu-run.sh LLAMA_TRACE PLUMB [SHARED_DIR] [OUT_DIR]
#
# LLAMA_TRACE: built with `LLAMA_TRACE_CUDA=1 LLAMA_TRACE_CUDA_ARCH=90 tools/llama-trace/build.sh`
# (one static file; it needs the machine's NVIDIA driver, libgomp and CUDA 13's cuBLAS,
# libcublas.so.13 and libcublasLt.so.13: beside it, on LD_LIBRARY_PATH or in
# /usr/local/cuda/lib64). MODELS="a b" picks other models of ../shared/models that have a
# reference file (austen-21m-q4_k_m).
set -euo pipefail
llama_trace=$1
plumb=$2
repo_root=$(cd "$(dirname "$0")/../.." && pwd)
shared=${3:-${PLUMB_SHARED:-$repo_root/../shared}}
out=${4:-$(mktemp -d "${TMPDIR:-/tmp}/llama-trace-gpu.XXXXXX")}
mkdir -p "$out"
# Libraries carried beside llama-trace come first, then the machine's CUDA toolkit.
cuda_lib=${CUDA_HOME:-/usr/local/cuda}/lib64
export LD_LIBRARY_PATH=$(cd "$(dirname "$llama_trace")" && pwd):${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$cuda_lib

if missing=$(ldd "$llama_trace" | grep 'not found'); then
  echo "gpu-run: $llama_trace cannot find these libraries (set LD_LIBRARY_PATH to their folder):" >&2
  echo "$missing" >&2
  exit 1
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader

status=
for name in ${MODELS:-austen-21m-f16}; do
  ref=$shared/ref/$name.gguf
  trace=$out/$name-cuda.gguf
  if ! "$llama_trace" -m "$shared/models/$name.gguf" --tokens-from "$ref" -o "$trace" -ngl 99 \
      --flash-attn off --cache-type f16 -v 2>"$out/$name.log"; then
    tail -n 20 "$out/$name.log"
    echo "FAIL $name: llama-trace failed (log: $out/$name.log)"
    status=${status:-1}
    continue
  fi
  # llama.cpp's own words for where the layers went: a trace made on the CPU proves nothing here.
  offload=$(grep -oE 'offloaded [0-9]+/[0-9]+ layers to GPU' "$out/$name.log" | head -n 1 || true)
  if [ -z "$offload" ] || [ "${offload#offloaded 0/}" != "$offload" ]; then
    echo "FAIL $name: llama-trace ran on the CPU (its log has no 'offloaded N/M layers to GPU':" \
      "not a CUDA build, or no GPU visible; log: $out/$name.log)"
    status=${status:-1}
    continue
  fi
  grep -E 'using device CUDA' "$out/$name.log" | head -n 1 || true
  echo "$name: $offload"
  rc=0
  "$plumb" diff "$trace" "$ref" > "$out/$name.diff.txt" || rc=$?
  nmse=$("$plumb" diff "$trace" "$ref" --json --tap p0.logits |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["taps"][0]["nmse"])')
  [ $rc = 0 ] || cat "$out/$name.diff.txt"
  echo "$([ $rc = 0 ] && echo ok || echo FAIL) $name on CUDA: plumb diff exit $rc;" \
    "$(tail -n 1 "$out/$name.diff.txt"); logits NMSE $nmse (trace: $trace)"
  status=${status:-$rc}
done
exit "${status:-1}"
