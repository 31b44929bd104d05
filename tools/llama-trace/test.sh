#!/usr/bin/env bash
# llama.cpp traced by tools/llama-trace against ../shared/ref: prompt 0 of each traced reference
# model (austen-21m f16 and q4_k_m, SmolLM2 Q4_1 when scripts/fetch-model has it), traced with
# the reference's tokens, flash attention off and an F16 KV cache (the references' settings),
# must pass plumb diff with the defaults (exit 0) and match the reference's logits to NMSE <= 1e-6
# (austen f16 and SmolLM2 measure 0: the same bits). austen q4_k_m is held to 1e-5: the pinned
# llama.cpp (0c1e5709) rounds its Q4_K products differently from d32676d7, which made the
# references, from blk.0.q on (logits NMSE 3.0e-6; both are llama.cpp, and the references' own
# NMSE bound for this file is 9e-5). docs/TRACE.md says so.
#
#   tools/llama-trace/test.sh LLAMA_TRACE PLUMB [SHARED_DIR]
set -euo pipefail
llama_trace=$1
plumb=$2
repo_root=$(cd "$(dirname "$0")/../.." && pwd)
shared=${3:-$repo_root/../shared}
work=$(mktemp -d "${TMPDIR:-/tmp}/llama-trace-test.XXXXXX")
trap 'rm -rf "$work"' EXIT

tokens_of() {
  python3 -c 'import sys, gguf
r = gguf.GGUFReader(sys.argv[1])
print(",".join(str(int(x)) for x in next(t for t in r.tensors if t.name == "p0.tokens").data))' "$1"
}

status=0
for name in austen-21m-f16 austen-21m-q4_k_m smollm2-135m-q4_1; do
  ref=$shared/ref/$name.gguf
  if [ "$name" = smollm2-135m-q4_1 ]; then
    model=$("$repo_root/scripts/fetch-model" smollm2 2>/dev/null) || { echo "SKIP $name: SmolLM2 not fetched"; continue; }
  else
    model=$shared/models/$name.gguf
  fi
  out=$work/$name.gguf
  "$llama_trace" -m "$model" --tokens "$(tokens_of "$ref")" -o "$out" -t 2 --flash-attn off --cache-type f16 2>"$work/log" ||
    { cat "$work/log"; echo "FAIL $name: llama-trace failed"; status=1; continue; }
  if ! "$plumb" diff "$out" "$ref" > "$work/diff.txt"; then
    cat "$work/diff.txt"; echo "FAIL $name: plumb diff found a divergence"; status=1; continue
  fi
  nmse=$("$plumb" diff "$out" "$ref" --json --tap p0.logits |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["taps"][0]["nmse"])')
  bound=1e-6
  [ "$name" = austen-21m-q4_k_m ] && bound=1e-5
  if python3 -c "import sys; sys.exit(0 if float('$nmse') <= $bound else 1)"; then
    echo "ok   $name: $(tail -n 1 "$work/diff.txt"); logits NMSE $nmse"
  else
    echo "FAIL $name: logits NMSE $nmse > $bound"; status=1
  fi
done
exit $status
