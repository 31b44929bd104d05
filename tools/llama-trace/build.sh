#!/usr/bin/env bash
# Builds llama.cpp's libllama (CPU; CUDA with LLAMA_TRACE_CUDA=1) from the llama.cpp vendored in a
# pinned llama-cpp-python sdist, then tools/llama-trace/llama-trace.cpp against it.
#
#   tools/llama-trace/build.sh [WORK_DIR]        (default: <repo>/build/llama-trace)
#
# Pinned in tools/llama-cpp-source.sh: llama-cpp-python 0.3.36 (PyPI sdist, sha256 there), which
# vendors llama.cpp commit 0c1e57098bba43ac29e6e3b677cdceebdd22334f (the references of
# ../shared/ref were made with d32676d7, which no sdist vendors: docs/TRACE.md). pip downloads
# the sdist (no binaries), tar unpacks it, CMake builds only the llama library (tests, tools,
# examples, server and curl off): minutes on 2 cores for the CPU, an hour or more with CUDA.
# Idempotent: a finished step is not redone. Prints the llama-trace path.
#
#   LLAMA_TRACE_CUDA=1 LLAMA_TRACE_CUDA_ARCH=90 tools/llama-trace/build.sh /tmp/llama-trace-cuda
set -euo pipefail

repo_root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tools/llama-cpp-source.sh
. "$repo_root/tools/llama-cpp-source.sh"
version=$llama_cpp_python_version
llama_commit=$llama_cpp_commit
work=${1:-$repo_root/build/llama-trace}
jobs=${JOBS:-2}
mkdir -p "$work"
work=$(cd "$work" && pwd)  # absolute: the paths below are used after the cd
cd "$work"

# The sdist is downloaded, checked and unpacked once. A work folder that already holds the
# unpacked llama.cpp builds from it: that is how a machine without network builds, from the
# tree a networked machine unpacked (its CMakeLists.txt, LICENSE, cmake, ggml, src, include,
# vendor, app and licenses folders are all the build reads: about 5 MB as a .tar.gz).
llama_cpp_source "$work" "llama-trace build"
src=$llama_cpp_src

# The CPU kernels of the references (../shared/ref: "x86-64 AVX-512"): AVX-512 with VNNI/BF16/VBMI,
# AMX off (this llama.cpp's AMX matmul crashes on the development machines, and AMX changes the
# arithmetic). LLAMA_TRACE_CPU_FLAGS replaces them (e.g. "-DGGML_NATIVE=ON" on other CPUs).
# missing-cpu-flags.sh names the CPU flags these need: change the two together.
cpu_flags=${LLAMA_TRACE_CPU_FLAGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF}
cuda=OFF
[ "${LLAMA_TRACE_CUDA:-0}" = 1 ] && cuda=ON
# nvcc where CUDA installs it when it is not on PATH (CMake and the link below both need it).
if [ $cuda = ON ] && ! command -v nvcc >/dev/null; then PATH=${CUDA_HOME:-/usr/local/cuda}/bin:$PATH; fi
# Static libraries: llama-trace is one file (plus the CUDA runtime's cuBLAS where CUDA is on),
# so it can be carried to another machine. LLAMA_TRACE_CUDA_ARCH: the GPU generation(s) to
# compile for ("native" needs a GPU at build time; e.g. 90 for H100/H200).
cmake_args=(-DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_EXAMPLES=OFF
  -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_COMMON=OFF -DLLAMA_CURL=OFF -DGGML_CUDA=$cuda $cpu_flags)
[ $cuda = ON ] && cmake_args+=(-DCMAKE_CUDA_ARCHITECTURES="${LLAMA_TRACE_CUDA_ARCH:-native}"
  -DGGML_CUDA_NCCL=OFF ${LLAMA_TRACE_CUDA_FLAGS:-})
lib_build=$work/libllama-$([ $cuda = ON ] && echo cuda || echo cpu)
# .built holds the configure arguments: other arguments (flags, CUDA arch) configure and build
# again, in place (every argument is given each time, so none stays from before).
if [ "$(cat "$lib_build/.built" 2>/dev/null)" != "${cmake_args[*]}" ]; then
  cmake -S "$src" -B "$lib_build" -G Ninja "${cmake_args[@]}" >&2
  cmake --build "$lib_build" --target llama -j "$jobs" >&2
  echo "${cmake_args[*]}" > "$lib_build/.built"
fi

exe=$lib_build/llama-trace
if [ ! -x "$exe" ] || [ "$repo_root/tools/llama-trace/llama-trace.cpp" -nt "$exe" ] ||
   [ "$lib_build/.built" -nt "$exe" ]; then
  lib() { find "$lib_build" -name "lib$1.a" | head -n1; }
  libs=("$(lib llama)" "$(lib ggml)" "$(lib ggml-cpu)" "$(lib ggml-base)")
  if [ $cuda = ON ]; then
    cuda_root=$(dirname "$(dirname "$(command -v nvcc)")")
    # cudart is linked in; cuBLAS (about 600 MB) and the driver come from the machine that runs it.
    libs+=("$(lib ggml-cuda)" -L"$cuda_root/lib64" -lcudart_static
      -lcublas -lcublasLt -L"$cuda_root/lib64/stubs" -lcuda -lrt)
  fi
  g++ -std=c++17 -O2 -o "$exe" "$repo_root/tools/llama-trace/llama-trace.cpp" \
    -I"$src/include" -I"$src/ggml/include" \
    -Wl,--start-group "${libs[@]}" -Wl,--end-group \
    -fopenmp -lpthread -ldl -lm \
    -DLLAMA_TRACE_VERSION="\"llama-cpp-python $version, llama.cpp $llama_commit\""
fi
echo "$exe"
