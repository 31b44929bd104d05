# The pinned llama.cpp source, sourced (`. tools/llama-cpp-source.sh`) by tools/llama-trace/build.sh
# and bench/cpu-table.sh: the llama.cpp vendored in llama-cpp-python 0.3.36's PyPI sdist (sha256
# below), commit 0c1e57098bba43ac29e6e3b677cdceebdd22334f (the references of ../shared/ref were
# made with d32676d7, which no sdist vendors: docs/TRACE.md).
#
#   llama_cpp_source DIR NAME
#
# downloads the sdist into DIR with pip (the source, no binaries), checks its sha256 and unpacks
# it there, once, and sets llama_cpp_src to the vendored llama.cpp (DIR must be absolute where
# the caller changes directory afterwards). NAME begins the error message. A DIR that already
# holds the unpacked tree (DIR/llama_cpp_python-0.3.36/vendor/llama.cpp/CMakeLists.txt) or the
# sdist itself needs no network: that is how a machine without it builds, from what a networked
# machine downloaded or unpacked.

# shellcheck shell=bash disable=SC2034  # the values are the callers'
llama_cpp_python_version=0.3.36
llama_cpp_python_sdist_sha256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
llama_cpp_commit=0c1e57098bba43ac29e6e3b677cdceebdd22334f

llama_cpp_source() {
  local dir=$1 name=$2
  local sdist=llama_cpp_python-$llama_cpp_python_version.tar.gz
  llama_cpp_src=$dir/llama_cpp_python-$llama_cpp_python_version/vendor/llama.cpp
  [ -f "$llama_cpp_src/CMakeLists.txt" ] && return 0
  if [ ! -f "$dir/$sdist" ]; then
    python3 -m pip download --quiet --disable-pip-version-check --no-deps --no-binary :all: \
      "llama-cpp-python==$llama_cpp_python_version" -d "$dir" >&2
  fi
  [ "$(sha256sum "$dir/$sdist" | cut -d' ' -f1)" = "$llama_cpp_python_sdist_sha256" ] || {
    echo "$name: $sdist does not have the pinned sha256" >&2
    exit 1
  }
  tar xzf "$dir/$sdist" -C "$dir"
}
