// Writing JSON text for --json outputs: strings quoted and escaped so that any bytes a model
// produces (control characters, invalid UTF-8 from a cut-off sequence) still give valid JSON.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace plumb {

// "..." with JSON escapes; bytes that are not valid UTF-8 become U+FFFD.
std::string json_quote(std::string_view text);
// [1,2,3]
std::string json_int_array(std::span<const int32_t> values);
// A finite number with up to 6 significant decimals; non-finite values become null.
std::string json_number(double value);

}  // namespace plumb
