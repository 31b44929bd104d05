// --api-key: the Authorization header's check.
#pragma once

#include <string_view>

namespace plumb::serve {

// True when `authorization` is "Bearer KEY" with KEY equal to `key`. Both sides are hashed
// (SHA-256) and the digests compared without an early exit, so the time taken says nothing
// about how much of a guess was right, nor about the key's length.
bool bearer_matches(std::string_view authorization, std::string_view key);

}  // namespace plumb::serve
