// Element type of the KV cache, chosen per session (--cache-type).
#pragma once

namespace plumb {

enum class CacheType { F32, F16 };

}  // namespace plumb
