#include "serve/auth.h"

#include <array>
#include <cstdint>

#include "util/sha256.h"

namespace plumb::serve {

namespace {

std::array<uint8_t, 32> digest(std::string_view s) {
  Sha256 h;
  h.update(s.data(), s.size());
  return h.finish();
}

}  // namespace

bool bearer_matches(std::string_view authorization, std::string_view key) {
  constexpr std::string_view kScheme = "Bearer ";
  const bool has_scheme = authorization.substr(0, kScheme.size()) == kScheme;
  const std::string_view given = has_scheme ? authorization.substr(kScheme.size()) : std::string_view();
  const std::array<uint8_t, 32> a = digest(given);
  const std::array<uint8_t, 32> b = digest(key);
  uint8_t diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<uint8_t>(a[i] ^ b[i]);
  return has_scheme && !key.empty() && diff == 0;
}

}  // namespace plumb::serve
