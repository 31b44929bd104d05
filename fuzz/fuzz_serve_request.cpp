// libFuzzer target: plumb serve's request parser on arbitrary bytes. Every input must end in
// a request or an ApiError, never a crash, a leak or an uncaught exception.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "serve/request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  plumb::serve::ApiError error;
  if (auto chat = plumb::serve::parse_chat_request(body, &error)) {
    for (const auto& m : chat->messages) (void)m.content.size();
  } else {
    (void)error.to_json();
  }
  if (!plumb::serve::parse_completion_request(body, &error)) (void)error.to_json();
  return 0;
}
