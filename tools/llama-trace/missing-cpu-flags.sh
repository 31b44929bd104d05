#!/usr/bin/env bash
# Prints the CPU flags (as /proc/cpuinfo names them) that llama-trace's default build needs and
# this CPU lacks, nothing when it has them all: build.sh compiles llama.cpp with the kernels of
# the references (../shared/ref: "x86-64 AVX-512"), and such a binary dies of SIGILL elsewhere.
# Nothing is missing when LLAMA_TRACE_CPU_FLAGS chose other kernels (build.sh).
set -euo pipefail
[ -n "${LLAMA_TRACE_CPU_FLAGS:-}" ] && exit 0
have=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
for flag in avx2 fma f16c bmi2 avx512f avx512cd avx512vl avx512dq avx512bw avx512vbmi avx512_vnni avx512_bf16; do
  [[ $have == *" $flag "* ]] || printf '%s ' "$flag"
done
