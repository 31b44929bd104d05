// Turns generated token pieces into text that is safe to print as it arrives:
//  - an incomplete UTF-8 sequence at the end is held back until its last byte arrives
//    (byte-level vocabularies split one character over several tokens);
//  - text that might be the beginning of a stop string is held back until it is clear that
//    it is not; when a stop string appears, the text before it is the final output.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace plumb {

class TextStream {
 public:
  explicit TextStream(std::vector<std::string> stop_strings = {});

  // Appends a piece; returns the text that can be printed now.
  std::string push(std::string_view piece);
  // After push(): true once a stop string was seen (later pushes are ignored).
  bool stopped() const { return stopped_; }
  // Whatever is still held back (at the end of generation, when no stop string matched).
  std::string flush();
  // All text accepted so far, without the stop string and anything after it.
  const std::string& text() const { return text_; }

 private:
  std::vector<std::string> stops_;
  std::string text_;    // everything pushed (cut at the stop string once stopped)
  size_t emitted_ = 0;  // bytes of text_ already returned
  bool stopped_ = false;
};

// Number of bytes at the end of `s` that form an incomplete UTF-8 sequence (0 to 3).
size_t incomplete_utf8_suffix(std::string_view s);

}  // namespace plumb
