#include "sample/text_stream.h"

#include <algorithm>

namespace plumb {

size_t incomplete_utf8_suffix(std::string_view s) {
  // Walk back over at most 3 continuation bytes to the lead byte; if the sequence it starts
  // needs more bytes than are there, those bytes are incomplete.
  const size_t n = s.size();
  for (size_t back = 1; back <= std::min<size_t>(4, n); ++back) {
    const auto byte = static_cast<unsigned char>(s[n - back]);
    if ((byte & 0xC0) == 0x80) continue;  // continuation byte
    size_t need = 1;
    if ((byte & 0xE0) == 0xC0) {
      need = 2;
    } else if ((byte & 0xF0) == 0xE0) {
      need = 3;
    } else if ((byte & 0xF8) == 0xF0) {
      need = 4;
    }
    return need > back ? back : 0;
  }
  return 0;  // only continuation bytes: malformed, nothing to wait for
}

TextStream::TextStream(std::vector<std::string> stop_strings) : stops_(std::move(stop_strings)) {
  std::erase_if(stops_, [](const std::string& s) { return s.empty(); });
}

std::string TextStream::push(std::string_view piece) {
  if (stopped_) return {};
  const size_t old_size = text_.size();
  text_ += piece;

  // A stop string can only be new if it ends inside the new piece.
  size_t longest_stop = 0;
  for (const std::string& stop : stops_) longest_stop = std::max(longest_stop, stop.size());
  const size_t search_from = old_size >= longest_stop ? old_size - longest_stop + 1 : 0;
  size_t cut = std::string::npos;
  for (const std::string& stop : stops_) {
    const size_t at = text_.find(stop, std::min(search_from, text_.size()));
    if (at != std::string::npos) cut = std::min(cut, at);
  }
  if (cut != std::string::npos) {
    stopped_ = true;
    text_.resize(std::max(cut, emitted_));
    std::string out = text_.substr(emitted_);
    emitted_ = text_.size();
    return out;
  }

  // Hold back the longest tail that is a proper prefix of some stop string.
  size_t hold = 0;
  for (const std::string& stop : stops_) {
    for (size_t len = std::min(stop.size() - 1, text_.size() - emitted_); len > hold; --len) {
      if (text_.compare(text_.size() - len, len, stop, 0, len) == 0) {
        hold = len;
        break;
      }
    }
  }
  size_t ready = text_.size() - hold;
  ready -= incomplete_utf8_suffix(std::string_view(text_).substr(emitted_, ready - emitted_));
  std::string out = text_.substr(emitted_, ready - emitted_);
  emitted_ = ready;
  return out;
}

std::string TextStream::flush() {
  std::string out = text_.substr(emitted_);
  emitted_ = text_.size();
  return out;
}

}  // namespace plumb
