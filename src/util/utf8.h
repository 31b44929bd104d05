// Strict UTF-8 validation: what JSON text and HTTP request bodies must be.
#pragma once

#include <cstddef>
#include <string_view>

namespace plumb {

// Offset of the first byte of `s` that does not start a well-formed UTF-8 sequence (overlong
// forms, UTF-16 surrogates, code points past U+10FFFF and cut-short sequences included), or
// std::string_view::npos when all of `s` is well formed.
size_t find_invalid_utf8(std::string_view s);

}  // namespace plumb
